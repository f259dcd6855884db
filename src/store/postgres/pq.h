/* pq.h — libpq, loaded when the first PostgreSQL store opens.
 *
 * A daemon on SQLite never maps libpq and its dependency chain (TLS,
 * Kerberos, LDAP), which keeps its start-up time and idle memory down.
 * postgres.c includes this header instead of calling libpq directly: each
 * PQ… name below resolves to a pointer filled by kx_pq_load().
 */
#ifndef KX_PQ_H
#define KX_PQ_H

#include <libpq-fe.h> /* types and prototypes only */

#include "lib/err.h"

struct kx_pq_api {
	__typeof__(PQclear) *PQclear;
	__typeof__(PQgetvalue) *PQgetvalue;
	__typeof__(PQntuples) *PQntuples;
	__typeof__(PQgetisnull) *PQgetisnull;
	__typeof__(PQstatus) *PQstatus;
	__typeof__(PQexec) *PQexec;
	__typeof__(PQexecParams) *PQexecParams;
	__typeof__(PQtransactionStatus) *PQtransactionStatus;
	__typeof__(PQresultStatus) *PQresultStatus;
	__typeof__(PQresultErrorField) *PQresultErrorField;
	__typeof__(PQfreemem) *PQfreemem;
	__typeof__(PQerrorMessage) *PQerrorMessage;
	__typeof__(PQsocket) *PQsocket;
	__typeof__(PQsetNoticeProcessor) *PQsetNoticeProcessor;
	__typeof__(PQresStatus) *PQresStatus;
	__typeof__(PQprepare) *PQprepare;
	__typeof__(PQnotifies) *PQnotifies;
	__typeof__(PQfinish) *PQfinish;
	__typeof__(PQexecPrepared) *PQexecPrepared;
	__typeof__(PQconsumeInput) *PQconsumeInput;
	__typeof__(PQconninfoParse) *PQconninfoParse;
	__typeof__(PQconninfoFree) *PQconninfoFree;
	__typeof__(PQconnectdbParams) *PQconnectdbParams;
	__typeof__(PQcmdTuples) *PQcmdTuples;
	__typeof__(PQcmdStatus) *PQcmdStatus;
	__typeof__(PQbackendPID) *PQbackendPID;
};

extern struct kx_pq_api kx_pq;

/* Loads libpq once (thread-safe); 0 or KX_EIO with a message naming the
 * package to install. */
int kx_pq_load(struct kx_err *err);

#ifndef KX_PQ_NO_MACROS
#define PQclear (kx_pq.PQclear)
#define PQgetvalue (kx_pq.PQgetvalue)
#define PQntuples (kx_pq.PQntuples)
#define PQgetisnull (kx_pq.PQgetisnull)
#define PQstatus (kx_pq.PQstatus)
#define PQexec (kx_pq.PQexec)
#define PQexecParams (kx_pq.PQexecParams)
#define PQtransactionStatus (kx_pq.PQtransactionStatus)
#define PQresultStatus (kx_pq.PQresultStatus)
#define PQresultErrorField (kx_pq.PQresultErrorField)
#define PQfreemem (kx_pq.PQfreemem)
#define PQerrorMessage (kx_pq.PQerrorMessage)
#define PQsocket (kx_pq.PQsocket)
#define PQsetNoticeProcessor (kx_pq.PQsetNoticeProcessor)
#define PQresStatus (kx_pq.PQresStatus)
#define PQprepare (kx_pq.PQprepare)
#define PQnotifies (kx_pq.PQnotifies)
#define PQfinish (kx_pq.PQfinish)
#define PQexecPrepared (kx_pq.PQexecPrepared)
#define PQconsumeInput (kx_pq.PQconsumeInput)
#define PQconninfoParse (kx_pq.PQconninfoParse)
#define PQconninfoFree (kx_pq.PQconninfoFree)
#define PQconnectdbParams (kx_pq.PQconnectdbParams)
#define PQcmdTuples (kx_pq.PQcmdTuples)
#define PQcmdStatus (kx_pq.PQcmdStatus)
#define PQbackendPID (kx_pq.PQbackendPID)

#endif /* KX_PQ_NO_MACROS */

#endif
