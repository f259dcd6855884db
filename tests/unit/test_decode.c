/* test_decode.c — http/decode: strict decoding of request bodies. Every
 * decode is followed by kx_decoded_release (and kx_declare_release), so the
 * ASan/LSan run also checks that error paths do not leak. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "helpers.h"
#include "http/decode.h"

#define B(s) (s), strlen(s)

/* ---- declare ---- */

static int declare(const char *body, struct kx_declare *d, struct kx_decoded *h,
		   struct kx_err *err)
{
	kx_err_clear(err);
	return kx_decode_declare(body, strlen(body), d, h, err);
}

static void declare_release(struct kx_declare *d, struct kx_decoded *h)
{
	kx_declare_release(d);
	kx_decoded_release(h);
}

/* Expects declare(body) to fail with code and a message containing what. */
static void declare_fails(const char *body, int code, const char *what)
{
	struct kx_declare d;
	struct kx_decoded h;
	struct kx_err err;
	int rc = declare(body, &d, &h, &err);
	if (rc != code)
		fail_msg("%s gave %d (%s), expected %d", body, rc, err.msg, code);
	assert_contains(err.msg, what);
	declare_release(&d, &h);
}

static void declare_full_body(void **state)
{
	struct kx_declare d;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(
		declare("{\"title\": \"Checkout is down\", \"severity\": \"P1\", "
			"\"summary\": \"EU cards fail\", \"types\": [\"OUTAGE\", \"DEPLOY\"], "
			"\"labels\": {\"client\": \"acme\", \"env\": \"prod\"}, "
			"\"started_at\": \"2026-11-25T20:10:00Z\", "
			"\"detected_at\": \"2026-11-25T21:25:00+01:00\"}",
			&d, &h, &err),
		0);
	assert_string_equal(d.title, "Checkout is down");
	assert_string_equal(d.severity, "P1");
	assert_string_equal(d.summary, "EU cards fail");
	assert_int_equal(d.ntypes, 2);
	assert_string_equal(d.types[0], "OUTAGE");
	assert_string_equal(d.types[1], "DEPLOY");
	assert_int_equal(d.labels.n, 2);
	assert_string_equal(kx_labels_get(&d.labels, "client"), "acme");
	assert_string_equal(kx_labels_get(&d.labels, "env"), "prod");
	assert_true(d.started_at == T("2026-11-25T20:10:00Z"));
	assert_true(d.detected_at == T("2026-11-25T20:25:00Z"));
	declare_release(&d, &h);
}

static void declare_minimal_body(void **state)
{
	struct kx_declare d;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(declare("{\"title\":\"t\",\"severity\":\"P3\"}", &d, &h, &err), 0);
	assert_null(d.summary);
	assert_int_equal(d.ntypes, 0);
	assert_int_equal(d.labels.n, 0);
	assert_true(d.started_at == KX_TIME_UNSET);
	assert_true(d.detected_at == KX_TIME_UNSET);
	declare_release(&d, &h);
	/* null is the same as absent */
	assert_int_equal(declare("{\"title\":\"t\",\"severity\":\"P3\",\"summary\":null,"
				 "\"types\":null,\"labels\":null,\"started_at\":null}",
				 &d, &h, &err),
			 0);
	assert_null(d.summary);
	assert_true(d.started_at == KX_TIME_UNSET);
	declare_release(&d, &h);
}

static void declare_empty_body_is_an_empty_object(void **state)
{
	struct kx_declare d;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(kx_decode_declare("", 0, &d, &h, &err), KX_EINVAL);
	assert_string_equal(err.msg, "'title' is required");
	declare_release(&d, &h);
	declare_fails("{}", KX_EINVAL, "'title' is required");
	declare_fails("{\"title\":\"t\"}", KX_EINVAL, "'severity' is required");
	declare_fails("{\"title\":null,\"severity\":\"P1\"}", KX_EINVAL, "'title' is required");
}

static void declare_malformed_json(void **state)
{
	static const char *const bad[] = {"{",
					  "{\"title\": }",
					  "{'title': 'x'}",
					  "{\"title\": \"x\",}",
					  "not json",
					  "{\"title\":\"x\"} trailing",
					  "{\"a\":1,\"a\":2}", /* duplicate keys */
					  "{\"title\":\"\\u0000\"}",
					  "\xff",
					  NULL};
	(void)state;
	for (const char *const *b = bad; *b; b++)
		declare_fails(*b, KX_EJSON, "");
	declare_fails("{", KX_EJSON, "invalid JSON at line 1");
}

static void declare_non_object(void **state)
{
	static const char *const arrays[] = {"[]", "[{\"title\":\"x\"}]", " [1] ", NULL};
	/* jansson refuses top-level scalars outright: still KX_EJSON */
	static const char *const scalars[] = {"\"title\"", "42", "null", "true", NULL};
	(void)state;
	for (const char *const *b = arrays; *b; b++)
		declare_fails(*b, KX_EJSON, "must be a JSON object");
	for (const char *const *b = scalars; *b; b++)
		declare_fails(*b, KX_EJSON, "");
}

static void declare_unknown_field(void **state)
{
	(void)state;
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"sev\":\"P1\"}", KX_EINVAL,
		      "unknown field 'sev'");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"Title\":\"x\"}", KX_EINVAL,
		      "unknown field 'Title'");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"status\":\"resolved\"}", KX_EINVAL,
		      "unknown field 'status'");
}

static void declare_wrong_types(void **state)
{
	(void)state;
	declare_fails("{\"title\":5,\"severity\":\"P1\"}", KX_EINVAL, "'title' must be a string");
	declare_fails("{\"title\":\"t\",\"severity\":[\"P1\"]}", KX_EINVAL,
		      "'severity' must be a string");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"summary\":true}", KX_EINVAL,
		      "'summary' must be a string");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"types\":\"OUTAGE\"}", KX_EINVAL,
		      "'types' must be an array of strings");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"types\":[\"OUTAGE\",1]}", KX_EINVAL,
		      "'types' must be an array of strings");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":[\"a=b\"]}", KX_EINVAL,
		      "'labels' must be an object");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{\"client\":1}}", KX_EINVAL,
		      "label 'client' must have a string value");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"started_at\":1795638600}", KX_EINVAL,
		      "'started_at' must be a string");
}

static void declare_labels_validated(void **state)
{
	(void)state;
	/* null label values are only for edits */
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{\"client\":null}}", KX_EINVAL,
		      "label 'client' must have a string value");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{\"Client\":\"acme\"}}",
		      KX_EINVAL, "invalid label key 'Client'");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{\"client\":\"\"}}", KX_EINVAL,
		      "empty value");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{\"client\":\"a\\nb\"}}",
		      KX_EINVAL, "control characters");
}

static void declare_too_many_labels_or_types(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_adds(&b, "{\"title\":\"t\",\"severity\":\"P1\",\"labels\":{"), 0);
	for (int i = 0; i <= KX_LABELS_MAX; i++)
		assert_int_equal(kx_buf_addf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i), 0);
	assert_int_equal(kx_buf_adds(&b, "}}"), 0);
	declare_fails(kx_buf_str(&b), KX_EINVAL, "too many labels");
	kx_buf_clear(&b);
	assert_int_equal(kx_buf_adds(&b, "{\"title\":\"t\",\"severity\":\"P1\",\"types\":["), 0);
	for (int i = 0; i < 65; i++)
		assert_int_equal(kx_buf_addf(&b, "%s\"T%d\"", i ? "," : "", i), 0);
	assert_int_equal(kx_buf_adds(&b, "]}"), 0);
	declare_fails(kx_buf_str(&b), KX_EINVAL, "more than 64 entries");
	kx_buf_release(&b);
}

static void declare_bad_times(void **state)
{
	(void)state;
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"started_at\":\"yesterday\"}", KX_EINVAL,
		      "cannot parse 'started_at': 'yesterday' is not an RFC 3339 time");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"detected_at\":\"2026-02-30T00:00:00Z\"}",
		      KX_EINVAL, "'detected_at'");
	declare_fails("{\"title\":\"t\",\"severity\":\"P1\",\"detected_at\":\"2026-11-25T20:30:00\"}",
		      KX_EINVAL, "'detected_at'");
}

static void declare_json_error_position(void **state)
{
	(void)state;
	declare_fails("{\n  \"title\": \"t\",\n  \"severity\": oops\n}", KX_EJSON,
		      "invalid JSON at line 3");
}

/* ---- changes ---- */

static int change(const char *body, enum kx_change_kind kind, struct kx_change *c,
		  struct kx_decoded *h, struct kx_err *err)
{
	kx_err_clear(err);
	return kx_decode_change(body, strlen(body), kind, c, h, err);
}

static void change_fails(const char *body, enum kx_change_kind kind, int code, const char *what)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	int rc = change(body, kind, &c, &h, &err);
	if (rc != code)
		fail_msg("%s (kind %d) gave %d (%s), expected %d", body, kind, rc, err.msg, code);
	assert_contains(err.msg, what);
	kx_decoded_release(&h);
}

static void change_status(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"status\":\"monitoring\",\"note\":\"error rate down\",\"version\":3}",
				KX_CHANGE_STATUS, &c, &h, &err),
			 0);
	assert_int_equal(c.kind, KX_CHANGE_STATUS);
	assert_int_equal(c.status, KX_STATUS_MONITORING);
	assert_string_equal(c.note, "error rate down");
	assert_true(c.expect_version == 3);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"status\":\"resolved\"}", KX_CHANGE_STATUS, &c, &h, &err), 0);
	assert_int_equal(c.status, KX_STATUS_RESOLVED);
	assert_null(c.note);
	assert_true(c.expect_version < 0); /* no optimistic check */
	kx_decoded_release(&h);
	change_fails("{}", KX_CHANGE_STATUS, KX_EINVAL, "'status' is required");
	change_fails("{\"status\":\"closed\"}", KX_CHANGE_STATUS, KX_EINVAL, "unknown status 'closed'");
	change_fails("{\"status\":1}", KX_CHANGE_STATUS, KX_EINVAL, "'status' must be a string");
	change_fails("{\"status\":\"resolved\",\"severity\":\"P1\"}", KX_CHANGE_STATUS, KX_EINVAL,
		     "unknown field 'severity'");
	change_fails("{\"status\":\"resolved\",\"note\":5}", KX_CHANGE_STATUS, KX_EINVAL,
		     "'note' must be a string");
}

static void change_version(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"version\":1}", KX_CHANGE_ACK, &c, &h, &err), 0);
	assert_true(c.expect_version == 1);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"version\":9223372036854775807}", KX_CHANGE_ACK, &c, &h, &err), 0);
	assert_true(c.expect_version == INT64_MAX);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"version\":null}", KX_CHANGE_ACK, &c, &h, &err), 0);
	assert_true(c.expect_version < 0);
	kx_decoded_release(&h);
	change_fails("{\"version\":0}", KX_CHANGE_ACK, KX_EINVAL, "'version' must be between 1");
	change_fails("{\"version\":-3}", KX_CHANGE_ACK, KX_EINVAL, "'version'");
	change_fails("{\"version\":1.5}", KX_CHANGE_ACK, KX_EINVAL, "'version' must be a whole number");
	change_fails("{\"version\":\"2\"}", KX_CHANGE_ACK, KX_EINVAL, "'version' must be a whole number");
}

static void change_severity(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"severity\":\"P0\",\"note\":\"data exposed\"}", KX_CHANGE_SEVERITY,
				&c, &h, &err),
			 0);
	assert_string_equal(c.severity, "P0");
	assert_string_equal(c.note, "data exposed");
	kx_decoded_release(&h);
	change_fails("{\"note\":\"x\"}", KX_CHANGE_SEVERITY, KX_EINVAL, "'severity' is required");
	change_fails("{\"severity\":0}", KX_CHANGE_SEVERITY, KX_EINVAL, "'severity' must be a string");
	change_fails("{\"severity\":\"P1\",\"status\":\"x\"}", KX_CHANGE_SEVERITY, KX_EINVAL,
		     "unknown field 'status'");
}

static void change_role(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"role\":\"commander\",\"person\":\"alice\"}", KX_CHANGE_ROLE, &c, &h,
				&err),
			 0);
	assert_string_equal(c.role, "commander");
	assert_string_equal(c.person, "alice");
	assert_false(c.remove);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"role\":\"sme\",\"person\":\"bob\",\"remove\":true,\"version\":4}",
				KX_CHANGE_ROLE, &c, &h, &err),
			 0);
	assert_true(c.remove);
	assert_true(c.expect_version == 4);
	kx_decoded_release(&h);
	change_fails("{\"person\":\"alice\"}", KX_CHANGE_ROLE, KX_EINVAL, "'role' is required");
	change_fails("{\"role\":\"commander\"}", KX_CHANGE_ROLE, KX_EINVAL, "'person' is required");
	change_fails("{\"role\":\"sme\",\"person\":\"bob\",\"remove\":\"yes\"}", KX_CHANGE_ROLE,
		     KX_EINVAL, "'remove' must be true or false");
	change_fails("{\"role\":\"sme\",\"person\":\"bob\",\"remove\":1}", KX_CHANGE_ROLE, KX_EINVAL,
		     "'remove' must be true or false");
	change_fails("{\"role\":\"sme\",\"person\":[\"bob\"]}", KX_CHANGE_ROLE, KX_EINVAL,
		     "'person' must be a string");
}

static void change_ack(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(kx_decode_change("", 0, KX_CHANGE_ACK, &c, &h, &err), 0);
	assert_int_equal(c.kind, KX_CHANGE_ACK);
	kx_decoded_release(&h);
	assert_int_equal(change("{}", KX_CHANGE_ACK, &c, &h, &err), 0);
	kx_decoded_release(&h);
	change_fails("{\"note\":\"x\"}", KX_CHANGE_ACK, KX_EINVAL, "unknown field 'note'");
	change_fails("[]", KX_CHANGE_ACK, KX_EJSON, "JSON object");
}

static void change_impact(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"users\":1200,\"accounts\":0,\"actions\":9007199254740992,"
				"\"revenue\":\"$5k\",\"description\":\"EU checkout\"}",
				KX_CHANGE_IMPACT, &c, &h, &err),
			 0);
	assert_true(c.impact.users == 1200);
	assert_true(c.impact.accounts == 0);
	assert_true(c.impact.actions == INT64_C(9007199254740992));
	assert_string_equal(c.impact.revenue, "$5k");
	assert_string_equal(c.impact.description, "EU checkout");
	kx_decoded_release(&h);
	/* absent counts stay unknown */
	assert_int_equal(change("{\"users\":5}", KX_CHANGE_IMPACT, &c, &h, &err), 0);
	assert_true(c.impact.users == 5);
	assert_true(c.impact.accounts == -1);
	assert_true(c.impact.actions == -1);
	assert_null(c.impact.revenue);
	assert_null(c.impact.description);
	kx_decoded_release(&h);
	/* an empty impact decodes; the core refuses it */
	assert_int_equal(change("{}", KX_CHANGE_IMPACT, &c, &h, &err), 0);
	kx_decoded_release(&h);
	change_fails("{\"users\":-1}", KX_CHANGE_IMPACT, KX_EINVAL, "'users' must be between 0");
	change_fails("{\"accounts\":9007199254740993}", KX_CHANGE_IMPACT, KX_EINVAL, "'accounts'");
	change_fails("{\"actions\":2.5}", KX_CHANGE_IMPACT, KX_EINVAL, "'actions' must be a whole number");
	change_fails("{\"users\":\"12\"}", KX_CHANGE_IMPACT, KX_EINVAL, "'users' must be a whole number");
	change_fails("{\"revenue\":5000}", KX_CHANGE_IMPACT, KX_EINVAL, "'revenue' must be a string");
	change_fails("{\"users\":1,\"severity\":\"P1\"}", KX_CHANGE_IMPACT, KX_EINVAL,
		     "unknown field 'severity'");
}

static void change_resolve(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"resolution\":\"rolled back\",\"root_cause\":\"bad config\"}",
				KX_CHANGE_RESOLVE, &c, &h, &err),
			 0);
	assert_string_equal(c.resolution, "rolled back");
	assert_string_equal(c.root_cause, "bad config");
	kx_decoded_release(&h);
	change_fails("{}", KX_CHANGE_RESOLVE, KX_EINVAL, "'resolution' is required");
	change_fails("{\"root_cause\":\"x\"}", KX_CHANGE_RESOLVE, KX_EINVAL, "'resolution' is required");
	change_fails("{\"resolution\":\"x\",\"note\":\"y\"}", KX_CHANGE_RESOLVE, KX_EINVAL,
		     "unknown field 'note'");
}

static void change_reopen(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"note\":\"errors are back\",\"version\":7}", KX_CHANGE_REOPEN, &c,
				&h, &err),
			 0);
	assert_string_equal(c.note, "errors are back");
	assert_true(c.expect_version == 7);
	kx_decoded_release(&h);
	assert_int_equal(change("{}", KX_CHANGE_REOPEN, &c, &h, &err), 0);
	assert_null(c.note);
	kx_decoded_release(&h);
	change_fails("{\"status\":\"investigating\"}", KX_CHANGE_REOPEN, KX_EINVAL,
		     "unknown field 'status'");
}

static void change_edit(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(change("{\"title\":\"New title\",\"summary\":\"s\",\"root_cause\":\"rc\","
				"\"types\":[\"OUTAGE\"],\"labels\":{\"client\":\"acme\",\"env\":null},"
				"\"version\":2}",
				KX_CHANGE_EDIT, &c, &h, &err),
			 0);
	assert_string_equal(c.edit.title, "New title");
	assert_string_equal(c.edit.summary, "s");
	assert_string_equal(c.edit.root_cause, "rc");
	assert_true(c.edit.set_types);
	assert_int_equal(c.edit.ntypes, 1);
	assert_string_equal(c.edit.types[0], "OUTAGE");
	assert_non_null(c.edit.labels_set);
	assert_int_equal(c.edit.labels_set->n, 1);
	assert_string_equal(kx_labels_get(c.edit.labels_set, "client"), "acme");
	/* null removes the label: only allowed in an edit */
	assert_int_equal(c.edit.nunset, 1);
	assert_string_equal(c.edit.labels_unset[0], "env");
	assert_true(c.expect_version == 2);
	kx_decoded_release(&h);
}

static void change_edit_types(void **state)
{
	struct kx_change c;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	/* an empty list is present (clears the types); absent is not */
	assert_int_equal(change("{\"types\":[]}", KX_CHANGE_EDIT, &c, &h, &err), 0);
	assert_true(c.edit.set_types);
	assert_int_equal(c.edit.ntypes, 0);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"title\":\"x\"}", KX_CHANGE_EDIT, &c, &h, &err), 0);
	assert_false(c.edit.set_types);
	assert_null(c.edit.summary);
	assert_int_equal(c.edit.nunset, 0);
	kx_decoded_release(&h);
	assert_int_equal(change("{\"types\":null}", KX_CHANGE_EDIT, &c, &h, &err), 0);
	assert_false(c.edit.set_types);
	kx_decoded_release(&h);
}

static void change_edit_refusals(void **state)
{
	(void)state;
	change_fails("{\"labels\":{\"Bad Key\":null}}", KX_CHANGE_EDIT, KX_EINVAL,
		     "invalid label key 'Bad Key'");
	change_fails("{\"labels\":{\"client\":5}}", KX_CHANGE_EDIT, KX_EINVAL,
		     "label 'client' must have a string value");
	change_fails("{\"labels\":{\"client\":\"\"}}", KX_CHANGE_EDIT, KX_EINVAL, "empty value");
	change_fails("{\"types\":[null]}", KX_CHANGE_EDIT, KX_EINVAL, "'types' must be an array");
	change_fails("{\"title\":1}", KX_CHANGE_EDIT, KX_EINVAL, "'title' must be a string");
	change_fails("{\"severity\":\"P1\"}", KX_CHANGE_EDIT, KX_EINVAL, "unknown field 'severity'");
	change_fails("{\"labels\":\"client=acme\"}", KX_CHANGE_EDIT, KX_EINVAL,
		     "'labels' must be an object");
}

static void change_every_kind_refuses_bad_json(void **state)
{
	(void)state;
	for (int k = KX_CHANGE_STATUS; k <= KX_CHANGE_EDIT; k++) {
		change_fails("{", (enum kx_change_kind)k, KX_EJSON, "invalid JSON");
		change_fails("[1,2]", (enum kx_change_kind)k, KX_EJSON, "must be a JSON object");
		change_fails("\"x\"", (enum kx_change_kind)k, KX_EJSON, "");
		change_fails("{\"bogus\":1}", (enum kx_change_kind)k, KX_EINVAL, "unknown field 'bogus'");
		change_fails("{\"version\":\"x\"}", (enum kx_change_kind)k, KX_EINVAL, "'version'");
	}
}

/* ---- notes ---- */

static void note(void **state)
{
	struct kx_decoded h;
	struct kx_err err;
	const char *text = NULL;
	kx_ms at = 0;
	(void)state;
	assert_int_equal(kx_decode_note(B("{\"text\":\"paged the db team\"}"), &text, &at, &h, &err), 0);
	assert_string_equal(text, "paged the db team");
	assert_true(at == KX_TIME_UNSET);
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("{\"text\":\"earlier\",\"at\":\"2026-11-25T20:00:00Z\"}"),
					&text, &at, &h, &err),
			 0);
	assert_true(at == T("2026-11-25T20:00:00Z"));
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note("", 0, &text, &at, &h, &err), KX_EINVAL);
	assert_contains(err.msg, "'text' is required");
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("{\"text\":\"x\",\"at\":\"now\"}"), &text, &at, &h, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "cannot parse 'at'");
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("{\"text\":\"x\",\"author\":\"me\"}"), &text, &at, &h, &err),
			 KX_EINVAL);
	assert_contains(err.msg, "unknown field 'author'");
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("{\"text\":[\"x\"]}"), &text, &at, &h, &err), KX_EINVAL);
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("{\"text\":\"x\""), &text, &at, &h, &err), KX_EJSON);
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_note(B("[\"text\"]"), &text, &at, &h, &err), KX_EJSON);
	kx_decoded_release(&h);
}

/* ---- action items ---- */

static void action_item(void **state)
{
	struct kx_action_item a;
	struct kx_decoded h;
	struct kx_err err;
	(void)state;
	assert_int_equal(kx_decode_action_item(B("{\"title\":\"Add 5xx alert\",\"kind\":\"detect\","
						 "\"owner\":\"carol\",\"due\":\"2026-12-01\"}"),
					       &a, &h, &err),
			 0);
	assert_string_equal(a.title, "Add 5xx alert");
	assert_int_equal(a.kind, KX_ITEM_DETECT);
	assert_string_equal(a.owner, "carol");
	assert_string_equal(a.due, "2026-12-01");
	assert_false(a.done);
	kx_decoded_release(&h); /* the item borrows from h: do not release it */
	assert_int_equal(kx_decode_action_item(B("{\"title\":\"Roll back\",\"kind\":\"mitigate\"}"), &a,
					       &h, &err),
			 0);
	assert_null(a.owner);
	assert_string_equal(a.due, "");
	assert_int_equal(a.kind, KX_ITEM_MITIGATE);
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_action_item(B("{\"title\":\"x\",\"kind\":\"prevent\",\"due\":null}"),
					       &a, &h, &err),
			 0);
	assert_int_equal(a.kind, KX_ITEM_PREVENT);
	assert_string_equal(a.due, "");
	kx_decoded_release(&h);
}

static void action_item_refusals(void **state)
{
	static const struct {
		const char *body;
		int code;
		const char *what;
	} cases[] = {
		{"", KX_EINVAL, "'title' is required"},
		{"{\"kind\":\"detect\"}", KX_EINVAL, "'title' is required"},
		{"{\"title\":\"x\"}", KX_EINVAL, "'kind' is required"},
		{"{\"title\":\"x\",\"kind\":\"fix\"}", KX_EINVAL, "unknown action item kind 'fix'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":\"2026-02-30\"}", KX_EINVAL,
		 "cannot parse 'due': '2026-02-30'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":\"2026-13-01\"}", KX_EINVAL, "'due'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":\"2026-12-01T00:00:00Z\"}", KX_EINVAL,
		 "'due'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":\"next week\"}", KX_EINVAL, "'due'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":\"2026-1-1\"}", KX_EINVAL, "'due'"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"due\":20261201}", KX_EINVAL,
		 "'due' must be a string"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"owner\":{}}", KX_EINVAL,
		 "'owner' must be a string"},
		{"{\"title\":\"x\",\"kind\":\"detect\",\"done\":true}", KX_EINVAL, "unknown field 'done'"},
		{"{\"title\":\"x\",\"kind\":\"detect\"", KX_EJSON, "invalid JSON"},
		{"null", KX_EJSON, ""},
		{"[]", KX_EJSON, "must be a JSON object"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_action_item a;
		struct kx_decoded h;
		struct kx_err err = {0};
		int rc = kx_decode_action_item(cases[i].body, strlen(cases[i].body), &a, &h, &err);
		if (rc != cases[i].code)
			fail_msg("%s gave %d (%s)", cases[i].body, rc, err.msg);
		assert_contains(err.msg, cases[i].what);
		kx_decoded_release(&h);
	}
}

/* ---- tokens ---- */

static void token(void **state)
{
	struct kx_decoded h;
	struct kx_err err;
	enum kx_access role = KX_ACCESS_NONE;
	const char *name = NULL;
	(void)state;
	assert_int_equal(kx_decode_token(B("{\"role\":\"responder\",\"name\":\"acme-bot\","
					   "\"labels\":{\"client\":\"acme\"}}"),
					 &role, &name, &h, &err),
			 0);
	assert_int_equal(role, KX_ACCESS_RESPONDER);
	assert_string_equal(name, "acme-bot");
	assert_int_equal(h.labels.n, 1);
	assert_string_equal(kx_labels_get(&h.labels, "client"), "acme");
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_token(B("{\"role\":\"viewer\",\"name\":\"dash\"}"), &role, &name, &h,
					 &err),
			 0);
	assert_int_equal(role, KX_ACCESS_VIEWER);
	assert_int_equal(h.labels.n, 0);
	kx_decoded_release(&h);
	assert_int_equal(kx_decode_token(B("{\"role\":\"admin\",\"name\":\"root\"}"), &role, &name, &h,
					 &err),
			 0);
	assert_int_equal(role, KX_ACCESS_ADMIN);
	kx_decoded_release(&h);
}

static void token_refusals(void **state)
{
	static const struct {
		const char *body;
		int code;
		const char *what;
	} cases[] = {
		{"", KX_EINVAL, "'role' is required"},
		{"{\"name\":\"x\"}", KX_EINVAL, "'role' is required"},
		{"{\"role\":\"viewer\"}", KX_EINVAL, "'name' is required"},
		{"{\"role\":\"none\",\"name\":\"x\"}", KX_EINVAL, "unknown role 'none'"},
		{"{\"role\":\"root\",\"name\":\"x\"}", KX_EINVAL, "unknown role 'root'"},
		{"{\"role\":\"Admin\",\"name\":\"x\"}", KX_EINVAL, "unknown role 'Admin'"},
		{"{\"role\":\"viewer\",\"name\":\"x\",\"labels\":{\"k\":null}}", KX_EINVAL,
		 "label 'k' must have a string value"},
		{"{\"role\":\"viewer\",\"name\":\"x\",\"labels\":{\"K\":\"v\"}}", KX_EINVAL,
		 "invalid label key 'K'"},
		{"{\"role\":\"viewer\",\"name\":\"x\",\"scope\":{}}", KX_EINVAL,
		 "unknown field 'scope'"},
		{"{\"role\":3,\"name\":\"x\"}", KX_EINVAL, "'role' must be a string"},
		{"{\"role\":\"viewer\",\"name\":\"x\"}}", KX_EJSON, "invalid JSON"},
		{"[\"viewer\"]", KX_EJSON, "JSON object"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_decoded h;
		struct kx_err err = {0};
		enum kx_access role;
		const char *name;
		int rc = kx_decode_token(cases[i].body, strlen(cases[i].body), &role, &name, &h, &err);
		if (rc != cases[i].code)
			fail_msg("%s gave %d (%s)", cases[i].body, rc, err.msg);
		assert_contains(err.msg, cases[i].what);
		kx_decoded_release(&h);
	}
}

/* ---- helpers used by the handlers ---- */

static void body_length_is_respected(void **state)
{
	json_t *j = NULL;
	struct kx_err err;
	static const char body[] = "{\"a\":1}garbage";
	(void)state;
	assert_int_equal(kx_json_parse_object(body, 7, &j, &err), 0);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);
	assert_int_equal(kx_json_parse_object(body, sizeof(body) - 1, &j, &err), KX_EJSON);
	assert_null(j);
	assert_int_equal(kx_json_parse_object("", 0, &j, &err), 0);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

static void json_field_helpers(void **state)
{
	json_t *j = json_loads("{\"s\":\"x\",\"n\":5,\"b\":false,\"z\":null,\"t\":\"2026-11-25T20:30:00Z\","
			       "\"arr\":[\"a\",\"b\"]}",
			       0, NULL);
	struct kx_err err;
	const char *s = "unset";
	int64_t n = -7;
	bool b = true;
	kx_ms t = 0;
	const char **arr = NULL;
	size_t na = 0;
	bool present = false;
	static const char *const allowed[] = {"s", "n", "b", "z", "t", "arr", NULL};
	static const char *const fewer[] = {"s", NULL};
	(void)state;
	assert_non_null(j);
	assert_int_equal(kx_json_check_keys(j, allowed, &err), 0);
	assert_int_equal(kx_json_check_keys(j, fewer, &err), KX_EINVAL);
	assert_int_equal(kx_json_str(j, "s", true, &s, &err), 0);
	assert_string_equal(s, "x");
	assert_int_equal(kx_json_str(j, "z", false, &s, &err), 0);
	assert_null(s);
	assert_int_equal(kx_json_str(j, "missing", true, &s, &err), KX_EINVAL);
	assert_int_equal(kx_json_int(j, "n", 0, 10, &n, &err), 0);
	assert_true(n == 5);
	assert_int_equal(kx_json_int(j, "n", 6, 10, &n, &err), KX_EINVAL);
	n = -7;
	assert_int_equal(kx_json_int(j, "missing", 0, 10, &n, &err), 0);
	assert_true(n == -7); /* absent leaves the default */
	assert_int_equal(kx_json_bool(j, "b", &b, &err), 0);
	assert_false(b);
	assert_int_equal(kx_json_bool(j, "n", &b, &err), KX_EINVAL);
	assert_int_equal(kx_json_time(j, "t", &t, &err), 0);
	assert_true(t == INT64_C(1795638600000));
	assert_int_equal(kx_json_time(j, "s", &t, &err), KX_EINVAL);
	assert_int_equal(kx_json_strings(j, "arr", &arr, &na, &present, &err), 0);
	assert_true(present);
	assert_int_equal(na, 2);
	assert_string_equal(arr[1], "b");
	free(arr);
	assert_int_equal(kx_json_strings(j, "missing", &arr, &na, &present, &err), 0);
	assert_false(present);
	assert_null(arr);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(declare_full_body),
		cmocka_unit_test(declare_minimal_body),
		cmocka_unit_test(declare_empty_body_is_an_empty_object),
		cmocka_unit_test(declare_malformed_json),
		cmocka_unit_test(declare_non_object),
		cmocka_unit_test(declare_unknown_field),
		cmocka_unit_test(declare_wrong_types),
		cmocka_unit_test(declare_labels_validated),
		cmocka_unit_test(declare_too_many_labels_or_types),
		cmocka_unit_test(declare_bad_times),
		cmocka_unit_test(declare_json_error_position),
		cmocka_unit_test(change_status),
		cmocka_unit_test(change_version),
		cmocka_unit_test(change_severity),
		cmocka_unit_test(change_role),
		cmocka_unit_test(change_ack),
		cmocka_unit_test(change_impact),
		cmocka_unit_test(change_resolve),
		cmocka_unit_test(change_reopen),
		cmocka_unit_test(change_edit),
		cmocka_unit_test(change_edit_types),
		cmocka_unit_test(change_edit_refusals),
		cmocka_unit_test(change_every_kind_refuses_bad_json),
		cmocka_unit_test(note),
		cmocka_unit_test(action_item),
		cmocka_unit_test(action_item_refusals),
		cmocka_unit_test(token),
		cmocka_unit_test(token_refusals),
		cmocka_unit_test(body_length_is_respected),
		cmocka_unit_test(json_field_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
