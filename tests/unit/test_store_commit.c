/* test_store_commit.c — the SQLite store's write-commit machinery: group
 * commit (one outer transaction shared by the writers queued at the time,
 * savepoints for those who join it), durable commits (fdatasync of the log
 * after COMMIT) and asynchronous commits (kx_store_commit_async returns
 * after COMMIT; kx_store_pending_wait waits for the disk, then delivers the
 * transaction's change notices). Each test runs on a fresh database in its
 * own temporary directory; the rows counted are caps (one write, one
 * ordered listing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	char url[128];
	struct kx_store *store;
	struct kx_err err;
};

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/kx-commit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->url, sizeof(f->url), "sqlite:%s/klaxon.db", f->dir);
	if (kx_store_open(f->url, &f->store, &f->err)) {
		fprintf(stderr, "cannot open %s: %s\n", f->url, f->err.msg);
		remove_tree(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kx_store_free(f->store);
	remove_tree(f->dir);
	free(f);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#define OK(call)                                                                               \
	do {                                                                                   \
		if ((call) != 0)                                                               \
			fail_msg("%s: %s", #call, f->err.msg);                                 \
	} while (0)

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static struct kx_tx *begin(struct fixture *f, bool write)
{
	struct kx_tx *tx = NULL;
	if (kx_store_begin(f->store, write, &tx, &f->err))
		fail_msg("begin: %s", f->err.msg);
	return tx;
}

/* Writes cap `id` in tx (no cmocka calls: also used on worker threads). */
static int put_cap(struct kx_tx *tx, const char *id, struct kx_err *err)
{
	struct kx_cap c;
	bool created = false;
	int rc;
	kx_cap_init(&c);
	c.id = (char *)id;
	c.spec = (char *)"action=comment: 1/1m";
	c.set_by = (char *)"test";
	c.set_at = 1;
	rc = kx_store_cap_put(tx, &c, &created, err);
	if (rc == 0 && !created)
		rc = kx_err_set(err, KX_ECONFLICT, "cap '%s' already existed", id);
	return rc;
}

/* Every cap, by id, read in a read transaction. */
static void list_caps(struct fixture *f, struct kx_caps *out)
{
	struct kx_tx *tx = begin(f, false);
	OK(kx_store_cap_list(tx, out, &f->err));
	OK(kx_store_commit(tx, &f->err));
}

static bool caps_have(const struct kx_caps *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return true;
	return false;
}

/* Asserts that exactly the caps ids[0..n) exist. */
static void assert_caps(struct fixture *f, const char *const *ids, size_t n)
{
	struct kx_caps l;
	list_caps(f, &l);
	for (size_t i = 0; i < n; i++)
		if (!caps_have(&l, ids[i]))
			fail_msg("cap '%s' is missing (%zu caps stored)", ids[i], l.n);
	if (l.n != n)
		fail_msg("%zu caps stored, expected %zu", l.n, n);
	kx_caps_release(&l);
}

/* ---- a change-feed subscriber that logs what it is told ---- */

#define FEED_MAX 64

struct feed {
	pthread_mutex_t lock;
	int n;
	char topic[FEED_MAX][32];
	char payload[FEED_MAX][64];
	int overflow;
};

static void feed_init(struct feed *fd)
{
	memset(fd, 0, sizeof(*fd));
	pthread_mutex_init(&fd->lock, NULL);
}

static void on_change(const char *topic, const char *payload, void *arg)
{
	struct feed *fd = arg;
	pthread_mutex_lock(&fd->lock);
	if (fd->n < FEED_MAX) {
		snprintf(fd->topic[fd->n], sizeof(fd->topic[0]), "%s", topic);
		snprintf(fd->payload[fd->n], sizeof(fd->payload[0]), "%s", payload);
		fd->n++;
	} else {
		fd->overflow++;
	}
	pthread_mutex_unlock(&fd->lock);
}

/* How many notices (topic, payload) the feed has received. */
static int feed_count(struct feed *fd, const char *topic, const char *payload)
{
	int k = 0;
	pthread_mutex_lock(&fd->lock);
	for (int i = 0; i < fd->n; i++)
		if (!strcmp(fd->topic[i], topic) && !strcmp(fd->payload[i], payload))
			k++;
	pthread_mutex_unlock(&fd->lock);
	return k;
}

/* ---- 1. rollback of the member that opened its batch ---- */

static void test_bare_rollback_then_commit(void **state)
{
	struct fixture *f = *state;
	const char *none[1] = {NULL};
	const char *one[] = {"after.sync"};
	const char *two[] = {"after.sync", "after.async"};
	struct kx_pending *p = NULL;
	struct kx_tx *tx;

	/* alone on the store: this writer opens the batch and works in it bare */
	tx = begin(f, true);
	OK(put_cap(tx, "rolled.back", &f->err));
	OK(put_cap(tx, "rolled.back2", &f->err));
	kx_store_rollback(tx);
	assert_caps(f, none, 0);

	/* the batch is closed: the next writer begins a new one, and commits */
	tx = begin(f, true);
	OK(put_cap(tx, "after.sync", &f->err));
	OK(kx_store_commit(tx, &f->err));
	assert_caps(f, one, 1);

	/* again, with the commit after the rollback made asynchronously */
	tx = begin(f, true);
	OK(put_cap(tx, "rolled.again", &f->err));
	kx_store_rollback(tx);
	tx = begin(f, true);
	OK(put_cap(tx, "after.async", &f->err));
	OK(kx_store_commit_async(tx, &p, &f->err));
	OK(kx_store_pending_wait(p, &f->err));
	assert_caps(f, two, 2);

	/* the rolled-back ids are free: nothing of them was kept */
	tx = begin(f, true);
	OK(put_cap(tx, "rolled.back", &f->err));
	OK(kx_store_commit(tx, &f->err));
}

/* ---- 1b. the same with a second writer queued behind the first ---- */

struct second {
	struct kx_store *store;
	const char *id;
	bool commit; /* else roll back */
	int rc;
	struct kx_err err;
};

static void *second_writer(void *arg)
{
	struct second *w = arg;
	struct kx_tx *tx;
	if ((w->rc = kx_store_begin(w->store, true, &tx, &w->err)))
		return NULL;
	if ((w->rc = put_cap(tx, w->id, &w->err))) {
		kx_store_rollback(tx);
		return NULL;
	}
	if (w->commit)
		w->rc = kx_store_commit(tx, &w->err);
	else
		kx_store_rollback(tx);
	return NULL;
}

/* Holds a write transaction while a second writer queues for the writer,
 * then ends the first with first_commit and lets the second end with
 * second_commit. The pause gives the second time to queue (if it has not,
 * the case is the unqueued one, which must hold too). */
static void queued_pair(struct fixture *f, const char *a, bool first_commit, const char *b,
			bool second_commit)
{
	struct second w = {.store = f->store, .id = b, .commit = second_commit};
	struct kx_tx *tx = begin(f, true);
	pthread_t th;
	OK(put_cap(tx, a, &f->err));
	assert_int_equal(pthread_create(&th, NULL, second_writer, &w), 0);
	sleep_ms(50);
	if (first_commit) {
		/* with the second queued this leaves the batch open, and
		 * returns once the second has ended it */
		OK(kx_store_commit(tx, &f->err));
	} else {
		kx_store_rollback(tx);
	}
	pthread_join(th, NULL);
	if (w.rc)
		fail_msg("second writer: %s", w.err.msg);
}

static void test_queued_writer_rollbacks(void **state)
{
	struct fixture *f = *state;

	/* the first (bare) rolls back with the second queued: the batch is
	 * closed, the second opens its own and commits */
	queued_pair(f, "q1.first", false, "q1.second", true);
	{
		const char *want[] = {"q1.second"};
		assert_caps(f, want, 1);
	}
	/* the first commits into the open batch, the second joins it with a
	 * savepoint and rolls back: only the second's work is undone */
	queued_pair(f, "q2.first", true, "q2.second", false);
	{
		const char *want[] = {"q1.second", "q2.first"};
		assert_caps(f, want, 2);
	}
	/* both commit, in one batch */
	queued_pair(f, "q3.first", true, "q3.second", true);
	{
		const char *want[] = {"q1.second", "q2.first", "q3.first", "q3.second"};
		assert_caps(f, want, 4);
	}
	/* both roll back */
	queued_pair(f, "q4.first", false, "q4.second", false);
	{
		const char *want[] = {"q1.second", "q2.first", "q3.first", "q3.second"};
		assert_caps(f, want, 4);
	}
	/* and the store still takes a plain commit */
	{
		struct kx_tx *tx = begin(f, true);
		const char *want[] = {"q1.second", "q2.first", "q3.first", "q3.second", "q5"};
		OK(put_cap(tx, "q5", &f->err));
		OK(kx_store_commit(tx, &f->err));
		assert_caps(f, want, 5);
	}
}

/* ---- 2. many writers at once ---- */

#define NTHREADS 8
#define NITER 200

/* One notice per (thread, i), counted by index t * NITER + i. */
struct hits {
	pthread_mutex_t lock;
	int n[NTHREADS * NITER];
	int bad; /* notices that name no transaction */
};

static void on_hit(const char *topic, const char *payload, void *arg)
{
	struct hits *h = arg;
	char *end;
	long k = strtol(payload, &end, 10);
	pthread_mutex_lock(&h->lock);
	if (strcmp(topic, "cap") || *end || k < 0 || k >= NTHREADS * NITER)
		h->bad++;
	else
		h->n[k]++;
	pthread_mutex_unlock(&h->lock);
}

enum how { HOW_SYNC, HOW_ASYNC, HOW_ROLLBACK };

struct worker {
	struct kx_store *store;
	int t;
	bool committed[NITER];
	int errors;
	char first_error[600];
};

static enum how how_for(int t, int i)
{
	return (enum how)((i + t) % 3); /* every third rolls back */
}

static void note_error(struct worker *w, const char *what, int i, const struct kx_err *err)
{
	if (w->errors++ == 0)
		snprintf(w->first_error, sizeof(w->first_error), "thread %d, i %d: %s: %s", w->t, i,
			 what, err->msg);
}

static void *write_loop(void *arg)
{
	struct worker *w = arg;
	struct kx_pending *held = NULL; /* the last async commit, not yet waited */
	struct kx_err err = {0};
	char id[32], payload[16];

	for (int i = 0; i < NITER; i++) {
		struct kx_tx *tx;
		enum how how = how_for(w->t, i);
		snprintf(id, sizeof(id), "t%d.i%03d", w->t, i);
		snprintf(payload, sizeof(payload), "%d", w->t * NITER + i);
		if (kx_store_begin(w->store, true, &tx, &err)) {
			note_error(w, "begin", i, &err);
			continue;
		}
		if (put_cap(tx, id, &err) || kx_store_notify(tx, "cap", payload, &err)) {
			note_error(w, "write", i, &err);
			kx_store_rollback(tx);
			continue;
		}
		/* the previous async commit is waited for while this
		 * transaction is open: its fsync overlapped this work */
		if (held && kx_store_pending_wait(held, &err))
			note_error(w, "pending_wait", i - 1, &err);
		held = NULL;
		switch (how) {
		case HOW_ROLLBACK:
			kx_store_rollback(tx);
			break;
		case HOW_SYNC:
			if (kx_store_commit(tx, &err))
				note_error(w, "commit", i, &err);
			else
				w->committed[i] = true;
			break;
		case HOW_ASYNC:
			if (kx_store_commit_async(tx, &held, &err))
				note_error(w, "commit_async", i, &err);
			else
				w->committed[i] = true;
			break;
		}
	}
	if (held && kx_store_pending_wait(held, &err))
		note_error(w, "pending_wait", NITER - 1, &err);
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	static struct worker w[NTHREADS];
	static struct hits h;
	pthread_t th[NTHREADS];
	struct kx_caps l;
	size_t want = 0;

	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	OK(kx_store_subscribe(f->store, on_hit, &h, &f->err));
	for (int t = 0; t < NTHREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].store = f->store;
		w[t].t = t;
		assert_int_equal(pthread_create(&th[t], NULL, write_loop, &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < NTHREADS; t++)
		if (w[t].errors)
			fail_msg("%d errors, first: %s", w[t].errors, w[t].first_error);

	/* exactly the committed rows, by identity */
	list_caps(f, &l);
	for (int t = 0; t < NTHREADS; t++) {
		for (int i = 0; i < NITER; i++) {
			char id[32];
			bool kept = how_for(t, i) != HOW_ROLLBACK;
			snprintf(id, sizeof(id), "t%d.i%03d", t, i);
			assert_true(w[t].committed[i] == kept);
			want += kept;
			if (caps_have(&l, id) != kept)
				fail_msg("cap '%s' is %s", id, kept ? "missing" : "there, rolled back");
		}
	}
	if (l.n != want)
		fail_msg("%zu caps stored, expected %zu", l.n, want);
	/* (i + t) % 3: a third rolled back, give or take one per thread */
	assert_in_range(want, NTHREADS * (NITER * 2 / 3 - 1), NTHREADS * (NITER * 2 / 3 + 1));
	kx_caps_release(&l);

	/* each committed transaction's notice arrived once, no rolled-back one */
	assert_int_equal(h.bad, 0);
	for (int t = 0; t < NTHREADS; t++)
		for (int i = 0; i < NITER; i++)
			if (h.n[t * NITER + i] != (how_for(t, i) != HOW_ROLLBACK))
				fail_msg("t%d.i%03d (%s): notified %d times", t, i,
					 how_for(t, i) == HOW_ROLLBACK ? "rolled back" : "committed",
					 h.n[t * NITER + i]);
	pthread_mutex_destroy(&h.lock);
}

/* ---- 3. asynchronous commits ---- */

static void test_async_commit_notifies_after_wait(void **state)
{
	struct fixture *f = *state;
	struct feed fd;
	struct kx_pending *p = NULL, *ps[3] = {NULL};
	struct kx_caps l;
	struct kx_tx *tx;
	char id[32];

	feed_init(&fd);
	OK(kx_store_subscribe(f->store, on_change, &fd, &f->err));

	tx = begin(f, true);
	OK(put_cap(tx, "async.one", &f->err));
	OK(kx_store_notify(tx, "caps", "async.one", &f->err));
	OK(kx_store_commit_async(tx, &p, &f->err));
	assert_non_null(p);
	/* not durable yet: nobody may be told */
	assert_int_equal(feed_count(&fd, "caps", "async.one"), 0);
	OK(kx_store_pending_wait(p, &f->err));
	assert_int_equal(feed_count(&fd, "caps", "async.one"), 1);
	list_caps(f, &l);
	assert_true(caps_have(&l, "async.one"));
	kx_caps_release(&l);

	/* several outstanding, waited for newest first */
	for (int k = 0; k < 3; k++) {
		snprintf(id, sizeof(id), "async.r%d", k);
		tx = begin(f, true);
		OK(put_cap(tx, id, &f->err));
		OK(kx_store_notify(tx, "caps", id, &f->err));
		OK(kx_store_commit_async(tx, &ps[k], &f->err));
		assert_non_null(ps[k]);
	}
	assert_int_equal(fd.n, 1);
	for (int k = 2; k >= 0; k--) {
		OK(kx_store_pending_wait(ps[k], &f->err));
		for (int j = 0; j < 3; j++) {
			snprintf(id, sizeof(id), "async.r%d", j);
			assert_int_equal(feed_count(&fd, "caps", id), j >= k ? 1 : 0);
		}
	}
	assert_int_equal(fd.n, 4);
	assert_int_equal(fd.overflow, 0);
	{
		const char *want[] = {"async.one", "async.r0", "async.r1", "async.r2"};
		assert_caps(f, want, 4);
	}

	/* a rolled-back transaction's notice is never delivered, and a sync
	 * commit's is delivered by the commit itself */
	tx = begin(f, true);
	OK(put_cap(tx, "async.gone", &f->err));
	OK(kx_store_notify(tx, "caps", "async.gone", &f->err));
	kx_store_rollback(tx);
	tx = begin(f, true);
	OK(put_cap(tx, "sync.one", &f->err));
	OK(kx_store_notify(tx, "caps", "sync.one", &f->err));
	OK(kx_store_commit(tx, &f->err));
	assert_int_equal(feed_count(&fd, "caps", "sync.one"), 1);
	assert_int_equal(feed_count(&fd, "caps", "async.gone"), 0);
	assert_int_equal(fd.n, 5);
	pthread_mutex_destroy(&fd.lock);
}

/* ---- 4. what was committed is there after a reopen ---- */

#define NREOPEN 30

static void test_commits_survive_reopen(void **state)
{
	struct fixture *f = *state;
	const char *ids[NREOPEN];
	char buf[NREOPEN][32];
	size_t n = 0;

	for (int i = 0; i < NREOPEN; i++) {
		struct kx_tx *tx = begin(f, true);
		snprintf(buf[i], sizeof(buf[i]), "reopen.%02d", i);
		OK(put_cap(tx, buf[i], &f->err));
		if (i % 5 == 4) {
			kx_store_rollback(tx);
			continue;
		}
		if (i % 2) {
			struct kx_pending *p = NULL;
			OK(kx_store_commit_async(tx, &p, &f->err));
			OK(kx_store_pending_wait(p, &f->err));
		} else {
			OK(kx_store_commit(tx, &f->err));
		}
		ids[n++] = buf[i];
	}
	kx_store_free(f->store);
	f->store = NULL;
	if (kx_store_open(f->url, &f->store, &f->err))
		fail_msg("reopen %s: %s", f->url, f->err.msg);
	assert_caps(f, ids, n);
	assert_int_equal(n, NREOPEN - NREOPEN / 5);
}

/* ---- 5. a read-only transaction has nothing to wait for ---- */

static void test_async_commit_of_read_tx(void **state)
{
	struct fixture *f = *state;
	struct kx_pending *p = (struct kx_pending *)&p; /* not NULL: must be cleared */
	struct kx_caps l;
	struct kx_tx *tx = begin(f, false);

	OK(kx_store_cap_list(tx, &l, &f->err));
	kx_caps_release(&l);
	OK(kx_store_commit_async(tx, &p, &f->err));
	assert_null(p);
	OK(kx_store_pending_wait(NULL, &f->err)); /* a no-op */
	/* the reader was handed back: the store still reads and writes */
	tx = begin(f, true);
	OK(put_cap(tx, "after.read", &f->err));
	OK(kx_store_commit(tx, &f->err));
	{
		const char *want[] = {"after.read"};
		assert_caps(f, want, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_bare_rollback_then_commit),
		TEST(test_queued_writer_rollbacks),
		TEST(test_concurrent_writers),
		TEST(test_async_commit_notifies_after_wait),
		TEST(test_commits_survive_reopen),
		TEST(test_async_commit_of_read_tx),
	};
	/* a commit that never returns (a lost wake-up, a batch nobody ends)
	 * is a failure, not a hung suite: the whole file takes well under a
	 * second, a few under the sanitizers */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
