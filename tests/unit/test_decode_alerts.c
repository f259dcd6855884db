/* test_decode_alerts.c — http/decode_alerts: the ingestion parsers, fed
 * the payloads captured from Alertmanager 0.25, amtool, Prometheus 2.42
 * and PagerDuty's documented examples (shared WIRE-FORMATS.md), and every
 * way of getting them wrong. Every decode is released, so the ASan run
 * also checks that no error path leaks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/text.h"
#include "helpers.h"
#include "http/decode_alerts.h"

#define B(s) (s), strlen(s)

/* [captured] Alertmanager 0.25.0, group_by alertname, two alerts; Go's
 * json.Encoder ends it with a newline. */
static const char am_firing[] =
	"{\"receiver\":\"incident-server\",\"status\":\"firing\","
	"\"alerts\":["
	"{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db1\","
	"\"severity\":\"critical\"},"
	"\"annotations\":{\"summary\":\"Disk 99% full\"},"
	"\"startsAt\":\"2026-11-22T21:19:10.201657098Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
	"\"generatorURL\":\"\",\"fingerprint\":\"e94c744ae3d44df8\"},"
	"{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db2\","
	"\"severity\":\"warning\"},"
	"\"annotations\":{},"
	"\"startsAt\":\"2026-11-22T21:19:10.217140255Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
	"\"generatorURL\":\"\",\"fingerprint\":\"82f18647108e0b7e\"}],"
	"\"groupLabels\":{\"alertname\":\"DiskFull\"},"
	"\"commonLabels\":{\"alertname\":\"DiskFull\"},"
	"\"commonAnnotations\":{},"
	"\"externalURL\":\"http://vm:19093\","
	"\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"DiskFull\\\"}\",\"truncatedAlerts\":0}\n";

/* Its resolve: status "resolved" and a real endsAt. */
static const char am_resolved[] =
	"{\"receiver\":\"incident-server\",\"status\":\"resolved\","
	"\"alerts\":["
	"{\"status\":\"resolved\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db1\","
	"\"severity\":\"critical\"},"
	"\"annotations\":{\"summary\":\"Disk 99% full\"},"
	"\"startsAt\":\"2026-11-22T21:19:10.201657098Z\",\"endsAt\":\"2026-11-22T21:19:13Z\","
	"\"generatorURL\":\"\",\"fingerprint\":\"e94c744ae3d44df8\"},"
	"{\"status\":\"resolved\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db2\","
	"\"severity\":\"warning\"},"
	"\"annotations\":{},"
	"\"startsAt\":\"2026-11-22T21:19:10.217140255Z\",\"endsAt\":\"2026-11-22T21:19:13Z\","
	"\"generatorURL\":\"\",\"fingerprint\":\"82f18647108e0b7e\"}],"
	"\"groupLabels\":{\"alertname\":\"DiskFull\"},"
	"\"commonLabels\":{\"alertname\":\"DiskFull\"},"
	"\"commonAnnotations\":{},"
	"\"externalURL\":\"http://vm:19093\","
	"\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"DiskFull\\\"}\",\"truncatedAlerts\":0}\n";

/* [captured] amtool 0.25.0 alert add, without --start/--end. */
static const char amtool_v2[] =
	"[{\"annotations\":{\"summary\":\"Disk full\"},"
	"\"endsAt\":\"0001-01-01T00:00:00.000Z\",\"startsAt\":\"0001-01-01T00:00:00.000Z\","
	"\"generatorURL\":\"http://example.invalid/graph\","
	"\"labels\":{\"alertname\":\"TestAlert\",\"service\":\"db\",\"severity\":\"critical\"}}]";

/* [captured] Prometheus 2.42 as an API v2 client. */
static const char prometheus_v2[] =
	"[{\"annotations\":{\"summary\":\"Always-firing heartbeat alert\"},"
	"\"endsAt\":\"2026-11-22T21:22:13.998Z\",\"startsAt\":\"2026-11-22T21:21:59.998Z\","
	"\"generatorURL\":\"http://vm:19090/graph?g0.expr=vector%281%29\\u0026g0.tab=1\","
	"\"labels\":{\"alertname\":\"Watchdog\",\"severity\":\"none\"}}]";

/* PagerDuty's documented trigger (timestamp with a "+0000" offset). */
static const char pd_trigger[] =
	"{\"routing_key\":\"0123456789abcdef0123456789abcdef\",\"event_action\":\"trigger\","
	"\"dedup_key\":\"db1/disk\","
	"\"payload\":{\"summary\":\"Disk 99% full on db1\",\"source\":\"db1.example\","
	"\"severity\":\"critical\","
	"\"timestamp\":\"2024-05-01T10:00:00.000+0000\",\"component\":\"disk\",\"group\":\"db\","
	"\"class\":\"capacity\","
	"\"custom_details\":{\"free\":\"1%\"}},"
	"\"links\":[{\"href\":\"https://runbooks.example/disk\",\"text\":\"Runbook\"}],"
	"\"client\":\"my-monitor\",\"client_url\":\"https://monitor.example\"}";

/* What Alertmanager's PagerDuty integration sends to resolve: a full
 * payload still, and the SHA-256 of the groupKey as dedup_key. */
static const char pd_am_resolve[] =
	"{\"routing_key\":\"0123456789abcdef0123456789abcdef\","
	"\"dedup_key\":\"8bd4f6a1a2a6b3bd8e2fd2f2c1b0c0e5d4d0a2b1c3e4f5a6b7c8d9e0f1a2b3c4\","
	"\"event_action\":\"resolve\","
	"\"payload\":{\"summary\":\"[RESOLVED] DiskFull (db1 critical)\",\"source\":\"Alertmanager\","
	"\"severity\":\"error\",\"custom_details\":{\"firing\":\"\",\"resolved\":\"x\","
	"\"num_firing\":\"0\",\"num_resolved\":\"1\"}},"
	"\"client\":\"Alertmanager\",\"client_url\":\"http://vm:19093/#/alerts?receiver=multi\"}";

#define KEY "0123456789abcdef0123456789abcdef"

static kx_ms am_now(void)
{
	return T("2026-11-22T21:20:00Z");
}

/* ---- helpers ---- */

static void assert_sorted_unique(const struct kx_labels *ls)
{
	for (size_t i = 1; i < ls->n; i++)
		if (strcmp(ls->v[i - 1].key, ls->v[i].key) >= 0)
			fail_msg("labels out of order: '%s' before '%s'", ls->v[i - 1].key,
				 ls->v[i].key);
}

typedef int (*list_decoder)(const char *, size_t, kx_ms, struct kx_alert_events *,
			    struct kx_err *);

/* Decodes body, expecting success; the caller releases l. */
static void decodes(list_decoder fn, const char *body, kx_ms now, struct kx_alert_events *l)
{
	struct kx_err err;
	kx_err_clear(&err);
	int rc = fn(body, strlen(body), now, l, &err);
	if (rc)
		fail_msg("refused (%d): %s\nbody: %.300s", rc, err.msg, body);
	for (size_t i = 0; i < l->n; i++) {
		assert_int_equal(kx_alert_event_check(&l->v[i], now, NULL, &err), 0);
		assert_sorted_unique(&l->v[i].labels);
	}
}

/* Expects fn(body) to fail with code and a message containing what, with
 * the list left empty. */
static void refuses_at(list_decoder fn, const char *body, size_t len, kx_ms now, int code,
		       const char *what)
{
	struct kx_alert_events l;
	struct kx_err err;
	int rc;

	kx_err_clear(&err);
	l.n = 99; /* not initialised: the decoder must do it */
	rc = fn(body, len, now, &l, &err);
	if (rc != code)
		fail_msg("gave %d (%s), expected %d\nbody: %.300s", rc, err.msg, code, body);
	assert_contains(err.msg, what);
	assert_int_equal(kx_text_check(err.msg, strlen(err.msg), 0), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	kx_alert_events_release(&l);
}

static void refuses(list_decoder fn, const char *body, kx_ms now, int code, const char *what)
{
	refuses_at(fn, body, strlen(body), now, code, what);
}

/* A webhook message of one firing alert with these labels and times. */
static char *webhook_with(const char *labels, const char *annotations, const char *starts)
{
	struct kx_buf b;
	kx_buf_init(&b, 1 << 24);
	assert_int_equal(
		kx_buf_addf(&b,
			    "{\"version\":\"4\",\"groupKey\":\"{}:{}\",\"status\":\"firing\","
			    "\"receiver\":\"r\",\"alerts\":[{\"status\":\"firing\",\"labels\":%s,"
			    "\"annotations\":%s,\"startsAt\":\"%s\","
			    "\"endsAt\":\"0001-01-01T00:00:00Z\",\"fingerprint\":\"abc\"}]}",
			    labels, annotations, starts),
		0);
	return kx_buf_take(&b, NULL);
}

/* ---- Alertmanager webhook ---- */

static void webhook_firing(void **state)
{
	struct kx_alert_events l;
	struct kx_alert_event *e;
	(void)state;

	decodes(kx_decode_am_webhook, am_firing, am_now(), &l);
	assert_int_equal(l.n, 2);
	e = &l.v[0];
	assert_int_equal(e->source, KX_SOURCE_ALERTMANAGER);
	assert_int_equal(e->action, KX_ALERT_TRIGGER);
	assert_string_equal(e->dedup_key, "e94c744ae3d44df8");
	assert_string_equal(e->summary, "Disk 99% full");
	assert_int_equal(e->level, KX_LEVEL_CRITICAL);
	assert_string_equal(e->source_host, "db1");
	assert_string_equal(e->group, "{}:{alertname=\"DiskFull\"}");
	assert_null(e->component);
	assert_null(e->class);
	assert_int_equal(e->labels.n, 3);
	assert_string_equal(e->labels.v[0].key, "alertname");
	assert_string_equal(e->labels.v[0].value, "DiskFull");
	assert_string_equal(e->labels.v[1].key, "instance");
	assert_string_equal(e->labels.v[2].key, "severity");
	assert_true(e->starts_at == T("2026-11-22T21:19:10.201Z"));
	assert_true(e->ends_at == KX_TIME_UNSET); /* the zero time */
	assert_string_equal(e->details,
			    "{\"annotations\":{\"summary\":\"Disk 99% full\"},"
			    "\"externalURL\":\"http://vm:19093\",\"receiver\":\"incident-server\"}");

	e = &l.v[1];
	assert_int_equal(e->action, KX_ALERT_TRIGGER);
	assert_string_equal(e->dedup_key, "82f18647108e0b7e");
	assert_string_equal(e->summary, "DiskFull"); /* no annotations: the alertname */
	assert_int_equal(e->level, KX_LEVEL_WARNING);
	assert_string_equal(e->source_host, "db2");
	assert_true(e->starts_at == T("2026-11-22T21:19:10.217Z"));
	assert_contains(e->details, "\"annotations\":{}");
	kx_alert_events_release(&l);
}

static void webhook_resolved(void **state)
{
	struct kx_alert_events l;
	(void)state;

	decodes(kx_decode_am_webhook, am_resolved, am_now(), &l);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(l.v[i].action, KX_ALERT_RESOLVE);
		assert_true(l.v[i].ends_at == T("2026-11-22T21:19:13Z"));
	}
	assert_string_equal(l.v[0].dedup_key, "e94c744ae3d44df8");
	assert_string_equal(l.v[1].dedup_key, "82f18647108e0b7e");
	kx_alert_events_release(&l);
}

static void webhook_without_fingerprint(void **state)
{
	static const char missing[] =
		"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\","
		"\"labels\":{\"alertname\":\"A\"}},"
		"{\"status\":\"firing\",\"labels\":{\"alertname\":\"B\"},\"fingerprint\":\"\"},"
		"{\"status\":\"firing\",\"labels\":{\"alertname\":\"C\"},\"fingerprint\":null}]}";
	struct kx_alert_events l;
	(void)state;

	decodes(kx_decode_am_webhook, missing, am_now(), &l);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_null(l.v[i].dedup_key); /* the service layer fingerprints the labels */
		assert_true(l.v[i].starts_at == KX_TIME_UNSET);
		assert_null(l.v[i].group);
		assert_null(l.v[i].source_host);
	}
	assert_string_equal(l.v[1].summary, "B");
	kx_alert_events_release(&l);
}

static void webhook_summary_choice(void **state)
{
	static const struct {
		const char *annotations, *labels, *summary;
	} cases[] = {
		{"{\"summary\":\"S\",\"description\":\"D\",\"message\":\"M\"}", "{\"alertname\":\"A\"}",
		 "S"},
		{"{\"summary\":\"\",\"description\":\"D\",\"message\":\"M\"}", "{\"alertname\":\"A\"}",
		 "D"},
		{"{\"message\":\"M\"}", "{\"alertname\":\"A\"}", "M"},
		{"{\"runbook_url\":\"http://x\"}", "{\"alertname\":\"A\"}", "A"},
		{"{}", "{\"job\":\"node\"}", "alert"},
		/* several lines stay, other control characters become spaces */
		{"{\"description\":\"two\\nlines\\u0007!\"}", "{}", "two\nlines !"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_alert_events l;
		char *body = webhook_with(cases[i].labels, cases[i].annotations,
					  "2026-11-22T21:19:10Z");
		decodes(kx_decode_am_webhook, body, am_now(), &l);
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0].summary, cases[i].summary);
		kx_alert_events_release(&l);
		free(body);
	}
}

static void webhook_cuts_what_it_derives(void **state)
{
	struct kx_alert_events l;
	struct kx_buf ann;
	char *desc = repeat("é", 2000), *inst = repeat("i", 2000), *labels, *body;
	size_t chars;
	(void)state;

	kx_buf_init(&ann, 1 << 20);
	assert_int_equal(kx_buf_addf(&ann, "{\"description\":\"%s\"}", desc), 0);
	labels = malloc(strlen(inst) + 64);
	snprintf(labels, strlen(inst) + 64, "{\"alertname\":\"A\",\"instance\":\"%s\"}", inst);
	body = webhook_with(labels, kx_buf_str(&ann), "2026-11-22T21:19:10Z");
	decodes(kx_decode_am_webhook, body, am_now(), &l);
	chars = kx_text_chars(l.v[0].summary, strlen(l.v[0].summary));
	assert_int_equal(chars, KX_ALERT_SUMMARY_MAX);
	assert_true(strcmp(l.v[0].summary + strlen(l.v[0].summary) - 3, "…") == 0);
	assert_int_equal(strlen(l.v[0].source_host), KX_ALERT_FIELD_MAX);
	/* the whole text stays in the details */
	assert_contains(l.v[0].details, desc);
	kx_alert_events_release(&l);
	free(body);
	free(labels);
	kx_buf_release(&ann);
	free(desc);
	free(inst);
}

static void webhook_times(void **state)
{
	static const struct {
		const char *text, *equals;
	} cases[] = {
		{"2026-11-22T21:19:10.201657098Z", "2026-11-22T21:19:10.201Z"},
		{"2026-11-22T21:19:10.2Z", "2026-11-22T21:19:10.200Z"},
		{"2026-11-22T21:19:10.20165709812345678901234567Z", "2026-11-22T21:19:10.201Z"},
		{"2026-11-22T22:19:10.5+01:00", "2026-11-22T21:19:10.500Z"},
		{"2026-11-22T16:49:10-04:30", "2026-11-22T21:19:10Z"},
		{"2026-11-22T22:19:10+0100", "2026-11-22T21:19:10Z"},
		{"2026-11-22t21:19:10z", "2026-11-22T21:19:10Z"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_alert_events l;
		char *body = webhook_with("{\"alertname\":\"A\"}", "{}", cases[i].text);
		decodes(kx_decode_am_webhook, body, am_now(), &l);
		if (l.v[0].starts_at != T(cases[i].equals))
			fail_msg("'%s' read as %lld", cases[i].text, (long long)l.v[0].starts_at);
		kx_alert_events_release(&l);
		free(body);
	}
	/* the zero time in startsAt, as amtool sends it, is "unset" */
	{
		struct kx_alert_events l;
		char *body = webhook_with("{\"alertname\":\"A\"}", "{}", "0001-01-01T00:00:00.000Z");
		decodes(kx_decode_am_webhook, body, am_now(), &l);
		assert_true(l.v[0].starts_at == KX_TIME_UNSET);
		kx_alert_events_release(&l);
		free(body);
	}
}

static void webhook_time_window(void **state)
{
	char *body;
	(void)state;

	/* 5 minutes ahead is clock skew, more is refused */
	body = webhook_with("{\"alertname\":\"A\"}", "{}", "2026-11-22T21:25:00Z");
	{
		struct kx_alert_events l;
		decodes(kx_decode_am_webhook, body, am_now(), &l);
		kx_alert_events_release(&l);
	}
	free(body);
	body = webhook_with("{\"alertname\":\"A\"}", "{}", "2026-11-22T21:25:00.001Z");
	refuses(kx_decode_am_webhook, body, am_now(), KX_EINVAL,
		"alerts[0]: 'startsAt' is more than 5 minutes in the future");
	free(body);
	body = webhook_with("{\"alertname\":\"A\"}", "{}", "2025-11-21T21:19:59Z");
	refuses(kx_decode_am_webhook, body, am_now(), KX_EINVAL,
		"alerts[0]: 'startsAt' is more than 366 days in the past");
	free(body);
	body = webhook_with("{\"alertname\":\"A\"}", "{}", "2026-11-22 21:19");
	refuses(kx_decode_am_webhook, body, am_now(), KX_EINVAL,
		"alerts[0]: 'startsAt' is not an RFC 3339 time");
	free(body);
	body = webhook_with("{\"alertname\":\"A\"}", "{}", "2026-02-30T00:00:00Z");
	refuses(kx_decode_am_webhook, body, am_now(), KX_EINVAL, "'startsAt' is not an RFC 3339");
	free(body);
}

static void webhook_versions(void **state)
{
	(void)state;
	refuses(kx_decode_am_webhook, "{\"version\":\"3\",\"alerts\":[]}", am_now(), KX_EINVAL,
		"unsupported webhook version '3': only version 4 is accepted");
	refuses(kx_decode_am_webhook, "{\"version\":\"5\",\"alerts\":[]}", am_now(), KX_EINVAL,
		"version '5'");
	refuses(kx_decode_am_webhook, "{\"alerts\":[]}", am_now(), KX_EINVAL,
		"'version' is missing");
	refuses(kx_decode_am_webhook, "{\"version\":4,\"alerts\":[]}", am_now(), KX_EINVAL,
		"'version' must be a string");
}

static void webhook_extra_fields_are_ignored(void **state)
{
	static const char newer[] =
		"{\"version\":\"4\",\"notification_reason\":\"new_alerts\","
		"\"routeLabels\":{\"team\":\"db\"},\"somethingElse\":[1,2,{}],"
		"\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"},"
		"\"newField\":{\"nested\":true}}]}";
	struct kx_alert_events l;
	(void)state;
	decodes(kx_decode_am_webhook, newer, am_now(), &l);
	assert_int_equal(l.n, 1);
	kx_alert_events_release(&l);
	/* no alerts is a valid (if empty) message */
	decodes(kx_decode_am_webhook, "{\"version\":\"4\",\"alerts\":[]}", am_now(), &l);
	assert_int_equal(l.n, 0);
	kx_alert_events_release(&l);
}

static void webhook_bad_json(void **state)
{
	(void)state;
	/* cut short: the position and jansson's reason */
	refuses_at(kx_decode_am_webhook, am_firing, 100, am_now(), KX_EJSON,
		   "invalid JSON at line 1, column ");
	refuses(kx_decode_am_webhook, "{\"version\":\"4\",", am_now(), KX_EJSON,
		"invalid JSON at line 1, column 15");
	refuses(kx_decode_am_webhook, "", am_now(), KX_EJSON, "the request body is empty");
	refuses(kx_decode_am_webhook, "{\"version\":\"4\",\"version\":\"4\",\"alerts\":[]}", am_now(),
		KX_EJSON, "duplicate");
	refuses(kx_decode_am_webhook, "[]", am_now(), KX_EINVAL,
		"the request body must be a JSON object");
	refuses(kx_decode_am_webhook, "\"4\"", am_now(), KX_EJSON, "invalid JSON");
	/* raw bytes quoted by jansson do not make the message unprintable */
	refuses(kx_decode_am_webhook, "{\"version\":\x01\xff}", am_now(), KX_EJSON,
		"invalid JSON");
}

static void webhook_wrong_types(void **state)
{
	static const struct {
		const char *body, *what;
	} cases[] = {
		{"{\"version\":\"4\",\"alerts\":{}}", "'alerts' must be an array"},
		{"{\"version\":\"4\"}", "'alerts' is missing"},
		{"{\"version\":\"4\",\"alerts\":[1]}", "alerts[0]: an alert must be an object"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":[]}]}",
		 "alerts[0]: 'labels' must be an object of strings"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\"}]}",
		 "alerts[0]: 'labels' is missing"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":1}}]}",
		 "alerts[0].labels: 'a' must have a string value"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		 "\"annotations\":{\"summary\":2}}]}",
		 "alerts[0]: 'annotations.summary' must be a string"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		 "\"annotations\":\"x\"}]}",
		 "alerts[0]: 'annotations' must be an object"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		 "\"startsAt\":1700000000}]}",
		 "alerts[0]: 'startsAt' must be a string"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		 "\"fingerprint\":12}]}",
		 "alerts[0]: 'fingerprint' must be a string"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		 "\"generatorURL\":false}]}",
		 "alerts[0]: 'generatorURL' must be a string"},
		{"{\"version\":\"4\",\"alerts\":[{\"labels\":{}}]}", "alerts[0]: 'status' is missing"},
		{"{\"version\":\"4\",\"alerts\":[{\"status\":\"pending\",\"labels\":{}}]}",
		 "alerts[0]: unknown status 'pending': use firing or resolved"},
		{"{\"version\":\"4\",\"groupKey\":7,\"alerts\":[]}", "'groupKey' must be a string"},
		{"{\"version\":\"4\",\"commonLabels\":[],\"alerts\":[]}",
		 "'commonLabels' must be an object"},
		{"{\"version\":\"4\",\"groupLabels\":{\"a\":1},\"alerts\":[]}",
		 "'groupLabels.a' must be a string"},
		{"{\"version\":\"4\",\"truncatedAlerts\":\"0\",\"alerts\":[]}",
		 "'truncatedAlerts' must be a whole number"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refuses(kx_decode_am_webhook, cases[i].body, am_now(), KX_EINVAL, cases[i].what);
}

static void webhook_bad_labels(void **state)
{
	static const char second_bad[] =
		"{\"version\":\"4\",\"alerts\":["
		"{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"}},"
		"{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\",\"Alert Name\":\"x\"}},"
		"{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"}}]}";
	struct kx_buf b;
	char *value;
	(void)state;

	refuses(kx_decode_am_webhook, second_bad, am_now(), KX_EINVAL,
		"alerts[1].labels: 'Alert Name' is not a valid label name");
	refuses(kx_decode_am_webhook,
		"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"9x\":\"v\"}}]}",
		am_now(), KX_EINVAL, "alerts[0].labels: '9x' is not a valid label name");
	refuses(kx_decode_am_webhook,
		"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"b\\nc\"}}]}",
		am_now(), KX_EINVAL, "alerts[0].labels: label 'a' has a value with control");

	/* 200 labels */
	kx_buf_init(&b, 1 << 20);
	kx_buf_adds(&b, "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{");
	for (int i = 0; i < 200; i++)
		kx_buf_addf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
	kx_buf_adds(&b, "}}]}");
	refuses(kx_decode_am_webhook, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"alerts[0].labels: too many labels (at most 128)");
	kx_buf_release(&b);

	/* a value over 2048 bytes */
	value = repeat("v", KX_ALERT_LABEL_VALUE_MAX + 1);
	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b,
		    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"big\":\"%s\"}}]}",
		    value);
	refuses(kx_decode_am_webhook, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"alerts[0].labels: label 'big' has a value longer than 2048 bytes");
	kx_buf_release(&b);
	free(value);

	/* empty values are no labels: 200 of them are fine */
	kx_buf_init(&b, 1 << 20);
	kx_buf_adds(&b, "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{"
			"\"alertname\":\"A\"");
	for (int i = 0; i < 200; i++)
		kx_buf_addf(&b, ",\"l%d\":\"\"", i);
	kx_buf_adds(&b, "}}]}");
	{
		struct kx_alert_events l;
		decodes(kx_decode_am_webhook, kx_buf_str(&b), am_now(), &l);
		assert_int_equal(l.v[0].labels.n, 1);
		kx_alert_events_release(&l);
	}
	kx_buf_release(&b);
}

static void webhook_bad_fingerprint(void **state)
{
	char *fp = repeat("f", KX_ALERT_DEDUP_MAX + 1);
	struct kx_buf b;
	(void)state;

	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b,
		    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		    "\"fingerprint\":\"%s\"}]}",
		    fp);
	refuses(kx_decode_am_webhook, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"alerts[0]: 'fingerprint' is too long (256 > 255 bytes)");
	kx_buf_release(&b);
	free(fp);
	refuses(kx_decode_am_webhook,
		"{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		"\"fingerprint\":\"a\\tb\"}]}",
		am_now(), KX_EINVAL, "alerts[0]: 'fingerprint' has control characters");
}

/* A body of n alerts, as the webhook or API v2 wraps them. */
static char *many_alerts(size_t n, bool webhook)
{
	struct kx_buf b;
	kx_buf_init(&b, 1 << 26);
	kx_buf_adds(&b, webhook ? "{\"version\":\"4\",\"alerts\":[" : "[");
	for (size_t i = 0; i < n; i++)
		kx_buf_addf(&b, "%s{%s\"labels\":{\"alertname\":\"A%zu\"}}", i ? "," : "",
			    webhook ? "\"status\":\"firing\"," : "", i);
	kx_buf_adds(&b, webhook ? "]}" : "]");
	return kx_buf_take(&b, NULL);
}

static void batch_limit(void **state)
{
	struct kx_alert_events l;
	char *body;
	(void)state;

	body = many_alerts(KX_ALERT_BATCH_MAX, true);
	decodes(kx_decode_am_webhook, body, am_now(), &l);
	assert_int_equal(l.n, KX_ALERT_BATCH_MAX);
	kx_alert_events_release(&l);
	free(body);
	body = many_alerts(KX_ALERT_BATCH_MAX + 1, true);
	refuses(kx_decode_am_webhook, body, am_now(), KX_ETOOBIG,
		"too many alerts in one request (1001 > 1000)");
	free(body);

	body = many_alerts(KX_ALERT_BATCH_MAX, false);
	decodes(kx_decode_am_v2, body, am_now(), &l);
	assert_int_equal(l.n, KX_ALERT_BATCH_MAX);
	kx_alert_events_release(&l);
	free(body);
	body = many_alerts(KX_ALERT_BATCH_MAX + 1, false);
	refuses(kx_decode_am_v2, body, am_now(), KX_ETOOBIG,
		"too many alerts in one request (1001 > 1000)");
	free(body);
}

/* ---- Alertmanager API v2 ---- */

static void v2_amtool(void **state)
{
	struct kx_alert_events l;
	struct kx_alert_event *e;
	(void)state;

	decodes(kx_decode_am_v2, amtool_v2, am_now(), &l);
	assert_int_equal(l.n, 1);
	e = &l.v[0];
	assert_int_equal(e->source, KX_SOURCE_ALERTMANAGER);
	assert_int_equal(e->action, KX_ALERT_TRIGGER);
	assert_null(e->dedup_key);
	assert_true(e->starts_at == KX_TIME_UNSET); /* zero time: now */
	assert_true(e->ends_at == KX_TIME_UNSET);
	assert_string_equal(e->summary, "Disk full");
	assert_int_equal(e->level, KX_LEVEL_CRITICAL);
	assert_int_equal(e->labels.n, 3);
	assert_string_equal(kx_labels_get(&e->labels, "service"), "db");
	assert_null(e->group);
	assert_string_equal(e->details, "{\"annotations\":{\"summary\":\"Disk full\"},"
					"\"generatorURL\":\"http://example.invalid/graph\"}");
	kx_alert_events_release(&l);
}

static void v2_prometheus(void **state)
{
	struct kx_alert_events l;
	struct kx_alert_event *e;
	kx_ms now = T("2026-11-22T21:22:00Z");
	(void)state;

	decodes(kx_decode_am_v2, prometheus_v2, now, &l);
	e = &l.v[0];
	assert_int_equal(e->action, KX_ALERT_TRIGGER);
	assert_true(e->starts_at == T("2026-11-22T21:21:59.998Z"));
	assert_true(e->ends_at == T("2026-11-22T21:22:13.998Z")); /* its expected end */
	assert_int_equal(e->level, KX_LEVEL_INFO);		   /* severity "none" */
	assert_string_equal(e->summary, "Always-firing heartbeat alert");
	assert_contains(e->details, "vector%281%29&g0.tab=1");
	kx_alert_events_release(&l);

	/* once endsAt has passed, the same alert is a resolve */
	decodes(kx_decode_am_v2, prometheus_v2, T("2026-11-22T21:22:13.998Z"), &l);
	assert_int_equal(l.v[0].action, KX_ALERT_RESOLVE);
	assert_true(l.v[0].ends_at == T("2026-11-22T21:22:13.998Z"));
	kx_alert_events_release(&l);
	decodes(kx_decode_am_v2, prometheus_v2, T("2026-11-22T21:22:13.997Z"), &l);
	assert_int_equal(l.v[0].action, KX_ALERT_TRIGGER);
	kx_alert_events_release(&l);
}

static void v2_refusals(void **state)
{
	static const struct {
		const char *body, *what;
		int code;
	} cases[] = {
		{"{}", "the request body must be a JSON array of alerts", KX_EINVAL},
		{"[{}]", "alerts[0]: 'labels' is missing", KX_EINVAL},
		{"[{\"labels\":{}}]", "alerts[0]: 'labels' must not be empty", KX_EINVAL},
		{"[{\"labels\":{\"a\":\"\"}}]", "alerts[0]: 'labels' must not be empty", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"}},{\"labels\":{\"Alert Name\":\"A\"}}]",
		 "alerts[1].labels: 'Alert Name' is not a valid label name", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"},\"startsAt\":\"2026-11-22T21:00:00Z\","
		 "\"endsAt\":\"2026-11-22T20:00:00Z\"}]",
		 "alerts[0]: 'endsAt' is before 'startsAt'", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"},\"endsAt\":\"tomorrow\"}]",
		 "alerts[0]: 'endsAt' is not an RFC 3339 time", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"},\"startsAt\":\"2027-01-01T00:00:00Z\"}]",
		 "alerts[0]: 'startsAt' is more than 5 minutes in the future", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"},\"startsAt\":\"2020-01-01T00:00:00Z\"}]",
		 "alerts[0]: 'startsAt' is more than 366 days in the past", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"},\"generatorURL\":[]}]",
		 "alerts[0]: 'generatorURL' must be a string", KX_EINVAL},
		{"[{\"labels\":{\"alertname\":\"A\"}}", "invalid JSON at line 1, column", KX_EJSON},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refuses(kx_decode_am_v2, cases[i].body, am_now(), cases[i].code, cases[i].what);
}

/* ---- PagerDuty Events v2 ---- */

/* Expects decode of body to fail, with err the first of the listed
 * messages and exactly those in errors. */
static void ev2_refuses(const char *body, kx_ms now, int code, const char *const *messages)
{
	struct kx_alert_event e;
	struct kx_ev2_errors errors;
	struct kx_err err;
	char *key = (char *)"garbage";
	size_t n = 0;
	int rc;

	kx_err_clear(&err);
	rc = kx_decode_events_v2(body, strlen(body), now, &e, &key, &errors, &err);
	if (rc != code)
		fail_msg("gave %d (%s), expected %d\nbody: %.300s", rc, err.msg, code, body);
	assert_null(key);
	assert_null(e.summary);
	assert_null(e.dedup_key);
	assert_null(e.details);
	while (messages[n])
		n++;
	if (errors.n != n) {
		for (size_t i = 0; i < errors.n; i++)
			print_message("  %s\n", errors.v[i]);
		fail_msg("%zu messages, expected %zu", errors.n, n);
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(errors.v[i], messages[i]);
	assert_string_equal(err.msg, messages[0]);
	kx_ev2_errors_release(&errors);
	assert_int_equal(errors.n, 0);
	kx_alert_event_release(&e);
}

static void ev2_trigger(void **state)
{
	struct kx_alert_event e;
	struct kx_ev2_errors errors;
	struct kx_err err;
	char *key;
	kx_ms now = T("2024-05-01T10:01:00Z");
	(void)state;

	assert_int_equal(kx_decode_events_v2(B(pd_trigger), now, &e, &key, &errors, &err), 0);
	assert_int_equal(errors.n, 0);
	assert_string_equal(key, KEY);
	assert_int_equal(e.source, KX_SOURCE_EVENTS_V2);
	assert_int_equal(e.action, KX_ALERT_TRIGGER);
	assert_string_equal(e.dedup_key, "db1/disk");
	assert_string_equal(e.summary, "Disk 99% full on db1");
	assert_string_equal(e.source_host, "db1.example");
	assert_int_equal(e.level, KX_LEVEL_CRITICAL);
	assert_true(e.starts_at == T("2024-05-01T10:00:00Z")); /* "+0000" */
	assert_string_equal(e.component, "disk");
	assert_string_equal(e.group, "db");
	assert_string_equal(e.class, "capacity");
	assert_int_equal(e.labels.n, 0);
	assert_string_equal(e.details,
			    "{\"custom_details\":{\"free\":\"1%\"},"
			    "\"links\":[{\"href\":\"https://runbooks.example/disk\",\"text\":\"Runbook\"}],"
			    "\"client\":\"my-monitor\",\"client_url\":\"https://monitor.example\"}");
	assert_int_equal(kx_alert_event_check(&e, now, NULL, &err), 0);
	kx_alert_event_release(&e);
	free(key);
}

static void ev2_minimal_and_resolve(void **state)
{
	struct kx_alert_event e;
	struct kx_err err;
	char *key;
	(void)state;

	/* errors may be NULL; no dedup_key on a trigger is fine */
	assert_int_equal(
		kx_decode_events_v2(B("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
				      "\"payload\":{\"summary\":\"s\",\"source\":\"h\","
				      "\"severity\":\"info\",\"custom_details\":\"just text\"},"
				      "\"dedup_key\":\"\"}"),
				    am_now(), &e, &key, NULL, &err),
		0);
	assert_null(e.dedup_key);
	assert_int_equal(e.level, KX_LEVEL_INFO);
	assert_true(e.starts_at == KX_TIME_UNSET);
	assert_string_equal(e.details, "{\"custom_details\":\"just text\"}");
	kx_alert_event_release(&e);
	free(key);

	/* Alertmanager's resolve, payload and all */
	assert_int_equal(kx_decode_events_v2(B(pd_am_resolve), am_now(), &e, &key, NULL, &err), 0);
	assert_int_equal(e.action, KX_ALERT_RESOLVE);
	assert_string_equal(e.dedup_key,
			    "8bd4f6a1a2a6b3bd8e2fd2f2c1b0c0e5d4d0a2b1c3e4f5a6b7c8d9e0f1a2b3c4");
	assert_null(e.summary); /* a resolve changes nothing of the alert */
	assert_contains(e.details, "\"client\":\"Alertmanager\"");
	kx_alert_event_release(&e);
	free(key);

	/* an acknowledge needs nothing but its key */
	assert_int_equal(kx_decode_events_v2(B("{\"routing_key\":\"" KEY "\",\"dedup_key\":\"k\","
					       "\"event_action\":\"acknowledge\"}"),
					     am_now(), &e, &key, NULL, &err),
			 0);
	assert_int_equal(e.action, KX_ALERT_ACKNOWLEDGE);
	assert_null(e.details);
	kx_alert_event_release(&e);
	free(key);
}

static void ev2_collects_every_problem(void **state)
{
	char *summary = repeat("é", KX_ALERT_SUMMARY_MAX + 1);
	struct kx_buf b;
	(void)state;

	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b,
		    "{\"event_action\":\"trigger\",\"payload\":{\"summary\":\"%s\","
		    "\"severity\":\"P1\"}}",
		    summary);
	{
		static const char *const want[] = {
			"'routing_key' is missing",
			"'payload.summary' is too long (1025 > 1024 characters)",
			"'payload.source' is missing",
			"'payload.severity' is invalid (must be one of: critical, error, warning, info)",
			NULL};
		ev2_refuses(kx_buf_str(&b), am_now(), KX_EINVAL, want);
	}
	kx_buf_release(&b);
	free(summary);
	{
		static const char *const want[] = {
			"'routing_key' has the wrong length (31, must be 32 characters)",
			"'event_action' is invalid (must be one of: trigger, acknowledge, resolve)",
			NULL};
		ev2_refuses("{\"routing_key\":\"0123456789abcdef0123456789abcde\","
			    "\"event_action\":\"page\"}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {
			"'routing_key' must be a string", "'event_action' is missing",
			NULL};
		ev2_refuses("{\"routing_key\":123}", am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"'payload.summary' is missing",
						   "'payload.source' is missing",
						   "'payload.severity' is missing", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
			    "\"payload\":{\"summary\":\"\"}}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"'payload' is missing", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\"}", am_now(),
			    KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"'payload' must be an object", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
			    "\"payload\":[]}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {
			"'payload.summary' must be a string", "'payload.source' must be a string",
			"'payload.severity' must be a string", "'payload.timestamp' must be a string",
			"'payload.component' must be a string", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
			    "\"payload\":{\"summary\":1,\"source\":{},\"severity\":[],"
			    "\"timestamp\":2,\"component\":true}}",
			    am_now(), KX_EINVAL, want);
	}
}

static void ev2_dedup_key(void **state)
{
	char *dk = repeat("k", KX_ALERT_DEDUP_MAX + 1);
	struct kx_buf b;
	(void)state;
	{
		static const char *const want[] = {
			"'dedup_key' is missing (required for acknowledge and resolve)", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"resolve\"}", am_now(),
			    KX_EINVAL, want);
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"acknowledge\","
			    "\"dedup_key\":\"\"}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"'dedup_key' must be a string", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"resolve\","
			    "\"dedup_key\":5}",
			    am_now(), KX_EINVAL, want);
	}
	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b, "{\"routing_key\":\"" KEY "\",\"event_action\":\"resolve\",\"dedup_key\":\"%s\"}",
		    dk);
	{
		static const char *const want[] = {"'dedup_key' is too long (256 > 255 bytes)", NULL};
		ev2_refuses(kx_buf_str(&b), am_now(), KX_ETOOBIG, want);
	}
	kx_buf_release(&b);
	free(dk);
}

static void ev2_summary_length(void **state)
{
	char *ok = repeat("é", KX_ALERT_SUMMARY_MAX);
	struct kx_alert_event e;
	struct kx_err err;
	struct kx_buf b;
	char *key;
	(void)state;

	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b,
		    "{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\",\"payload\":{"
		    "\"summary\":\"%s\",\"source\":\"h\",\"severity\":\"error\"}}",
		    ok);
	assert_int_equal(kx_decode_events_v2(B(kx_buf_str(&b)), am_now(), &e, &key, NULL, &err), 0);
	assert_string_equal(e.summary, ok);
	assert_int_equal(e.level, KX_LEVEL_ERROR);
	kx_alert_event_release(&e);
	free(key);
	kx_buf_release(&b);
	free(ok);
}

static void ev2_times_and_sizes(void **state)
{
	struct kx_buf b;
	char *big;
	(void)state;
	{
		static const char *const want[] = {
			"'payload.timestamp' is more than 5 minutes in the future", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
			    "\"payload\":{\"summary\":\"s\",\"source\":\"h\",\"severity\":\"info\","
			    "\"timestamp\":\"2026-11-22T21:30:00Z\"}}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {
			"'payload.timestamp' is not an RFC 3339 time like 2026-11-25T14:00:00Z: "
			"'yesterday'",
			NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\","
			    "\"payload\":{\"summary\":\"s\",\"source\":\"h\",\"severity\":\"info\","
			    "\"timestamp\":\"yesterday\"}}",
			    am_now(), KX_EINVAL, want);
	}
	/* over 512 KiB */
	big = repeat("x", KX_ALERT_EVENT_MAX);
	kx_buf_init(&b, 1 << 21);
	kx_buf_addf(&b, "{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\",\"x\":\"%s\"}",
		    big);
	{
		static const char *const want[] = {"the event is larger than 524288 bytes", NULL};
		ev2_refuses(kx_buf_str(&b), am_now(), KX_ETOOBIG, want);
	}
	kx_buf_release(&b);
	/* custom details past the 64 KiB of details */
	kx_buf_init(&b, 1 << 21);
	kx_buf_addf(&b,
		    "{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\",\"payload\":{"
		    "\"summary\":\"s\",\"source\":\"h\",\"severity\":\"info\","
		    "\"custom_details\":{\"log\":\"%.70000s\"}}}",
		    big);
	{
		static const char *const want[] = {
			"'payload.custom_details', 'links' and 'images' are too large (70029 > 65536 "
			"bytes of details)",
			NULL};
		ev2_refuses(kx_buf_str(&b), am_now(), KX_ETOOBIG, want);
	}
	kx_buf_release(&b);
	{
		char *src = repeat("s", KX_ALERT_FIELD_MAX + 1);
		kx_buf_init(&b, 1 << 20);
		kx_buf_addf(&b,
			    "{\"routing_key\":\"" KEY "\",\"event_action\":\"trigger\",\"payload\":{"
			    "\"summary\":\"s\",\"source\":\"%s\",\"severity\":\"info\"}}",
			    src);
		static const char *const want[] = {"'payload.source' is too long (256 > 255 bytes)",
						   NULL};
		ev2_refuses(kx_buf_str(&b), am_now(), KX_ETOOBIG, want);
		kx_buf_release(&b);
		free(src);
	}
	free(big);
}

static void ev2_links_and_images(void **state)
{
	struct kx_buf b;
	(void)state;
	{
		static const char *const want[] = {
			"'links[0].href' is missing", "'links[1]' must be an object",
			"'links[2].text' must be a string", "'images[0].src' is missing",
			"'images[1].alt' must be a string", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"acknowledge\","
			    "\"dedup_key\":\"k\","
			    "\"links\":[{\"text\":\"t\"},\"x\",{\"href\":\"h\",\"text\":1}],"
			    "\"images\":[{\"href\":\"h\"},{\"src\":\"s\",\"alt\":false}]}",
			    am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"'links' must be an array",
						   "'images' must be an array",
						   "'client' must be a string", NULL};
		ev2_refuses("{\"routing_key\":\"" KEY "\",\"event_action\":\"acknowledge\","
			    "\"dedup_key\":\"k\",\"links\":{},\"images\":\"i\",\"client\":1}",
			    am_now(), KX_EINVAL, want);
	}
	/* at most 16 messages are kept */
	kx_buf_init(&b, 1 << 20);
	kx_buf_adds(&b, "{\"routing_key\":\"" KEY "\",\"event_action\":\"acknowledge\","
			"\"dedup_key\":\"k\",\"links\":[");
	for (int i = 0; i < 40; i++)
		kx_buf_addf(&b, "%s{}", i ? "," : "");
	kx_buf_adds(&b, "]}");
	{
		struct kx_alert_event e;
		struct kx_ev2_errors errors;
		struct kx_err err;
		char *key;
		assert_int_equal(kx_decode_events_v2(B(kx_buf_str(&b)), am_now(), &e, &key,
						     &errors, &err),
				 KX_EINVAL);
		assert_int_equal(errors.n, KX_EV2_ERRORS_MAX);
		assert_string_equal(errors.v[15], "'links[15].href' is missing");
		assert_string_equal(err.msg, "'links[0].href' is missing");
		kx_ev2_errors_release(&errors);
		kx_alert_event_release(&e);
	}
	kx_buf_release(&b);
}

static void ev2_bad_json(void **state)
{
	(void)state;
	{
		struct kx_alert_event e;
		struct kx_ev2_errors errors;
		struct kx_err err;
		char *key;
		int rc = kx_decode_events_v2(pd_trigger, 30, am_now(), &e, &key, &errors, &err);
		assert_int_equal(rc, KX_EJSON);
		assert_int_equal(errors.n, 1);
		assert_prefix(errors.v[0], "invalid JSON at line 1, column ");
		assert_string_equal(errors.v[0], err.msg);
		kx_ev2_errors_release(&errors);
		kx_alert_event_release(&e);
	}
	{
		static const char *const want[] = {"the request body must be a JSON object", NULL};
		ev2_refuses("[1]", am_now(), KX_EINVAL, want);
	}
	{
		static const char *const want[] = {"the request body is empty", NULL};
		ev2_refuses("", am_now(), KX_EJSON, want);
	}
}

/* ---- PagerDuty change events ---- */

static void change_event(void **state)
{
	static const char body[] =
		"{\"routing_key\":\"" KEY "\",\"payload\":{\"summary\":\"Build 42 deployed\","
		"\"source\":\"ci.example\",\"timestamp\":\"2026-11-22T21:10:00.123456+00:00\","
		"\"custom_details\":{\"build\":42}},"
		"\"links\":[{\"href\":\"https://ci.example/42\",\"text\":\"Build\"}]}";
	struct kx_change_event c;
	struct kx_ev2_errors errors;
	struct kx_err err;
	char *key;
	(void)state;

	assert_int_equal(kx_decode_change_v2(B(body), am_now(), &c, &key, &errors, &err), 0);
	assert_string_equal(key, KEY);
	assert_null(c.service);
	assert_string_equal(c.summary, "Build 42 deployed");
	assert_string_equal(c.source_host, "ci.example");
	assert_true(c.at == T("2026-11-22T21:10:00.123Z"));
	assert_true(c.received_at == am_now());
	assert_string_equal(c.details,
			    "{\"custom_details\":{\"build\":42},"
			    "\"links\":[{\"href\":\"https://ci.example/42\",\"text\":\"Build\"}]}");
	kx_change_event_release(&c);
	free(key);

	/* no timestamp: its arrival; no details: {} */
	assert_int_equal(kx_decode_change_v2(B("{\"routing_key\":\"" KEY "\","
					       "\"payload\":{\"summary\":\"s\"}}"),
					     am_now(), &c, &key, NULL, &err),
			 0);
	assert_true(c.at == am_now());
	assert_null(c.source_host);
	assert_string_equal(c.details, "{}");
	kx_change_event_release(&c);
	free(key);
}

static void change_refusals(void **state)
{
	static const struct {
		const char *body, *first;
		size_t n;
		int code;
	} cases[] = {
		{"{}", "'routing_key' is missing", 2, KX_EINVAL},
		{"{\"routing_key\":\"" KEY "\",\"payload\":{}}", "'payload.summary' is missing", 1,
		 KX_EINVAL},
		{"{\"routing_key\":\"" KEY "\",\"payload\":7}", "'payload' must be an object", 1,
		 KX_EINVAL},
		{"{\"routing_key\":\"" KEY "\",\"payload\":{\"summary\":\"s\","
		 "\"timestamp\":\"2019-01-01T00:00:00Z\"}}",
		 "'payload.timestamp' is more than 366 days in the past", 1, KX_EINVAL},
		{"{\"routing_key\":\"" KEY "\",\"payload\":{\"summary\":\"s\"},\"links\":[{}]}",
		 "'links[0].href' is missing", 1, KX_EINVAL},
		{"{\"routing_key\":", "invalid JSON at line 1, column", 1, KX_EJSON},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_change_event c;
		struct kx_ev2_errors errors;
		struct kx_err err;
		char *key;
		int rc = kx_decode_change_v2(B(cases[i].body), am_now(), &c, &key, &errors, &err);
		if (rc != cases[i].code)
			fail_msg("%s gave %d (%s)", cases[i].body, rc, err.msg);
		assert_int_equal(errors.n, cases[i].n);
		assert_prefix(errors.v[0], cases[i].first);
		assert_string_equal(err.msg, errors.v[0]);
		assert_null(key);
		assert_null(c.summary);
		assert_null(c.details);
		kx_ev2_errors_release(&errors);
		kx_change_event_release(&c);
	}
	{
		char *s = repeat("x", KX_ALERT_SUMMARY_MAX + 1);
		struct kx_buf b;
		struct kx_change_event c;
		struct kx_err err;
		char *key;
		kx_buf_init(&b, 1 << 20);
		kx_buf_addf(&b, "{\"routing_key\":\"" KEY "\",\"payload\":{\"summary\":\"%s\"}}", s);
		assert_int_equal(kx_decode_change_v2(B(kx_buf_str(&b)), am_now(), &c, &key, NULL,
						     &err),
				 KX_ETOOBIG);
		assert_string_equal(err.msg, "'payload.summary' is too long (1025 > 1024 characters)");
		kx_change_event_release(&c);
		kx_buf_release(&b);
		free(s);
	}
}

/* ---- POST /v1/alerts ---- */

static void generic_one(void **state)
{
	static const char body[] =
		"{\"summary\":\"Queue backlog over 10k\",\"severity\":\"error\","
		"\"dedup_key\":\"queue/backlog\",\"source\":\"worker-3\",\"component\":\"queue\","
		"\"group\":\"payments\",\"class\":\"backlog\","
		"\"labels\":{\"queue\":\"payouts\",\"Region\":\"eu-west-1\"},"
		"\"details\":{\"depth\":10422,\"oldest\":\"4m\"},"
		"\"starts_at\":\"2026-11-22T21:15:00Z\",\"future_field\":1}";
	struct kx_alert_events l;
	struct kx_alert_event *e;
	(void)state;

	decodes(kx_decode_generic_alerts, body, am_now(), &l);
	assert_int_equal(l.n, 1);
	e = &l.v[0];
	assert_int_equal(e->source, KX_SOURCE_GENERIC);
	assert_int_equal(e->action, KX_ALERT_TRIGGER);
	assert_string_equal(e->summary, "Queue backlog over 10k");
	assert_int_equal(e->level, KX_LEVEL_ERROR);
	assert_string_equal(e->dedup_key, "queue/backlog");
	assert_string_equal(e->source_host, "worker-3");
	assert_string_equal(e->component, "queue");
	assert_string_equal(e->group, "payments");
	assert_string_equal(e->class, "backlog");
	assert_int_equal(e->labels.n, 2);
	assert_string_equal(e->labels.v[0].key, "Region");
	assert_string_equal(e->details, "{\"depth\":10422,\"oldest\":\"4m\"}");
	assert_true(e->starts_at == T("2026-11-22T21:15:00Z"));
	assert_true(e->ends_at == KX_TIME_UNSET);
	kx_alert_events_release(&l);

	/* the defaults */
	decodes(kx_decode_generic_alerts, "{\"summary\":\"s\"}", am_now(), &l);
	assert_int_equal(l.v[0].action, KX_ALERT_TRIGGER);
	assert_int_equal(l.v[0].level, KX_LEVEL_WARNING);
	assert_null(l.v[0].dedup_key);
	assert_null(l.v[0].details);
	kx_alert_events_release(&l);
}

static void generic_batch(void **state)
{
	static const char body[] =
		"{\"alerts\":[{\"summary\":\"a\",\"status\":\"firing\",\"severity\":\"critical\"},"
		"{\"status\":\"resolved\",\"dedup_key\":\"k\"}]}";
	struct kx_alert_events l;
	(void)state;

	decodes(kx_decode_generic_alerts, body, am_now(), &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].level, KX_LEVEL_CRITICAL);
	assert_int_equal(l.v[1].action, KX_ALERT_RESOLVE);
	assert_null(l.v[1].summary);
	kx_alert_events_release(&l);
	decodes(kx_decode_generic_alerts, "{\"alerts\":[]}", am_now(), &l);
	assert_int_equal(l.n, 0);
	kx_alert_events_release(&l);
}

static void generic_refusals(void **state)
{
	static const struct {
		const char *body, *what;
		int code;
	} cases[] = {
		{"{}", "'summary' is required", KX_EINVAL},
		{"{\"alerts\":[{\"summary\":\"a\"},{\"severity\":\"info\"}]}",
		 "alerts[1]: 'summary' is required", KX_EINVAL},
		{"{\"summary\":\"s\",\"severity\":\"P1\"}",
		 "unknown severity 'P1': use critical, error, warning or info", KX_EINVAL},
		{"{\"alerts\":[{\"summary\":\"s\",\"status\":\"open\"}]}",
		 "alerts[0]: unknown status 'open': use firing or resolved", KX_EINVAL},
		{"{\"summary\":\"s\",\"details\":[1]}", "'details' must be an object", KX_EINVAL},
		{"{\"summary\":\"s\",\"labels\":{\"Alert Name\":\"x\"}}",
		 "labels: 'Alert Name' is not a valid label name", KX_EINVAL},
		{"{\"alerts\":[{\"summary\":\"s\",\"labels\":{\"ok\":1}}]}",
		 "alerts[0].labels: 'ok' must have a string value", KX_EINVAL},
		{"{\"summary\":7}", "'summary' must be a string", KX_EINVAL},
		{"{\"summary\":\"s\",\"dedup_key\":\"\"}", "'dedup_key' is empty", KX_EINVAL},
		{"{\"summary\":\"s\",\"source\":\"a\\nb\"}", "'source' has control characters",
		 KX_EINVAL},
		{"{\"summary\":\"s\",\"starts_at\":\"2026-11-22T21:26:00Z\"}",
		 "'starts_at' is more than 5 minutes in the future", KX_EINVAL},
		{"{\"alerts\":{}}", "'alerts' must be an array", KX_EINVAL},
		{"[{\"summary\":\"s\"}]", "the request body must be a JSON object", KX_EINVAL},
		{"{\"summary\":\"s\"", "invalid JSON at line 1, column", KX_EJSON},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refuses(kx_decode_generic_alerts, cases[i].body, am_now(), cases[i].code,
			cases[i].what);
}

static void generic_sizes(void **state)
{
	char *summary = repeat("s", KX_ALERT_SUMMARY_MAX + 1);
	char *dedup = repeat("d", KX_ALERT_DEDUP_MAX + 1);
	struct kx_buf b;
	(void)state;

	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b, "{\"summary\":\"%s\"}", summary);
	refuses(kx_decode_generic_alerts, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"'summary' is too long (1025 > 1024 characters)");
	kx_buf_release(&b);
	kx_buf_init(&b, 1 << 20);
	kx_buf_addf(&b, "{\"alerts\":[{\"summary\":\"s\",\"dedup_key\":\"%s\"}]}", dedup);
	refuses(kx_decode_generic_alerts, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"alerts[0]: 'dedup_key' is too long (256 > 255 bytes)");
	kx_buf_release(&b);
	kx_buf_init(&b, 1 << 26);
	kx_buf_adds(&b, "{\"alerts\":[");
	for (int i = 0; i <= KX_ALERT_BATCH_MAX; i++)
		kx_buf_addf(&b, "%s{\"summary\":\"s\"}", i ? "," : "");
	kx_buf_adds(&b, "]}");
	refuses(kx_decode_generic_alerts, kx_buf_str(&b), am_now(), KX_ETOOBIG,
		"too many alerts in one request (1001 > 1000)");
	kx_buf_release(&b);
	free(summary);
	free(dedup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(webhook_firing),
		cmocka_unit_test(webhook_resolved),
		cmocka_unit_test(webhook_without_fingerprint),
		cmocka_unit_test(webhook_summary_choice),
		cmocka_unit_test(webhook_cuts_what_it_derives),
		cmocka_unit_test(webhook_times),
		cmocka_unit_test(webhook_time_window),
		cmocka_unit_test(webhook_versions),
		cmocka_unit_test(webhook_extra_fields_are_ignored),
		cmocka_unit_test(webhook_bad_json),
		cmocka_unit_test(webhook_wrong_types),
		cmocka_unit_test(webhook_bad_labels),
		cmocka_unit_test(webhook_bad_fingerprint),
		cmocka_unit_test(batch_limit),
		cmocka_unit_test(v2_amtool),
		cmocka_unit_test(v2_prometheus),
		cmocka_unit_test(v2_refusals),
		cmocka_unit_test(ev2_trigger),
		cmocka_unit_test(ev2_minimal_and_resolve),
		cmocka_unit_test(ev2_collects_every_problem),
		cmocka_unit_test(ev2_dedup_key),
		cmocka_unit_test(ev2_summary_length),
		cmocka_unit_test(ev2_times_and_sizes),
		cmocka_unit_test(ev2_links_and_images),
		cmocka_unit_test(ev2_bad_json),
		cmocka_unit_test(change_event),
		cmocka_unit_test(change_refusals),
		cmocka_unit_test(generic_one),
		cmocka_unit_test(generic_batch),
		cmocka_unit_test(generic_refusals),
		cmocka_unit_test(generic_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
