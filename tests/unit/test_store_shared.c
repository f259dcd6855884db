/* The store's shared-work mechanisms — job claiming and the change feed —
 * exercised the way several daemons use them: two independent kx_store
 * handles on one database, several claimer threads each. Runs on SQLite
 * always and on PostgreSQL too when KX_TEST_PG_URL names a server (the
 * integration harness and CI start one with scripts/pg-test-server). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/secret.h"
#include "lib/time.h"
#include "store/store.h"

#define NJOBS 400
#define NTHREADS 4

static char url[4200];
static char dir[256];

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int open_store(struct kx_store **s)
{
	struct kx_err err = {0};
	int rc = kx_store_open(url, s, &err);
	if (rc)
		fprintf(stderr, "open %s: %s\n", url, err.msg);
	return rc;
}

static void enqueue(struct kx_store *s, int n, const char *kind, kx_ms run_at)
{
	struct kx_tx *tx;
	struct kx_err err = {0};
	char payload[32];
	assert_int_equal(kx_store_begin(s, true, &tx, &err), 0);
	for (int i = 0; i < n; i++) {
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		assert_int_equal(kx_store_job_enqueue(tx, kind, payload, run_at, NULL, &err), 0);
	}
	assert_int_equal(kx_store_commit(tx, &err), 0);
}

struct claimer {
	struct kx_store *store;
	char worker[32];
	int64_t *seen; /* shared: seen[id] counts claims */
	pthread_mutex_t *lock;
	int claimed;
	int errors;
};

static void *claim_loop(void *arg)
{
	struct claimer *c = arg;
	struct kx_err err = {0};
	int empty = 0;
	for (int round = 0; round < 10000 && empty < 3; round++) {
		struct kx_jobs jobs;
		if (kx_store_job_claim(c->store, c->worker, kx_now_ms(), 60000, 7, &jobs, &err)) {
			c->errors++;
			continue;
		}
		empty = jobs.n ? 0 : empty + 1;
		for (size_t i = 0; i < jobs.n; i++) {
			pthread_mutex_lock(c->lock);
			if (jobs.v[i].id > 0 && jobs.v[i].id < 100000)
				c->seen[jobs.v[i].id]++;
			pthread_mutex_unlock(c->lock);
			c->claimed++;
			if (kx_store_job_finish(c->store, jobs.v[i].id, c->worker, &err))
				c->errors++;
		}
		kx_jobs_release(&jobs);
	}
	return NULL;
}

/* Two daemons (two stores), NTHREADS claimers: every job once, none twice. */
static void test_jobs_claimed_once(void **state)
{
	struct kx_store *a, *b;
	struct claimer cl[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int64_t *seen = calloc(100000, sizeof(*seen));
	int total = 0, once = 0;
	(void)state;

	assert_non_null(seen);
	assert_int_equal(open_store(&a), 0);
	assert_int_equal(open_store(&b), 0);
	enqueue(a, NJOBS, "test.once", kx_now_ms() - 1);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].store = i % 2 ? b : a;
		snprintf(cl[i].worker, sizeof(cl[i].worker), "w%d", i);
		cl[i].seen = seen;
		cl[i].lock = &lock;
		assert_int_equal(pthread_create(&th[i], NULL, claim_loop, &cl[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += cl[i].claimed;
		assert_int_equal(cl[i].errors, 0);
	}
	for (int i = 0; i < 100000; i++) {
		assert_true(seen[i] <= 1);
		once += seen[i] == 1;
	}
	assert_int_equal(total, NJOBS);
	assert_int_equal(once, NJOBS);
	/* On PostgreSQL both daemons take part; SQLite serves one daemon, and
	 * its in-process writer lock may let one handle take everything. */
	if (strncmp(url, "sqlite:", 7) != 0) {
		assert_true(cl[0].claimed + cl[2].claimed > 0);
		assert_true(cl[1].claimed + cl[3].claimed > 0);
	}
	free(seen);
	kx_store_free(a);
	kx_store_free(b);
}

/* A lease that runs out goes to another worker; the first can no longer
 * finish it. A retried job waits for its time. */
static void test_leases_and_retry(void **state)
{
	struct kx_store *s;
	struct kx_jobs j1, j2, j3;
	struct kx_err err = {0};
	kx_ms now = kx_now_ms();
	(void)state;

	assert_int_equal(open_store(&s), 0);
	/* drain anything left by another test */
	while (!kx_store_job_claim(s, "drain", now + 100000000, 1, 100, &j1, &err) && j1.n) {
		for (size_t i = 0; i < j1.n; i++)
			kx_store_job_finish(s, j1.v[i].id, "drain", &err);
		kx_jobs_release(&j1);
	}
	enqueue(s, 1, "test.lease", now);
	assert_int_equal(kx_store_job_claim(s, "first", now, 1000, 10, &j1, &err), 0);
	assert_int_equal(j1.n, 1);
	assert_int_equal(j1.v[0].attempts, 1);
	assert_string_equal(j1.v[0].kind, "test.lease");
	/* still leased: nobody else gets it */
	assert_int_equal(kx_store_job_claim(s, "second", now + 500, 1000, 10, &j2, &err), 0);
	assert_int_equal(j2.n, 0);
	kx_jobs_release(&j2);
	/* lease over: the second worker takes it */
	assert_int_equal(kx_store_job_claim(s, "second", now + 1001, 1000, 10, &j2, &err), 0);
	assert_int_equal(j2.n, 1);
	assert_int_equal(j2.v[0].id, j1.v[0].id);
	assert_int_equal(j2.v[0].attempts, 2);
	assert_int_equal(kx_store_job_finish(s, j1.v[0].id, "first", &err), KX_ECONFLICT);
	/* retry later: not due before its time */
	assert_int_equal(kx_store_job_retry(s, j2.v[0].id, "second", now + 5000, &err), 0);
	assert_int_equal(kx_store_job_claim(s, "third", now + 4999, 1000, 10, &j3, &err), 0);
	assert_int_equal(j3.n, 0);
	kx_jobs_release(&j3);
	assert_int_equal(kx_store_job_claim(s, "third", now + 5000, 1000, 10, &j3, &err), 0);
	assert_int_equal(j3.n, 1);
	assert_int_equal(j3.v[0].attempts, 3);
	assert_int_equal(kx_store_job_finish(s, j3.v[0].id, "third", &err), 0);
	kx_jobs_release(&j1);
	kx_jobs_release(&j2);
	kx_jobs_release(&j3);
	kx_store_free(s);
}

struct seen_note {
	pthread_mutex_t lock;
	int count;
	char topic[64], payload[64];
	kx_ms at;
};

static void on_note(const char *topic, const char *payload, void *arg)
{
	struct seen_note *n = arg;
	if (strcmp(topic, "*") == 0)
		return;
	pthread_mutex_lock(&n->lock);
	n->count++;
	snprintf(n->topic, sizeof(n->topic), "%s", topic);
	snprintf(n->payload, sizeof(n->payload), "%s", payload);
	n->at = kx_now_ms();
	pthread_mutex_unlock(&n->lock);
}

static int wait_count(struct seen_note *n, int want, int ms)
{
	for (int i = 0; i < ms; i++) {
		int c;
		pthread_mutex_lock(&n->lock);
		c = n->count;
		pthread_mutex_unlock(&n->lock);
		if (c >= want)
			return c;
		sleep_ms(1);
	}
	pthread_mutex_lock(&n->lock);
	int c = n->count;
	pthread_mutex_unlock(&n->lock);
	return c;
}

/* A notification reaches subscribers of both daemons after commit, never
 * after rollback. */
static void test_change_feed(void **state)
{
	struct kx_store *a, *b;
	struct kx_tx *tx;
	struct kx_err err = {0};
	struct seen_note na = {PTHREAD_MUTEX_INITIALIZER, 0, "", "", 0};
	struct seen_note nb = {PTHREAD_MUTEX_INITIALIZER, 0, "", "", 0};
	bool shared = strncmp(url, "sqlite:", 7) != 0; /* SQLite serves one daemon */
	kx_ms sent;
	(void)state;

	assert_int_equal(open_store(&a), 0);
	assert_int_equal(open_store(&b), 0);
	assert_int_equal(kx_store_subscribe(a, on_note, &na, &err), 0);
	assert_int_equal(kx_store_subscribe(b, on_note, &nb, &err), 0);
	sleep_ms(200); /* let a LISTEN connection settle */

	assert_int_equal(kx_store_begin(a, true, &tx, &err), 0);
	assert_int_equal(kx_store_notify(tx, "tokens", "rolled-back", &err), 0);
	kx_store_rollback(tx);

	assert_int_equal(kx_store_begin(a, true, &tx, &err), 0);
	assert_int_equal(kx_store_notify(tx, "tokens", "tok_1", &err), 0);
	sent = kx_now_ms();
	assert_int_equal(kx_store_commit(tx, &err), 0);
	assert_int_equal(wait_count(&na, 1, 5000), 1);
	assert_string_equal(na.topic, "tokens");
	assert_string_equal(na.payload, "tok_1");
	if (shared) {
		assert_int_equal(wait_count(&nb, 1, 5000), 1);
		assert_string_equal(nb.payload, "tok_1");
		printf("change feed: delivered to the other daemon in %lld ms\n",
		       (long long)(nb.at - sent));
		assert_true(nb.at - sent < 1000);
	}
	sleep_ms(100);
	assert_int_equal(wait_count(&na, 2, 1), 1); /* the rolled-back one never came */
	kx_store_free(a);
	kx_store_free(b);
}

static void test_singleton(void **state)
{
	struct kx_store *a, *b;
	struct kx_err err = {0};
	bool got_a = false, got_b = true;
	bool shared = strncmp(url, "sqlite:", 7) != 0;
	(void)state;
	assert_int_equal(open_store(&a), 0);
	assert_int_equal(kx_store_singleton_try(a, "test.singleton", &got_a, &err), 0);
	assert_true(got_a);
	if (shared) {
		assert_int_equal(open_store(&b), 0);
		assert_int_equal(kx_store_singleton_try(b, "test.singleton", &got_b, &err), 0);
		assert_false(got_b);
		kx_store_free(a); /* releases the lock */
		assert_int_equal(kx_store_singleton_try(b, "test.singleton", &got_b, &err), 0);
		assert_true(got_b);
		kx_store_free(b);
	} else {
		kx_store_free(a);
	}
}

static int run(const char *name)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_claimed_once),
		cmocka_unit_test(test_leases_and_retry),
		cmocka_unit_test(test_change_feed),
		cmocka_unit_test(test_singleton),
	};
	return _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}

#ifndef KX_SOURCE_DIR
#define KX_SOURCE_DIR "."
#endif

/* Runs scripts/pg-test-server VERB DIR; for "start", url gets what it prints. */
static int pg_server(const char *verb, const char *pgdir, char *out, size_t n)
{
	const char *src = getenv("KX_SOURCE_DIR");
	char cmd[1024], line[1024] = "";
	FILE *p;
	snprintf(cmd, sizeof(cmd), "'%s/scripts/pg-test-server' %s '%s' 2>/dev/null",
		 src && *src ? src : KX_SOURCE_DIR, verb, pgdir);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p))
		if (out)
			snprintf(out, n, "%s", line);
	if (out)
		out[strcspn(out, "\n")] = '\0';
	return pclose(p);
}

int main(void)
{
	const char *pg = getenv("KX_TEST_PG_URL");
	char pgdir[64] = "", pgurl[1024] = "";
	int rc;

	kx_secret_init();
	snprintf(dir, sizeof(dir), "/tmp/kx-shared-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s/klaxon.db", dir);
	rc = run("store_shared_sqlite");
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	if (!pg || !*pg) {
		/* a private server, as the integration harness does */
		snprintf(pgdir, sizeof(pgdir), "/tmp/kx-shared-pg-XXXXXX");
		if (!mkdtemp(pgdir) || pg_server("start", pgdir, pgurl, sizeof(pgurl)) || !*pgurl) {
			fprintf(stderr, "cannot start PostgreSQL with scripts/pg-test-server\n");
			return 1;
		}
		pg = pgurl;
	}
	snprintf(url, sizeof(url), "%s", pg);
	rc |= run("store_shared_postgres");
	if (pgdir[0]) {
		char cmd[200];
		pg_server("stop", pgdir, NULL, 0);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pgdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", pgdir);
	}
	return rc;
}
