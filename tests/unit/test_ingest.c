/* The ingestion queue and its batches (service/ingest.h), on a real SQLite
 * store: many requests' events in one transaction fold and group as if
 * each had its own; a request that fails in a batch fails alone and the
 * others are stored; the runtime answers every job exactly once, also
 * when stopped under load, and refuses jobs after; the key cache forgets
 * a key when it is revoked. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alert.h"
#include "core/config.h"
#include "core/route.h"
#include "lib/secret.h"
#include "lib/time.h"
#include "service/alerts.h"
#include "service/ingest.h"
#include "store/store.h"

#include "helpers.h"

#define OK(call)                                                                               \
	do {                                                                                   \
		int rc_ = (call);                                                              \
		if (rc_)                                                                       \
			fail_msg("%s: %d %s", #call, rc_, err.msg);                            \
	} while (0)

static const char CONFIG[] = "services:\n"
			     "  - name: payments\n"
			     "  - name: search\n"
			     "routes:\n"
			     "  - name: pages\n"
			     "    match: 'alertname=\"DatabaseDown\"'\n"
			     "    severity: P1\n"
			     "    group_by: [alertname]\n"
			     "  - name: quiet\n"
			     "    match: ''\n"
			     "    action: none\n";

struct fixture {
	char dir[64];
	struct kx_config cfg;
	struct kx_app app;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kx_err err = {0};
	char url[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/kx-ingest-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(url, sizeof(url), "sqlite:%s/klaxon.db", f->dir);
	OK(kx_config_init(&f->cfg));
	OK(kx_config_parse(&f->cfg, CONFIG, strlen(CONFIG), "test.yaml", &err));
	OK(kx_store_open(url, &f->app.store, &err));
	f->app.cfg = &f->cfg;
	OK(kx_router_new(&f->cfg, &f->app.router, &err));
	OK(kx_svc_services_sync(&f->app, kx_now_ms(), &err));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	kx_ingest_rt_stop(f->app.ingest);
	kx_store_free(f->app.store);
	kx_ingest_rt_free(f->app.ingest);
	kx_router_free(f->app.router);
	kx_config_release(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A trigger with alertname and severity labels and a fixed dedup key. */
static void trigger(struct kx_alert_event *e, const char *key, const char *alertname,
		    const char *severity)
{
	struct kx_err err = {0};
	kx_alert_event_init(e);
	e->source = KX_SOURCE_ALERTMANAGER;
	e->action = KX_ALERT_TRIGGER;
	e->dedup_key = strdup(key);
	e->summary = strdup(alertname);
	OK(kx_labels_set(&e->labels, "alertname", alertname, &err));
	OK(kx_labels_set(&e->labels, "severity", severity, &err));
}

struct job {
	struct kx_ingest_job j;
	struct kx_alert_event ev[4];
	struct kx_ingest_outcome out[4];
	atomic_int *done_count;
	atomic_int done_calls;
};

static void job_done(struct kx_ingest_job *j)
{
	struct job *jb = j->arg;
	atomic_fetch_add(&jb->done_calls, 1);
	if (jb->done_count)
		atomic_fetch_add(jb->done_count, 1);
}

static void job_init(struct job *jb, const char *service, size_t n)
{
	memset(&jb->j, 0, sizeof(jb->j));
	jb->j.service = service;
	jb->j.actor = "integration:int_test";
	jb->j.events = jb->ev;
	jb->j.n = n;
	jb->j.now = kx_now_ms();
	jb->j.outcomes = jb->out;
	jb->j.done = job_done;
	jb->j.arg = jb;
	atomic_init(&jb->done_calls, 0);
}

static void job_release(struct job *jb)
{
	for (size_t i = 0; i < jb->j.n; i++)
		kx_alert_event_release(&jb->ev[i]);
}

/* One open batch, the jobs added one at a time as the writer adds what
 * arrives, then committed and waited for. */
static void run_batch(struct fixture *f, struct job **jobs, size_t n)
{
	struct kx_ingest_job *v[8];
	struct kx_ingest_batch *b = NULL;
	struct kx_pending *pending = NULL;
	struct kx_err err = {0};
	for (size_t i = 0; i < n; i++)
		v[i] = &jobs[i]->j;
	OK(kx_svc_ingest_batch_begin(&f->app, v[0]->now, &b, &err));
	for (size_t i = 0; i < n; i++)
		if (kx_svc_ingest_batch_add(b, &v[i], 1))
			break;
	kx_svc_ingest_batch_end(b, v, n, &pending);
	OK(kx_store_pending_wait(pending, &err));
}

/* The firing alert of (service, key): its count, 0 when there is none. */
static int64_t firing_count(struct fixture *f, const char *service, const char *key,
			    char incident[32])
{
	struct kx_alert a;
	struct kx_tx *tx = NULL;
	struct kx_err err = {0};
	int64_t count = 0;
	int rc;

	OK(kx_store_begin(f->app.store, false, &tx, &err));
	rc = kx_store_alert_firing_by_key(tx, service, key, &a, &err);
	kx_store_rollback(tx);
	if (rc == KX_ENOTFOUND)
		return 0;
	OK(rc);
	count = a.count;
	if (incident)
		snprintf(incident, 32, "%s", a.incident ? a.incident : "");
	kx_alert_release(&a);
	return count;
}

static void batch_folds_across_requests(void **state)
{
	struct fixture *f = *state;
	struct job a, b, c;
	struct job *jobs[] = {&a, &b, &c};

	job_init(&a, "payments", 2);
	trigger(&a.ev[0], "k1", "CPUHigh", "warning");
	trigger(&a.ev[1], "k2", "CPUHigh", "warning");
	job_init(&b, "payments", 1);
	trigger(&b.ev[0], "k1", "CPUHigh", "warning");
	job_init(&c, "search", 1); /* the same key on another service: its own alert */
	trigger(&c.ev[0], "k1", "CPUHigh", "warning");
	run_batch(f, jobs, 3);
	assert_int_equal(a.j.rc, 0);
	assert_int_equal(b.j.rc, 0);
	assert_int_equal(c.j.rc, 0);
	assert_true(a.out[0].created);
	assert_true(a.out[1].created);
	assert_false(b.out[0].created); /* folded into a's, in the same transaction */
	assert_int_equal(b.out[0].alert, a.out[0].alert);
	assert_true(c.out[0].created);
	assert_int_not_equal(c.out[0].alert, a.out[0].alert);
	assert_int_equal(firing_count(f, "payments", "k1", NULL), 2);
	assert_int_equal(firing_count(f, "payments", "k2", NULL), 1);
	assert_int_equal(firing_count(f, "search", "k1", NULL), 1);
	for (size_t i = 0; i < 3; i++)
		job_release(jobs[i]);
}

static void batch_groups_into_one_incident(void **state)
{
	struct fixture *f = *state;
	struct job a, b;
	struct job *jobs[] = {&a, &b};
	char ia[32], ib[32];

	job_init(&a, "payments", 1);
	trigger(&a.ev[0], "db-1", "DatabaseDown", "critical");
	job_init(&b, "payments", 1);
	trigger(&b.ev[0], "db-2", "DatabaseDown", "critical");
	run_batch(f, jobs, 2);
	assert_int_equal(a.j.rc, 0);
	assert_int_equal(b.j.rc, 0);
	assert_true(a.out[0].declared);
	assert_false(b.out[0].declared); /* attached to the incident a opened */
	assert_string_equal(a.out[0].incident, b.out[0].incident);
	assert_int_equal(firing_count(f, "payments", "db-1", ia), 1);
	assert_int_equal(firing_count(f, "payments", "db-2", ib), 1);
	assert_string_equal(ia, a.out[0].incident);
	assert_string_equal(ib, a.out[0].incident);
	job_release(&a);
	job_release(&b);
}

static void failed_request_fails_alone(void **state)
{
	struct fixture *f = *state;
	struct job a, bad, c;
	struct job *jobs[] = {&a, &bad, &c};

	job_init(&a, "payments", 1);
	trigger(&a.ev[0], "f1", "Disk", "warning");
	job_init(&bad, "no-such-service", 2);
	trigger(&bad.ev[0], "f2", "Disk", "warning");
	trigger(&bad.ev[1], "f3", "Disk", "warning");
	job_init(&c, "payments", 1);
	trigger(&c.ev[0], "f4", "Disk", "warning");
	run_batch(f, jobs, 3);
	assert_int_equal(a.j.rc, 0);
	assert_int_equal(bad.j.rc, KX_ENOTFOUND);
	assert_contains(bad.j.err.msg, "no-such-service");
	assert_int_equal(c.j.rc, 0);
	assert_true(a.out[0].alert > 0);
	assert_true(c.out[0].alert > 0);
	assert_int_equal(firing_count(f, "payments", "f1", NULL), 1);
	assert_int_equal(firing_count(f, "payments", "f4", NULL), 1);
	assert_int_equal(firing_count(f, "no-such-service", "f2", NULL), 0);
	/* the fallback ran the good ones again: still counted once */
	for (size_t i = 0; i < 3; i++)
		job_release(jobs[i]);
}

static void single_failed_request(void **state)
{
	struct fixture *f = *state;
	struct job bad;
	struct job *jobs[] = {&bad};

	job_init(&bad, "nope", 1);
	trigger(&bad.ev[0], "x", "Disk", "warning");
	run_batch(f, jobs, 1);
	assert_int_equal(bad.j.rc, KX_ENOTFOUND);
	job_release(&bad);
}

/* ---- the runtime ---- */

#define SUBMITTERS 4
#define PER_SUBMITTER 50

struct submitter {
	struct fixture *f;
	int id;
	struct job jobs[PER_SUBMITTER];
	atomic_int *done_count;
	int refused;
};

static void *submit_loop(void *arg)
{
	struct submitter *s = arg;
	for (int i = 0; i < PER_SUBMITTER; i++) {
		char key[32];
		struct job *jb = &s->jobs[i];
		snprintf(key, sizeof(key), "rt-%d-%d", s->id, i % 10); /* repeats fold */
		job_init(jb, "payments", 1);
		trigger(&jb->ev[0], key, "Load", "warning");
		jb->done_count = s->done_count;
		if (kx_ingest_submit(s->f->app.ingest, &jb->j))
			s->refused++;
	}
	return NULL;
}

static void runtime_answers_every_job_once(void **state)
{
	struct fixture *f = *state;
	struct submitter *subs = calloc(SUBMITTERS, sizeof(*subs));
	pthread_t th[SUBMITTERS];
	atomic_int done_count;
	struct kx_err err = {0};
	struct job late;

	atomic_init(&done_count, 0);
	OK(kx_ingest_rt_start(&f->app, &f->app.ingest, &err));
	for (int i = 0; i < SUBMITTERS; i++) {
		subs[i].f = f;
		subs[i].id = i;
		subs[i].done_count = &done_count;
		assert_int_equal(pthread_create(&th[i], NULL, submit_loop, &subs[i]), 0);
	}
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(th[i], NULL);
	/* stop finishes what is queued: every job answered, once */
	kx_ingest_rt_stop(f->app.ingest);
	assert_int_equal(atomic_load(&done_count), SUBMITTERS * PER_SUBMITTER);
	for (int i = 0; i < SUBMITTERS; i++) {
		assert_int_equal(subs[i].refused, 0);
		for (int k = 0; k < PER_SUBMITTER; k++) {
			assert_int_equal(atomic_load(&subs[i].jobs[k].done_calls), 1);
			assert_int_equal(subs[i].jobs[k].j.rc, 0);
		}
		for (int k = 0; k < 10; k++) {
			char key[32];
			snprintf(key, sizeof(key), "rt-%d-%d", i, k);
			assert_int_equal(firing_count(f, "payments", key, NULL), PER_SUBMITTER / 10);
		}
	}
	/* after stop: refused, and done() is not called */
	job_init(&late, "payments", 1);
	trigger(&late.ev[0], "late", "Load", "warning");
	assert_int_equal(kx_ingest_submit(f->app.ingest, &late.j), KX_EUNAVAIL);
	assert_int_equal(atomic_load(&late.done_calls), 0);
	assert_int_equal(kx_ingest_submit(NULL, &late.j), KX_EUNAVAIL);
	job_release(&late);
	for (int i = 0; i < SUBMITTERS; i++)
		for (int k = 0; k < PER_SUBMITTER; k++)
			job_release(&subs[i].jobs[k]);
	free(subs);
}

static void key_cache_forgets_revoked_keys(void **state)
{
	struct fixture *f = *state;
	struct kx_integration in, got;
	struct kx_token admin;
	struct kx_err err = {0};
	char key[KX_INTEGRATION_KEY_LEN + 1];
	uint8_t h[KX_HASH_LEN];
	uint64_t gen;

	OK(kx_ingest_rt_start(&f->app, &f->app.ingest, &err));
	kx_token_init(&admin);
	admin.name = "admin";
	admin.role = KX_ACCESS_ADMIN;
	OK(kx_svc_integration_create(&f->app, &admin, "payments", KX_SOURCE_ALERTMANAGER, NULL,
				     kx_now_ms(), &in, key, &err));
	kx_hash(key, strlen(key), h);
	assert_int_equal(kx_ingest_key_get(f->app.ingest, h, kx_now_ms(), &got, &gen), 0);
	OK(kx_svc_integration_auth(&f->app, key, KX_SOURCE_ALERTMANAGER, &got, &err));
	kx_integration_release(&got);
	/* now cached */
	assert_int_equal(kx_ingest_key_get(f->app.ingest, h, kx_now_ms(), &got, &gen), 1);
	assert_string_equal(got.id, in.id);
	assert_string_equal(got.service, "payments");
	kx_integration_release(&got);
	/* a wrong source is still refused from the cache */
	assert_int_equal(kx_svc_integration_auth(&f->app, key, KX_SOURCE_EVENTS_V2, &got, &err),
			 KX_EFORBIDDEN);
	OK(kx_svc_integration_revoke(&f->app, &admin, in.id, kx_now_ms(), &err));
	assert_int_equal(kx_ingest_key_get(f->app.ingest, h, kx_now_ms(), &got, &gen), 0);
	assert_int_equal(kx_svc_integration_auth(&f->app, key, KX_SOURCE_ALERTMANAGER, &got, &err),
			 KX_EAUTH);
	/* a lookup that raced an emptying is not kept */
	assert_int_equal(kx_ingest_key_get(f->app.ingest, h, kx_now_ms(), &got, &gen), 0);
	in.revoked_at = KX_TIME_UNSET;
	kx_ingest_key_put(f->app.ingest, &in, kx_now_ms(), gen - 1);
	assert_int_equal(kx_ingest_key_get(f->app.ingest, h, kx_now_ms(), &got, &gen), 0);
	kx_integration_release(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(batch_folds_across_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_groups_into_one_incident, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_request_fails_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(single_failed_request, setup, teardown),
		cmocka_unit_test_setup_teardown(runtime_answers_every_job_once, setup, teardown),
		cmocka_unit_test_setup_teardown(key_cache_forgets_revoked_keys, setup, teardown),
	};
	kx_secret_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
