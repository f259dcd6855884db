/* test_guard.c — core/guard (switch and approval records) and
 * http/decode_guard (the guardrail request bodies). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "core/guard.h"
#include "helpers.h"
#include "http/decode_guard.h"

#define B(s) (s), strlen(s)
#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */

static void switch_active_rules(void **state)
{
	struct kx_switch sw;
	(void)state;
	kx_switch_init(&sw);
	sw.set_at = T0;
	assert_true(kx_switch_active(&sw, T0));
	sw.expires_at = T0 + 1000;
	assert_true(kx_switch_active(&sw, T0 + 999));
	assert_false(kx_switch_active(&sw, T0 + 1000)); /* expiry is exclusive */
	sw.expires_at = KX_TIME_UNSET;
	sw.ramp.start = T0;
	sw.ramp.end = T0 + 60000;
	assert_true(kx_switch_active(&sw, T0 + 59999)); /* ramping still limits */
	assert_false(kx_switch_active(&sw, T0 + 60000));
	sw.ramp.start = KX_TIME_UNSET;
	sw.cleared_at = T0 + 5;
	assert_false(kx_switch_active(&sw, T0));
	kx_switch_release(&sw);
}

static void approval_status(void **state)
{
	struct kx_approval a;
	enum kx_approval_status st;
	struct kx_err err = {0};
	(void)state;
	kx_approval_init(&a);
	a.expires_at = T0 + 10;
	assert_int_equal(kx_approval_effective_status(&a, T0), KX_APPROVAL_PENDING);
	assert_int_equal(kx_approval_effective_status(&a, T0 + 10), KX_APPROVAL_EXPIRED);
	a.status = KX_APPROVAL_APPROVED;
	assert_int_equal(kx_approval_effective_status(&a, T0 + 10), KX_APPROVAL_APPROVED);
	assert_int_equal(kx_approval_status_parse("denied", &st, &err), 0);
	assert_int_equal(st, KX_APPROVAL_DENIED);
	assert_int_equal(kx_approval_status_parse("maybe", &st, &err), KX_EINVAL);
	assert_contains(err.msg, "unknown approval status 'maybe'");
	assert_string_equal(kx_approval_status_name(KX_APPROVAL_EXPIRED), "expired");
	kx_approval_release(&a);
}

static void cap_ids(void **state)
{
	struct kx_err err = {0};
	(void)state;
	assert_int_equal(kx_cap_id_check("ig-comments.v2_x", &err), 0);
	assert_int_equal(kx_cap_id_check("", &err), KX_EINVAL);
	assert_int_equal(kx_cap_id_check("Caps", &err), KX_EINVAL);
	assert_contains(err.msg, "cap id 'Caps'");
	assert_int_equal(kx_cap_id_check("a/b", &err), KX_EINVAL);
}

/* ---- gate bodies ---- */

static void gate_fails(const char *body, const char *what)
{
	struct kx_gate_req *reqs = (void *)1;
	struct kx_err err = {0};
	json_t *json = (void *)1;
	size_t n = 7;
	bool batch;
	int rc = kx_decode_gate(B(body), &reqs, &n, &batch, &json, &err);
	if (rc != KX_EINVAL && rc != KX_EJSON)
		fail_msg("%s gave %d (%s)", body, rc, err.msg);
	assert_null(reqs);
	assert_null(json);
	assert_int_equal(n, 0);
	assert_contains(err.msg, what);
}

static void gate_single_and_batch(void **state)
{
	struct kx_gate_req *reqs;
	struct kx_err err = {0};
	json_t *json;
	size_t n;
	bool batch;
	(void)state;
	assert_int_equal(kx_decode_gate(B("{\"labels\":{\"client\":\"acme\",\"action\":\"dm\"},"
					  "\"idempotency_key\":\"k1\",\"read_only\":true}"),
					&reqs, &n, &batch, &json, &err),
			 0);
	assert_false(batch);
	assert_int_equal(n, 1);
	assert_string_equal(kx_labels_get(&reqs[0].labels, "client"), "acme");
	assert_string_equal(reqs[0].idempotency_key, "k1");
	assert_true(reqs[0].read_only);
	kx_gate_reqs_free(reqs, n);
	json_decref(json);

	assert_int_equal(kx_decode_gate(B("{\"actions\":[{\"labels\":{\"a\":\"1\"}},"
					  "{\"labels\":{\"a\":\"2\"}}]}"),
					&reqs, &n, &batch, &json, &err),
			 0);
	assert_true(batch);
	assert_int_equal(n, 2);
	assert_string_equal(kx_labels_get(&reqs[1].labels, "a"), "2");
	assert_false(reqs[1].read_only);
	assert_null(reqs[1].idempotency_key);
	kx_gate_reqs_free(reqs, n);
	json_decref(json);
}

static void gate_bad_bodies(void **state)
{
	char *big;
	size_t off = 0, cap = 1001 * 40 + 64;
	(void)state;
	gate_fails("", "'labels' is required");
	gate_fails("{", "invalid JSON");
	gate_fails("[]", "must be a JSON object");
	gate_fails("{\"labels\":{}}", "at least one label");
	gate_fails("{\"labels\":{\"client\":5}}", "string value");
	gate_fails("{\"labels\":{\"Bad Key\":\"x\"}}", "Bad Key");
	gate_fails("{\"labels\":{\"a\":\"b\"},\"idempotency_key\":5}", "'idempotency_key' must be a string");
	gate_fails("{\"labels\":{\"a\":\"b\"},\"read_only\":\"yes\"}", "'read_only' must be true or false");
	gate_fails("{\"labels\":{\"a\":\"b\"},\"colour\":\"red\"}", "unknown field 'colour'");
	gate_fails("{\"actions\":[]}", "1 to 1000");
	gate_fails("{\"actions\":{}}", "'actions' must be an array");
	gate_fails("{\"actions\":[{\"labels\":{\"a\":\"b\"}},{\"labels\":{}}]}",
		   "action 2: 'labels' must name the action");
	gate_fails("{\"actions\":[{\"labels\":{\"a\":\"b\"}}],\"labels\":{\"a\":\"b\"}}",
		   "unknown field 'labels'");
	big = malloc(cap);
	assert_non_null(big);
	off += (size_t)snprintf(big + off, cap - off, "{\"actions\":[");
	for (int i = 0; i < 1001; i++)
		off += (size_t)snprintf(big + off, cap - off, "%s{\"labels\":{\"a\":\"b\"}}",
					i ? "," : "");
	snprintf(big + off, cap - off, "]}");
	gate_fails(big, "1 to 1000");
	free(big);
}

/* ---- switch, resume, cap, evidence ---- */

static void switch_body(void **state)
{
	struct kx_switch_req r;
	struct kx_err err = {0};
	json_t *json;
	(void)state;
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"stop\"}"), T0, &r, &json, &err), 0);
	assert_string_equal(r.selector, "");
	assert_int_equal(r.mode, KX_GATE_BLOCK);
	assert_int_equal(r.expires_at, KX_TIME_UNSET);
	json_decref(json);
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"r\",\"selector\":\"client=acme\","
					    "\"mode\":\"read_only\",\"expires_in\":\"2h\","
					    "\"incident\":\"INC-20261125-001\"}"),
					  T0, &r, &json, &err),
			 0);
	assert_int_equal(r.mode, KX_GATE_READ_ONLY);
	assert_int_equal(r.expires_at, T0 + 7200000);
	assert_string_equal(r.incident, "INC-20261125-001");
	json_decref(json);

	assert_int_equal(kx_decode_switch(B("{}"), T0, &r, &json, &err), KX_EINVAL);
	assert_contains(err.msg, "'reason' is required");
	assert_null(json);
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"r\",\"mode\":\"pause\"}"), T0, &r, &json,
					  &err),
			 KX_EINVAL);
	assert_contains(err.msg, "unknown switch mode 'pause'");
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"r\",\"expires_in\":\"0s\"}"), T0, &r,
					  &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "'expires_in'");
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"r\",\"expires_in\":\"1h\","
					    "\"expires_at\":\"2027-01-01T00:00:00Z\"}"),
					  T0, &r, &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "not both");
	assert_int_equal(kx_decode_switch(B("{\"reason\":\"r\",\"expires_at\":\"tomorrow\"}"), T0,
					  &r, &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "RFC 3339");
}

static void resume_body(void **state)
{
	struct kx_resume_req r;
	struct kx_err err = {0};
	json_t *json;
	(void)state;
	assert_int_equal(kx_decode_resume(B(""), &r, &json, &err), 0);
	assert_int_equal(r.ramp, 0);
	json_decref(json);
	assert_int_equal(kx_decode_resume(B("{\"ramp\":\"30m\",\"floor\":2,\"peak\":60,"
					    "\"window\":\"1m\",\"reason\":\"fixed\"}"),
					  &r, &json, &err),
			 0);
	assert_int_equal(r.ramp, 1800000);
	assert_int_equal(r.floor, 2);
	assert_int_equal(r.peak, 60);
	assert_int_equal(r.window, 60000);
	json_decref(json);
	assert_int_equal(kx_decode_resume(B("{\"peak\":5}"), &r, &json, &err), KX_EINVAL);
	assert_contains(err.msg, "give 'ramp' too");
	assert_int_equal(kx_decode_resume(B("{\"ramp\":\"30m\",\"peak\":0}"), &r, &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "'peak'");
	assert_int_equal(kx_decode_resume(B("{\"ramp\":\"soon\"}"), &r, &json, &err), KX_EINVAL);
	assert_contains(err.msg, "cannot parse 'ramp'");
	assert_int_equal(kx_decode_resume(B("{\"ramp\":\"30m\",\"window\":\"-1s\"}"), &r, &json,
					  &err),
			 KX_EINVAL);
}

static void one_string_and_evidence(void **state)
{
	struct kx_evidence_req e;
	struct kx_err err = {0};
	const char *s;
	json_t *json;
	(void)state;
	assert_int_equal(kx_decode_one_string(B("{\"spec\":\"action=dm: 1/10s\"}"), "spec", true,
					      &s, &json, &err),
			 0);
	assert_string_equal(s, "action=dm: 1/10s");
	json_decref(json);
	assert_int_equal(kx_decode_one_string(B("{}"), "spec", true, &s, &json, &err), KX_EINVAL);
	assert_contains(err.msg, "'spec' is required");
	assert_int_equal(kx_decode_one_string(B("{\"reason\":\"x\",\"extra\":1}"), "reason", false,
					      &s, &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "unknown field 'extra'");
	assert_int_equal(kx_decode_one_string(B(""), "note", false, &s, &json, &err), 0);
	assert_null(s);
	json_decref(json);

	assert_int_equal(kx_decode_evidence(B("{\"since\":\"2h\",\"account\":\"@brand\","
					      "\"limit\":20}"),
					    T0, &e, &json, &err),
			 0);
	assert_int_equal(e.since, T0 - 7200000);
	assert_string_equal(e.account, "@brand");
	assert_int_equal(e.limit, 20);
	json_decref(json);
	assert_int_equal(kx_decode_evidence(B("{\"since\":\"1h\",\"until\":\"2h\"}"), T0, &e, &json,
					    &err),
			 KX_EINVAL);
	assert_contains(err.msg, "'until' must be after 'since'");
	assert_int_equal(kx_decode_evidence(B("{\"limit\":0}"), T0, &e, &json, &err), KX_EINVAL);
	assert_int_equal(kx_decode_evidence(B("{\"since\":\"last week\"}"), T0, &e, &json, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "neither a duration");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(switch_active_rules), cmocka_unit_test(approval_status),
		cmocka_unit_test(cap_ids),		cmocka_unit_test(gate_single_and_batch),
		cmocka_unit_test(gate_bad_bodies),	cmocka_unit_test(switch_body),
		cmocka_unit_test(resume_body),		cmocka_unit_test(one_string_and_evidence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
