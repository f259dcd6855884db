/* sqlite.c — the embedded SQLite backend.
 *
 * One writer connection behind a mutex (held for the whole write
 * transaction, so BEGIN IMMEDIATE never waits on SQLite's busy handler) and a
 * small pool of reader connections that run concurrently under WAL. Every
 * connection caches its prepared statements, keyed by the address of the
 * static SQL text. Commits are durable (synchronous=FULL): a 2xx answer means
 * the change is on disk.
 *
 * WAL checkpoints run on a background thread with its own connection
 * (automatic checkpoints on the writer are off), so a request never pays
 * for copying the log back into the database file.
 */
#include "store/migrate.h"
#include "store/store.h"
#include "lib/array.h"
#include "lib/buf.h"
#include "lib/time.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NREADERS 4
#define BATCH_RING 64
#define MAX_SUBSCRIBERS 16
#define STMT_CACHE 128

struct conn {
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
	int ncache;
	bool busy; /* readers: handed out */
};

struct be {
	char *path;
	struct conn writer;
	pthread_mutex_t wlock; /* held while a member uses the writer */
	/* group commit (see "group commit" below), guarded by glock */
	pthread_mutex_t glock;
	pthread_cond_t gdone;
	int waiting;       /* writers queued for wlock */
	bool open_batch;   /* the writer has an outer transaction open */
	uint64_t batch;    /* number of the open (or last) batch */
	uint64_t flushed;  /* last batch whose COMMIT has finished */
	int members;       /* members released into the open batch */
	int batch_rc[BATCH_RING];
	struct conn readers[NREADERS];
	pthread_mutex_t rlock;
	pthread_cond_t rfree;
	/* checkpointer */
	struct conn ckpt;
	pthread_t ckpt_thread;
	bool ckpt_running;
	bool ckpt_stop;
	int wal_frames; /* frames in the log after the last commit */
	int ckpt_at;    /* wal_frames when the last checkpoint ran */
	pthread_mutex_t clock;
	pthread_cond_t cwake;
	/* change feed: one process, so delivery is a direct call after commit */
	pthread_mutex_t slock;
	struct {
		kx_change_fn fn;
		void *arg;
	} subs[MAX_SUBSCRIBERS];
	int nsubs;
};

/* Frames in the WAL before the checkpointer is woken early. */
#define CKPT_FRAMES 1000
#define CKPT_INTERVAL_MS 1000
/* Past this many frames the log is restarted from its beginning, so it
 * cannot grow without bound under constant writes (see checkpointer). */
#define CKPT_RESTART_FRAMES 4000

struct tx {
	struct be *be;
	struct conn *c;
	bool write;
	struct kx_buf notes; /* pending notifications: "topic\0payload\0"… */
};

static int db_error(sqlite3 *db, int rc, struct kx_err *err)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	if ((ext & 0xff) == SQLITE_CONSTRAINT)
		return kx_err_set(err, KX_ECONFLICT, "conflicting change: %s", msg);
	if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED)
		return kx_err_set(err, KX_EUNAVAIL, "database is busy: %s", msg);
	if ((ext & 0xff) == SQLITE_FULL || (ext & 0xff) == SQLITE_IOERR ||
	    (ext & 0xff) == SQLITE_CANTOPEN)
		return kx_err_set(err, KX_EUNAVAIL, "database unavailable: %s", msg);
	return kx_err_set(err, KX_ESTORE, "database error: %s", msg);
}

static int exec(sqlite3 *db, const char *sql, struct kx_err *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		kx_err_set(err, rc == SQLITE_BUSY ? KX_EUNAVAIL : KX_ESTORE, "database error: %s",
			   msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return err ? err->code : KX_ESTORE;
	}
	return 0;
}

/* A cached statement for sql (a static string), reset and unbound. */
static sqlite3_stmt *stmt(struct conn *c, const char *sql, struct kx_err *err)
{
	sqlite3_stmt *st;
	for (int i = 0; i < c->ncache; i++)
		if (c->cache[i].sql == sql)
			return c->cache[i].st;
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		db_error(c->db, SQLITE_ERROR, err);
		return NULL;
	}
	/* More distinct statements than slots is a programming error. */
	assert(c->ncache < STMT_CACHE);
	c->cache[c->ncache].sql = sql;
	c->cache[c->ncache].st = st;
	c->ncache++;
	return st;
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Page cache sizes (PRAGMA cache_size, negative: KiB). The writer's holds a
 * whole batch of appends (rows and the pages of three indexes) without
 * spilling dirty pages into the log mid-transaction; a reader's only has
 * to hold the index pages of a query. SQLite allocates cache pages as they
 * are used, so an idle daemon stays small either way. */
#define CACHE_WRITER_KIB 65536
#define CACHE_READER_KIB 8192
#define CACHE_DEFAULT_KIB 2000 /* SQLite's default: the checkpointer's */

static int conn_open(struct conn *c, const char *path, bool readonly, int cache_kib,
		     struct kx_err *err)
{
	char pragma[48];
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
		    SQLITE_OPEN_NOMUTEX;
	int rc;
	memset(c, 0, sizeof(*c));
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		kx_err_set(err, KX_EIO, "cannot open database '%s': %s", path,
			   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		c->db = NULL;
		return KX_EIO;
	}
	sqlite3_busy_timeout(c->db, 5000);
	sqlite3_extended_result_codes(c->db, 1);
	if (!readonly && (rc = exec(c->db, "PRAGMA journal_mode=WAL", err)))
		return rc;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=-%d", cache_kib);
	if ((rc = exec(c->db, pragma, err)))
		return rc;
	/* temp_store=MEMORY: statement journals inside savepoints (group commit)
	 * would otherwise be temporary files, opened and written per statement. */
	return exec(c->db,
		    "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
		    "PRAGMA journal_size_limit=67108864;",
		    err);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < c->ncache; i++)
		sqlite3_finalize(c->cache[i].st);
	c->ncache = 0;
	if (c->db)
		sqlite3_close(c->db);
	c->db = NULL;
}

static int migrate(sqlite3 *db, struct kx_err *err)
{
	sqlite3_stmt *st = NULL;
	int current = 0, rc;

	if ((rc = exec(db,
		       "CREATE TABLE IF NOT EXISTS schema_migrations ("
		       " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL"
		       ") STRICT",
		       err)))
		return rc;
	if ((rc = exec(db, "BEGIN IMMEDIATE", err)))
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_error(db, SQLITE_ERROR, err);
		goto fail;
	}
	current = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	for (const struct kx_migration *m = kx_sqlite_migrations; m->sql; m++) {
		if (m->version <= current)
			continue;
		if ((rc = exec(db, m->sql, err))) {
			kx_err_set(err, KX_ESTORE, "migration %s failed: %s", m->name,
				   err ? err->msg : "");
			goto fail;
		}
		if (sqlite3_prepare_v2(db,
				       "INSERT INTO schema_migrations (version, name, applied_at) "
				       "VALUES (?, ?, ?)",
				       -1, &st, NULL) != SQLITE_OK) {
			rc = db_error(db, SQLITE_ERROR, err);
			goto fail;
		}
		sqlite3_bind_int(st, 1, m->version);
		sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, kx_now_ms());
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_error(db, SQLITE_ERROR, err);
			goto fail;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	return exec(db, "COMMIT", err);
fail:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc ? rc : KX_ESTORE;
}

static bool sq_accepts(const char *url)
{
	return strncmp(url, "sqlite:", 7) == 0;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct be *be = arg;
	(void)db;
	(void)name;
	pthread_mutex_lock(&be->clock);
	/* `frames` counts the whole log, which only starts over when a writer
	 * finds it fully checkpointed; wake the checkpointer for what came
	 * since its last run, not for the log's size (that would checkpoint,
	 * and then restart the log with an extra fsync, on every commit). */
	if (frames < be->ckpt_at)
		be->ckpt_at = 0;
	be->wal_frames = frames;
	if (frames - be->ckpt_at >= CKPT_FRAMES)
		pthread_cond_signal(&be->cwake);
	pthread_mutex_unlock(&be->clock);
	return SQLITE_OK;
}

/* Under constant writes a PASSIVE checkpoint is never complete when the
 * next writer starts, and SQLite only starts the log over then: it would
 * grow forever. When it is long, wait for a moment between batches (the
 * writer lock held, no batch open) and RESTART it: the PASSIVE run just
 * before has copied nearly everything, so this pause is short. */
static void restart_log_if_long(struct be *be)
{
	int frames;
	pthread_mutex_lock(&be->clock);
	frames = be->wal_frames;
	pthread_mutex_unlock(&be->clock);
	if (frames < CKPT_RESTART_FRAMES)
		return;
	pthread_mutex_lock(&be->wlock);
	pthread_mutex_lock(&be->glock);
	bool idle = !be->open_batch;
	pthread_mutex_unlock(&be->glock);
	if (idle) {
		sqlite3_wal_checkpoint_v2(be->writer.db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
		pthread_mutex_lock(&be->clock);
		be->ckpt_at = 0;
		be->wal_frames = 0;
		pthread_mutex_unlock(&be->clock);
	}
	pthread_mutex_unlock(&be->wlock);
}

static void *checkpointer(void *arg)
{
	struct be *be = arg;
	pthread_mutex_lock(&be->clock);
	while (!be->ckpt_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CKPT_INTERVAL_MS / 1000;
		if (be->wal_frames - be->ckpt_at < CKPT_FRAMES)
			pthread_cond_timedwait(&be->cwake, &be->clock, &ts);
		if (be->ckpt_stop)
			break;
		if (be->wal_frames <= be->ckpt_at)
			continue; /* nothing new since the last run */
		be->ckpt_at = be->wal_frames;
		pthread_mutex_unlock(&be->clock);
		/* PASSIVE: copies what it can without blocking the writer. */
		sqlite3_wal_checkpoint_v2(be->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		restart_log_if_long(be);
		pthread_mutex_lock(&be->clock);
	}
	pthread_mutex_unlock(&be->clock);
	return NULL;
}

static void sq_close(void *p)
{
	struct be *be = p;
	if (!be)
		return;
	if (be->ckpt_running) {
		pthread_mutex_lock(&be->clock);
		be->ckpt_stop = true;
		pthread_cond_signal(&be->cwake);
		pthread_mutex_unlock(&be->clock);
		pthread_join(be->ckpt_thread, NULL);
		sqlite3_wal_checkpoint_v2(be->ckpt.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	conn_close(&be->ckpt);
	pthread_mutex_destroy(&be->slock);
	pthread_mutex_destroy(&be->clock);
	pthread_cond_destroy(&be->cwake);
	conn_close(&be->writer);
	for (int i = 0; i < NREADERS; i++)
		conn_close(&be->readers[i]);
	pthread_mutex_destroy(&be->wlock);
	pthread_mutex_destroy(&be->glock);
	pthread_cond_destroy(&be->gdone);
	pthread_mutex_destroy(&be->rlock);
	pthread_cond_destroy(&be->rfree);
	free(be->path);
	free(be);
}

static int sq_open(const char *url, void **out, struct kx_err *err)
{
	const char *path = url + 7;
	struct be *be;
	int rc;

	if (strncmp(path, "//", 2) == 0)
		path += 2;
	if (!*path)
		return kx_err_set(err, KX_EINVAL, "database URL '%s' has no path", url);
	if (!(be = calloc(1, sizeof(*be))) || !(be->path = strdup(path))) {
		free(be);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&be->wlock, NULL);
	pthread_mutex_init(&be->glock, NULL);
	pthread_cond_init(&be->gdone, NULL);
	pthread_mutex_init(&be->rlock, NULL);
	pthread_cond_init(&be->rfree, NULL);
	pthread_mutex_init(&be->clock, NULL);
	pthread_cond_init(&be->cwake, NULL);
	pthread_mutex_init(&be->slock, NULL);
	if ((rc = conn_open(&be->writer, be->path, false, CACHE_WRITER_KIB, err)) ||
	    (rc = migrate(be->writer.db, err)))
		goto fail;
	for (int i = 0; i < NREADERS; i++)
		if ((rc = conn_open(&be->readers[i], be->path, false, CACHE_READER_KIB, err)))
			goto fail;
	if ((rc = conn_open(&be->ckpt, be->path, false, CACHE_DEFAULT_KIB, err)))
		goto fail;
	sqlite3_wal_hook(be->writer.db, wal_hook, be);
	if (pthread_create(&be->ckpt_thread, NULL, checkpointer, be)) {
		rc = kx_err_set(err, KX_EIO, "cannot start the checkpoint thread");
		goto fail;
	}
	be->ckpt_running = true;
	*out = be;
	return 0;
fail:
	sq_close(be);
	return rc;
}

static struct conn *take_reader(struct be *be)
{
	struct conn *c = NULL;
	pthread_mutex_lock(&be->rlock);
	for (;;) {
		for (int i = 0; i < NREADERS; i++) {
			if (!be->readers[i].busy) {
				c = &be->readers[i];
				c->busy = true;
				break;
			}
		}
		if (c)
			break;
		pthread_cond_wait(&be->rfree, &be->rlock);
	}
	pthread_mutex_unlock(&be->rlock);
	return c;
}

static void give_reader(struct be *be, struct conn *c)
{
	pthread_mutex_lock(&be->rlock);
	c->busy = false;
	pthread_cond_signal(&be->rfree);
	pthread_mutex_unlock(&be->rlock);
}

static void release_reader(struct tx *t)
{
	give_reader(t->be, t->c);
	kx_buf_release(&t->notes);
	free(t);
}

static void deliver(struct be *be, const struct kx_buf *notes)
{
	const char *p = notes->data, *end = notes->data + notes->len;
	while (p && p < end) {
		const char *topic = p, *payload = p + strlen(p) + 1;
		pthread_mutex_lock(&be->slock);
		for (int i = 0; i < be->nsubs; i++)
			be->subs[i].fn(topic, payload, be->subs[i].arg);
		pthread_mutex_unlock(&be->slock);
		p = payload + strlen(payload) + 1;
	}
}

static int run(struct conn *c, const char *sql, struct kx_err *err)
{
	sqlite3_stmt *st = stmt(c, sql, err);
	int rc;
	if (!st)
		return err ? err->code : KX_ESTORE;
	rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? 0 : db_error(c->db, rc, err);
}

/* ---- group commit ----
 *
 * Write transactions are savepoints inside one outer transaction (a
 * "batch") on the writer connection. A member that finishes while other
 * writers are queued for the writer releases its savepoint and waits; the
 * last member of the batch (no one queued, or the batch is full) commits
 * the outer transaction — one fsync for all — and wakes the others, who
 * then report that same outcome. Every success still means "on disk":
 * no member returns before the COMMIT that holds its changes. With one
 * writer at a time this is exactly one transaction per request. */

#define BATCH_MAX 64

/* Ends the open batch with COMMIT (or its failure) and wakes its waiters.
 * Called with wlock held; returns the batch's outcome. */
static int flush_batch(struct be *be, struct kx_err *err)
{
	int rc = 0;
	uint64_t b;

	if (!sqlite3_get_autocommit(be->writer.db)) {
		if ((rc = run(&be->writer, "COMMIT", err)))
			sqlite3_exec(be->writer.db, "ROLLBACK", NULL, NULL, NULL);
	} else if (be->members > 0) {
		/* SQLite rolled the batch back on its own (I/O error, disk
		 * full): the members released into it were not saved. */
		rc = kx_err_set(err, KX_ESTORE, "database error: the transaction was rolled back");
	}
	pthread_mutex_lock(&be->glock);
	b = be->batch;
	be->batch_rc[b % BATCH_RING] = rc;
	be->flushed = b;
	be->open_batch = false;
	pthread_cond_broadcast(&be->gdone);
	pthread_mutex_unlock(&be->glock);
	return rc;
}

/* After a member is done with the writer (its savepoint released or rolled
 * back): flush now, or leave the batch to a queued writer and wait for it. */
static int finish_member(struct tx *t, bool joined, struct kx_err *err)
{
	struct be *be = t->be;
	uint64_t b;
	bool flush;
	int rc;

	pthread_mutex_lock(&be->glock);
	if (joined)
		be->members++;
	b = be->batch;
	flush = be->waiting == 0 || be->members >= BATCH_MAX;
	pthread_mutex_unlock(&be->glock);

	if (flush) {
		rc = flush_batch(be, err);
		pthread_mutex_unlock(&be->wlock);
		return joined ? rc : 0;
	}
	pthread_mutex_unlock(&be->wlock);
	if (!joined)
		return 0;
	pthread_mutex_lock(&be->glock);
	while (be->flushed < b)
		pthread_cond_wait(&be->gdone, &be->glock);
	rc = be->batch_rc[b % BATCH_RING];
	pthread_mutex_unlock(&be->glock);
	if (rc)
		kx_err_set(err, rc, "database commit failed; the change was not saved");
	return rc;
}

static int begin_write(struct be *be, struct tx *t, struct kx_err *err)
{
	bool need_begin;
	int rc;

	pthread_mutex_lock(&be->glock);
	be->waiting++;
	pthread_mutex_unlock(&be->glock);
	pthread_mutex_lock(&be->wlock);
	pthread_mutex_lock(&be->glock);
	be->waiting--;
	need_begin = !be->open_batch;
	pthread_mutex_unlock(&be->glock);
	t->c = &be->writer;
	if (need_begin) {
		if ((rc = run(t->c, "BEGIN IMMEDIATE", err))) {
			pthread_mutex_unlock(&be->wlock);
			return rc;
		}
		pthread_mutex_lock(&be->glock);
		be->open_batch = true;
		be->batch++;
		be->members = 0;
		pthread_mutex_unlock(&be->glock);
	}
	if ((rc = run(t->c, "SAVEPOINT m", err))) {
		finish_member(t, false, NULL);
		return rc;
	}
	return 0;
}

static int sq_begin_impl(void *p, bool write, void **out, struct kx_err *err)
{
	struct be *be = p;
	struct tx *t = malloc(sizeof(*t));
	int rc;

	if (!t)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	t->be = be;
	t->write = write;
	kx_buf_init(&t->notes, 64 * 1024);
	if (write) {
		if ((rc = begin_write(be, t, err))) {
			kx_buf_release(&t->notes);
			free(t);
			return rc;
		}
		*out = t;
		return 0;
	}
	t->c = take_reader(be);
	if ((rc = run(t->c, "BEGIN", err))) {
		release_reader(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* A member's savepoint is gone with the whole batch when SQLite rolled the
 * outer transaction back on its own (I/O error, disk full). */
static bool batch_lost(struct be *be)
{
	return sqlite3_get_autocommit(be->writer.db) != 0;
}

static void end_write(struct tx *t, bool ok, int *rc, struct kx_err *err)
{
	struct kx_buf notes = t->notes;
	struct be *be = t->be;

	kx_buf_init(&t->notes, 0);
	*rc = finish_member(t, ok, err) ? (err ? err->code : KX_ESTORE) : *rc;
	free(t);
	if (ok && *rc == 0)
		deliver(be, &notes); /* after the commit, without holding the writer */
	kx_buf_release(&notes);
}

static int sq_commit(void *p, struct kx_err *err)
{
	struct tx *t = p;
	int rc = 0;

	if (!t->write) {
		rc = run(t->c, "COMMIT", err);
		release_reader(t);
		return rc;
	}
	if (batch_lost(t->be) || (rc = run(t->c, "RELEASE m", err))) {
		if (!rc)
			rc = kx_err_set(err, KX_ESTORE, "database error: the transaction was rolled back");
		if (!batch_lost(t->be)) {
			sqlite3_exec(t->c->db, "ROLLBACK TO m; RELEASE m", NULL, NULL, NULL);
		}
		end_write(t, false, &rc, NULL);
		return rc;
	}
	end_write(t, true, &rc, err);
	return rc;
}

static void sq_rollback(void *p)
{
	struct tx *t = p;
	int rc = 0;

	if (!t->write) {
		sqlite3_exec(t->c->db, "ROLLBACK", NULL, NULL, NULL);
		release_reader(t);
		return;
	}
	if (!batch_lost(t->be))
		sqlite3_exec(t->c->db, "ROLLBACK TO m; RELEASE m", NULL, NULL, NULL);
	end_write(t, false, &rc, NULL);
}

static int sq_ping(void *p, struct kx_err *err)
{
	struct be *be = p;
	struct conn *c = take_reader(be);
	sqlite3_stmt *st = stmt(c, "SELECT count(*) FROM schema_migrations", err);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (st)
		done(st);
	rc = rc == SQLITE_ROW ? 0 : db_error(c->db, rc, err);
	give_reader(be, c);
	return rc;
}

/* ---- binding helpers ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, kx_ms t)
{
	if (t == KX_TIME_UNSET)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, t);
}

static void bind_count(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? strdup((const char *)s) : NULL;
}

static kx_ms col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? KX_TIME_UNSET
							  : sqlite3_column_int64(st, i);
}

static int64_t col_count(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

/* Steps a statement expected to finish without rows. */
static int step_done(struct tx *t, sqlite3_stmt *st, struct kx_err *err)
{
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return db_error(t->c->db, rc, err);
	return 0;
}

#define STMT(var, sql)                                                                         \
	static const char var##_sql[] = sql;                                                   \
	sqlite3_stmt *var = stmt(t->c, var##_sql, err);                                        \
	if (!var)                                                                              \
		return err ? err->code : KX_ESTORE;

/* ---- incidents ---- */

static int sq_incident_next_seq(void *p, const char *day, int64_t *seq, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO incident_counters (day, last) VALUES (?, 1) "
		 "ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last");
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		done(st);
		return db_error(t->c->db, rc, err);
	}
	*seq = sqlite3_column_int64(st, 0);
	done(st);
	return 0;
}

static int write_children(struct tx *t, const struct kx_incident *inc, bool replace,
			  struct kx_err *err)
{
	int rc;
	if (replace) {
		STMT(d1, "DELETE FROM incident_labels WHERE incident_id = ?");
		STMT(d2, "DELETE FROM incident_types WHERE incident_id = ?");
		STMT(d3, "DELETE FROM incident_roles WHERE incident_id = ?");
		sqlite3_stmt *ds[] = {d1, d2, d3};
		for (int i = 0; i < 3; i++) {
			sqlite3_bind_text(ds[i], 1, inc->id, -1, SQLITE_STATIC);
			if ((rc = step_done(t, ds[i], err)))
				return rc;
		}
	}
	{
		STMT(st, "INSERT INTO incident_labels (incident_id, key, value) VALUES (?, ?, ?)");
		for (size_t i = 0; i < inc->labels.n; i++) {
			sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, inc->labels.v[i].key, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, inc->labels.v[i].value, -1, SQLITE_STATIC);
			if ((rc = step_done(t, st, err)))
				return rc;
		}
	}
	{
		STMT(st, "INSERT INTO incident_types (incident_id, position, type) VALUES (?, ?, ?)");
		for (size_t i = 0; i < inc->ntypes; i++) {
			sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)i);
			sqlite3_bind_text(st, 3, inc->types[i], -1, SQLITE_STATIC);
			if ((rc = step_done(t, st, err)))
				return rc;
		}
	}
	{
		STMT(st, "INSERT INTO incident_roles (incident_id, position, role, person) "
			 "VALUES (?, ?, ?, ?)");
		for (size_t i = 0; i < inc->nroles; i++) {
			sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)i);
			sqlite3_bind_text(st, 3, inc->roles[i].role, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, inc->roles[i].person, -1, SQLITE_STATIC);
			if ((rc = step_done(t, st, err)))
				return rc;
		}
	}
	return 0;
}

/* Binds the incident's own columns at 1..20 (shared by insert and update). */
static void bind_incident(sqlite3_stmt *st, const struct kx_incident *inc)
{
	bind_text(st, 1, inc->title);
	bind_text(st, 2, inc->summary);
	bind_text(st, 3, inc->severity);
	bind_text(st, 4, kx_status_name(inc->status));
	bind_text(st, 5, inc->root_cause);
	bind_text(st, 6, inc->resolution);
	bind_count(st, 7, inc->impact.users);
	bind_count(st, 8, inc->impact.accounts);
	bind_count(st, 9, inc->impact.actions);
	bind_text(st, 10, inc->impact.revenue);
	bind_text(st, 11, inc->impact.description);
	bind_time(st, 12, inc->started_at);
	bind_time(st, 13, inc->detected_at);
	bind_time(st, 14, inc->declared_at);
	bind_time(st, 15, inc->acknowledged_at);
	bind_time(st, 16, inc->mitigated_at);
	bind_time(st, 17, inc->resolved_at);
	bind_text(st, 18, inc->created_by);
	bind_time(st, 19, inc->updated_at);
	sqlite3_bind_int64(st, 20, inc->version);
}

static int sq_incident_insert(void *p, const struct kx_incident *inc, struct kx_err *err)
{
	struct tx *t = p;
	char day[9];
	int rc;
	STMT(st, "INSERT INTO incidents (title, summary, severity, status, root_cause, resolution, "
		 "impact_users, impact_accounts, impact_actions, impact_revenue, impact_description, "
		 "started_at, detected_at, declared_at, acknowledged_at, mitigated_at, resolved_at, "
		 "created_by, updated_at, version, id, day, seq) "
		 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	memcpy(day, inc->id + 4, 8);
	day[8] = '\0';
	bind_incident(st, inc);
	sqlite3_bind_text(st, 21, inc->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 22, day, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 23, strtoll(inc->id + 13, NULL, 10));
	if ((rc = step_done(t, st, err)))
		return rc;
	return write_children(t, inc, false, err);
}

static int sq_incident_update(void *p, const struct kx_incident *inc, int64_t expected,
			      struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE incidents SET title=?, summary=?, severity=?, status=?, root_cause=?, "
		 "resolution=?, impact_users=?, impact_accounts=?, impact_actions=?, "
		 "impact_revenue=?, impact_description=?, started_at=?, detected_at=?, "
		 "declared_at=?, acknowledged_at=?, mitigated_at=?, resolved_at=?, created_by=?, "
		 "updated_at=?, version=? WHERE id=? AND version=?");
	bind_incident(st, inc);
	sqlite3_bind_text(st, 21, inc->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 22, expected);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ECONFLICT,
				  "incident '%s' was changed by someone else (expected version %lld)",
				  inc->id, (long long)expected);
	return write_children(t, inc, true, err);
}

static int load_children(struct tx *t, struct kx_incident *inc, struct kx_err *err)
{
	int rc;
	{
		STMT(st, "SELECT key, value FROM incident_labels WHERE incident_id = ? ORDER BY key");
		sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			/* Stored labels were validated on the way in; load as is. */
			if (kx_labels_set(&inc->labels, (const char *)sqlite3_column_text(st, 0),
					  (const char *)sqlite3_column_text(st, 1), NULL)) {
				done(st);
				return kx_err_set(err, KX_ENOMEM, "out of memory");
			}
		}
		done(st);
		if (rc != SQLITE_DONE)
			return db_error(t->c->db, rc, err);
	}
	{
		STMT(st, "SELECT type FROM incident_types WHERE incident_id = ? ORDER BY position");
		sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (kx_incident_add_type(inc, (const char *)sqlite3_column_text(st, 0))) {
				done(st);
				return kx_err_set(err, KX_ENOMEM, "out of memory");
			}
		}
		done(st);
		if (rc != SQLITE_DONE)
			return db_error(t->c->db, rc, err);
	}
	{
		STMT(st, "SELECT role, person FROM incident_roles WHERE incident_id = ? "
			 "ORDER BY position");
		sqlite3_bind_text(st, 1, inc->id, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (kx_incident_add_role(inc, (const char *)sqlite3_column_text(st, 0),
						 (const char *)sqlite3_column_text(st, 1))) {
				done(st);
				return kx_err_set(err, KX_ENOMEM, "out of memory");
			}
		}
		done(st);
		if (rc != SQLITE_DONE)
			return db_error(t->c->db, rc, err);
	}
	return 0;
}

static int sq_incident_get(void *p, const char *id, struct kx_incident *inc, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT title, summary, severity, status, root_cause, resolution, impact_users, "
		 "impact_accounts, impact_actions, impact_revenue, impact_description, started_at, "
		 "detected_at, declared_at, acknowledged_at, mitigated_at, resolved_at, created_by, "
		 "updated_at, version FROM incidents WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		done(st);
		return kx_err_set(err, KX_ENOTFOUND, "incident '%.64s' not found", id);
	}
	if (rc != SQLITE_ROW) {
		done(st);
		return db_error(t->c->db, rc, err);
	}
	kx_incident_init(inc);
	snprintf(inc->id, sizeof(inc->id), "%s", id);
	inc->title = col_text(st, 0);
	inc->summary = col_text(st, 1);
	inc->severity = col_text(st, 2);
	kx_status_parse((const char *)sqlite3_column_text(st, 3), &inc->status, NULL);
	inc->root_cause = col_text(st, 4);
	inc->resolution = col_text(st, 5);
	inc->impact.users = col_count(st, 6);
	inc->impact.accounts = col_count(st, 7);
	inc->impact.actions = col_count(st, 8);
	inc->impact.revenue = col_text(st, 9);
	inc->impact.description = col_text(st, 10);
	inc->started_at = col_time(st, 11);
	inc->detected_at = col_time(st, 12);
	inc->declared_at = col_time(st, 13);
	inc->acknowledged_at = col_time(st, 14);
	inc->mitigated_at = col_time(st, 15);
	inc->resolved_at = col_time(st, 16);
	inc->created_by = col_text(st, 17);
	inc->updated_at = col_time(st, 18);
	inc->version = sqlite3_column_int64(st, 19);
	done(st);
	if (!inc->title || !inc->severity || !inc->created_by) {
		kx_incident_release(inc);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if ((rc = load_children(t, inc, err))) {
		kx_incident_release(inc);
		return rc;
	}
	return 0;
}

static int sq_incident_list(void *p, const struct kx_incident_filter *f,
			    struct kx_incident_list *out, struct kx_err *err)
{
	struct tx *t = p;
	struct kx_buf sql;
	sqlite3_stmt *st = NULL;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, bi = 1;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	kx_buf_adds(&sql, "SELECT id FROM incidents i WHERE 1=1");
	if (f->status)
		kx_buf_adds(&sql, " AND status = ?");
	if (f->severity)
		kx_buf_adds(&sql, " AND severity = ?");
	if (f->open_only)
		kx_buf_adds(&sql, " AND status <> 'resolved'");
	if (f->declared_since != KX_TIME_UNSET)
		kx_buf_adds(&sql, " AND declared_at >= ?");
	for (size_t i = 0; i < f->labels.n; i++)
		kx_buf_adds(&sql, " AND EXISTS (SELECT 1 FROM incident_labels l WHERE "
				  "l.incident_id = i.id AND l.key = ? AND l.value = ?)");
	if (kx_buf_adds(&sql, " ORDER BY declared_at DESC, id DESC LIMIT ?"))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(t->c->db, kx_buf_str(&sql), -1, &st, NULL) != SQLITE_OK) {
		rc = db_error(t->c->db, SQLITE_ERROR, err);
		goto out;
	}
	if (f->status)
		sqlite3_bind_text(st, bi++, f->status, -1, SQLITE_STATIC);
	if (f->severity)
		sqlite3_bind_text(st, bi++, f->severity, -1, SQLITE_STATIC);
	if (f->declared_since != KX_TIME_UNSET)
		sqlite3_bind_int64(st, bi++, f->declared_since);
	for (size_t i = 0; i < f->labels.n; i++) {
		sqlite3_bind_text(st, bi++, f->labels.v[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, bi++, f->labels.v[i].value, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, bi++, f->limit > 0 ? f->limit : 100);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&ids, &cap, n + 1, sizeof(*ids))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		if (!(ids[n] = col_text(st, 0))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(t->c->db, rc, err);
		goto out;
	}
	rc = 0;
	if (n && !(out->v = calloc(n, sizeof(*out->v)))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = sq_incident_get(t, ids[i], &out->v[i], err))) {
			kx_incident_list_release(out);
			goto out;
		}
		out->n++;
	}
out:
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	kx_buf_release(&sql);
	return rc;
}

/* ---- timeline ---- */

static int sq_timeline_add(void *p, const char *incident, struct kx_timeline_entry *e,
			   struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO timeline (incident_id, at, author, kind, text) VALUES (?,?,?,?,?)");
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, e->at);
	sqlite3_bind_text(st, 3, e->author, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->text, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	e->id = sqlite3_last_insert_rowid(t->c->db);
	return 0;
}

static int sq_timeline_list(void *p, const char *incident, struct kx_timeline *out,
			    struct kx_err *err)
{
	struct tx *t = p;
	size_t cap = 0;
	int rc;
	STMT(st, "SELECT id, at, author, kind, text FROM timeline WHERE incident_id = ? "
		 "ORDER BY at, id");
	out->v = NULL;
	out->n = 0;
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kx_timeline_entry *e;
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v)))
			goto nomem;
		e = &out->v[out->n++];
		e->id = sqlite3_column_int64(st, 0);
		e->at = sqlite3_column_int64(st, 1);
		e->author = col_text(st, 2);
		e->kind = col_text(st, 3);
		e->text = col_text(st, 4);
		if (!e->author || !e->kind || !e->text)
			goto nomem;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_timeline_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
nomem:
	done(st);
	kx_timeline_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

/* ---- action items ---- */

static void read_item(sqlite3_stmt *st, struct kx_action_item *a)
{
	const char *kind = (const char *)sqlite3_column_text(st, 2);
	const char *due = (const char *)sqlite3_column_text(st, 4);
	memset(a, 0, sizeof(*a));
	a->number = sqlite3_column_int64(st, 0);
	a->title = col_text(st, 1);
	kx_item_kind_parse(kind ? kind : "", &a->kind, NULL);
	a->owner = col_text(st, 3);
	snprintf(a->due, sizeof(a->due), "%s", due ? due : "");
	a->done = strcmp((const char *)sqlite3_column_text(st, 5), "done") == 0;
	a->created_at = sqlite3_column_int64(st, 6);
	a->done_at = col_time(st, 7);
}

#define ITEM_COLS "number, title, kind, owner, due, status, created_at, done_at"

static int sq_action_item_add(void *p, const char *incident, struct kx_action_item *a,
			      struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO action_items (incident_id, number, title, kind, owner, due, status, "
		 "created_at, done_at) SELECT ?1, coalesce(max(number), 0) + 1, ?2, ?3, ?4, ?5, ?6, "
		 "?7, ?8 FROM action_items WHERE incident_id = ?1 RETURNING number");
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kx_item_kind_name(a->kind), -1, SQLITE_STATIC);
	bind_text(st, 4, a->owner);
	bind_text(st, 5, a->due[0] ? a->due : NULL);
	sqlite3_bind_text(st, 6, a->done ? "done" : "open", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, a->created_at);
	bind_time(st, 8, a->done_at);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		done(st);
		return db_error(t->c->db, rc, err);
	}
	a->number = sqlite3_column_int64(st, 0);
	rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return db_error(t->c->db, rc, err);
	return 0;
}

static int sq_action_item_get(void *p, const char *incident, int64_t number,
			      struct kx_action_item *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " ITEM_COLS " FROM action_items WHERE incident_id = ? AND number = ?");
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, number);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_item(st, out);
		done(st);
		if (!out->title) {
			kx_action_item_release(out);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
		return 0;
	}
	done(st);
	if (rc == SQLITE_DONE)
		return kx_err_set(err, KX_ENOTFOUND, "action item %lld of '%s' not found",
				  (long long)number, incident);
	return db_error(t->c->db, rc, err);
}

static int sq_action_item_update(void *p, const char *incident, const struct kx_action_item *a,
				 struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "UPDATE action_items SET title=?, kind=?, owner=?, due=?, status=?, done_at=? "
		 "WHERE incident_id=? AND number=?");
	sqlite3_bind_text(st, 1, a->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kx_item_kind_name(a->kind), -1, SQLITE_STATIC);
	bind_text(st, 3, a->owner);
	bind_text(st, 4, a->due[0] ? a->due : NULL);
	sqlite3_bind_text(st, 5, a->done ? "done" : "open", -1, SQLITE_STATIC);
	bind_time(st, 6, a->done_at);
	sqlite3_bind_text(st, 7, incident, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, a->number);
	return step_done(t, st, err);
}

static int sq_action_item_list(void *p, const char *incident, struct kx_action_items *out,
			       struct kx_err *err)
{
	struct tx *t = p;
	size_t cap = 0;
	int rc;
	STMT(st, "SELECT " ITEM_COLS " FROM action_items WHERE incident_id = ? ORDER BY number");
	out->v = NULL;
	out->n = 0;
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v)))
			goto nomem;
		read_item(st, &out->v[out->n]);
		out->n++;
		if (!out->v[out->n - 1].title)
			goto nomem;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_action_items_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
nomem:
	done(st);
	kx_action_items_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

/* ---- tokens ---- */

static int sq_token_count(void *p, int64_t *n, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT count(*) FROM tokens");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		done(st);
		return db_error(t->c->db, rc, err);
	}
	*n = sqlite3_column_int64(st, 0);
	done(st);
	return 0;
}

static int sq_token_insert(void *p, const struct kx_token *tok, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO tokens (id, hash, name, role, created_by, created_at, revoked_at, "
		 "automation) VALUES (?,?,?,?,?,?,?,?)");
	STMT(sl, "INSERT INTO token_labels (token_id, key, value) VALUES (?,?,?)");
	sqlite3_bind_text(st, 1, tok->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, tok->hash, KX_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, tok->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, kx_access_name(tok->role), -1, SQLITE_STATIC);
	bind_text(st, 5, tok->created_by);
	sqlite3_bind_int64(st, 6, tok->created_at);
	bind_time(st, 7, tok->revoked_at);
	sqlite3_bind_int(st, 8, tok->automation);
	if ((rc = step_done(t, st, err)))
		return rc;
	for (size_t i = 0; i < tok->scope.n; i++) {
		sqlite3_bind_text(sl, 1, tok->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(sl, 2, tok->scope.v[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(sl, 3, tok->scope.v[i].value, -1, SQLITE_STATIC);
		if ((rc = step_done(t, sl, err)))
			return rc;
	}
	return 0;
}

#define TOKEN_COLS "id, hash, name, role, created_by, created_at, revoked_at, automation"

static int read_token(struct tx *t, sqlite3_stmt *st, struct kx_token *tok, struct kx_err *err)
{
	const void *h = sqlite3_column_blob(st, 1);
	int rc;
	kx_token_init(tok);
	snprintf(tok->id, sizeof(tok->id), "%s", (const char *)sqlite3_column_text(st, 0));
	if (h && sqlite3_column_bytes(st, 1) == KX_HASH_LEN)
		memcpy(tok->hash, h, KX_HASH_LEN);
	tok->name = col_text(st, 2);
	kx_access_parse((const char *)sqlite3_column_text(st, 3), &tok->role, NULL);
	tok->created_by = col_text(st, 4);
	tok->created_at = sqlite3_column_int64(st, 5);
	tok->revoked_at = col_time(st, 6);
	tok->automation = sqlite3_column_int(st, 7) != 0;
	if (!tok->name)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	{
		STMT(sl, "SELECT key, value FROM token_labels WHERE token_id = ? ORDER BY key");
		sqlite3_bind_text(sl, 1, tok->id, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(sl)) == SQLITE_ROW) {
			if (kx_labels_set(&tok->scope, (const char *)sqlite3_column_text(sl, 0),
					  (const char *)sqlite3_column_text(sl, 1), NULL)) {
				done(sl);
				return kx_err_set(err, KX_ENOMEM, "out of memory");
			}
		}
		done(sl);
		if (rc != SQLITE_DONE)
			return db_error(t->c->db, rc, err);
	}
	return 0;
}

static int token_one(struct tx *t, sqlite3_stmt *st, struct kx_token *out, const char *what,
		     struct kx_err *err)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		done(st);
		return kx_err_set(err, KX_ENOTFOUND, "token %s not found", what);
	}
	if (rc != SQLITE_ROW) {
		done(st);
		return db_error(t->c->db, rc, err);
	}
	/* read_token runs another statement; this one stays on its row. */
	rc = read_token(t, st, out, err);
	done(st);
	if (rc)
		kx_token_release(out);
	return rc;
}

static int sq_token_by_hash(void *p, const uint8_t hash[KX_HASH_LEN], struct kx_token *out,
			    struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?");
	sqlite3_bind_blob(st, 1, hash, KX_HASH_LEN, SQLITE_STATIC);
	return token_one(t, st, out, "", err);
}

static int sq_token_get(void *p, const char *id, struct kx_token *out, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "SELECT " TOKEN_COLS " FROM tokens WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	return token_one(t, st, out, id, err);
}

static int sq_token_list(void *p, struct kx_tokens *out, struct kx_err *err)
{
	struct tx *t = p;
	size_t cap = 0;
	int rc;
	STMT(st, "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, id");
	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto fail;
		}
		out->n++;
		if ((rc = read_token(t, st, &out->v[out->n - 1], err)))
			goto fail;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_tokens_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
fail:
	done(st);
	kx_tokens_release(out);
	return rc;
}

static int sq_token_revoke(void *p, const char *id, kx_ms at, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1) {
		struct kx_token tok;
		if ((rc = sq_token_get(t, id, &tok, err)))
			return rc; /* KX_ENOTFOUND for a token that never was */
		kx_token_release(&tok);
		return kx_err_set(err, KX_ECONFLICT, "token '%s' is already revoked", id);
	}
	return 0;
}

/* ---- switches, caps, approvals (core/guard.h) ---- */

/* Column i as a new string in *out (NULL for SQL NULL); false when out of
 * memory. */
static bool col_opt(sqlite3_stmt *st, int i, char **out)
{
	*out = col_text(st, i);
	return *out || sqlite3_column_type(st, i) == SQLITE_NULL;
}

/* Binds a ramp to columns i..i+4 (start, end, window, floor, peak): all
 * NULL when there is none. */
static void bind_ramp(sqlite3_stmt *st, int i, const struct kx_gate_ramp *r)
{
	if (r->start == KX_TIME_UNSET) {
		for (int k = 0; k < 5; k++)
			sqlite3_bind_null(st, i + k);
		return;
	}
	sqlite3_bind_int64(st, i, r->start);
	bind_time(st, i + 1, r->end);
	sqlite3_bind_int64(st, i + 2, r->window);
	sqlite3_bind_int64(st, i + 3, r->floor);
	sqlite3_bind_int64(st, i + 4, r->peak);
}

#define SWITCH_COLS                                                                            \
	"id, selector, mode, reason, set_by, set_at, expires_at, incident_id, ramp_start, "    \
	"ramp_end, ramp_window, ramp_floor, ramp_peak, cleared_at, cleared_by, clear_reason"

/* Reads a row of SWITCH_COLS into sw (initialised here). */
static int read_switch(sqlite3_stmt *st, struct kx_switch *sw, struct kx_err *err)
{
	kx_switch_init(sw);
	snprintf(sw->id, sizeof(sw->id), "%s", (const char *)sqlite3_column_text(st, 0));
	kx_gate_mode_parse((const char *)sqlite3_column_text(st, 2), &sw->mode, NULL);
	sw->set_at = sqlite3_column_int64(st, 5);
	sw->expires_at = col_time(st, 6);
	if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
		sw->ramp.start = sqlite3_column_int64(st, 8);
		sw->ramp.end = col_time(st, 9);
		sw->ramp.window = sqlite3_column_int64(st, 10);
		sw->ramp.floor = (uint32_t)sqlite3_column_int64(st, 11);
		sw->ramp.peak = (uint32_t)sqlite3_column_int64(st, 12);
	}
	sw->cleared_at = col_time(st, 13);
	if (!col_opt(st, 1, &sw->selector) || !col_opt(st, 3, &sw->reason) ||
	    !col_opt(st, 4, &sw->set_by) || !col_opt(st, 7, &sw->incident) ||
	    !col_opt(st, 14, &sw->cleared_by) || !col_opt(st, 15, &sw->clear_reason))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_switch_insert(void *p, const struct kx_switch *sw, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "INSERT INTO switches (" SWITCH_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, sw->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sw->selector ? sw->selector : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kx_gate_mode_name(sw->mode), -1, SQLITE_STATIC);
	bind_text(st, 4, sw->reason);
	bind_text(st, 5, sw->set_by);
	bind_time(st, 6, sw->set_at);
	bind_time(st, 7, sw->expires_at);
	bind_text(st, 8, sw->incident);
	bind_ramp(st, 9, &sw->ramp);
	bind_time(st, 14, sw->cleared_at);
	bind_text(st, 15, sw->cleared_by);
	bind_text(st, 16, sw->clear_reason);
	return step_done(t, st, err);
}

static int sq_switch_get(void *p, const char *id, struct kx_switch *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " SWITCH_COLS " FROM switches WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = read_switch(st, out, err);
		done(st);
		if (rc)
			kx_switch_release(out);
		return rc;
	}
	done(st);
	if (rc == SQLITE_DONE)
		return kx_err_set(err, KX_ENOTFOUND, "switch '%.64s' not found", id);
	return db_error(t->c->db, rc, err);
}

static int sq_switch_update(void *p, const struct kx_switch *sw, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE switches SET mode=?, reason=?, expires_at=?, ramp_start=?, ramp_end=?, "
		 "ramp_window=?, ramp_floor=?, ramp_peak=?, cleared_at=?, cleared_by=?, "
		 "clear_reason=? WHERE id=?");
	sqlite3_bind_text(st, 1, kx_gate_mode_name(sw->mode), -1, SQLITE_STATIC);
	bind_text(st, 2, sw->reason);
	bind_time(st, 3, sw->expires_at);
	bind_ramp(st, 4, &sw->ramp);
	bind_time(st, 9, sw->cleared_at);
	bind_text(st, 10, sw->cleared_by);
	bind_text(st, 11, sw->clear_reason);
	sqlite3_bind_text(st, 12, sw->id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "switch '%.64s' not found", sw->id);
	return 0;
}

static int sq_switch_list(void *p, bool all, kx_ms now, struct kx_switches *out,
			  struct kx_err *err)
{
	struct tx *t = p;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;
	/* In force: kx_switch_active in SQL. */
	STMT(sa, "SELECT " SWITCH_COLS " FROM switches ORDER BY set_at, id");
	STMT(sn, "SELECT " SWITCH_COLS " FROM switches WHERE cleared_at IS NULL "
		 "AND (expires_at IS NULL OR expires_at > ?1) "
		 "AND (ramp_start IS NULL OR ramp_end > ?1) ORDER BY set_at, id");
	st = all ? sa : sn;
	if (!all)
		sqlite3_bind_int64(st, 1, now);
	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto fail;
		}
		out->n++;
		if ((rc = read_switch(st, &out->v[out->n - 1], err)))
			goto fail;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_switches_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
fail:
	done(st);
	kx_switches_release(out);
	return rc;
}

static int sq_cap_put(void *p, const struct kx_cap *c, bool *created, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(ins, "INSERT INTO caps (id, spec, set_by, set_at) VALUES (?,?,?,?) "
		  "ON CONFLICT (id) DO NOTHING");
	STMT(upd, "UPDATE caps SET spec=?2, set_by=?3, set_at=?4 WHERE id=?1");
	/* The writer lock is held for the whole transaction: nobody can delete
	 * the row between the two statements. */
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = k ? upd : ins;
		bind_text(st, 1, c->id);
		bind_text(st, 2, c->spec);
		bind_text(st, 3, c->set_by);
		bind_time(st, 4, c->set_at);
		if ((rc = step_done(t, st, err)))
			return rc;
		if (sqlite3_changes(t->c->db) == 1) {
			*created = k == 0;
			return 0;
		}
	}
	return kx_err_set(err, KX_ESTORE, "database error: cap '%.64s' was neither added nor replaced",
			  c->id);
}

static int sq_cap_delete(void *p, const char *id, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "DELETE FROM caps WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "cap '%.64s' not found", id);
	return 0;
}

static int sq_cap_list(void *p, struct kx_caps *out, struct kx_err *err)
{
	struct tx *t = p;
	size_t cap = 0;
	int rc;
	STMT(st, "SELECT id, spec, set_by, set_at FROM caps ORDER BY id");
	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kx_cap *c;
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v)))
			goto nomem;
		c = &out->v[out->n++];
		kx_cap_init(c);
		c->set_at = sqlite3_column_int64(st, 3);
		if (!col_opt(st, 0, &c->id) || !col_opt(st, 1, &c->spec) ||
		    !col_opt(st, 2, &c->set_by))
			goto nomem;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_caps_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
nomem:
	done(st);
	kx_caps_release(out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

#define APPROVAL_COLS                                                                          \
	"id, switch_id, labels, idempotency_key, read_only, requested_by, requested_at, "      \
	"expires_at, status, decided_by, decided_at, note"

/* Reads a row of APPROVAL_COLS into a (initialised here). */
static int read_approval(sqlite3_stmt *st, struct kx_approval *a, struct kx_err *err)
{
	const char *labels = (const char *)sqlite3_column_text(st, 2);
	kx_approval_init(a);
	snprintf(a->id, sizeof(a->id), "%s", (const char *)sqlite3_column_text(st, 0));
	a->read_only = sqlite3_column_int(st, 4) != 0;
	a->requested_at = sqlite3_column_int64(st, 6);
	a->expires_at = col_time(st, 7);
	kx_approval_status_parse((const char *)sqlite3_column_text(st, 8), &a->status, NULL);
	a->decided_at = col_time(st, 10);
	if (!col_opt(st, 1, &a->switch_id) || !col_opt(st, 3, &a->idempotency_key) ||
	    !col_opt(st, 5, &a->requested_by) || !col_opt(st, 9, &a->decided_by) ||
	    !col_opt(st, 11, &a->note))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return labels ? kx_audit_labels_parse(labels, &a->labels, err) : 0;
}

/* Steps st to the end, reading each row into a new element of out. */
static int read_approval_rows(struct tx *t, sqlite3_stmt *st, struct kx_approvals *out,
			      struct kx_err *err)
{
	size_t cap = 0;
	int rc;
	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto fail;
		}
		out->n++;
		if ((rc = read_approval(st, &out->v[out->n - 1], err)))
			goto fail;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_approvals_release(out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
fail:
	done(st);
	kx_approvals_release(out);
	return rc;
}

/* Steps st, expected to give one row of APPROVAL_COLS or none (then
 * KX_ENOTFOUND "approval request WHAT not found"). */
static int approval_one(struct tx *t, sqlite3_stmt *st, struct kx_approval *out,
			const char *what, struct kx_err *err)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = read_approval(st, out, err);
		done(st);
		if (rc)
			kx_approval_release(out);
		return rc;
	}
	done(st);
	if (rc == SQLITE_DONE)
		return kx_err_set(err, KX_ENOTFOUND, "approval request %s not found", what);
	return db_error(t->c->db, rc, err);
}

static int sq_approval_insert(void *p, const struct kx_approval *a, struct kx_err *err)
{
	struct tx *t = p;
	struct kx_buf labels;
	int rc;
	STMT(st, "INSERT INTO approvals (" APPROVAL_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
	kx_buf_init(&labels, 64 * 1024);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	bind_text(st, 2, a->switch_id);
	sqlite3_bind_text(st, 3, kx_buf_str(&labels), (int)labels.len, SQLITE_STATIC);
	bind_text(st, 4, a->idempotency_key);
	sqlite3_bind_int(st, 5, a->read_only);
	bind_text(st, 6, a->requested_by);
	bind_time(st, 7, a->requested_at);
	bind_time(st, 8, a->expires_at);
	sqlite3_bind_text(st, 9, kx_approval_status_name(a->status), -1, SQLITE_STATIC);
	bind_text(st, 10, a->decided_by);
	bind_time(st, 11, a->decided_at);
	bind_text(st, 12, a->note);
	rc = step_done(t, st, err);
	kx_buf_release(&labels);
	return rc;
}

static int sq_approval_get(void *p, const char *id, struct kx_approval *out,
			   struct kx_err *err)
{
	struct tx *t = p;
	char what[96];
	STMT(st, "SELECT " APPROVAL_COLS " FROM approvals WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "'%.64s'", id);
	return approval_one(t, st, out, what, err);
}

static int sq_approval_pending_by_key(void *p, const char *switch_id, const char *key,
				      kx_ms now, struct kx_approval *out, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "SELECT " APPROVAL_COLS " FROM approvals WHERE switch_id = ? "
		 "AND idempotency_key = ? AND status = 'pending' "
		 "AND (expires_at IS NULL OR expires_at > ?) "
		 "ORDER BY requested_at DESC, id DESC LIMIT 1");
	if (!switch_id || !key)
		return kx_err_set(err, KX_ENOTFOUND, "no pending approval request for that key");
	sqlite3_bind_text(st, 1, switch_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	return approval_one(t, st, out, "for that key", err);
}

static int sq_approval_update(void *p, const struct kx_approval *a, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE approvals SET status=?, decided_by=?, decided_at=?, note=? WHERE id=?");
	sqlite3_bind_text(st, 1, kx_approval_status_name(a->status), -1, SQLITE_STATIC);
	bind_text(st, 2, a->decided_by);
	bind_time(st, 3, a->decided_at);
	bind_text(st, 4, a->note);
	sqlite3_bind_text(st, 5, a->id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "approval request '%.64s' not found", a->id);
	return 0;
}

static int sq_approval_list(void *p, const struct kx_approval_filter *f,
			    struct kx_approvals *out, struct kx_err *err)
{
	struct tx *t = p;
	int limit = f->limit > 0 ? f->limit : 100;
	STMT(sa, "SELECT " APPROVAL_COLS " FROM approvals "
		 "ORDER BY requested_at DESC, id DESC LIMIT ?");
	STMT(sp, "SELECT " APPROVAL_COLS " FROM approvals WHERE status = 'pending' "
		 "AND (expires_at IS NULL OR expires_at > ?) "
		 "ORDER BY requested_at DESC, id DESC LIMIT ?");
	if (f->pending_only) {
		sqlite3_bind_int64(sp, 1, f->now);
		sqlite3_bind_int(sp, 2, limit);
		return read_approval_rows(t, sp, out, err);
	}
	sqlite3_bind_int(sa, 1, limit);
	return read_approval_rows(t, sa, out, err);
}

/* ---- jobs ---- */

static int sq_job_enqueue(void *p, const char *kind, const char *payload, kx_ms run_at,
			  int64_t *id, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO jobs (kind, payload, run_at) VALUES (?, ?, ?) RETURNING id");
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, run_at);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && id)
		*id = sqlite3_column_int64(st, 0);
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? 0 : db_error(t->c->db, rc, err);
}

/* Runs fn in a write transaction of its own. */
static int in_write_tx(struct be *be, int (*fn)(struct tx *, void *, struct kx_err *),
		       void *arg, struct kx_err *err)
{
	void *t;
	int rc = sq_begin_impl(be, true, &t, err);
	if (rc)
		return rc;
	if ((rc = fn(t, arg, err))) {
		sq_rollback(t);
		return rc;
	}
	return sq_commit(t, err);
}

struct claim_args {
	const char *worker;
	kx_ms now, lease;
	int max;
	struct kx_jobs *out;
};

static int claim_fn(struct tx *t, void *arg, struct kx_err *err)
{
	struct claim_args *a = arg;
	size_t cap = 0;
	int rc;
	STMT(st, "UPDATE jobs SET leased_by = ?1, lease_until = ?2, attempts = attempts + 1 "
		 "WHERE id IN (SELECT id FROM jobs WHERE run_at <= ?3 AND "
		 "(lease_until IS NULL OR lease_until <= ?3) ORDER BY run_at, id LIMIT ?4) "
		 "RETURNING id, kind, payload, attempts, run_at, lease_until");
	sqlite3_bind_text(st, 1, a->worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->now + a->lease);
	sqlite3_bind_int64(st, 3, a->now);
	sqlite3_bind_int(st, 4, a->max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kx_job *j;
		if (kx_array_grow(&a->out->v, &cap, a->out->n + 1, sizeof(*a->out->v)))
			goto nomem;
		j = &a->out->v[a->out->n++];
		j->id = sqlite3_column_int64(st, 0);
		j->kind = col_text(st, 1);
		j->payload = col_text(st, 2);
		j->attempts = sqlite3_column_int(st, 3);
		j->run_at = sqlite3_column_int64(st, 4);
		j->lease_until = sqlite3_column_int64(st, 5);
		if (!j->kind || !j->payload)
			goto nomem;
	}
	done(st);
	if (rc != SQLITE_DONE) {
		kx_jobs_release(a->out);
		return db_error(t->c->db, rc, err);
	}
	return 0;
nomem:
	done(st);
	kx_jobs_release(a->out);
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

static int sq_job_claim(void *be, const char *worker, kx_ms now, kx_ms lease, int max,
			struct kx_jobs *out, struct kx_err *err)
{
	struct claim_args a = {worker, now, lease, max, out};
	out->v = NULL;
	out->n = 0;
	return in_write_tx(be, claim_fn, &a, err);
}

struct finish_args {
	int64_t id;
	const char *worker;
	kx_ms retry_at; /* KX_TIME_UNSET: finish */
};

static int finish_fn(struct tx *t, void *arg, struct kx_err *err)
{
	struct finish_args *a = arg;
	sqlite3_stmt *st;
	int rc;
	if (a->retry_at == KX_TIME_UNSET) {
		STMT(del, "DELETE FROM jobs WHERE id = ? AND leased_by = ?");
		st = del;
		sqlite3_bind_int64(st, 1, a->id);
		sqlite3_bind_text(st, 2, a->worker, -1, SQLITE_STATIC);
	} else {
		STMT(upd, "UPDATE jobs SET run_at = ?3, leased_by = NULL, lease_until = NULL "
			  "WHERE id = ?1 AND leased_by = ?2");
		st = upd;
		sqlite3_bind_int64(st, 1, a->id);
		sqlite3_bind_text(st, 2, a->worker, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, a->retry_at);
	}
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ECONFLICT, "job %lld is not leased to '%s'",
				  (long long)a->id, a->worker);
	return 0;
}

static int sq_job_finish(void *be, int64_t id, const char *worker, struct kx_err *err)
{
	struct finish_args a = {id, worker, KX_TIME_UNSET};
	return in_write_tx(be, finish_fn, &a, err);
}

static int sq_job_retry(void *be, int64_t id, const char *worker, kx_ms run_at,
			struct kx_err *err)
{
	struct finish_args a = {id, worker, run_at};
	return in_write_tx(be, finish_fn, &a, err);
}

static int sq_singleton_try(void *be, const char *name, bool *acquired, struct kx_err *err)
{
	(void)be;
	(void)name;
	(void)err;
	*acquired = true; /* one daemon per SQLite database */
	return 0;
}

/* ---- audit ---- */

#define AUDIT_COLS                                                                             \
	"seq, at, actor, client, account, platform, lane, action, target, content_hash, "     \
	"outcome, trace_id, artifact_url, idempotency_key, labels, prev_hash, hash"

static int sq_audit_append(void *p, struct kx_audit_event *ev, size_t n, struct kx_err *err)
{
	struct tx *t = p;
	uint8_t head[KX_HASH_LEN];
	bool linked = false;
	struct kx_buf labels;
	int64_t seq = 0;
	int rc;

	if (!t->write)
		return kx_err_set(err, KX_ESTORE, "database error: audit append in a read transaction");
	{
		/* The writer lock is held for the whole transaction: nobody can
		 * append between reading the head and linking after it. */
		STMT(hd, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
		rc = sqlite3_step(hd);
		if (rc == SQLITE_ROW) {
			seq = sqlite3_column_int64(hd, 0);
			if (sqlite3_column_bytes(hd, 1) == KX_HASH_LEN) {
				memcpy(head, sqlite3_column_blob(hd, 1), KX_HASH_LEN);
				linked = true;
			}
		}
		done(hd);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return db_error(t->c->db, rc, err);
		if (seq > 0 && !linked)
			return kx_err_set(err, KX_ESTORE, "database error: the audit chain head has no hash");
	}
	STMT(ins, "INSERT INTO audit_events (" AUDIT_COLS ") "
		  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	kx_buf_init(&labels, 64 * 1024);
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct kx_audit_event *e = &ev[i];
		e->seq = ++seq;
		if (kx_audit_chain(e, linked ? head : NULL)) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			break;
		}
		memcpy(head, e->hash, KX_HASH_LEN);
		linked = true;
		kx_buf_clear(&labels);
		if (e->labels.n && kx_audit_labels_json(&e->labels, &labels)) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			break;
		}
		sqlite3_bind_int64(ins, 1, e->seq);
		sqlite3_bind_int64(ins, 2, e->at);
		for (size_t k = 0; k < KX_AUDIT_NFIELDS; k++) {
			const char *v = kx_audit_field_value(e, k);
			if (v)
				sqlite3_bind_text(ins, (int)k + 3, v, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(ins, (int)k + 3);
		}
		if (e->labels.n)
			sqlite3_bind_text(ins, 15, kx_buf_str(&labels), (int)labels.len, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 15);
		sqlite3_bind_blob(ins, 16, e->prev_hash, KX_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 17, e->hash, KX_HASH_LEN, SQLITE_STATIC);
		rc = step_done(t, ins, err);
	}
	kx_buf_release(&labels);
	return rc;
}

/* Reads a row of AUDIT_COLS (from column 0) into e. */
static int read_audit(sqlite3_stmt *st, struct kx_audit_event *e, struct kx_err *err)
{
	const char *labels = (const char *)sqlite3_column_text(st, 14);
	int rc;

	kx_audit_event_init(e);
	e->seq = sqlite3_column_int64(st, 0);
	e->at = sqlite3_column_int64(st, 1);
	for (size_t k = 0; k < KX_AUDIT_NFIELDS; k++) {
		int col = (int)k + 2;
		if (sqlite3_column_type(st, col) != SQLITE_NULL &&
		    !(*kx_audit_field(e, k) = col_text(st, col)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if (labels && (rc = kx_audit_labels_parse(labels, &e->labels, err)))
		return rc;
	/* A hash of the wrong size (only a hand-edited row has one) stays
	 * zero, and verification reports it. */
	if (sqlite3_column_bytes(st, 15) == KX_HASH_LEN)
		memcpy(e->prev_hash, sqlite3_column_blob(st, 15), KX_HASH_LEN);
	if (sqlite3_column_bytes(st, 16) == KX_HASH_LEN)
		memcpy(e->hash, sqlite3_column_blob(st, 16), KX_HASH_LEN);
	return 0;
}

/* Steps st to the end, reading each row into a new element of out. */
static int read_audit_rows(struct tx *t, sqlite3_stmt *st, struct kx_audit_events *out,
			   struct kx_err *err)
{
	size_t cap = 0;
	int rc;

	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto fail;
		}
		out->n++;
		if ((rc = read_audit(st, &out->v[out->n - 1], err)))
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(t->c->db, rc, err);
		goto fail;
	}
	return 0;
fail:
	kx_audit_events_release(out);
	return rc;
}

/* One bound value of a built statement. */
struct bindv {
	const char *s; /* NULL: the integer i */
	int64_t i;
};

/* Appends the WHERE clause of f to sql and its values to b (room for
 * 12 + 2 * KX_LABELS_MAX). Values are never part of the SQL text. */
static int audit_where(struct kx_buf *sql, const struct kx_audit_filter *f, struct bindv *b,
		       int *nb)
{
	const char *const cols[] = {"actor", "client", "account", "platform",
				    "lane",  "action", "target"};
	const char *const vals[] = {f->actor, f->client, f->account, f->platform,
				    f->lane,  f->action, f->target};
	int rc = kx_buf_adds(sql, " WHERE 1=1");

	if (f->since != KX_TIME_UNSET) {
		rc |= kx_buf_adds(sql, " AND at >= ?");
		b[(*nb)++] = (struct bindv){NULL, f->since};
	}
	if (f->until != KX_TIME_UNSET) {
		rc |= kx_buf_adds(sql, " AND at < ?");
		b[(*nb)++] = (struct bindv){NULL, f->until};
	}
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if (!vals[i])
			continue;
		rc |= kx_buf_addf(sql, " AND %s = ?", cols[i]);
		b[(*nb)++] = (struct bindv){vals[i], 0};
	}
	if (f->after_seq > 0) {
		rc |= kx_buf_adds(sql, " AND seq > ?");
		b[(*nb)++] = (struct bindv){NULL, f->after_seq};
	}
	/* Label keys are [a-z0-9_.-]: quoted, they are a safe JSON path. */
	for (size_t i = 0; i < f->labels.n && i < KX_LABELS_MAX; i++) {
		rc |= kx_buf_adds(sql, " AND json_extract(labels, '$.\"' || ? || '\"') = ?");
		b[(*nb)++] = (struct bindv){f->labels.v[i].key, 0};
		b[(*nb)++] = (struct bindv){f->labels.v[i].value, 0};
	}
	return rc ? KX_ENOMEM : 0;
}

#define AUDIT_BINDS (12 + 2 * KX_LABELS_MAX)

/* Prepares sql (built for one call) and binds b[0..nb) and then limit. */
static int prepare_built(struct tx *t, const struct kx_buf *sql, const struct bindv *b, int nb,
			 int limit, sqlite3_stmt **st, struct kx_err *err)
{
	if (sqlite3_prepare_v2(t->c->db, kx_buf_str(sql), -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_error(t->c->db, SQLITE_ERROR, err);
	}
	for (int i = 0; i < nb; i++) {
		if (b[i].s)
			sqlite3_bind_text(*st, i + 1, b[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(*st, i + 1, b[i].i);
	}
	sqlite3_bind_int(*st, nb + 1, limit > 0 ? limit : 100);
	return 0;
}

static int sq_audit_query(void *p, const struct kx_audit_filter *f, struct kx_audit_events *out,
			  struct kx_err *err)
{
	struct tx *t = p;
	struct bindv b[AUDIT_BINDS];
	struct kx_buf sql;
	const char *order = f->oldest_first ? "ASC" : "DESC";
	sqlite3_stmt *st = NULL;
	bool by_seq;
	int nb = 0, rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	/* With a field or label filter, or a closed time range: the seqs
	 * first, then their rows. Every index holds seq (the rowid), so for
	 * indexed columns (account, action, at) the inner query picks the
	 * newest (or oldest) `limit` seqs from the index alone, sorting seqs
	 * where the index is not in seq order (account = X over 30 days, an
	 * hour last week); only those rows are then read, in seq order.
	 * Sorting whole rows instead meant reading every matching event.
	 * Otherwise (since or until alone, after_seq, nothing) SQLite walks
	 * the table in seq order and stops at `limit`, and the plain query
	 * saves the second lookup. */
	by_seq = f->actor || f->client || f->account || f->platform || f->lane || f->action ||
		 f->target || f->labels.n ||
		 (f->since != KX_TIME_UNSET && f->until != KX_TIME_UNSET);
	if (kx_buf_adds(&sql, by_seq ? "SELECT " AUDIT_COLS " FROM audit_events WHERE seq IN "
				       "(SELECT seq FROM audit_events"
				     : "SELECT " AUDIT_COLS " FROM audit_events") ||
	    audit_where(&sql, f, b, &nb) ||
	    kx_buf_addf(&sql, " ORDER BY seq %s LIMIT ?", order) ||
	    (by_seq && kx_buf_addf(&sql, ") ORDER BY seq %s", order))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = prepare_built(t, &sql, b, nb, f->limit, &st, err)))
		goto out;
	rc = read_audit_rows(t, st, out, err);
out:
	sqlite3_finalize(st);
	kx_buf_release(&sql);
	return rc;
}

static int sq_audit_page(void *p, int64_t after_seq, int limit, struct kx_audit_events *out,
			 struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " AUDIT_COLS " FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?");
	sqlite3_bind_int64(st, 1, after_seq);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
	rc = read_audit_rows(t, st, out, err);
	done(st);
	return rc;
}

/* Runs a grouping query: SELECT action, target, content_hash, count,
 * accounts, first_at, last_at … */
static int audit_groups(struct tx *t, const char *head, const char *tail,
			const struct kx_audit_filter *f, struct kx_audit_groups *out,
			struct kx_err *err)
{
	struct bindv b[AUDIT_BINDS];
	struct kx_buf sql;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int nb = 0, rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	if (kx_buf_adds(&sql, head) || audit_where(&sql, f, b, &nb) || kx_buf_adds(&sql, tail)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = prepare_built(t, &sql, b, nb, f->limit, &st, err)))
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kx_audit_group *g;
		if (kx_array_grow(&out->v, &cap, out->n + 1, sizeof(*out->v)))
			goto nomem;
		g = &out->v[out->n++];
		g->action = col_text(st, 0);
		g->target = col_text(st, 1);
		g->content_hash = col_text(st, 2);
		g->count = sqlite3_column_int64(st, 3);
		g->accounts = sqlite3_column_int64(st, 4);
		g->first_at = sqlite3_column_int64(st, 5);
		g->last_at = sqlite3_column_int64(st, 6);
		if ((!g->action && sqlite3_column_type(st, 0) != SQLITE_NULL) || !g->target ||
		    (!g->content_hash && sqlite3_column_type(st, 2) != SQLITE_NULL))
			goto nomem;
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(t->c->db, rc, err);
		kx_audit_groups_release(out);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	kx_audit_groups_release(out);
out:
	sqlite3_finalize(st);
	kx_buf_release(&sql);
	return rc;
}

static int sq_audit_duplicates(void *p, const struct kx_audit_filter *f,
			       struct kx_audit_groups *out, struct kx_err *err)
{
	return audit_groups(p,
			    "SELECT action, target, content_hash, count(*), count(DISTINCT account), "
			    "min(at), max(at) FROM audit_events",
			    " AND target IS NOT NULL GROUP BY action, target, content_hash "
			    "HAVING count(*) > 1 ORDER BY count(*) DESC, min(at), target LIMIT ?",
			    f, out, err);
}

static int sq_audit_recipients(void *p, const struct kx_audit_filter *f,
			       struct kx_audit_groups *out, struct kx_err *err)
{
	return audit_groups(p,
			    "SELECT NULL, target, NULL, count(*), count(DISTINCT account), min(at), "
			    "max(at) FROM audit_events",
			    " AND target IS NOT NULL GROUP BY target "
			    "ORDER BY count(*) DESC, target LIMIT ?",
			    f, out, err);
}

/* ---- change feed ---- */

static int sq_notify(void *p, const char *topic, const char *payload, struct kx_err *err)
{
	struct tx *t = p;
	if (strlen(topic) + strlen(payload) > 200)
		return kx_err_set(err, KX_EINVAL, "notification too long");
	if (kx_buf_add(&t->notes, topic, strlen(topic) + 1) ||
	    kx_buf_add(&t->notes, payload, strlen(payload) + 1))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_subscribe(void *p, kx_change_fn fn, void *arg, struct kx_err *err)
{
	struct be *be = p;
	int rc = 0;
	pthread_mutex_lock(&be->slock);
	if (be->nsubs == MAX_SUBSCRIBERS) {
		rc = kx_err_set(err, KX_ENOMEM, "too many change subscribers");
	} else {
		be->subs[be->nsubs].fn = fn;
		be->subs[be->nsubs].arg = arg;
		be->nsubs++;
	}
	pthread_mutex_unlock(&be->slock);
	return rc;
}

const struct kx_store_backend kx_store_sqlite = {
	.name = "sqlite",
	.accepts = sq_accepts,
	.open = sq_open,
	.close = sq_close,
	.ping = sq_ping,
	.begin = sq_begin_impl,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.incident_next_seq = sq_incident_next_seq,
	.incident_insert = sq_incident_insert,
	.incident_get = sq_incident_get,
	.incident_update = sq_incident_update,
	.incident_list = sq_incident_list,
	.timeline_add = sq_timeline_add,
	.timeline_list = sq_timeline_list,
	.action_item_add = sq_action_item_add,
	.action_item_get = sq_action_item_get,
	.action_item_update = sq_action_item_update,
	.action_item_list = sq_action_item_list,
	.token_count = sq_token_count,
	.token_insert = sq_token_insert,
	.token_by_hash = sq_token_by_hash,
	.token_get = sq_token_get,
	.token_list = sq_token_list,
	.token_revoke = sq_token_revoke,
	.job_enqueue = sq_job_enqueue,
	.job_claim = sq_job_claim,
	.job_finish = sq_job_finish,
	.job_retry = sq_job_retry,
	.singleton_try = sq_singleton_try,
	.notify = sq_notify,
	.subscribe = sq_subscribe,
	.audit_append = sq_audit_append,
	.audit_query = sq_audit_query,
	.audit_page = sq_audit_page,
	.audit_duplicates = sq_audit_duplicates,
	.audit_recipients = sq_audit_recipients,
	.switch_insert = sq_switch_insert,
	.switch_get = sq_switch_get,
	.switch_update = sq_switch_update,
	.switch_list = sq_switch_list,
	.cap_put = sq_cap_put,
	.cap_delete = sq_cap_delete,
	.cap_list = sq_cap_list,
	.approval_insert = sq_approval_insert,
	.approval_get = sq_approval_get,
	.approval_pending_by_key = sq_approval_pending_by_key,
	.approval_update = sq_approval_update,
	.approval_list = sq_approval_list,
};
