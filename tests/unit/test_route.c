/* test_route.c — core/route: matchers, routing decisions, silences, and
 * the config sections they come from (services, routes, routing_default,
 * checks, e-mail channels). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/alert.h"
#include "core/config.h"
#include "core/route.h"
#include "helpers.h"

static void labels(struct kx_labels *ls, ...)
{
	va_list ap;
	const char *k;
	struct kx_err err = {0};
	kx_labels_init(ls);
	va_start(ap, ls);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		assert_int_equal(kx_alert_label_set(ls, k, v, &err), 0);
	}
	va_end(ap);
}

static bool matches(const char *text, struct kx_labels *ls)
{
	struct kx_matchers *m;
	struct kx_err err = {0};
	bool r;
	assert_int_equal(kx_matchers_parse(text, &m, &err), 0);
	r = kx_matchers_match(m, ls);
	kx_matchers_free(m);
	return r;
}

static void matcher_ops(void **state)
{
	struct kx_labels ls;
	(void)state;
	labels(&ls, "alertname", "DatabaseDown", "instance", "10.0.0.7:9100", "severity",
	       "critical", NULL);
	assert_true(matches("", &ls));
	assert_true(matches("alertname=\"DatabaseDown\"", &ls));
	assert_true(matches("alertname=DatabaseDown", &ls));
	assert_true(matches("{alertname=~\"Database.*\", severity!=\"info\"}", &ls));
	assert_false(matches("alertname=~\"Database\"", &ls)); /* anchored */
	assert_true(matches("instance=~\"10\\\\.0\\\\..*\"", &ls));
	assert_false(matches("instance!~\"10\\\\.0\\\\..*\"", &ls));
	assert_true(matches("team=\"\"", &ls));	    /* absent is "" */
	assert_true(matches("team!=\"payments\"", &ls));
	assert_false(matches("team=payments", &ls));
	assert_true(matches("alertname=\"DatabaseDown\",instance=~\"10.*\"", &ls));
	assert_false(matches("alertname=\"DatabaseDown\",instance=~\"11.*\"", &ls));
	kx_labels_release(&ls);
}

static void matcher_canonical_and_errors(void **state)
{
	struct kx_matchers *m;
	struct kx_err err = {0};
	char *c = NULL;
	(void)state;
	assert_int_equal(kx_matchers_canonical(" { service = payments , alertname=~\"DB.*\" } ", &c,
					       &err),
			 0);
	assert_string_equal(c, "alertname=~\"DB.*\",service=\"payments\"");
	free(c);
	assert_int_equal(kx_matchers_canonical("a=\"say \\\"hi\\\"\"", &c, &err), 0);
	assert_string_equal(c, "a=\"say \\\"hi\\\"\"");
	/* the canonical text parses back to itself */
	{
		char *c2 = NULL;
		assert_int_equal(kx_matchers_canonical(c, &c2, &err), 0);
		assert_string_equal(c, c2);
		free(c2);
	}
	free(c);
	assert_int_equal(kx_matchers_parse("a=~\"(\"", &m, &err), KX_EINVAL);
	assert_contains(err.msg, "bad regex");
	assert_int_equal(kx_matchers_parse("=x", &m, &err), KX_EINVAL);
	assert_contains(err.msg, "column 1");
	assert_int_equal(kx_matchers_parse("a>b", &m, &err), KX_EINVAL);
	assert_int_equal(kx_matchers_parse("a=\"unterminated", &m, &err), KX_EINVAL);
	assert_int_equal(kx_matchers_parse("{a=b", &m, &err), KX_EINVAL);
	assert_int_equal(kx_matchers_parse("a=b c=d", &m, &err), 0); /* bare value runs to ',' */
	kx_matchers_free(m);
}

static int parse_cfg(struct kx_config *cfg, const char *yaml, struct kx_err *err)
{
	assert_int_equal(kx_config_init(cfg), 0);
	return kx_config_parse(cfg, yaml, strlen(yaml), "k.yaml", err);
}

static const char ROUTES[] =
	"services:\n"
	"  - name: payments\n"
	"    labels: {team: payments}\n"
	"routes:\n"
	"  - name: db\n"
	"    match: 'alertname=~\"Database.*\"'\n"
	"    severity: P1\n"
	"    types: [OUTAGE]\n"
	"    resolve_to_monitoring: true\n"
	"  - name: by-name\n"
	"    match: ['service=\"publishing\"', 'severity!=\"info\"']\n"
	"    severity: {warning: P2}\n"
	"    group_by: [service, alertname]\n"
	"  - name: quiet\n"
	"    match: 'team=\"noise\"'\n"
	"    action: none\n"
	"routing_default:\n"
	"  open_at: P3\n";

static void decide(const struct kx_router *r, struct kx_alert_event *e, const char *service,
		   struct kx_route_decision *d)
{
	struct kx_labels f;
	struct kx_err err = {0};
	kx_labels_init(&f);
	assert_int_equal(kx_alert_event_fields(e, service, &f, &err), 0);
	assert_int_equal(kx_route_decide(r, e, service, &f, d, &err), 0);
	kx_labels_release(&f);
}

static void routing(void **state)
{
	struct kx_config cfg;
	struct kx_router *r;
	struct kx_route_decision d;
	struct kx_alert_event e;
	struct kx_err err = {0};
	char first[KX_FINGERPRINT_LEN + 1];
	(void)state;

	assert_int_equal(parse_cfg(&cfg, ROUTES, &err), 0);
	assert_int_equal(kx_router_new(&cfg, &r, &err), 0);

	kx_alert_event_init(&e);
	e.level = KX_LEVEL_WARNING;
	assert_int_equal(kx_alert_label_set(&e.labels, "alertname", "DatabaseDown", &err), 0);
	decide(r, &e, "payments", &d);
	assert_string_equal(d.rule->name, "db");
	assert_string_equal(d.severity, "P1");
	assert_true(d.opens);
	assert_string_equal(d.group, "route=db,service=payments");
	assert_int_equal(strlen(d.group_hash), KX_FINGERPRINT_LEN);
	kx_route_decision_release(&d);

	/* the level map, group_by alertname */
	kx_labels_release(&e.labels);
	kx_labels_init(&e.labels);
	assert_int_equal(kx_alert_label_set(&e.labels, "alertname", "QueueStuck", &err), 0);
	decide(r, &e, "publishing", &d);
	assert_string_equal(d.rule->name, "by-name");
	assert_string_equal(d.severity, "P2");
	assert_string_equal(d.group, "route=by-name,service=publishing,alertname=QueueStuck");
	memcpy(first, d.group_hash, sizeof(first));
	kx_route_decision_release(&d);
	/* a level the map does not name takes the defaults' */
	e.level = KX_LEVEL_ERROR;
	decide(r, &e, "publishing", &d);
	assert_string_equal(d.severity, "P2");
	assert_string_equal(d.group_hash, first); /* same group whatever the level */
	kx_route_decision_release(&d);
	/* severity info fails the rule's second matcher: the defaults */
	e.level = KX_LEVEL_INFO;
	decide(r, &e, "publishing", &d);
	assert_string_equal(d.rule->name, "default");
	assert_string_equal(d.severity, "P4");
	assert_false(d.opens); /* open_at P3 */
	kx_route_decision_release(&d);
	e.level = KX_LEVEL_WARNING;
	decide(r, &e, "payments", &d);
	assert_string_equal(d.rule->name, "default");
	assert_string_equal(d.severity, "P3");
	assert_true(d.opens); /* P3 is at open_at */
	kx_route_decision_release(&d);

	/* fields win over labels: a label "service" cannot fake the service */
	assert_int_equal(kx_alert_label_set(&e.labels, "service", "publishing", &err), 0);
	decide(r, &e, "payments", &d);
	assert_string_equal(d.rule->name, "default");
	kx_route_decision_release(&d);

	/* action none */
	assert_int_equal(kx_alert_label_set(&e.labels, "team", "noise", &err), 0);
	e.level = KX_LEVEL_CRITICAL;
	decide(r, &e, "payments", &d);
	assert_int_equal(d.action, KX_ROUTE_NONE);
	assert_false(d.opens);
	kx_route_decision_release(&d);

	kx_alert_event_release(&e);
	kx_router_free(r);
	kx_config_release(&cfg);
}

static void config_errors(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"routes:\n  - name: x\n    match: 'a=~\"(\"'\n", "k.yaml:3:12: 'match': matcher 1: bad regex"},
		{"routes:\n  - match: 'a=b'\n", "route has no 'name'"},
		{"routes:\n  - name: default\n", "'default' names the defaults"},
		{"routes:\n  - name: x\n    severity: P9\n", "route 'x': unknown severity 'P9'"},
		{"routes:\n  - name: x\n    severity: {loud: P1}\n", "unknown severity 'loud'"},
		{"routes:\n  - name: x\n    action: page\n", "expected open, attach or none"},
		{"routes:\n  - name: x\n    types: [NOPE]\n", "unknown type 'NOPE'"},
		{"routes:\n  - name: x\n    group_by: ['bad name']\n", "'group_by'"},
		{"routes:\n  - name: x\n  - name: x\n", "defined twice"},
		{"routing_default:\n  name: y\n", "unknown key 'name' in 'routing_default'"},
		{"services:\n  - name: Payments\n", "may only use a-z"},
		{"services:\n  - name: a\n  - name: a\n", "service 'a' is defined twice"},
		{"checks:\n  - name: c\n    service: nope\n    url: http://127.0.0.1/\n",
		 "check 'c': unknown service 'nope'"},
		{"services: [{name: s}]\nchecks:\n  - name: c\n    service: s\n", "needs 'name', 'service' and 'url'"},
		{"services: [{name: s}]\nchecks:\n  - name: c\n    service: s\n    url: ftp://x\n",
		 "must start with http:// or https://"},
		{"services: [{name: s}]\nchecks:\n  - {name: c, service: s, url: 'http://x/', interval: 1s, timeout: 2s}\n",
		 "'timeout' is longer than 'interval'"},
		{"services: [{name: s}]\nchecks:\n  - {name: c, service: s, url: 'http://x/', severity: loud}\n",
		 "unknown severity 'loud'"},
		{"channels:\n  - {name: m, type: email, url: 'http://x/', from: a@b, to: c@d}\n",
		 "an email channel's 'url' is its SMTP server"},
		{"channels:\n  - {name: m, type: email, url: 'smtp://x:25', to: c@d}\n",
		 "needs 'from' and 'to'"},
		{"channels:\n  - {name: m, type: email, url: 'smtp://x:25', from: a@b, to: 'not an address'}\n",
		 "is not an e-mail address"},
		{"channels:\n  - {name: m, type: webhook, url: 'http://x/', to: c@d}\n",
		 "are for email channels"},
		{"channels:\n  - {name: m, url: 'http://x/', severities: [P7]}\n",
		 "channel 'm': unknown severity 'P7'"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_config cfg;
		struct kx_err err = {0};
		if (parse_cfg(&cfg, cases[i].yaml, &err) != KX_EINVAL)
			fail_msg("case %zu parsed: %s", i, cases[i].yaml);
		assert_contains(err.msg, cases[i].want);
		kx_config_release(&cfg);
	}
}

static void config_sections(void **state)
{
	struct kx_config cfg;
	struct kx_err err = {0};
	static const char yaml[] =
		"services:\n"
		"  - name: payments\n"
		"    description: Card payments\n"
		"    labels: {team: payments}\n"
		"checks:\n"
		"  - name: ready\n"
		"    service: payments\n"
		"    url: http://127.0.0.1:9000/health/ready\n"
		"    interval: 10s\n"
		"    timeout: 2s\n"
		"    expect_status: 200\n"
		"    expect_body: ok\n"
		"    fail_after: 2\n"
		"    resolve_after: 3\n"
		"    severity: error\n"
		"channels:\n"
		"  - name: mail\n"
		"    type: email\n"
		"    url: smtp://127.0.0.1:2525\n"
		"    from: klaxon@example.org\n"
		"    to: [a@example.org, b@example.org]\n"
		"    severities: [P0, P1]\n"
		"    events: [incident.resolved]\n";
	(void)state;
	assert_int_equal(parse_cfg(&cfg, yaml, &err), 0);
	assert_int_equal(cfg.nservices, 1);
	assert_string_equal(cfg.services[0].description, "Card payments");
	assert_string_equal(kx_labels_get(&cfg.services[0].labels, "team"), "payments");
	assert_int_equal(cfg.nchecks, 1);
	assert_int_equal(cfg.checks[0].interval, 10000);
	assert_int_equal(cfg.checks[0].timeout, 2000);
	assert_int_equal(cfg.checks[0].expect_status, 200);
	assert_int_equal(cfg.checks[0].fail_after, 2);
	assert_int_equal(cfg.checks[0].resolve_after, 3);
	assert_int_equal(cfg.checks[0].level, KX_LEVEL_ERROR);
	assert_int_equal(cfg.nchannels, 1);
	assert_int_equal(cfg.channels[0].kind, KX_CHANNEL_EMAIL);
	assert_int_equal(cfg.channels[0].nto, 2);
	assert_int_equal(cfg.channels[0].timeout, 30000);
	assert_int_equal(cfg.channels[0].nseverities, 2);
	/* the built-in routing defaults */
	assert_string_equal(cfg.route_default.name, "default");
	assert_string_equal(cfg.route_default.level_severity[KX_LEVEL_CRITICAL], "P1");
	assert_string_equal(cfg.route_default.level_severity[KX_LEVEL_INFO], "P4");
	assert_string_equal(cfg.route_default.open_at, "P2");
	kx_config_release(&cfg);
}

static void silences(void **state)
{
	struct kx_silence s[3];
	struct kx_silencer *sil;
	struct kx_labels f;
	struct kx_err err = {0};
	kx_ms now = T("2026-12-01T12:00:00Z");
	(void)state;
	for (int i = 0; i < 3; i++)
		kx_silence_init(&s[i]);
	snprintf(s[0].id, sizeof(s[0].id), "sil_active");
	s[0].matchers = "alertname=\"DiskFull\"";
	s[0].starts_at = now - 1000;
	s[0].ends_at = now + 1000;
	snprintf(s[1].id, sizeof(s[1].id), "sil_over");
	s[1].matchers = "alertname=~\".*\"";
	s[1].starts_at = now - 2000;
	s[1].ends_at = now - 1000;
	snprintf(s[2].id, sizeof(s[2].id), "sil_future");
	s[2].matchers = "alertname=~\".*\"";
	s[2].starts_at = now + 1000;
	s[2].ends_at = now + 2000;
	assert_int_equal(kx_silencer_new(s, 3, now, &sil, &err), 0);
	labels(&f, "alertname", "DiskFull", NULL);
	assert_string_equal(kx_silencer_match(sil, &f, now), "sil_active");
	kx_labels_release(&f);
	labels(&f, "alertname", "Other", NULL);
	assert_null(kx_silencer_match(sil, &f, now));
	kx_labels_release(&f);
	kx_silencer_free(sil);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matcher_ops),
		cmocka_unit_test(matcher_canonical_and_errors),
		cmocka_unit_test(routing),
		cmocka_unit_test(config_errors),
		cmocka_unit_test(config_sections),
		cmocka_unit_test(silences),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
