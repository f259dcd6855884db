/* postgres.c — the PostgreSQL backend (libpq), for several daemons sharing
 * one database.
 *
 * URLs (all taken by kx_store_postgres.accepts):
 *   postgres://USER@HOST:PORT/DB?…, postgresql://…   a libpq connection URI,
 *                                                    passed to libpq as is
 *   postgres:KEY=VALUE KEY=VALUE…                    a libpq keyword string
 *                                                    ("postgres:host=/run/pg
 *                                                    port=5433 dbname=klaxon")
 *   postgres:NAME                                    database NAME, the rest
 *                                                    from libpq's defaults
 *   postgres:                                        libpq's defaults (PG* env)
 * ("postgresql:" works wherever "postgres:" does.) connect_timeout=3 and
 * client_encoding=UTF8 are added unless the URL sets them, so nothing waits
 * long on a server that does not answer.
 *
 * Pool: NCONNS connections, each opened on first use and handed to one
 * transaction at a time (mutex + condvar, like the SQLite readers). A
 * connection that fails with a connection-class error is marked stale and
 * reconnected on its next use; a transaction whose BEGIN fails on a
 * connection that went bad while idle (the server restarted) reconnects and
 * tries once more, so service comes back by itself. Otherwise a call on a
 * lost server returns KX_EUNAVAIL "database unavailable: …".
 *
 * Transactions: a write transaction is READ COMMITTED, and incident_get in
 * it locks the row (SELECT … FOR UPDATE), so two changes to one incident
 * wait for each other instead of one failing on a stale version. A read
 * transaction is REPEATABLE READ READ ONLY: one snapshot for all of its
 * statements, as a SQLite reader has.
 *
 * Statements: static SQL is prepared once per connection (cached by the
 * address of its text, as sqlite.c does) and run with text parameters; the
 * incident list's WHERE clause is built from fixed pieces with $n
 * placeholders. No user value is ever part of SQL text. Lists of values
 * (labels, types, roles, ids) travel as one text[] parameter.
 *
 * Shared work (store.h): jobs are claimed with FOR UPDATE SKIP LOCKED;
 * singletons are session advisory locks held on a connection of their own;
 * the change feed is a NOTIFY sent in the writing transaction and a LISTEN
 * on a connection of its own, read by a thread, while this daemon's own
 * subscribers are called at commit, as on SQLite.
 *
 * Errors: class 23 (unique, foreign key, check) → KX_ECONFLICT, as the
 * SQLite backend maps SQLITE_CONSTRAINT; connection classes (08, 57P0x,
 * 53) → KX_EUNAVAIL; serialization failure, deadlock, lock timeout, query
 * cancel → KX_EUNAVAIL "database is busy" (as SQLITE_BUSY); the rest
 * KX_ESTORE. A failed statement aborts the PostgreSQL transaction: as
 * store.h says, it is then good only for rollback.
 */
#include "store/migrate.h"
#include "store/store.h"
#include "lib/buf.h"
#include "lib/secret.h"
#include "lib/time.h"

#include <assert.h>
#include <fcntl.h>
#include <jansson.h>
#include "store/postgres/pq.h"
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCONNS 8
#define STMT_CACHE 192
#define MAX_PARAMS 32
#define MAX_SUBSCRIBERS 16
/* pg_advisory_lock key held while migrating ("klaxonMG"). */
#define MIGRATE_LOCK_KEY "7740669029436509511"
/* The one NOTIFY channel of the change feed; a payload is
 * "<length of topic>:<topic><payload>". */
#define CHANNEL "klaxon_changes"
/* How long the feed waits before reconnecting to a lost server. */
#define FEED_RETRY_MS 1000

/* A pooled connection. Invariants: pg is NULL or a connection whose
 * prepared statements are exactly stmts[0..nstmts) (named "s0", "s1", …);
 * busy while a transaction (or ping) holds it; stale when it must be
 * reconnected before its next use. */
struct conn {
	PGconn *pg;
	int pid; /* of its server process (under be->lock for pool connections) */
	bool busy;
	bool stale;
	const char *stmts[STMT_CACHE];
	int nstmts;
};

/* Besides the pool, two connections of their own: `locks` holds the
 * singleton advisory locks (session locks, so it is never handed to a
 * transaction), `feed` LISTENs for the change feed on the listener
 * thread, started by the first subscribe. */
struct be {
	char *conninfo; /* the URL or keyword string handed to libpq */
	struct conn conns[NCONNS];
	pthread_mutex_t lock;
	pthread_cond_t freed;

	pthread_mutex_t llock; /* guards locks */
	struct conn locks;

	pthread_mutex_t slock; /* guards subs, nsubs, listening */
	struct {
		kx_change_fn fn;
		void *arg;
	} subs[MAX_SUBSCRIBERS];
	int nsubs;
	bool listening;
	pthread_t listener;
	int wake[2]; /* a byte in it stops the listener */
	struct conn feed;
};

struct tx {
	struct be *be;
	struct conn *c;
	bool write;
	bool failed;	     /* a statement failed: only rollback is left */
	struct kx_buf notes; /* notifications for this daemon: "topic\0payload\0"… */
};

/* ---- errors ---- */

/* Copies msg into out on one line: runs of whitespace become one space,
 * no leading or trailing space (libpq messages end in "\n" and may hold
 * several lines). */
static void one_line(char *out, size_t n, const char *msg)
{
	size_t o = 0;
	bool space = false;
	for (const char *s = msg ? msg : ""; *s && o + 1 < n; s++) {
		if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < n)
			out[o++] = ' ';
		space = false;
		out[o++] = *s;
	}
	out[o] = '\0';
}

static int unavailable(struct kx_err *err, const char *msg)
{
	char line[400];
	one_line(line, sizeof(line), msg);
	return kx_err_set(err, KX_EUNAVAIL, "database unavailable: %s",
			  *line ? line : "connection lost");
}

/* Maps a failed result (or NULL: libpq could not even make one) to a
 * KX_E… code and message; marks the connection stale when it is gone. */
static int db_error(struct conn *c, const PGresult *res, struct kx_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[400];

	if (!msg || !*msg)
		msg = PQerrorMessage(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK || (state && (strncmp(state, "08", 2) == 0 ||
							   strncmp(state, "57P0", 4) == 0))) {
		c->stale = true;
		return unavailable(err, msg);
	}
	one_line(line, sizeof(line), msg);
	if (!state)
		return kx_err_set(err, KX_ESTORE, "database error: %s", line);
	if (strncmp(state, "23", 2) == 0)
		return kx_err_set(err, KX_ECONFLICT, "conflicting change: %s", line);
	if (strncmp(state, "53", 2) == 0)
		return kx_err_set(err, KX_EUNAVAIL, "database unavailable: %s", line);
	if (strncmp(state, "40", 2) == 0 || strcmp(state, "55P03") == 0 ||
	    strcmp(state, "57014") == 0)
		return kx_err_set(err, KX_EUNAVAIL, "database is busy: %s", line);
	return kx_err_set(err, KX_ESTORE, "database error: %s", line);
}

/* 0 when res has the status wanted (the caller then owns res); otherwise
 * clears res and returns the error. */
static int check(struct conn *c, PGresult *res, ExecStatusType want, struct kx_err *err)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc;
	if (st == want)
		return 0;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) /* a bug here, not there */
		rc = kx_err_set(err, KX_ESTORE, "database error: unexpected %s", PQresStatus(st));
	else
		rc = db_error(c, res, err);
	PQclear(res);
	return rc;
}

/* Runs SQL without parameters through the simple protocol, ignoring any
 * rows (BEGIN, COMMIT, SELECT 1, migrations). */
static int exec_simple(struct conn *c, const char *sql, struct kx_err *err)
{
	PGresult *res = PQexec(c->pg, sql);
	int rc = check(c, res, res && PQresultStatus(res) == PGRES_TUPLES_OK ? PGRES_TUPLES_OK
									  : PGRES_COMMAND_OK,
		       err);
	if (!rc)
		PQclear(res);
	return rc;
}

/* ---- connections and the pool ---- */

static void quiet(void *arg, const char *msg)
{
	/* NOTICEs ("relation already exists, skipping") are not for users. */
	(void)arg;
	(void)msg;
}

static void set_pid(struct be *be, struct conn *c, int pid)
{
	pthread_mutex_lock(&be->lock);
	c->pid = pid;
	pthread_mutex_unlock(&be->lock);
}

static void conn_close(struct be *be, struct conn *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->nstmts = 0;
	c->stale = false;
	if (c->pid)
		set_pid(be, c, 0);
}

/* (Re)connects c. Parameters before "dbname" are defaults that the URL
 * (expanded in place of dbname) may override. */
static int conn_connect(struct be *be, struct conn *c, struct kx_err *err)
{
	/* Nothing may hang: connecting gives up after 3 s, a statement after
	 * 15 s (lock waits included), and TCP keepalives notice a server that
	 * vanished without closing the connection within about 10 s. */
	static const char *const keys[] = {"connect_timeout", "client_encoding", "keepalives_idle",
					   "keepalives_interval", "keepalives_count", "options",
					   "dbname", NULL};
	const char *vals[] = {"3", "UTF8", "4", "2", "3", "-c statement_timeout=15000",
			      be->conninfo, NULL};
	int rc;

	conn_close(be, c);
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (!c->pg)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (PQstatus(c->pg) != CONNECTION_OK) {
		rc = unavailable(err, PQerrorMessage(c->pg));
		conn_close(be, c);
		return rc;
	}
	PQsetNoticeProcessor(c->pg, quiet, NULL);
	set_pid(be, c, PQbackendPID(c->pg));
	return 0;
}

/* Makes c usable; *fresh tells whether it was (re)connected just now. */
static int conn_ready(struct be *be, struct conn *c, bool *fresh, struct kx_err *err)
{
	*fresh = false;
	if (c->pg && !c->stale && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	*fresh = true;
	return conn_connect(be, c, err);
}

/* A free connection, waiting for one if all are busy; an open one is
 * preferred so that the pool grows only under load. */
static struct conn *take(struct be *be)
{
	struct conn *c = NULL;
	pthread_mutex_lock(&be->lock);
	for (;;) {
		for (int i = 0; i < NCONNS; i++) {
			struct conn *x = &be->conns[i];
			if (x->busy)
				continue;
			if (x->pg && !x->stale) {
				c = x;
				break;
			}
			if (!c)
				c = x;
		}
		if (c)
			break;
		pthread_cond_wait(&be->freed, &be->lock);
	}
	c->busy = true;
	pthread_mutex_unlock(&be->lock);
	return c;
}

static void give(struct be *be, struct conn *c)
{
	/* A connection still in a transaction must not serve the next one. */
	if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		c->stale = true;
	pthread_mutex_lock(&be->lock);
	c->busy = false;
	pthread_cond_signal(&be->freed);
	pthread_mutex_unlock(&be->lock);
}

/* Runs sql (no parameters, no rows) as the first statement of a use of c.
 * A connection that was fine when last used may have lost its server since
 * (a restart, a failover): then it is reconnected and sql tried once more,
 * which is safe because nothing has happened on it yet. */
static int first_exec(struct be *be, struct conn *c, const char *sql, struct kx_err *err)
{
	bool fresh;
	int rc;
	for (int attempt = 0;; attempt++) {
		if ((rc = conn_ready(be, c, &fresh, err)))
			return rc;
		rc = exec_simple(c, sql, err);
		if (rc == KX_EUNAVAIL && c->stale && !fresh && attempt == 0)
			continue;
		return rc;
	}
}

/* ---- statements ---- */

/* Text parameters: NULL is SQL NULL. */
struct params {
	const char *v[MAX_PARAMS];
	char num[MAX_PARAMS][24];
	int n;
};

static void p_text(struct params *p, const char *s)
{
	assert(p->n < MAX_PARAMS);
	p->v[p->n++] = s;
}

static void p_int(struct params *p, int64_t x)
{
	assert(p->n < MAX_PARAMS);
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)x);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

static void p_time(struct params *p, kx_ms t)
{
	if (t == KX_TIME_UNSET)
		p_text(p, NULL);
	else
		p_int(p, t);
}

static void p_count(struct params *p, int64_t v)
{
	if (v < 0)
		p_text(p, NULL);
	else
		p_int(p, v);
}

/* Runs the static statement sql (prepared on first use on this connection)
 * in t. On success *out is the result, with status `want`; the caller
 * clears it. */
static int run(struct tx *t, const char *sql, const struct params *p, ExecStatusType want,
	       PGresult **out, struct kx_err *err)
{
	struct conn *c = t->c;
	PGresult *res;
	char name[16];
	int i, rc;

	*out = NULL;
	if (t->failed)
		return kx_err_set(err, KX_ESTORE,
				  "database error: the transaction failed and can only be rolled back");
	for (i = 0; i < c->nstmts; i++)
		if (c->stmts[i] == sql)
			break;
	snprintf(name, sizeof(name), "s%d", i);
	if (i == c->nstmts) {
		/* More distinct statements than slots is a programming error. */
		assert(c->nstmts < STMT_CACHE);
		res = PQprepare(c->pg, name, sql, 0, NULL);
		if ((rc = check(c, res, PGRES_COMMAND_OK, err)))
			goto fail;
		PQclear(res);
		c->stmts[c->nstmts++] = sql;
	}
	res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
	if ((rc = check(c, res, want, err)))
		goto fail;
	*out = res;
	return 0;
fail:
	t->failed = true;
	return rc;
}

/* run() for statements that return no rows. */
static int run_cmd(struct tx *t, const char *sql, const struct params *p, struct kx_err *err)
{
	PGresult *res;
	int rc = run(t, sql, p, PGRES_COMMAND_OK, &res, err);
	PQclear(res);
	return rc;
}

/* run() for statements that change rows: *n is how many. */
static int run_count(struct tx *t, const char *sql, const struct params *p, int64_t *n,
		     struct kx_err *err)
{
	PGresult *res;
	int rc = run(t, sql, p, PGRES_COMMAND_OK, &res, err);
	if (!rc)
		*n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return rc;
}

/* ---- values ---- */

static char *col_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int64_t col_int(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static kx_ms col_time(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? KX_TIME_UNSET : col_int(r, row, col);
}

static int64_t col_count(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? -1 : col_int(r, row, col);
}

/* boolean comes back as "t" or "f". */
static bool col_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

/* Column col as a new string in *out (NULL for SQL NULL); false when out
 * of memory. */
static bool col_opt(const PGresult *r, int row, int col, char **out)
{
	*out = col_text(r, row, col);
	return *out || PQgetisnull(r, row, col);
}

/* A text[] literal for a parameter: "{" then each element quoted, with "
 * and \ escaped, then "}". Build with arr_start, arr_add…, arr_end; the
 * buffer's own failure rule (freed on overflow) plus `bad` make one check
 * at the end enough. */
struct arr {
	struct kx_buf b;
	size_t n;
	bool bad;
};

static void arr_start(struct arr *a)
{
	kx_buf_init(&a->b, KX_BUF_DEFAULT_MAX);
	a->n = 0;
	a->bad = kx_buf_addc(&a->b, '{') != 0;
}

static void arr_add(struct arr *a, const char *s)
{
	if (a->n++ && kx_buf_addc(&a->b, ','))
		a->bad = true;
	if (kx_buf_addc(&a->b, '"'))
		a->bad = true;
	for (; *s; s++)
		if (((*s == '"' || *s == '\\') && kx_buf_addc(&a->b, '\\')) ||
		    kx_buf_addc(&a->b, *s))
			a->bad = true;
	if (kx_buf_addc(&a->b, '"'))
		a->bad = true;
}

static int arr_end(struct arr *a, struct kx_err *err)
{
	if (kx_buf_addc(&a->b, '}') || a->bad)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

/* Finds id among n strings sorted with strcmp (an index built by
 * sort_index); returns its original position or -1. */
struct ref {
	const char *id;
	size_t at;
};

static int ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ref *)a)->id, ((const struct ref *)b)->id);
}

static long find_ref(const struct ref *refs, size_t n, const char *id)
{
	struct ref key = {id, 0};
	const struct ref *r = n ? bsearch(&key, refs, n, sizeof(*refs), ref_cmp) : NULL;
	return r ? (long)r->at : -1;
}

/* ---- open, close, transactions ---- */

static bool pg_accepts(const char *url)
{
	return strncmp(url, "postgres:", 9) == 0 || strncmp(url, "postgresql:", 11) == 0;
}

static int migrate(struct conn *c, struct kx_err *err)
{
	const char *key[] = {MIGRATE_LOCK_KEY};
	PGresult *res;
	int current, rc;

	/* Several daemons starting together: one migrates, the others wait
	 * here and then find nothing left to do. */
	res = PQexecParams(c->pg, "SELECT pg_advisory_lock($1::bigint)", 1, NULL, key, NULL, NULL,
			   0);
	if ((rc = check(c, res, PGRES_TUPLES_OK, err)))
		return rc;
	PQclear(res);
	if ((rc = exec_simple(c,
			      "CREATE TABLE IF NOT EXISTS schema_migrations ("
			      " version integer PRIMARY KEY, name text NOT NULL,"
			      " applied_at bigint NOT NULL)",
			      err)))
		goto out;
	res = PQexec(c->pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if ((rc = check(c, res, PGRES_TUPLES_OK, err)))
		goto out;
	current = (int)col_int(res, 0, 0);
	PQclear(res);
	for (const struct kx_migration *m = kx_postgres_migrations; m->sql; m++) {
		char version[16], at[24];
		const char *vals[] = {version, m->name, at};
		if (m->version <= current)
			continue;
		snprintf(version, sizeof(version), "%d", m->version);
		snprintf(at, sizeof(at), "%lld", (long long)kx_now_ms());
		if ((rc = exec_simple(c, "BEGIN", err)))
			goto out;
		if ((rc = exec_simple(c, m->sql, err))) {
			char why[sizeof(err->msg)];
			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			kx_err_set(err, rc, "migration %s failed: %s", m->name, why);
			goto fail;
		}
		res = PQexecParams(c->pg,
				   "INSERT INTO schema_migrations (version, name, applied_at) "
				   "VALUES ($1, $2, $3)",
				   3, NULL, vals, NULL, NULL, 0);
		if ((rc = check(c, res, PGRES_COMMAND_OK, err)))
			goto fail;
		PQclear(res);
		if ((rc = exec_simple(c, "COMMIT", err)))
			goto out;
	}
	goto out;
fail:
	PQclear(PQexec(c->pg, "ROLLBACK"));
out:
	res = PQexecParams(c->pg, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, key, NULL, NULL,
			   0);
	PQclear(res); /* on a lost connection the lock went with it */
	return rc;
}

static void feed_stop(struct be *be);

static void pg_close(void *p)
{
	struct be *be = p;
	if (!be)
		return;
	feed_stop(be);
	if (be->locks.pg && PQstatus(be->locks.pg) == CONNECTION_OK)
		/* Released now rather than when the server notices the
		 * disconnection, so that another daemon can take them at once. */
		PQclear(PQexec(be->locks.pg, "SELECT pg_advisory_unlock_all()"));
	conn_close(be, &be->locks);
	for (int i = 0; i < NCONNS; i++)
		conn_close(be, &be->conns[i]);
	pthread_mutex_destroy(&be->lock);
	pthread_cond_destroy(&be->freed);
	pthread_mutex_destroy(&be->llock);
	pthread_mutex_destroy(&be->slock);
	free(be->conninfo);
	free(be);
}

static int pg_open(const char *url, void **out, struct kx_err *err)
{
	const char *info = url;
	struct be *be;
	int rc;

	if (kx_pq_load(err))
		return err ? err->code : KX_EIO;
	if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0)
		info = strchr(url, ':') + 1; /* a keyword string or a database name */
	/* Check the syntax now rather than at the first connection. */
	if (info == url || strchr(info, '=')) {
		char *msg = NULL, line[400];
		PQconninfoOption *opts = PQconninfoParse(info, &msg);
		if (!opts) {
			char *uri;
			one_line(line, sizeof(line), msg ? msg : "out of memory");
			PQfreemem(msg);
			/* libpq quotes the URI, password and all: cut it off */
			if ((uri = strstr(line, "\"postgres"))) {
				while (uri > line && (uri[-1] == ' ' || uri[-1] == ':'))
					uri--;
				*uri = '\0';
			}
			/* Not the URL itself: it may hold a password. */
			return kx_err_set(err, KX_EINVAL, "invalid database URL: %s", line);
		}
		PQconninfoFree(opts);
	}
	if (!(be = calloc(1, sizeof(*be))) || !(be->conninfo = strdup(info))) {
		free(be);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&be->lock, NULL);
	pthread_cond_init(&be->freed, NULL);
	pthread_mutex_init(&be->llock, NULL);
	pthread_mutex_init(&be->slock, NULL);
	be->wake[0] = be->wake[1] = -1;
	if ((rc = conn_connect(be, &be->conns[0], err)) || (rc = migrate(&be->conns[0], err))) {
		pg_close(be);
		return rc;
	}
	*out = be;
	return 0;
}

static int pg_ping(void *p, struct kx_err *err)
{
	struct be *be = p;
	struct conn *c = take(be);
	int rc = first_exec(be, c, "SELECT 1", err);
	give(be, c);
	return rc;
}

static int pg_begin(void *p, bool write, void **out, struct kx_err *err)
{
	struct be *be = p;
	struct tx *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	t->be = be;
	t->write = write;
	kx_buf_init(&t->notes, 64 * 1024);
	t->c = take(be);
	rc = first_exec(be, t->c,
			write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
			      : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
			err);
	if (rc) {
		give(be, t->c);
		kx_buf_release(&t->notes);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* Ends the transaction if it is still open and hands the connection back. */
static void release(struct tx *t)
{
	struct conn *c = t->c;
	if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
	    PQstatus(c->pg) == CONNECTION_OK)
		PQclear(PQexec(c->pg, "ROLLBACK"));
	give(t->be, c);
	kx_buf_release(&t->notes);
	free(t);
}

static void deliver(struct be *be, const char *topic, const char *payload)
{
	pthread_mutex_lock(&be->slock);
	for (int i = 0; i < be->nsubs; i++)
		be->subs[i].fn(topic, payload, be->subs[i].arg);
	pthread_mutex_unlock(&be->slock);
}

static int pg_commit(void *p, struct kx_err *err)
{
	struct tx *t = p;
	struct be *be = t->be;
	struct kx_buf notes;
	PGresult *res;
	int rc;

	if (t->failed) {
		rc = kx_err_set(err, KX_ESTORE,
				"database error: the transaction failed and can only be rolled back");
		release(t);
		return rc;
	}
	res = PQexec(t->c->pg, "COMMIT");
	if (!(rc = check(t->c, res, PGRES_COMMAND_OK, err))) {
		/* COMMIT of an aborted transaction "succeeds" as a ROLLBACK. */
		if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
			rc = kx_err_set(err, KX_ESTORE, "database error: the transaction was rolled back");
		PQclear(res);
	} else if (rc == KX_EUNAVAIL && err && t->c->stale &&
		   strncmp(err->msg, "database unavailable: ", 22) == 0) {
		/* The COMMIT may have reached the server before the connection
		 * went: nobody can say whether the change was saved. */
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", err->msg + strlen("database unavailable: "));
		kx_err_set(err, KX_EUNAVAIL,
			   "database unavailable: connection lost during commit, the change may or "
			   "may not be saved: %s",
			   why);
	}
	/* This daemon's subscribers hear of the commit here, at once, as on
	 * SQLite (the feed skips what our own connections sent); the other
	 * daemons through the feed. Delivered without holding the connection. */
	notes = t->notes;
	kx_buf_init(&t->notes, 0);
	release(t);
	for (const char *q = notes.data, *end = notes.data + notes.len; !rc && q && q < end;) {
		const char *topic = q, *payload = q + strlen(q) + 1;
		deliver(be, topic, payload);
		q = payload + strlen(payload) + 1;
	}
	kx_buf_release(&notes);
	return rc;
}

static void pg_rollback(void *p)
{
	release(p);
}

/* ---- incidents ---- */

static int pg_incident_next_seq(void *p, const char *day, int64_t *seq, struct kx_err *err)
{
	static const char sql[] =
		"INSERT INTO incident_counters (day, last) VALUES ($1, 1) "
		"ON CONFLICT (day) DO UPDATE SET last = incident_counters.last + 1 RETURNING last";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, day);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	*seq = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* Adds the incident's own columns as 20 parameters (shared by insert and
 * update, in the order of INC_COLS after id). */
static void p_incident(struct params *p, const struct kx_incident *inc)
{
	p_text(p, inc->title);
	p_text(p, inc->summary);
	p_text(p, inc->severity);
	p_text(p, kx_status_name(inc->status));
	p_text(p, inc->root_cause);
	p_text(p, inc->resolution);
	p_count(p, inc->impact.users);
	p_count(p, inc->impact.accounts);
	p_count(p, inc->impact.actions);
	p_text(p, inc->impact.revenue);
	p_text(p, inc->impact.description);
	p_time(p, inc->started_at);
	p_time(p, inc->detected_at);
	p_time(p, inc->declared_at);
	p_time(p, inc->acknowledged_at);
	p_time(p, inc->mitigated_at);
	p_time(p, inc->resolved_at);
	p_text(p, inc->created_by);
	p_time(p, inc->updated_at);
	p_int(p, inc->version);
}

/* Writes labels, types and roles in one statement (three text[] pairs). */
static int insert_children(struct tx *t, const struct kx_incident *inc, struct kx_err *err)
{
	static const char sql[] =
		"WITH l AS (INSERT INTO incident_labels (incident_id, key, value) "
		" SELECT $1::text, k, v FROM unnest($2::text[], $3::text[]) AS u(k, v)), "
		"ty AS (INSERT INTO incident_types (incident_id, position, type) "
		" SELECT $1::text, n - 1, ty FROM unnest($4::text[]) WITH ORDINALITY AS u(ty, n)) "
		"INSERT INTO incident_roles (incident_id, position, role, person) "
		"SELECT $1::text, n - 1, r, pe FROM unnest($5::text[], $6::text[]) "
		"WITH ORDINALITY AS u(r, pe, n)";
	struct arr a[5];
	struct params pa = {0};
	int rc = 0;

	if (!inc->labels.n && !inc->ntypes && !inc->nroles)
		return 0;
	for (int i = 0; i < 5; i++)
		arr_start(&a[i]);
	for (size_t i = 0; i < inc->labels.n; i++) {
		arr_add(&a[0], inc->labels.v[i].key);
		arr_add(&a[1], inc->labels.v[i].value);
	}
	for (size_t i = 0; i < inc->ntypes; i++)
		arr_add(&a[2], inc->types[i]);
	for (size_t i = 0; i < inc->nroles; i++) {
		arr_add(&a[3], inc->roles[i].role);
		arr_add(&a[4], inc->roles[i].person);
	}
	for (int i = 0; i < 5 && !rc; i++)
		rc = arr_end(&a[i], err);
	if (!rc) {
		p_text(&pa, inc->id);
		for (int i = 0; i < 5; i++)
			p_text(&pa, kx_buf_str(&a[i].b));
		rc = run_cmd(t, sql, &pa, err);
	}
	for (int i = 0; i < 5; i++)
		kx_buf_release(&a[i].b);
	return rc;
}

static int pg_incident_insert(void *p, const struct kx_incident *inc, struct kx_err *err)
{
	static const char sql[] =
		"INSERT INTO incidents (title, summary, severity, status, root_cause, resolution, "
		"impact_users, impact_accounts, impact_actions, impact_revenue, impact_description, "
		"started_at, detected_at, declared_at, acknowledged_at, mitigated_at, resolved_at, "
		"created_by, updated_at, version, id, day, seq) "
		"VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,"
		"$21,$22,$23)";
	struct tx *t = p;
	struct params pa = {0};
	char day[9];
	int rc;

	memcpy(day, inc->id + 4, 8);
	day[8] = '\0';
	p_incident(&pa, inc);
	p_text(&pa, inc->id);
	p_text(&pa, day);
	p_int(&pa, strtoll(inc->id + 13, NULL, 10));
	if ((rc = run_cmd(t, sql, &pa, err)))
		return rc;
	return insert_children(t, inc, err);
}

static int pg_incident_update(void *p, const struct kx_incident *inc, int64_t expected,
			      struct kx_err *err)
{
	static const char sql[] =
		"UPDATE incidents SET title=$1, summary=$2, severity=$3, status=$4, root_cause=$5, "
		"resolution=$6, impact_users=$7, impact_accounts=$8, impact_actions=$9, "
		"impact_revenue=$10, impact_description=$11, started_at=$12, detected_at=$13, "
		"declared_at=$14, acknowledged_at=$15, mitigated_at=$16, resolved_at=$17, "
		"created_by=$18, updated_at=$19, version=$20 WHERE id=$21 AND version=$22";
	static const char del[] =
		"WITH l AS (DELETE FROM incident_labels WHERE incident_id = $1), "
		"ty AS (DELETE FROM incident_types WHERE incident_id = $1) "
		"DELETE FROM incident_roles WHERE incident_id = $1";
	struct tx *t = p;
	struct params pa = {0}, pd = {0};
	int64_t n = 0;
	int rc;

	p_incident(&pa, inc);
	p_text(&pa, inc->id);
	p_int(&pa, expected);
	if ((rc = run_count(t, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ECONFLICT,
				  "incident '%s' was changed by someone else (expected version %lld)",
				  inc->id, (long long)expected);
	p_text(&pd, inc->id);
	if ((rc = run_cmd(t, del, &pd, err)))
		return rc;
	return insert_children(t, inc, err);
}

#define INC_COLS                                                                               \
	"id, title, summary, severity, status, root_cause, resolution, impact_users, "        \
	"impact_accounts, impact_actions, impact_revenue, impact_description, started_at, "   \
	"detected_at, declared_at, acknowledged_at, mitigated_at, resolved_at, created_by, "  \
	"updated_at, version"

/* Reads row `row` of an INC_COLS result into inc (initialised here). */
static int read_incident(const PGresult *r, int row, struct kx_incident *inc, struct kx_err *err)
{
	kx_incident_init(inc);
	snprintf(inc->id, sizeof(inc->id), "%s", PQgetvalue(r, row, 0));
	inc->title = col_text(r, row, 1);
	inc->summary = col_text(r, row, 2);
	inc->severity = col_text(r, row, 3);
	kx_status_parse(PQgetvalue(r, row, 4), &inc->status, NULL);
	inc->root_cause = col_text(r, row, 5);
	inc->resolution = col_text(r, row, 6);
	inc->impact.users = col_count(r, row, 7);
	inc->impact.accounts = col_count(r, row, 8);
	inc->impact.actions = col_count(r, row, 9);
	inc->impact.revenue = col_text(r, row, 10);
	inc->impact.description = col_text(r, row, 11);
	inc->started_at = col_time(r, row, 12);
	inc->detected_at = col_time(r, row, 13);
	inc->declared_at = col_time(r, row, 14);
	inc->acknowledged_at = col_time(r, row, 15);
	inc->mitigated_at = col_time(r, row, 16);
	inc->resolved_at = col_time(r, row, 17);
	inc->created_by = col_text(r, row, 18);
	inc->updated_at = col_time(r, row, 19);
	inc->version = col_int(r, row, 20);
	if (!inc->title || !inc->severity || !inc->created_by ||
	    (!PQgetisnull(r, row, 2) && !inc->summary) ||
	    (!PQgetisnull(r, row, 5) && !inc->root_cause) ||
	    (!PQgetisnull(r, row, 6) && !inc->resolution) ||
	    (!PQgetisnull(r, row, 10) && !inc->impact.revenue) ||
	    (!PQgetisnull(r, row, 11) && !inc->impact.description)) {
		kx_incident_release(inc);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	return 0;
}

/* Loads labels, types and roles of incs[0..n) in one statement. */
static int load_children(struct tx *t, struct kx_incident *incs, size_t n, struct kx_err *err)
{
	static const char sql[] =
		"SELECT incident_id, 0 AS k, key AS a, value AS b, 0::bigint AS pos "
		"FROM incident_labels WHERE incident_id = ANY($1::text[]) "
		"UNION ALL SELECT incident_id, 1, type, NULL, position "
		"FROM incident_types WHERE incident_id = ANY($1::text[]) "
		"UNION ALL SELECT incident_id, 2, role, person, position "
		"FROM incident_roles WHERE incident_id = ANY($1::text[]) "
		"ORDER BY k, pos";
	struct params pa = {0};
	struct ref *refs = NULL;
	struct arr ids;
	PGresult *res = NULL;
	int rc;

	if (!n)
		return 0;
	arr_start(&ids);
	for (size_t i = 0; i < n; i++)
		arr_add(&ids, incs[i].id);
	if ((rc = arr_end(&ids, err)))
		goto out;
	if (!(refs = malloc(n * sizeof(*refs)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		refs[i] = (struct ref){incs[i].id, i};
	qsort(refs, n, sizeof(*refs), ref_cmp);
	p_text(&pa, kx_buf_str(&ids.b));
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		goto out;
	for (int row = 0; row < PQntuples(res); row++) {
		long at = find_ref(refs, n, PQgetvalue(res, row, 0));
		struct kx_incident *inc;
		const char *a = PQgetvalue(res, row, 2), *b = PQgetvalue(res, row, 3);
		int bad = 0;
		if (at < 0)
			continue;
		inc = &incs[at];
		switch (PQgetvalue(res, row, 1)[0]) {
		case '0':
			/* Stored labels were validated on the way in; load as is. */
			bad = kx_labels_set(&inc->labels, a, b, NULL);
			break;
		case '1':
			bad = kx_incident_add_type(inc, a);
			break;
		default:
			bad = kx_incident_add_role(inc, a, b);
			break;
		}
		if (bad) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	PQclear(res);
	free(refs);
	kx_buf_release(&ids.b);
	return rc;
}

static int pg_incident_get(void *p, const char *id, struct kx_incident *inc, struct kx_err *err)
{
	/* In a write transaction the row stays locked until commit: a change
	 * reads, decides and writes without anyone else changing it between. */
	static const char sql_lock[] = "SELECT " INC_COLS " FROM incidents WHERE id = $1 FOR UPDATE";
	static const char sql[] = "SELECT " INC_COLS " FROM incidents WHERE id = $1";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, id);
	if ((rc = run(t, t->write ? sql_lock : sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return kx_err_set(err, KX_ENOTFOUND, "incident '%.64s' not found", id);
	}
	rc = read_incident(res, 0, inc, err);
	PQclear(res);
	if (rc)
		return rc;
	if ((rc = load_children(t, inc, 1, err))) {
		kx_incident_release(inc);
		return rc;
	}
	return 0;
}

static int pg_incident_list(void *p, const struct kx_incident_filter *f,
			    struct kx_incident_list *out, struct kx_err *err)
{
	struct tx *t = p;
	struct kx_buf sql;
	const char **vals = NULL;
	char limit[24], since[24];
	PGresult *res = NULL;
	int rc = 0, np = 0, nrows;

	out->v = NULL;
	out->n = 0;
	if (t->failed)
		return kx_err_set(err, KX_ESTORE,
				  "database error: the transaction failed and can only be rolled back");
	/* Labels make the parameter count open-ended: values go in vals. */
	if (!(vals = calloc(4 + 2 * f->labels.n, sizeof(*vals))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	kx_buf_init(&sql, 64 * 1024);
	kx_buf_adds(&sql, "SELECT " INC_COLS " FROM incidents i WHERE true");
	if (f->status) {
		vals[np++] = f->status;
		kx_buf_addf(&sql, " AND status = $%d", np);
	}
	if (f->severity) {
		vals[np++] = f->severity;
		kx_buf_addf(&sql, " AND severity = $%d", np);
	}
	if (f->open_only)
		kx_buf_adds(&sql, " AND status <> 'resolved'");
	if (f->declared_since != KX_TIME_UNSET) {
		snprintf(since, sizeof(since), "%lld", (long long)f->declared_since);
		vals[np++] = since;
		kx_buf_addf(&sql, " AND declared_at >= $%d", np);
	}
	for (size_t i = 0; i < f->labels.n; i++) {
		vals[np++] = f->labels.v[i].key;
		vals[np++] = f->labels.v[i].value;
		kx_buf_addf(&sql,
			    " AND EXISTS (SELECT 1 FROM incident_labels l WHERE "
			    "l.incident_id = i.id AND l.key = $%d AND l.value = $%d)",
			    np - 1, np);
	}
	snprintf(limit, sizeof(limit), "%d", f->limit > 0 ? f->limit : 100);
	vals[np++] = limit;
	/* COLLATE "C": ids compare bytewise, as in SQLite. */
	if (kx_buf_addf(&sql, " ORDER BY declared_at DESC, id COLLATE \"C\" DESC LIMIT $%d", np)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	res = PQexecParams(t->c->pg, kx_buf_str(&sql), np, NULL, vals, NULL, NULL, 0);
	if ((rc = check(t->c, res, PGRES_TUPLES_OK, err))) {
		res = NULL;
		t->failed = true;
		goto out;
	}
	nrows = PQntuples(res);
	if (nrows && !(out->v = calloc((size_t)nrows, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (int row = 0; row < nrows; row++) {
		if ((rc = read_incident(res, row, &out->v[row], err)))
			goto fail;
		out->n++;
	}
	if ((rc = load_children(t, out->v, out->n, err)))
		goto fail;
	goto out;
fail:
	kx_incident_list_release(out);
out:
	PQclear(res);
	free(vals);
	kx_buf_release(&sql);
	return rc;
}

/* ---- timeline ---- */

static int pg_timeline_add(void *p, const char *incident, struct kx_timeline_entry *e,
			   struct kx_err *err)
{
	static const char sql[] = "INSERT INTO timeline (incident_id, at, author, kind, text) "
				  "VALUES ($1, $2, $3, $4, $5) RETURNING id";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, incident);
	p_int(&pa, e->at);
	p_text(&pa, e->author);
	p_text(&pa, e->kind);
	p_text(&pa, e->text);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	e->id = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_timeline_list(void *p, const char *incident, struct kx_timeline *out,
			    struct kx_err *err)
{
	static const char sql[] = "SELECT id, at, author, kind, text FROM timeline "
				  "WHERE incident_id = $1 ORDER BY at, id";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	p_text(&pa, incident);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v))))
		goto nomem;
	for (int row = 0; row < n; row++) {
		struct kx_timeline_entry *e = &out->v[out->n++];
		e->id = col_int(res, row, 0);
		e->at = col_int(res, row, 1);
		e->author = col_text(res, row, 2);
		e->kind = col_text(res, row, 3);
		e->text = col_text(res, row, 4);
		if (!e->author || !e->kind || !e->text)
			goto nomem;
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	kx_timeline_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

/* ---- action items ---- */

#define ITEM_COLS "number, title, kind, owner, due, status, created_at, done_at"

static void read_item(const PGresult *r, int row, struct kx_action_item *a)
{
	memset(a, 0, sizeof(*a));
	a->number = col_int(r, row, 0);
	a->title = col_text(r, row, 1);
	kx_item_kind_parse(PQgetvalue(r, row, 2), &a->kind, NULL);
	a->owner = col_text(r, row, 3);
	snprintf(a->due, sizeof(a->due), "%s", PQgetvalue(r, row, 4)); /* "" when NULL */
	a->done = strcmp(PQgetvalue(r, row, 5), "done") == 0;
	a->created_at = col_int(r, row, 6);
	a->done_at = col_time(r, row, 7);
}

static bool item_ok(const PGresult *r, int row, const struct kx_action_item *a)
{
	return a->title && (a->owner || PQgetisnull(r, row, 3));
}

static int pg_action_item_add(void *p, const char *incident, struct kx_action_item *a,
			      struct kx_err *err)
{
	/* The incident's row lock makes max(number) + 1 safe against another
	 * daemon adding an item at the same moment: the INSERT, a statement
	 * after the lock was taken, sees every item committed before. */
	static const char lock[] = "SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE";
	static const char sql[] =
		"INSERT INTO action_items (incident_id, number, title, kind, owner, due, status, "
		"created_at, done_at) VALUES ($1, (SELECT coalesce(max(number), 0) + 1 "
		"FROM action_items WHERE incident_id = $1), $2, $3, $4, $5, $6, $7, $8) "
		"RETURNING number";
	struct tx *t = p;
	struct params pl = {0}, pa = {0};
	PGresult *res;
	int rc;

	p_text(&pl, incident);
	if ((rc = run(t, lock, &pl, PGRES_TUPLES_OK, &res, err)))
		return rc;
	PQclear(res);
	p_text(&pa, incident);
	p_text(&pa, a->title);
	p_text(&pa, kx_item_kind_name(a->kind));
	p_text(&pa, a->owner);
	p_text(&pa, a->due[0] ? a->due : NULL);
	p_text(&pa, a->done ? "done" : "open");
	p_int(&pa, a->created_at);
	p_time(&pa, a->done_at);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	a->number = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_action_item_get(void *p, const char *incident, int64_t number,
			      struct kx_action_item *out, struct kx_err *err)
{
	static const char sql[] =
		"SELECT " ITEM_COLS " FROM action_items WHERE incident_id = $1 AND number = $2";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, incident);
	p_int(&pa, number);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return kx_err_set(err, KX_ENOTFOUND, "action item %lld of '%s' not found",
				  (long long)number, incident);
	}
	read_item(res, 0, out);
	if (!item_ok(res, 0, out)) {
		PQclear(res);
		kx_action_item_release(out);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	PQclear(res);
	return 0;
}

static int pg_action_item_update(void *p, const char *incident, const struct kx_action_item *a,
				 struct kx_err *err)
{
	static const char sql[] = "UPDATE action_items SET title=$1, kind=$2, owner=$3, due=$4, "
				  "status=$5, done_at=$6 WHERE incident_id=$7 AND number=$8";
	struct tx *t = p;
	struct params pa = {0};

	p_text(&pa, a->title);
	p_text(&pa, kx_item_kind_name(a->kind));
	p_text(&pa, a->owner);
	p_text(&pa, a->due[0] ? a->due : NULL);
	p_text(&pa, a->done ? "done" : "open");
	p_time(&pa, a->done_at);
	p_text(&pa, incident);
	p_int(&pa, a->number);
	return run_cmd(t, sql, &pa, err);
}

static int pg_action_item_list(void *p, const char *incident, struct kx_action_items *out,
			       struct kx_err *err)
{
	static const char sql[] =
		"SELECT " ITEM_COLS " FROM action_items WHERE incident_id = $1 ORDER BY number";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	p_text(&pa, incident);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v))))
		goto nomem;
	for (int row = 0; row < n; row++) {
		read_item(res, row, &out->v[out->n++]);
		if (!item_ok(res, row, &out->v[row]))
			goto nomem;
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	kx_action_items_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

/* ---- tokens ---- */

static int pg_token_count(void *p, int64_t *n, struct kx_err *err)
{
	/* Counting in a write transaction is the bootstrap's "is there any
	 * token yet?": the lock (which plain reads pass) makes two daemons
	 * starting together create one admin token, not two, as SQLite's
	 * single writer does. */
	static const char lock[] = "LOCK TABLE tokens IN EXCLUSIVE MODE";
	static const char sql[] = "SELECT count(*) FROM tokens";
	struct tx *t = p;
	PGresult *res;
	int rc;

	if (t->write && (rc = run_cmd(t, lock, NULL, err)))
		return rc;
	if ((rc = run(t, sql, NULL, PGRES_TUPLES_OK, &res, err)))
		return rc;
	*n = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* bytea as a text parameter: "\x" and lowercase hex. */
static void hash_param(const uint8_t hash[KX_HASH_LEN], char out[2 * KX_HASH_LEN + 3])
{
	out[0] = '\\';
	out[1] = 'x';
	kx_hex(hash, KX_HASH_LEN, out + 2);
}

static int pg_token_insert(void *p, const struct kx_token *tok, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO tokens (id, hash, name, role, created_by, "
				  "created_at, revoked_at, automation) "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
	static const char sql_labels[] =
		"INSERT INTO token_labels (token_id, key, value) "
		"SELECT $1::text, k, v FROM unnest($2::text[], $3::text[]) AS u(k, v)";
	struct tx *t = p;
	struct params pa = {0}, pl = {0};
	char hex[2 * KX_HASH_LEN + 3];
	struct arr keys, values;
	int rc;

	hash_param(tok->hash, hex);
	p_text(&pa, tok->id);
	p_text(&pa, hex);
	p_text(&pa, tok->name);
	p_text(&pa, kx_access_name(tok->role));
	p_text(&pa, tok->created_by);
	p_int(&pa, tok->created_at);
	p_time(&pa, tok->revoked_at);
	p_text(&pa, tok->automation ? "true" : "false");
	if ((rc = run_cmd(t, sql, &pa, err)) || !tok->scope.n)
		return rc;
	arr_start(&keys);
	arr_start(&values);
	for (size_t i = 0; i < tok->scope.n; i++) {
		arr_add(&keys, tok->scope.v[i].key);
		arr_add(&values, tok->scope.v[i].value);
	}
	if (!(rc = arr_end(&keys, err)) && !(rc = arr_end(&values, err))) {
		p_text(&pl, tok->id);
		p_text(&pl, kx_buf_str(&keys.b));
		p_text(&pl, kx_buf_str(&values.b));
		rc = run_cmd(t, sql_labels, &pl, err);
	}
	kx_buf_release(&keys.b);
	kx_buf_release(&values.b);
	return rc;
}

#define TOKEN_COLS "id, hash, name, role, created_by, created_at, revoked_at, automation"

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_token(const PGresult *r, int row, struct kx_token *tok, struct kx_err *err)
{
	const char *h = PQgetvalue(r, row, 1);
	kx_token_init(tok);
	snprintf(tok->id, sizeof(tok->id), "%s", PQgetvalue(r, row, 0));
	/* bytea comes back as "\x" and hex (bytea_output = hex, the default
	 * since PostgreSQL 9.0). */
	if (h[0] == '\\' && h[1] == 'x' && strlen(h + 2) == 2 * KX_HASH_LEN) {
		for (size_t i = 0; i < KX_HASH_LEN; i++) {
			int hi = unhex(h[2 + 2 * i]), lo = unhex(h[3 + 2 * i]);
			if (hi < 0 || lo < 0)
				break;
			tok->hash[i] = (uint8_t)(hi << 4 | lo);
		}
	}
	tok->name = col_text(r, row, 2);
	kx_access_parse(PQgetvalue(r, row, 3), &tok->role, NULL);
	tok->created_by = col_text(r, row, 4);
	tok->created_at = col_int(r, row, 5);
	tok->revoked_at = col_time(r, row, 6);
	tok->automation = col_bool(r, row, 7);
	if (!tok->name || (!tok->created_by && !PQgetisnull(r, row, 4)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

/* Loads the scopes of toks[0..n) (one statement: for one token, or all). */
static int load_scopes(struct tx *t, struct kx_token *toks, size_t n, struct kx_err *err)
{
	static const char sql_one[] = "SELECT token_id, key, value FROM token_labels "
				      "WHERE token_id = $1";
	static const char sql_all[] = "SELECT token_id, key, value FROM token_labels";
	struct params pa = {0};
	struct ref *refs;
	PGresult *res;
	int rc;

	if (!n)
		return 0;
	if (!(refs = malloc(n * sizeof(*refs))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		refs[i] = (struct ref){toks[i].id, i};
	qsort(refs, n, sizeof(*refs), ref_cmp);
	if (n == 1)
		p_text(&pa, toks[0].id);
	if ((rc = run(t, n == 1 ? sql_one : sql_all, &pa, PGRES_TUPLES_OK, &res, err))) {
		free(refs);
		return rc;
	}
	for (int row = 0; row < PQntuples(res) && !rc; row++) {
		long at = find_ref(refs, n, PQgetvalue(res, row, 0));
		if (at >= 0 && kx_labels_set(&toks[at].scope, PQgetvalue(res, row, 1),
					     PQgetvalue(res, row, 2), NULL))
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	PQclear(res);
	free(refs);
	return rc;
}

static int token_one(struct tx *t, const char *sql, const char *param, struct kx_token *out,
		     const char *what, struct kx_err *err)
{
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, param);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return kx_err_set(err, KX_ENOTFOUND, "token %s not found", what);
	}
	rc = read_token(res, 0, out, err);
	PQclear(res);
	if (!rc)
		rc = load_scopes(t, out, 1, err);
	if (rc)
		kx_token_release(out);
	return rc;
}

static int pg_token_by_hash(void *p, const uint8_t hash[KX_HASH_LEN], struct kx_token *out,
			    struct kx_err *err)
{
	static const char sql[] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1";
	char hex[2 * KX_HASH_LEN + 3];
	hash_param(hash, hex);
	return token_one(p, sql, hex, out, "", err);
}

static int pg_token_get(void *p, const char *id, struct kx_token *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = $1";
	return token_one(p, sql, id, out, id, err);
}

static int pg_token_list(void *p, struct kx_tokens *out, struct kx_err *err)
{
	static const char sql[] =
		"SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, id COLLATE \"C\"";
	struct tx *t = p;
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	if ((rc = run(t, sql, NULL, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto fail;
	}
	for (int row = 0; row < n; row++) {
		out->n++;
		if ((rc = read_token(res, row, &out->v[row], err)))
			goto fail;
	}
	PQclear(res);
	if ((rc = load_scopes(t, out->v, out->n, err)))
		kx_tokens_release(out);
	return rc;
fail:
	PQclear(res);
	kx_tokens_release(out);
	return rc;
}

static int pg_token_revoke(void *p, const char *id, kx_ms at, struct kx_err *err)
{
	static const char sql[] =
		"UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
	struct tx *t = p;
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_int(&pa, at);
	p_text(&pa, id);
	if ((rc = run_count(t, sql, &pa, &n, err)))
		return rc;
	if (n == 1)
		return 0;
	/* Nothing changed: already revoked, or no such token (KX_ENOTFOUND,
	 * as store.h and the SQLite backend have it). */
	{
		static const char exists[] = "SELECT 1 FROM tokens WHERE id = $1";
		struct params pe = {0};
		PGresult *res;
		bool found;
		p_text(&pe, id);
		if ((rc = run(t, exists, &pe, PGRES_TUPLES_OK, &res, err)))
			return rc;
		found = PQntuples(res) > 0;
		PQclear(res);
		if (!found)
			return kx_err_set(err, KX_ENOTFOUND, "token %.64s not found", id);
	}
	return kx_err_set(err, KX_ECONFLICT, "token '%s' is already revoked", id);
}

/* ---- switches, caps, approvals (core/guard.h) ---- */

/* A ramp as five parameters (start, end, window, floor, peak): all NULL
 * when there is none. */
static void p_ramp(struct params *p, const struct kx_gate_ramp *r)
{
	if (r->start == KX_TIME_UNSET) {
		for (int k = 0; k < 5; k++)
			p_text(p, NULL);
		return;
	}
	p_int(p, r->start);
	p_time(p, r->end);
	p_int(p, r->window);
	p_int(p, r->floor);
	p_int(p, r->peak);
}

#define SWITCH_COLS                                                                            \
	"id, selector, mode, reason, set_by, set_at, expires_at, incident_id, ramp_start, "    \
	"ramp_end, ramp_window, ramp_floor, ramp_peak, cleared_at, cleared_by, clear_reason"

/* Reads row `row` of a SWITCH_COLS result into sw (initialised here). */
static int read_switch(const PGresult *r, int row, struct kx_switch *sw, struct kx_err *err)
{
	kx_switch_init(sw);
	snprintf(sw->id, sizeof(sw->id), "%s", PQgetvalue(r, row, 0));
	kx_gate_mode_parse(PQgetvalue(r, row, 2), &sw->mode, NULL);
	sw->set_at = col_int(r, row, 5);
	sw->expires_at = col_time(r, row, 6);
	if (!PQgetisnull(r, row, 8)) {
		sw->ramp.start = col_int(r, row, 8);
		sw->ramp.end = col_time(r, row, 9);
		sw->ramp.window = col_int(r, row, 10);
		sw->ramp.floor = (uint32_t)col_int(r, row, 11);
		sw->ramp.peak = (uint32_t)col_int(r, row, 12);
	}
	sw->cleared_at = col_time(r, row, 13);
	if (!col_opt(r, row, 1, &sw->selector) || !col_opt(r, row, 3, &sw->reason) ||
	    !col_opt(r, row, 4, &sw->set_by) || !col_opt(r, row, 7, &sw->incident) ||
	    !col_opt(r, row, 14, &sw->cleared_by) || !col_opt(r, row, 15, &sw->clear_reason))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_switch_insert(void *p, const struct kx_switch *sw, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO switches (" SWITCH_COLS ") VALUES ($1, $2, $3, $4, "
				  "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
	struct params pa = {0};

	p_text(&pa, sw->id);
	p_text(&pa, sw->selector ? sw->selector : "");
	p_text(&pa, kx_gate_mode_name(sw->mode));
	p_text(&pa, sw->reason);
	p_text(&pa, sw->set_by);
	p_time(&pa, sw->set_at);
	p_time(&pa, sw->expires_at);
	p_text(&pa, sw->incident);
	p_ramp(&pa, &sw->ramp);
	p_time(&pa, sw->cleared_at);
	p_text(&pa, sw->cleared_by);
	p_text(&pa, sw->clear_reason);
	return run_cmd(p, sql, &pa, err);
}

static int pg_switch_get(void *p, const char *id, struct kx_switch *out, struct kx_err *err)
{
	/* In a write transaction the row stays locked until commit, as
	 * incident_get does: a change reads, decides and writes alone. */
	static const char sql_lock[] = "SELECT " SWITCH_COLS " FROM switches WHERE id = $1 "
				       "FOR UPDATE";
	static const char sql[] = "SELECT " SWITCH_COLS " FROM switches WHERE id = $1";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, id);
	if ((rc = run(t, t->write ? sql_lock : sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return kx_err_set(err, KX_ENOTFOUND, "switch '%.64s' not found", id);
	}
	rc = read_switch(res, 0, out, err);
	PQclear(res);
	if (rc)
		kx_switch_release(out);
	return rc;
}

static int pg_switch_update(void *p, const struct kx_switch *sw, struct kx_err *err)
{
	static const char sql[] = "UPDATE switches SET mode=$1, reason=$2, expires_at=$3, "
				  "ramp_start=$4, ramp_end=$5, ramp_window=$6, ramp_floor=$7, "
				  "ramp_peak=$8, cleared_at=$9, cleared_by=$10, clear_reason=$11 "
				  "WHERE id=$12";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_text(&pa, kx_gate_mode_name(sw->mode));
	p_text(&pa, sw->reason);
	p_time(&pa, sw->expires_at);
	p_ramp(&pa, &sw->ramp);
	p_time(&pa, sw->cleared_at);
	p_text(&pa, sw->cleared_by);
	p_text(&pa, sw->clear_reason);
	p_text(&pa, sw->id);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "switch '%.64s' not found", sw->id);
	return 0;
}

static int pg_switch_list(void *p, bool all, kx_ms now, struct kx_switches *out,
			  struct kx_err *err)
{
	static const char sql_all[] = "SELECT " SWITCH_COLS " FROM switches "
				      "ORDER BY set_at, id COLLATE \"C\"";
	/* In force: kx_switch_active in SQL. */
	static const char sql_now[] = "SELECT " SWITCH_COLS " FROM switches "
				      "WHERE cleared_at IS NULL "
				      "AND (expires_at IS NULL OR expires_at > $1) "
				      "AND (ramp_start IS NULL OR ramp_end > $1) "
				      "ORDER BY set_at, id COLLATE \"C\"";
	struct params pa = {0};
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	if (!all)
		p_int(&pa, now);
	if ((rc = run(p, all ? sql_all : sql_now, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (int row = 0; row < n && !rc; row++) {
		out->n++;
		rc = read_switch(res, row, &out->v[row], err);
	}
out:
	PQclear(res);
	if (rc)
		kx_switches_release(out);
	return rc;
}

static int pg_cap_put(void *p, const struct kx_cap *c, bool *created, struct kx_err *err)
{
	/* xmax is 0 on a row this statement inserted, the updater's id on
	 * one it replaced: one statement, so no race between two puts. */
	static const char sql[] = "INSERT INTO caps (id, spec, set_by, set_at) "
				  "VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET "
				  "spec = excluded.spec, set_by = excluded.set_by, "
				  "set_at = excluded.set_at RETURNING (xmax = 0)";
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, c->id);
	p_text(&pa, c->spec);
	p_text(&pa, c->set_by);
	p_time(&pa, c->set_at);
	if ((rc = run(p, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) != 1)
		rc = kx_err_set(err, KX_ESTORE,
				"database error: cap '%.64s' was neither added nor replaced", c->id);
	else
		*created = col_bool(res, 0, 0);
	PQclear(res);
	return rc;
}

static int pg_cap_delete(void *p, const char *id, struct kx_err *err)
{
	static const char sql[] = "DELETE FROM caps WHERE id = $1";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_text(&pa, id);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "cap '%.64s' not found", id);
	return 0;
}

static int pg_cap_list(void *p, struct kx_caps *out, struct kx_err *err)
{
	static const char sql[] = "SELECT id, spec, set_by, set_at FROM caps "
				  "ORDER BY id COLLATE \"C\"";
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	if ((rc = run(p, sql, NULL, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v))))
		goto nomem;
	for (int row = 0; row < n; row++) {
		struct kx_cap *c = &out->v[out->n++];
		kx_cap_init(c);
		c->set_at = col_int(res, row, 3);
		if (!col_opt(res, row, 0, &c->id) || !col_opt(res, row, 1, &c->spec) ||
		    !col_opt(res, row, 2, &c->set_by))
			goto nomem;
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	kx_caps_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

#define APPROVAL_COLS_BASE                                                                     \
	"id, switch_id, labels, idempotency_key, read_only, requested_by, requested_at, "      \
	"expires_at, status, decided_by, decided_at, note"
#define APPROVAL_COLS                                                                          \
	"id, switch_id, labels::text, idempotency_key, read_only, requested_by, "              \
	"requested_at, expires_at, status, decided_by, decided_at, note"

/* Reads row `row` of an APPROVAL_COLS result into a (initialised here). */
static int read_approval(const PGresult *r, int row, struct kx_approval *a, struct kx_err *err)
{
	kx_approval_init(a);
	snprintf(a->id, sizeof(a->id), "%s", PQgetvalue(r, row, 0));
	a->read_only = col_bool(r, row, 4);
	a->requested_at = col_int(r, row, 6);
	a->expires_at = col_time(r, row, 7);
	kx_approval_status_parse(PQgetvalue(r, row, 8), &a->status, NULL);
	a->decided_at = col_time(r, row, 10);
	if (!col_opt(r, row, 1, &a->switch_id) || !col_opt(r, row, 3, &a->idempotency_key) ||
	    !col_opt(r, row, 5, &a->requested_by) || !col_opt(r, row, 9, &a->decided_by) ||
	    !col_opt(r, row, 11, &a->note))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (PQgetisnull(r, row, 2))
		return 0;
	return kx_audit_labels_parse(PQgetvalue(r, row, 2), &a->labels, err);
}

/* Runs sql; the one row it gives is read into out, none is KX_ENOTFOUND
 * "approval request WHAT not found". */
static int approval_one(struct tx *t, const char *sql, const struct params *pa,
			struct kx_approval *out, const char *what, struct kx_err *err)
{
	PGresult *res;
	int rc;

	if ((rc = run(t, sql, pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return kx_err_set(err, KX_ENOTFOUND, "approval request %s not found", what);
	}
	rc = read_approval(res, 0, out, err);
	PQclear(res);
	if (rc)
		kx_approval_release(out);
	return rc;
}

static int pg_approval_insert(void *p, const struct kx_approval *a, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO approvals (" APPROVAL_COLS_BASE ") VALUES ($1, $2, "
				  "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
	struct params pa = {0};
	struct kx_buf labels;
	int rc;

	kx_buf_init(&labels, 64 * 1024);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_text(&pa, a->id);
	p_text(&pa, a->switch_id);
	p_text(&pa, kx_buf_str(&labels));
	p_text(&pa, a->idempotency_key);
	p_text(&pa, a->read_only ? "true" : "false");
	p_text(&pa, a->requested_by);
	p_time(&pa, a->requested_at);
	p_time(&pa, a->expires_at);
	p_text(&pa, kx_approval_status_name(a->status));
	p_text(&pa, a->decided_by);
	p_time(&pa, a->decided_at);
	p_text(&pa, a->note);
	rc = run_cmd(p, sql, &pa, err);
	kx_buf_release(&labels);
	return rc;
}

static int pg_approval_get(void *p, const char *id, struct kx_approval *out,
			   struct kx_err *err)
{
	/* Locked in a write transaction, as switch_get: one decision at a time. */
	static const char sql_lock[] = "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1 "
				       "FOR UPDATE";
	static const char sql[] = "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1";
	struct tx *t = p;
	struct params pa = {0};
	char what[96];

	p_text(&pa, id);
	snprintf(what, sizeof(what), "'%.64s'", id);
	return approval_one(t, t->write ? sql_lock : sql, &pa, out, what, err);
}

static int pg_approval_pending_by_key(void *p, const char *switch_id, const char *key,
				      kx_ms now, struct kx_approval *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " APPROVAL_COLS " FROM approvals WHERE switch_id = $1 "
				  "AND idempotency_key = $2 AND status = 'pending' "
				  "AND (expires_at IS NULL OR expires_at > $3) "
				  "ORDER BY requested_at DESC, id COLLATE \"C\" DESC LIMIT 1";
	struct params pa = {0};

	if (!switch_id || !key)
		return kx_err_set(err, KX_ENOTFOUND, "approval request for that key not found");
	p_text(&pa, switch_id);
	p_text(&pa, key);
	p_int(&pa, now);
	return approval_one(p, sql, &pa, out, "for that key", err);
}

static int pg_approval_update(void *p, const struct kx_approval *a, struct kx_err *err)
{
	static const char sql[] = "UPDATE approvals SET status=$1, decided_by=$2, decided_at=$3, "
				  "note=$4 WHERE id=$5";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_text(&pa, kx_approval_status_name(a->status));
	p_text(&pa, a->decided_by);
	p_time(&pa, a->decided_at);
	p_text(&pa, a->note);
	p_text(&pa, a->id);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "approval request '%.64s' not found", a->id);
	return 0;
}

static int pg_approval_list(void *p, const struct kx_approval_filter *f,
			    struct kx_approvals *out, struct kx_err *err)
{
	static const char sql_all[] = "SELECT " APPROVAL_COLS " FROM approvals "
				      "ORDER BY requested_at DESC, id COLLATE \"C\" DESC LIMIT $1";
	static const char sql_pending[] = "SELECT " APPROVAL_COLS " FROM approvals "
					  "WHERE status = 'pending' "
					  "AND (expires_at IS NULL OR expires_at > $2) "
					  "ORDER BY requested_at DESC, id COLLATE \"C\" DESC LIMIT $1";
	struct params pa = {0};
	PGresult *res;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	p_int(&pa, f->limit > 0 ? f->limit : 100);
	if (f->pending_only)
		p_int(&pa, f->now);
	if ((rc = run(p, f->pending_only ? sql_pending : sql_all, &pa, PGRES_TUPLES_OK, &res,
		      err)))
		return rc;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (int row = 0; row < n && !rc; row++) {
		out->n++;
		rc = read_approval(res, row, &out->v[row], err);
	}
out:
	PQclear(res);
	if (rc)
		kx_approvals_release(out);
	return rc;
}

/* ---- audit ---- */

/* pg_advisory_xact_lock key that serialises audit appends ("klaxonAU"):
 * held from reading the chain head to the end of the transaction, so two
 * daemons never link two events after the same head. */
#define AUDIT_LOCK_KEY "7740669029436506453"

#define AUDIT_COLS_BASE                                                                        \
	"seq, at, actor, client, account, platform, lane, action, target, content_hash, "     \
	"outcome, trace_id, artifact_url, idempotency_key, "
#define AUDIT_COLS AUDIT_COLS_BASE "labels::text, prev_hash, hash"

/* Events per INSERT of an append: each INSERT takes its rows as one array
 * per column (unnest), so a batch costs one round trip per AUDIT_CHUNK
 * events instead of one per event. */
#define AUDIT_CHUNK 1000
/* Columns of an INSERT: seq, at, the KX_AUDIT_NFIELDS fields, labels,
 * prev_hash, hash. */
#define AUDIT_NCOLS (KX_AUDIT_NFIELDS + 5)

/* arr_add for a value that may be SQL NULL (an unquoted NULL element),
 * copying runs of plain characters at once: audit appends put every
 * field of up to AUDIT_CHUNK events through here. */
static void arr_add_opt(struct arr *a, const char *s)
{
	if (!s) {
		if ((a->n++ && kx_buf_addc(&a->b, ',')) || kx_buf_adds(&a->b, "NULL"))
			a->bad = true;
		return;
	}
	if ((a->n++ && kx_buf_addc(&a->b, ',')) || kx_buf_addc(&a->b, '"'))
		a->bad = true;
	while (*s && !a->bad) {
		size_t run = strcspn(s, "\"\\");
		if (kx_buf_add(&a->b, s, run))
			a->bad = true;
		s += run;
		if (*s && (kx_buf_addc(&a->b, '\\') || kx_buf_addc(&a->b, *s++)))
			a->bad = true;
	}
	if (kx_buf_addc(&a->b, '"'))
		a->bad = true;
}

static int pg_audit_append(void *p, struct kx_audit_event *ev, size_t n, struct kx_err *err)
{
	static const char lock[] = "SELECT pg_advisory_xact_lock(" AUDIT_LOCK_KEY ")";
	static const char head[] = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";
	/* Row i of the arrays is event i; the values are the same text as a
	 * one-row INSERT would send, parsed by the same input functions. */
	static const char ins[] =
		"INSERT INTO audit_events (" AUDIT_COLS_BASE "labels, prev_hash, hash) "
		"SELECT u.seq, u.at, u.actor, u.client, u.account, u.platform, u.lane, u.action, "
		"u.target, u.content_hash, u.outcome, u.trace_id, u.artifact_url, "
		"u.idempotency_key, u.labels, decode(u.prev_hash, 'hex'), decode(u.hash, 'hex') "
		"FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
		"$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], "
		"$12::text[], $13::text[], $14::text[], $15::jsonb[], $16::text[], $17::text[]) "
		"AS u(seq, at, actor, client, account, platform, lane, action, target, "
		"content_hash, outcome, trace_id, artifact_url, idempotency_key, labels, "
		"prev_hash, hash)";
	struct tx *t = p;
	uint8_t last[KX_HASH_LEN];
	struct kx_buf labels;
	bool linked = false;
	int64_t seq = 0;
	PGresult *res;
	int rc;

	if (!t->write)
		return kx_err_set(err, KX_ESTORE, "database error: audit append in a read transaction");
	/* READ COMMITTED: the head is read by a statement that starts after
	 * the lock is granted, so it sees every append committed before. */
	if ((rc = run(t, lock, NULL, PGRES_TUPLES_OK, &res, err)))
		return rc;
	PQclear(res);
	if ((rc = run(t, head, NULL, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 1) {
		const char *h = PQgetvalue(res, 0, 1);
		seq = col_int(res, 0, 0);
		linked = strncmp(h, "\\x", 2) == 0 && kx_unhex(h + 2, last, KX_HASH_LEN) == 0;
	}
	PQclear(res);
	if (seq > 0 && !linked)
		return kx_err_set(err, KX_ESTORE, "database error: the audit chain head has no hash");
	kx_buf_init(&labels, 64 * 1024);
	for (size_t from = 0; from < n && !rc; from += AUDIT_CHUNK) {
		size_t to = n - from > AUDIT_CHUNK ? from + AUDIT_CHUNK : n;
		struct arr cols[AUDIT_NCOLS];
		struct params pa = {0};

		for (int c = 0; c < AUDIT_NCOLS; c++)
			arr_start(&cols[c]);
		for (size_t i = from; i < to && !rc; i++) {
			struct kx_audit_event *e = &ev[i];
			char num[24], hex[2 * KX_HASH_LEN + 1];

			e->seq = ++seq;
			kx_buf_clear(&labels);
			if (kx_audit_chain(e, linked ? last : NULL) ||
			    (e->labels.n && kx_audit_labels_json(&e->labels, &labels))) {
				rc = kx_err_set(err, KX_ENOMEM, "out of memory");
				break;
			}
			memcpy(last, e->hash, KX_HASH_LEN);
			linked = true;
			snprintf(num, sizeof(num), "%lld", (long long)e->seq);
			arr_add_opt(&cols[0], num);
			snprintf(num, sizeof(num), "%lld", (long long)e->at);
			arr_add_opt(&cols[1], num);
			for (size_t k = 0; k < KX_AUDIT_NFIELDS; k++)
				arr_add_opt(&cols[k + 2], kx_audit_field_value(e, k));
			arr_add_opt(&cols[KX_AUDIT_NFIELDS + 2],
				    e->labels.n ? kx_buf_str(&labels) : NULL);
			kx_hex(e->prev_hash, KX_HASH_LEN, hex);
			arr_add_opt(&cols[KX_AUDIT_NFIELDS + 3], hex);
			kx_hex(e->hash, KX_HASH_LEN, hex);
			arr_add_opt(&cols[KX_AUDIT_NFIELDS + 4], hex);
		}
		for (int c = 0; c < AUDIT_NCOLS; c++) {
			int end = arr_end(&cols[c], rc ? NULL : err);
			if (!rc)
				rc = end;
			p_text(&pa, kx_buf_str(&cols[c].b));
		}
		if (!rc)
			rc = run_cmd(t, ins, &pa, err);
		for (int c = 0; c < AUDIT_NCOLS; c++)
			kx_buf_release(&cols[c].b);
	}
	kx_buf_release(&labels);
	return rc;
}

/* Reads row `row` of an AUDIT_COLS result into e (initialised here). */
static int read_audit(const PGresult *r, int row, struct kx_audit_event *e, struct kx_err *err)
{
	const char *h;
	int rc;

	kx_audit_event_init(e);
	e->seq = col_int(r, row, 0);
	e->at = col_int(r, row, 1);
	for (size_t k = 0; k < KX_AUDIT_NFIELDS; k++) {
		int col = (int)k + 2;
		if (!PQgetisnull(r, row, col) && !(*kx_audit_field(e, k) = col_text(r, row, col)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if (!PQgetisnull(r, row, 14) &&
	    (rc = kx_audit_labels_parse(PQgetvalue(r, row, 14), &e->labels, err)))
		return rc;
	/* bytea as "\x" + hex; anything else (a hand-edited row) stays zero
	 * and verification reports it. */
	h = PQgetvalue(r, row, 15);
	if (strncmp(h, "\\x", 2) != 0 || kx_unhex(h + 2, e->prev_hash, KX_HASH_LEN))
		memset(e->prev_hash, 0, KX_HASH_LEN);
	h = PQgetvalue(r, row, 16);
	if (strncmp(h, "\\x", 2) != 0 || kx_unhex(h + 2, e->hash, KX_HASH_LEN))
		memset(e->hash, 0, KX_HASH_LEN);
	return 0;
}

static int read_audit_rows(const PGresult *res, struct kx_audit_events *out, struct kx_err *err)
{
	int n = PQntuples(res), rc;

	out->v = NULL;
	out->n = 0;
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	for (int row = 0; row < n; row++) {
		out->n++;
		if ((rc = read_audit(res, row, &out->v[row], err))) {
			kx_audit_events_release(out);
			return rc;
		}
	}
	return 0;
}

/* Room for the values of a built audit statement: the filter's (at most
 * 10 + 2 * KX_LABELS_MAX) and the limit. */
#define AUDIT_VALS (12 + 2 * KX_LABELS_MAX)

struct built {
	const char *v[AUDIT_VALS];
	char num[4][24];
	int n, nnum;
};

static void b_int(struct built *b, int64_t x)
{
	snprintf(b->num[b->nnum], sizeof(b->num[0]), "%lld", (long long)x);
	b->v[b->n++] = b->num[b->nnum++];
}

/* Appends the WHERE clause of f to sql with $n placeholders, the values
 * going to b. No value is ever part of the SQL text. */
static int audit_where(struct kx_buf *sql, const struct kx_audit_filter *f, struct built *b)
{
	const char *const cols[] = {"actor", "client", "account", "platform",
				    "lane",  "action", "target"};
	const char *const vals[] = {f->actor, f->client, f->account, f->platform,
				    f->lane,  f->action, f->target};
	int rc = kx_buf_adds(sql, " WHERE true");

	if (f->since != KX_TIME_UNSET) {
		b_int(b, f->since);
		rc |= kx_buf_addf(sql, " AND at >= $%d", b->n);
	}
	if (f->until != KX_TIME_UNSET) {
		b_int(b, f->until);
		rc |= kx_buf_addf(sql, " AND at < $%d", b->n);
	}
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if (!vals[i])
			continue;
		b->v[b->n++] = vals[i];
		rc |= kx_buf_addf(sql, " AND %s = $%d", cols[i], b->n);
	}
	if (f->after_seq > 0) {
		b_int(b, f->after_seq);
		rc |= kx_buf_addf(sql, " AND seq > $%d", b->n);
	}
	for (size_t i = 0; i < f->labels.n && i < KX_LABELS_MAX; i++) {
		b->v[b->n++] = f->labels.v[i].key;
		b->v[b->n++] = f->labels.v[i].value;
		rc |= kx_buf_addf(sql, " AND labels ->> $%d::text = $%d::text", b->n - 1, b->n);
	}
	return rc ? KX_ENOMEM : 0;
}

/* Runs a statement built for one call (not prepared) in t. */
static int run_built(struct tx *t, const struct kx_buf *sql, const struct built *b,
		     PGresult **out, struct kx_err *err)
{
	PGresult *res;
	int rc;

	*out = NULL;
	if (t->failed)
		return kx_err_set(err, KX_ESTORE,
				  "database error: the transaction failed and can only be rolled back");
	res = PQexecParams(t->c->pg, kx_buf_str(sql), b->n, NULL, b->v, NULL, NULL, 0);
	if ((rc = check(t->c, res, PGRES_TUPLES_OK, err))) {
		t->failed = true;
		return rc;
	}
	*out = res;
	return 0;
}

static int pg_audit_query(void *p, const struct kx_audit_filter *f, struct kx_audit_events *out,
			  struct kx_err *err)
{
	struct tx *t = p;
	struct built b = {0};
	struct kx_buf sql;
	PGresult *res = NULL;
	int rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	if (kx_buf_adds(&sql, "SELECT " AUDIT_COLS " FROM audit_events") ||
	    audit_where(&sql, f, &b)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	b_int(&b, f->limit > 0 ? f->limit : 100);
	if (kx_buf_addf(&sql, " ORDER BY seq %s LIMIT $%d", f->oldest_first ? "ASC" : "DESC",
			b.n)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = run_built(t, &sql, &b, &res, err)))
		goto out;
	rc = read_audit_rows(res, out, err);
out:
	PQclear(res);
	kx_buf_release(&sql);
	return rc;
}

static int pg_audit_page(void *p, int64_t after_seq, int limit, struct kx_audit_events *out,
			 struct kx_err *err)
{
	static const char sql[] =
		"SELECT " AUDIT_COLS " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	out->v = NULL;
	out->n = 0;
	p_int(&pa, after_seq);
	p_int(&pa, limit > 0 ? limit : 100);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	rc = read_audit_rows(res, out, err);
	PQclear(res);
	return rc;
}

/* Runs a grouping query: SELECT action, target, content_hash, count,
 * accounts, first_at, last_at … head + WHERE + tail; tail ends in
 * "LIMIT $" and gets the limit's number. */
static int audit_groups(struct tx *t, const char *head, const char *tail,
			const struct kx_audit_filter *f, struct kx_audit_groups *out,
			struct kx_err *err)
{
	struct built b = {0};
	struct kx_buf sql;
	PGresult *res = NULL;
	int rc, n;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	if (kx_buf_adds(&sql, head) || audit_where(&sql, f, &b)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	b_int(&b, f->limit > 0 ? f->limit : 100);
	if (kx_buf_addf(&sql, "%s%d", tail, b.n)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = run_built(t, &sql, &b, &res, err)))
		goto out;
	n = PQntuples(res);
	if (n && !(out->v = calloc((size_t)n, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (int row = 0; row < n; row++) {
		struct kx_audit_group *g = &out->v[out->n++];
		g->action = col_text(res, row, 0);
		g->target = col_text(res, row, 1);
		g->content_hash = col_text(res, row, 2);
		g->count = col_int(res, row, 3);
		g->accounts = col_int(res, row, 4);
		g->first_at = col_int(res, row, 5);
		g->last_at = col_int(res, row, 6);
		if ((!g->action && !PQgetisnull(res, row, 0)) || !g->target ||
		    (!g->content_hash && !PQgetisnull(res, row, 2))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			kx_audit_groups_release(out);
			goto out;
		}
	}
out:
	PQclear(res);
	kx_buf_release(&sql);
	return rc;
}

static int pg_audit_duplicates(void *p, const struct kx_audit_filter *f,
			       struct kx_audit_groups *out, struct kx_err *err)
{
	return audit_groups(p,
			    "SELECT action, target, content_hash, count(*), count(DISTINCT account), "
			    "min(at), max(at) FROM audit_events",
			    " AND target IS NOT NULL GROUP BY action, target, content_hash "
			    "HAVING count(*) > 1 ORDER BY count(*) DESC, min(at), "
			    "target COLLATE \"C\" LIMIT $",
			    f, out, err);
}

static int pg_audit_recipients(void *p, const struct kx_audit_filter *f,
			       struct kx_audit_groups *out, struct kx_err *err)
{
	return audit_groups(p,
			    "SELECT NULL, target, NULL, count(*), count(DISTINCT account), min(at), "
			    "max(at) FROM audit_events",
			    " AND target IS NOT NULL GROUP BY target "
			    "ORDER BY count(*) DESC, target COLLATE \"C\" LIMIT $",
			    f, out, err);
}

/* ---- detection: services, integrations, alerts, change events,
 * heartbeats, silences, the delivery log (core/alert.h, core/notify.h) ---- */

/* Reads every row of res with `read` into a new array of elem bytes per
 * element, stored at vp (a `T **`); *n counts an element once `read` has
 * started on it (`read` initialises it first), so on failure the caller
 * releases the whole list. */
static int read_rows(const PGresult *res, void *vp, size_t *n, size_t elem,
		     int (*read)(const PGresult *, int, void *, struct kx_err *),
		     struct kx_err *err)
{
	int rows = PQntuples(res), rc;
	char *v = NULL;

	if (rows && !(v = calloc((size_t)rows, elem)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	memcpy(vp, &v, sizeof(v));
	for (int row = 0; row < rows; row++) {
		(*n)++;
		if ((rc = read(res, row, v + (size_t)row * elem, err)))
			return rc;
	}
	return 0;
}

/* Runs sql, expected to give one row or none (KX_ENOTFOUND "WHAT not
 * found"); the row is read into out with `read`. The caller initialises
 * out before and releases it on failure. */
static int read_one(struct tx *t, const char *sql, const struct params *pa, void *out,
		    int (*read)(const PGresult *, int, void *, struct kx_err *), const char *what,
		    struct kx_err *err)
{
	PGresult *res;
	int rc;

	if ((rc = run(t, sql, pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (PQntuples(res) == 0)
		rc = kx_err_set(err, KX_ENOTFOUND, "%s not found", what);
	else
		rc = read(res, 0, out, err);
	PQclear(res);
	return rc;
}

/* Runs sql and reads its rows into a list (see read_rows). */
static int read_list(struct tx *t, const char *sql, const struct params *pa, void *vp,
		     size_t *n, size_t elem,
		     int (*read)(const PGresult *, int, void *, struct kx_err *),
		     struct kx_err *err)
{
	PGresult *res;
	int rc;

	if ((rc = run(t, sql, pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	rc = read_rows(res, vp, n, elem, read, err);
	PQclear(res);
	return rc;
}

/* A bytea hash column ("\x" + hex) into out; anything else (a hand-edited
 * row) leaves out zero, which matches no key. */
static void col_hash(const PGresult *r, int row, int col, uint8_t out[KX_HASH_LEN])
{
	const char *h = PQgetvalue(r, row, col);
	if (strncmp(h, "\\x", 2) != 0 || kx_unhex(h + 2, out, KX_HASH_LEN))
		memset(out, 0, KX_HASH_LEN);
}

/* Alert labels from their stored JSON into the empty ls. They follow
 * Prometheus' rules (core/alert.h), which kx_audit_labels_parse's Klaxon
 * rules would refuse, so each is set with kx_alert_label_set. */
static int alert_labels_parse(const char *text, struct kx_labels *ls, struct kx_err *err)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *k;
	int rc = 0;

	if (!json_is_object(j)) {
		json_decref(j);
		return kx_err_set(err, KX_ESTORE,
				  "database error: stored alert labels are not a JSON object");
	}
	json_object_foreach(j, k, v) {
		if (!json_is_string(v)) {
			rc = kx_err_set(err, KX_ESTORE,
					"database error: stored alert label '%.64s' is not a string",
					k);
			break;
		}
		if ((rc = kx_alert_label_set(ls, k, json_string_value(v), err)))
			break;
	}
	json_decref(j);
	return rc;
}

/* Services */

#define SERVICE_COLS "name, description, labels::text, from_config, created_at"

static int read_service(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_service *s = p;
	kx_service_init(s);
	s->from_config = col_bool(r, row, 3);
	s->created_at = col_time(r, row, 4);
	if (!col_opt(r, row, 0, &s->name) || !col_opt(r, row, 1, &s->description))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return kx_audit_labels_parse(PQgetvalue(r, row, 2), &s->labels, err);
}

static int pg_service_put(void *p, const struct kx_service *s, bool *created,
			  struct kx_err *err)
{
	/* xmax = 0: inserted by this statement (as in cap_put). created_at
	 * is the first put's. */
	static const char sql[] = "INSERT INTO services (name, description, labels, from_config, "
				  "created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO "
				  "UPDATE SET description = excluded.description, "
				  "labels = excluded.labels, from_config = excluded.from_config "
				  "RETURNING (xmax = 0)";
	struct params pa = {0};
	struct kx_buf labels;
	PGresult *res;
	int rc;

	kx_buf_init(&labels, 64 * 1024);
	if (kx_audit_labels_json(&s->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_text(&pa, s->name);
	p_text(&pa, s->description);
	p_text(&pa, kx_buf_str(&labels));
	p_text(&pa, s->from_config ? "true" : "false");
	p_time(&pa, s->created_at);
	rc = run(p, sql, &pa, PGRES_TUPLES_OK, &res, err);
	kx_buf_release(&labels);
	if (rc)
		return rc;
	if (PQntuples(res) != 1)
		rc = kx_err_set(err, KX_ESTORE,
				"database error: service '%.64s' was neither added nor replaced",
				s->name);
	else if (created)
		*created = col_bool(res, 0, 0);
	PQclear(res);
	return rc;
}

static int pg_service_get(void *p, const char *name, struct kx_service *out,
			  struct kx_err *err)
{
	static const char sql[] = "SELECT " SERVICE_COLS " FROM services WHERE name = $1";
	struct params pa = {0};
	char what[96];
	int rc;

	p_text(&pa, name);
	snprintf(what, sizeof(what), "service '%.64s'", name);
	kx_service_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_service, what, err)))
		kx_service_release(out);
	return rc;
}

static int pg_service_list(void *p, struct kx_services *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " SERVICE_COLS " FROM services "
				  "ORDER BY name COLLATE \"C\"";
	int rc;

	out->v = NULL;
	out->n = 0;
	if ((rc = read_list(p, sql, NULL, &out->v, &out->n, sizeof(*out->v), read_service, err)))
		kx_services_release(out);
	return rc;
}

/* Integrations */

#define INTEGRATION_COLS "id, hash, service, source, name, created_by, created_at, revoked_at"

static int read_integration(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_integration *i = p;
	kx_integration_init(i);
	snprintf(i->id, sizeof(i->id), "%s", PQgetvalue(r, row, 0));
	col_hash(r, row, 1, i->hash);
	i->source = (enum kx_alert_source)col_int(r, row, 3);
	i->created_at = col_time(r, row, 6);
	i->revoked_at = col_time(r, row, 7);
	if (!col_opt(r, row, 2, &i->service) || !col_opt(r, row, 4, &i->name) ||
	    !col_opt(r, row, 5, &i->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_integration_insert(void *p, const struct kx_integration *i, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO integrations (" INTEGRATION_COLS ") "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
	struct params pa = {0};
	char hex[2 * KX_HASH_LEN + 3];

	hash_param(i->hash, hex);
	p_text(&pa, i->id);
	p_text(&pa, hex);
	p_text(&pa, i->service);
	p_int(&pa, i->source);
	p_text(&pa, i->name);
	p_text(&pa, i->created_by);
	p_time(&pa, i->created_at);
	p_time(&pa, i->revoked_at);
	return run_cmd(p, sql, &pa, err);
}

static int pg_integration_get(void *p, const char *id, struct kx_integration *out,
			      struct kx_err *err)
{
	static const char sql[] = "SELECT " INTEGRATION_COLS " FROM integrations WHERE id = $1";
	struct params pa = {0};
	char what[96];
	int rc;

	p_text(&pa, id);
	snprintf(what, sizeof(what), "integration '%.64s'", id);
	kx_integration_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_integration, what, err)))
		kx_integration_release(out);
	return rc;
}

static int pg_integration_by_hash(void *p, const uint8_t hash[KX_HASH_LEN],
				  struct kx_integration *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " INTEGRATION_COLS " FROM integrations WHERE hash = $1";
	struct params pa = {0};
	char hex[2 * KX_HASH_LEN + 3];
	int rc;

	hash_param(hash, hex);
	p_text(&pa, hex);
	kx_integration_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_integration, "integration key", err)))
		kx_integration_release(out);
	return rc;
}

static int pg_integration_list(void *p, const char *service, struct kx_integrations *out,
			       struct kx_err *err)
{
	static const char sql_all[] = "SELECT " INTEGRATION_COLS " FROM integrations "
				      "ORDER BY created_at, id COLLATE \"C\"";
	static const char sql_one[] = "SELECT " INTEGRATION_COLS " FROM integrations "
				      "WHERE service = $1 ORDER BY created_at, id COLLATE \"C\"";
	struct params pa = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	if (service)
		p_text(&pa, service);
	if ((rc = read_list(p, service ? sql_one : sql_all, &pa, &out->v, &out->n,
			    sizeof(*out->v), read_integration, err)))
		kx_integrations_release(out);
	return rc;
}

static int pg_integration_revoke(void *p, const char *id, kx_ms at, struct kx_err *err)
{
	static const char sql[] =
		"UPDATE integrations SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
	struct params pa = {0};
	struct kx_integration i;
	int64_t n = 0;
	int rc;

	p_int(&pa, at);
	p_text(&pa, id);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n == 1)
		return 0;
	if ((rc = pg_integration_get(p, id, &i, err)))
		return rc; /* KX_ENOTFOUND for a key that never was */
	kx_integration_release(&i);
	return kx_err_set(err, KX_ECONFLICT, "integration '%.64s' is already revoked", id);
}

/* Alerts */

/* What alert_update rewrites (all but id, service, dedup_key, source and
 * first_seen), in the order p_alert adds them; labels sits between the
 * two halves (read back as text). */
#define ALERT_MUTABLE_A "status, level, summary, source_host, component, grp, class, "
#define ALERT_MUTABLE_B                                                                        \
	"details, severity, route, incident, silenced_by, noise, count, starts_at, "          \
	"last_seen, ends_at, acked_at, acked_by, resolved_at, resolved_by"
#define ALERT_MUTABLE ALERT_MUTABLE_A "labels, " ALERT_MUTABLE_B
#define ALERT_COLS                                                                             \
	"id, service, dedup_key, source, first_seen, " ALERT_MUTABLE_A "labels::text, "       \
	ALERT_MUTABLE_B

/* Adds the ALERT_MUTABLE columns as 22 parameters (shared by insert and
 * update); labels is their JSON text. */
static void p_alert(struct params *p, const struct kx_alert *a, const struct kx_buf *labels)
{
	p_int(p, a->status);
	p_int(p, a->level);
	p_text(p, a->summary);
	p_text(p, a->source_host);
	p_text(p, a->component);
	p_text(p, a->group);
	p_text(p, a->class);
	p_text(p, kx_buf_str(labels));
	p_text(p, a->details ? a->details : "{}"); /* never NULL once stored */
	p_text(p, a->severity);
	p_text(p, a->route);
	p_text(p, a->incident);
	p_text(p, a->silenced_by);
	p_text(p, a->noise ? "true" : "false");
	p_int(p, a->count);
	p_time(p, a->starts_at);
	p_time(p, a->last_seen);
	p_time(p, a->ends_at);
	p_time(p, a->acked_at);
	p_text(p, a->acked_by);
	p_time(p, a->resolved_at);
	p_text(p, a->resolved_by);
}

/* Reads row `row` of an ALERT_COLS result into p, a struct kx_alert
 * (initialised here). */
static int read_alert(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_alert *a = p;
	kx_alert_init(a);
	a->id = col_int(r, row, 0);
	a->source = (enum kx_alert_source)col_int(r, row, 3);
	a->first_seen = col_time(r, row, 4);
	a->status = (enum kx_alert_status)col_int(r, row, 5);
	a->level = (enum kx_alert_level)col_int(r, row, 6);
	a->noise = col_bool(r, row, 18);
	a->count = col_int(r, row, 19);
	a->starts_at = col_time(r, row, 20);
	a->last_seen = col_time(r, row, 21);
	a->ends_at = col_time(r, row, 22);
	a->acked_at = col_time(r, row, 23);
	a->resolved_at = col_time(r, row, 25);
	if (!col_opt(r, row, 1, &a->service) || !col_opt(r, row, 2, &a->dedup_key) ||
	    !col_opt(r, row, 7, &a->summary) || !col_opt(r, row, 8, &a->source_host) ||
	    !col_opt(r, row, 9, &a->component) || !col_opt(r, row, 10, &a->group) ||
	    !col_opt(r, row, 11, &a->class) || !col_opt(r, row, 13, &a->details) ||
	    !col_opt(r, row, 14, &a->severity) || !col_opt(r, row, 15, &a->route) ||
	    !col_opt(r, row, 16, &a->incident) || !col_opt(r, row, 17, &a->silenced_by) ||
	    !col_opt(r, row, 24, &a->acked_by) || !col_opt(r, row, 26, &a->resolved_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return alert_labels_parse(PQgetvalue(r, row, 12), &a->labels, err);
}

static int pg_alert_firing_by_key(void *p, const char *service, const char *dedup_key,
				  struct kx_alert *out, struct kx_err *err)
{
	/* In a write transaction the row stays locked until commit: two
	 * daemons folding events into one alert take turns. status = 0 is
	 * written out, so that the planner picks the partial index. */
	static const char sql_lock[] = "SELECT " ALERT_COLS " FROM alerts WHERE service = $1 "
				       "AND dedup_key = $2 AND status = 0 FOR UPDATE";
	static const char sql[] = "SELECT " ALERT_COLS " FROM alerts WHERE service = $1 "
				  "AND dedup_key = $2 AND status = 0";
	struct tx *t = p;
	struct params pa = {0};
	int rc;

	p_text(&pa, service);
	p_text(&pa, dedup_key);
	kx_alert_init(out);
	if ((rc = read_one(t, t->write ? sql_lock : sql, &pa, out, read_alert,
			   "firing alert for that key", err)))
		kx_alert_release(out);
	return rc;
}

static int pg_alert_insert(void *p, struct kx_alert *a, struct kx_err *err)
{
	static const char sql[] =
		"INSERT INTO alerts (" ALERT_MUTABLE ", service, dedup_key, source, first_seen) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
		"$17, $18, $19, $20, $21, $22, $23, $24, $25, $26) RETURNING id";
	struct params pa = {0};
	struct kx_buf labels;
	PGresult *res;
	int rc;

	kx_buf_init(&labels, KX_BUF_DEFAULT_MAX);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_alert(&pa, a, &labels);
	p_text(&pa, a->service);
	p_text(&pa, a->dedup_key);
	p_int(&pa, a->source);
	p_time(&pa, a->first_seen);
	rc = run(p, sql, &pa, PGRES_TUPLES_OK, &res, err);
	kx_buf_release(&labels);
	if (rc)
		return rc;
	a->id = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_alert_fold(void *p, const struct kx_alert *a, struct kx_err *err)
{
	static const char sql[] =
		"UPDATE alerts SET level=$1, summary=$2, source_host=$3, component=$4, grp=$5, "
		"class=$6, labels=$7, details=$8, severity=$9, route=$10, silenced_by=$11, "
		"count=$12, last_seen=$13, ends_at=$14 WHERE id=$15 AND status=0";
	struct params pa = {0};
	struct kx_buf labels;
	int64_t n = 0;
	int rc;

	kx_buf_init(&labels, KX_BUF_DEFAULT_MAX);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_int(&pa, a->level);
	p_text(&pa, a->summary);
	p_text(&pa, a->source_host);
	p_text(&pa, a->component);
	p_text(&pa, a->group);
	p_text(&pa, a->class);
	p_text(&pa, kx_buf_str(&labels));
	p_text(&pa, a->details ? a->details : "{}");
	p_text(&pa, a->severity);
	p_text(&pa, a->route);
	p_text(&pa, a->silenced_by);
	p_int(&pa, a->count);
	p_time(&pa, a->last_seen);
	p_time(&pa, a->ends_at);
	p_int(&pa, a->id);
	rc = run_count(p, sql, &pa, &n, err);
	kx_buf_release(&labels);
	if (rc)
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "firing alert %lld not found", (long long)a->id);
	return 0;
}

static int pg_alert_update(void *p, const struct kx_alert *a, struct kx_err *err)
{
	static const char sql[] =
		"UPDATE alerts SET status=$1, level=$2, summary=$3, source_host=$4, component=$5, "
		"grp=$6, class=$7, labels=$8, details=$9, severity=$10, route=$11, incident=$12, "
		"silenced_by=$13, noise=$14, count=$15, starts_at=$16, last_seen=$17, ends_at=$18, "
		"acked_at=$19, acked_by=$20, resolved_at=$21, resolved_by=$22 WHERE id=$23";
	struct params pa = {0};
	struct kx_buf labels;
	int64_t n = 0;
	int rc;

	kx_buf_init(&labels, KX_BUF_DEFAULT_MAX);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_alert(&pa, a, &labels);
	p_int(&pa, a->id);
	rc = run_count(p, sql, &pa, &n, err);
	kx_buf_release(&labels);
	if (rc)
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "alert %lld not found", (long long)a->id);
	return 0;
}

static int pg_alert_get(void *p, int64_t id, struct kx_alert *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " ALERT_COLS " FROM alerts WHERE id = $1";
	struct params pa = {0};
	char what[48];
	int rc;

	p_int(&pa, id);
	snprintf(what, sizeof(what), "alert %lld", (long long)id);
	kx_alert_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_alert, what, err)))
		kx_alert_release(out);
	return rc;
}

static int pg_alert_list(void *p, const struct kx_alert_filter *f, struct kx_alerts *out,
			 struct kx_err *err)
{
	struct tx *t = p;
	struct built b = {0};
	struct kx_buf sql;
	PGresult *res = NULL;
	int rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	rc = kx_buf_adds(&sql, "SELECT " ALERT_COLS " FROM alerts WHERE true");
	if (f->service) {
		b.v[b.n++] = f->service;
		rc |= kx_buf_addf(&sql, " AND service = $%d", b.n);
	}
	if (f->status >= 0) {
		b_int(&b, f->status);
		rc |= kx_buf_addf(&sql, " AND status = $%d", b.n);
	}
	if (f->incident) {
		b.v[b.n++] = f->incident;
		rc |= kx_buf_addf(&sql, " AND incident = $%d", b.n);
	}
	if (f->since != KX_TIME_UNSET) {
		b_int(&b, f->since);
		rc |= kx_buf_addf(&sql, " AND last_seen >= $%d", b.n);
	}
	if (f->before_id > 0) {
		b_int(&b, f->before_id);
		rc |= kx_buf_addf(&sql, " AND id < $%d", b.n);
	}
	b_int(&b, f->limit > 0 ? f->limit : 100);
	if (rc || kx_buf_addf(&sql, " ORDER BY id DESC LIMIT $%d", b.n)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = run_built(t, &sql, &b, &res, err)))
		goto out;
	if ((rc = read_rows(res, &out->v, &out->n, sizeof(*out->v), read_alert, err)))
		kx_alerts_release(out);
out:
	PQclear(res);
	kx_buf_release(&sql);
	return rc;
}

static int pg_alert_count_firing(void *p, const char *incident, int64_t *n, struct kx_err *err)
{
	static const char sql[] = "SELECT count(*) FROM alerts WHERE incident = $1 AND status = 0";
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, incident);
	if ((rc = run(p, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	*n = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_alert_expired(void *p, kx_ms now, int limit, struct kx_alerts *out,
			    struct kx_err *err)
{
	static const char sql[] = "SELECT " ALERT_COLS " FROM alerts WHERE status = 0 "
				  "AND ends_at IS NOT NULL AND ends_at <= $1 "
				  "ORDER BY ends_at, id LIMIT $2";
	struct params pa = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	p_int(&pa, now);
	p_int(&pa, limit > 0 ? limit : 100);
	if ((rc = read_list(p, sql, &pa, &out->v, &out->n, sizeof(*out->v), read_alert, err)))
		kx_alerts_release(out);
	return rc;
}

/* Change events */

#define CHANGE_COLS "id, service, summary, source_host, details, at, received_at"

static int read_change(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_change_event *c = p;
	kx_change_event_init(c);
	c->id = col_int(r, row, 0);
	c->at = col_time(r, row, 5);
	c->received_at = col_time(r, row, 6);
	if (!col_opt(r, row, 1, &c->service) || !col_opt(r, row, 2, &c->summary) ||
	    !col_opt(r, row, 3, &c->source_host) || !col_opt(r, row, 4, &c->details))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_change_insert(void *p, struct kx_change_event *c, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO change_events (service, summary, source_host, "
				  "details, at, received_at) VALUES ($1, $2, $3, $4, $5, $6) "
				  "RETURNING id";
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, c->service);
	p_text(&pa, c->summary);
	p_text(&pa, c->source_host);
	p_text(&pa, c->details);
	p_time(&pa, c->at);
	p_time(&pa, c->received_at);
	if ((rc = run(p, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	c->id = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_change_list(void *p, const char *service, int limit, struct kx_change_events *out,
			  struct kx_err *err)
{
	static const char sql_all[] = "SELECT " CHANGE_COLS " FROM change_events "
				      "ORDER BY at DESC, id DESC LIMIT $1";
	static const char sql_one[] = "SELECT " CHANGE_COLS " FROM change_events "
				      "WHERE service = $2 ORDER BY at DESC, id DESC LIMIT $1";
	struct params pa = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	p_int(&pa, limit > 0 ? limit : 100);
	if (service)
		p_text(&pa, service);
	if ((rc = read_list(p, service ? sql_one : sql_all, &pa, &out->v, &out->n,
			    sizeof(*out->v), read_change, err)))
		kx_change_events_release(out);
	return rc;
}

/* Heartbeats */

#define HEARTBEAT_COLS                                                                         \
	"name, service, hash, interval_ms, grace_ms, level, state, last_ping, due_at, "        \
	"created_by, created_at"

static int read_heartbeat(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_heartbeat *h = p;
	kx_heartbeat_init(h);
	col_hash(r, row, 2, h->hash);
	h->interval = col_int(r, row, 3);
	h->grace = col_int(r, row, 4);
	h->level = (enum kx_alert_level)col_int(r, row, 5);
	h->state = (enum kx_heartbeat_state)col_int(r, row, 6);
	h->last_ping = col_time(r, row, 7);
	h->due_at = col_time(r, row, 8);
	h->created_at = col_time(r, row, 10);
	if (!col_opt(r, row, 0, &h->name) || !col_opt(r, row, 1, &h->service) ||
	    !col_opt(r, row, 9, &h->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_heartbeat_insert(void *p, const struct kx_heartbeat *h, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO heartbeats (" HEARTBEAT_COLS ") VALUES ($1, $2, "
				  "$3, $4, $5, $6, $7, $8, $9, $10, $11)";
	struct params pa = {0};
	char hex[2 * KX_HASH_LEN + 3];

	hash_param(h->hash, hex);
	p_text(&pa, h->name);
	p_text(&pa, h->service);
	p_text(&pa, hex);
	p_int(&pa, h->interval);
	p_int(&pa, h->grace);
	p_int(&pa, h->level);
	p_int(&pa, h->state);
	p_time(&pa, h->last_ping);
	p_time(&pa, h->due_at);
	p_text(&pa, h->created_by);
	p_time(&pa, h->created_at);
	return run_cmd(p, sql, &pa, err);
}

static int pg_heartbeat_get(void *p, const char *name, struct kx_heartbeat *out,
			    struct kx_err *err)
{
	static const char sql[] = "SELECT " HEARTBEAT_COLS " FROM heartbeats WHERE name = $1";
	struct params pa = {0};
	char what[96];
	int rc;

	p_text(&pa, name);
	snprintf(what, sizeof(what), "heartbeat '%.64s'", name);
	kx_heartbeat_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_heartbeat, what, err)))
		kx_heartbeat_release(out);
	return rc;
}

static int pg_heartbeat_by_hash(void *p, const uint8_t hash[KX_HASH_LEN],
				struct kx_heartbeat *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " HEARTBEAT_COLS " FROM heartbeats WHERE hash = $1";
	struct params pa = {0};
	char hex[2 * KX_HASH_LEN + 3];
	int rc;

	hash_param(hash, hex);
	p_text(&pa, hex);
	kx_heartbeat_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_heartbeat, "heartbeat key", err)))
		kx_heartbeat_release(out);
	return rc;
}

static int pg_heartbeat_update(void *p, const struct kx_heartbeat *h, struct kx_err *err)
{
	static const char sql[] = "UPDATE heartbeats SET state=$1, last_ping=$2, due_at=$3 "
				  "WHERE name=$4";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_int(&pa, h->state);
	p_time(&pa, h->last_ping);
	p_time(&pa, h->due_at);
	p_text(&pa, h->name);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "heartbeat '%.64s' not found", h->name);
	return 0;
}

static int pg_heartbeat_delete(void *p, const char *name, struct kx_err *err)
{
	static const char sql[] = "DELETE FROM heartbeats WHERE name = $1";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_text(&pa, name);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "heartbeat '%.64s' not found", name);
	return 0;
}

static int pg_heartbeat_list(void *p, struct kx_heartbeats *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " HEARTBEAT_COLS " FROM heartbeats "
				  "ORDER BY name COLLATE \"C\"";
	int rc;

	out->v = NULL;
	out->n = 0;
	if ((rc = read_list(p, sql, NULL, &out->v, &out->n, sizeof(*out->v), read_heartbeat,
			    err)))
		kx_heartbeats_release(out);
	return rc;
}

static int pg_heartbeat_due(void *p, kx_ms now, int limit, struct kx_heartbeats *out,
			    struct kx_err *err)
{
	/* SKIP LOCKED: another daemon's checker passes over the heartbeats
	 * this one is handling instead of waiting for them (a read-only
	 * transaction cannot lock). state <> 2 (down) is written out, so
	 * that the planner picks the partial index. */
	static const char sql_lock[] = "SELECT " HEARTBEAT_COLS " FROM heartbeats "
				       "WHERE state <> 2 AND due_at <= $1 "
				       "ORDER BY due_at, name COLLATE \"C\" LIMIT $2 "
				       "FOR UPDATE SKIP LOCKED";
	static const char sql[] = "SELECT " HEARTBEAT_COLS " FROM heartbeats "
				  "WHERE state <> 2 AND due_at <= $1 "
				  "ORDER BY due_at, name COLLATE \"C\" LIMIT $2";
	struct tx *t = p;
	struct params pa = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	p_int(&pa, now);
	p_int(&pa, limit > 0 ? limit : 100);
	if ((rc = read_list(t, t->write ? sql_lock : sql, &pa, &out->v, &out->n, sizeof(*out->v),
			    read_heartbeat, err)))
		kx_heartbeats_release(out);
	return rc;
}

/* Silences */

#define SILENCE_COLS                                                                           \
	"id, kind, matchers, starts_at, ends_at, comment, created_by, created_at, expired_at"

static int read_silence(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_silence *s = p;
	kx_silence_init(s);
	snprintf(s->id, sizeof(s->id), "%s", PQgetvalue(r, row, 0));
	s->kind = (enum kx_silence_kind)col_int(r, row, 1);
	s->starts_at = col_time(r, row, 3);
	s->ends_at = col_time(r, row, 4);
	s->created_at = col_time(r, row, 7);
	s->expired_at = col_time(r, row, 8);
	if (!col_opt(r, row, 2, &s->matchers) || !col_opt(r, row, 5, &s->comment) ||
	    !col_opt(r, row, 6, &s->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_silence_insert(void *p, const struct kx_silence *s, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO silences (" SILENCE_COLS ") VALUES ($1, $2, $3, "
				  "$4, $5, $6, $7, $8, $9)";
	struct params pa = {0};

	p_text(&pa, s->id);
	p_int(&pa, s->kind);
	p_text(&pa, s->matchers);
	p_time(&pa, s->starts_at);
	p_time(&pa, s->ends_at);
	p_text(&pa, s->comment);
	p_text(&pa, s->created_by);
	p_time(&pa, s->created_at);
	p_time(&pa, s->expired_at);
	return run_cmd(p, sql, &pa, err);
}

static int pg_silence_get(void *p, const char *id, struct kx_silence *out, struct kx_err *err)
{
	static const char sql[] = "SELECT " SILENCE_COLS " FROM silences WHERE id = $1";
	struct params pa = {0};
	char what[96];
	int rc;

	p_text(&pa, id);
	snprintf(what, sizeof(what), "silence '%.64s'", id);
	kx_silence_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_silence, what, err)))
		kx_silence_release(out);
	return rc;
}

static int pg_silence_update(void *p, const struct kx_silence *s, struct kx_err *err)
{
	static const char sql[] = "UPDATE silences SET ends_at=$1, comment=$2, expired_at=$3 "
				  "WHERE id=$4";
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_time(&pa, s->ends_at);
	p_text(&pa, s->comment);
	p_time(&pa, s->expired_at);
	p_text(&pa, s->id);
	if ((rc = run_count(p, sql, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ENOTFOUND, "silence '%.64s' not found", s->id);
	return 0;
}

static int pg_silence_list(void *p, bool active_only, kx_ms now, struct kx_silences *out,
			   struct kx_err *err)
{
	static const char sql_all[] = "SELECT " SILENCE_COLS " FROM silences "
				      "ORDER BY created_at DESC, id COLLATE \"C\" DESC";
	/* In force: kx_silence_active in SQL. */
	static const char sql_now[] = "SELECT " SILENCE_COLS " FROM silences "
				      "WHERE expired_at IS NULL AND starts_at <= $1 "
				      "AND $1 < ends_at "
				      "ORDER BY created_at DESC, id COLLATE \"C\" DESC";
	struct params pa = {0};
	int rc;

	out->v = NULL;
	out->n = 0;
	if (active_only)
		p_int(&pa, now);
	if ((rc = read_list(p, active_only ? sql_now : sql_all, &pa, &out->v, &out->n,
			    sizeof(*out->v), read_silence, err)))
		kx_silences_release(out);
	return rc;
}

/* The delivery log */

#define NOTIFICATION_COLS                                                                      \
	"id, channel, event, subject, status, attempts, last_code, last_error, created_at, "   \
	"last_attempt_at, next_attempt_at, delivered_at"

static int read_notification(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_notification *n = p;
	kx_notification_init(n);
	snprintf(n->id, sizeof(n->id), "%s", PQgetvalue(r, row, 0));
	n->status = (enum kx_notification_status)col_int(r, row, 4);
	n->attempts = (int)col_int(r, row, 5);
	n->last_code = (long)col_int(r, row, 6);
	n->created_at = col_time(r, row, 8);
	n->last_attempt_at = col_time(r, row, 9);
	n->next_attempt_at = col_time(r, row, 10);
	n->delivered_at = col_time(r, row, 11);
	if (!col_opt(r, row, 1, &n->channel) || !col_opt(r, row, 2, &n->event) ||
	    !col_opt(r, row, 3, &n->subject) || !col_opt(r, row, 7, &n->last_error))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int read_attempt(const PGresult *r, int row, void *p, struct kx_err *err)
{
	struct kx_notification_attempt *a = p;
	memset(a, 0, sizeof(*a));
	a->number = (int)col_int(r, row, 0);
	a->at = col_int(r, row, 1);
	a->took = col_int(r, row, 2);
	a->code = (long)col_int(r, row, 3);
	if (!col_opt(r, row, 4, &a->error))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int pg_notification_insert(void *p, const struct kx_notification *n, struct kx_err *err)
{
	static const char sql[] = "INSERT INTO notifications (" NOTIFICATION_COLS ") VALUES ($1, "
				  "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
	struct params pa = {0};

	p_text(&pa, n->id);
	p_text(&pa, n->channel);
	p_text(&pa, n->event);
	p_text(&pa, n->subject);
	p_int(&pa, n->status);
	p_int(&pa, n->attempts);
	p_int(&pa, n->last_code);
	p_text(&pa, n->last_error);
	p_time(&pa, n->created_at);
	p_time(&pa, n->last_attempt_at);
	p_time(&pa, n->next_attempt_at);
	p_time(&pa, n->delivered_at);
	return run_cmd(p, sql, &pa, err);
}

static int pg_notification_attempt(void *p, const struct kx_notification *n,
				   const struct kx_notification_attempt *a, struct kx_err *err)
{
	/* One statement: the attempt is inserted only if the row was updated,
	 * so no rows means no such notification. delivered_at only changes
	 * when the attempt delivered it ($7 NULL otherwise). */
	static const char sql[] =
		"WITH u AS (UPDATE notifications SET status=$1, attempts=$2, last_code=$3, "
		"last_error=$4, last_attempt_at=$5, next_attempt_at=$6, "
		"delivered_at=coalesce($7, delivered_at) WHERE id=$8 RETURNING id) "
		"INSERT INTO notification_attempts (notification, number, at, took, code, error) "
		"SELECT id, $9::integer, $10::bigint, $11::bigint, $12::bigint, $13::text FROM u";
	struct params pa = {0};
	int64_t rows = 0;
	int rc;

	p_int(&pa, n->status);
	p_int(&pa, n->attempts);
	p_int(&pa, n->last_code);
	p_text(&pa, n->last_error);
	p_time(&pa, n->last_attempt_at);
	p_time(&pa, n->next_attempt_at);
	p_time(&pa, n->status == KX_NTF_DELIVERED ? n->delivered_at : KX_TIME_UNSET);
	p_text(&pa, n->id);
	p_int(&pa, a->number);
	p_int(&pa, a->at);
	p_int(&pa, a->took);
	p_int(&pa, a->code);
	p_text(&pa, a->error);
	if ((rc = run_count(p, sql, &pa, &rows, err)))
		return rc;
	if (rows != 1)
		return kx_err_set(err, KX_ENOTFOUND, "notification '%.32s' not found", n->id);
	return 0;
}

static int pg_notification_get(void *p, const char *id, struct kx_notification *out,
			       struct kx_notification_attempts *attempts, struct kx_err *err)
{
	static const char sql[] = "SELECT " NOTIFICATION_COLS " FROM notifications WHERE id = $1";
	static const char sql_attempts[] = "SELECT number, at, took, code, error "
					   "FROM notification_attempts WHERE notification = $1 "
					   "ORDER BY number";
	struct params pa = {0};
	char what[64];
	int rc;

	p_text(&pa, id);
	snprintf(what, sizeof(what), "notification '%.32s'", id);
	kx_notification_init(out);
	if ((rc = read_one(p, sql, &pa, out, read_notification, what, err))) {
		kx_notification_release(out);
		return rc;
	}
	if (!attempts)
		return 0;
	attempts->v = NULL;
	attempts->n = 0;
	if ((rc = read_list(p, sql_attempts, &pa, &attempts->v, &attempts->n,
			    sizeof(*attempts->v), read_attempt, err))) {
		kx_notification_attempts_release(attempts);
		kx_notification_release(out);
	}
	return rc;
}

static int pg_notification_list(void *p, const struct kx_notification_filter *f,
				struct kx_notifications *out, struct kx_err *err)
{
	struct tx *t = p;
	struct built b = {0};
	struct kx_buf sql;
	PGresult *res = NULL;
	int rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	rc = kx_buf_adds(&sql, "SELECT " NOTIFICATION_COLS " FROM notifications WHERE true");
	if (f->channel) {
		b.v[b.n++] = f->channel;
		rc |= kx_buf_addf(&sql, " AND channel = $%d", b.n);
	}
	if (f->status >= 0) {
		b_int(&b, f->status);
		rc |= kx_buf_addf(&sql, " AND status = $%d", b.n);
	}
	if (f->subject) {
		b.v[b.n++] = f->subject;
		rc |= kx_buf_addf(&sql, " AND subject = $%d", b.n);
	}
	b_int(&b, f->limit > 0 ? f->limit : 100);
	/* seq orders rows of the same millisecond by insertion. */
	if (rc || kx_buf_addf(&sql, " ORDER BY created_at DESC, seq DESC LIMIT $%d", b.n)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = run_built(t, &sql, &b, &res, err)))
		goto out;
	if ((rc = read_rows(res, &out->v, &out->n, sizeof(*out->v), read_notification, err)))
		kx_notifications_release(out);
out:
	PQclear(res);
	kx_buf_release(&sql);
	return rc;
}

/* ---- jobs ---- */

static int pg_job_enqueue(void *p, const char *kind, const char *payload, kx_ms run_at,
			  int64_t *id, struct kx_err *err)
{
	static const char sql[] =
		"INSERT INTO jobs (kind, payload, run_at) VALUES ($1, $2, $3) RETURNING id";
	struct tx *t = p;
	struct params pa = {0};
	PGresult *res;
	int rc;

	p_text(&pa, kind);
	p_text(&pa, payload);
	p_int(&pa, run_at);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	if (id)
		*id = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* Runs fn in a write transaction of its own. */
static int in_write_tx(struct be *be, int (*fn)(struct tx *, void *, struct kx_err *), void *arg,
		       struct kx_err *err)
{
	void *t;
	int rc = pg_begin(be, true, &t, err);
	if (rc)
		return rc;
	if ((rc = fn(t, arg, err))) {
		pg_rollback(t);
		return rc;
	}
	return pg_commit(t, err);
}

struct claim_args {
	const char *worker;
	kx_ms now, lease;
	int max;
	struct kx_jobs *out;
};

static int claim_fn(struct tx *t, void *arg, struct kx_err *err)
{
	/* SKIP LOCKED: claimers in other daemons pass over the rows this one
	 * is taking instead of waiting for them; ARRAY() runs the LIMITed
	 * subquery exactly once. */
	static const char sql[] =
		"WITH c AS (UPDATE jobs SET leased_by = $1, lease_until = $2, "
		"attempts = attempts + 1 WHERE id = ANY(ARRAY("
		"SELECT id FROM jobs WHERE run_at <= $3 AND (lease_until IS NULL OR "
		"lease_until <= $3) ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)) "
		"RETURNING id, kind, payload, attempts, run_at, lease_until) "
		"SELECT * FROM c ORDER BY run_at, id";
	struct claim_args *a = arg;
	struct params pa = {0};
	PGresult *res;
	int rc, n;

	p_text(&pa, a->worker);
	p_int(&pa, a->now + a->lease);
	p_int(&pa, a->now);
	p_int(&pa, a->max);
	if ((rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err)))
		return rc;
	n = PQntuples(res);
	if (n && !(a->out->v = calloc((size_t)n, sizeof(*a->out->v))))
		goto nomem;
	for (int row = 0; row < n; row++) {
		struct kx_job *j = &a->out->v[a->out->n++];
		j->id = col_int(res, row, 0);
		j->kind = col_text(res, row, 1);
		j->payload = col_text(res, row, 2);
		j->attempts = (int)col_int(res, row, 3);
		j->run_at = col_int(res, row, 4);
		j->lease_until = col_int(res, row, 5);
		if (!j->kind || !j->payload)
			goto nomem;
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	kx_jobs_release(a->out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

static int pg_job_claim(void *be, const char *worker, kx_ms now, kx_ms lease, int max,
			struct kx_jobs *out, struct kx_err *err)
{
	struct claim_args a = {worker, now, lease, max, out};
	int rc;
	out->v = NULL;
	out->n = 0;
	/* Jobs claimed in a transaction that then failed to commit were not
	 * claimed. */
	if ((rc = in_write_tx(be, claim_fn, &a, err)))
		kx_jobs_release(out);
	return rc;
}

struct finish_args {
	int64_t id;
	const char *worker;
	kx_ms retry_at; /* KX_TIME_UNSET: finish */
};

static int finish_fn(struct tx *t, void *arg, struct kx_err *err)
{
	static const char del[] = "DELETE FROM jobs WHERE id = $1 AND leased_by = $2";
	static const char upd[] = "UPDATE jobs SET run_at = $3, leased_by = NULL, "
				  "lease_until = NULL WHERE id = $1 AND leased_by = $2";
	struct finish_args *a = arg;
	struct params pa = {0};
	int64_t n = 0;
	int rc;

	p_int(&pa, a->id);
	p_text(&pa, a->worker);
	if (a->retry_at != KX_TIME_UNSET)
		p_int(&pa, a->retry_at);
	if ((rc = run_count(t, a->retry_at == KX_TIME_UNSET ? del : upd, &pa, &n, err)))
		return rc;
	if (n != 1)
		return kx_err_set(err, KX_ECONFLICT, "job %lld is not leased to '%s'",
				  (long long)a->id, a->worker);
	return 0;
}

static int pg_job_finish(void *be, int64_t id, const char *worker, struct kx_err *err)
{
	struct finish_args a = {id, worker, KX_TIME_UNSET};
	return in_write_tx(be, finish_fn, &a, err);
}

static int pg_job_retry(void *be, int64_t id, const char *worker, kx_ms run_at,
			struct kx_err *err)
{
	struct finish_args a = {id, worker, run_at};
	return in_write_tx(be, finish_fn, &a, err);
}

/* ---- singletons ---- */

/* The advisory lock key of a singleton name: 64-bit FNV-1a of
 * "klaxon:" NAME, stable across daemons and PostgreSQL versions. */
static int64_t lock_key(const char *name)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (const char *s = "klaxon:"; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	for (const char *s = name; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	return (int64_t)h;
}

/* A session advisory lock on the `locks` connection: held until close, or
 * until that connection is lost (the server restarted), after which the
 * next try takes it again if no other daemon has meanwhile. Asking again
 * for a lock already held answers true. */
static int pg_singleton_try(void *p, const char *name, bool *acquired, struct kx_err *err)
{
	struct be *be = p;
	struct conn *c = &be->locks;
	char key[24];
	const char *vals[] = {key};
	bool fresh;
	int rc;

	*acquired = false;
	snprintf(key, sizeof(key), "%lld", (long long)lock_key(name));
	pthread_mutex_lock(&be->llock);
	for (int attempt = 0;; attempt++) {
		PGresult *res;
		if ((rc = conn_ready(be, c, &fresh, err)))
			break;
		res = PQexecParams(c->pg, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, vals,
				   NULL, NULL, 0);
		rc = check(c, res, PGRES_TUPLES_OK, err);
		if (rc == KX_EUNAVAIL && c->stale && !fresh && attempt == 0)
			continue;
		if (!rc) {
			*acquired = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
			PQclear(res);
		}
		break;
	}
	pthread_mutex_unlock(&be->llock);
	return rc;
}

/* ---- change feed ---- */

static int pg_notify(void *p, const char *topic, const char *payload, struct kx_err *err)
{
	static const char sql[] = "SELECT pg_notify('" CHANNEL "', $1)";
	struct tx *t = p;
	struct params pa = {0};
	struct kx_buf msg;
	PGresult *res;
	int rc;

	if (strlen(topic) + strlen(payload) > 200)
		return kx_err_set(err, KX_EINVAL, "notification too long");
	kx_buf_init(&msg, 512);
	if (kx_buf_addf(&msg, "%zu:%s%s", strlen(topic), topic, payload))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p_text(&pa, kx_buf_str(&msg));
	rc = run(t, sql, &pa, PGRES_TUPLES_OK, &res, err);
	PQclear(res);
	kx_buf_release(&msg);
	if (rc)
		return rc;
	if (kx_buf_add(&t->notes, topic, strlen(topic) + 1) ||
	    kx_buf_add(&t->notes, payload, strlen(payload) + 1))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

/* Was pid the server process of one of this store's pool connections?
 * Their notifications were delivered here at commit already. */
static bool own_pid(struct be *be, int pid)
{
	bool own = false;
	pthread_mutex_lock(&be->lock);
	for (int i = 0; i < NCONNS && !own; i++)
		own = be->conns[i].pid == pid;
	pthread_mutex_unlock(&be->lock);
	return own;
}

static void deliver_note(struct be *be, const PGnotify *n)
{
	char *end, topic[256];
	unsigned long len;

	if (own_pid(be, n->be_pid))
		return;
	len = strtoul(n->extra, &end, 10);
	if (*end != ':' || len >= sizeof(topic) || strlen(end + 1) < len)
		return; /* not ours */
	memcpy(topic, end + 1, len);
	topic[len] = '\0';
	deliver(be, topic, end + 1 + len);
}

/* Waits up to ms for the wake pipe; true when the listener must stop. */
static bool wait_wake(struct be *be, int fd, int ms)
{
	struct pollfd pf[2] = {{be->wake[0], POLLIN, 0}, {fd, POLLIN, 0}};
	int n = poll(pf, fd >= 0 ? 2 : 1, ms);
	return n > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR));
}

static int feed_listen(struct be *be, struct kx_err *err)
{
	int rc = conn_connect(be, &be->feed, err);
	if (!rc && (rc = exec_simple(&be->feed, "LISTEN " CHANNEL, err)))
		conn_close(be, &be->feed);
	return rc;
}

/* The listener thread: delivers notifications from other daemons; after
 * losing the server it reconnects every FEED_RETRY_MS and then delivers
 * "*" (changes may have been missed meanwhile). */
static void *listener(void *arg)
{
	struct be *be = arg;
	struct conn *c = &be->feed;
	for (;;) {
		PGnotify *n;
		if (!c->pg) {
			if (feed_listen(be, NULL)) {
				if (wait_wake(be, -1, FEED_RETRY_MS))
					break;
				continue;
			}
			deliver(be, "*", "");
		}
		/* first what libpq has read already (during LISTEN, say) */
		while ((n = PQnotifies(c->pg))) {
			deliver_note(be, n);
			PQfreemem(n);
		}
		if (wait_wake(be, PQsocket(c->pg), -1))
			break;
		if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
			conn_close(be, c);
	}
	conn_close(be, c);
	return NULL;
}

static int pg_subscribe(void *p, kx_change_fn fn, void *arg, struct kx_err *err)
{
	struct be *be = p;
	int rc = 0;

	pthread_mutex_lock(&be->slock);
	if (be->nsubs == MAX_SUBSCRIBERS) {
		rc = kx_err_set(err, KX_ENOMEM, "too many change subscribers");
		goto out;
	}
	if (!be->listening) {
		/* LISTEN before returning: nothing committed after subscribe
		 * returns can be missed. */
		if (pipe(be->wake)) {
			be->wake[0] = be->wake[1] = -1;
			rc = kx_err_set(err, KX_EIO, "cannot create a pipe for the change feed");
			goto out;
		}
		fcntl(be->wake[0], F_SETFD, FD_CLOEXEC);
		fcntl(be->wake[1], F_SETFD, FD_CLOEXEC);
		if ((rc = feed_listen(be, err)))
			goto out;
		if (pthread_create(&be->listener, NULL, listener, be)) {
			conn_close(be, &be->feed);
			rc = kx_err_set(err, KX_EIO, "cannot start the change feed thread");
			goto out;
		}
		be->listening = true;
	}
	be->subs[be->nsubs].fn = fn;
	be->subs[be->nsubs].arg = arg;
	be->nsubs++;
out:
	pthread_mutex_unlock(&be->slock);
	return rc;
}

static void feed_stop(struct be *be)
{
	if (be->listening) {
		ssize_t n = write(be->wake[1], "x", 1);
		(void)n;
		pthread_join(be->listener, NULL);
		be->listening = false;
	}
	for (int i = 0; i < 2; i++)
		if (be->wake[i] >= 0)
			close(be->wake[i]);
	be->wake[0] = be->wake[1] = -1;
}

const struct kx_store_backend kx_store_postgres = {
	.name = "postgres",
	.accepts = pg_accepts,
	.open = pg_open,
	.close = pg_close,
	.ping = pg_ping,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.incident_next_seq = pg_incident_next_seq,
	.incident_insert = pg_incident_insert,
	.incident_get = pg_incident_get,
	.incident_update = pg_incident_update,
	.incident_list = pg_incident_list,
	.timeline_add = pg_timeline_add,
	.timeline_list = pg_timeline_list,
	.action_item_add = pg_action_item_add,
	.action_item_get = pg_action_item_get,
	.action_item_update = pg_action_item_update,
	.action_item_list = pg_action_item_list,
	.token_count = pg_token_count,
	.token_insert = pg_token_insert,
	.token_by_hash = pg_token_by_hash,
	.token_get = pg_token_get,
	.token_list = pg_token_list,
	.token_revoke = pg_token_revoke,
	.job_enqueue = pg_job_enqueue,
	.job_claim = pg_job_claim,
	.job_finish = pg_job_finish,
	.job_retry = pg_job_retry,
	.singleton_try = pg_singleton_try,
	.notify = pg_notify,
	.subscribe = pg_subscribe,
	.audit_append = pg_audit_append,
	.audit_query = pg_audit_query,
	.audit_page = pg_audit_page,
	.audit_duplicates = pg_audit_duplicates,
	.audit_recipients = pg_audit_recipients,
	.switch_insert = pg_switch_insert,
	.switch_get = pg_switch_get,
	.switch_update = pg_switch_update,
	.switch_list = pg_switch_list,
	.cap_put = pg_cap_put,
	.cap_delete = pg_cap_delete,
	.cap_list = pg_cap_list,
	.approval_insert = pg_approval_insert,
	.approval_get = pg_approval_get,
	.approval_pending_by_key = pg_approval_pending_by_key,
	.approval_update = pg_approval_update,
	.approval_list = pg_approval_list,
	.service_put = pg_service_put,
	.service_get = pg_service_get,
	.service_list = pg_service_list,
	.integration_insert = pg_integration_insert,
	.integration_get = pg_integration_get,
	.integration_by_hash = pg_integration_by_hash,
	.integration_list = pg_integration_list,
	.integration_revoke = pg_integration_revoke,
	.alert_firing_by_key = pg_alert_firing_by_key,
	.alert_insert = pg_alert_insert,
	.alert_update = pg_alert_update,
	.alert_fold = pg_alert_fold,
	.alert_get = pg_alert_get,
	.alert_list = pg_alert_list,
	.alert_count_firing = pg_alert_count_firing,
	.alert_expired = pg_alert_expired,
	.change_insert = pg_change_insert,
	.change_list = pg_change_list,
	.heartbeat_insert = pg_heartbeat_insert,
	.heartbeat_get = pg_heartbeat_get,
	.heartbeat_by_hash = pg_heartbeat_by_hash,
	.heartbeat_update = pg_heartbeat_update,
	.heartbeat_delete = pg_heartbeat_delete,
	.heartbeat_list = pg_heartbeat_list,
	.heartbeat_due = pg_heartbeat_due,
	.silence_insert = pg_silence_insert,
	.silence_get = pg_silence_get,
	.silence_update = pg_silence_update,
	.silence_list = pg_silence_list,
	.notification_insert = pg_notification_insert,
	.notification_attempt = pg_notification_attempt,
	.notification_get = pg_notification_get,
	.notification_list = pg_notification_list,
};
