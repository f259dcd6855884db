/* test_outbox.c — core/notify: channel event filters, the webhook
 * signature, retry verdicts and backoff, and the chat text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/notify.h"
#include "lib/secret.h"
#include "helpers.h"

static void event_filters(void **state)
{
	char *none[] = {NULL};
	char *names[] = {"switch.set", "incident.*"};
	char *star[] = {"*"};
	(void)state;

	assert_true(kx_notify_event_matches(none, 0, "incident.declared"));
	assert_true(kx_notify_event_matches(star, 1, "cap.set"));
	assert_true(kx_notify_event_matches(names, 2, "switch.set"));
	assert_false(kx_notify_event_matches(names, 2, "switch.cleared"));
	assert_true(kx_notify_event_matches(names, 2, "incident.declared"));
	assert_false(kx_notify_event_matches(names, 2, "incident"));
	assert_false(kx_notify_event_matches(names, 2, "incident."));
	assert_false(kx_notify_event_matches(names, 2, "incidents.declared"));
	assert_false(kx_notify_event_matches(names, 2, "switch.setx"));
}

static void signature_is_hmac_sha256(void **state)
{
	char sig[KX_NOTIFY_SIG_SIZE];
	(void)state;
	/* python3: hmac.new(b"key", b'{"a":1}', hashlib.sha256).hexdigest() */
	kx_notify_sign("key", "{\"a\":1}", 7, sig);
	assert_string_equal(sig, "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342");
}

static void verdicts(void **state)
{
	(void)state;
	assert_int_equal(kx_notify_verdict(200), KX_NOTIFY_DONE);
	assert_int_equal(kx_notify_verdict(204), KX_NOTIFY_DONE);
	assert_int_equal(kx_notify_verdict(0), KX_NOTIFY_RETRY);
	assert_int_equal(kx_notify_verdict(408), KX_NOTIFY_RETRY);
	assert_int_equal(kx_notify_verdict(429), KX_NOTIFY_RETRY);
	assert_int_equal(kx_notify_verdict(500), KX_NOTIFY_RETRY);
	assert_int_equal(kx_notify_verdict(503), KX_NOTIFY_RETRY);
	assert_int_equal(kx_notify_verdict(400), KX_NOTIFY_DROP);
	assert_int_equal(kx_notify_verdict(404), KX_NOTIFY_DROP);
	assert_int_equal(kx_notify_verdict(410), KX_NOTIFY_DROP);
	assert_int_equal(kx_notify_verdict(301), KX_NOTIFY_DROP);
	assert_int_equal(kx_notify_verdict(100), KX_NOTIFY_DROP);
}

static void backoff_doubles_with_jitter_and_cap(void **state)
{
	const uint32_t lo = 0, mid = (KX_NOTIFY_JITTER_STEPS - 1) / 2, hi = KX_NOTIFY_JITTER_STEPS - 1;
	(void)state;
	assert_int_equal(kx_notify_backoff(1, mid), 1000);
	assert_int_equal(kx_notify_backoff(1, lo), 800);
	assert_int_equal(kx_notify_backoff(1, hi), 1200);
	assert_int_equal(kx_notify_backoff(2, mid), 2000);
	assert_int_equal(kx_notify_backoff(3, mid), 4000);
	assert_int_equal(kx_notify_backoff(9, mid), 256000);
	assert_int_equal(kx_notify_backoff(10, mid), 300000);
	assert_int_equal(kx_notify_backoff(10, lo), 240000);
	assert_int_equal(kx_notify_backoff(10, hi), 300000); /* never above the cap */
	assert_int_equal(kx_notify_backoff(1000000, mid), 300000);
	assert_int_equal(kx_notify_backoff(0, mid), 1000);
	assert_int_equal(kx_notify_backoff(1, UINT32_MAX), 1200); /* out of range r clamps */
	for (int a = 1; a <= KX_NOTIFY_MAX_ATTEMPTS; a++)
		for (uint32_t r = 0; r < KX_NOTIFY_JITTER_STEPS; r += 97) {
			kx_ms d = kx_notify_backoff(a, r);
			assert_true(d >= 800 && d <= KX_NOTIFY_BACKOFF_MAX);
		}
}

static char *chat(const char *event, const char *data_json, const char *public_url)
{
	json_t *data = data_json ? json_loads(data_json, 0, NULL) : NULL;
	struct kx_buf b;
	char *s;
	if (data_json)
		assert_non_null(data);
	kx_buf_init(&b, 0);
	assert_int_equal(kx_notify_chat_text(event, data, public_url, &b), 0);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	json_decref(data);
	return s;
}

static void chat_declared(void **state)
{
	const char *inc = "{\"id\":\"INC-20261125-001\",\"title\":\"Duplicate comments\","
			  "\"severity\":\"P1\",\"status\":\"investigating\"}";
	char *s;
	(void)state;

	s = chat("incident.declared", inc, NULL);
	assert_string_equal(s, "🚨 P1 INC-20261125-001 declared: Duplicate comments (status "
			       "investigating)");
	free(s);
	s = chat("incident.declared", inc, "https://klaxon.example.org/");
	assert_string_equal(s, "🚨 P1 INC-20261125-001 declared: Duplicate comments (status "
			       "investigating)\n<https://klaxon.example.org/incidents/"
			       "INC-20261125-001|Open INC-20261125-001 in Klaxon>");
	free(s);
}

static void chat_switches(void **state)
{
	char *s;
	(void)state;

	s = chat("switch.set",
		 "{\"id\":\"sw_0123456789abcdef\",\"selector\":\"client=acme,platform=instagram\","
		 "\"mode\":\"block\",\"reason\":\"duplicate comments\",\"set_by\":\"alice\","
		 "\"incident\":\"INC-20261125-001\",\"expires_at\":null}",
		 NULL);
	assert_string_equal(s, "🛑 Emergency stop: switch sw_0123456789abcdef *block* on "
			       "`client=acme,platform=instagram` by alice — reason: duplicate "
			       "comments (incident INC-20261125-001)");
	free(s);

	s = chat("switch.set",
		 "{\"id\":\"sw_1\",\"selector\":\"\",\"mode\":\"approve\",\"reason\":\"r\","
		 "\"set_by\":\"bob\",\"expires_at\":\"2026-11-25T21:00:00Z\"}",
		 NULL);
	assert_string_equal(s, "🛑 Emergency stop: switch sw_1 *approve* on *everything* by bob "
			       "— reason: r (until 2026-11-25T21:00:00Z)");
	free(s);

	s = chat("switch.cleared",
		 "{\"id\":\"sw_1\",\"selector\":\"client=acme\",\"mode\":\"block\",\"reason\":\"r\","
		 "\"set_by\":\"alice\",\"cleared_by\":\"bob\",\"clear_reason\":\"fixed\"}",
		 NULL);
	assert_string_equal(s, "✅ Switch sw_1 cleared on `client=acme` by bob — reason: fixed");
	free(s);

	s = chat("switch.resumed", "{\"id\":\"sw_1\",\"selector\":\"a=`b`\",\"set_by\":\"alice\"}",
		 NULL);
	assert_string_equal(s, "↗️ Switch sw_1 resuming (ramping back up) on `a='b'` by alice");
	free(s);
}

static void chat_other_events(void **state)
{
	char *s;
	(void)state;

	s = chat("cap.set", "{\"id\":\"ig-comments\",\"spec\":\"platform=instagram: 200/1d\","
			    "\"n\":3,\"on\":true,\"skip\":null,\"nested\":{\"x\":1}}",
		 NULL);
	assert_string_equal(s, "cap.set: id=ig-comments, spec=platform=instagram: 200/1d, n=3, "
			       "on=true");
	free(s);
	s = chat("approval.requested", NULL, NULL);
	assert_string_equal(s, "approval.requested");
	free(s);
	s = chat("x.y", "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9}",
		 NULL);
	assert_string_equal(s, "x.y: a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, …");
	free(s);
}

static void chat_escapes_and_cuts_user_text(void **state)
{
	char *title = repeat("é", 400), *data, *s;
	size_t n;
	(void)state;

	s = chat("incident.declared",
		 "{\"id\":\"INC-20261125-002\",\"title\":\"<!channel> a&b\\nc\",\"severity\":\"P2\","
		 "\"status\":\"investigating\"}",
		 NULL);
	assert_contains(s, "declared: &lt;!channel&gt; a&amp;b c (status");
	assert_null(strchr(s, '\n'));
	free(s);

	n = strlen(title) + 64;
	data = malloc(n);
	snprintf(data, n, "{\"id\":\"INC-20261125-003\",\"title\":\"%s\"}", title);
	s = chat("incident.declared", data, NULL);
	/* 300 bytes is 150 "é": cut on a character boundary, then an ellipsis */
	assert_contains(s, "declared: é");
	assert_contains(s, "éé…");
	assert_true(strlen(s) < 400);
	{
		json_t *j = json_string(s); /* NULL for invalid UTF-8 */
		assert_non_null(j);
		json_decref(j);
	}
	free(s);
	free(data);
	free(title);
}

static void labels_as_json(void **state)
{
	struct kx_labels ls;
	json_t *o;
	char *s;
	(void)state;

	kx_labels_init(&ls);
	assert_int_equal(kx_labels_set(&ls, "platform", "instagram", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "client", "acme", NULL), 0);
	o = kx_notify_labels_json(&ls);
	s = json_dumps(o, JSON_COMPACT);
	assert_string_equal(s, "{\"client\":\"acme\",\"platform\":\"instagram\"}");
	free(s);
	json_decref(o);
	kx_labels_release(&ls);
	o = kx_notify_labels_json(NULL);
	assert_int_equal(json_object_size(o), 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(event_filters),
		cmocka_unit_test(signature_is_hmac_sha256),
		cmocka_unit_test(verdicts),
		cmocka_unit_test(backoff_doubles_with_jitter_and_cap),
		cmocka_unit_test(chat_declared),
		cmocka_unit_test(chat_switches),
		cmocka_unit_test(chat_other_events),
		cmocka_unit_test(chat_escapes_and_cuts_user_text),
		cmocka_unit_test(labels_as_json),
	};
	if (kx_secret_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
