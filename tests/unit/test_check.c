/* test_check.c — core/check: how a probe is judged (status, body, transport
 * failures and their one-line reasons) and the state machine that fires
 * after fail_after failures and resolves after resolve_after successes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/check.h"
#include "helpers.h"

static struct kx_check check(int expect_status, const char *expect_body, uint32_t fail_after,
			     uint32_t resolve_after)
{
	struct kx_check c = {0};
	c.name = "api";
	c.service = "payments";
	c.url = "http://127.0.0.1:1/health";
	c.interval = 30000;
	c.timeout = 5000;
	c.expect_status = expect_status;
	c.expect_body = (char *)expect_body;
	c.fail_after = fail_after;
	c.resolve_after = resolve_after;
	return c;
}

static const struct kx_probe OK200 = {KX_PROBE_ANSWERED, 200, true, NULL};
static const struct kx_probe E503 = {KX_PROBE_ANSWERED, 503, true, NULL};

static const char *judge(const struct kx_check *c, struct kx_probe p, bool *ok)
{
	static char reason[KX_CHECK_REASON_MAX];
	*ok = kx_check_judge(c, &p, reason, sizeof(reason));
	return reason;
}

static void status_expectations(void **state)
{
	struct kx_check any = check(0, NULL, 3, 1), exact = check(200, NULL, 3, 1);
	struct kx_check teapot = check(418, NULL, 3, 1);
	bool ok;
	(void)state;

	assert_string_equal(judge(&any, OK200, &ok), "");
	assert_true(ok);
	judge(&any, (struct kx_probe){KX_PROBE_ANSWERED, 204, false, NULL}, &ok);
	assert_true(ok);
	assert_string_equal(judge(&any, E503, &ok), "HTTP 503 (expected 2xx)");
	assert_false(ok);
	assert_string_equal(judge(&any, (struct kx_probe){KX_PROBE_ANSWERED, 302, 0, NULL}, &ok),
			    "HTTP 302 (expected 2xx)");
	assert_false(ok);
	assert_string_equal(judge(&exact, E503, &ok), "HTTP 503 (expected 200)");
	assert_false(ok);
	assert_string_equal(judge(&exact, (struct kx_probe){KX_PROBE_ANSWERED, 204, 0, NULL}, &ok),
			    "HTTP 204 (expected 200)");
	assert_false(ok);
	judge(&teapot, (struct kx_probe){KX_PROBE_ANSWERED, 418, 0, NULL}, &ok);
	assert_true(ok);
}

static void body_expectation(void **state)
{
	struct kx_check c = check(200, "\"ok\"", 3, 1), none = check(0, NULL, 3, 1);
	static const char with_nul[] = "x\0{\"status\":\"ok\"}";
	char *long_needle = repeat("é", 100);
	struct kx_check lc = check(0, long_needle, 3, 1);
	const char *r;
	bool ok;
	(void)state;

	assert_true(kx_check_body_has(&c, "{\"status\":\"ok\"}", 15));
	assert_false(kx_check_body_has(&c, "{\"status\":\"ok\"}", 13)); /* cut before it */
	assert_true(kx_check_body_has(&c, with_nul, sizeof(with_nul) - 1));
	assert_false(kx_check_body_has(&c, "{\"status\":\"down\"}", 17));
	assert_false(kx_check_body_has(&c, "", 0));
	assert_false(kx_check_body_has(&c, NULL, 0));
	assert_true(kx_check_body_has(&none, NULL, 0));
	assert_true(kx_check_body_has(&c, "\"ok\"", 4)); /* all of it */

	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_ANSWERED, 200, false, NULL}, &ok),
			    "body does not contain '\"ok\"'");
	assert_false(ok);
	judge(&c, OK200, &ok);
	assert_true(ok);
	/* the status is judged first */
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_ANSWERED, 500, false, NULL}, &ok),
			    "HTTP 500 (expected 200)");
	/* a long expectation is quoted cut, on a character boundary */
	r = judge(&lc, (struct kx_probe){KX_PROBE_ANSWERED, 200, false, NULL}, &ok);
	assert_false(ok);
	assert_prefix(r, "body does not contain 'éé");
	assert_contains(r, "é…'");
	assert_true(strlen(r) < 100);
	free(long_needle);
}

static void transport_failures(void **state)
{
	struct kx_check c = check(0, "ok", 3, 1);
	char *longerr = repeat("x", 1000);
	const char *r;
	bool ok;
	(void)state;

	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_TIMEOUT, 0, false, NULL}, &ok),
			    "timeout after 5000 ms");
	assert_false(ok);
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_REFUSED, 0, false, NULL}, &ok),
			    "connection refused");
	assert_false(ok);
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_DNS, 0, false, NULL}, &ok),
			    "cannot resolve host");
	assert_string_equal(
		judge(&c,
		      (struct kx_probe){KX_PROBE_ERROR, 0, false,
					"SSL certificate problem: self-signed certificate\nmore"},
		      &ok),
		"SSL certificate problem: self-signed certificate");
	assert_false(ok);
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_ERROR, 0, false, "a\tb"}, &ok),
			    "a b");
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_ERROR, 0, false, NULL}, &ok),
			    "request failed");
	assert_string_equal(judge(&c, (struct kx_probe){KX_PROBE_ERROR, 0, false, ""}, &ok),
			    "request failed");
	r = judge(&c, (struct kx_probe){KX_PROBE_ERROR, 0, false, longerr}, &ok);
	assert_int_equal(strlen(r), KX_CHECK_REASON_MAX - 1);
	assert_contains(r, "xx…");
	free(longerr);
}

/* A sequence of probes: 'o' passes, 'x' fails; returns the transitions as
 * a string: '.' none, 'F' fire, 'R' resolve. */
static void run(struct kx_check_state *s, const struct kx_check *c, const char *probes,
		char *out)
{
	for (size_t i = 0; probes[i]; i++) {
		enum kx_check_transition t =
			kx_check_observe(s, c, probes[i] == 'o' ? &OK200 : &E503);
		out[i] = t == KX_CHECK_FIRE ? 'F' : t == KX_CHECK_RESOLVE ? 'R' : '.';
	}
	out[strlen(probes)] = '\0';
}

static void fires_after_fail_after_and_resolves_after_resolve_after(void **state)
{
	struct kx_check c = check(200, NULL, 3, 2);
	struct kx_check_state s;
	char got[64];
	(void)state;

	kx_check_state_init(&s);
	assert_false(s.firing);
	assert_int_equal(s.failures, 0);
	assert_string_equal(s.reason, "");

	run(&s, &c, "oxxoxx", got); /* a success breaks the streak */
	assert_string_equal(got, "......");
	assert_int_equal(s.failures, 2);
	assert_false(s.firing);
	run(&s, &c, "x", got);
	assert_string_equal(got, "F");
	assert_true(s.firing);
	assert_int_equal(s.failures, 3);
	assert_int_equal(s.status, 503);
	assert_string_equal(s.reason, "HTTP 503 (expected 200)");
	/* firing: no trigger per failure, one success is not enough */
	run(&s, &c, "xxxxoxxo", got);
	assert_string_equal(got, "........");
	assert_true(s.firing);
	assert_int_equal(s.successes, 1);
	assert_int_equal(s.failures, 0);
	assert_string_equal(s.reason, "");
	assert_int_equal(s.status, 200);
	run(&s, &c, "o", got);
	assert_string_equal(got, "R");
	assert_false(s.firing);
	run(&s, &c, "oooxxxxo", got);
	assert_string_equal(got, ".....F..");
}

static void defaults_of_one(void **state)
{
	struct kx_check c = check(0, NULL, 1, 1), zero = check(0, NULL, 0, 0);
	struct kx_check_state s;
	char got[64];
	(void)state;

	kx_check_state_init(&s);
	run(&s, &c, "oxxoox", got);
	assert_string_equal(got, ".F.R.F");
	kx_check_state_init(&s);
	run(&s, &zero, "xoxo", got);
	assert_string_equal(got, "FRFR");
}

static void maybe_firing_resolves_once(void **state)
{
	struct kx_check c = check(0, NULL, 3, 2);
	struct kx_check_state s;
	char got[64];
	(void)state;

	/* the alert may be firing from before: the first passing streak resolves it */
	kx_check_state_init(&s);
	s.maybe_firing = true;
	run(&s, &c, "oxoooo", got);
	assert_string_equal(got, "...R..");
	assert_false(s.maybe_firing);

	/* a failing streak fires as usual, and the resolve follows */
	kx_check_state_init(&s);
	s.maybe_firing = true;
	run(&s, &c, "xxxoo", got);
	assert_string_equal(got, "..F.R");
	assert_false(s.maybe_firing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_expectations),
		cmocka_unit_test(body_expectation),
		cmocka_unit_test(transport_failures),
		cmocka_unit_test(fires_after_fail_after_and_resolves_after_resolve_after),
		cmocka_unit_test(defaults_of_one),
		cmocka_unit_test(maybe_firing_resolves_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
