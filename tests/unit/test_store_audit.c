/* The audit log in the store, on both backends: append links the chain,
 * queries filter, duplicates and recipients group, a rolled-back append
 * leaves no gap, and appends from two stores (two daemons) at once keep one
 * unbroken chain. Runs on SQLite always and on PostgreSQL too (a private
 * server from scripts/pg-test-server, or KX_TEST_PG_URL). Every test names
 * its events with an actor of its own, so they can share one database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/secret.h"
#include "lib/time.h"
#include "store/store.h"

#define NTHREADS 4
#define NBATCHES 40
#define BATCH 5

static char url[4200];

static struct kx_store *open_store(void)
{
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	if (kx_store_open(url, &s, &err))
		fail_msg("open %s: %s", url, err.msg);
	return s;
}

/* A unique actor name for one test's events. */
static void actor_name(char out[KX_ID_LEN], const char *prefix)
{
	kx_random_id(prefix, out, KX_ID_LEN);
}

static void event(struct kx_audit_event *e, const char *actor, const char *action,
		  const char *account, const char *target, const char *content, kx_ms at)
{
	kx_audit_event_init(e);
	e->at = at;
	e->actor = strdup(actor);
	e->action = strdup(action);
	e->account = account ? strdup(account) : NULL;
	e->target = target ? strdup(target) : NULL;
	e->content_hash = content ? strdup(content) : NULL;
}

static void append(struct kx_store *s, struct kx_audit_event *v, size_t n)
{
	struct kx_tx *tx;
	struct kx_err err = {0};
	assert_int_equal(kx_store_begin(s, true, &tx, &err), 0);
	if (kx_store_audit_append(tx, v, n, &err))
		fail_msg("append: %s", err.msg);
	assert_int_equal(kx_store_commit(tx, &err), 0);
}

static void query(struct kx_store *s, const struct kx_audit_filter *f,
		  struct kx_audit_events *out)
{
	struct kx_tx *tx;
	struct kx_err err = {0};
	assert_int_equal(kx_store_begin(s, false, &tx, &err), 0);
	if (kx_store_audit_query(tx, f, out, &err))
		fail_msg("query: %s", err.msg);
	kx_store_rollback(tx);
}

/* Walks the whole chain; returns the number of events, failing the test
 * at the first broken link. */
static int64_t walk(struct kx_store *s)
{
	struct kx_tx *tx;
	struct kx_err err = {0}, why = {0};
	struct kx_audit_events page;
	uint8_t prev[KX_HASH_LEN];
	int64_t seq = 0;

	assert_int_equal(kx_store_begin(s, false, &tx, &err), 0);
	for (;;) {
		assert_int_equal(kx_store_audit_page(tx, seq, 300, &page, &err), 0);
		if (!page.n)
			break;
		for (size_t i = 0; i < page.n; i++) {
			if (kx_audit_verify_step(&page.v[i], seq, seq ? prev : NULL, &why))
				fail_msg("chain broken at %lld: %s", (long long)page.v[i].seq, why.msg);
			seq = page.v[i].seq;
			memcpy(prev, page.v[i].hash, KX_HASH_LEN);
		}
		kx_audit_events_release(&page);
	}
	kx_audit_events_release(&page);
	kx_store_rollback(tx);
	return seq;
}

static void test_append_links_and_reads_back(void **state)
{
	struct kx_store *s = open_store();
	struct kx_audit_event v[3];
	struct kx_audit_filter f;
	struct kx_audit_events got;
	char actor[KX_ID_LEN];
	kx_ms now = kx_now_ms();
	(void)state;

	actor_name(actor, "rb_");
	event(&v[0], actor, "comment", "@brand", "post/1", "sha256:aa", now - 2000);
	v[0].client = strdup("acme");
	v[0].platform = strdup("instagram");
	v[0].lane = strdup("browser");
	v[0].outcome = strdup("success");
	v[0].trace_id = strdup("trace-1");
	v[0].artifact_url = strdup("https://artifacts.example/1.png");
	v[0].idempotency_key = strdup("idem-1");
	assert_int_equal(kx_labels_set(&v[0].labels, "campaign", "say \"hi\", \\o/", NULL), 0);
	event(&v[1], actor, "dm", "@brand", "@alice", NULL, now - 1000);
	event(&v[2], actor, "dm", "@other", "@bob", NULL, now);
	append(s, v, 3);
	assert_true(v[0].seq >= 1);
	assert_int_equal(v[1].seq, v[0].seq + 1);
	assert_int_equal(v[2].seq, v[0].seq + 2);
	assert_memory_equal(v[1].prev_hash, v[0].hash, KX_HASH_LEN);
	assert_memory_equal(v[2].prev_hash, v[1].hash, KX_HASH_LEN);

	kx_audit_filter_init(&f);
	f.actor = actor;
	f.oldest_first = true;
	query(s, &f, &got);
	assert_int_equal(got.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(got.v[i].seq, v[i].seq);
		assert_int_equal(got.v[i].at, v[i].at);
		assert_memory_equal(got.v[i].hash, v[i].hash, KX_HASH_LEN);
		assert_memory_equal(got.v[i].prev_hash, v[i].prev_hash, KX_HASH_LEN);
		for (size_t k = 0; k < KX_AUDIT_NFIELDS; k++) {
			const char *a = kx_audit_field_value(&v[i], k), *b = kx_audit_field_value(&got.v[i], k);
			if (!a)
				assert_null(b);
			else
				assert_string_equal(a, b);
		}
	}
	assert_string_equal(kx_labels_get(&got.v[0].labels, "campaign"), "say \"hi\", \\o/");
	kx_audit_events_release(&got);

	/* newest first by default */
	f.oldest_first = false;
	f.limit = 2;
	query(s, &f, &got);
	assert_int_equal(got.n, 2);
	assert_int_equal(got.v[0].seq, v[2].seq);
	kx_audit_events_release(&got);
	f.limit = 0;

	/* every filter */
	f.account = "@brand";
	query(s, &f, &got);
	assert_int_equal(got.n, 2);
	kx_audit_events_release(&got);
	f.action = "dm";
	query(s, &f, &got);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0].target, "@alice");
	kx_audit_events_release(&got);
	f.account = f.action = NULL;
	f.client = "acme";
	f.platform = "instagram";
	f.lane = "browser";
	f.target = "post/1";
	query(s, &f, &got);
	assert_int_equal(got.n, 1);
	kx_audit_events_release(&got);
	f.client = f.platform = f.lane = f.target = NULL;
	assert_int_equal(kx_labels_set(&f.labels, "campaign", "say \"hi\", \\o/", NULL), 0);
	query(s, &f, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].seq, v[0].seq);
	kx_audit_events_release(&got);
	assert_int_equal(kx_labels_set(&f.labels, "campaign", "other", NULL), 0);
	query(s, &f, &got);
	assert_int_equal(got.n, 0);
	kx_audit_events_release(&got);
	kx_labels_release(&f.labels);
	f.since = now - 1000; /* at >= since */
	query(s, &f, &got);
	assert_int_equal(got.n, 2);
	kx_audit_events_release(&got);
	f.until = now; /* at < until */
	query(s, &f, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].seq, v[1].seq);
	kx_audit_events_release(&got);
	f.since = f.until = KX_TIME_UNSET;
	f.after_seq = v[1].seq;
	query(s, &f, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].seq, v[2].seq);
	kx_audit_events_release(&got);

	kx_audit_filter_release(&f);
	for (size_t i = 0; i < 3; i++)
		kx_audit_event_release(&v[i]);
	assert_true(walk(s) >= 3);
	kx_store_free(s);
}

static void test_duplicates_and_recipients(void **state)
{
	struct kx_store *s = open_store();
	struct kx_audit_event v[7];
	struct kx_audit_filter f;
	struct kx_audit_groups g;
	struct kx_tx *tx;
	struct kx_err err = {0};
	char actor[KX_ID_LEN];
	kx_ms now = kx_now_ms();
	(void)state;

	actor_name(actor, "dr_");
	event(&v[0], actor, "comment", "@a", "post/1", "h1", now);
	event(&v[1], actor, "comment", "@b", "post/1", "h1", now + 1);
	event(&v[2], actor, "comment", "@a", "post/1", "h1", now + 2);
	event(&v[3], actor, "comment", "@a", "post/1", "h2", now + 3); /* other content */
	event(&v[4], actor, "dm", "@a", "@alice", NULL, now + 4);
	event(&v[5], actor, "dm", "@a", "@alice", NULL, now + 5);
	event(&v[6], actor, "dm", "@b", NULL, NULL, now + 6); /* no target: left out */
	append(s, v, 7);

	kx_audit_filter_init(&f);
	f.actor = actor;
	assert_int_equal(kx_store_begin(s, false, &tx, &err), 0);
	assert_int_equal(kx_store_audit_duplicates(tx, &f, &g, &err), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.v[0].action, "comment");
	assert_string_equal(g.v[0].target, "post/1");
	assert_string_equal(g.v[0].content_hash, "h1");
	assert_int_equal(g.v[0].count, 3);
	assert_int_equal(g.v[0].accounts, 2);
	assert_int_equal(g.v[0].first_at, now);
	assert_int_equal(g.v[0].last_at, now + 2);
	assert_string_equal(g.v[1].action, "dm");
	assert_null(g.v[1].content_hash);
	assert_int_equal(g.v[1].count, 2);
	kx_audit_groups_release(&g);

	f.action = "dm";
	assert_int_equal(kx_store_audit_recipients(tx, &f, &g, &err), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.v[0].target, "@alice");
	assert_null(g.v[0].action);
	assert_int_equal(g.v[0].count, 2);
	assert_int_equal(g.v[0].accounts, 1);
	kx_audit_groups_release(&g);
	f.action = "comment";
	assert_int_equal(kx_store_audit_recipients(tx, &f, &g, &err), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.v[0].count, 4);
	kx_audit_groups_release(&g);
	f.since = now + 1; /* the first duplicate drops out of the window */
	assert_int_equal(kx_store_audit_duplicates(tx, &f, &g, &err), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.v[0].count, 2);
	kx_audit_groups_release(&g);
	kx_store_rollback(tx);

	kx_audit_filter_release(&f);
	for (size_t i = 0; i < 7; i++)
		kx_audit_event_release(&v[i]);
	kx_store_free(s);
}

/* An append that is rolled back takes no seq with it; one in a read
 * transaction is refused. */
static void test_rollback_leaves_no_gap(void **state)
{
	struct kx_store *s = open_store();
	struct kx_audit_event a, b;
	struct kx_tx *tx;
	struct kx_err err = {0};
	char actor[KX_ID_LEN];
	int64_t seq;
	(void)state;

	actor_name(actor, "rg_");
	event(&a, actor, "comment", NULL, NULL, NULL, kx_now_ms());
	event(&b, actor, "comment", NULL, NULL, NULL, kx_now_ms());
	append(s, &a, 1);
	assert_int_equal(kx_store_begin(s, true, &tx, &err), 0);
	assert_int_equal(kx_store_audit_append(tx, &b, 1, &err), 0);
	seq = b.seq;
	kx_store_rollback(tx);
	append(s, &b, 1);
	assert_int_equal(b.seq, seq);
	assert_int_equal(kx_store_begin(s, false, &tx, &err), 0);
	assert_int_not_equal(kx_store_audit_append(tx, &b, 1, &err), 0);
	kx_store_rollback(tx);
	kx_audit_event_release(&a);
	kx_audit_event_release(&b);
	assert_true(walk(s) >= 2);
	kx_store_free(s);
}

struct appender {
	struct kx_store *store;
	char actor[KX_ID_LEN];
	int errors;
	char why[sizeof(((struct kx_err *)0)->msg)];
};

static void *append_loop(void *arg)
{
	struct appender *ap = arg;
	for (int i = 0; i < NBATCHES; i++) {
		struct kx_audit_event v[BATCH];
		struct kx_tx *tx;
		struct kx_err err = {0};
		for (int k = 0; k < BATCH; k++)
			event(&v[k], ap->actor, "comment", "@a", "post/1", NULL, kx_now_ms());
		if (kx_store_begin(ap->store, true, &tx, &err) ||
		    kx_store_audit_append(tx, v, BATCH, &err) || kx_store_commit(tx, &err)) {
			ap->errors++;
			snprintf(ap->why, sizeof(ap->why), "%s", err.msg);
		}
		for (int k = 0; k < BATCH; k++)
			kx_audit_event_release(&v[k]);
	}
	return NULL;
}

/* Two daemons (two stores), two appending threads each: every event lands
 * in one chain without a fork or a gap. */
static void test_concurrent_appends_keep_one_chain(void **state)
{
	struct kx_store *a = open_store(), *b = open_store();
	struct appender ap[NTHREADS];
	pthread_t th[NTHREADS];
	struct kx_audit_filter f;
	struct kx_audit_events got;
	int64_t before = walk(a), after;
	(void)state;

	for (int i = 0; i < NTHREADS; i++) {
		memset(&ap[i], 0, sizeof(ap[i]));
		ap[i].store = i % 2 ? b : a;
		actor_name(ap[i].actor, "cc_");
		assert_int_equal(pthread_create(&th[i], NULL, append_loop, &ap[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		if (ap[i].errors)
			fail_msg("appender %d: %d errors, last: %s", i, ap[i].errors, ap[i].why);
	}
	after = walk(b);
	assert_int_equal(after - before, NTHREADS * NBATCHES * BATCH);
	/* each batch is consecutive */
	kx_audit_filter_init(&f);
	f.actor = ap[0].actor;
	f.oldest_first = true;
	f.limit = NBATCHES * BATCH;
	query(a, &f, &got);
	assert_int_equal(got.n, NBATCHES * BATCH);
	for (size_t i = 0; i < got.n; i += BATCH)
		for (size_t k = 1; k < BATCH; k++)
			assert_int_equal(got.v[i + k].seq, got.v[i].seq + (int64_t)k);
	kx_audit_events_release(&got);
	kx_audit_filter_release(&f);
	kx_store_free(a);
	kx_store_free(b);
}

static int run(const char *name)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_links_and_reads_back),
		cmocka_unit_test(test_duplicates_and_recipients),
		cmocka_unit_test(test_rollback_leaves_no_gap),
		cmocka_unit_test(test_concurrent_appends_keep_one_chain),
	};
	return _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}

#ifndef KX_SOURCE_DIR
#define KX_SOURCE_DIR "."
#endif

/* Runs scripts/pg-test-server VERB DIR; for "start", out gets its URL. */
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

static void remove_dir(const char *d)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", d);
}

int main(void)
{
	const char *pg = getenv("KX_TEST_PG_URL");
	char dir[64], pgdir[64] = "", pgurl[1024] = "";
	int rc;

	kx_secret_init();
	snprintf(dir, sizeof(dir), "/tmp/kx-audit-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s/klaxon.db", dir);
	rc = run("store_audit_sqlite");
	remove_dir(dir);
	if (!pg || !*pg) {
		snprintf(pgdir, sizeof(pgdir), "/tmp/kx-audit-pg-XXXXXX");
		if (!mkdtemp(pgdir) || pg_server("start", pgdir, pgurl, sizeof(pgurl)) || !*pgurl) {
			fprintf(stderr, "cannot start PostgreSQL with scripts/pg-test-server\n");
			return 1;
		}
		pg = pgurl;
	}
	snprintf(url, sizeof(url), "%s", pg);
	rc |= run("store_audit_postgres");
	if (pgdir[0]) {
		pg_server("stop", pgdir, NULL, 0);
		remove_dir(pgdir);
	}
	return rc;
}
