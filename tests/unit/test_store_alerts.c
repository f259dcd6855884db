/* Detection's records in the store, on both backends: services (put
 * creates then replaces), integration keys (by hash, revoked), alerts (one
 * firing per dedup key, listings and their filters, expiry), change events,
 * heartbeats (which are due, and on PostgreSQL that two checkers never get
 * the same one), silences (which are in force) and the delivery log
 * (attempts update the row and are kept in order). Every field goes in and
 * comes back out, NULL and unset ones too. Runs on SQLite always and on
 * PostgreSQL too (a private server from scripts/pg-test-server, or
 * KX_TEST_PG_URL). Every test uses names of its own and only looks at
 * those, so the tests can share one database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alert.h"
#include "core/notify.h"
#include "lib/secret.h"
#include "lib/time.h"
#include "store/migrate.h"
#include "store/store.h"

#include "helpers.h"

static char url[4200];

#define OK(call)                                                                               \
	do {                                                                                   \
		int rc_ = (call);                                                              \
		if (rc_)                                                                       \
			fail_msg("%s: %d %s", #call, rc_, err.msg);                            \
	} while (0)

static struct kx_store *open_store(void)
{
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	if (kx_store_open(url, &s, &err))
		fail_msg("open %s: %s", url, err.msg);
	return s;
}

static struct kx_tx *begin(struct kx_store *s, bool write)
{
	struct kx_tx *tx = NULL;
	struct kx_err err = {0};
	OK(kx_store_begin(s, write, &tx, &err));
	return tx;
}

static void commit(struct kx_tx *tx)
{
	struct kx_err err = {0};
	OK(kx_store_commit(tx, &err));
}

static bool on_postgres(const struct kx_store *s)
{
	return strcmp(kx_store_backend_name(s), "postgres") == 0;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_labels_equal(const struct kx_labels *a, const struct kx_labels *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(a->v[i].key, b->v[i].key);
		assert_string_equal(a->v[i].value, b->v[i].value);
	}
}

/* A name of its own for this test: PREFIX + 16 random hex digits. */
static void fresh(const char *prefix, char *out, size_t n)
{
	kx_random_id(prefix, out, n);
}

/* ---- services ---- */

static void assert_service_equal(const struct kx_service *a, const struct kx_service *b)
{
	assert_string_equal(a->name, b->name);
	assert_str_or_null(a->description, b->description);
	assert_labels_equal(&a->labels, &b->labels);
	assert_int_equal(a->from_config, b->from_config);
	assert_int_equal(a->created_at, b->created_at);
}

static void test_services(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_service a, b, got;
	struct kx_services l;
	struct kx_tx *tx;
	char na[32], nb[32];
	bool created = false;
	long ia = -1, ib = -1;
	kx_ms now = kx_now_ms();
	(void)state;

	/* b sorts before a: the list is by name */
	fresh("svc-b", na, sizeof(na));
	snprintf(nb, sizeof(nb), "%s", na);
	nb[4] = 'a'; /* "svc-a…" */
	kx_service_init(&a);
	a.name = strdup(na);
	a.description = strdup("Payments \"API\" — EU");
	kx_labels_set(&a.labels, "client", "acme", NULL);
	kx_labels_set(&a.labels, "platform", "web", NULL);
	a.from_config = true;
	a.created_at = now - 1000;
	kx_service_init(&b); /* no description, no labels */
	b.name = strdup(nb);
	b.created_at = now;

	tx = begin(s, true);
	OK(kx_store_service_put(tx, &a, &created, &err));
	assert_true(created);
	OK(kx_store_service_put(tx, &b, NULL, &err)); /* created may be NULL */
	commit(tx);

	tx = begin(s, false);
	OK(kx_store_service_get(tx, na, &got, &err));
	assert_service_equal(&got, &a);
	kx_service_release(&got);
	OK(kx_store_service_get(tx, nb, &got, &err));
	assert_service_equal(&got, &b);
	kx_service_release(&got);
	assert_int_equal(kx_store_service_get(tx, "no-such-service", &got, &err), KX_ENOTFOUND);
	assert_null(got.name); /* left empty */
	kx_store_rollback(tx);

	/* replace: description, labels and from_config; created_at stays */
	free(a.description);
	a.description = NULL;
	kx_labels_release(&a.labels);
	kx_labels_set(&a.labels, "client", "beta", NULL);
	a.from_config = false;
	a.created_at = now + 99999;
	tx = begin(s, true);
	created = true;
	OK(kx_store_service_put(tx, &a, &created, &err));
	assert_false(created);
	commit(tx);
	a.created_at = now - 1000;

	tx = begin(s, false);
	OK(kx_store_service_get(tx, na, &got, &err));
	assert_service_equal(&got, &a);
	kx_service_release(&got);
	OK(kx_store_service_list(tx, &l, &err));
	kx_store_rollback(tx);
	for (size_t i = 0; i < l.n; i++) {
		if (!strcmp(l.v[i].name, na))
			ia = (long)i;
		if (!strcmp(l.v[i].name, nb))
			ib = (long)i;
		if (i)
			assert_true(strcmp(l.v[i - 1].name, l.v[i].name) < 0);
	}
	assert_true(ib >= 0 && ia > ib);
	assert_service_equal(&l.v[ia], &a);
	assert_service_equal(&l.v[ib], &b);
	kx_services_release(&l);
	assert_null(l.v);

	kx_service_release(&a);
	kx_service_release(&b);
	kx_store_free(s);
}

/* ---- integrations ---- */

static void assert_integration_equal(const struct kx_integration *a,
				     const struct kx_integration *b)
{
	assert_string_equal(a->id, b->id);
	assert_memory_equal(a->hash, b->hash, KX_HASH_LEN);
	assert_str_or_null(a->service, b->service);
	assert_int_equal(a->source, b->source);
	assert_str_or_null(a->name, b->name);
	assert_str_or_null(a->created_by, b->created_by);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->revoked_at, b->revoked_at);
}

static void make_integration(struct kx_integration *i, const char *service,
			     enum kx_alert_source source, kx_ms at)
{
	char key[KX_INTEGRATION_KEY_LEN + 1];
	kx_integration_init(i);
	kx_random_id("int_", i->id, sizeof(i->id));
	kx_integration_key_generate(key);
	kx_hash(key, strlen(key), i->hash);
	i->service = strdup(service);
	i->source = source;
	i->created_at = at;
}

static long find_integration(const struct kx_integrations *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].id, id))
			return (long)i;
	return -1;
}

static void test_integrations(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_integration in[3], got, dup;
	struct kx_integrations l;
	struct kx_tx *tx;
	char svc[32], other[32];
	uint8_t nohash[KX_HASH_LEN];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-i", svc, sizeof(svc));
	fresh("svc-j", other, sizeof(other));
	make_integration(&in[0], svc, KX_SOURCE_ALERTMANAGER, now - 2000);
	in[0].name = strdup("prometheus eu-1");
	in[0].created_by = strdup("alice");
	make_integration(&in[1], svc, KX_SOURCE_EVENTS_V2, now - 1000); /* name, by: NULL */
	make_integration(&in[2], other, KX_SOURCE_GENERIC, now - 3000);
	in[2].revoked_at = now - 10;

	tx = begin(s, true);
	for (int i = 0; i < 3; i++)
		OK(kx_store_integration_insert(tx, &in[i], &err));
	commit(tx);

	/* the same hash twice is a conflict */
	make_integration(&dup, svc, KX_SOURCE_GENERIC, now);
	memcpy(dup.hash, in[0].hash, KX_HASH_LEN);
	tx = begin(s, true);
	assert_int_equal(kx_store_integration_insert(tx, &dup, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	kx_integration_release(&dup);

	tx = begin(s, false);
	for (int i = 0; i < 3; i++) {
		OK(kx_store_integration_get(tx, in[i].id, &got, &err));
		assert_integration_equal(&got, &in[i]);
		kx_integration_release(&got);
		OK(kx_store_integration_by_hash(tx, in[i].hash, &got, &err));
		assert_integration_equal(&got, &in[i]); /* revoked ones too */
		kx_integration_release(&got);
	}
	kx_hash("no such key", 11, nohash);
	assert_int_equal(kx_store_integration_by_hash(tx, nohash, &got, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_integration_get(tx, "int_0000000000000000", &got, &err),
			 KX_ENOTFOUND);

	/* of one service, oldest first */
	OK(kx_store_integration_list(tx, svc, &l, &err));
	assert_int_equal(l.n, 2);
	assert_integration_equal(&l.v[0], &in[0]);
	assert_integration_equal(&l.v[1], &in[1]);
	kx_integrations_release(&l);
	/* of all, oldest first */
	OK(kx_store_integration_list(tx, NULL, &l, &err));
	assert_true(find_integration(&l, in[2].id) >= 0);
	assert_true(find_integration(&l, in[2].id) < find_integration(&l, in[0].id));
	assert_true(find_integration(&l, in[0].id) < find_integration(&l, in[1].id));
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].created_at <= l.v[i].created_at);
	kx_integrations_release(&l);
	kx_store_rollback(tx);

	tx = begin(s, true);
	OK(kx_store_integration_revoke(tx, in[1].id, now, &err));
	commit(tx);
	in[1].revoked_at = now;
	tx = begin(s, true);
	assert_int_equal(kx_store_integration_revoke(tx, in[1].id, now + 1, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	tx = begin(s, true);
	assert_int_equal(kx_store_integration_revoke(tx, "int_0000000000000000", now, &err),
			 KX_ENOTFOUND);
	kx_store_rollback(tx);
	tx = begin(s, false);
	OK(kx_store_integration_by_hash(tx, in[1].hash, &got, &err));
	assert_integration_equal(&got, &in[1]);
	kx_integration_release(&got);
	kx_store_rollback(tx);

	for (int i = 0; i < 3; i++)
		kx_integration_release(&in[i]);
	kx_store_free(s);
}

/* ---- alerts ---- */

/* A firing alert with only what is required. */
static void make_alert(struct kx_alert *a, const char *service, const char *key, kx_ms at)
{
	kx_alert_init(a);
	a->service = strdup(service);
	a->dedup_key = strdup(key);
	a->source = KX_SOURCE_GENERIC;
	a->status = KX_ALERT_FIRING;
	a->level = KX_LEVEL_WARNING;
	a->summary = strdup("disk almost full");
	a->count = 1;
	a->starts_at = a->first_seen = a->last_seen = at;
}

/* Every field set, labels that only Prometheus' rules allow (an upper
 * case name, a value past Klaxon's 256 bytes) and JSON-hostile text. */
static void make_full_alert(struct kx_alert *a, const char *service, const char *key, kx_ms at)
{
	char *longv = repeat("é", 600); /* 1200 bytes */
	make_alert(a, service, key, at);
	a->source = KX_SOURCE_ALERTMANAGER;
	a->level = KX_LEVEL_CRITICAL;
	free(a->summary);
	a->summary = strdup("DB \"primary\" down \\ 100% — ünïcode");
	a->source_host = strdup("db-1.eu");
	a->component = strdup("postgres");
	a->group = strdup("storage");
	a->class = strdup("availability");
	assert_int_equal(kx_alert_label_set(&a->labels, "alertname", "DBDown", NULL), 0);
	assert_int_equal(kx_alert_label_set(&a->labels, "instanceID", "i-123", NULL), 0);
	assert_int_equal(kx_alert_label_set(&a->labels, "__name__", "up", NULL), 0);
	assert_int_equal(kx_alert_label_set(&a->labels, "note", "a \"b\" \\ c {d}", NULL), 0);
	assert_int_equal(kx_alert_label_set(&a->labels, "long", longv, NULL), 0);
	free(longv);
	a->details = strdup("{\"runbook\":\"https://x/rb\",\"n\":[1,2]}");
	a->severity = strdup("P1");
	a->route = strdup("db-critical");
	a->incident = strdup("INC-20260101-001");
	a->silenced_by = strdup("sil_0123456789abcdef");
	a->noise = true;
	a->count = 7;
	a->starts_at = at - 60000;
	a->last_seen = at + 5000;
	a->ends_at = at + 3600000;
	a->acked_at = at + 1000;
	a->acked_by = strdup("alice");
	a->resolved_at = at + 2000;
	a->resolved_by = strdup("source");
}

static void assert_alert_equal(const struct kx_alert *got, const struct kx_alert *want)
{
	assert_int_equal(got->id, want->id);
	assert_string_equal(got->service, want->service);
	assert_string_equal(got->dedup_key, want->dedup_key);
	assert_int_equal(got->source, want->source);
	assert_int_equal(got->status, want->status);
	assert_int_equal(got->level, want->level);
	assert_str_or_null(got->summary, want->summary);
	assert_str_or_null(got->source_host, want->source_host);
	assert_str_or_null(got->component, want->component);
	assert_str_or_null(got->group, want->group);
	assert_str_or_null(got->class, want->class);
	assert_labels_equal(&got->labels, &want->labels);
	assert_string_equal(got->details, want->details ? want->details : "{}");
	assert_str_or_null(got->severity, want->severity);
	assert_str_or_null(got->route, want->route);
	assert_str_or_null(got->incident, want->incident);
	assert_str_or_null(got->silenced_by, want->silenced_by);
	assert_int_equal(got->noise, want->noise);
	assert_int_equal(got->count, want->count);
	assert_int_equal(got->starts_at, want->starts_at);
	assert_int_equal(got->first_seen, want->first_seen);
	assert_int_equal(got->last_seen, want->last_seen);
	assert_int_equal(got->ends_at, want->ends_at);
	assert_int_equal(got->acked_at, want->acked_at);
	assert_str_or_null(got->acked_by, want->acked_by);
	assert_int_equal(got->resolved_at, want->resolved_at);
	assert_str_or_null(got->resolved_by, want->resolved_by);
}

static void test_alert_roundtrip(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert full, bare, got, upd;
	struct kx_tx *tx;
	char svc[32];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-a", svc, sizeof(svc));
	make_full_alert(&full, svc, "fp-full", now);
	full.status = KX_ALERT_RESOLVED; /* not in the way of the firing one below */
	make_alert(&bare, svc, "fp-bare", now); /* NULLs, unset times, details NULL */

	tx = begin(s, true);
	OK(kx_store_alert_insert(tx, &full, &err));
	OK(kx_store_alert_insert(tx, &bare, &err));
	commit(tx);
	assert_true(full.id > 0);
	assert_true(bare.id > full.id);

	tx = begin(s, false);
	OK(kx_store_alert_get(tx, full.id, &got, &err));
	assert_alert_equal(&got, &full);
	kx_alert_release(&got);
	OK(kx_store_alert_get(tx, bare.id, &got, &err));
	assert_alert_equal(&got, &bare);
	assert_string_equal(got.details, "{}"); /* never NULL once stored */
	kx_alert_release(&got);
	OK(kx_store_alert_firing_by_key(tx, svc, "fp-bare", &got, &err));
	assert_alert_equal(&got, &bare);
	kx_alert_release(&got);
	/* resolved: not the firing one */
	assert_int_equal(kx_store_alert_firing_by_key(tx, svc, "fp-full", &got, &err),
			 KX_ENOTFOUND);
	assert_int_equal(kx_store_alert_firing_by_key(tx, "no-such-svc", "fp-bare", &got, &err),
			 KX_ENOTFOUND);
	assert_int_equal(kx_store_alert_get(tx, bare.id + 1000000, &got, &err), KX_ENOTFOUND);
	assert_null(got.service);
	kx_store_rollback(tx);

	/* update rewrites every field but id, service, dedup_key, source and
	 * first_seen: bare becomes full (but stays firing) */
	make_full_alert(&upd, "other-service", "other-key", now + 10);
	upd.id = bare.id;
	upd.source = KX_SOURCE_HEARTBEAT;
	tx = begin(s, true);
	OK(kx_store_alert_update(tx, &upd, &err));
	commit(tx);
	free(upd.service);
	free(upd.dedup_key);
	upd.service = strdup(svc);
	upd.dedup_key = strdup("fp-bare");
	upd.source = bare.source;
	upd.first_seen = bare.first_seen;
	tx = begin(s, true);
	/* in a write transaction too (PostgreSQL locks the row) */
	OK(kx_store_alert_firing_by_key(tx, svc, "fp-bare", &got, &err));
	assert_alert_equal(&got, &upd);
	kx_alert_release(&got);
	kx_store_rollback(tx);

	/* and back to the bare values: NULLs and unset times are written too */
	tx = begin(s, true);
	OK(kx_store_alert_update(tx, &bare, &err));
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_alert_get(tx, bare.id, &got, &err));
	assert_alert_equal(&got, &bare);
	kx_alert_release(&got);
	kx_store_rollback(tx);

	tx = begin(s, true);
	upd.id = bare.id + 1000000;
	assert_int_equal(kx_store_alert_update(tx, &upd, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	kx_alert_release(&full);
	kx_alert_release(&bare);
	kx_alert_release(&upd);
	kx_store_free(s);
}

/* fold writes what a repeat changes and nothing else: status, incident,
 * noise, starts_at, acks and resolves stay; a resolved alert is not found. */
static void test_alert_fold(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert a, rep, got, want;
	struct kx_tx *tx;
	char svc[32];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-fold", svc, sizeof(svc));
	make_full_alert(&a, svc, "fp-fold", now);
	a.status = KX_ALERT_FIRING;
	a.resolved_at = KX_TIME_UNSET;
	free(a.resolved_by);
	a.resolved_by = NULL;
	tx = begin(s, true);
	OK(kx_store_alert_insert(tx, &a, &err));
	commit(tx);

	/* a repeat with other values everywhere, NULLs included */
	make_alert(&rep, "ignored", "ignored", now + 500);
	rep.id = a.id;
	rep.level = KX_LEVEL_INFO;
	rep.status = KX_ALERT_RESOLVED;              /* not written */
	rep.incident = strdup("INC-20990101-999"); /* not written */
	rep.acked_by = strdup("mallory");           /* not written */
	rep.severity = strdup("P3");
	rep.count = 8;
	rep.ends_at = now + 900000;
	assert_int_equal(kx_alert_label_set(&rep.labels, "alertname", "Other", NULL), 0);
	tx = begin(s, true);
	OK(kx_store_alert_fold(tx, &rep, &err));
	commit(tx);

	want = a; /* what fold leaves, with what it writes */
	want.level = rep.level;
	want.summary = rep.summary;
	want.source_host = want.component = want.group = want.class = NULL;
	want.labels = rep.labels;
	want.details = rep.details;
	want.severity = rep.severity;
	want.route = NULL;
	want.silenced_by = NULL;
	want.count = 8;
	want.last_seen = rep.last_seen;
	want.ends_at = rep.ends_at;
	tx = begin(s, false);
	OK(kx_store_alert_get(tx, a.id, &got, &err));
	assert_alert_equal(&got, &want);
	kx_alert_release(&got);
	kx_store_rollback(tx);

	/* once resolved it is no longer the firing alert to fold into */
	a.status = KX_ALERT_RESOLVED;
	a.resolved_at = now + 1000;
	tx = begin(s, true);
	OK(kx_store_alert_update(tx, &a, &err));
	assert_int_equal(kx_store_alert_fold(tx, &rep, &err), KX_ENOTFOUND);
	rep.id = a.id + 1000000;
	assert_int_equal(kx_store_alert_fold(tx, &rep, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	kx_alert_release(&a);
	kx_alert_release(&rep);
	kx_store_free(s);
}

static void test_alert_firing_unique(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert first, second, got;
	struct kx_tx *tx;
	char svc[32], other[32];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-u", svc, sizeof(svc));
	fresh("svc-v", other, sizeof(other));
	make_alert(&first, svc, "same-key", now);
	make_alert(&second, svc, "same-key", now + 1);

	tx = begin(s, true);
	OK(kx_store_alert_insert(tx, &first, &err));
	commit(tx);

	/* a second firing alert for the key: a conflict */
	tx = begin(s, true);
	assert_int_equal(kx_store_alert_insert(tx, &second, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	/* the same key in another service is another alert */
	free(second.service);
	second.service = strdup(other);
	tx = begin(s, true);
	OK(kx_store_alert_insert(tx, &second, &err));
	commit(tx);
	free(second.service);
	second.service = strdup(svc);

	/* once the first is resolved, the key opens a new one */
	first.status = KX_ALERT_RESOLVED;
	first.resolved_at = now + 2;
	first.resolved_by = strdup("source");
	tx = begin(s, true);
	OK(kx_store_alert_update(tx, &first, &err));
	OK(kx_store_alert_insert(tx, &second, &err));
	commit(tx);
	assert_true(second.id > first.id);

	tx = begin(s, false);
	OK(kx_store_alert_get(tx, first.id, &got, &err));
	assert_alert_equal(&got, &first);
	kx_alert_release(&got);
	OK(kx_store_alert_get(tx, second.id, &got, &err));
	assert_alert_equal(&got, &second);
	kx_alert_release(&got);
	OK(kx_store_alert_firing_by_key(tx, svc, "same-key", &got, &err));
	assert_int_equal(got.id, second.id);
	kx_alert_release(&got);
	kx_store_rollback(tx);

	/* the resolved one cannot fire again beside the new one */
	first.status = KX_ALERT_FIRING;
	tx = begin(s, true);
	assert_int_equal(kx_store_alert_update(tx, &first, &err), KX_ECONFLICT);
	kx_store_rollback(tx);

	kx_alert_release(&first);
	kx_alert_release(&second);
	kx_store_free(s);
}

/* The ids of l, in order, as "id,id,…" for one comparison. */
static void ids_of(const struct kx_alerts *l, char *out, size_t n)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < l->n && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%lld", i ? "," : "",
				      (long long)l->v[i].id);
}

static void expect_ids(const struct kx_alerts *l, const struct kx_alert *const *want, size_t n)
{
	char got[512], exp[512];
	size_t o = 0;
	ids_of(l, got, sizeof(got));
	exp[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(exp + o, sizeof(exp) - o, "%s%lld", i ? "," : "",
				      (long long)want[i]->id);
	assert_string_equal(got, exp);
}

static void test_alert_list(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert a[6];
	struct kx_alerts l;
	struct kx_alert_filter f;
	struct kx_tx *tx;
	char svc[32], other[32], inc[32], key[16];
	int64_t n = -1;
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-l", svc, sizeof(svc));
	fresh("svc-m", other, sizeof(other));
	fresh("INC-", inc, sizeof(inc));
	/* 0..3 in svc, 4..5 in other; 1 and 3 resolved; 0, 1, 2 and 4 on inc;
	 * last_seen grows with the index */
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		make_alert(&a[i], i < 4 ? svc : other, key, now + i * 1000);
		if (i == 1 || i == 3)
			a[i].status = KX_ALERT_RESOLVED;
		if (i <= 2 || i == 4)
			a[i].incident = strdup(inc);
	}
	tx = begin(s, true);
	for (int i = 0; i < 6; i++)
		OK(kx_store_alert_insert(tx, &a[i], &err));
	commit(tx);

	tx = begin(s, false);
	/* service: newest (highest id) first */
	f = (struct kx_alert_filter){.service = svc, .status = -1, .since = KX_TIME_UNSET};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[3], &a[2], &a[1], &a[0]}, 4);
	assert_alert_equal(&l.v[0], &a[3]);
	kx_alerts_release(&l);
	/* status */
	f.status = KX_ALERT_FIRING;
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[2], &a[0]}, 2);
	kx_alerts_release(&l);
	f.status = KX_ALERT_RESOLVED;
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[3], &a[1]}, 2);
	kx_alerts_release(&l);
	/* incident, across services */
	f = (struct kx_alert_filter){.incident = inc, .status = -1, .since = KX_TIME_UNSET};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[4], &a[2], &a[1], &a[0]}, 4);
	kx_alerts_release(&l);
	/* since: last_seen >= */
	f = (struct kx_alert_filter){.service = svc, .status = -1, .since = now + 2000};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[3], &a[2]}, 2);
	kx_alerts_release(&l);
	/* paging: before_id and limit */
	f = (struct kx_alert_filter){.service = svc, .status = -1, .since = KX_TIME_UNSET,
				     .limit = 2};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[3], &a[2]}, 2);
	kx_alerts_release(&l);
	f.before_id = a[2].id;
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[1], &a[0]}, 2);
	kx_alerts_release(&l);
	f.before_id = a[0].id;
	OK(kx_store_alert_list(tx, &f, &l, &err));
	assert_int_equal(l.n, 0);
	kx_alerts_release(&l);
	/* every condition at once */
	f = (struct kx_alert_filter){.service = svc, .status = KX_ALERT_FIRING, .incident = inc,
				     .since = now + 1, .before_id = a[3].id, .limit = 10};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[2]}, 1);
	kx_alerts_release(&l);
	/* no conditions: newest first, 100 at most */
	f = (struct kx_alert_filter){.status = -1, .since = KX_TIME_UNSET};
	OK(kx_store_alert_list(tx, &f, &l, &err));
	assert_true(l.n >= 6 && l.n <= 100);
	assert_int_equal(l.v[0].id, a[5].id);
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].id > l.v[i].id);
	kx_alerts_release(&l);

	/* firing alerts on the incident: 0, 2 and 4 */
	OK(kx_store_alert_count_firing(tx, inc, &n, &err));
	assert_int_equal(n, 3);
	OK(kx_store_alert_count_firing(tx, "INC-none", &n, &err));
	assert_int_equal(n, 0);
	kx_store_rollback(tx);

	for (int i = 0; i < 6; i++)
		kx_alert_release(&a[i]);
	kx_store_free(s);
}

static void test_alert_expired(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert a[5];
	struct kx_alerts l;
	struct kx_tx *tx;
	char svc[32], key[16];
	/* long ago, so that no other test's alert is expired by then */
	kx_ms base = T("2001-02-03T04:05:06Z");
	(void)state;

	fresh("svc-e", svc, sizeof(svc));
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "e%d", i);
		make_alert(&a[i], svc, key, base - 100000);
	}
	a[0].ends_at = base - 10; /* expired, second oldest */
	a[1].ends_at = base - 20; /* expired, oldest */
	a[2].ends_at = base;	  /* expired: ends_at <= now */
	a[3].ends_at = base + 1;  /* not yet */
	/* 4: no expected end */

	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_alert_insert(tx, &a[i], &err));
	commit(tx);

	tx = begin(s, false);
	OK(kx_store_alert_expired(tx, base, 10, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[1], &a[0], &a[2]}, 3);
	assert_alert_equal(&l.v[0], &a[1]);
	kx_alerts_release(&l);
	OK(kx_store_alert_expired(tx, base, 2, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[1], &a[0]}, 2);
	kx_alerts_release(&l);
	kx_store_rollback(tx);

	/* resolved ones are not listed */
	a[1].status = KX_ALERT_RESOLVED;
	tx = begin(s, true);
	OK(kx_store_alert_update(tx, &a[1], &err));
	OK(kx_store_alert_expired(tx, base, 10, &l, &err));
	expect_ids(&l, (const struct kx_alert *[]){&a[0], &a[2]}, 2);
	kx_alerts_release(&l);
	/* leave none firing for other runs on the same database */
	for (int i = 0; i < 5; i++) {
		a[i].status = KX_ALERT_RESOLVED;
		OK(kx_store_alert_update(tx, &a[i], &err));
	}
	commit(tx);

	for (int i = 0; i < 5; i++)
		kx_alert_release(&a[i]);
	kx_store_free(s);
}

/* ---- change events ---- */

static void assert_change_equal(const struct kx_change_event *a,
				const struct kx_change_event *b)
{
	assert_int_equal(a->id, b->id);
	assert_string_equal(a->service, b->service);
	assert_str_or_null(a->summary, b->summary);
	assert_str_or_null(a->source_host, b->source_host);
	assert_str_or_null(a->details, b->details);
	assert_int_equal(a->at, b->at);
	assert_int_equal(a->received_at, b->received_at);
}

static void test_changes(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_change_event c[3];
	struct kx_change_events l;
	struct kx_tx *tx;
	char svc[32], other[32];
	bool seen[3] = {false, false, false};
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-c", svc, sizeof(svc));
	fresh("svc-d", other, sizeof(other));
	for (int i = 0; i < 3; i++) {
		kx_change_event_init(&c[i]);
		c[i].service = strdup(i < 2 ? svc : other);
		c[i].received_at = now;
	}
	c[0].summary = strdup("deploy v1.2.3 \"blue\"");
	c[0].source_host = strdup("ci.example");
	c[0].details = strdup("{\"links\":[{\"href\":\"https://x\"}]}");
	c[0].at = now - 5000;
	c[1].summary = strdup("config push"); /* source_host, details: NULL */
	c[1].at = now - 10000;		      /* older, though inserted later */
	c[2].summary = strdup("deploy other");
	c[2].at = now;

	tx = begin(s, true);
	for (int i = 0; i < 3; i++)
		OK(kx_store_change_insert(tx, &c[i], &err));
	commit(tx);
	assert_true(c[0].id > 0 && c[1].id > c[0].id && c[2].id > c[1].id);

	tx = begin(s, false);
	OK(kx_store_change_list(tx, svc, 0, &l, &err));
	assert_int_equal(l.n, 2);
	assert_change_equal(&l.v[0], &c[0]); /* newest first */
	assert_change_equal(&l.v[1], &c[1]);
	kx_change_events_release(&l);
	OK(kx_store_change_list(tx, svc, 1, &l, &err));
	assert_int_equal(l.n, 1);
	assert_change_equal(&l.v[0], &c[0]);
	kx_change_events_release(&l);
	OK(kx_store_change_list(tx, NULL, 1000, &l, &err));
	for (size_t i = 0; i < l.n; i++) {
		for (int k = 0; k < 3; k++)
			if (l.v[i].id == c[k].id) {
				assert_change_equal(&l.v[i], &c[k]);
				seen[k] = true;
			}
		if (i)
			assert_true(l.v[i - 1].at >= l.v[i].at);
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	kx_change_events_release(&l);
	OK(kx_store_change_list(tx, "no-such-svc", 10, &l, &err));
	assert_int_equal(l.n, 0);
	kx_change_events_release(&l);
	kx_store_rollback(tx);

	for (int i = 0; i < 3; i++)
		kx_change_event_release(&c[i]);
	kx_store_free(s);
}

/* ---- heartbeats ---- */

static void assert_heartbeat_equal(const struct kx_heartbeat *a, const struct kx_heartbeat *b)
{
	assert_string_equal(a->name, b->name);
	assert_str_or_null(a->service, b->service);
	assert_memory_equal(a->hash, b->hash, KX_HASH_LEN);
	assert_int_equal(a->interval, b->interval);
	assert_int_equal(a->grace, b->grace);
	assert_int_equal(a->level, b->level);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->last_ping, b->last_ping);
	assert_int_equal(a->due_at, b->due_at);
	assert_str_or_null(a->created_by, b->created_by);
	assert_int_equal(a->created_at, b->created_at);
}

static void make_heartbeat(struct kx_heartbeat *h, const char *prefix, int i, const char *svc,
			   kx_ms due)
{
	char name[64];
	snprintf(name, sizeof(name), "%s-%d", prefix, i);
	kx_heartbeat_init(h);
	h->name = strdup(name);
	h->service = strdup(svc);
	kx_hash(name, strlen(name), h->hash);
	h->interval = 60000;
	h->grace = 5000;
	h->created_at = due - 65000;
	h->due_at = due;
}

static long find_heartbeat(const struct kx_heartbeats *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return (long)i;
	return -1;
}

static void test_heartbeats(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_heartbeat h[5], got, dup;
	struct kx_heartbeats l;
	struct kx_tx *tx;
	char prefix[32], svc[32];
	uint8_t nohash[KX_HASH_LEN];
	/* long ago, so that no other heartbeat is due by then */
	kx_ms base = T("2001-02-03T04:05:06Z");
	(void)state;

	fresh("hb", prefix, sizeof(prefix));
	fresh("svc-h", svc, sizeof(svc));
	make_heartbeat(&h[0], prefix, 0, svc, base - 10); /* due, second */
	h[0].created_by = strdup("alice");
	h[0].level = KX_LEVEL_CRITICAL;
	make_heartbeat(&h[1], prefix, 1, svc, base - 20); /* due, first */
	h[1].state = KX_HB_UP;
	h[1].last_ping = base - 65020;
	make_heartbeat(&h[2], prefix, 2, svc, base - 30); /* down: not due again */
	h[2].state = KX_HB_DOWN;
	make_heartbeat(&h[3], prefix, 3, svc, base + 1);  /* not yet */
	make_heartbeat(&h[4], prefix, 4, svc, base);	  /* due: due_at <= now */

	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_heartbeat_insert(tx, &h[i], &err));
	commit(tx);

	/* a taken name, a taken key */
	make_heartbeat(&dup, prefix, 0, svc, base);
	kx_hash("another key", 11, dup.hash);
	tx = begin(s, true);
	assert_int_equal(kx_store_heartbeat_insert(tx, &dup, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	free(dup.name);
	dup.name = strdup("hb-unused-name");
	memcpy(dup.hash, h[1].hash, KX_HASH_LEN);
	tx = begin(s, true);
	assert_int_equal(kx_store_heartbeat_insert(tx, &dup, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	kx_heartbeat_release(&dup);

	tx = begin(s, false);
	for (int i = 0; i < 5; i++) {
		OK(kx_store_heartbeat_get(tx, h[i].name, &got, &err));
		assert_heartbeat_equal(&got, &h[i]);
		kx_heartbeat_release(&got);
		OK(kx_store_heartbeat_by_hash(tx, h[i].hash, &got, &err));
		assert_heartbeat_equal(&got, &h[i]);
		kx_heartbeat_release(&got);
	}
	assert_int_equal(kx_store_heartbeat_get(tx, "no-such-hb", &got, &err), KX_ENOTFOUND);
	kx_hash("no such key", 11, nohash);
	assert_int_equal(kx_store_heartbeat_by_hash(tx, nohash, &got, &err), KX_ENOTFOUND);
	OK(kx_store_heartbeat_list(tx, &l, &err));
	for (int i = 1; i < 5; i++)
		assert_true(find_heartbeat(&l, h[i - 1].name) < find_heartbeat(&l, h[i].name));
	assert_true(find_heartbeat(&l, h[0].name) >= 0);
	for (size_t i = 1; i < l.n; i++)
		assert_true(strcmp(l.v[i - 1].name, l.v[i].name) < 0);
	kx_heartbeats_release(&l);
	/* due: not down, due_at <= now, oldest first */
	OK(kx_store_heartbeat_due(tx, base, 10, &l, &err));
	assert_int_equal(l.n, 3);
	assert_heartbeat_equal(&l.v[0], &h[1]);
	assert_heartbeat_equal(&l.v[1], &h[0]);
	assert_heartbeat_equal(&l.v[2], &h[4]);
	kx_heartbeats_release(&l);
	OK(kx_store_heartbeat_due(tx, base, 1, &l, &err));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, h[1].name);
	kx_heartbeats_release(&l);
	kx_store_rollback(tx);

	/* update: state, last_ping and due_at only */
	h[0].state = KX_HB_UP;
	h[0].last_ping = base + 5;
	h[0].due_at = base + 65005;
	h[0].interval = 1; /* not written */
	tx = begin(s, true);
	OK(kx_store_heartbeat_update(tx, &h[0], &err));
	commit(tx);
	h[0].interval = 60000;
	h[1].state = KX_HB_DOWN;
	h[1].last_ping = KX_TIME_UNSET; /* unset is written too */
	tx = begin(s, true);
	OK(kx_store_heartbeat_update(tx, &h[1], &err));
	OK(kx_store_heartbeat_get(tx, h[0].name, &got, &err));
	assert_heartbeat_equal(&got, &h[0]);
	kx_heartbeat_release(&got);
	OK(kx_store_heartbeat_get(tx, h[1].name, &got, &err));
	assert_heartbeat_equal(&got, &h[1]);
	kx_heartbeat_release(&got);
	/* in a write transaction (locked on PostgreSQL): only 4 is left due */
	OK(kx_store_heartbeat_due(tx, base, 10, &l, &err));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, h[4].name);
	kx_heartbeats_release(&l);
	commit(tx);

	if (on_postgres(s)) {
		/* two checkers at once: the second passes over what the first
		 * holds (SKIP LOCKED) instead of getting it too */
		struct kx_tx *tx2;
		h[3].due_at = base - 1;
		tx = begin(s, true);
		OK(kx_store_heartbeat_update(tx, &h[3], &err));
		commit(tx);
		tx = begin(s, true);
		OK(kx_store_heartbeat_due(tx, base, 1, &l, &err));
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0].name, h[3].name);
		kx_heartbeats_release(&l);
		tx2 = begin(s, true);
		OK(kx_store_heartbeat_due(tx2, base, 10, &l, &err));
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0].name, h[4].name);
		kx_heartbeats_release(&l);
		kx_store_rollback(tx2);
		kx_store_rollback(tx);
	}

	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_heartbeat_delete(tx, h[i].name, &err));
	assert_int_equal(kx_store_heartbeat_delete(tx, h[0].name, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_heartbeat_update(tx, &h[0], &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_heartbeat_get(tx, h[0].name, &got, &err), KX_ENOTFOUND);
	commit(tx);

	for (int i = 0; i < 5; i++)
		kx_heartbeat_release(&h[i]);
	kx_store_free(s);
}

/* ---- silences ---- */

static void assert_silence_equal(const struct kx_silence *a, const struct kx_silence *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->kind, b->kind);
	assert_str_or_null(a->matchers, b->matchers);
	assert_int_equal(a->starts_at, b->starts_at);
	assert_int_equal(a->ends_at, b->ends_at);
	assert_str_or_null(a->comment, b->comment);
	assert_str_or_null(a->created_by, b->created_by);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->expired_at, b->expired_at);
}

static long find_silence(const struct kx_silences *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].id, id))
			return (long)i;
	return -1;
}

static void test_silences(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_silence sl[4], got;
	struct kx_silences l;
	struct kx_tx *tx;
	kx_ms now = kx_now_ms();
	(void)state;

	for (int i = 0; i < 4; i++) {
		kx_silence_init(&sl[i]);
		kx_random_id("sil_", sl[i].id, sizeof(sl[i].id));
		sl[i].matchers = strdup("alertname=~\"DB.*\",service=\"payments\"");
		sl[i].created_at = now - 4000 + i * 1000; /* 3 is the newest */
		sl[i].starts_at = now - 1000;
		sl[i].ends_at = now + 3600000;
	}
	sl[0].kind = KX_MAINTENANCE; /* in force */
	sl[0].comment = strdup("DB upgrade \"v16\"");
	sl[0].created_by = strdup("alice");
	sl[1].starts_at = now + 1000; /* not yet */
	sl[2].expired_at = now - 10;  /* ended early */
	sl[3].ends_at = now;	      /* over: ends_at is exclusive */

	tx = begin(s, true);
	for (int i = 0; i < 4; i++)
		OK(kx_store_silence_insert(tx, &sl[i], &err));
	assert_int_equal(kx_store_silence_insert(tx, &sl[0], &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	tx = begin(s, true);
	for (int i = 0; i < 4; i++)
		OK(kx_store_silence_insert(tx, &sl[i], &err));
	commit(tx);

	tx = begin(s, false);
	for (int i = 0; i < 4; i++) {
		OK(kx_store_silence_get(tx, sl[i].id, &got, &err));
		assert_silence_equal(&got, &sl[i]);
		kx_silence_release(&got);
	}
	assert_int_equal(kx_store_silence_get(tx, "sil_0000000000000000", &got, &err),
			 KX_ENOTFOUND);
	OK(kx_store_silence_list(tx, true, now, &l, &err));
	assert_true(find_silence(&l, sl[0].id) >= 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(find_silence(&l, sl[i].id), -1);
	for (size_t i = 0; i < l.n; i++)
		assert_true(kx_silence_active(&l.v[i], now));
	assert_silence_equal(&l.v[find_silence(&l, sl[0].id)], &sl[0]);
	kx_silences_release(&l);
	/* all: newest created first */
	OK(kx_store_silence_list(tx, false, now, &l, &err));
	for (int i = 1; i < 4; i++)
		assert_true(find_silence(&l, sl[i].id) < find_silence(&l, sl[i - 1].id));
	assert_true(find_silence(&l, sl[3].id) >= 0);
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].created_at >= l.v[i].created_at);
	kx_silences_release(&l);
	kx_store_rollback(tx);

	/* update: ends_at, comment, expired_at */
	sl[0].ends_at = now + 60000;
	free(sl[0].comment);
	sl[0].comment = NULL;
	sl[0].expired_at = now;
	sl[2].expired_at = KX_TIME_UNSET; /* back in force */
	tx = begin(s, true);
	OK(kx_store_silence_update(tx, &sl[0], &err));
	OK(kx_store_silence_update(tx, &sl[2], &err));
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_silence_get(tx, sl[0].id, &got, &err));
	assert_silence_equal(&got, &sl[0]);
	kx_silence_release(&got);
	OK(kx_store_silence_list(tx, true, now, &l, &err));
	assert_int_equal(find_silence(&l, sl[0].id), -1);
	assert_true(find_silence(&l, sl[2].id) >= 0);
	kx_silences_release(&l);
	kx_store_rollback(tx);

	tx = begin(s, true);
	kx_silence_init(&got);
	snprintf(got.id, sizeof(got.id), "%s", "sil_0000000000000000");
	assert_int_equal(kx_store_silence_update(tx, &got, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	for (int i = 0; i < 4; i++)
		kx_silence_release(&sl[i]);
	kx_store_free(s);
}

/* ---- the delivery log ---- */

static void assert_notification_equal(const struct kx_notification *a,
				      const struct kx_notification *b)
{
	assert_string_equal(a->id, b->id);
	assert_str_or_null(a->channel, b->channel);
	assert_str_or_null(a->event, b->event);
	assert_str_or_null(a->subject, b->subject);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->last_code, b->last_code);
	assert_str_or_null(a->last_error, b->last_error);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->last_attempt_at, b->last_attempt_at);
	assert_int_equal(a->next_attempt_at, b->next_attempt_at);
	assert_int_equal(a->delivered_at, b->delivered_at);
}

static void make_notification(struct kx_notification *n, const char *channel,
			      const char *subject, kx_ms at)
{
	kx_notification_init(n);
	kx_random_id("ntf_", n->id, sizeof(n->id));
	n->channel = strdup(channel);
	n->event = strdup("incident.declared");
	n->subject = subject ? strdup(subject) : NULL;
	n->created_at = at;
}

static void test_notification_attempts(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_notification n, got;
	struct kx_notification_attempt a1 = {1, 0, 0, 503, NULL}, a2 = {2, 0, 0, 200, NULL};
	struct kx_notification_attempts at;
	struct kx_tx *tx;
	kx_ms now = kx_now_ms();
	(void)state;

	make_notification(&n, "slack-ops", NULL, now); /* subject, error: NULL; times unset */
	tx = begin(s, true);
	OK(kx_store_notification_insert(tx, &n, &err));
	assert_int_equal(kx_store_notification_insert(tx, &n, &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	tx = begin(s, true);
	OK(kx_store_notification_insert(tx, &n, &err));
	commit(tx);

	tx = begin(s, false);
	OK(kx_store_notification_get(tx, n.id, &got, &at, &err));
	assert_notification_equal(&got, &n);
	assert_int_equal(at.n, 0);
	kx_notification_release(&got);
	kx_notification_attempts_release(&at);
	kx_store_rollback(tx);

	/* a failed attempt; delivered_at is only written on delivery */
	a1.at = now + 10;
	a1.took = 1500;
	a1.error = strdup("HTTP 503 from \"hooks.slack.com\"");
	n.status = KX_NTF_RETRYING;
	n.attempts = 1;
	n.last_code = 503;
	n.last_error = strdup(a1.error);
	n.last_attempt_at = a1.at;
	n.next_attempt_at = a1.at + 1000;
	n.delivered_at = now + 12345; /* ignored: not delivered */
	tx = begin(s, true);
	OK(kx_store_notification_attempt(tx, &n, &a1, &err));
	commit(tx);
	n.delivered_at = KX_TIME_UNSET;
	tx = begin(s, false);
	OK(kx_store_notification_get(tx, n.id, &got, &at, &err));
	assert_notification_equal(&got, &n);
	assert_int_equal(at.n, 1);
	assert_int_equal(at.v[0].number, 1);
	assert_int_equal(at.v[0].at, a1.at);
	assert_int_equal(at.v[0].took, 1500);
	assert_int_equal(at.v[0].code, 503);
	assert_string_equal(at.v[0].error, a1.error);
	kx_notification_release(&got);
	kx_notification_attempts_release(&at);
	assert_null(at.v);
	kx_store_rollback(tx);

	/* delivered: the error goes, the next attempt is unplanned */
	a2.at = now + 2000;
	a2.took = 80;
	n.status = KX_NTF_DELIVERED;
	n.attempts = 2;
	n.last_code = 200;
	free(n.last_error);
	n.last_error = NULL;
	n.last_attempt_at = a2.at;
	n.next_attempt_at = KX_TIME_UNSET;
	n.delivered_at = a2.at + 80;
	tx = begin(s, true);
	OK(kx_store_notification_attempt(tx, &n, &a2, &err));
	/* the same attempt number twice */
	commit(tx);
	tx = begin(s, true);
	assert_int_equal(kx_store_notification_attempt(tx, &n, &a2, &err), KX_ECONFLICT);
	kx_store_rollback(tx);

	tx = begin(s, false);
	OK(kx_store_notification_get(tx, n.id, &got, &at, &err));
	assert_notification_equal(&got, &n);
	assert_int_equal(at.n, 2); /* oldest first */
	assert_int_equal(at.v[0].number, 1);
	assert_string_equal(at.v[0].error, a1.error);
	assert_int_equal(at.v[1].number, 2);
	assert_int_equal(at.v[1].at, a2.at);
	assert_int_equal(at.v[1].took, 80);
	assert_int_equal(at.v[1].code, 200);
	assert_null(at.v[1].error);
	kx_notification_release(&got);
	kx_notification_attempts_release(&at);
	/* without the attempts */
	OK(kx_store_notification_get(tx, n.id, &got, NULL, &err));
	assert_notification_equal(&got, &n);
	kx_notification_release(&got);
	assert_int_equal(kx_store_notification_get(tx, "ntf_0000000000000000", &got, &at, &err),
			 KX_ENOTFOUND);
	kx_store_rollback(tx);

	/* an attempt of an unknown notification */
	tx = begin(s, true);
	snprintf(n.id, sizeof(n.id), "%s", "ntf_0000000000000000");
	assert_int_equal(kx_store_notification_attempt(tx, &n, &a2, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	free(a1.error);
	kx_notification_release(&n);
	kx_store_free(s);
}

static void expect_ntf(const struct kx_notifications *l, const struct kx_notification *const *w,
		       size_t n)
{
	assert_int_equal(l->n, n);
	for (size_t i = 0; i < n; i++)
		assert_notification_equal(&l->v[i], w[i]);
}

static void test_notification_list(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_notification n[5];
	struct kx_notifications l;
	struct kx_notification_filter f;
	struct kx_tx *tx;
	char ch[32], other[32], subj[32];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("ch-a", ch, sizeof(ch));
	fresh("ch-b", other, sizeof(other));
	fresh("INC-", subj, sizeof(subj));
	/* 1 and 2 in the same millisecond: the one inserted later is newer */
	make_notification(&n[0], ch, subj, now - 3000);
	make_notification(&n[1], ch, NULL, now - 2000);
	make_notification(&n[2], ch, subj, now - 2000);
	n[2].status = KX_NTF_DROPPED;
	make_notification(&n[3], other, subj, now - 1000);
	make_notification(&n[4], ch, NULL, now);
	n[4].status = KX_NTF_DELIVERED;
	n[4].attempts = 1;
	n[4].last_code = 250;
	n[4].last_attempt_at = n[4].delivered_at = now;

	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_notification_insert(tx, &n[i], &err));
	commit(tx);

	tx = begin(s, false);
	f = (struct kx_notification_filter){.channel = ch, .status = -1};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	expect_ntf(&l, (const struct kx_notification *[]){&n[4], &n[2], &n[1], &n[0]}, 4);
	kx_notifications_release(&l);
	f.limit = 2;
	OK(kx_store_notification_list(tx, &f, &l, &err));
	expect_ntf(&l, (const struct kx_notification *[]){&n[4], &n[2]}, 2);
	kx_notifications_release(&l);
	f = (struct kx_notification_filter){.channel = ch, .status = KX_NTF_PENDING};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	expect_ntf(&l, (const struct kx_notification *[]){&n[1], &n[0]}, 2);
	kx_notifications_release(&l);
	f = (struct kx_notification_filter){.subject = subj, .status = -1};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	expect_ntf(&l, (const struct kx_notification *[]){&n[3], &n[2], &n[0]}, 3);
	kx_notifications_release(&l);
	f = (struct kx_notification_filter){.channel = ch, .subject = subj,
					    .status = KX_NTF_DROPPED, .limit = 10};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	expect_ntf(&l, (const struct kx_notification *[]){&n[2]}, 1);
	kx_notifications_release(&l);
	f = (struct kx_notification_filter){.status = -1};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	assert_true(l.n >= 5 && l.n <= 100);
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].created_at >= l.v[i].created_at);
	kx_notifications_release(&l);
	f = (struct kx_notification_filter){.channel = "no-such-channel", .status = -1};
	OK(kx_store_notification_list(tx, &f, &l, &err));
	assert_int_equal(l.n, 0);
	kx_notifications_release(&l);
	kx_store_rollback(tx);

	for (int i = 0; i < 5; i++)
		kx_notification_release(&n[i]);
	kx_store_free(s);
}

static void test_rollback_leaves_nothing(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_alert a, got;
	struct kx_notification n, gn;
	struct kx_tx *tx;
	char svc[32];
	kx_ms now = kx_now_ms();
	(void)state;

	fresh("svc-r", svc, sizeof(svc));
	make_alert(&a, svc, "rb", now);
	make_notification(&n, "rb-channel", NULL, now);
	tx = begin(s, true);
	OK(kx_store_alert_insert(tx, &a, &err));
	OK(kx_store_notification_insert(tx, &n, &err));
	OK(kx_store_alert_firing_by_key(tx, svc, "rb", &got, &err));
	kx_alert_release(&got);
	kx_store_rollback(tx);

	tx = begin(s, false);
	assert_int_equal(kx_store_alert_get(tx, a.id, &got, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_alert_firing_by_key(tx, svc, "rb", &got, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_notification_get(tx, n.id, &gn, NULL, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	kx_alert_release(&a);
	kx_notification_release(&n);
	kx_store_free(s);
}

/* SQLite only: a database made by an older Klaxon (migrations 0001–0003,
 * with a row in it) takes 0004 on open and keeps its rows. */
static void test_sqlite_upgrade(const char *dir)
{
	char path[128], u[160];
	sqlite3 *db = NULL;
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	struct kx_tx *tx;
	struct kx_token tok;
	struct kx_services l;

	snprintf(path, sizeof(path), "%s/old.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
				      "name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (const struct kx_migration *m = kx_sqlite_migrations; m->sql && m->version <= 3;
	     m++) {
		char ins[160];
		assert_int_equal(sqlite3_exec(db, m->sql, NULL, NULL, NULL), SQLITE_OK);
		snprintf(ins, sizeof(ins),
			 "INSERT INTO schema_migrations VALUES (%d, '%s', 0)", m->version, m->name);
		assert_int_equal(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO tokens (id, hash, name, role, created_at) VALUES "
				      "('tok_old', x'00', 'old', 'admin', 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	snprintf(u, sizeof(u), "sqlite:%s", path);
	if (kx_store_open(u, &s, &err))
		fail_msg("open %s: %s", u, err.msg);
	tx = begin(s, false);
	OK(kx_store_token_get(tx, "tok_old", &tok, &err));
	assert_string_equal(tok.name, "old");
	kx_token_release(&tok);
	OK(kx_store_service_list(tx, &l, &err));
	assert_int_equal(l.n, 0);
	kx_services_release(&l);
	kx_store_rollback(tx);
	kx_store_free(s);
}

static char sqlite_dir[64];

static void test_upgrade(void **state)
{
	(void)state;
	test_sqlite_upgrade(sqlite_dir);
}

static int run(const char *name, bool sqlite)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_integrations),
		cmocka_unit_test(test_alert_roundtrip),
		cmocka_unit_test(test_alert_fold),
		cmocka_unit_test(test_alert_firing_unique),
		cmocka_unit_test(test_alert_list),
		cmocka_unit_test(test_alert_expired),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_heartbeats),
		cmocka_unit_test(test_silences),
		cmocka_unit_test(test_notification_attempts),
		cmocka_unit_test(test_notification_list),
		cmocka_unit_test(test_rollback_leaves_nothing),
		cmocka_unit_test(test_upgrade),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);
	return _cmocka_run_group_tests(name, tests, sqlite ? n : n - 1, NULL, NULL);
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
	char pgdir[64] = "", pgurl[1024] = "";
	int rc;

	kx_secret_init();
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/kx-alerts-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s/klaxon.db", sqlite_dir);
	rc = run("store_alerts_sqlite", true);
	remove_dir(sqlite_dir);
	if (!pg || !*pg) {
		snprintf(pgdir, sizeof(pgdir), "/tmp/kx-alerts-pg-XXXXXX");
		if (!mkdtemp(pgdir) || pg_server("start", pgdir, pgurl, sizeof(pgurl)) || !*pgurl) {
			fprintf(stderr, "cannot start PostgreSQL with scripts/pg-test-server\n");
			return 1;
		}
		pg = pgurl;
	}
	snprintf(url, sizeof(url), "%s", pg);
	rc |= run("store_alerts_postgres", false);
	if (pgdir[0]) {
		pg_server("stop", pgdir, NULL, 0);
		remove_dir(pgdir);
	}
	return rc;
}
