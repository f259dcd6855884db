/* sqlite.c — the embedded SQLite backend.
 *
 * One writer connection behind a mutex (held for the whole write
 * transaction, so BEGIN IMMEDIATE never waits on SQLite's busy handler) and a
 * small pool of reader connections that run concurrently under WAL. Every
 * connection caches its prepared statements, keyed by the address of the
 * static SQL text. Commits are durable: a 2xx answer means the change is on
 * disk. The writer's COMMIT only writes the log (synchronous=NORMAL), and
 * the log is then made durable by an fdatasync outside the writer lock
 * ("durable commits" below), so the next transaction is written while the
 * last one's fsync runs and one fsync covers every commit before it.
 *
 * WAL checkpoints run on a background thread with its own connection
 * (automatic checkpoints on the writer are off), so a request never pays
 * for copying the log back into the database file.
 */
#include "store/migrate.h"
#include "store/store.h"
#include "lib/array.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/time.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NREADERS 4
#define BATCH_RING 64
#define MAX_SUBSCRIBERS 16
#define STMT_CACHE 192

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
	uint64_t batch_seq[BATCH_RING]; /* the commit number of each batch */
	/* durable commits, guarded by synclock: commits are numbered in order;
	 * every commit numbered <= durable is on disk, unless <= failed
	 * (UINT64_MAX once an fdatasync failed: nothing is durable after). */
	pthread_mutex_t synclock;
	pthread_cond_t synced;
	uint64_t committed, durable, failed;
	bool syncing;      /* a waiter is in fdatasync */
	int wal_fd;        /* the log, opened on first use; -1 until then */
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
	/* write: opened its batch, so it is alone in the outer transaction
	 * and needs no savepoint (see "group commit") */
	bool bare;
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
	pthread_mutex_destroy(&be->synclock);
	pthread_cond_destroy(&be->synced);
	if (be->wal_fd >= 0)
		close(be->wal_fd);
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

/* SQLite's own error log (what went wrong below an error code). */
static void sqlite_log(void *arg, int code, const char *msg)
{
	(void)arg;
	if ((code & 0xff) == SQLITE_NOTICE || (code & 0xff) == SQLITE_WARNING ||
	    (code & 0xff) == SQLITE_CONSTRAINT || (code & 0xff) == SQLITE_SCHEMA)
		return; /* expected, or reported by the caller */
	kx_log(KX_LOG_WARN, "sqlite: %s (%d)", msg, code);
}

static void sqlite_config_once(void)
{
	sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, NULL);
}

static int sq_open(const char *url, void **out, struct kx_err *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *path = url + 7;
	struct be *be;
	int rc;

	pthread_once(&once, sqlite_config_once);
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
	pthread_mutex_init(&be->synclock, NULL);
	pthread_cond_init(&be->synced, NULL);
	be->wal_fd = -1;
	if ((rc = conn_open(&be->writer, be->path, false, CACHE_WRITER_KIB, err)) ||
	    (rc = migrate(be->writer.db, err)) ||
	    /* the log's fsync after a COMMIT is ours (wait_durable); NORMAL
	     * still syncs around checkpoints and when the log starts over */
	    (rc = exec(be->writer.db, "PRAGMA synchronous=NORMAL", err)))
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
 * Write transactions share one outer transaction (a "batch") on the writer
 * connection. The member that opens a batch works in it directly; a member
 * that joins an open batch works in a savepoint, so that its rollback
 * undoes only its own work. (Not a savepoint for everyone: a statement
 * inside a savepoint truncates SQLite's in-memory statement journal by
 * walking it from the start, which makes a large transaction quadratic.)
 * A member that finishes while other writers are queued for the writer
 * leaves the batch open and waits; the last member of the batch (no one
 * queued, or the batch is full) commits it and wakes the others, who then
 * report that same outcome. Every success still means "on disk": no member
 * returns before its batch's COMMIT is durable (see "durable commits").
 * With one writer at a time this is exactly one transaction per request. */

#define BATCH_MAX 64

/* ---- durable commits ----
 *
 * After its COMMIT has written the log, a batch waits here until the log
 * is on disk. One waiter at a time runs fdatasync on the log for every
 * commit numbered so far; the others wait for it, and whoever is still not
 * covered when it is done runs the next one. The writer lock is not held
 * meanwhile, so the next batch is already being written. The log's file
 * stays the same while the database is open (SQLite only deletes it when
 * its last connection closes; a checkpoint truncates or overwrites it), so
 * syncing our own descriptor of it syncs SQLite's. */
static int wal_open(struct be *be)
{
	char path[4200];
	if (be->wal_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s-wal", be->path);
	be->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
	return be->wal_fd >= 0 ? 0 : -1;
}

static int wait_durable(struct be *be, uint64_t seq, struct kx_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&be->synclock);
	while (be->durable < seq) {
		uint64_t target;
		int r, e = 0;
		if (be->syncing) {
			/* one at a time: two at once took twice as long here
			 * (docs/benchmarks.md, "Detection") */
			pthread_cond_wait(&be->synced, &be->synclock);
			continue;
		}
		be->syncing = true;
		target = be->committed;
		r = wal_open(be);
		pthread_mutex_unlock(&be->synclock);
		/* fdatasync writes out everything written before it started,
		 * so a sync that ends covers every commit numbered <= target */
		if (r != 0 || (r = fdatasync(be->wal_fd)) != 0)
			e = errno;
		pthread_mutex_lock(&be->synclock);
		be->syncing = false;
		if (r != 0) {
			/* after a failed fsync the kernel may have dropped the
			 * pages it could not write, and a later fsync succeeds
			 * without them: no later commit can be called durable
			 * (PostgreSQL stops for the same reason) */
			be->failed = UINT64_MAX;
			kx_log(KX_LOG_ERROR,
			       "sqlite: cannot sync the log %s-wal: %s; every write fails from now on: "
			       "check the disk and restart klaxond",
			       be->path, strerror(e));
		}
		if (target > be->durable)
			be->durable = target;
		pthread_cond_broadcast(&be->synced);
	}
	if (seq <= be->failed)
		rc = kx_err_set(err, KX_ESTORE,
				"database commit could not be written to disk; the change may be lost");
	pthread_mutex_unlock(&be->synclock);
	return rc;
}

/* Ends the open batch with COMMIT (or its failure) and wakes its waiters.
 * Called with wlock held; returns the batch's outcome. */
static int flush_batch(struct be *be, uint64_t *seqp, struct kx_err *err)
{
	int rc = 0;
	uint64_t b, seq;

	if (!sqlite3_get_autocommit(be->writer.db)) {
		if ((rc = run(&be->writer, "COMMIT", err)))
			sqlite3_exec(be->writer.db, "ROLLBACK", NULL, NULL, NULL);
	} else if (be->members > 0) {
		/* SQLite rolled the batch back on its own (I/O error, disk
		 * full): the members released into it were not saved. */
		rc = kx_err_set(err, KX_ESTORE, "database error: the transaction was rolled back");
	}
	pthread_mutex_lock(&be->synclock);
	seq = rc ? 0 : ++be->committed;
	pthread_mutex_unlock(&be->synclock);
	pthread_mutex_lock(&be->glock);
	b = be->batch;
	be->batch_rc[b % BATCH_RING] = rc;
	be->batch_seq[b % BATCH_RING] = seq;
	be->flushed = b;
	be->open_batch = false;
	pthread_cond_broadcast(&be->gdone);
	pthread_mutex_unlock(&be->glock);
	*seqp = seq;
	return rc;
}

/* After a member is done with the writer (its savepoint released or rolled
 * back): flush now, or leave the batch to a queued writer and wait for it. */
/* After a member is done with the writer (its work kept or undone): flush
 * now, or leave the batch to a queued writer and wait for it. Then, for a
 * member whose work was kept, wait until its commit is durable — or, with
 * seqp, leave that to the caller (wait_durable with *seqp). */
static int finish_member(struct tx *t, bool joined, uint64_t *seqp, struct kx_err *err)
{
	struct be *be = t->be;
	uint64_t b, seq = 0;
	bool flush;
	int rc;

	pthread_mutex_lock(&be->glock);
	if (joined)
		be->members++;
	b = be->batch;
	flush = be->waiting == 0 || be->members >= BATCH_MAX;
	pthread_mutex_unlock(&be->glock);

	if (flush) {
		rc = flush_batch(be, &seq, err);
		pthread_mutex_unlock(&be->wlock);
		if (!joined)
			return 0;
	} else {
		pthread_mutex_unlock(&be->wlock);
		if (!joined)
			return 0;
		pthread_mutex_lock(&be->glock);
		while (be->flushed < b)
			pthread_cond_wait(&be->gdone, &be->glock);
		rc = be->batch_rc[b % BATCH_RING];
		seq = be->batch_seq[b % BATCH_RING];
		pthread_mutex_unlock(&be->glock);
		if (rc)
			kx_err_set(err, rc, "database commit failed; the change was not saved");
	}
	if (rc)
		return rc;
	if (seqp) {
		*seqp = seq;
		return 0;
	}
	return wait_durable(be, seq, err);
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
	t->bare = need_begin;
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
		return 0;
	}
	if ((rc = run(t->c, "SAVEPOINT m", err))) {
		finish_member(t, false, NULL, NULL);
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

/* Undoes a member's work: its savepoint, or — alone in the batch — the
 * whole outer transaction, after which the next member begins anew. */
static void rollback_member(struct tx *t)
{
	struct be *be = t->be;
	if (!t->bare) {
		if (!batch_lost(be))
			sqlite3_exec(t->c->db, "ROLLBACK TO m; RELEASE m", NULL, NULL, NULL);
		return;
	}
	if (!batch_lost(be))
		sqlite3_exec(t->c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&be->glock);
	be->open_batch = false;
	pthread_mutex_unlock(&be->glock);
}

/* A commit on its way to the disk (sq_commit_async). */
struct pending {
	struct be *be;
	uint64_t seq;
	struct kx_buf notes;
};

/* Ends a write member. With pending (and ok), returns before the commit is
 * durable: *pending then holds what sq_pending_wait needs. */
static void end_write(struct tx *t, bool ok, int *rc, struct pending **pending,
		      struct kx_err *err)
{
	struct kx_buf notes = t->notes;
	struct be *be = t->be;
	uint64_t seq = 0;
	struct pending *pd = pending && ok ? malloc(sizeof(*pd)) : NULL;

	kx_buf_init(&t->notes, 0);
	*rc = finish_member(t, ok, pd ? &seq : NULL, err) ? (err ? err->code : KX_ESTORE) : *rc;
	free(t);
	if (pd && ok && *rc == 0) {
		pd->be = be;
		pd->seq = seq;
		pd->notes = notes;
		*pending = pd;
		return;
	}
	free(pd);
	if (ok && *rc == 0)
		deliver(be, &notes); /* after the commit, without holding the writer */
	kx_buf_release(&notes);
}

static int commit_write(struct tx *t, struct pending **pending, struct kx_err *err)
{
	int rc = 0;
	if (batch_lost(t->be) || (!t->bare && (rc = run(t->c, "RELEASE m", err)))) {
		if (!rc)
			rc = kx_err_set(err, KX_ESTORE, "database error: the transaction was rolled back");
		rollback_member(t);
		end_write(t, false, &rc, NULL, NULL);
		return rc;
	}
	end_write(t, true, &rc, pending, err);
	return rc;
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
	return commit_write(t, NULL, err);
}

static int sq_commit_async(void *p, void **out, struct kx_err *err)
{
	struct tx *t = p;
	struct pending *pd = NULL;
	int rc;

	*out = NULL;
	if (!t->write)
		return sq_commit(p, err);
	rc = commit_write(t, &pd, err);
	*out = pd;
	return rc;
}

static int sq_pending_wait(void *p, struct kx_err *err)
{
	struct pending *pd = p;
	int rc = wait_durable(pd->be, pd->seq, err);
	if (!rc)
		deliver(pd->be, &pd->notes);
	kx_buf_release(&pd->notes);
	free(pd);
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
	rollback_member(t);
	end_write(t, false, &rc, NULL, NULL);
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

/* ---- detection: services, integrations, alerts, change events,
 * heartbeats, silences, the delivery log (core/alert.h, core/notify.h) ---- */

/* Steps st to the end, reading each row with `read` into a new element of
 * elem bytes of the array whose pointer is at vp (*n elements so far). An
 * element counts in *n once `read` has started on it (`read` initialises
 * it first), so on failure the caller releases the whole list. */
static int read_rows(struct tx *t, sqlite3_stmt *st, void *vp, size_t *n, size_t elem,
		     int (*read)(sqlite3_stmt *, void *, struct kx_err *), struct kx_err *err)
{
	size_t cap = 0;
	char *v;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (kx_array_grow(vp, &cap, *n + 1, elem)) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(&v, vp, sizeof(v));
		(*n)++;
		if ((rc = read(st, v + (*n - 1) * elem, err)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : db_error(t->c->db, rc, err);
out:
	done(st);
	return rc;
}

/* Steps st, expected to give one row or none (KX_ENOTFOUND "WHAT not
 * found"); the row is read into out with `read`. The caller initialises
 * out before and releases it on failure. */
static int read_one(struct tx *t, sqlite3_stmt *st, void *out,
		    int (*read)(sqlite3_stmt *, void *, struct kx_err *), const char *what,
		    struct kx_err *err)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = read(st, out, err);
		done(st);
		return rc;
	}
	done(st);
	if (rc == SQLITE_DONE)
		return kx_err_set(err, KX_ENOTFOUND, "%s not found", what);
	return db_error(t->c->db, rc, err);
}

/* A hash column into out; one of the wrong size (only a hand-edited row
 * has one) leaves out zero, which matches no key. */
static void col_hash(sqlite3_stmt *st, int i, uint8_t out[KX_HASH_LEN])
{
	const void *h = sqlite3_column_blob(st, i);
	if (h && sqlite3_column_bytes(st, i) == KX_HASH_LEN)
		memcpy(out, h, KX_HASH_LEN);
	else
		memset(out, 0, KX_HASH_LEN);
}

/* Alert labels from their stored JSON (kx_audit_labels_json's form) into
 * the empty ls. They follow Prometheus' rules (core/alert.h), which
 * kx_audit_labels_parse's Klaxon rules would refuse, so each is set with
 * kx_alert_label_set. */
static int alert_labels_parse(const char *text, struct kx_labels *ls, struct kx_err *err)
{
	json_t *j, *v;
	const char *k;
	int rc = 0;

	if (!text) /* a NOT NULL column: only an allocation failure gives NULL */
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
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

#define SERVICE_COLS "name, description, labels, from_config, created_at"

static int read_service(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_service *s = p;
	const char *labels = (const char *)sqlite3_column_text(st, 2);
	kx_service_init(s);
	s->from_config = sqlite3_column_int(st, 3) != 0;
	s->created_at = col_time(st, 4);
	if (!labels || !col_opt(st, 0, &s->name) || !col_opt(st, 1, &s->description))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return kx_audit_labels_parse(labels, &s->labels, err);
}

static int sq_service_put(void *p, const struct kx_service *s, bool *created,
			  struct kx_err *err)
{
	struct tx *t = p;
	struct kx_buf labels;
	int rc = 0;
	STMT(ins, "INSERT INTO services (" SERVICE_COLS ") VALUES (?,?,?,?,?) "
		  "ON CONFLICT (name) DO NOTHING");
	STMT(upd, "UPDATE services SET description=?2, labels=?3, from_config=?4 WHERE name=?1");
	kx_buf_init(&labels, 64 * 1024);
	if (kx_audit_labels_json(&s->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	/* The writer lock is held for the whole transaction: nobody can
	 * delete the row between the two statements (as in cap_put). */
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = k ? upd : ins;
		bind_text(st, 1, s->name);
		bind_text(st, 2, s->description);
		sqlite3_bind_text(st, 3, kx_buf_str(&labels), (int)labels.len, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, s->from_config);
		if (!k)
			bind_time(st, 5, s->created_at);
		if ((rc = step_done(t, st, err)))
			break;
		if (sqlite3_changes(t->c->db) == 1) {
			if (created)
				*created = k == 0;
			break;
		}
		if (k)
			rc = kx_err_set(err, KX_ESTORE,
					"database error: service '%.64s' was neither added nor "
					"replaced",
					s->name);
	}
	kx_buf_release(&labels);
	return rc;
}

static int sq_service_get(void *p, const char *name, struct kx_service *out,
			  struct kx_err *err)
{
	struct tx *t = p;
	char what[96];
	int rc;
	STMT(st, "SELECT " SERVICE_COLS " FROM services WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "service '%.64s'", name);
	kx_service_init(out);
	if ((rc = read_one(t, st, out, read_service, what, err)))
		kx_service_release(out);
	return rc;
}

static int sq_service_list(void *p, struct kx_services *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " SERVICE_COLS " FROM services ORDER BY name");
	out->v = NULL;
	out->n = 0;
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_service, err)))
		kx_services_release(out);
	return rc;
}

/* Integrations */

#define INTEGRATION_COLS "id, hash, service, source, name, created_by, created_at, revoked_at"

static int read_integration(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_integration *i = p;
	kx_integration_init(i);
	snprintf(i->id, sizeof(i->id), "%s", (const char *)sqlite3_column_text(st, 0));
	col_hash(st, 1, i->hash);
	i->source = (enum kx_alert_source)sqlite3_column_int(st, 3);
	i->created_at = col_time(st, 6);
	i->revoked_at = col_time(st, 7);
	if (!col_opt(st, 2, &i->service) || !col_opt(st, 4, &i->name) ||
	    !col_opt(st, 5, &i->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_integration_insert(void *p, const struct kx_integration *i, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "INSERT INTO integrations (" INTEGRATION_COLS ") VALUES (?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, i->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, i->hash, KX_HASH_LEN, SQLITE_STATIC);
	bind_text(st, 3, i->service);
	sqlite3_bind_int(st, 4, (int)i->source);
	bind_text(st, 5, i->name);
	bind_text(st, 6, i->created_by);
	bind_time(st, 7, i->created_at);
	bind_time(st, 8, i->revoked_at);
	return step_done(t, st, err);
}

static int sq_integration_get(void *p, const char *id, struct kx_integration *out,
			      struct kx_err *err)
{
	struct tx *t = p;
	char what[96];
	int rc;
	STMT(st, "SELECT " INTEGRATION_COLS " FROM integrations WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "integration '%.64s'", id);
	kx_integration_init(out);
	if ((rc = read_one(t, st, out, read_integration, what, err)))
		kx_integration_release(out);
	return rc;
}

static int sq_integration_by_hash(void *p, const uint8_t hash[KX_HASH_LEN],
				  struct kx_integration *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " INTEGRATION_COLS " FROM integrations WHERE hash = ?");
	sqlite3_bind_blob(st, 1, hash, KX_HASH_LEN, SQLITE_STATIC);
	kx_integration_init(out);
	if ((rc = read_one(t, st, out, read_integration, "integration key", err)))
		kx_integration_release(out);
	return rc;
}

static int sq_integration_list(void *p, const char *service, struct kx_integrations *out,
			       struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(sa, "SELECT " INTEGRATION_COLS " FROM integrations ORDER BY created_at, id");
	STMT(ss, "SELECT " INTEGRATION_COLS " FROM integrations WHERE service = ? "
		 "ORDER BY created_at, id");
	out->v = NULL;
	out->n = 0;
	if (service)
		sqlite3_bind_text(ss, 1, service, -1, SQLITE_STATIC);
	if ((rc = read_rows(t, service ? ss : sa, &out->v, &out->n, sizeof(*out->v),
			    read_integration, err)))
		kx_integrations_release(out);
	return rc;
}

static int sq_integration_revoke(void *p, const char *id, kx_ms at, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE integrations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1) {
		struct kx_integration i;
		if ((rc = sq_integration_get(t, id, &i, err)))
			return rc; /* KX_ENOTFOUND for a key that never was */
		kx_integration_release(&i);
		return kx_err_set(err, KX_ECONFLICT, "integration '%.64s' is already revoked", id);
	}
	return 0;
}

/* Alerts */

/* What alert_update rewrites (all but id, service, dedup_key, source and
 * first_seen), in the order bind_alert binds them. */
#define ALERT_MUTABLE                                                                          \
	"status, level, summary, source_host, component, grp, class, labels, details, "       \
	"severity, route, incident, silenced_by, noise, count, starts_at, last_seen, "        \
	"ends_at, acked_at, acked_by, resolved_at, resolved_by"
#define ALERT_COLS "id, service, dedup_key, source, first_seen, " ALERT_MUTABLE

/* Binds the ALERT_MUTABLE columns at 1..22 (shared by insert and update);
 * labels is their JSON text. */
static void bind_alert(sqlite3_stmt *st, const struct kx_alert *a, const struct kx_buf *labels)
{
	sqlite3_bind_int(st, 1, (int)a->status);
	sqlite3_bind_int(st, 2, (int)a->level);
	bind_text(st, 3, a->summary);
	bind_text(st, 4, a->source_host);
	bind_text(st, 5, a->component);
	bind_text(st, 6, a->group);
	bind_text(st, 7, a->class);
	sqlite3_bind_text(st, 8, kx_buf_str(labels), (int)labels->len, SQLITE_STATIC);
	bind_text(st, 9, a->details ? a->details : "{}"); /* never NULL once stored */
	bind_text(st, 10, a->severity);
	bind_text(st, 11, a->route);
	bind_text(st, 12, a->incident);
	bind_text(st, 13, a->silenced_by);
	sqlite3_bind_int(st, 14, a->noise);
	sqlite3_bind_int64(st, 15, a->count);
	bind_time(st, 16, a->starts_at);
	bind_time(st, 17, a->last_seen);
	bind_time(st, 18, a->ends_at);
	bind_time(st, 19, a->acked_at);
	bind_text(st, 20, a->acked_by);
	bind_time(st, 21, a->resolved_at);
	bind_text(st, 22, a->resolved_by);
}

/* Reads a row of ALERT_COLS into p, a struct kx_alert (initialised here). */
static int read_alert(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_alert *a = p;
	kx_alert_init(a);
	a->id = sqlite3_column_int64(st, 0);
	a->source = (enum kx_alert_source)sqlite3_column_int(st, 3);
	a->first_seen = col_time(st, 4);
	a->status = (enum kx_alert_status)sqlite3_column_int(st, 5);
	a->level = (enum kx_alert_level)sqlite3_column_int(st, 6);
	a->noise = sqlite3_column_int(st, 18) != 0;
	a->count = sqlite3_column_int64(st, 19);
	a->starts_at = col_time(st, 20);
	a->last_seen = col_time(st, 21);
	a->ends_at = col_time(st, 22);
	a->acked_at = col_time(st, 23);
	a->resolved_at = col_time(st, 25);
	if (!col_opt(st, 1, &a->service) || !col_opt(st, 2, &a->dedup_key) ||
	    !col_opt(st, 7, &a->summary) || !col_opt(st, 8, &a->source_host) ||
	    !col_opt(st, 9, &a->component) || !col_opt(st, 10, &a->group) ||
	    !col_opt(st, 11, &a->class) || !col_opt(st, 13, &a->details) ||
	    !col_opt(st, 14, &a->severity) || !col_opt(st, 15, &a->route) ||
	    !col_opt(st, 16, &a->incident) || !col_opt(st, 17, &a->silenced_by) ||
	    !col_opt(st, 24, &a->acked_by) || !col_opt(st, 26, &a->resolved_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return alert_labels_parse((const char *)sqlite3_column_text(st, 12), &a->labels, err);
}

static int sq_alert_firing_by_key(void *p, const char *service, const char *dedup_key,
				  struct kx_alert *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	/* status = 0 written out, so that SQLite picks the partial index. */
	STMT(st, "SELECT " ALERT_COLS " FROM alerts WHERE service = ? AND dedup_key = ? "
		 "AND status = 0");
	sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dedup_key, -1, SQLITE_STATIC);
	kx_alert_init(out);
	if ((rc = read_one(t, st, out, read_alert, "firing alert for that key", err)))
		kx_alert_release(out);
	return rc;
}

static int sq_alert_insert(void *p, struct kx_alert *a, struct kx_err *err)
{
	struct tx *t = p;
	struct kx_buf labels;
	int rc;
	STMT(st, "INSERT INTO alerts (" ALERT_MUTABLE ", service, dedup_key, source, first_seen) "
		 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	kx_buf_init(&labels, KX_BUF_DEFAULT_MAX);
	if (kx_audit_labels_json(&a->labels, &labels))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	bind_alert(st, a, &labels);
	bind_text(st, 23, a->service);
	bind_text(st, 24, a->dedup_key);
	sqlite3_bind_int(st, 25, (int)a->source);
	bind_time(st, 26, a->first_seen);
	/* not RETURNING: it buffers the statement's result, which measured
	 * nearly half the cost of an insert; the writer connection is ours */
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		a->id = sqlite3_last_insert_rowid(t->c->db);
	done(st);
	kx_buf_release(&labels);
	return rc == SQLITE_DONE ? 0 : db_error(t->c->db, rc, err);
}

/* Runs an UPDATE of alert a->id numbered as bind_alert binds (?23: the
 * id); KX_ENOTFOUND (`what`) unless it changed one row. */
static int alert_write(struct tx *t, sqlite3_stmt *st, const struct kx_alert *a,
		       const char *what, struct kx_err *err)
{
	struct kx_buf labels;
	int rc;
	kx_buf_init(&labels, KX_BUF_DEFAULT_MAX);
	if (kx_audit_labels_json(&a->labels, &labels)) {
		done(st);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	bind_alert(st, a, &labels);
	sqlite3_bind_int64(st, 23, a->id);
	rc = step_done(t, st, err);
	kx_buf_release(&labels);
	if (rc)
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "%s %lld not found", what, (long long)a->id);
	return 0;
}

static int sq_alert_fold(void *p, const struct kx_alert *a, struct kx_err *err)
{
	struct tx *t = p;
	/* bind_alert's numbering; the parameters it binds that are not used
	 * here are gaps, which SQLite allows */
	STMT(st, "UPDATE alerts SET level=?2, summary=?3, source_host=?4, component=?5, grp=?6, "
		 "class=?7, labels=?8, details=?9, severity=?10, route=?11, silenced_by=?13, "
		 "count=?15, last_seen=?17, ends_at=?18 WHERE id=?23 AND status=0");
	return alert_write(t, st, a, "firing alert", err);
}

static int sq_alert_update(void *p, const struct kx_alert *a, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "UPDATE alerts SET status=?1, level=?2, summary=?3, source_host=?4, "
		 "component=?5, grp=?6, class=?7, labels=?8, details=?9, severity=?10, route=?11, "
		 "incident=?12, silenced_by=?13, noise=?14, count=?15, starts_at=?16, "
		 "last_seen=?17, ends_at=?18, acked_at=?19, acked_by=?20, resolved_at=?21, "
		 "resolved_by=?22 WHERE id=?23");
	return alert_write(t, st, a, "alert", err);
}

static int sq_alert_get(void *p, int64_t id, struct kx_alert *out, struct kx_err *err)
{
	struct tx *t = p;
	char what[48];
	int rc;
	STMT(st, "SELECT " ALERT_COLS " FROM alerts WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	snprintf(what, sizeof(what), "alert %lld", (long long)id);
	kx_alert_init(out);
	if ((rc = read_one(t, st, out, read_alert, what, err)))
		kx_alert_release(out);
	return rc;
}

static int sq_alert_list(void *p, const struct kx_alert_filter *f, struct kx_alerts *out,
			 struct kx_err *err)
{
	struct tx *t = p;
	struct bindv b[5];
	struct kx_buf sql;
	sqlite3_stmt *st = NULL;
	int nb = 0, rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	rc = kx_buf_adds(&sql, "SELECT " ALERT_COLS " FROM alerts WHERE 1=1");
	if (f->service) {
		rc |= kx_buf_adds(&sql, " AND service = ?");
		b[nb++] = (struct bindv){f->service, 0};
	}
	if (f->status >= 0) {
		rc |= kx_buf_adds(&sql, " AND status = ?");
		b[nb++] = (struct bindv){NULL, f->status};
	}
	if (f->incident) {
		rc |= kx_buf_adds(&sql, " AND incident = ?");
		b[nb++] = (struct bindv){f->incident, 0};
	}
	if (f->since != KX_TIME_UNSET) {
		rc |= kx_buf_adds(&sql, " AND last_seen >= ?");
		b[nb++] = (struct bindv){NULL, f->since};
	}
	if (f->before_id > 0) {
		rc |= kx_buf_adds(&sql, " AND id < ?");
		b[nb++] = (struct bindv){NULL, f->before_id};
	}
	if (rc || kx_buf_adds(&sql, " ORDER BY id DESC LIMIT ?")) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = prepare_built(t, &sql, b, nb, f->limit, &st, err)))
		goto out;
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_alert, err)))
		kx_alerts_release(out);
out:
	sqlite3_finalize(st);
	kx_buf_release(&sql);
	return rc;
}

static int sq_alert_count_firing(void *p, const char *incident, int64_t *n, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT count(*) FROM alerts WHERE incident = ? AND status = 0");
	sqlite3_bind_text(st, 1, incident, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	done(st);
	return rc == SQLITE_ROW ? 0 : db_error(t->c->db, rc, err);
}

static int sq_alert_expired(void *p, kx_ms now, int limit, struct kx_alerts *out,
			    struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " ALERT_COLS " FROM alerts WHERE status = 0 AND ends_at IS NOT NULL "
		 "AND ends_at <= ? ORDER BY ends_at, id LIMIT ?");
	out->v = NULL;
	out->n = 0;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_alert, err)))
		kx_alerts_release(out);
	return rc;
}

/* Change events */

#define CHANGE_COLS "id, service, summary, source_host, details, at, received_at"

static int read_change(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_change_event *c = p;
	kx_change_event_init(c);
	c->id = sqlite3_column_int64(st, 0);
	c->at = col_time(st, 5);
	c->received_at = col_time(st, 6);
	if (!col_opt(st, 1, &c->service) || !col_opt(st, 2, &c->summary) ||
	    !col_opt(st, 3, &c->source_host) || !col_opt(st, 4, &c->details))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_change_insert(void *p, struct kx_change_event *c, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "INSERT INTO change_events (service, summary, source_host, details, at, "
		 "received_at) VALUES (?,?,?,?,?,?) RETURNING id");
	bind_text(st, 1, c->service);
	bind_text(st, 2, c->summary);
	bind_text(st, 3, c->source_host);
	bind_text(st, 4, c->details);
	bind_time(st, 5, c->at);
	bind_time(st, 6, c->received_at);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	done(st);
	return rc == SQLITE_DONE ? 0 : db_error(t->c->db, rc, err);
}

static int sq_change_list(void *p, const char *service, int limit, struct kx_change_events *out,
			  struct kx_err *err)
{
	struct tx *t = p;
	sqlite3_stmt *st;
	int rc;
	STMT(sa, "SELECT " CHANGE_COLS " FROM change_events ORDER BY at DESC, id DESC LIMIT ?1");
	STMT(ss, "SELECT " CHANGE_COLS " FROM change_events WHERE service = ?2 "
		 "ORDER BY at DESC, id DESC LIMIT ?1");
	st = service ? ss : sa;
	out->v = NULL;
	out->n = 0;
	sqlite3_bind_int(st, 1, limit > 0 ? limit : 100);
	if (service)
		sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_change, err)))
		kx_change_events_release(out);
	return rc;
}

/* Heartbeats */

#define HEARTBEAT_COLS                                                                         \
	"name, service, hash, interval_ms, grace_ms, level, state, last_ping, due_at, "        \
	"created_by, created_at"

static int read_heartbeat(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_heartbeat *h = p;
	kx_heartbeat_init(h);
	col_hash(st, 2, h->hash);
	h->interval = sqlite3_column_int64(st, 3);
	h->grace = sqlite3_column_int64(st, 4);
	h->level = (enum kx_alert_level)sqlite3_column_int(st, 5);
	h->state = (enum kx_heartbeat_state)sqlite3_column_int(st, 6);
	h->last_ping = col_time(st, 7);
	h->due_at = col_time(st, 8);
	h->created_at = col_time(st, 10);
	if (!col_opt(st, 0, &h->name) || !col_opt(st, 1, &h->service) ||
	    !col_opt(st, 9, &h->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_heartbeat_insert(void *p, const struct kx_heartbeat *h, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "INSERT INTO heartbeats (" HEARTBEAT_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
	bind_text(st, 1, h->name);
	bind_text(st, 2, h->service);
	sqlite3_bind_blob(st, 3, h->hash, KX_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, h->interval);
	sqlite3_bind_int64(st, 5, h->grace);
	sqlite3_bind_int(st, 6, (int)h->level);
	sqlite3_bind_int(st, 7, (int)h->state);
	bind_time(st, 8, h->last_ping);
	bind_time(st, 9, h->due_at);
	bind_text(st, 10, h->created_by);
	bind_time(st, 11, h->created_at);
	return step_done(t, st, err);
}

static int sq_heartbeat_get(void *p, const char *name, struct kx_heartbeat *out,
			    struct kx_err *err)
{
	struct tx *t = p;
	char what[96];
	int rc;
	STMT(st, "SELECT " HEARTBEAT_COLS " FROM heartbeats WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "heartbeat '%.64s'", name);
	kx_heartbeat_init(out);
	if ((rc = read_one(t, st, out, read_heartbeat, what, err)))
		kx_heartbeat_release(out);
	return rc;
}

static int sq_heartbeat_by_hash(void *p, const uint8_t hash[KX_HASH_LEN],
				struct kx_heartbeat *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " HEARTBEAT_COLS " FROM heartbeats WHERE hash = ?");
	sqlite3_bind_blob(st, 1, hash, KX_HASH_LEN, SQLITE_STATIC);
	kx_heartbeat_init(out);
	if ((rc = read_one(t, st, out, read_heartbeat, "heartbeat key", err)))
		kx_heartbeat_release(out);
	return rc;
}

static int sq_heartbeat_update(void *p, const struct kx_heartbeat *h, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE heartbeats SET state=?, last_ping=?, due_at=? WHERE name=?");
	sqlite3_bind_int(st, 1, (int)h->state);
	bind_time(st, 2, h->last_ping);
	bind_time(st, 3, h->due_at);
	bind_text(st, 4, h->name);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "heartbeat '%.64s' not found", h->name);
	return 0;
}

static int sq_heartbeat_delete(void *p, const char *name, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "DELETE FROM heartbeats WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "heartbeat '%.64s' not found", name);
	return 0;
}

static int sq_heartbeat_list(void *p, struct kx_heartbeats *out, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "SELECT " HEARTBEAT_COLS " FROM heartbeats ORDER BY name");
	out->v = NULL;
	out->n = 0;
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_heartbeat, err)))
		kx_heartbeats_release(out);
	return rc;
}

static int sq_heartbeat_due(void *p, kx_ms now, int limit, struct kx_heartbeats *out,
			    struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	/* state <> 2 (down) written out, so that SQLite picks the partial
	 * index. No lock is needed: the writer is one at a time. */
	STMT(st, "SELECT " HEARTBEAT_COLS " FROM heartbeats WHERE state <> 2 AND due_at <= ? "
		 "ORDER BY due_at, name LIMIT ?");
	out->v = NULL;
	out->n = 0;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_heartbeat, err)))
		kx_heartbeats_release(out);
	return rc;
}

/* Silences */

#define SILENCE_COLS                                                                           \
	"id, kind, matchers, starts_at, ends_at, comment, created_by, created_at, expired_at"

static int read_silence(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_silence *s = p;
	kx_silence_init(s);
	snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(st, 0));
	s->kind = (enum kx_silence_kind)sqlite3_column_int(st, 1);
	s->starts_at = col_time(st, 3);
	s->ends_at = col_time(st, 4);
	s->created_at = col_time(st, 7);
	s->expired_at = col_time(st, 8);
	if (!col_opt(st, 2, &s->matchers) || !col_opt(st, 5, &s->comment) ||
	    !col_opt(st, 6, &s->created_by))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_silence_insert(void *p, const struct kx_silence *s, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "INSERT INTO silences (" SILENCE_COLS ") VALUES (?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)s->kind);
	bind_text(st, 3, s->matchers);
	bind_time(st, 4, s->starts_at);
	bind_time(st, 5, s->ends_at);
	bind_text(st, 6, s->comment);
	bind_text(st, 7, s->created_by);
	bind_time(st, 8, s->created_at);
	bind_time(st, 9, s->expired_at);
	return step_done(t, st, err);
}

static int sq_silence_get(void *p, const char *id, struct kx_silence *out, struct kx_err *err)
{
	struct tx *t = p;
	char what[96];
	int rc;
	STMT(st, "SELECT " SILENCE_COLS " FROM silences WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "silence '%.64s'", id);
	kx_silence_init(out);
	if ((rc = read_one(t, st, out, read_silence, what, err)))
		kx_silence_release(out);
	return rc;
}

static int sq_silence_update(void *p, const struct kx_silence *s, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(st, "UPDATE silences SET ends_at=?, comment=?, expired_at=? WHERE id=?");
	bind_time(st, 1, s->ends_at);
	bind_text(st, 2, s->comment);
	bind_time(st, 3, s->expired_at);
	sqlite3_bind_text(st, 4, s->id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, st, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "silence '%.64s' not found", s->id);
	return 0;
}

static int sq_silence_list(void *p, bool active_only, kx_ms now, struct kx_silences *out,
			   struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	STMT(sa, "SELECT " SILENCE_COLS " FROM silences ORDER BY created_at DESC, id DESC");
	/* In force: kx_silence_active in SQL. */
	STMT(sn, "SELECT " SILENCE_COLS " FROM silences WHERE expired_at IS NULL "
		 "AND starts_at <= ?1 AND ?1 < ends_at ORDER BY created_at DESC, id DESC");
	out->v = NULL;
	out->n = 0;
	if (active_only)
		sqlite3_bind_int64(sn, 1, now);
	if ((rc = read_rows(t, active_only ? sn : sa, &out->v, &out->n, sizeof(*out->v),
			    read_silence, err)))
		kx_silences_release(out);
	return rc;
}

/* The delivery log */

#define NOTIFICATION_COLS                                                                      \
	"id, channel, event, subject, status, attempts, last_code, last_error, created_at, "   \
	"last_attempt_at, next_attempt_at, delivered_at"

static int read_notification(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_notification *n = p;
	kx_notification_init(n);
	snprintf(n->id, sizeof(n->id), "%s", (const char *)sqlite3_column_text(st, 0));
	n->status = (enum kx_notification_status)sqlite3_column_int(st, 4);
	n->attempts = sqlite3_column_int(st, 5);
	n->last_code = (long)sqlite3_column_int64(st, 6);
	n->created_at = col_time(st, 8);
	n->last_attempt_at = col_time(st, 9);
	n->next_attempt_at = col_time(st, 10);
	n->delivered_at = col_time(st, 11);
	if (!col_opt(st, 1, &n->channel) || !col_opt(st, 2, &n->event) ||
	    !col_opt(st, 3, &n->subject) || !col_opt(st, 7, &n->last_error))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int read_attempt(sqlite3_stmt *st, void *p, struct kx_err *err)
{
	struct kx_notification_attempt *a = p;
	memset(a, 0, sizeof(*a));
	a->number = sqlite3_column_int(st, 0);
	a->at = sqlite3_column_int64(st, 1);
	a->took = sqlite3_column_int64(st, 2);
	a->code = (long)sqlite3_column_int64(st, 3);
	if (!col_opt(st, 4, &a->error))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

static int sq_notification_insert(void *p, const struct kx_notification *n, struct kx_err *err)
{
	struct tx *t = p;
	STMT(st, "INSERT INTO notifications (" NOTIFICATION_COLS ") "
		 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, n->id, -1, SQLITE_STATIC);
	bind_text(st, 2, n->channel);
	bind_text(st, 3, n->event);
	bind_text(st, 4, n->subject);
	sqlite3_bind_int(st, 5, (int)n->status);
	sqlite3_bind_int(st, 6, n->attempts);
	sqlite3_bind_int64(st, 7, n->last_code);
	bind_text(st, 8, n->last_error);
	bind_time(st, 9, n->created_at);
	bind_time(st, 10, n->last_attempt_at);
	bind_time(st, 11, n->next_attempt_at);
	bind_time(st, 12, n->delivered_at);
	return step_done(t, st, err);
}

static int sq_notification_attempt(void *p, const struct kx_notification *n,
				   const struct kx_notification_attempt *a, struct kx_err *err)
{
	struct tx *t = p;
	int rc;
	/* delivered_at only changes when the attempt delivered it (?7 NULL
	 * otherwise). */
	STMT(upd, "UPDATE notifications SET status=?1, attempts=?2, last_code=?3, last_error=?4, "
		  "last_attempt_at=?5, next_attempt_at=?6, delivered_at=coalesce(?7, delivered_at) "
		  "WHERE id=?8");
	STMT(ins, "INSERT INTO notification_attempts (notification, number, at, took, code, "
		  "error) VALUES (?,?,?,?,?,?)");
	sqlite3_bind_int(upd, 1, (int)n->status);
	sqlite3_bind_int(upd, 2, n->attempts);
	sqlite3_bind_int64(upd, 3, n->last_code);
	bind_text(upd, 4, n->last_error);
	bind_time(upd, 5, n->last_attempt_at);
	bind_time(upd, 6, n->next_attempt_at);
	bind_time(upd, 7, n->status == KX_NTF_DELIVERED ? n->delivered_at : KX_TIME_UNSET);
	sqlite3_bind_text(upd, 8, n->id, -1, SQLITE_STATIC);
	if ((rc = step_done(t, upd, err)))
		return rc;
	if (sqlite3_changes(t->c->db) != 1)
		return kx_err_set(err, KX_ENOTFOUND, "notification '%.32s' not found", n->id);
	sqlite3_bind_text(ins, 1, n->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, a->number);
	sqlite3_bind_int64(ins, 3, a->at);
	sqlite3_bind_int64(ins, 4, a->took);
	sqlite3_bind_int64(ins, 5, a->code);
	bind_text(ins, 6, a->error);
	return step_done(t, ins, err);
}

static int sq_notification_get(void *p, const char *id, struct kx_notification *out,
			       struct kx_notification_attempts *attempts, struct kx_err *err)
{
	struct tx *t = p;
	char what[64];
	int rc;
	STMT(st, "SELECT " NOTIFICATION_COLS " FROM notifications WHERE id = ?");
	STMT(sa, "SELECT number, at, took, code, error FROM notification_attempts "
		 "WHERE notification = ? ORDER BY number");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	snprintf(what, sizeof(what), "notification '%.32s'", id);
	kx_notification_init(out);
	if ((rc = read_one(t, st, out, read_notification, what, err))) {
		kx_notification_release(out);
		return rc;
	}
	if (!attempts)
		return 0;
	attempts->v = NULL;
	attempts->n = 0;
	sqlite3_bind_text(sa, 1, id, -1, SQLITE_STATIC);
	if ((rc = read_rows(t, sa, &attempts->v, &attempts->n, sizeof(*attempts->v), read_attempt,
			    err))) {
		kx_notification_attempts_release(attempts);
		kx_notification_release(out);
	}
	return rc;
}

static int sq_notification_list(void *p, const struct kx_notification_filter *f,
				struct kx_notifications *out, struct kx_err *err)
{
	struct tx *t = p;
	struct bindv b[3];
	struct kx_buf sql;
	sqlite3_stmt *st = NULL;
	int nb = 0, rc;

	out->v = NULL;
	out->n = 0;
	kx_buf_init(&sql, 64 * 1024);
	rc = kx_buf_adds(&sql, "SELECT " NOTIFICATION_COLS " FROM notifications WHERE 1=1");
	if (f->channel) {
		rc |= kx_buf_adds(&sql, " AND channel = ?");
		b[nb++] = (struct bindv){f->channel, 0};
	}
	if (f->status >= 0) {
		rc |= kx_buf_adds(&sql, " AND status = ?");
		b[nb++] = (struct bindv){NULL, f->status};
	}
	if (f->subject) {
		rc |= kx_buf_adds(&sql, " AND subject = ?");
		b[nb++] = (struct bindv){f->subject, 0};
	}
	/* The rowid orders rows of the same millisecond by insertion. */
	if (rc || kx_buf_adds(&sql, " ORDER BY created_at DESC, rowid DESC LIMIT ?")) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = prepare_built(t, &sql, b, nb, f->limit, &st, err)))
		goto out;
	if ((rc = read_rows(t, st, &out->v, &out->n, sizeof(*out->v), read_notification, err)))
		kx_notifications_release(out);
out:
	sqlite3_finalize(st);
	kx_buf_release(&sql);
	return rc;
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
	.commit_async = sq_commit_async,
	.pending_wait = sq_pending_wait,
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
	.service_put = sq_service_put,
	.service_get = sq_service_get,
	.service_list = sq_service_list,
	.integration_insert = sq_integration_insert,
	.integration_get = sq_integration_get,
	.integration_by_hash = sq_integration_by_hash,
	.integration_list = sq_integration_list,
	.integration_revoke = sq_integration_revoke,
	.alert_firing_by_key = sq_alert_firing_by_key,
	.alert_insert = sq_alert_insert,
	.alert_update = sq_alert_update,
	.alert_fold = sq_alert_fold,
	.alert_get = sq_alert_get,
	.alert_list = sq_alert_list,
	.alert_count_firing = sq_alert_count_firing,
	.alert_expired = sq_alert_expired,
	.change_insert = sq_change_insert,
	.change_list = sq_change_list,
	.heartbeat_insert = sq_heartbeat_insert,
	.heartbeat_get = sq_heartbeat_get,
	.heartbeat_by_hash = sq_heartbeat_by_hash,
	.heartbeat_update = sq_heartbeat_update,
	.heartbeat_delete = sq_heartbeat_delete,
	.heartbeat_list = sq_heartbeat_list,
	.heartbeat_due = sq_heartbeat_due,
	.silence_insert = sq_silence_insert,
	.silence_get = sq_silence_get,
	.silence_update = sq_silence_update,
	.silence_list = sq_silence_list,
	.notification_insert = sq_notification_insert,
	.notification_attempt = sq_notification_attempt,
	.notification_get = sq_notification_get,
	.notification_list = sq_notification_list,
};
