/* test_gate.c — core/gate: switches and their precedence, expiry and
 * ramps, caps and cooldowns at the edges of their windows, duplicate
 * suppression, batches, bounded memory, cap-spec errors, and a timed loop
 * that prints the check rate (it asserts nothing about speed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <time.h>

#include "core/gate.h"
#include "core/labels.h"
#include "core/selector.h"
#include "core/text.h"
#include "helpers.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* ---- helpers ---- */

/* "k=v,k=v" into an initialised label set. */
static void labels_from(struct kx_labels *ls, const char *text)
{
	char buf[1024], *p = buf;
	assert_true(strlen(text) < sizeof(buf));
	memcpy(buf, text, strlen(text) + 1);
	while (*p) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (kx_labels_add_pair(ls, p, NULL))
			fail_msg("bad label '%s'", p);
		p = comma ? comma + 1 : p + strlen(p);
	}
}

static struct kx_gate_switch sw_def(const char *id, const char *sel, enum kx_gate_mode mode)
{
	struct kx_gate_switch sw = {
		.id = id,
		.selector = sel,
		.mode = mode,
		.reason = "test",
		.set_by = "tester",
		.set_at = T0 - HOUR,
		.expires_at = KX_TIME_UNSET,
		.incident = NULL,
		.ramp = {.start = KX_TIME_UNSET},
	};
	return sw;
}

static void add_sw(struct kx_gate_snapshot *snap, const struct kx_gate_switch *sw)
{
	struct kx_err err = {0};
	if (kx_gate_snapshot_add_switch(snap, sw, &err))
		fail_msg("switch '%s': %s", sw->id, err.msg);
}

static void add_switch(struct kx_gate_snapshot *snap, const char *id, const char *sel,
		       enum kx_gate_mode mode)
{
	struct kx_gate_switch sw = sw_def(id, sel, mode);
	add_sw(snap, &sw);
}

static void add_cap(struct kx_gate_snapshot *snap, const char *id, const char *spec)
{
	struct kx_err err = {0};
	if (kx_gate_snapshot_add_cap(snap, id, spec, &err))
		fail_msg("cap '%s': %s", id, err.msg);
}

static void seal(struct kx_gate_snapshot *snap)
{
	struct kx_err err = {0};
	if (kx_gate_snapshot_seal(snap, &err))
		fail_msg("seal: %s", err.msg);
}

/* Runs one action through check (record = false) or decide. */
static struct kx_gate_decision run(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
				   const char *labels, const char *key, bool read_only, kx_ms now,
				   bool record)
{
	struct kx_labels ls;
	struct kx_gate_action act;
	struct kx_gate_decision d;
	struct kx_err err = {0};
	int rc;

	kx_labels_init(&ls);
	labels_from(&ls, labels);
	act.labels = &ls;
	act.idempotency_key = key;
	act.read_only = read_only;
	rc = record ? kx_gate_decide(snap, st, &act, now, &d, &err)
		    : kx_gate_check(snap, st, &act, now, &d, &err);
	if (rc)
		fail_msg("'%s': %s", labels, err.msg);
	kx_labels_release(&ls);
	return d;
}

/* A side effect, decided (and recorded when allowed). */
#define DO(labels, now) run(snap, st, (labels), NULL, false, (now), true)
#define DO_KEY(labels, key, now) run(snap, st, (labels), (key), false, (now), true)
#define READ(labels, now) run(snap, st, (labels), NULL, true, (now), true)
#define CHECK(labels, now) run(snap, st, (labels), NULL, false, (now), false)

#define assert_allow(d)                                                                       \
	do {                                                                                   \
		struct kx_gate_decision d_ = (d);                                              \
		if (d_.verdict != KX_GATE_ALLOW)                                               \
			fail_msg("expected allow, got %s by %s: %s",                           \
				 kx_gate_verdict_name(d_.verdict), kx_gate_by_name(d_.by),     \
				 d_.reason);                                                   \
		assert_null(d_.id);                                                            \
		assert_string_equal(d_.reason, "");                                            \
	} while (0)

#define assert_decision(d, verdict_, by_, id_)                                                \
	do {                                                                                   \
		struct kx_gate_decision d_ = (d);                                              \
		if (d_.verdict != (verdict_) || d_.by != (by_) || !d_.id ||                    \
		    strcmp(d_.id, (id_)) != 0)                                                 \
			fail_msg("expected %s by %s '%s', got %s by %s '%s': %s",              \
				 kx_gate_verdict_name(verdict_), kx_gate_by_name(by_), (id_),  \
				 kx_gate_verdict_name(d_.verdict), kx_gate_by_name(d_.by),     \
				 d_.id ? d_.id : "(null)", d_.reason);                         \
	} while (0)

#define assert_deny(d, by_, id_) assert_decision(d, KX_GATE_DENY, by_, id_)

/* Denied by a cap or ramp after exactly retry ms. */
#define assert_retry(d, by_, id_, retry)                                                      \
	do {                                                                                   \
		struct kx_gate_decision r_ = (d);                                              \
		assert_deny(r_, by_, id_);                                                     \
		if (r_.retry_after != (retry))                                                 \
			fail_msg("retry_after is %lld, expected %lld (%s)",                    \
				 (long long)r_.retry_after, (long long)(retry), r_.reason);    \
	} while (0)

/* ---- modes and names ---- */

static void modes_and_names(void **state)
{
	enum kx_gate_mode m;
	struct kx_err err = {0};
	(void)state;
	assert_int_equal(kx_gate_mode_parse("block", &m, &err), 0);
	assert_int_equal(m, KX_GATE_BLOCK);
	assert_int_equal(kx_gate_mode_parse("approve", &m, &err), 0);
	assert_int_equal(m, KX_GATE_APPROVE);
	assert_int_equal(kx_gate_mode_parse("read_only", &m, &err), 0);
	assert_int_equal(m, KX_GATE_READ_ONLY);
	assert_int_equal(kx_gate_mode_parse("stop", &m, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown switch mode 'stop' (use block, approve or read_only)");
	assert_int_equal(kx_gate_mode_parse("Block", &m, &err), KX_EINVAL);
	assert_string_equal(kx_gate_mode_name(KX_GATE_READ_ONLY), "read_only");
	assert_string_equal(kx_gate_verdict_name(KX_GATE_APPROVAL_REQUIRED), "approval_required");
	assert_string_equal(kx_gate_verdict_name(KX_GATE_DENY), "deny");
	assert_string_equal(kx_gate_by_name(KX_GATE_BY_DUPLICATE), "duplicate");
	assert_string_equal(kx_gate_by_name(KX_GATE_BY_CAP), "cap");
}

/* ---- cap specs ---- */

static char *cap_text(const struct kx_gate_cap *cap)
{
	struct kx_buf b;
	char *s;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_gate_cap_format(cap, &b), 0);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	return s;
}

static void cap_specs(void **state)
{
	static const char *const cases[][2] = {
		{"platform=instagram,action=comment: 200/1d", "action=comment,platform=instagram: 200/1d"},
		{"action=dm: 1/10s per account", "action=dm: 1/10s per account"},
		{"action=dm:1/ 10s   per\taccount  ", "action=dm: 1/10s per account"},
		{"client=acme: 1000/hour", "client=acme: 1000/1h"},
		{"client=acme: 1000 / day", "client=acme: 1000/1d"},
		{"action=like: 60/minute", "action=like: 60/1m"},
		{"action=like: 5/second", "action=like: 5/1s"},
		{"action=follow: 100/week", "action=follow: 100/7d"},
		{"action=dm: 3/1h30m per account", "action=dm: 3/1h30m per account"},
		{"action=delete: 0/1d", "action=delete: 0/1d"},
		{": 5000/1m", ": 5000/1m"},
		{"  : 5000/1m", ": 5000/1m"},
		{"target=\"a:b\": 1/1s", "target=a:b: 1/1s"}, /* ':' needs no quotes */
		{"target=a:b: 1/1s", "target=a:b: 1/1s"},
		{"action in (dm,comment): 10/1h per account", "action in (comment,dm): 10/1h per account"},
	};
	struct kx_gate_cap cap, back;
	struct kx_err err = {0};
	(void)state;
	kx_gate_cap_init(&cap);
	kx_gate_cap_init(&back);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s, *s2;
		if (kx_gate_cap_parse(&cap, cases[i][0], &err))
			fail_msg("'%s': %s", cases[i][0], err.msg);
		s = cap_text(&cap);
		if (strcmp(s, cases[i][1]) != 0)
			fail_msg("'%s' formats as '%s', expected '%s'", cases[i][0], s, cases[i][1]);
		/* and the canonical form parses back to the same cap */
		assert_int_equal(kx_gate_cap_parse(&back, s, &err), 0);
		s2 = cap_text(&back);
		assert_string_equal(s, s2);
		assert_true(kx_selector_equal(&cap.sel, &back.sel));
		assert_int_equal(cap.limit, back.limit);
		assert_int_equal(cap.window, back.window);
		assert_string_equal(cap.per, back.per);
		free(s);
		free(s2);
	}
	assert_int_equal(kx_gate_cap_parse(&cap, "action=dm: 1/10s per account", &err), 0);
	assert_int_equal(cap.limit, 1);
	assert_int_equal(cap.window, 10 * SEC);
	assert_string_equal(cap.per, "account");
	assert_int_equal(cap.sel.n, 1);
	assert_int_equal(kx_gate_cap_parse(&cap, "x=1: 1000000/1d", &err), 0);
	assert_int_equal(cap.limit, KX_GATE_LIMIT_MAX);
	assert_int_equal(kx_gate_cap_parse(&cap, "x=1: 1/366d", &err), 0);
	kx_gate_cap_release(&cap);
	kx_gate_cap_release(&back);
}

#define assert_cap_error(spec, want)                                                          \
	do {                                                                                   \
		struct kx_gate_cap c_;                                                         \
		struct kx_err e_ = {0};                                                        \
		kx_gate_cap_init(&c_);                                                         \
		if (kx_gate_cap_parse(&c_, (spec), &e_) != KX_EINVAL)                          \
			fail_msg("'%s' was accepted", (spec));                                 \
		if (strcmp(e_.msg, (want)) != 0)                                               \
			fail_msg("'%s': message is\n  \"%s\"\nexpected\n  \"%s\"", (spec),    \
				 e_.msg, (want));                                              \
		assert_int_equal(c_.sel.n, 0);                                                 \
		assert_int_equal(c_.limit, 0);                                                 \
		kx_gate_cap_release(&c_);                                                      \
	} while (0)

static void cap_spec_errors(void **state)
{
	(void)state;
	assert_cap_error("action=dm 1/10s",
			 "cannot parse cap at column 16: expected ':' between the selector and the "
			 "limit (like 'action=dm: 1/10s')");
	assert_cap_error("action=dm: 1/0s",
			 "cannot parse cap at column 14: window '0s' must be longer than zero");
	assert_cap_error("action=dm: 1/0d per account",
			 "cannot parse cap at column 14: window '0d' must be longer than zero");
	assert_cap_error("action=dm: 1/-10s",
			 "cannot parse cap at column 14: window '-10s' is negative");
	assert_cap_error("action=dm: 1/ten",
			 "cannot parse cap at column 14: window 'ten' is not a duration (like 10s, "
			 "1h30m, 1d or day)");
	assert_cap_error("action=dm: 1/10",
			 "cannot parse cap at column 14: window '10' is not a duration (like 10s, "
			 "1h30m, 1d or day)");
	assert_cap_error("action=dm: 1/400d",
			 "cannot parse cap at column 14: window '400d' is longer than 366 days");
	assert_cap_error("action=dm: 5/",
			 "cannot parse cap at column 14: expected a window after '/' (like 10s, 1h or day)");
	assert_cap_error("action=dm: x/10s",
			 "cannot parse cap at column 12: expected a number after ':' (like '200/1d')");
	assert_cap_error("action=dm: ",
			 "cannot parse cap at column 12: expected a number after ':' (like '200/1d')");
	assert_cap_error("action=dm: -1/10s",
			 "cannot parse cap at column 12: the limit must not be negative");
	assert_cap_error("action=dm: 1.5/10s",
			 "cannot parse cap at column 12: limit '1.5' is not a whole number");
	assert_cap_error("action=dm: 2x/10s",
			 "cannot parse cap at column 12: limit '2x' is not a whole number");
	assert_cap_error("action=dm: 1000001/1d",
			 "cannot parse cap at column 12: limit 1000001 is over 1000000");
	assert_cap_error("action=dm: 99999999999999999999999/1d",
			 "cannot parse cap at column 12: limit 99999999999999999999999 is over 1000000");
	assert_cap_error("action=dm: 5",
			 "cannot parse cap at column 13: expected '/' and a window after the limit 5");
	assert_cap_error("action=dm: 5 per account",
			 "cannot parse cap at column 14: expected '/' and a window after the limit 5");
	assert_cap_error("action=dm: 1/10s for account",
			 "cannot parse cap at column 18: unknown word 'for' after the window "
			 "(expected 'per' and a label key)");
	assert_cap_error("action=dm: 1/10s per",
			 "cannot parse cap at column 21: expected a label key after 'per'");
	assert_cap_error("action=dm: 1/10s per Account",
			 "cannot parse cap at column 22: invalid label key 'Account': use lowercase "
			 "letters, digits, '_', '.' and '-'");
	assert_cap_error("action=dm: 1/10s per account extra",
			 "cannot parse cap at column 30: unexpected 'extra' after 'per account'");
	assert_cap_error("action: 1/10s",
			 "cannot parse cap at column 7: expected '=' after 'action'");
	assert_cap_error("action=dm,action=like: 1/10s",
			 "cannot parse cap at column 11: 'action' appears twice (use 'action in "
			 "(a,b)' to match either value)");
}

/* ---- switches ---- */

static void switch_modes(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("sw-acme", "client=acme", KX_GATE_BLOCK);
	struct kx_gate_decision d;
	(void)state;
	sw.reason = "wrong-account posts";
	sw.incident = "INC-20260101-0001";
	add_sw(snap, &sw);
	add_switch(snap, "sw-globex", "client=globex", KX_GATE_READ_ONLY);
	add_switch(snap, "sw-initech", "client = initech", KX_GATE_APPROVE);
	seal(snap);

	/* block: side effects and reads */
	d = DO("client=acme,action=comment", T0);
	assert_deny(d, KX_GATE_BY_SWITCH, "sw-acme");
	assert_int_equal(d.retry_after, KX_GATE_NEVER);
	assert_non_null(d.sw);
	assert_string_equal(d.sw->incident, "INC-20260101-0001");
	assert_string_equal(d.sw->set_by, "tester");
	assert_int_equal(d.sw->mode, KX_GATE_BLOCK);
	assert_null(d.cap);
	assert_string_equal(d.reason, "switch 'sw-acme' blocks actions matching 'client=acme': "
				      "wrong-account posts");
	assert_deny(READ("client=acme,action=fetch", T0), KX_GATE_BY_SWITCH, "sw-acme");

	/* read_only: side effects refused, reads pass */
	d = DO("client=globex,action=dm", T0);
	assert_deny(d, KX_GATE_BY_SWITCH, "sw-globex");
	assert_string_equal(d.reason, "switch 'sw-globex' allows only reads for actions matching "
				      "'client=globex': test");
	assert_allow(READ("client=globex,action=fetch", T0));

	/* approve: side effects wait for a human, reads pass */
	d = DO("client=initech,action=publish", T0);
	assert_decision(d, KX_GATE_APPROVAL_REQUIRED, KX_GATE_BY_SWITCH, "sw-initech");
	assert_string_equal(d.sw->selector, "client=initech"); /* canonical */
	assert_string_equal(d.reason, "switch 'sw-initech' requires approval for actions matching "
				      "'client=initech': test");
	assert_allow(READ("client=initech,action=fetch", T0));

	/* no switch covers other clients, nor actions without a client */
	assert_allow(DO("client=umbrella,action=comment", T0));
	assert_allow(DO("action=comment", T0));

	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* Reasons and messages go into JSON and logs: always one line of valid UTF-8. */
static void messages_are_clean_text(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("s", "client=acme", KX_GATE_BLOCK);
	struct kx_gate_decision d;
	struct kx_gate_cap cap;
	struct kx_err err = {0};
	char *long_reason = repeat("é", 200);
	enum kx_gate_mode m;
	(void)state;
	sw.reason = "line one\nline\ttwo \xff";
	add_sw(snap, &sw);
	sw = sw_def("s2", "client=globex", KX_GATE_BLOCK);
	sw.reason = long_reason; /* cut somewhere, never inside a character */
	add_sw(snap, &sw);
	seal(snap);
	d = DO("client=acme", T0);
	assert_string_equal(d.reason, "switch 's' blocks actions matching 'client=acme': line one "
				      "line two ?");
	assert_string_equal(d.sw->reason, "line one\nline\ttwo \xff"); /* kept as given */
	d = DO("client=globex", T0);
	assert_int_equal(kx_text_check(d.reason, strlen(d.reason), 0), 0);
	assert_int_equal(kx_gate_mode_parse("\xc3(\n", &m, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown switch mode '?( ' (use block, approve or read_only)");
	kx_gate_cap_init(&cap);
	assert_int_equal(kx_gate_cap_parse(&cap, "a=b: 1/1s per k\x01\xe2\x82", &err), KX_EINVAL);
	assert_int_equal(kx_text_check(err.msg, strlen(err.msg), 0), 0);
	assert_int_equal(kx_gate_cap_parse(&cap, "\xff=1: 1/1s", &err), KX_EINVAL);
	assert_int_equal(kx_text_check(err.msg, strlen(err.msg), 0), 0);
	assert_contains(err.msg, "invalid label key '?'");
	free(long_reason);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void global_switch(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("stop-all", "", KX_GATE_BLOCK);
	struct kx_gate_decision d;
	(void)state;
	sw.reason = NULL;
	add_sw(snap, &sw);
	seal(snap);
	d = DO("client=acme,action=comment", T0);
	assert_deny(d, KX_GATE_BY_SWITCH, "stop-all");
	assert_string_equal(d.reason, "switch 'stop-all' blocks all actions");
	assert_deny(DO("", T0), KX_GATE_BY_SWITCH, "stop-all");
	assert_deny(READ("lane=browser", T0), KX_GATE_BY_SWITCH, "stop-all");
	assert_null(d.sw->reason);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void switch_precedence(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw;
	(void)state;
	/* acme: approve everywhere, read_only on instagram, block on the browser lane */
	add_switch(snap, "appr", "client=acme", KX_GATE_APPROVE);
	add_switch(snap, "ro", "client=acme,platform=instagram", KX_GATE_READ_ONLY);
	add_switch(snap, "blk", "client=acme,lane=browser", KX_GATE_BLOCK);
	/* globex: two blocks of different specificity */
	add_switch(snap, "g-wide", "client=globex", KX_GATE_BLOCK);
	add_switch(snap, "g-narrow", "client=globex,action=dm", KX_GATE_BLOCK);
	/* initech: equally specific blocks; the oldest is named, then the smallest id */
	sw = sw_def("i-new", "client=initech,platform=x", KX_GATE_BLOCK);
	sw.set_at = T0 - MIN;
	add_sw(snap, &sw);
	sw = sw_def("i-old", "client=initech,lane=x", KX_GATE_BLOCK);
	sw.set_at = T0 - DAY;
	add_sw(snap, &sw);
	sw = sw_def("i-b", "client=initech,target=t", KX_GATE_BLOCK);
	sw.set_at = T0 - 2 * DAY;
	add_sw(snap, &sw);
	sw = sw_def("i-a", "client=initech,action=like", KX_GATE_BLOCK);
	sw.set_at = T0 - 2 * DAY;
	add_sw(snap, &sw);
	/* umbrella: approve, but a cap and a duplicate come first */
	add_switch(snap, "u-appr", "client=umbrella", KX_GATE_APPROVE);
	add_cap(snap, "u-cap", "client=umbrella,action=dm: 0/1d");
	seal(snap);

	/* block beats read_only beats approve */
	assert_deny(DO("client=acme,platform=instagram,lane=browser,action=dm", T0),
		    KX_GATE_BY_SWITCH, "blk");
	assert_deny(READ("client=acme,platform=instagram,lane=browser,action=fetch", T0),
		    KX_GATE_BY_SWITCH, "blk");
	/* a side effect that read_only refuses is not offered for approval */
	assert_deny(DO("client=acme,platform=instagram,lane=api,action=dm", T0),
		    KX_GATE_BY_SWITCH, "ro");
	/* reads pass both read_only and approve */
	assert_allow(READ("client=acme,platform=instagram,lane=api,action=fetch", T0));
	assert_decision(DO("client=acme,platform=tiktok,lane=api,action=dm", T0),
			KX_GATE_APPROVAL_REQUIRED, KX_GATE_BY_SWITCH, "appr");

	/* the most specific switch is named */
	assert_deny(DO("client=globex,action=dm", T0), KX_GATE_BY_SWITCH, "g-narrow");
	assert_deny(DO("client=globex,action=like", T0), KX_GATE_BY_SWITCH, "g-wide");

	/* same specificity: the oldest; same age: the smallest id */
	assert_deny(DO("client=initech,platform=x", T0), KX_GATE_BY_SWITCH, "i-new");
	assert_deny(DO("client=initech,platform=x,lane=x", T0), KX_GATE_BY_SWITCH, "i-old");
	assert_deny(DO("client=initech,platform=x,lane=x,target=t,action=like", T0),
		    KX_GATE_BY_SWITCH, "i-a");

	/* denials come before approval: a cap, a duplicate */
	assert_deny(DO("client=umbrella,action=dm", T0), KX_GATE_BY_CAP, "u-cap");
	assert_decision(DO_KEY("client=umbrella,action=comment", "k1", T0),
			KX_GATE_APPROVAL_REQUIRED, KX_GATE_BY_SWITCH, "u-appr");
	/* approval_required records nothing: the same key asks again */
	assert_decision(DO_KEY("client=umbrella,action=comment", "k1", T0),
			KX_GATE_APPROVAL_REQUIRED, KX_GATE_BY_SWITCH, "u-appr");
	/* once a human approved it, the service records it: then it is a duplicate */
	{
		struct kx_labels ls;
		struct kx_gate_action act = {.idempotency_key = "k1"};
		kx_labels_init(&ls);
		labels_from(&ls, "client=umbrella,action=comment");
		act.labels = &ls;
		assert_int_equal(kx_gate_record(snap, st, &act, T0, NULL), 0);
		kx_labels_release(&ls);
	}
	assert_deny(DO_KEY("client=umbrella,action=comment", "k1", T0 + SEC),
		    KX_GATE_BY_DUPLICATE, "duplicate");

	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void switch_expiry(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("tmp", "client=acme", KX_GATE_BLOCK);
	(void)state;
	sw.expires_at = T0 + MIN;
	sw.set_at = T0 + HOUR; /* a clock ahead of ours set it: it applies at once anyway */
	add_sw(snap, &sw);
	add_switch(snap, "ro", "client=acme", KX_GATE_READ_ONLY);
	sw = sw_def("gone", "client=globex", KX_GATE_BLOCK);
	sw.expires_at = T0 - 1;
	add_sw(snap, &sw);
	seal(snap);
	assert_deny(DO("client=acme,action=dm", T0), KX_GATE_BY_SWITCH, "tmp");
	assert_deny(DO("client=acme,action=dm", T0 + MIN - 1), KX_GATE_BY_SWITCH, "tmp");
	/* at expires_at the block is gone and the read_only switch is what is left */
	assert_deny(DO("client=acme,action=dm", T0 + MIN), KX_GATE_BY_SWITCH, "ro");
	assert_allow(READ("client=acme,action=fetch", T0 + MIN));
	assert_deny(READ("client=acme,action=fetch", T0 + MIN - 1), KX_GATE_BY_SWITCH, "tmp");
	assert_allow(DO("client=globex,action=dm", T0));
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- ramps ---- */

static void ramp(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("stop-acme", "client=acme", KX_GATE_BLOCK);
	const kx_ms s = T0 + MIN, e = s + 10 * MIN;
	struct kx_gate_decision d;
	(void)state;
	/* 2 per 5 minutes at the start, 12 per 5 minutes after ten minutes */
	sw.ramp = (struct kx_gate_ramp){.start = s, .end = e, .window = 5 * MIN, .floor = 2,
					 .peak = 12};
	add_sw(snap, &sw);
	seal(snap);

	/* before the ramp the switch blocks */
	assert_deny(DO("client=acme,action=dm", s - 1), KX_GATE_BY_SWITCH, "stop-acme");
	/* at its start: the floor */
	assert_allow(DO("client=acme,action=dm", s));
	assert_allow(READ("client=acme,action=fetch", s)); /* a block ramp counts reads too */
	d = DO("client=acme,action=dm", s);
	/* the limit reaches 3 after a tenth of the ramp, long before the first
	 * event leaves its 5-minute window */
	assert_retry(d, KX_GATE_BY_RAMP, "stop-acme", MIN);
	assert_non_null(d.sw);
	assert_null(d.cap);
	assert_string_equal(d.reason, "switch 'stop-acme' is resuming gradually: 2 per 5m "
				      "allowed now for actions matching 'client=acme'; retry in 1m");
	assert_retry(DO("client=acme,action=dm", s + MIN - 1), KX_GATE_BY_RAMP, "stop-acme", 1);
	assert_allow(DO("client=acme,action=dm", s + MIN));
	assert_retry(DO("client=acme,action=dm", s + MIN), KX_GATE_BY_RAMP, "stop-acme", MIN);
	/* just before halfway the limit is 2 + 10 * 4.99/10 = 6, 3 already counted */
	for (int i = 0; i < 3; i++)
		assert_allow(DO("client=acme,action=dm", s + 5 * MIN - 1));
	/* 6 counted: at s+5m the limit is 7 and the two events of s leave */
	assert_retry(DO("client=acme,action=dm", s + 5 * MIN - 1), KX_GATE_BY_RAMP, "stop-acme", 1);
	assert_allow(DO("client=acme,action=dm", s + 5 * MIN));
	assert_allow(DO("client=acme,action=dm", s + 5 * MIN));
	assert_allow(DO("client=acme,action=dm", s + 5 * MIN));
	/* 7 counted (s+1m, 3 at s+5m-1, 3 at s+5m), limit 7: the limit reaches 8
	 * at s+6m, the same moment the event of s+1m leaves */
	assert_retry(DO("client=acme,action=dm", s + 5 * MIN), KX_GATE_BY_RAMP, "stop-acme", MIN);
	/* other clients never were covered */
	assert_allow(DO("client=globex,action=dm", s));
	/* at its end the switch is gone altogether */
	for (int i = 0; i < 50; i++)
		assert_allow(DO("client=acme,action=dm", e));
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void ramp_edges(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw;
	const kx_ms s = T0;
	(void)state;
	/* from zero: nothing at the start, the first action after 1/peak of the ramp */
	sw = sw_def("zero", "client=a", KX_GATE_BLOCK);
	sw.ramp = (struct kx_gate_ramp){.start = s, .end = s + 1000 * SEC, .window = MIN,
					 .floor = 0, .peak = 10};
	add_sw(snap, &sw);
	/* flat: 2 per minute throughout; the wait is for events to leave */
	sw = sw_def("flat", "client=b", KX_GATE_BLOCK);
	sw.ramp = (struct kx_gate_ramp){.start = s, .end = s + HOUR, .window = MIN, .floor = 2,
					 .peak = 2};
	add_sw(snap, &sw);
	/* approve: the ramp limits side effects only */
	sw = sw_def("appr", "client=c", KX_GATE_APPROVE);
	sw.ramp = (struct kx_gate_ramp){.start = s, .end = s + HOUR, .window = MIN, .floor = 1,
					 .peak = 1};
	add_sw(snap, &sw);
	/* a ramp that ends before a full window: the wait is until it ends */
	sw = sw_def("short", "client=d", KX_GATE_BLOCK);
	sw.ramp = (struct kx_gate_ramp){.start = s, .end = s + 30 * SEC, .window = HOUR,
					 .floor = 1, .peak = 1};
	add_sw(snap, &sw);
	seal(snap);

	assert_retry(DO("client=a,action=dm", s), KX_GATE_BY_RAMP, "zero", 100 * SEC);
	assert_allow(DO("client=a,action=dm", s + 100 * SEC));

	assert_allow(DO("client=b,action=dm", s));
	assert_allow(DO("client=b,action=dm", s + 10 * SEC));
	assert_retry(DO("client=b,action=dm", s + 20 * SEC), KX_GATE_BY_RAMP, "flat", 40 * SEC);
	assert_allow(DO("client=b,action=dm", s + MIN));

	assert_allow(DO("client=c,action=dm", s));
	assert_retry(DO("client=c,action=dm", s), KX_GATE_BY_RAMP, "appr", MIN);
	for (int i = 0; i < 5; i++)
		assert_allow(READ("client=c,action=fetch", s));

	assert_allow(DO("client=d,action=dm", s));
	assert_retry(DO("client=d,action=dm", s + 10 * SEC), KX_GATE_BY_RAMP, "short", 20 * SEC);
	assert_allow(DO("client=d,action=dm", s + 30 * SEC));
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- caps and cooldowns ---- */

static void caps_scope_and_per_key(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_decision d;
	(void)state;
	add_cap(snap, "comments", "platform=instagram,action=comment: 2/1h");
	add_cap(snap, "dm-cooldown", "action=dm: 1/10s per account");
	add_cap(snap, "no-deletes", "action=delete: 0/1d");
	add_cap(snap, "fetches", "platform=x,action=fetch: 1/1m");
	seal(snap);

	/* one counter for the whole scope */
	assert_allow(DO("platform=instagram,action=comment,account=@a", T0));
	assert_allow(DO("platform=instagram,action=comment,account=@b", T0 + SEC));
	d = DO("platform=instagram,action=comment,account=@c", T0 + 2 * SEC);
	assert_retry(d, KX_GATE_BY_CAP, "comments", HOUR - 2 * SEC);
	assert_non_null(d.cap);
	assert_int_equal(d.cap->limit, 2);
	assert_null(d.sw);
	assert_string_equal(d.reason, "cap 'comments' allows 2 per 1h for actions matching "
				      "'action=comment,platform=instagram'; retry in 59m58s");
	/* outside the scope: unaffected */
	assert_allow(DO("platform=tiktok,action=comment,account=@c", T0 + 2 * SEC));

	/* a cooldown per account */
	assert_allow(DO("action=dm,account=@a", T0));
	d = DO("action=dm,account=@a", T0 + 4 * SEC);
	assert_retry(d, KX_GATE_BY_CAP, "dm-cooldown", 6 * SEC);
	assert_string_equal(d.reason, "cap 'dm-cooldown' allows 1 per 10s for actions matching "
				      "'action=dm' (per account '@a'); retry in 6s");
	assert_allow(DO("action=dm,account=@b", T0 + 4 * SEC));
	assert_allow(DO("action=dm,account=@a", T0 + 10 * SEC));
	/* actions without the label share one counter: not exempt */
	assert_allow(DO("action=dm", T0));
	d = DO("action=dm", T0 + SEC);
	assert_retry(d, KX_GATE_BY_CAP, "dm-cooldown", 9 * SEC);
	assert_contains(d.reason, "(per account '(none)')");

	/* N = 0: nothing, and waiting will not help */
	d = DO("action=delete,account=@a", T0);
	assert_retry(d, KX_GATE_BY_CAP, "no-deletes", KX_GATE_NEVER);
	assert_string_equal(d.reason, "cap 'no-deletes' allows 0 per 1d for actions matching "
				      "'action=delete'; waiting will not help");

	/* caps count reads when their selector matches them */
	assert_allow(READ("platform=x,action=fetch", T0));
	assert_retry(READ("platform=x,action=fetch", T0 + SEC), KX_GATE_BY_CAP, "fetches",
		     59 * SEC);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void sliding_window_boundaries(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	(void)state;
	add_cap(snap, "c", "action=dm: 2/10s");
	seal(snap);
	assert_allow(DO("action=dm", T0));
	assert_allow(DO("action=dm", T0 + 3 * SEC));
	assert_retry(DO("action=dm", T0 + 5 * SEC), KX_GATE_BY_CAP, "c", 5 * SEC);
	assert_retry(DO("action=dm", T0 + 10 * SEC - 1), KX_GATE_BY_CAP, "c", 1);
	/* an event at t counts while now - t < W: at t + W it has left */
	assert_allow(CHECK("action=dm", T0 + 10 * SEC));
	assert_allow(CHECK("action=dm", T0 + 10 * SEC)); /* check alone records nothing */
	assert_allow(DO("action=dm", T0 + 10 * SEC));
	/* now T0+3s and T0+10s are counted */
	assert_retry(DO("action=dm", T0 + 10 * SEC), KX_GATE_BY_CAP, "c", 3 * SEC);
	assert_retry(DO("action=dm", T0 + 13 * SEC - 1), KX_GATE_BY_CAP, "c", 1);
	assert_allow(DO("action=dm", T0 + 13 * SEC));
	assert_retry(DO("action=dm", T0 + 13 * SEC), KX_GATE_BY_CAP, "c", 7 * SEC);
	/* long after: all gone */
	assert_allow(DO("action=dm", T0 + DAY));
	assert_allow(DO("action=dm", T0 + DAY));
	assert_retry(DO("action=dm", T0 + DAY), KX_GATE_BY_CAP, "c", 10 * SEC);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void several_caps(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	(void)state;
	add_cap(snap, "dm", "action=dm: 1/10s");
	add_cap(snap, "acme", "client=acme: 1/1m");
	/* two caps that always deny: the first defined is named, whatever
	 * order the index visits them in */
	add_cap(snap, "z-first", "client=globex: 0/1d");
	add_cap(snap, "a-second", "action=dm,client=globex: 0/1d");
	seal(snap);
	assert_allow(DO("client=acme,action=dm", T0));
	/* both deny: the longer wait is the truth */
	assert_retry(DO("client=acme,action=dm", T0 + SEC), KX_GATE_BY_CAP, "acme", 59 * SEC);
	assert_retry(DO("client=other,action=dm", T0 + SEC), KX_GATE_BY_CAP, "dm", 9 * SEC);
	assert_retry(DO("client=acme,action=like", T0 + SEC), KX_GATE_BY_CAP, "acme", 59 * SEC);
	/* an action allowed by every cap is counted in every cap */
	assert_allow(DO("client=acme,action=dm", T0 + MIN));
	assert_retry(DO("client=other,action=dm", T0 + MIN), KX_GATE_BY_CAP, "dm", 10 * SEC);
	assert_retry(DO("client=globex,action=dm", T0), KX_GATE_BY_CAP, "z-first", KX_GATE_NEVER);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- duplicates ---- */

static void duplicates(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_decision d;
	(void)state;
	add_cap(snap, "never", "action=delete: 0/1d");
	seal(snap);
	assert_allow(DO_KEY("action=comment,target=post/1", "k1", T0));
	d = DO_KEY("action=comment,target=post/1", "k1", T0 + SEC);
	assert_deny(d, KX_GATE_BY_DUPLICATE, "duplicate");
	assert_int_equal(d.retry_after, KX_GATE_NEVER);
	assert_string_equal(d.reason, "idempotency key 'k1' was already allowed 1s ago "
				      "(duplicate window 1d)");
	/* the key alone decides, not the labels */
	assert_deny(DO_KEY("action=like", "k1", T0 + SEC), KX_GATE_BY_DUPLICATE, "duplicate");
	assert_allow(DO_KEY("action=comment,target=post/1", "k2", T0 + SEC));
	/* no key, no suppression */
	assert_allow(DO_KEY("action=comment,target=post/1", "", T0 + SEC));
	assert_allow(DO_KEY("action=comment,target=post/1", NULL, T0 + SEC));
	/* the window's edges */
	assert_deny(DO_KEY("action=comment", "k1", T0 + DAY - 1), KX_GATE_BY_DUPLICATE, "duplicate");
	assert_allow(DO_KEY("action=comment", "k1", T0 + DAY));
	/* allowed anew: its window starts again */
	assert_deny(DO_KEY("action=comment", "k1", T0 + DAY + 1), KX_GATE_BY_DUPLICATE, "duplicate");
	/* the same for a key that expired behind others still waiting to be
	 * dropped (expired keys go a few per record) */
	for (int i = 0; i < 6; i++) {
		char k[8];
		snprintf(k, sizeof(k), "e%d", i);
		assert_allow(DO_KEY("action=comment", k, T0 + 2 * DAY));
	}
	assert_allow(DO_KEY("action=comment", "e5", T0 + 3 * DAY));
	assert_deny(DO_KEY("action=comment", "e5", T0 + 3 * DAY + 1), KX_GATE_BY_DUPLICATE,
		    "duplicate");
	assert_allow(DO_KEY("action=comment", "e4", T0 + 3 * DAY + 1));
	/* a denied action does not consume its key */
	assert_deny(DO_KEY("action=delete", "k3", T0), KX_GATE_BY_CAP, "never");
	assert_allow(DO_KEY("action=comment", "k3", T0));
	/* reads with a key are suppressed too */
	assert_allow(run(snap, st, "action=fetch", "k4", true, T0, true));
	assert_deny(run(snap, st, "action=fetch", "k4", true, T0, true), KX_GATE_BY_DUPLICATE,
		    "duplicate");
	kx_gate_snapshot_free(snap);

	/* a shorter window, and suppression turned off */
	snap = kx_gate_snapshot_new();
	assert_int_equal(kx_gate_snapshot_set_dedupe_window(snap, 10 * SEC, NULL), 0);
	seal(snap);
	assert_allow(DO_KEY("action=comment", "w1", T0));
	assert_deny(DO_KEY("action=comment", "w1", T0 + 10 * SEC - 1), KX_GATE_BY_DUPLICATE,
		    "duplicate");
	assert_allow(DO_KEY("action=comment", "w1", T0 + 10 * SEC));
	kx_gate_snapshot_free(snap);
	snap = kx_gate_snapshot_new();
	assert_int_equal(kx_gate_snapshot_set_dedupe_window(snap, 0, NULL), 0);
	seal(snap);
	assert_allow(DO_KEY("action=comment", "w2", T0));
	assert_allow(DO_KEY("action=comment", "w2", T0));
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- batches ---- */

static void batch(void **state)
{
	static const char *const labels[] = {
		"client=acme,action=dm,account=@a", "client=acme,action=dm,account=@a",
		"client=acme,action=comment,account=@a", "client=acme,action=dm,account=@a",
		"client=acme,action=dm,account=@b", "client=globex,action=dm,account=@c",
	};
	static const char *const keys[] = {"k1", "k1", "k2", "k3", "k4", "k5"};
	enum { N = 6 };
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_labels ls[N];
	struct kx_gate_action acts[N];
	struct kx_gate_decision out[N];
	struct kx_err err = {0};
	(void)state;
	add_cap(snap, "cool", "action=dm: 1/10s per account");
	add_switch(snap, "g", "client=globex", KX_GATE_APPROVE);
	seal(snap);
	for (int i = 0; i < N; i++) {
		kx_labels_init(&ls[i]);
		labels_from(&ls[i], labels[i]);
		acts[i] = (struct kx_gate_action){&ls[i], keys[i], false};
	}
	/* an invalid action fails the whole batch before anything is decided */
	acts[4].idempotency_key = "bad\nkey";
	assert_int_equal(kx_gate_check_batch(snap, st, acts, N, T0, out, &err), KX_EINVAL);
	assert_string_equal(err.msg,
			    "action 5: idempotency key has control characters or invalid UTF-8");
	acts[4].idempotency_key = keys[4];
	assert_int_equal(kx_gate_check_batch(snap, st, acts, N, T0, out, &err), 0);
	assert_allow(out[0]);
	assert_deny(out[1], KX_GATE_BY_DUPLICATE, "duplicate"); /* k1 again */
	assert_allow(out[2]);
	assert_deny(out[3], KX_GATE_BY_CAP, "cool"); /* @a just DMed in this batch */
	assert_int_equal(out[3].retry_after, 10 * SEC);
	assert_allow(out[4]);
	assert_decision(out[5], KX_GATE_APPROVAL_REQUIRED, KX_GATE_BY_SWITCH, "g");
	/* the batch's effects stay: the same batch later sees them all */
	assert_int_equal(kx_gate_check_batch(snap, st, acts, N, T0 + SEC, out, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(out[i].verdict, KX_GATE_DENY);
	assert_deny(out[0], KX_GATE_BY_DUPLICATE, "duplicate");
	assert_deny(out[3], KX_GATE_BY_CAP, "cool");
	assert_int_equal(kx_gate_check_batch(snap, st, acts, 0, T0, out, &err), 0);
	for (int i = 0; i < N; i++)
		kx_labels_release(&ls[i]);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- state across snapshots, odd clocks ---- */

static void counters_survive_snapshot_swaps(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	(void)state;
	add_cap(snap, "c1", "action=dm: 1/1m");
	seal(snap);
	assert_allow(DO("action=dm", T0));
	kx_gate_snapshot_free(snap);

	/* a new snapshot (a switch was added elsewhere): the cap still remembers */
	snap = kx_gate_snapshot_new();
	add_switch(snap, "other", "client=zzz", KX_GATE_BLOCK);
	add_cap(snap, "c1", "action=dm: 1/1m");
	seal(snap);
	assert_retry(DO("action=dm", T0 + SEC), KX_GATE_BY_CAP, "c1", 59 * SEC);
	kx_gate_snapshot_free(snap);

	/* raised to 5: four more */
	snap = kx_gate_snapshot_new();
	add_cap(snap, "c1", "action=dm: 5/1m");
	seal(snap);
	for (int i = 1; i <= 4; i++)
		assert_allow(DO("action=dm", T0 + i * SEC));
	assert_retry(DO("action=dm", T0 + 5 * SEC), KX_GATE_BY_CAP, "c1", 55 * SEC);
	kx_gate_snapshot_free(snap);

	/* lowered to 2 with five counted (T0..T0+4s): the fourth oldest must leave */
	snap = kx_gate_snapshot_new();
	add_cap(snap, "c1", "action=dm: 2/1m");
	seal(snap);
	assert_retry(DO("action=dm", T0 + 10 * SEC), KX_GATE_BY_CAP, "c1", 53 * SEC);
	assert_allow(DO("action=dm", T0 + MIN + 3 * SEC));
	assert_retry(DO("action=dm", T0 + MIN + 3 * SEC), KX_GATE_BY_CAP, "c1", SEC);
	kx_gate_snapshot_free(snap);

	/* a cap under another id starts from zero */
	snap = kx_gate_snapshot_new();
	add_cap(snap, "c2", "action=dm: 2/1m");
	seal(snap);
	assert_allow(DO("action=dm", T0 + MIN + 3 * SEC));
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void clock_steps_back(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_labels ls;
	struct kx_gate_action act = {.labels = &ls};
	(void)state;
	add_cap(snap, "c", "action=dm: 2/10s");
	seal(snap);
	kx_labels_init(&ls);
	labels_from(&ls, "action=dm");
	assert_int_equal(kx_gate_record(snap, st, &act, T0 + 5 * SEC, NULL), 0);
	/* the clock went back 5s: the event is counted at T0+5s, not T0 */
	assert_int_equal(kx_gate_record(snap, st, &act, T0, NULL), 0);
	assert_retry(CHECK("action=dm", T0 + 15 * SEC - 1), KX_GATE_BY_CAP, "c", 1);
	assert_allow(CHECK("action=dm", T0 + 15 * SEC));
	/* a check from before the newest event sees it as counted */
	assert_retry(CHECK("action=dm", T0), KX_GATE_BY_CAP, "c", 15 * SEC);
	kx_labels_release(&ls);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- bad input ---- */

static void snapshot_errors(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = sw_def("s1", "client=acme", KX_GATE_BLOCK);
	struct kx_gate_decision d;
	struct kx_labels ls;
	struct kx_gate_action act = {.labels = &ls};
	struct kx_err err = {0};
	char *long_key = repeat("k", KX_GATE_KEY_MAX + 1), *ok_key = repeat("k", KX_GATE_KEY_MAX);
	(void)state;
	kx_labels_init(&ls);

	sw.selector = "platform";
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': cannot parse selector at column 9: expected "
				     "'=' after 'platform'");
	sw.selector = "client=acme";
	sw.id = "";
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch id is empty");
	sw.id = "s1";
	sw.mode = (enum kx_gate_mode)7;
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': unknown mode 7");
	sw.mode = KX_GATE_BLOCK;
	sw.ramp = (struct kx_gate_ramp){.start = T0, .end = T0, .window = MIN, .peak = 1};
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': ramp must end after it starts");
	sw.ramp = (struct kx_gate_ramp){.start = T0, .end = T0 + MIN, .window = 0, .peak = 1};
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': ramp window must be longer than zero and at "
				     "most 366 days");
	sw.ramp = (struct kx_gate_ramp){.start = T0, .end = T0 + MIN, .window = MIN, .peak = 0};
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': ramp peak must be 1 to 1000000");
	sw.ramp = (struct kx_gate_ramp){.start = T0, .end = T0 + MIN, .window = MIN, .floor = 5,
					.peak = 4};
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch 's1': ramp floor 5 is above its peak 4");
	sw.ramp.start = KX_TIME_UNSET; /* no ramp: the other fields do not matter */
	assert_int_equal(kx_gate_snapshot_add_switch(snap, &sw, &err), 0);
	assert_int_equal(kx_gate_snapshot_add_cap(snap, "c1", "action=dm: 1/0s", &err), KX_EINVAL);
	assert_string_equal(err.msg, "cap 'c1': cannot parse cap at column 14: window '0s' must be "
				     "longer than zero");
	assert_int_equal(kx_gate_snapshot_set_dedupe_window(snap, -1, &err), KX_EINVAL);
	assert_string_equal(err.msg, "dedupe window must be 0 (off) to 366 days");

	/* checking before sealing */
	d.verdict = KX_GATE_DENY;
	assert_int_equal(kx_gate_check(snap, st, &act, T0, &d, &err), KX_EINVAL);
	assert_string_equal(err.msg, "the snapshot is not sealed");

	/* ids must be unique per kind: found at seal */
	add_switch(snap, "s1", "client=globex", KX_GATE_BLOCK);
	assert_int_equal(kx_gate_snapshot_seal(snap, &err), KX_EINVAL);
	assert_string_equal(err.msg, "switch id 's1' is used twice");
	kx_gate_snapshot_free(snap);
	snap = kx_gate_snapshot_new();
	add_cap(snap, "c1", "action=dm: 1/1s");
	add_switch(snap, "c1", "", KX_GATE_APPROVE); /* a switch may share a cap's id */
	add_cap(snap, "c2", "action=dm: 1/1s");
	add_cap(snap, "c1", "action=like: 1/1s");
	assert_int_equal(kx_gate_snapshot_seal(snap, &err), KX_EINVAL);
	assert_string_equal(err.msg, "cap id 'c1' is used twice");
	kx_gate_snapshot_free(snap);

	snap = kx_gate_snapshot_new();
	seal(snap);
	assert_int_equal(kx_gate_snapshot_seal(snap, &err), 0); /* again: fine */
	assert_int_equal(kx_gate_snapshot_add_cap(snap, "c", "a=b: 1/1s", &err), KX_ECONFLICT);
	assert_string_equal(err.msg, "the snapshot is sealed");

	/* bad actions */
	act.idempotency_key = long_key;
	assert_int_equal(kx_gate_check(snap, st, &act, T0, &d, &err), KX_EINVAL);
	assert_string_equal(err.msg, "idempotency key is longer than 256 bytes");
	assert_int_equal(kx_gate_decide(snap, st, &act, T0, &d, &err), KX_EINVAL);
	assert_int_equal(kx_gate_record(snap, st, &act, T0, &err), KX_EINVAL);
	act.idempotency_key = ok_key;
	assert_int_equal(kx_gate_decide(snap, st, &act, T0, &d, &err), 0);
	assert_int_equal(d.verdict, KX_GATE_ALLOW);
	act.idempotency_key = "tab\there";
	assert_int_equal(kx_gate_check(snap, st, &act, T0, &d, &err), KX_EINVAL);
	assert_string_equal(err.msg, "idempotency key has control characters or invalid UTF-8");
	act.idempotency_key = NULL;
	assert_int_equal(kx_gate_check(snap, st, &act, -5, &d, &err), KX_EINVAL);
	assert_string_equal(err.msg, "time -5 is out of range");
	act.labels = NULL;
	assert_int_equal(kx_gate_check(snap, st, &act, T0, &d, &err), KX_EINVAL);
	assert_string_equal(err.msg, "the action has no labels");

	free(long_key);
	free(ok_key);
	kx_labels_release(&ls);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void snapshot_accessors(void **state)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_switch sw = sw_def("s1", "platform=x , client=acme", KX_GATE_READ_ONLY);
	const struct kx_gate_switch *got;
	const struct kx_gate_cap *cap;
	const char *id, *spec;
	(void)state;
	sw.incident = "INC-1";
	add_sw(snap, &sw);
	add_cap(snap, "c1", "platform=x,action=dm: 3/1h per account");
	seal(snap);
	assert_int_equal(kx_gate_snapshot_switch_count(snap), 1);
	got = kx_gate_snapshot_switch(snap, 0);
	assert_string_equal(got->id, "s1");
	assert_string_equal(got->selector, "client=acme,platform=x");
	assert_string_equal(got->incident, "INC-1");
	assert_string_equal(got->reason, "test");
	assert_int_equal(got->mode, KX_GATE_READ_ONLY);
	assert_int_equal(got->set_at, T0 - HOUR);
	assert_true(got->id != sw.id); /* a copy */
	assert_null(kx_gate_snapshot_switch(snap, 1));
	assert_int_equal(kx_gate_snapshot_cap_count(snap), 1);
	cap = kx_gate_snapshot_cap(snap, 0, &id, &spec);
	assert_string_equal(id, "c1");
	assert_string_equal(spec, "action=dm,platform=x: 3/1h per account");
	assert_int_equal(cap->limit, 3);
	assert_null(kx_gate_snapshot_cap(snap, 1, NULL, NULL));
	kx_gate_snapshot_free(snap);
}

/* ---- bounded memory ---- */

static void bounded_memory(void **state)
{
	const struct kx_gate_limits lim = {.max_counters = 5000, .max_events = 12000,
					   .max_keys = 10000};
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(&lim);
	struct kx_gate_stats stats;
	struct kx_labels ls;
	struct kx_gate_action act = {.labels = &ls};
	struct kx_gate_decision d;
	char key[32], account[32];
	size_t peak = 0, bound;
	(void)state;
	add_cap(snap, "per-account", "action=dm: 3/1h per account");
	seal(snap);
	kx_labels_init(&ls);
	labels_from(&ls, "action=dm");
	act.idempotency_key = key;
	/* a million distinct keys and accounts, all live (1h and 24h windows) */
	for (int i = 0; i < 1000000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(account, sizeof(account), "@acct%d", i);
		assert_int_equal(kx_labels_set(&ls, "account", account, NULL), 0);
		assert_int_equal(kx_gate_decide(snap, st, &act, T0 + i / 100, &d, NULL), 0);
		if (d.verdict != KX_GATE_ALLOW)
			fail_msg("action %d: %s", i, d.reason);
		if ((i & 1023) == 0) {
			kx_gate_state_stats(st, &stats);
			if (stats.bytes > peak)
				peak = stats.bytes;
		}
	}
	kx_gate_state_stats(st, &stats);
	assert_true(stats.keys <= lim.max_keys);
	assert_true(stats.counters <= lim.max_counters);
	assert_true(stats.events <= lim.max_events);
	assert_true(stats.evicted_keys >= 1000000 - lim.max_keys);
	assert_true(stats.evicted_counters >= 1000000 - lim.max_counters);
	/* the bound the header promises (hash tables: a pointer per entry, x2 for growth) */
	bound = sizeof(void *) * 64 + lim.max_counters * (96 + KX_GATE_ID_MAX + KX_LABEL_VALUE_MAX) +
		lim.max_events * 8 + lim.max_keys * (48 + KX_GATE_KEY_MAX) +
		2 * sizeof(void *) * (lim.max_counters + lim.max_keys) + 4096;
	if (peak > bound || stats.bytes > bound)
		fail_msg("state holds %zu bytes (peak %zu), bound %zu", stats.bytes, peak, bound);
	print_message("bounded memory: %zu keys, %zu counters, %zu event slots, %zu bytes "
		      "(bound %zu) after 1e6 distinct keys; evicted %llu keys, %llu counters\n",
		      stats.keys, stats.counters, stats.events, stats.bytes, bound,
		      (unsigned long long)stats.evicted_keys,
		      (unsigned long long)stats.evicted_counters);
	/* the most recent keys are still remembered */
	snprintf(key, sizeof(key), "key-%d", 999999);
	assert_int_equal(kx_gate_check(snap, st, &act, T0 + 10000, &d, NULL), 0);
	assert_int_equal(d.by, KX_GATE_BY_DUPLICATE);
	/* and clearing forgets everything */
	kx_gate_state_clear(st);
	kx_gate_state_stats(st, &stats);
	assert_int_equal(stats.keys, 0);
	assert_int_equal(stats.counters, 0);
	assert_int_equal(stats.events, 0);
	assert_int_equal(kx_gate_check(snap, st, &act, T0 + 10000, &d, NULL), 0);
	assert_int_equal(d.verdict, KX_GATE_ALLOW);
	kx_labels_release(&ls);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* Expired counters and keys are dropped as new ones arrive, so memory
 * follows the load: nothing live is ever evicted here. */
static void memory_follows_load(void **state)
{
	const struct kx_gate_limits lim = {.max_counters = 5000, .max_keys = 5000};
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(&lim);
	struct kx_gate_stats stats;
	struct kx_labels ls;
	struct kx_gate_action act = {.labels = &ls};
	struct kx_gate_decision d;
	char key[32], account[32];
	(void)state;
	add_cap(snap, "cool", "action=dm: 1/1s per account");
	assert_int_equal(kx_gate_snapshot_set_dedupe_window(snap, SEC, NULL), 0);
	seal(snap);
	kx_labels_init(&ls);
	labels_from(&ls, "action=dm");
	act.idempotency_key = key;
	for (int i = 0; i < 200000; i++) { /* one action per ms */
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(account, sizeof(account), "@acct%d", i);
		assert_int_equal(kx_labels_set(&ls, "account", account, NULL), 0);
		assert_int_equal(kx_gate_decide(snap, st, &act, T0 + i, &d, NULL), 0);
		assert_int_equal(d.verdict, KX_GATE_ALLOW);
	}
	kx_gate_state_stats(st, &stats);
	assert_int_equal(stats.evicted_keys, 0);
	assert_int_equal(stats.evicted_counters, 0);
	assert_true(stats.keys <= 1001);
	assert_true(stats.counters <= 1001);
	kx_labels_release(&ls);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

/* ---- the index against brute force ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const VALS[] = {"a", "b", "c", "d"};

/* A random requirement on key (or none), appended to b. */
static void random_req(struct kx_buf *b, const char *key)
{
	const char *sep = b->len ? "," : "";
	switch (rnd(6)) {
	case 0: kx_buf_addf(b, "%s%s=%s", sep, key, VALS[rnd(4)]); break;
	case 1: kx_buf_addf(b, "%s%s!=%s", sep, key, VALS[rnd(4)]); break;
	case 2: kx_buf_addf(b, "%s%s in (%s,%s)", sep, key, VALS[rnd(4)], VALS[rnd(4)]); break;
	case 3: kx_buf_addf(b, "%s%s notin (%s,%s)", sep, key, VALS[rnd(4)], VALS[rnd(4)]); break;
	default: break;
	}
}

static void random_selector(struct kx_buf *b)
{
	kx_buf_clear(b);
	random_req(b, "action");
	random_req(b, "client");
	random_req(b, "lane");
	random_req(b, "platform");
}

static void random_labels(struct kx_labels *ls)
{
	static const char *const keys[] = {"action", "client", "lane", "platform"};
	kx_labels_release(ls);
	for (int k = 0; k < 4; k++)
		if (rnd(5))
			assert_int_equal(kx_labels_set(ls, keys[k], VALS[rnd(4)], NULL), 0);
}

/* Random selectors over four keys (so that rules land in primary buckets,
 * in secondary buckets under either other key, and in the always-checked
 * list) and random actions: the gate names what a linear scan names. */
static void index_matches_brute_force(void **state)
{
	enum { NCAP = 300, NSW = 100, ROUNDS = 3000 };
	struct kx_gate_snapshot *caps = kx_gate_snapshot_new(), *sws = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_selector *csel = calloc(NCAP, sizeof(*csel)), *ssel = calloc(NSW, sizeof(*ssel));
	kx_ms *set_at = calloc(NSW, sizeof(*set_at));
	struct kx_labels ls;
	struct kx_buf b, spec;
	char id[16];
	(void)state;
	kx_buf_init(&b, 0);
	kx_buf_init(&spec, 0);
	kx_labels_init(&ls);
	/* caps that always deny: the decision names the first defined match */
	for (int i = 0; i < NCAP; i++) {
		random_selector(&b);
		kx_buf_clear(&spec);
		kx_buf_addf(&spec, "%s: 0/1d", kx_buf_str(&b));
		snprintf(id, sizeof(id), "c%03d", i);
		add_cap(caps, id, kx_buf_str(&spec));
		assert_int_equal(kx_selector_parse(&csel[i], kx_buf_str(&b), NULL), 0);
	}
	/* blocks: the decision names the most specific, then oldest, then smallest id */
	for (int i = 0; i < NSW; i++) {
		struct kx_gate_switch sw;
		random_selector(&b);
		snprintf(id, sizeof(id), "s%03d", i);
		sw = sw_def(id, kx_buf_str(&b), KX_GATE_BLOCK);
		sw.set_at = set_at[i] = T0 - (kx_ms)rnd(5) * HOUR;
		add_sw(sws, &sw);
		assert_int_equal(kx_selector_parse(&ssel[i], kx_buf_str(&b), NULL), 0);
	}
	seal(caps);
	seal(sws);
	for (int r = 0; r < ROUNDS; r++) {
		struct kx_gate_action act = {.labels = &ls};
		struct kx_gate_decision d;
		int want = -1;
		random_labels(&ls);
		for (int i = 0; i < NCAP && want < 0; i++)
			if (kx_selector_matches(&csel[i], &ls))
				want = i;
		assert_int_equal(kx_gate_check(caps, st, &act, T0, &d, NULL), 0);
		if (want < 0) {
			assert_int_equal(d.verdict, KX_GATE_ALLOW);
		} else {
			snprintf(id, sizeof(id), "c%03d", want);
			assert_deny(d, KX_GATE_BY_CAP, id);
		}
		want = -1;
		for (int i = 0; i < NSW; i++) {
			if (!kx_selector_matches(&ssel[i], &ls))
				continue;
			if (want < 0 || ssel[i].n > ssel[want].n ||
			    (ssel[i].n == ssel[want].n && set_at[i] < set_at[want]))
				want = i;
		}
		assert_int_equal(kx_gate_check(sws, st, &act, T0, &d, NULL), 0);
		if (want < 0) {
			assert_int_equal(d.verdict, KX_GATE_ALLOW);
		} else {
			snprintf(id, sizeof(id), "s%03d", want);
			assert_deny(d, KX_GATE_BY_SWITCH, id);
		}
	}
	for (int i = 0; i < NCAP; i++)
		kx_selector_release(&csel[i]);
	for (int i = 0; i < NSW; i++)
		kx_selector_release(&ssel[i]);
	free(csel);
	free(ssel);
	free(set_at);
	kx_labels_release(&ls);
	kx_buf_release(&b);
	kx_buf_release(&spec);
	kx_gate_snapshot_free(caps);
	kx_gate_snapshot_free(sws);
	kx_gate_state_free(st);
}

/* ---- the rate (printed, not asserted) ---- */

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_rate(void **state)
{
	static const char *const actions[] = {"dm",	"comment", "like",  "follow", "publish",
					      "reply", "repost",  "story", "react",  "fetch"};
	enum { NCLIENT = 100, NLABELS = 4096 };
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_labels *ls = calloc(NLABELS, sizeof(*ls));
	struct kx_gate_decision d;
	struct kx_gate_stats stats;
	char buf[160], key[32];
	long n_allow = 0, n_deny = 0, n_appr = 0, iters;
	double t, decide_rate, check_rate_;
	const double budget = 0.4;
	(void)state;

	/* 100 switches: one per client on the browser lane (never matching the
	 * api-lane actions below, so every check goes all the way), a few of
	 * them approve/read_only on one platform (these do match) */
	for (int c = 0; c < NCLIENT; c++) {
		snprintf(buf, sizeof(buf), "client=c%03d,lane=browser", c);
		snprintf(key, sizeof(key), "sw%03d", c);
		if (c % 10 == 9) {
			snprintf(buf, sizeof(buf), "client=c%03d,platform=p4", c);
			add_switch(snap, key, buf, c % 20 == 9 ? KX_GATE_APPROVE : KX_GATE_READ_ONLY);
		} else {
			add_switch(snap, key, buf, KX_GATE_BLOCK);
		}
	}
	/* 1,000 caps: per client and action, per account; plus ten per
	 * platform and action across all clients (the last ten per-client caps
	 * make room for them) */
	for (int c = 0; c < NCLIENT; c++)
		for (int a = 0; a < 10; a++) {
			if (c == NCLIENT - 1) {
				snprintf(buf, sizeof(buf), "platform=p%d,action=%s: 100000/1d", a % 5,
					 actions[a]);
			} else {
				snprintf(buf, sizeof(buf), "client=c%03d,action=%s: 30/1h per account",
					 c, actions[a]);
			}
			snprintf(key, sizeof(key), "cap-%d-%d", c, a);
			add_cap(snap, key, buf);
		}
	seal(snap);
	assert_int_equal(kx_gate_snapshot_switch_count(snap), 100);
	assert_int_equal(kx_gate_snapshot_cap_count(snap), 1000);

	for (int i = 0; i < NLABELS; i++) {
		int c = (int)rnd(NCLIENT);
		kx_labels_init(&ls[i]);
		snprintf(buf, sizeof(buf),
			 "client=c%03d,account=@a%03d-%u,platform=p%u,lane=api,action=%s,target=post/%u",
			 c, c, rnd(10), rnd(5), actions[rnd(10)], rnd(100000));
		labels_from(&ls[i], buf);
	}

	/* decide: check + record, each with a fresh idempotency key */
	t = seconds();
	for (iters = 0; seconds() - t < budget; ) {
		for (int k = 0; k < 1000; k++, iters++) {
			struct kx_gate_action act = {&ls[iters % NLABELS], key, false};
			snprintf(key, sizeof(key), "k%ld", iters);
			assert_int_equal(kx_gate_decide(snap, st, &act, T0 + iters / 50, &d, NULL), 0);
			n_allow += d.verdict == KX_GATE_ALLOW;
			n_deny += d.verdict == KX_GATE_DENY;
			n_appr += d.verdict == KX_GATE_APPROVAL_REQUIRED;
		}
	}
	decide_rate = (double)iters / (seconds() - t);
	kx_gate_state_stats(st, &stats);

	/* check only, no key */
	t = seconds();
	for (iters = 0; seconds() - t < budget; ) {
		for (int k = 0; k < 1000; k++, iters++) {
			struct kx_gate_action act = {&ls[iters % NLABELS], NULL, false};
			assert_int_equal(kx_gate_check(snap, st, &act, T0 + HOUR, &d, NULL), 0);
		}
	}
	check_rate_ = (double)iters / (seconds() - t);
	print_message("gate rate (100 switches, 1000 caps, one core): %.0f decisions/s "
		      "(check+record, fresh key each; %ld allow, %ld deny, %ld approval), "
		      "%.0f checks/s (check only); state: %zu counters, %zu keys, %zu KiB\n",
		      decide_rate, n_allow, n_deny, n_appr, check_rate_, stats.counters, stats.keys,
		      stats.bytes / 1024);
	assert_true(n_allow > 0 && n_deny > 0 && n_appr > 0);
	for (int i = 0; i < NLABELS; i++)
		kx_labels_release(&ls[i]);
	free(ls);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(modes_and_names),
		cmocka_unit_test(cap_specs),
		cmocka_unit_test(cap_spec_errors),
		cmocka_unit_test(switch_modes),
		cmocka_unit_test(global_switch),
		cmocka_unit_test(messages_are_clean_text),
		cmocka_unit_test(switch_precedence),
		cmocka_unit_test(switch_expiry),
		cmocka_unit_test(ramp),
		cmocka_unit_test(ramp_edges),
		cmocka_unit_test(caps_scope_and_per_key),
		cmocka_unit_test(sliding_window_boundaries),
		cmocka_unit_test(several_caps),
		cmocka_unit_test(duplicates),
		cmocka_unit_test(batch),
		cmocka_unit_test(counters_survive_snapshot_swaps),
		cmocka_unit_test(clock_steps_back),
		cmocka_unit_test(snapshot_errors),
		cmocka_unit_test(snapshot_accessors),
		cmocka_unit_test(bounded_memory),
		cmocka_unit_test(memory_follows_load),
		cmocka_unit_test(index_matches_brute_force),
		cmocka_unit_test(check_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
