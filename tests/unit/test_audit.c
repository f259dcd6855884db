/* test_audit.c — core/audit: the event, its checks, the canonical encoding
 * and the hash chain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/audit.h"
#include "core/incident.h" /* KX_NAME_MAX */
#include "lib/secret.h"
#include "helpers.h"

#define NOW "2026-11-25T14:00:00Z"

/* Computed independently (Python's hashlib.blake2b over the layout that
 * core/audit.h documents), not by the code under test. */
#define GOLDEN_FULL "4a08a4c3eeb52feb22a42275dd4e5facfec4669ba22da205346f39744028e5e9"
#define GOLDEN_MIN "35390adf6cc83320703759575bf18afb39b241d341f8b0ec21102df5c7571646"

/* A valid event with every field set. */
static void full_event(struct kx_audit_event *e)
{
	kx_audit_event_init(e);
	e->seq = 7;
	e->at = T("2026-11-25T13:59:00.250Z");
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		char v[64];
		snprintf(v, sizeof(v), "%s-value", kx_audit_field_names[i]);
		*kx_audit_field(e, i) = strdup(v);
	}
	assert_int_equal(kx_labels_set(&e->labels, "campaign", "spring", NULL), 0);
	assert_int_equal(kx_labels_set(&e->labels, "blueprint", "reply-bot", NULL), 0);
}

static void hex_of(const uint8_t h[KX_HASH_LEN], char out[2 * KX_HASH_LEN + 1])
{
	kx_hex(h, KX_HASH_LEN, out);
}

/* The canonical encoding is a stored format: this vector pins it. If this
 * test fails, every chain written before the change would look broken. */
static void golden_vector(void **state)
{
	struct kx_audit_event e;
	char hex[2 * KX_HASH_LEN + 1];
	(void)state;

	full_event(&e);
	assert_int_equal(kx_audit_chain(&e, NULL), 0);
	hex_of(e.hash, hex);
	assert_string_equal(hex, GOLDEN_FULL);
	kx_audit_event_release(&e);

	/* the smallest event, second in a chain */
	kx_audit_event_init(&e);
	e.seq = 2;
	e.at = T("2026-01-01T00:00:00Z");
	e.actor = strdup("bot");
	e.action = strdup("dm");
	{
		uint8_t prev[KX_HASH_LEN];
		memset(prev, 0xab, sizeof(prev));
		assert_int_equal(kx_audit_chain(&e, prev), 0);
		assert_memory_equal(e.prev_hash, prev, KX_HASH_LEN);
	}
	hex_of(e.hash, hex);
	assert_string_equal(hex, GOLDEN_MIN);
	kx_audit_event_release(&e);
}

static void canonical_layout(void **state)
{
	struct kx_audit_event e;
	struct kx_buf b;
	(void)state;

	kx_audit_event_init(&e);
	e.seq = 1;
	e.at = 2;
	e.actor = strdup("a");
	e.action = strdup("b");
	kx_buf_init(&b, 0);
	assert_int_equal(kx_audit_canonical(&e, &b), 0);
	/* tag (16 with its NUL) + seq 8 + at 8 + 12 presence bytes + "a" and
	 * "b" (4 + 1 each) + label count 4 */
	assert_int_equal(b.len, 16 + 8 + 8 + 12 + 5 + 5 + 4);
	assert_memory_equal(b.data, "klaxon.audit.v1", 16);
	assert_int_equal((unsigned char)b.data[16 + 7], 1);
	assert_int_equal((unsigned char)b.data[24 + 7], 2);
	kx_buf_release(&b);
	kx_audit_event_release(&e);
}

static void first_event_links_to_zero(void **state)
{
	struct kx_audit_event e;
	uint8_t zero[KX_HASH_LEN] = {0}, h[KX_HASH_LEN];
	struct kx_buf b;
	(void)state;

	full_event(&e);
	assert_int_equal(kx_audit_chain(&e, NULL), 0);
	assert_memory_equal(e.prev_hash, zero, KX_HASH_LEN);
	/* hash = BLAKE2b-256(prev || canonical) */
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_add(&b, zero, KX_HASH_LEN), 0);
	assert_int_equal(kx_audit_canonical(&e, &b), 0);
	kx_hash(b.data, b.len, h);
	assert_memory_equal(h, e.hash, KX_HASH_LEN);
	kx_buf_release(&b);
	kx_audit_event_release(&e);
}

static void hash2_is_hash_of_concatenation(void **state)
{
	uint8_t a[KX_HASH_LEN], b[KX_HASH_LEN];
	(void)state;
	kx_hash("hello world", 11, a);
	kx_hash2("hello ", 6, "world", 5, b);
	assert_memory_equal(a, b, KX_HASH_LEN);
	kx_hash2("", 0, "hello world", 11, b);
	assert_memory_equal(a, b, KX_HASH_LEN);
}

/* Changing anything that is stored changes the hash. */
static void every_field_counts(void **state)
{
	struct kx_audit_event e;
	uint8_t base[KX_HASH_LEN], h[KX_HASH_LEN], prev[KX_HASH_LEN] = {1};
	(void)state;

	full_event(&e);
	assert_int_equal(kx_audit_compute(&e, prev, base), 0);
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		char **f = kx_audit_field(&e, i), *keep = *f;
		*f = strdup("changed");
		assert_int_equal(kx_audit_compute(&e, prev, h), 0);
		assert_memory_not_equal(h, base, KX_HASH_LEN);
		free(*f);
		*f = NULL; /* absent differs from present too */
		assert_int_equal(kx_audit_compute(&e, prev, h), 0);
		assert_memory_not_equal(h, base, KX_HASH_LEN);
		*f = keep;
	}
	e.seq++;
	assert_int_equal(kx_audit_compute(&e, prev, h), 0);
	assert_memory_not_equal(h, base, KX_HASH_LEN);
	e.seq--;
	e.at++;
	assert_int_equal(kx_audit_compute(&e, prev, h), 0);
	assert_memory_not_equal(h, base, KX_HASH_LEN);
	e.at--;
	assert_int_equal(kx_labels_set(&e.labels, "campaign", "autumn", NULL), 0);
	assert_int_equal(kx_audit_compute(&e, prev, h), 0);
	assert_memory_not_equal(h, base, KX_HASH_LEN);
	assert_int_equal(kx_labels_set(&e.labels, "campaign", "spring", NULL), 0);
	prev[0] = 2;
	assert_int_equal(kx_audit_compute(&e, prev, h), 0);
	assert_memory_not_equal(h, base, KX_HASH_LEN);
	prev[0] = 1;
	assert_int_equal(kx_audit_compute(&e, prev, h), 0);
	assert_memory_equal(h, base, KX_HASH_LEN);
	kx_audit_event_release(&e);
}

/* Length prefixes: moving a character from one field to the next is a
 * different event. */
static void fields_do_not_run_together(void **state)
{
	struct kx_audit_event a, b;
	struct kx_buf ba, bb;
	(void)state;

	kx_audit_event_init(&a);
	kx_audit_event_init(&b);
	a.actor = strdup("ab");
	a.client = strdup("c");
	b.actor = strdup("a");
	b.client = strdup("bc");
	a.action = strdup("x");
	b.action = strdup("x");
	kx_buf_init(&ba, 0);
	kx_buf_init(&bb, 0);
	assert_int_equal(kx_audit_canonical(&a, &ba), 0);
	assert_int_equal(kx_audit_canonical(&b, &bb), 0);
	assert_int_equal(ba.len, bb.len);
	assert_memory_not_equal(ba.data, bb.data, ba.len);
	kx_buf_release(&ba);
	kx_buf_release(&bb);
	kx_audit_event_release(&a);
	kx_audit_event_release(&b);
}

/* One label set, one encoding, whatever order the labels came in. */
static void label_order_does_not_matter(void **state)
{
	struct kx_audit_event a, b;
	uint8_t ha[KX_HASH_LEN], hb[KX_HASH_LEN];
	(void)state;

	full_event(&a);
	assert_int_equal(kx_audit_event_copy(&b, &a), 0);
	kx_labels_release(&b.labels);
	assert_int_equal(kx_labels_set(&b.labels, "blueprint", "reply-bot", NULL), 0);
	assert_int_equal(kx_labels_set(&b.labels, "campaign", "spring", NULL), 0);
	assert_int_equal(kx_audit_chain(&a, NULL), 0);
	assert_int_equal(kx_audit_chain(&b, NULL), 0);
	memcpy(ha, a.hash, KX_HASH_LEN);
	memcpy(hb, b.hash, KX_HASH_LEN);
	assert_memory_equal(ha, hb, KX_HASH_LEN);
	kx_audit_event_release(&a);
	kx_audit_event_release(&b);
}

static void copy_is_deep(void **state)
{
	struct kx_audit_event a, b;
	(void)state;
	full_event(&a);
	assert_int_equal(kx_audit_chain(&a, NULL), 0);
	assert_int_equal(kx_audit_event_copy(&b, &a), 0);
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		assert_string_equal(kx_audit_field_value(&a, i), kx_audit_field_value(&b, i));
		assert_ptr_not_equal(kx_audit_field_value(&a, i), kx_audit_field_value(&b, i));
	}
	assert_memory_equal(a.hash, b.hash, KX_HASH_LEN);
	assert_int_equal(b.labels.n, 2);
	kx_audit_event_release(&a);
	assert_string_equal(b.actor, "actor-value");
	kx_audit_event_release(&b);
}

static void check_accepts_valid(void **state)
{
	struct kx_audit_event e;
	struct kx_err err = {0};
	(void)state;
	full_event(&e);
	assert_int_equal(kx_audit_event_check(&e, T(NOW), &err), 0);
	/* the limits, exactly */
	free(e.target);
	e.target = repeat("t", KX_AUDIT_TARGET_MAX);
	free(e.artifact_url);
	e.artifact_url = repeat("u", KX_AUDIT_URL_MAX);
	free(e.client);
	e.client = repeat("c", KX_LABEL_VALUE_MAX);
	free(e.actor);
	e.actor = repeat("é", KX_NAME_MAX / 2);
	assert_int_equal(kx_audit_event_check(&e, T(NOW), &err), 0);
	/* up to 5 minutes ahead is clock skew */
	e.at = T(NOW) + KX_AUDIT_FUTURE_MS;
	assert_int_equal(kx_audit_event_check(&e, T(NOW), &err), 0);
	kx_audit_event_release(&e);
}

static void expect_invalid(struct kx_audit_event *e, const char *msg)
{
	struct kx_err err = {0};
	assert_int_equal(kx_audit_event_check(e, T(NOW), &err), KX_EINVAL);
	assert_contains(err.msg, msg);
}

static void check_refuses_invalid(void **state)
{
	struct kx_audit_event e;
	char *keep;
	(void)state;

	full_event(&e);
	keep = e.actor;
	e.actor = NULL;
	expect_invalid(&e, "'actor' is required");
	e.actor = keep;
	keep = e.action;
	e.action = NULL;
	expect_invalid(&e, "'action' is required");
	e.action = keep;

	keep = e.target;
	e.target = repeat("t", KX_AUDIT_TARGET_MAX + 1);
	expect_invalid(&e, "'target' is longer than 1024 bytes");
	free(e.target);
	e.target = strdup("");
	expect_invalid(&e, "'target' is empty");
	free(e.target);
	e.target = strdup("post\n1");
	expect_invalid(&e, "'target' has control characters");
	free(e.target);
	e.target = strdup("\xff\xfe");
	expect_invalid(&e, "invalid UTF-8");
	free(e.target);
	e.target = keep;

	keep = e.outcome;
	e.outcome = repeat("o", KX_NAME_MAX + 1);
	expect_invalid(&e, "'outcome' is longer than 128 bytes");
	free(e.outcome);
	e.outcome = keep;

	e.at = KX_TIME_UNSET;
	expect_invalid(&e, "'at' is required");
	e.at = T("1999-12-31T23:59:59Z");
	expect_invalid(&e, "before 2000-01-01");
	e.at = T(NOW) + KX_AUDIT_FUTURE_MS + 1;
	expect_invalid(&e, "in the future");
	e.at = T(NOW);

	/* fields are not labels */
	assert_int_equal(kx_labels_set(&e.labels, "client", "acme", NULL), 0);
	expect_invalid(&e, "label 'client' must be given as the field 'client'");
	kx_labels_remove(&e.labels, "client");
	assert_int_equal(kx_audit_event_check(&e, T(NOW), NULL), 0);
	kx_audit_event_release(&e);
}

static void scope(void **state)
{
	struct kx_audit_event e;
	struct kx_labels sc;
	struct kx_err err = {0};
	(void)state;

	kx_labels_init(&sc);
	kx_audit_event_init(&e);
	e.actor = strdup("bot");
	e.action = strdup("dm");
	assert_int_equal(kx_labels_add_pair(&sc, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&sc, "team=ops", NULL), 0);
	assert_true(kx_audit_scope_key("client"));
	assert_true(kx_audit_scope_key("action"));
	assert_false(kx_audit_scope_key("team"));
	assert_false(kx_audit_scope_key("actor"));
	assert_false(kx_audit_match_scope(&e, &sc));
	/* the scope fills in what is missing: the field for a field key, the
	 * label for any other */
	assert_int_equal(kx_audit_apply_scope(&e, &sc, &err), 0);
	assert_string_equal(e.client, "acme");
	assert_string_equal(kx_labels_get(&e.labels, "team"), "ops");
	assert_null(kx_labels_get(&e.labels, "client"));
	assert_true(kx_audit_match_scope(&e, &sc));
	assert_string_equal(kx_audit_scope_value(&e, "action"), "dm");
	/* and refuses a different value */
	free(e.client);
	e.client = strdup("beta");
	assert_false(kx_audit_match_scope(&e, &sc));
	assert_int_equal(kx_audit_apply_scope(&e, &sc, &err), KX_EFORBIDDEN);
	assert_contains(err.msg, "'client' is 'beta', outside this token's scope");
	kx_audit_event_release(&e);
	kx_labels_release(&sc);
	/* an empty scope matches everything */
	kx_audit_event_init(&e);
	assert_true(kx_audit_match_scope(&e, &sc));
	kx_audit_event_release(&e);
}

/* Builds a chain of n events (each with seq i + 1) in v. */
static void chain_of(struct kx_audit_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char t[32];
		kx_audit_event_init(&v[i]);
		v[i].seq = (int64_t)i + 1;
		v[i].at = T(NOW) + (kx_ms)i;
		v[i].actor = strdup("bot");
		v[i].action = strdup("comment");
		snprintf(t, sizeof(t), "post/%zu", i);
		v[i].target = strdup(t);
		assert_int_equal(kx_audit_chain(&v[i], i ? v[i - 1].hash : NULL), 0);
	}
}

static void verify_steps(void **state)
{
	struct kx_audit_event v[4];
	struct kx_err why = {0};
	(void)state;

	chain_of(v, 4);
	assert_int_equal(kx_audit_verify_step(&v[0], 0, NULL, &why), 0);
	for (size_t i = 1; i < 4; i++)
		assert_int_equal(kx_audit_verify_step(&v[i], v[i - 1].seq, v[i - 1].hash, &why), 0);

	/* a changed field: this event's hash no longer matches */
	free(v[2].target);
	v[2].target = strdup("post/99");
	assert_int_equal(kx_audit_verify_step(&v[2], 2, v[1].hash, &why), KX_ECONFLICT);
	assert_contains(why.msg, "does not match the event's content");
	/* rehashed by the tamperer: then the next link breaks */
	assert_int_equal(kx_audit_chain(&v[2], v[1].hash), 0);
	assert_int_equal(kx_audit_verify_step(&v[2], 2, v[1].hash, &why), 0);
	assert_int_equal(kx_audit_verify_step(&v[3], 3, v[2].hash, &why), KX_ECONFLICT);
	assert_contains(why.msg, "is not the hash of event 3");

	/* a missing event */
	assert_int_equal(kx_audit_verify_step(&v[3], 1, v[0].hash, &why), KX_ECONFLICT);
	assert_contains(why.msg, "event 4 follows event 1");
	assert_int_equal(kx_audit_verify_step(&v[1], 0, NULL, &why), KX_ECONFLICT);
	assert_contains(why.msg, "starts at event 2, not 1");
	/* a first event that does not link to zeros */
	v[0].prev_hash[5] = 1;
	assert_int_equal(kx_audit_verify_step(&v[0], 0, NULL, &why), KX_ECONFLICT);
	assert_contains(why.msg, "must be all zeros");
	for (size_t i = 0; i < 4; i++)
		kx_audit_event_release(&v[i]);
}

static void labels_json_round_trip(void **state)
{
	struct kx_labels a, b;
	struct kx_buf out;
	(void)state;

	kx_labels_init(&a);
	kx_labels_init(&b);
	kx_buf_init(&out, 0);
	assert_int_equal(kx_audit_labels_json(&a, &out), 0);
	assert_string_equal(kx_buf_str(&out), "{}");
	kx_buf_clear(&out);
	assert_int_equal(kx_labels_set(&a, "z.key", "quote \" back \\ slash", NULL), 0);
	assert_int_equal(kx_labels_set(&a, "a-key", "ünïcødé ✓", NULL), 0);
	assert_int_equal(kx_audit_labels_json(&a, &out), 0);
	assert_string_equal(kx_buf_str(&out),
			    "{\"a-key\":\"ünïcødé ✓\",\"z.key\":\"quote \\\" back \\\\ slash\"}");
	assert_int_equal(kx_audit_labels_parse(kx_buf_str(&out), &b, NULL), 0);
	assert_int_equal(b.n, 2);
	assert_string_equal(kx_labels_get(&b, "z.key"), "quote \" back \\ slash");
	assert_string_equal(kx_labels_get(&b, "a-key"), "ünïcødé ✓");
	kx_labels_release(&b);
	/* PostgreSQL's jsonb text has spaces and its own key order */
	assert_int_equal(kx_audit_labels_parse("{\"b\": \"2\", \"a\": \"1\"}", &b, NULL), 0);
	assert_string_equal(b.v[0].key, "a");
	kx_labels_release(&b);
	assert_int_equal(kx_audit_labels_parse("[1]", &b, NULL), KX_EINVAL);
	assert_int_equal(kx_audit_labels_parse("{\"a\": 1}", &b, NULL), KX_EINVAL);
	kx_labels_release(&b);
	kx_labels_release(&a);
	kx_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_vector),
		cmocka_unit_test(canonical_layout),
		cmocka_unit_test(first_event_links_to_zero),
		cmocka_unit_test(hash2_is_hash_of_concatenation),
		cmocka_unit_test(every_field_counts),
		cmocka_unit_test(fields_do_not_run_together),
		cmocka_unit_test(label_order_does_not_matter),
		cmocka_unit_test(copy_is_deep),
		cmocka_unit_test(check_accepts_valid),
		cmocka_unit_test(check_refuses_invalid),
		cmocka_unit_test(scope),
		cmocka_unit_test(verify_steps),
		cmocka_unit_test(labels_json_round_trip),
	};
	kx_secret_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
