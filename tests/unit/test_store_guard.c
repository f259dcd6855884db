/* The gate's records in the store, on both backends: kill switches (with
 * ramps, and which are in force), caps (put creates then replaces),
 * approval requests (the pending-by-key lookup, decisions, listings) and
 * the token `automation` flag; a rolled-back transaction leaves none of
 * them. Runs on SQLite always and on PostgreSQL too (a private server from
 * scripts/pg-test-server, or KX_TEST_PG_URL). Every test uses ids of its
 * own and only looks at those, so the tests can share one database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/guard.h"
#include "lib/secret.h"
#include "lib/time.h"
#include "store/store.h"

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

/* A switch with every string set; no ramp, no expiry. */
static void make_switch(struct kx_switch *sw, const char *selector, enum kx_gate_mode mode,
			kx_ms set_at)
{
	kx_switch_init(sw);
	kx_random_id("sw_", sw->id, sizeof(sw->id));
	sw->selector = strdup(selector);
	sw->mode = mode;
	sw->reason = strdup("spam wave on \"instagram\"");
	sw->set_by = strdup("alice");
	sw->set_at = set_at;
	sw->incident = strdup("INC-20250101-1");
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_switch_equal(const struct kx_switch *a, const struct kx_switch *b)
{
	assert_string_equal(a->id, b->id);
	assert_str_or_null(a->selector, b->selector);
	assert_int_equal(a->mode, b->mode);
	assert_str_or_null(a->reason, b->reason);
	assert_str_or_null(a->set_by, b->set_by);
	assert_int_equal(a->set_at, b->set_at);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_str_or_null(a->incident, b->incident);
	assert_int_equal(a->ramp.start, b->ramp.start);
	if (a->ramp.start != KX_TIME_UNSET) {
		assert_int_equal(a->ramp.end, b->ramp.end);
		assert_int_equal(a->ramp.window, b->ramp.window);
		assert_int_equal(a->ramp.floor, b->ramp.floor);
		assert_int_equal(a->ramp.peak, b->ramp.peak);
	}
	assert_int_equal(a->cleared_at, b->cleared_at);
	assert_str_or_null(a->cleared_by, b->cleared_by);
	assert_str_or_null(a->clear_reason, b->clear_reason);
}

/* Position of id in l, or -1. */
static long find_switch(const struct kx_switches *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return (long)i;
	return -1;
}

static void test_switches(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_switch sw[5], got;
	struct kx_switches all, active;
	struct kx_tx *tx;
	kx_ms now = kx_now_ms();
	(void)state;

	/* 0: plain, in force; 1: expired; 2: ramping (in force); 3: ramp
	 * over; 4: cleared. set_at gives the order. */
	make_switch(&sw[0], "", KX_GATE_BLOCK, now - 5000);
	make_switch(&sw[1], "client=acme", KX_GATE_READ_ONLY, now - 4000);
	sw[1].expires_at = now - 1;
	make_switch(&sw[2], "action=comment,platform=instagram", KX_GATE_APPROVE, now - 3000);
	sw[2].ramp = (struct kx_gate_ramp){now - 1000, now + 3600000, 60000, 5, 200};
	free(sw[2].incident);
	sw[2].incident = NULL;
	make_switch(&sw[3], "client=beta", KX_GATE_BLOCK, now - 2000);
	sw[3].ramp = (struct kx_gate_ramp){now - 1000, now, 1000, 0, 1};
	make_switch(&sw[4], "client=gamma", KX_GATE_BLOCK, now - 1000);
	sw[4].expires_at = now + 3600000;
	sw[4].cleared_at = now - 10;
	sw[4].cleared_by = strdup("bob");
	sw[4].clear_reason = strdup("false alarm");

	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_switch_insert(tx, &sw[i], &err));
	assert_int_equal(kx_store_switch_insert(tx, &sw[0], &err), KX_ECONFLICT);
	kx_store_rollback(tx);
	/* the conflict failed that transaction: do it again, cleanly */
	tx = begin(s, true);
	for (int i = 0; i < 5; i++)
		OK(kx_store_switch_insert(tx, &sw[i], &err));
	commit(tx);

	tx = begin(s, false);
	for (int i = 0; i < 5; i++) {
		OK(kx_store_switch_get(tx, sw[i].id, &got, &err));
		assert_switch_equal(&got, &sw[i]);
		kx_switch_release(&got);
	}
	assert_int_equal(kx_store_switch_get(tx, "sw_0000000000000000", &got, &err), KX_ENOTFOUND);
	OK(kx_store_switch_list(tx, true, now, &all, &err));
	OK(kx_store_switch_list(tx, false, now, &active, &err));
	kx_store_rollback(tx);

	/* all: every one, oldest first */
	for (int i = 0; i < 5; i++)
		assert_true(find_switch(&all, sw[i].id) >= 0);
	for (int i = 1; i < 5; i++)
		assert_true(find_switch(&all, sw[i - 1].id) < find_switch(&all, sw[i].id));
	for (size_t i = 1; i < all.n; i++)
		assert_true(all.v[i - 1].set_at <= all.v[i].set_at);
	/* in force: 0 and 2 (expired, ramp over and cleared are not) */
	assert_true(find_switch(&active, sw[0].id) >= 0);
	assert_true(find_switch(&active, sw[2].id) > find_switch(&active, sw[0].id));
	assert_int_equal(find_switch(&active, sw[1].id), -1);
	assert_int_equal(find_switch(&active, sw[3].id), -1);
	assert_int_equal(find_switch(&active, sw[4].id), -1);
	for (size_t i = 0; i < active.n; i++)
		assert_true(kx_switch_active(&active.v[i], now));
	assert_switch_equal(&active.v[find_switch(&active, sw[2].id)], &sw[2]);
	kx_switches_release(&all);
	kx_switches_release(&active);

	/* update: mode, reason, expiry and ramp change; then clear */
	sw[0].mode = KX_GATE_APPROVE;
	free(sw[0].reason);
	sw[0].reason = strdup("narrowed");
	sw[0].expires_at = now + 60000;
	sw[0].ramp = (struct kx_gate_ramp){now, now + 60000, 10000, 1, 50};
	sw[2].ramp.start = KX_TIME_UNSET; /* ramp removed */
	tx = begin(s, true);
	OK(kx_store_switch_update(tx, &sw[0], &err));
	OK(kx_store_switch_update(tx, &sw[2], &err));
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_switch_get(tx, sw[0].id, &got, &err));
	assert_switch_equal(&got, &sw[0]);
	kx_switch_release(&got);
	OK(kx_store_switch_get(tx, sw[2].id, &got, &err));
	assert_int_equal(got.ramp.start, KX_TIME_UNSET);
	kx_switch_release(&got);
	kx_store_rollback(tx);

	sw[0].cleared_at = now + 1;
	sw[0].cleared_by = strdup("carol");
	sw[0].clear_reason = strdup("resolved");
	tx = begin(s, true);
	OK(kx_store_switch_update(tx, &sw[0], &err));
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_switch_get(tx, sw[0].id, &got, &err));
	assert_switch_equal(&got, &sw[0]);
	kx_switch_release(&got);
	OK(kx_store_switch_list(tx, false, now + 2, &active, &err));
	assert_int_equal(find_switch(&active, sw[0].id), -1);
	assert_true(find_switch(&active, sw[2].id) >= 0);
	kx_switches_release(&active);
	OK(kx_store_switch_list(tx, true, now + 2, &all, &err));
	assert_true(find_switch(&all, sw[0].id) >= 0); /* never deleted */
	kx_switches_release(&all);
	kx_store_rollback(tx);

	/* update of an unknown switch */
	tx = begin(s, true);
	kx_switch_init(&got);
	snprintf(got.id, sizeof(got.id), "%s", "sw_0000000000000000");
	got.reason = strdup("x");
	assert_int_equal(kx_store_switch_update(tx, &got, &err), KX_ENOTFOUND);
	kx_switch_release(&got);
	kx_store_rollback(tx);

	for (int i = 0; i < 5; i++)
		kx_switch_release(&sw[i]);
	kx_store_free(s);
}

static void make_cap(struct kx_cap *c, const char *id, const char *spec, kx_ms at)
{
	kx_cap_init(c);
	c->id = strdup(id);
	c->spec = strdup(spec);
	c->set_by = strdup("alice");
	c->set_at = at;
}

static void test_caps(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	char prefix[KX_ID_LEN], id[3][64];
	struct kx_cap c[3], again;
	struct kx_caps l;
	struct kx_tx *tx;
	bool created = false;
	long at[3];
	kx_ms now = kx_now_ms();
	(void)state;

	kx_random_id("c", prefix, sizeof(prefix));
	/* inserted out of order: the list is by id */
	snprintf(id[0], sizeof(id[0]), "%s.b", prefix);
	snprintf(id[1], sizeof(id[1]), "%s.a", prefix);
	snprintf(id[2], sizeof(id[2]), "%s.c", prefix);
	make_cap(&c[0], id[0], "action=comment: 200/1d", now);
	make_cap(&c[1], id[1], "action=dm: 1/10s per account", now);
	make_cap(&c[2], id[2], "platform=instagram: 5/1m", now);

	tx = begin(s, true);
	for (int i = 0; i < 3; i++) {
		created = false;
		OK(kx_store_cap_put(tx, &c[i], &created, &err));
		assert_true(created);
	}
	commit(tx);

	make_cap(&again, id[0], "action=comment: 100/1d", now + 5);
	free(again.set_by);
	again.set_by = strdup("bob");
	tx = begin(s, true);
	created = true;
	OK(kx_store_cap_put(tx, &again, &created, &err));
	assert_false(created);
	commit(tx);

	tx = begin(s, false);
	OK(kx_store_cap_list(tx, &l, &err));
	kx_store_rollback(tx);
	for (int i = 0; i < 3; i++) {
		at[i] = -1;
		for (size_t k = 0; k < l.n; k++)
			if (strcmp(l.v[k].id, id[i]) == 0)
				at[i] = (long)k;
		assert_true(at[i] >= 0);
	}
	assert_true(at[1] < at[0] && at[0] < at[2]); /* .a, .b, .c */
	for (size_t k = 1; k < l.n; k++)
		assert_true(strcmp(l.v[k - 1].id, l.v[k].id) < 0);
	assert_string_equal(l.v[at[0]].spec, "action=comment: 100/1d");
	assert_string_equal(l.v[at[0]].set_by, "bob");
	assert_int_equal(l.v[at[0]].set_at, now + 5);
	assert_string_equal(l.v[at[1]].spec, "action=dm: 1/10s per account");
	assert_string_equal(l.v[at[1]].set_by, "alice");
	assert_int_equal(l.v[at[1]].set_at, now);
	kx_caps_release(&l);

	tx = begin(s, true);
	OK(kx_store_cap_delete(tx, id[1], &err));
	assert_int_equal(kx_store_cap_delete(tx, id[1], &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_cap_delete(tx, "no-such-cap", &err), KX_ENOTFOUND);
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_cap_list(tx, &l, &err));
	kx_store_rollback(tx);
	for (size_t k = 0; k < l.n; k++)
		assert_string_not_equal(l.v[k].id, id[1]);
	kx_caps_release(&l);

	/* a deleted cap put again is created anew */
	tx = begin(s, true);
	OK(kx_store_cap_put(tx, &c[1], &created, &err));
	assert_true(created);
	commit(tx);

	for (int i = 0; i < 3; i++)
		kx_cap_release(&c[i]);
	kx_cap_release(&again);
	kx_store_free(s);
}

static void make_approval(struct kx_approval *a, const char *switch_id, const char *key,
			  kx_ms at, kx_ms expires)
{
	kx_approval_init(a);
	kx_random_id("apr_", a->id, sizeof(a->id));
	a->switch_id = strdup(switch_id);
	a->idempotency_key = key ? strdup(key) : NULL;
	a->requested_by = strdup("bot-1");
	a->requested_at = at;
	a->expires_at = expires;
	a->status = KX_APPROVAL_PENDING;
	assert_int_equal(kx_labels_set(&a->labels, "client", "acme", NULL), 0);
	assert_int_equal(kx_labels_set(&a->labels, "action", "comment", NULL), 0);
}

static void assert_approval_equal(const struct kx_approval *a, const struct kx_approval *b)
{
	assert_string_equal(a->id, b->id);
	assert_str_or_null(a->switch_id, b->switch_id);
	assert_int_equal(a->labels.n, b->labels.n);
	for (size_t i = 0; i < a->labels.n; i++) {
		assert_string_equal(a->labels.v[i].key, b->labels.v[i].key);
		assert_string_equal(a->labels.v[i].value, b->labels.v[i].value);
	}
	assert_str_or_null(a->idempotency_key, b->idempotency_key);
	assert_int_equal(a->read_only, b->read_only);
	assert_str_or_null(a->requested_by, b->requested_by);
	assert_int_equal(a->requested_at, b->requested_at);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_int_equal(a->status, b->status);
	assert_str_or_null(a->decided_by, b->decided_by);
	assert_int_equal(a->decided_at, b->decided_at);
	assert_str_or_null(a->note, b->note);
}

static void test_approvals(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_approval a, b, other, got;
	char sw[KX_ID_LEN], sw2[KX_ID_LEN], key[KX_ID_LEN];
	struct kx_tx *tx;
	kx_ms now = kx_now_ms();
	(void)state;

	kx_random_id("sw_", sw, sizeof(sw));
	kx_random_id("sw_", sw2, sizeof(sw2));
	kx_random_id("key_", key, sizeof(key));
	make_approval(&a, sw, key, now, now + 60000);
	/* labels that need escaping, and UTF-8 */
	assert_int_equal(kx_labels_set(&a.labels, "target", "say \"hi\", \\o/ — ünïcode", NULL), 0);
	assert_int_equal(kx_labels_set(&a.labels, "z.last-key_1", "v", NULL), 0);
	a.read_only = true;
	make_approval(&b, sw, NULL, now + 1, KX_TIME_UNSET); /* no key, never expires */
	kx_labels_release(&b.labels);
	kx_labels_init(&b.labels); /* no labels at all */
	make_approval(&other, sw2, key, now + 2, now + 60000); /* same key, other switch */

	tx = begin(s, true);
	OK(kx_store_approval_insert(tx, &a, &err));
	OK(kx_store_approval_insert(tx, &b, &err));
	OK(kx_store_approval_insert(tx, &other, &err));
	commit(tx);

	tx = begin(s, false);
	OK(kx_store_approval_get(tx, a.id, &got, &err));
	assert_approval_equal(&got, &a);
	kx_approval_release(&got);
	OK(kx_store_approval_get(tx, b.id, &got, &err));
	assert_approval_equal(&got, &b);
	assert_int_equal(got.labels.n, 0);
	kx_approval_release(&got);
	assert_int_equal(kx_store_approval_get(tx, "apr_0000000000000000", &got, &err),
			 KX_ENOTFOUND);

	/* pending by key: per switch, only while unexpired */
	OK(kx_store_approval_pending_by_key(tx, sw, key, now + 10, &got, &err));
	assert_approval_equal(&got, &a);
	kx_approval_release(&got);
	OK(kx_store_approval_pending_by_key(tx, sw2, key, now + 10, &got, &err));
	assert_string_equal(got.id, other.id);
	kx_approval_release(&got);
	assert_int_equal(kx_store_approval_pending_by_key(tx, sw, key, now + 60000, &got, &err),
			 KX_ENOTFOUND); /* expires_at is exclusive */
	assert_int_equal(kx_store_approval_pending_by_key(tx, sw, "other-key", now, &got, &err),
			 KX_ENOTFOUND);
	assert_int_equal(kx_store_approval_pending_by_key(tx, sw, NULL, now, &got, &err),
			 KX_ENOTFOUND);
	kx_store_rollback(tx);

	/* decide a: no longer pending for its key */
	a.status = KX_APPROVAL_APPROVED;
	a.decided_by = strdup("carol");
	a.decided_at = now + 20;
	a.note = strdup("ok, once");
	tx = begin(s, true);
	OK(kx_store_approval_update(tx, &a, &err));
	commit(tx);
	tx = begin(s, false);
	OK(kx_store_approval_get(tx, a.id, &got, &err));
	assert_approval_equal(&got, &a);
	kx_approval_release(&got);
	assert_int_equal(kx_store_approval_pending_by_key(tx, sw, key, now + 30, &got, &err),
			 KX_ENOTFOUND);
	kx_store_rollback(tx);

	/* update of an unknown request */
	tx = begin(s, true);
	kx_approval_init(&got);
	snprintf(got.id, sizeof(got.id), "%s", "apr_0000000000000000");
	got.status = KX_APPROVAL_DENIED;
	assert_int_equal(kx_store_approval_update(tx, &got, &err), KX_ENOTFOUND);
	kx_approval_release(&got);
	kx_store_rollback(tx);

	/* duplicate id */
	tx = begin(s, true);
	assert_int_equal(kx_store_approval_insert(tx, &b, &err), KX_ECONFLICT);
	kx_store_rollback(tx);

	kx_approval_release(&a);
	kx_approval_release(&b);
	kx_approval_release(&other);
	kx_store_free(s);
}

/* Position of id in l, or -1. */
static long find_approval(const struct kx_approvals *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return (long)i;
	return -1;
}

static void test_approval_list(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_approval v[4];
	struct kx_approval_filter f;
	struct kx_approvals l;
	char sw[KX_ID_LEN];
	struct kx_tx *tx;
	/* Later than anything else in the database (also rows of earlier
	 * runs), so the newest-first list starts with this test's rows. */
	kx_ms base = 4000000000000LL + kx_now_ms();
	(void)state;

	kx_random_id("sw_", sw, sizeof(sw));
	/* 0: pending; 1: pending but expired at base+10; 2: denied; 3:
	 * pending, newest */
	make_approval(&v[0], sw, "k0", base, base + 100000);
	make_approval(&v[1], sw, "k1", base + 1, base + 10);
	make_approval(&v[2], sw, "k2", base + 2, base + 100000);
	make_approval(&v[3], sw, "k3", base + 3, base + 100000);
	tx = begin(s, true);
	for (int i = 0; i < 4; i++)
		OK(kx_store_approval_insert(tx, &v[i], &err));
	v[2].status = KX_APPROVAL_DENIED;
	v[2].decided_by = strdup("dave");
	v[2].decided_at = base + 5;
	OK(kx_store_approval_update(tx, &v[2], &err));
	commit(tx);

	tx = begin(s, false);
	memset(&f, 0, sizeof(f));
	OK(kx_store_approval_list(tx, &f, &l, &err)); /* limit 0: up to 100, newest first */
	assert_true(l.n >= 4 && l.n <= 100);
	for (int i = 0; i < 4; i++)
		assert_int_equal(find_approval(&l, v[i].id), 3 - i);
	assert_approval_equal(&l.v[1], &v[2]);
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].requested_at >= l.v[i].requested_at);
	kx_approvals_release(&l);

	f.limit = 2;
	OK(kx_store_approval_list(tx, &f, &l, &err));
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, v[3].id);
	assert_string_equal(l.v[1].id, v[2].id);
	kx_approvals_release(&l);

	f.limit = 0;
	f.pending_only = true;
	f.now = base + 20;
	OK(kx_store_approval_list(tx, &f, &l, &err));
	assert_int_equal(find_approval(&l, v[3].id), 0);
	assert_int_equal(find_approval(&l, v[0].id), 1);
	assert_int_equal(find_approval(&l, v[1].id), -1); /* expired */
	assert_int_equal(find_approval(&l, v[2].id), -1); /* decided */
	for (size_t i = 0; i < l.n; i++) {
		assert_int_equal(l.v[i].status, KX_APPROVAL_PENDING);
		assert_true(l.v[i].expires_at == KX_TIME_UNSET || l.v[i].expires_at > f.now);
	}
	kx_approvals_release(&l);

	f.limit = 1;
	OK(kx_store_approval_list(tx, &f, &l, &err));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, v[3].id);
	kx_approvals_release(&l);

	/* before v[1] expired it is listed as pending */
	f.limit = 0;
	f.now = base + 5;
	OK(kx_store_approval_list(tx, &f, &l, &err));
	assert_int_equal(find_approval(&l, v[1].id), 1);
	kx_approvals_release(&l);
	kx_store_rollback(tx);

	for (int i = 0; i < 4; i++)
		kx_approval_release(&v[i]);
	kx_store_free(s);
}

static void make_token(struct kx_token *t, bool automation, kx_ms at)
{
	kx_token_init(t);
	kx_random_id("tok_", t->id, sizeof(t->id));
	kx_hash2(t->id, strlen(t->id), "guard", 5, t->hash);
	t->name = strdup(automation ? "bot" : "person");
	t->role = KX_ACCESS_RESPONDER;
	t->automation = automation;
	t->created_by = strdup("admin");
	t->created_at = at;
	assert_int_equal(kx_labels_set(&t->scope, "client", "acme", NULL), 0);
}

static void test_token_automation(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_token t[2], got;
	struct kx_tokens l;
	struct kx_tx *tx;
	kx_ms now = kx_now_ms();
	(void)state;

	make_token(&t[0], true, now);
	make_token(&t[1], false, now + 1);
	tx = begin(s, true);
	OK(kx_store_token_insert(tx, &t[0], &err));
	OK(kx_store_token_insert(tx, &t[1], &err));
	commit(tx);

	tx = begin(s, false);
	for (int i = 0; i < 2; i++) {
		OK(kx_store_token_get(tx, t[i].id, &got, &err));
		assert_int_equal(got.automation, t[i].automation);
		assert_string_equal(got.name, t[i].name);
		assert_string_equal(kx_labels_get(&got.scope, "client"), "acme");
		kx_token_release(&got);
		OK(kx_store_token_by_hash(tx, t[i].hash, &got, &err));
		assert_string_equal(got.id, t[i].id);
		assert_int_equal(got.automation, t[i].automation);
		kx_token_release(&got);
	}
	OK(kx_store_token_list(tx, &l, &err));
	for (int i = 0; i < 2; i++) {
		bool seen = false;
		for (size_t k = 0; k < l.n; k++) {
			if (strcmp(l.v[k].id, t[i].id) == 0) {
				seen = true;
				assert_int_equal(l.v[k].automation, t[i].automation);
			}
		}
		assert_true(seen);
	}
	kx_tokens_release(&l);
	kx_store_rollback(tx);

	kx_token_release(&t[0]);
	kx_token_release(&t[1]);
	kx_store_free(s);
}

static void test_rollback_leaves_nothing(void **state)
{
	struct kx_store *s = open_store();
	struct kx_err err = {0};
	struct kx_switch sw, gsw;
	struct kx_cap c;
	struct kx_caps l;
	struct kx_approval a, ga;
	struct kx_switches sl;
	struct kx_tx *tx;
	char cid[KX_ID_LEN];
	bool created = false;
	kx_ms now = kx_now_ms();
	(void)state;

	make_switch(&sw, "client=rollback", KX_GATE_BLOCK, now);
	kx_random_id("rb", cid, sizeof(cid));
	make_cap(&c, cid, "action=dm: 1/1s", now);
	make_approval(&a, sw.id, "rb-key", now, now + 60000);

	tx = begin(s, true);
	OK(kx_store_switch_insert(tx, &sw, &err));
	OK(kx_store_cap_put(tx, &c, &created, &err));
	OK(kx_store_approval_insert(tx, &a, &err));
	/* visible inside the transaction */
	OK(kx_store_switch_get(tx, sw.id, &gsw, &err));
	kx_switch_release(&gsw);
	OK(kx_store_approval_pending_by_key(tx, sw.id, "rb-key", now, &ga, &err));
	kx_approval_release(&ga);
	kx_store_rollback(tx);

	tx = begin(s, false);
	assert_int_equal(kx_store_switch_get(tx, sw.id, &gsw, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_approval_get(tx, a.id, &ga, &err), KX_ENOTFOUND);
	assert_int_equal(kx_store_approval_pending_by_key(tx, sw.id, "rb-key", now, &ga, &err),
			 KX_ENOTFOUND);
	OK(kx_store_switch_list(tx, true, now, &sl, &err));
	assert_int_equal(find_switch(&sl, sw.id), -1);
	kx_switches_release(&sl);
	OK(kx_store_cap_list(tx, &l, &err));
	for (size_t k = 0; k < l.n; k++)
		assert_string_not_equal(l.v[k].id, cid);
	kx_caps_release(&l);
	kx_store_rollback(tx);

	tx = begin(s, true);
	assert_int_equal(kx_store_cap_delete(tx, cid, &err), KX_ENOTFOUND);
	kx_store_rollback(tx);

	kx_switch_release(&sw);
	kx_cap_release(&c);
	kx_approval_release(&a);
	kx_store_free(s);
}

static int run(const char *name)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_approvals),
		cmocka_unit_test(test_approval_list),
		cmocka_unit_test(test_token_automation),
		cmocka_unit_test(test_rollback_leaves_nothing),
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
	snprintf(dir, sizeof(dir), "/tmp/kx-guard-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s/klaxon.db", dir);
	rc = run("store_guard_sqlite");
	remove_dir(dir);
	if (!pg || !*pg) {
		snprintf(pgdir, sizeof(pgdir), "/tmp/kx-guard-pg-XXXXXX");
		if (!mkdtemp(pgdir) || pg_server("start", pgdir, pgurl, sizeof(pgurl)) || !*pgurl) {
			fprintf(stderr, "cannot start PostgreSQL with scripts/pg-test-server\n");
			return 1;
		}
		pg = pgurl;
	}
	snprintf(url, sizeof(url), "%s", pg);
	rc |= run("store_guard_postgres");
	if (pgdir[0]) {
		pg_server("stop", pgdir, NULL, 0);
		remove_dir(pgdir);
	}
	return rc;
}
