#define KX_PQ_NO_MACROS
#include "store/postgres/pq.h"

#include "lib/dynload.h"

struct kx_pq_api kx_pq;

static const char *const sonames[] = {"libpq.so.5", NULL};
static const struct kx_dl_sym syms[] = {
	KX_DL_SYM(kx_pq, PQclear),
	KX_DL_SYM(kx_pq, PQgetvalue),
	KX_DL_SYM(kx_pq, PQntuples),
	KX_DL_SYM(kx_pq, PQgetisnull),
	KX_DL_SYM(kx_pq, PQstatus),
	KX_DL_SYM(kx_pq, PQexec),
	KX_DL_SYM(kx_pq, PQexecParams),
	KX_DL_SYM(kx_pq, PQtransactionStatus),
	KX_DL_SYM(kx_pq, PQresultStatus),
	KX_DL_SYM(kx_pq, PQresultErrorField),
	KX_DL_SYM(kx_pq, PQfreemem),
	KX_DL_SYM(kx_pq, PQerrorMessage),
	KX_DL_SYM(kx_pq, PQsocket),
	KX_DL_SYM(kx_pq, PQsetNoticeProcessor),
	KX_DL_SYM(kx_pq, PQresStatus),
	KX_DL_SYM(kx_pq, PQprepare),
	KX_DL_SYM(kx_pq, PQnotifies),
	KX_DL_SYM(kx_pq, PQfinish),
	KX_DL_SYM(kx_pq, PQexecPrepared),
	KX_DL_SYM(kx_pq, PQconsumeInput),
	KX_DL_SYM(kx_pq, PQconninfoParse),
	KX_DL_SYM(kx_pq, PQconninfoFree),
	KX_DL_SYM(kx_pq, PQconnectdbParams),
	KX_DL_SYM(kx_pq, PQcmdTuples),
	KX_DL_SYM(kx_pq, PQcmdStatus),
	KX_DL_SYM(kx_pq, PQbackendPID),
};
static struct kx_dl_lib lib =
	KX_DL_LIB(sonames, "PostgreSQL support needs libpq (Debian package libpq5)", "libpq", "too old?", syms);

int kx_pq_load(struct kx_err *err)
{
	return kx_dl_load(&lib, err);
}
