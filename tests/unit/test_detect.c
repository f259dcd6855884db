/* test_detect.c — core/detect: rate and duplicates rules over audit events,
 * exact thresholds, sliding windows, groups, re-arming, the memory bound,
 * and what a firing says (title, evidence, labels, switch selector). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/config.h"
#include "core/detect.h"
#include "core/incident.h"
#include "core/text.h"
#include "helpers.h"

#define SEC 1000
#define MIN (60 * SEC)

/* ---- fixtures -------------------------------------------------------- */

struct fx {
	struct kx_config cfg;
	struct kx_detector *d;
	struct kx_detect_firings out;
};

/* A detector over the rules of a YAML `detections:` document. */
static void setup_rules(struct fx *fx, const char *yaml, size_t max_groups)
{
	struct kx_err err = {0};
	assert_int_equal(kx_config_init(&fx->cfg), 0);
	if (kx_config_parse(&fx->cfg, yaml, strlen(yaml), "test.yaml", &err))
		fail_msg("config: %s", err.msg);
	if (kx_detector_new(fx->cfg.detections, fx->cfg.ndetections, max_groups, &fx->d, &err))
		fail_msg("detector: %s", err.msg);
	kx_detect_firings_init(&fx->out);
}

static void teardown_rules(struct fx *fx)
{
	kx_detect_firings_release(&fx->out);
	kx_detector_free(fx->d);
	kx_config_release(&fx->cfg);
}

static char *dup(const char *s)
{
	char *p = s ? strdup(s) : NULL;
	if (s)
		assert_non_null(p);
	return p;
}

struct evspec {
	const char *client, *account, *platform, *action, *target, *hash, *label;
};

/* Feeds one event at `at` (seen at now) and returns how many rules fired
 * for it; the firings accumulate in fx->out. */
static size_t feed_at(struct fx *fx, struct evspec s, kx_ms at, kx_ms now)
{
	struct kx_audit_event e;
	struct kx_err err = {0};
	size_t before = fx->out.n;
	static int64_t seq;

	kx_audit_event_init(&e);
	e.seq = ++seq;
	e.at = at;
	e.actor = dup("bot-1");
	e.client = dup(s.client);
	e.account = dup(s.account);
	e.platform = dup(s.platform);
	e.action = dup(s.action ? s.action : "dm");
	e.target = dup(s.target);
	e.content_hash = dup(s.hash);
	e.outcome = dup("success");
	if (s.label)
		assert_int_equal(kx_labels_add_pair(&e.labels, s.label, &err), 0);
	if (kx_detector_feed(fx->d, &e, now, &fx->out, &err))
		fail_msg("feed: %s", err.msg);
	kx_audit_event_release(&e);
	return fx->out.n - before;
}

static size_t feed(struct fx *fx, struct evspec s, kx_ms t)
{
	return feed_at(fx, s, t, t);
}

/* Feeds n events one second apart from t; returns the firings. */
static size_t feed_n(struct fx *fx, struct evspec s, kx_ms t, int n)
{
	size_t fired = 0;
	for (int i = 0; i < n; i++)
		fired += feed(fx, s, t + i * SEC);
	return fired;
}

static const struct kx_detect_fired *last(const struct fx *fx)
{
	assert_true(fx->out.n > 0);
	return &fx->out.v[fx->out.n - 1];
}

#define T0 T("2026-11-25T14:00:00Z")

static const char dm_loop[] = "detections:\n"
			      "  - name: dm-loop\n"
			      "    kind: rate\n"
			      "    selector: action=dm\n"
			      "    per: account\n"
			      "    threshold: 5\n"
			      "    window: 1m\n"
			      "    severity: P1\n"
			      "    type: ENGAGE\n"
			      "    contain: block\n";

static const struct evspec A = {.client = "acme", .account = "@a", .platform = "instagram"};
static const struct evspec B = {.client = "acme", .account = "@b", .platform = "instagram"};

/* ---- thresholds and windows ---------------------------------------------- */

static void test_threshold_exact(void **state)
{
	struct fx fx;
	const struct kx_detect_fired *f;
	(void)state;
	setup_rules(&fx, dm_loop, 0);
	assert_int_equal(feed_n(&fx, A, T0, 5), 0);
	assert_int_equal(feed(&fx, A, T0 + 5 * SEC), 1);
	f = last(&fx);
	assert_string_equal(f->rule->name, "dm-loop");
	assert_int_equal(f->rule_index, 0);
	assert_int_equal(f->count, 6);
	assert_int_equal(f->first_at, T0);
	assert_int_equal(f->last_at, T0 + 5 * SEC);
	assert_string_equal(f->group, "account '@a'");
	assert_string_equal(f->title, "Detection 'dm-loop': 6 dm events for account '@a' in 1m");
	assert_contains(f->evidence, "6 events matching 'action=dm' for account '@a' within 1m");
	assert_contains(f->evidence, "over the threshold of 5");
	assert_contains(f->evidence, "First at 2026-11-25T14:00:00Z, last at 2026-11-25T14:00:05Z");
	assert_contains(f->evidence, "actor 'bot-1', client 'acme', account '@a'");
	assert_int_equal(kx_text_check(f->evidence, strlen(f->evidence), KX_TEXT_MULTILINE), 0);
	assert_string_equal(kx_labels_get(&f->labels, "account"), "@a");
	assert_string_equal(kx_labels_get(&f->labels, "client"), "acme");
	assert_string_equal(kx_labels_get(&f->labels, "platform"), "instagram");
	assert_string_equal(kx_labels_get(&f->labels, "detection"), "dm-loop");
	assert_null(kx_labels_get(&f->labels, "lane"));
	assert_int_equal(f->labels.n, 4);
	assert_string_equal(f->contain_selector, "account=@a");
	teardown_rules(&fx);
}

static void test_one_incident_per_loop_then_rearm(void **state)
{
	struct fx fx;
	kx_ms t;
	(void)state;
	setup_rules(&fx, dm_loop, 0);
	assert_int_equal(feed_n(&fx, A, T0, 6), 1);
	/* the loop goes on: no more firings for @a */
	assert_int_equal(feed_n(&fx, A, T0 + 6 * SEC, 200), 0);
	t = T0 + 205 * SEC; /* the last event */
	/* not yet quiet for a whole window: still latched */
	assert_int_equal(feed(&fx, A, t + MIN - 1), 0);
	t = t + MIN - 1;
	/* quiet for exactly one window: the count is back to 0, re-armed */
	assert_int_equal(feed_n(&fx, A, t + MIN, 5), 0);
	assert_int_equal(feed(&fx, A, t + MIN + 5 * SEC), 1);
	assert_int_equal(last(&fx)->count, 6);
	assert_int_equal(last(&fx)->first_at, t + MIN);
	teardown_rules(&fx);
}

static void test_window_slides(void **state)
{
	struct fx fx;
	(void)state;
	setup_rules(&fx, dm_loop, 0);
	/* 5 at T0..T0+4s; at T0+60s the first has left the window (an event
	 * counts until at + window, exclusive) */
	assert_int_equal(feed_n(&fx, A, T0, 5), 0);
	assert_int_equal(feed(&fx, A, T0 + MIN), 0);
	/* T0+1s..T0+4s and T0+60s are in: a 6th within the window fires */
	assert_int_equal(feed(&fx, A, T0 + MIN + 500), 1);
	assert_int_equal(last(&fx)->first_at, T0 + SEC);
	teardown_rules(&fx);

	/* a slow trickle never fires */
	setup_rules(&fx, dm_loop, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(feed(&fx, A, T0 + i * 13 * SEC), 0);
	teardown_rules(&fx);
}

static void test_event_times(void **state)
{
	struct fx fx;
	(void)state;
	setup_rules(&fx, dm_loop, 0);
	/* a backfill older than the window counts for nothing */
	for (int i = 0; i < 20; i++)
		assert_int_equal(feed_at(&fx, A, T0 - 2 * MIN, T0), 0);
	assert_int_equal(kx_detector_groups(fx.d, 0), 0);
	/* out of order within the window counts */
	assert_int_equal(feed_at(&fx, A, T0 - 30 * SEC, T0), 0);
	assert_int_equal(feed_at(&fx, A, T0 - 50 * SEC, T0), 0);
	assert_int_equal(feed_at(&fx, A, T0 - 10 * SEC, T0), 0);
	assert_int_equal(feed_at(&fx, A, T0 - 40 * SEC, T0), 0);
	/* an `at` in the future (clock skew) counts as now */
	assert_int_equal(feed_at(&fx, A, T0 + 2 * MIN, T0), 0);
	assert_int_equal(feed_at(&fx, A, T0 - 20 * SEC, T0), 1);
	assert_int_equal(last(&fx)->first_at, T0 - 50 * SEC);
	assert_int_equal(last(&fx)->last_at, T0);
	teardown_rules(&fx);
}

static void test_large_threshold_uses_slices(void **state)
{
	struct fx fx;
	(void)state;
	setup_rules(&fx,
		    "detections:\n  - name: flood\n    kind: rate\n    threshold: 3000\n"
		    "    window: 1h\n    severity: P2\n",
		    0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(feed(&fx, A, T0 + i), 0);
	assert_int_equal(feed(&fx, B, T0 + 3000), 1);
	assert_int_equal(last(&fx)->count, 3001);
	assert_int_equal(last(&fx)->first_at, T0);
	assert_string_equal(last(&fx)->group, "all events");
	assert_string_equal(last(&fx)->title, "Detection 'flood': 3001 matching events in 1h");
	/* no contain: no selector */
	assert_null(last(&fx)->contain_selector);
	teardown_rules(&fx);

	/* and they slide: 3000 an hour apart in two halves never fire */
	setup_rules(&fx,
		    "detections:\n  - name: flood\n    kind: rate\n    threshold: 3000\n"
		    "    window: 1h\n    severity: P2\n",
		    0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(feed(&fx, A, T0 + i), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(feed(&fx, A, T0 + 62 * MIN + i), 0);
	teardown_rules(&fx);
}

/* ---- groups ------------------------------------------------------------------- */

static void test_groups_are_isolated(void **state)
{
	struct fx fx;
	struct evspec none = {.client = "acme"};
	(void)state;
	setup_rules(&fx, dm_loop, 0);
	assert_int_equal(feed_n(&fx, A, T0, 5), 0);
	assert_int_equal(feed_n(&fx, B, T0, 5), 0);
	assert_int_equal(kx_detector_groups(fx.d, 0), 2);
	assert_int_equal(feed(&fx, A, T0 + 10 * SEC), 1);
	assert_string_equal(kx_labels_get(&last(&fx)->labels, "account"), "@a");
	assert_int_equal(feed(&fx, A, T0 + 11 * SEC), 0);
	assert_int_equal(feed(&fx, B, T0 + 12 * SEC), 1);
	assert_string_equal(kx_labels_get(&last(&fx)->labels, "account"), "@b");
	/* events without an account are a group of their own, and contain by
	 * nothing: a detection never stops everything */
	assert_int_equal(feed_n(&fx, none, T0, 6), 1);
	assert_string_equal(last(&fx)->group, "no account");
	assert_string_equal(last(&fx)->title, "Detection 'dm-loop': 6 dm events with no account in 1m");
	assert_null(last(&fx)->contain_selector);
	assert_null(kx_labels_get(&last(&fx)->labels, "account"));
	teardown_rules(&fx);
}

static void test_duplicates(void **state)
{
	struct fx fx;
	struct evspec c = {.client = "acme", .account = "@a", .action = "comment",
			   .target = "https://instagram.com/p/1", .hash = "sha256:aa"};
	struct evspec other_hash = c, other_target = c, no_hash = c, other_account = c;
	const struct kx_detect_fired *f;
	(void)state;
	other_hash.hash = "sha256:bb";
	other_target.target = "https://instagram.com/p/2";
	no_hash.hash = NULL;
	other_account.account = "@z";
	setup_rules(&fx,
		    "detections:\n  - name: dup-comments\n    kind: duplicates\n"
		    "    selector: action in (comment,reply)\n    threshold: 2\n    window: 10m\n"
		    "    severity: P2\n    contain: approve\n    contain_for: 1h\n",
		    0);
	assert_int_equal(feed_n(&fx, c, T0, 2), 0);
	assert_int_equal(feed(&fx, other_hash, T0 + 5 * SEC), 0);
	assert_int_equal(feed(&fx, other_target, T0 + 5 * SEC), 0);
	assert_int_equal(feed(&fx, no_hash, T0 + 5 * SEC), 0);
	assert_int_equal(feed(&fx, no_hash, T0 + 6 * SEC), 0);
	/* same action, target and content from another account: the same group */
	assert_int_equal(feed(&fx, other_account, T0 + 9 * MIN), 1);
	f = last(&fx);
	assert_int_equal(f->count, 3);
	assert_int_equal(f->first_at, T0);
	assert_string_equal(f->group,
			    "target 'https://instagram.com/p/1' (action 'comment', content hash 'sha256:aa')");
	assert_string_equal(f->title, "Detection 'dup-comments': 3 duplicate comment events to "
				      "'https://instagram.com/p/1' in 10m");
	assert_contains(f->evidence, "with the same action 'comment', target "
				     "'https://instagram.com/p/1' and content hash 'sha256:aa'");
	/* contained by the triggering event's client and account */
	assert_string_equal(f->contain_selector, "account=@z,client=acme");
	/* an absent content hash is a value of its own */
	assert_int_equal(feed(&fx, no_hash, T0 + 7 * SEC), 1);
	assert_string_equal(last(&fx)->group,
			    "target 'https://instagram.com/p/1' (action 'comment', no content hash)");
	/* likes are not selected */
	c.action = "like";
	assert_int_equal(feed_n(&fx, c, T0, 10), 0);
	teardown_rules(&fx);
}

static void test_memory_bound_evicts_lru(void **state)
{
	struct fx fx;
	struct evspec g[5];
	char names[5][8];
	(void)state;
	for (int i = 0; i < 5; i++) {
		snprintf(names[i], sizeof(names[i]), "@g%d", i);
		g[i] = A;
		g[i].account = names[i];
	}
	/* the bound: a 4th group evicts the least recently used one, whose
	 * count is lost */
	setup_rules(&fx, dm_loop, 3);
	assert_int_equal(feed_n(&fx, g[0], T0, 5), 0);
	assert_int_equal(feed_n(&fx, g[1], T0, 5), 0);
	assert_int_equal(feed_n(&fx, g[2], T0, 5), 0);
	assert_int_equal(feed(&fx, g[1], T0 + 10 * SEC), 1); /* g1 fires, and is now recent */
	assert_int_equal(feed(&fx, g[3], T0 + 11 * SEC), 0); /* evicts g0 */
	assert_int_equal(kx_detector_groups(fx.d, 0), 3);
	assert_int_equal(kx_detector_evicted(fx.d, 0), 1);
	assert_int_equal(feed(&fx, g[0], T0 + 12 * SEC), 0); /* counts from 1 again; evicts g2 */
	assert_int_equal(kx_detector_evicted(fx.d, 0), 2);
	assert_int_equal(feed(&fx, g[1], T0 + 13 * SEC), 0); /* still latched */
	/* quiet groups are dropped, not evicted */
	assert_int_equal(feed(&fx, g[4], T0 + 5 * MIN), 0);
	assert_int_equal(kx_detector_groups(fx.d, 0), 1);
	assert_int_equal(kx_detector_evicted(fx.d, 0), 2);
	/* many groups never pass the bound */
	for (int i = 0; i < 1000; i++) {
		char acc[16];
		struct evspec s = A;
		snprintf(acc, sizeof(acc), "@n%d", i);
		s.account = acc;
		assert_int_equal(feed(&fx, s, T0 + 6 * MIN + i), 0);
		assert_true(kx_detector_groups(fx.d, 0) <= 3);
	}
	teardown_rules(&fx);
}

/* ---- matching -------------------------------------------------------------------- */

static void test_selector_on_fields_and_labels(void **state)
{
	struct fx fx;
	struct evspec spring = {.client = "acme", .account = "@a", .platform = "instagram",
				.label = "campaign=spring"};
	struct evspec autumn = spring, tiktok = spring, comment = spring;
	(void)state;
	autumn.label = "campaign=autumn";
	tiktok.platform = "tiktok";
	comment.action = "comment";
	setup_rules(&fx,
		    "detections:\n  - name: spring-dms\n    kind: rate\n"
		    "    selector: action=dm,platform=instagram,campaign=spring,outcome!=failed\n"
		    "    per: campaign\n    threshold: 1\n    window: 1m\n    severity: P3\n"
		    "    contain: read_only\n    contain_by: [client, campaign, platform]\n"
		    "    title: Spring campaign DMs are looping\n",
		    0);
	assert_int_equal(feed(&fx, autumn, T0), 0);
	assert_int_equal(feed(&fx, autumn, T0), 0);
	assert_int_equal(feed(&fx, tiktok, T0), 0);
	assert_int_equal(feed(&fx, tiktok, T0), 0);
	assert_int_equal(feed(&fx, comment, T0), 0);
	assert_int_equal(feed(&fx, comment, T0), 0);
	assert_int_equal(feed(&fx, spring, T0), 0);
	assert_int_equal(feed(&fx, spring, T0), 1);
	assert_string_equal(last(&fx)->group, "campaign 'spring'");
	assert_string_equal(last(&fx)->title, "Spring campaign DMs are looping");
	assert_string_equal(last(&fx)->contain_selector,
			    "campaign=spring,client=acme,platform=instagram");
	teardown_rules(&fx);

	/* target and actor are fields too; a field wins over a label of its name */
	setup_rules(&fx,
		    "detections:\n  - name: one-target\n    kind: rate\n"
		    "    selector: target=\"https://x/p(1)\",actor=bot-1\n"
		    "    threshold: 1\n    window: 1m\n    severity: P3\n    contain: block\n",
		    0);
	{
		struct evspec t = A, fake = A;
		t.target = "https://x/p(1)";
		fake.target = "https://x/p/2";
		fake.label = "target=https://x/p(1)";
		assert_int_equal(feed(&fx, fake, T0), 0);
		assert_int_equal(feed(&fx, fake, T0), 0);
		assert_int_equal(feed(&fx, t, T0), 0);
		assert_int_equal(feed(&fx, t, T0), 1);
		/* no `per`: contained by client and account */
		assert_string_equal(last(&fx)->contain_selector, "account=@a,client=acme");
	}
	teardown_rules(&fx);
}

/* ---- the rest ---------------------------------------------------------------------- */

static void test_titles_are_bounded(void **state)
{
	struct fx fx;
	struct evspec s = A;
	char *yaml, *acc = repeat("\xc3\xa9", 120), *long_title = repeat("x", 300);
	size_t n;
	(void)state;
	s.account = acc;
	setup_rules(&fx, dm_loop, 0);
	feed_n(&fx, s, T0, 6);
	assert_int_equal(fx.out.n, 1);
	n = strlen(last(&fx)->title);
	assert_int_equal(kx_text_check(last(&fx)->title, n, 0), 0);
	assert_true(kx_text_chars(last(&fx)->title, n) <= KX_TITLE_MAX);
	assert_contains(last(&fx)->title, "\xe2\x80\xa6' in 1m");
	teardown_rules(&fx);

	n = strlen(dm_loop) + 400;
	yaml = malloc(n);
	assert_non_null(yaml);
	snprintf(yaml, n, "%s    title: %s\n", dm_loop, long_title);
	setup_rules(&fx, yaml, 0);
	feed_n(&fx, A, T0, 6);
	n = strlen(last(&fx)->title);
	assert_int_equal(kx_text_chars(last(&fx)->title, n), KX_TITLE_MAX);
	teardown_rules(&fx);
	free(yaml);
	free(acc);
	free(long_title);
}

static void test_several_rules_one_event(void **state)
{
	struct fx fx;
	(void)state;
	setup_rules(&fx,
		    "detections:\n"
		    "  - name: a\n    kind: rate\n    threshold: 1\n    window: 1m\n    severity: P3\n"
		    "  - name: b\n    kind: rate\n    per: account\n    threshold: 1\n    window: 1m\n"
		    "    severity: P3\n",
		    0);
	assert_int_equal(feed(&fx, A, T0), 0);
	assert_int_equal(feed(&fx, A, T0), 2);
	assert_string_equal(fx.out.v[0].rule->name, "a");
	assert_string_equal(fx.out.v[1].rule->name, "b");
	assert_int_equal(fx.out.v[1].rule_index, 1);
	teardown_rules(&fx);
}

static void test_bad_rules(void **state)
{
	struct kx_detection r = {0};
	struct kx_detector *d = NULL;
	struct kx_err err = {0};
	(void)state;
	r.name = "bad";
	r.selector = "platform=";
	r.threshold = 1;
	r.window = 1000;
	r.severity = "P1";
	assert_int_equal(kx_detector_new(&r, 1, 0, &d, &err), KX_EINVAL);
	assert_null(d);
	assert_prefix(err.msg, "detection 'bad': cannot parse selector at column");
	r.selector = "";
	r.threshold = 0;
	assert_int_equal(kx_detector_new(&r, 1, 0, &d, &err), KX_EINVAL);
	/* no rules is a detector that never fires */
	assert_int_equal(kx_detector_new(NULL, 0, 0, &d, &err), 0);
	kx_detector_free(d);
	kx_detector_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_exact),
		cmocka_unit_test(test_one_incident_per_loop_then_rearm),
		cmocka_unit_test(test_window_slides),
		cmocka_unit_test(test_event_times),
		cmocka_unit_test(test_large_threshold_uses_slices),
		cmocka_unit_test(test_groups_are_isolated),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_memory_bound_evicts_lru),
		cmocka_unit_test(test_selector_on_fields_and_labels),
		cmocka_unit_test(test_titles_are_bounded),
		cmocka_unit_test(test_several_rules_one_event),
		cmocka_unit_test(test_bad_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
