/* test_alert.c — core/alert: names and parsers of the alert enums, the
 * severity guess, alert labels, fingerprints and the event check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/alert.h"
#include "helpers.h"

#define NOW T("2026-11-25T20:30:00Z")

/* ---- names and parsers ---- */

static void names(void **state)
{
	(void)state;
	assert_string_equal(kx_alert_status_name(KX_ALERT_FIRING), "firing");
	assert_string_equal(kx_alert_status_name(KX_ALERT_RESOLVED), "resolved");
	assert_string_equal(kx_alert_level_name(KX_LEVEL_CRITICAL), "critical");
	assert_string_equal(kx_alert_level_name(KX_LEVEL_ERROR), "error");
	assert_string_equal(kx_alert_level_name(KX_LEVEL_WARNING), "warning");
	assert_string_equal(kx_alert_level_name(KX_LEVEL_INFO), "info");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_ALERTMANAGER), "alertmanager");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_EVENTS_V2), "events-v2");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_GENERIC), "generic");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_HEARTBEAT), "heartbeat");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_CHECK), "check");
	assert_string_equal(kx_alert_source_name(KX_SOURCE_MANUAL), "manual");
	assert_string_equal(kx_alert_action_name(KX_ALERT_TRIGGER), "trigger");
	assert_string_equal(kx_alert_action_name(KX_ALERT_ACKNOWLEDGE), "acknowledge");
	assert_string_equal(kx_alert_action_name(KX_ALERT_RESOLVE), "resolve");
	/* a value out of range (a broken caller) still gives a string */
	assert_string_equal(kx_alert_level_name((enum kx_alert_level)17), "unknown");
	assert_string_equal(kx_alert_source_name((enum kx_alert_source)-1), "unknown");
}

static void parsers_round_trip(void **state)
{
	struct kx_err err;
	(void)state;
	for (int i = KX_ALERT_FIRING; i <= KX_ALERT_RESOLVED; i++) {
		enum kx_alert_status v;
		assert_int_equal(kx_alert_status_parse(kx_alert_status_name(i), &v, &err), 0);
		assert_int_equal(v, i);
	}
	for (int i = KX_LEVEL_CRITICAL; i <= KX_LEVEL_INFO; i++) {
		enum kx_alert_level v;
		assert_int_equal(kx_alert_level_parse(kx_alert_level_name(i), &v, &err), 0);
		assert_int_equal(v, i);
	}
	for (int i = KX_SOURCE_ALERTMANAGER; i <= KX_SOURCE_MANUAL; i++) {
		enum kx_alert_source v;
		assert_int_equal(kx_alert_source_parse(kx_alert_source_name(i), &v, &err), 0);
		assert_int_equal(v, i);
	}
	for (int i = KX_ALERT_TRIGGER; i <= KX_ALERT_RESOLVE; i++) {
		enum kx_alert_action v;
		assert_int_equal(kx_alert_action_parse(kx_alert_action_name(i), &v, &err), 0);
		assert_int_equal(v, i);
	}
}

static void parsers_refuse_with_the_choices(void **state)
{
	struct kx_err err;
	enum kx_alert_status st = KX_ALERT_RESOLVED;
	enum kx_alert_level lv = KX_LEVEL_INFO;
	enum kx_alert_source src = KX_SOURCE_MANUAL;
	enum kx_alert_action act = KX_ALERT_RESOLVE;
	(void)state;

	assert_int_equal(kx_alert_level_parse("x", &lv, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown severity 'x': use critical, error, warning or info");
	assert_int_equal(lv, KX_LEVEL_INFO); /* untouched */
	/* the wire values are lowercase: the parser is exact (the guess is loose) */
	assert_int_equal(kx_alert_level_parse("CRITICAL", &lv, &err), KX_EINVAL);
	assert_int_equal(kx_alert_level_parse("", &lv, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown severity '': use critical, error, warning or info");
	assert_int_equal(kx_alert_level_parse(NULL, &lv, &err), KX_EINVAL);

	assert_int_equal(kx_alert_status_parse("pending", &st, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown status 'pending': use firing or resolved");
	assert_int_equal(st, KX_ALERT_RESOLVED);

	assert_int_equal(kx_alert_source_parse("events_v2", &src, &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown source 'events_v2': use alertmanager, events-v2, "
				     "generic, heartbeat, check or manual");

	assert_int_equal(kx_alert_action_parse("ack", &act, &err), KX_EINVAL);
	assert_string_equal(err.msg,
			    "unknown event action 'ack': use trigger, acknowledge or resolve");

	/* the quoted value is bounded */
	{
		char *long_value = repeat("x", 500);
		assert_int_equal(kx_alert_level_parse(long_value, &lv, &err), KX_EINVAL);
		assert_true(strlen(err.msg) < 200);
		free(long_value);
	}
	/* err may be NULL */
	assert_int_equal(kx_alert_level_parse("x", &lv, NULL), KX_EINVAL);
}

static void level_guess(void **state)
{
	static const struct {
		const char *word;
		enum kx_alert_level level;
	} cases[] = {
		{"critical", KX_LEVEL_CRITICAL}, {"page", KX_LEVEL_CRITICAL},
		{"high", KX_LEVEL_CRITICAL},	 {"p1", KX_LEVEL_CRITICAL},
		{"sev1", KX_LEVEL_CRITICAL},	 {"emergency", KX_LEVEL_CRITICAL},
		{"fatal", KX_LEVEL_CRITICAL},	 {"error", KX_LEVEL_ERROR},
		{"major", KX_LEVEL_ERROR},	 {"p2", KX_LEVEL_ERROR},
		{"sev2", KX_LEVEL_ERROR},	 {"warning", KX_LEVEL_WARNING},
		{"warn", KX_LEVEL_WARNING},	 {"minor", KX_LEVEL_WARNING},
		{"p3", KX_LEVEL_WARNING},	 {"sev3", KX_LEVEL_WARNING},
		{"info", KX_LEVEL_INFO},	 {"low", KX_LEVEL_INFO},
		{"none", KX_LEVEL_INFO},	 {"p4", KX_LEVEL_INFO},
		{"p5", KX_LEVEL_INFO},		 {"ok", KX_LEVEL_INFO},
		/* case-insensitive */
		{"CRITICAL", KX_LEVEL_CRITICAL}, {"Sev2", KX_LEVEL_ERROR},
		{"P3", KX_LEVEL_WARNING},	 {"Warn", KX_LEVEL_WARNING},
		{"NONE", KX_LEVEL_INFO},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* a fallback none of them maps to but by their own word */
		enum kx_alert_level fb = cases[i].level == KX_LEVEL_INFO ? KX_LEVEL_CRITICAL
									  : KX_LEVEL_INFO;
		if (kx_alert_level_guess(cases[i].word, fb) != cases[i].level)
			fail_msg("'%s' guessed %d, expected %d", cases[i].word,
				 kx_alert_level_guess(cases[i].word, fb), cases[i].level);
	}
	assert_int_equal(kx_alert_level_guess(NULL, KX_LEVEL_ERROR), KX_LEVEL_ERROR);
	assert_int_equal(kx_alert_level_guess("", KX_LEVEL_ERROR), KX_LEVEL_ERROR);
	assert_int_equal(kx_alert_level_guess("p6", KX_LEVEL_WARNING), KX_LEVEL_WARNING);
	assert_int_equal(kx_alert_level_guess("critical ", KX_LEVEL_INFO), KX_LEVEL_INFO);
	assert_int_equal(kx_alert_level_guess("crit", KX_LEVEL_INFO), KX_LEVEL_INFO);
}

/* ---- labels ---- */

static void assert_sorted_unique(const struct kx_labels *ls)
{
	for (size_t i = 1; i < ls->n; i++)
		if (strcmp(ls->v[i - 1].key, ls->v[i].key) >= 0)
			fail_msg("labels out of order: '%s' before '%s'", ls->v[i - 1].key,
				 ls->v[i].key);
}

static void label_names_follow_prometheus(void **state)
{
	static const char *const good[] = {"alertname", "Alert_Name", "_x", "a1", "__name__",
					   "A", "instance"};
	static const char *const bad[] = {"Alert Name", "1abc", "a-b", "a.b", "é", "a=b",
					  "a\nb", "x\xff"};
	struct kx_labels ls;
	struct kx_err err;
	(void)state;

	kx_labels_init(&ls);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (kx_alert_label_set(&ls, good[i], "v", &err))
			fail_msg("'%s' refused: %s", good[i], err.msg);
	assert_int_equal(ls.n, sizeof(good) / sizeof(good[0]));
	assert_sorted_unique(&ls);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kx_alert_label_set(&ls, bad[i], "v", &err) != KX_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(kx_alert_label_set(&ls, "Alert Name", "v", &err), KX_EINVAL);
	assert_string_equal(err.msg, "'Alert Name' is not a valid label name");
	assert_int_equal(kx_alert_label_set(&ls, "", "v", &err), KX_EINVAL);
	assert_string_equal(err.msg, "a label name is empty");
	assert_int_equal(kx_alert_label_set(&ls, "x\x01y", "v", &err), KX_EINVAL);
	assert_string_equal(err.msg, "a label name has control characters or invalid UTF-8");
	assert_int_equal(ls.n, sizeof(good) / sizeof(good[0]));
	kx_labels_release(&ls);
}

static void label_sizes(void **state)
{
	struct kx_labels ls;
	struct kx_err err;
	char *key128 = repeat("k", KX_ALERT_LABEL_KEY_MAX);
	char *key129 = repeat("k", KX_ALERT_LABEL_KEY_MAX + 1);
	char *value2048 = repeat("v", KX_ALERT_LABEL_VALUE_MAX);
	char *value2049 = repeat("v", KX_ALERT_LABEL_VALUE_MAX + 1);
	(void)state;

	kx_labels_init(&ls);
	assert_int_equal(kx_alert_label_set(&ls, key128, "v", &err), 0);
	assert_int_equal(kx_alert_label_set(&ls, key129, "v", &err), KX_ETOOBIG);
	assert_contains(err.msg, "is longer than 128 bytes");
	assert_int_equal(kx_alert_label_set(&ls, "big", value2048, &err), 0);
	assert_int_equal(kx_alert_label_set(&ls, "bigger", value2049, &err), KX_ETOOBIG);
	assert_string_equal(err.msg, "label 'bigger' has a value longer than 2048 bytes");
	assert_int_equal(ls.n, 2);
	/* values: any UTF-8 but control characters (kx_labels_set would refuse
	 * the uppercase and the spaces, and values over 256 bytes) */
	assert_int_equal(kx_alert_label_set(&ls, "summary", "Disk 99% FULL — db1", &err), 0);
	assert_int_equal(kx_alert_label_set(&ls, "multi", "a\nb", &err), KX_EINVAL);
	assert_string_equal(err.msg,
			    "label 'multi' has a value with control characters or invalid UTF-8");
	assert_int_equal(kx_alert_label_set(&ls, "bytes", "\xc3(", &err), KX_EINVAL);
	assert_int_equal(kx_alert_label_set(&ls, "c1", "\xc2\x85", &err), KX_EINVAL);
	assert_int_equal(ls.n, 3);
	kx_labels_release(&ls);
	free(key128);
	free(key129);
	free(value2048);
	free(value2049);
}

static void label_empty_value_means_no_label(void **state)
{
	struct kx_labels ls;
	struct kx_err err;
	(void)state;

	kx_labels_init(&ls);
	assert_int_equal(kx_alert_label_set(&ls, "team", "", &err), 0);
	assert_int_equal(ls.n, 0);
	assert_int_equal(kx_alert_label_set(&ls, "team", "db", &err), 0);
	assert_int_equal(kx_alert_label_set(&ls, "alertname", "X", &err), 0);
	assert_int_equal(ls.n, 2);
	/* setting it empty removes it */
	assert_int_equal(kx_alert_label_set(&ls, "team", "", &err), 0);
	assert_int_equal(ls.n, 1);
	assert_null(kx_labels_get(&ls, "team"));
	assert_int_equal(kx_alert_label_set(&ls, "team", NULL, &err), 0);
	assert_int_equal(ls.n, 1);
	kx_labels_release(&ls);
}

static void labels_sorted_and_replaced(void **state)
{
	static const char *const keys[] = {"zone", "alertname", "Zeta", "instance", "_a",
					   "severity", "b", "a"};
	struct kx_labels ls;
	struct kx_err err;
	(void)state;

	kx_labels_init(&ls);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(kx_alert_label_set(&ls, keys[i], keys[i], &err), 0);
	assert_int_equal(ls.n, sizeof(keys) / sizeof(keys[0]));
	assert_sorted_unique(&ls);
	assert_string_equal(ls.v[0].key, "Zeta"); /* byte order: uppercase first */
	assert_int_equal(kx_alert_label_set(&ls, "instance", "db2", &err), 0);
	assert_int_equal(ls.n, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(kx_labels_get(&ls, "instance"), "db2");
	assert_sorted_unique(&ls);
	kx_labels_release(&ls);
}

static void labels_at_most_128(void **state)
{
	struct kx_labels ls;
	struct kx_err err;
	char key[16];
	(void)state;

	kx_labels_init(&ls);
	for (int i = 0; i < KX_ALERT_LABELS_MAX; i++) {
		snprintf(key, sizeof(key), "l%03d", (i * 37) % KX_ALERT_LABELS_MAX);
		assert_int_equal(kx_alert_label_set(&ls, key, "v", &err), 0);
	}
	assert_int_equal(ls.n, KX_ALERT_LABELS_MAX);
	assert_sorted_unique(&ls);
	assert_int_equal(kx_alert_label_set(&ls, "one_more", "v", &err), KX_ETOOBIG);
	assert_string_equal(err.msg, "too many labels (at most 128)");
	/* replacing or removing one is still fine when full */
	assert_int_equal(kx_alert_label_set(&ls, "l000", "w", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "l000"), "w");
	assert_int_equal(kx_alert_label_set(&ls, "l000", "", &err), 0);
	assert_int_equal(ls.n, KX_ALERT_LABELS_MAX - 1);
	kx_labels_release(&ls);
}

/* ---- fingerprints ---- */

static void fingerprint(void **state)
{
	struct kx_labels a, b, c, empty;
	char fa[KX_FINGERPRINT_LEN + 1], fb[KX_FINGERPRINT_LEN + 1], fc[KX_FINGERPRINT_LEN + 1];
	(void)state;

	kx_labels_init(&a);
	kx_labels_init(&b);
	kx_labels_init(&c);
	kx_labels_init(&empty);
	kx_alert_label_set(&a, "alertname", "DiskFull", NULL);
	kx_alert_label_set(&a, "instance", "db1", NULL);
	kx_alert_label_set(&a, "severity", "critical", NULL);
	kx_alert_label_set(&b, "severity", "critical", NULL);
	kx_alert_label_set(&b, "instance", "db1", NULL);
	kx_alert_label_set(&b, "alertname", "DiskFull", NULL);
	kx_alert_fingerprint(&a, fa);
	kx_alert_fingerprint(&b, fb);
	/* BLAKE2b-128 of "alertname\xff" "DiskFull\xff" "instance\xff" "db1\xff"
	 * "severity\xff" "critical\xff", its first 8 bytes in hex (Python's
	 * hashlib.blake2b(..., digest_size=16)) */
	assert_string_equal(fa, "5d8401a8aae0b183");
	assert_string_equal(fa, fb);
	kx_alert_fingerprint(&empty, fc);
	assert_string_equal(fc, "cae66941d9efbd40");

	/* the separators keep "a"="bc" and "ab"="c" apart */
	kx_labels_release(&a);
	kx_labels_release(&b);
	kx_alert_label_set(&a, "a", "bc", NULL);
	kx_alert_label_set(&b, "ab", "c", NULL);
	kx_alert_fingerprint(&a, fa);
	kx_alert_fingerprint(&b, fb);
	assert_string_not_equal(fa, fb);
	/* any change of a value changes it */
	kx_alert_label_set(&c, "a", "bd", NULL);
	kx_alert_fingerprint(&c, fc);
	assert_string_not_equal(fa, fc);
	assert_int_equal(strlen(fa), KX_FINGERPRINT_LEN);
	for (size_t i = 0; i < KX_FINGERPRINT_LEN; i++)
		assert_true((fa[i] >= '0' && fa[i] <= '9') || (fa[i] >= 'a' && fa[i] <= 'f'));
	kx_labels_release(&a);
	kx_labels_release(&b);
	kx_labels_release(&c);
}

/* ---- the event check ---- */

static void trigger(struct kx_alert_event *e, const char *summary)
{
	kx_alert_event_init(e);
	e->source = KX_SOURCE_GENERIC;
	e->action = KX_ALERT_TRIGGER;
	e->summary = summary ? strdup(summary) : NULL;
}

static void check_fails(struct kx_alert_event *e, int code, const char *where, const char *msg)
{
	struct kx_err err;
	kx_err_clear(&err);
	int rc = kx_alert_event_check(e, NOW, where, &err);
	if (rc != code)
		fail_msg("check gave %d (%s), expected %d", rc, err.msg, code);
	assert_string_equal(err.msg, msg);
	kx_alert_event_release(e);
}

static void check_ok(struct kx_alert_event *e)
{
	struct kx_err err;
	kx_err_clear(&err);
	if (kx_alert_event_check(e, NOW, "alerts[0]", &err))
		fail_msg("refused: %s", err.msg);
	kx_alert_event_release(e);
}

static void event_check_summary(void **state)
{
	struct kx_alert_event e;
	(void)state;

	trigger(&e, "Disk full");
	check_ok(&e);
	trigger(&e, NULL);
	check_fails(&e, KX_EINVAL, "alerts[3]", "alerts[3]: 'summary' is required");
	trigger(&e, "");
	check_fails(&e, KX_EINVAL, NULL, "'summary' is required");
	/* a resolve or an acknowledge needs none */
	trigger(&e, NULL);
	e.action = KX_ALERT_RESOLVE;
	check_ok(&e);
	trigger(&e, NULL);
	e.action = KX_ALERT_ACKNOWLEDGE;
	check_ok(&e);
	/* characters, not bytes */
	{
		char *s = repeat("é", KX_ALERT_SUMMARY_MAX);
		trigger(&e, s);
		check_ok(&e);
		free(s);
		s = repeat("é", KX_ALERT_SUMMARY_MAX + 1);
		trigger(&e, s);
		check_fails(&e, KX_ETOOBIG, "alerts[0]",
			    "alerts[0]: 'summary' is too long (1025 > 1024 characters)");
		free(s);
	}
	/* several lines are fine, other control characters are not */
	trigger(&e, "line one\nline two\ttabbed");
	check_ok(&e);
	trigger(&e, "bell\x07");
	check_fails(&e, KX_EINVAL, NULL, "'summary' has control characters or invalid UTF-8");
	trigger(&e, "bad \xc3");
	check_fails(&e, KX_EINVAL, NULL, "'summary' has control characters or invalid UTF-8");
}

static void event_check_fields(void **state)
{
	struct kx_alert_event e;
	char *s255 = repeat("d", KX_ALERT_DEDUP_MAX), *s256 = repeat("d", KX_ALERT_DEDUP_MAX + 1);
	(void)state;

	trigger(&e, "x");
	e.dedup_key = strdup(s255);
	e.source_host = strdup(s255);
	e.component = strdup(s255);
	e.group = strdup(s255);
	e.class = strdup(s255);
	check_ok(&e);

	trigger(&e, "x");
	e.dedup_key = strdup(s256);
	check_fails(&e, KX_ETOOBIG, NULL, "'dedup_key' is too long (256 > 255 bytes)");
	trigger(&e, "x");
	e.dedup_key = strdup("");
	check_fails(&e, KX_EINVAL, NULL, "'dedup_key' is empty");
	trigger(&e, "x");
	e.source_host = strdup(s256);
	check_fails(&e, KX_ETOOBIG, NULL, "'source' is too long (256 > 255 bytes)");
	trigger(&e, "x");
	e.component = strdup(s256);
	check_fails(&e, KX_ETOOBIG, NULL, "'component' is too long (256 > 255 bytes)");
	trigger(&e, "x");
	e.group = strdup(s256);
	check_fails(&e, KX_ETOOBIG, NULL, "'group' is too long (256 > 255 bytes)");
	trigger(&e, "x");
	e.class = strdup(s256);
	check_fails(&e, KX_ETOOBIG, NULL, "'class' is too long (256 > 255 bytes)");
	trigger(&e, "x");
	e.class = strdup("disk\nfull");
	check_fails(&e, KX_EINVAL, NULL, "'class' has control characters or invalid UTF-8");

	trigger(&e, "x");
	e.details = repeat("a", KX_ALERT_DETAILS_MAX);
	check_ok(&e);
	trigger(&e, "x");
	e.details = repeat("a", KX_ALERT_DETAILS_MAX + 1);
	check_fails(&e, KX_ETOOBIG, NULL, "'details' is larger than 65536 bytes");

	trigger(&e, "x");
	kx_alert_label_set(&e.labels, "alertname", "X", NULL);
	check_ok(&e);

	/* labels put in by hand, against the rules */
	trigger(&e, "x");
	kx_labels_set(&e.labels, "a-b", "v", NULL);
	check_fails(&e, KX_EINVAL, NULL, "label 'a-b' is not valid");

	trigger(&e, "x");
	e.level = (enum kx_alert_level)9;
	check_fails(&e, KX_EINVAL, NULL, "the event has an unknown kind or level");
	free(s255);
	free(s256);
}

static void event_check_start_window(void **state)
{
	struct kx_alert_event e;
	(void)state;

	trigger(&e, "x");
	e.starts_at = NOW + KX_ALERT_FUTURE_SKEW;
	check_ok(&e);
	trigger(&e, "x");
	e.starts_at = NOW + KX_ALERT_FUTURE_SKEW + 1;
	check_fails(&e, KX_EINVAL, "alerts[1]",
		    "alerts[1]: 'starts_at' is more than 5 minutes in the future");
	trigger(&e, "x");
	e.starts_at = NOW - KX_ALERT_PAST_MAX;
	check_ok(&e);
	trigger(&e, "x");
	e.starts_at = NOW - KX_ALERT_PAST_MAX - 1;
	check_fails(&e, KX_EINVAL, NULL, "'starts_at' is more than 366 days in the past");
	trigger(&e, "x");
	e.starts_at = KX_TIME_UNSET;
	check_ok(&e);
	/* extremes do not overflow */
	trigger(&e, "x");
	e.starts_at = INT64_MAX;
	check_fails(&e, KX_EINVAL, NULL, "'starts_at' is more than 5 minutes in the future");
	trigger(&e, "x");
	e.starts_at = INT64_MIN + 1;
	check_fails(&e, KX_EINVAL, NULL, "'starts_at' is more than 366 days in the past");
	/* ends_at is not checked: a resolve carries when it ended */
	trigger(&e, "x");
	e.action = KX_ALERT_RESOLVE;
	e.ends_at = NOW - KX_ALERT_PAST_MAX * 2;
	check_ok(&e);
}

static void events_list(void **state)
{
	struct kx_alert_events l;
	(void)state;

	kx_alert_events_init(&l);
	for (int i = 0; i < KX_ALERT_BATCH_MAX; i++) {
		struct kx_alert_event *e = kx_alert_events_push(&l);
		assert_non_null(e);
		assert_int_equal(e->level, KX_LEVEL_WARNING);
		assert_true(e->starts_at == KX_TIME_UNSET && e->ends_at == KX_TIME_UNSET);
		e->summary = strdup("x");
	}
	assert_null(kx_alert_events_push(&l));
	assert_int_equal(l.n, KX_ALERT_BATCH_MAX);
	kx_alert_events_release(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(parsers_round_trip),
		cmocka_unit_test(parsers_refuse_with_the_choices),
		cmocka_unit_test(level_guess),
		cmocka_unit_test(label_names_follow_prometheus),
		cmocka_unit_test(label_sizes),
		cmocka_unit_test(label_empty_value_means_no_label),
		cmocka_unit_test(labels_sorted_and_replaced),
		cmocka_unit_test(labels_at_most_128),
		cmocka_unit_test(fingerprint),
		cmocka_unit_test(event_check_summary),
		cmocka_unit_test(event_check_fields),
		cmocka_unit_test(event_check_start_window),
		cmocka_unit_test(events_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
