#define KX_PQ_NO_MACROS
#include "store/postgres/pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct kx_pq_api kx_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[400];
static int loaded;

/* Stores dlsym's object pointer into a function pointer without the
 * object-to-function cast ISO C leaves undefined. */
#define BIND(name)                                                                             \
	do {                                                                                   \
		void *sym = dlsym(h, #name);                                                   \
		if (!sym) {                                                                    \
			snprintf(load_error, sizeof(load_error),                               \
				 "libpq has no symbol '%s' (too old?)", #name);                \
			return;                                                                \
		}                                                                              \
		memcpy(&kx_pq.name, &sym, sizeof(sym));                                        \
	} while (0)

static void load(void)
{
	void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_error, sizeof(load_error),
			 "PostgreSQL support needs libpq (Debian package libpq5): %s", dlerror());
		return;
	}
	BIND(PQclear);
	BIND(PQgetvalue);
	BIND(PQntuples);
	BIND(PQgetisnull);
	BIND(PQstatus);
	BIND(PQexec);
	BIND(PQexecParams);
	BIND(PQtransactionStatus);
	BIND(PQresultStatus);
	BIND(PQresultErrorField);
	BIND(PQfreemem);
	BIND(PQerrorMessage);
	BIND(PQsocket);
	BIND(PQsetNoticeProcessor);
	BIND(PQresStatus);
	BIND(PQprepare);
	BIND(PQnotifies);
	BIND(PQfinish);
	BIND(PQexecPrepared);
	BIND(PQconsumeInput);
	BIND(PQconninfoParse);
	BIND(PQconninfoFree);
	BIND(PQconnectdbParams);
	BIND(PQcmdTuples);
	BIND(PQcmdStatus);
	BIND(PQbackendPID);
	loaded = 1;
}

int kx_pq_load(struct kx_err *err)
{
	pthread_once(&once, load);
	if (!loaded)
		return kx_err_set(err, KX_EIO, "%s", load_error[0] ? load_error : "cannot load libpq");
	return 0;
}
