/* test_lib.c — lib/: the growable buffer, times and durations, secrets,
 * error structs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>

#include "helpers.h"
#include "lib/buf.h"
#include "lib/dynload.h"
#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"

/* ---- buf ---- */

static void buf_empty_is_empty_string(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	assert_string_equal(kx_buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, KX_BUF_DEFAULT_MAX);
	kx_buf_release(&b);
	assert_string_equal(kx_buf_str(&b), "");
}

static void buf_appends_accumulate(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 1024);
	assert_int_equal(kx_buf_adds(&b, "incident "), 0);
	assert_int_equal(kx_buf_add(&b, "INC-1xyz", 5), 0);
	assert_int_equal(kx_buf_addc(&b, ':'), 0);
	assert_int_equal(kx_buf_addf(&b, " %s is %d%%", "P1", 50), 0);
	assert_string_equal(kx_buf_str(&b), "incident INC-1: P1 is 50%");
	assert_int_equal(b.len, strlen("incident INC-1: P1 is 50%"));
	assert_true(b.len < b.cap);
	assert_int_equal(b.data[b.len], '\0');
	kx_buf_release(&b);
}

static void buf_grows_past_initial_capacity(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(kx_buf_addc(&b, (char)('a' + i % 26)), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(strlen(kx_buf_str(&b)), 10000);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	assert_true(b.len < b.cap);
	kx_buf_release(&b);
}

static void buf_large_formatted_append(void **state)
{
	struct kx_buf b;
	char *big = repeat("x", 5000);
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_addf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 5002);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[5001], '>');
	kx_buf_release(&b);
	free(big);
}

static void buf_exactly_max_is_fine(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 8);
	assert_int_equal(kx_buf_adds(&b, "12345678"), 0);
	assert_string_equal(kx_buf_str(&b), "12345678");
	kx_buf_release(&b);
}

static void buf_over_max_frees_the_buffer(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 8);
	assert_int_equal(kx_buf_adds(&b, "1234567"), 0);
	assert_int_equal(kx_buf_adds(&b, "89"), KX_ENOMEM);
	/* a half-built string never escapes */
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(kx_buf_str(&b), "");
	/* the buffer is reusable afterwards, with the same ceiling */
	assert_int_equal(kx_buf_adds(&b, "ok"), 0);
	assert_string_equal(kx_buf_str(&b), "ok");
	assert_int_equal(kx_buf_adds(&b, "toolong"), KX_ENOMEM);
	assert_null(b.data);
	kx_buf_release(&b);
}

static void buf_formatted_over_max_frees(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 10);
	assert_int_equal(kx_buf_addf(&b, "%d", 12345), 0);
	assert_int_equal(kx_buf_addf(&b, "%s", "678901"), KX_ENOMEM);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	kx_buf_release(&b);
}

static void buf_addc_over_max(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 1);
	assert_int_equal(kx_buf_addc(&b, 'a'), 0);
	assert_int_equal(kx_buf_addc(&b, 'b'), KX_ENOMEM);
	assert_string_equal(kx_buf_str(&b), "");
	kx_buf_release(&b);
}

static void buf_take_hands_over_content(void **state)
{
	struct kx_buf b;
	size_t len = 99;
	char *s;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_adds(&b, "hello"), 0);
	s = kx_buf_take(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "hello");
	assert_int_equal(len, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(kx_buf_str(&b), "");
	free(s);
	/* still usable */
	assert_int_equal(kx_buf_adds(&b, "again"), 0);
	assert_string_equal(kx_buf_str(&b), "again");
	kx_buf_release(&b);
}

static void buf_take_of_empty_is_empty_string(void **state)
{
	struct kx_buf b;
	size_t len = 99;
	char *s;
	(void)state;
	kx_buf_init(&b, 0);
	s = kx_buf_take(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	free(s);
}

static void buf_clear_keeps_memory(void **state)
{
	struct kx_buf b;
	char *before;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_adds(&b, "something"), 0);
	before = b.data;
	kx_buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(kx_buf_str(&b), "");
	assert_ptr_equal(b.data, before);
	assert_int_equal(kx_buf_adds(&b, "new"), 0);
	assert_string_equal(kx_buf_str(&b), "new");
	kx_buf_release(&b);
	kx_buf_clear(&b); /* clear of a released buffer is harmless */
	assert_string_equal(kx_buf_str(&b), "");
}

static void buf_binary_content(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_add(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	kx_buf_release(&b);
}

/* ---- time: parse ---- */

static void time_parse_utc(void **state)
{
	kx_ms t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00Z", &t), 0);
	assert_true(t == INT64_C(1795638600000));
	assert_int_equal(kx_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_true(t == 0);
	assert_int_equal(kx_time_parse("1969-12-31T23:59:59Z", &t), 0);
	assert_true(t == -1000);
	assert_int_equal(kx_time_parse("2000-01-01T00:00:00Z", &t), 0);
	assert_true(t == INT64_C(946684800000));
}

static void time_parse_separators_and_case(void **state)
{
	kx_ms want = INT64_C(1795638600000), t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2026-11-25t20:30:00z", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-25 20:30:00Z", &t), 0);
	assert_true(t == want);
}

static void time_parse_offsets(void **state)
{
	kx_ms want = INT64_C(1795638600000), t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2026-11-25T21:30:00+01:00", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-25T15:00:00-05:30", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-26T02:00:00+05:30", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00+00:00", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00-00:00", &t), 0);
	assert_true(t == want);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00+23:59", &t), 0);
	assert_true(t == want - (23 * 60 + 59) * 60000);
}

static void time_parse_fractions(void **state)
{
	kx_ms base = INT64_C(1795638600000), t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.5Z", &t), 0);
	assert_true(t == base + 500);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.25Z", &t), 0);
	assert_true(t == base + 250);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.007Z", &t), 0);
	assert_true(t == base + 7);
	/* digits past milliseconds are dropped, not rounded */
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.123999Z", &t), 0);
	assert_true(t == base + 123);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.999999999Z", &t), 0);
	assert_true(t == base + 999);
	assert_int_equal(kx_time_parse("2026-11-25T21:30:00.5+01:00", &t), 0);
	assert_true(t == base + 500);
}

/* Regression (was a bug in lib/time.c, kx_time_parse): RFC 3339 allows any number of
 * fraction digits and time.h says "Fraction digits past milliseconds are
 * dropped", but a fraction of 10 or more digits is refused with KX_EINVAL. */
static void time_parse_long_fractions_are_dropped(void **state)
{
	kx_ms base = INT64_C(1795638600000), t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.1234567891Z", &t), 0);
	assert_true(t == base + 123);
	assert_int_equal(kx_time_parse("2026-11-25T20:30:00.500000000000000000000Z", &t), 0);
	assert_true(t == base + 500);
}

static void time_parse_leap_second_is_clamped(void **state)
{
	kx_ms t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2016-12-31T23:59:60Z", &t), 0);
	assert_true(t == INT64_C(1483228799000));
	assert_int_equal(kx_time_parse("2016-12-31T23:59:60.5Z", &t), 0);
	assert_true(t == INT64_C(1483228799500));
}

static void time_parse_leap_years(void **state)
{
	kx_ms t = 0;
	(void)state;
	assert_int_equal(kx_time_parse("2024-02-29T00:00:00Z", &t), 0);
	assert_true(t == INT64_C(1709164800000));
	assert_int_equal(kx_time_parse("2000-02-29T00:00:00Z", &t), 0);
	assert_int_equal(kx_time_parse("2026-02-29T00:00:00Z", &t), KX_EINVAL);
	assert_int_equal(kx_time_parse("2100-02-29T00:00:00Z", &t), KX_EINVAL);
}

static void time_parse_refuses_bad_input(void **state)
{
	static const char *const bad[] = {
		"",
		"2026-02-30T00:00:00Z", /* no such day */
		"2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z", /* no such month */
		"2026-00-10T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"2026-11-25T20:30:00",  /* missing zone */
		"2026-11-25",           /* date only */
		"2026-11-25T",
		"2026-11-25T20",
		"2026-11-25T20:30",
		"2026-11-25T20:30Z",
		"2026-11-25T24:00:00Z",
		"2026-11-25T20:60:00Z",
		"2026-11-25T20:30:61Z",
		"2026-11-25T20:30:00.Z", /* empty fraction */
		"2026-11-25T20:30:00ZZ",
		"2026-11-25T20:30:00Z ",
		" 2026-11-25T20:30:00Z",
		"2026-11-25T20:30:00+0100",
		"2026-11-25T20:30:00+01",
		"2026-11-25T20:30:00+24:00",
		"2026-11-25T20:30:00+01:60",
		"2026-11-25X20:30:00Z",
		"2026/11/25T20:30:00Z",
		"26-11-25T20:30:00Z",
		"2026-1-25T20:30:00Z",
		"2026-11-25T2:30:00Z",
		"+2026-11-25T20:30:00Z",
		"2026-11-25T20:30:00UTC",
		"yesterday",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kx_ms t = 0;
		if (kx_time_parse(bad[i], &t) != KX_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
	assert_int_equal(kx_time_parse(NULL, &(kx_ms){0}), KX_EINVAL);
}

/* ---- time: format ---- */

static void time_format_utc(void **state)
{
	char out[KX_TIME_STRLEN];
	(void)state;
	assert_string_equal(kx_time_format(INT64_C(1795638600000), out), "2026-11-25T20:30:00Z");
	assert_string_equal(kx_time_format(0, out), "1970-01-01T00:00:00Z");
	assert_string_equal(kx_time_format(INT64_C(1795638600250), out),
			    "2026-11-25T20:30:00.250Z");
	assert_string_equal(kx_time_format(INT64_C(1795638600007), out),
			    "2026-11-25T20:30:00.007Z");
	assert_string_equal(kx_time_format(-1, out), "1969-12-31T23:59:59.999Z");
	assert_string_equal(kx_time_format(INT64_C(1709164800000), out), "2024-02-29T00:00:00Z");
}

static void time_format_clamps_years(void **state)
{
	char out[KX_TIME_STRLEN];
	(void)state;
	/* year 10000 and beyond */
	kx_time_format(kx_days_from_civil(10000, 1, 1) * 86400000, out);
	assert_prefix(out, "9999-");
	/* before year 0 */
	kx_time_format(kx_days_from_civil(-1, 6, 1) * 86400000, out);
	assert_prefix(out, "0000-");
	assert_true(strlen(out) < KX_TIME_STRLEN);
}

/* Regression (was a bug in lib/time.c, kx_civil_from_ms): `days * 86400000` overflows int64
 * for instants within a day of INT64_MIN (== KX_TIME_UNSET), which is
 * undefined behaviour; the ASan+UBSan build aborts here. The header promises
 * that out-of-range years are clamped, so every kx_ms must format. */
static void time_format_extreme_instants(void **state)
{
	char out[KX_TIME_STRLEN];
	kx_ms back;
	(void)state;
	kx_time_format(INT64_MAX, out);
	assert_prefix(out, "9999-");
	assert_int_equal(kx_time_parse(out, &back), 0);
	kx_time_format(INT64_MIN, out);
	assert_prefix(out, "0000-");
	assert_int_equal(kx_time_parse(out, &back), 0);
	kx_time_format_human(INT64_MIN, out);
	assert_prefix(out, "0000-");
}

static void time_format_parse_round_trip(void **state)
{
	static const kx_ms v[] = {0, 1, -1, 999, 1000, INT64_C(1795638600000),
				  INT64_C(1795638600123), INT64_C(253402300799999), /* 9999-12-31 */
				  INT64_C(-62167219200000)};                           /* 0000-01-01 */
	char out[KX_TIME_STRLEN];
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		kx_ms back = 0;
		kx_time_format(v[i], out);
		if (kx_time_parse(out, &back) || back != v[i])
			fail_msg("%lld formats as '%s' which does not parse back", (long long)v[i], out);
	}
}

static void time_format_human(void **state)
{
	char out[KX_TIME_STRLEN];
	(void)state;
	assert_string_equal(kx_time_format_human(INT64_C(1795638600000), out),
			    "2026-11-25 20:30 UTC");
	assert_string_equal(kx_time_format_human(INT64_C(1795638659999), out),
			    "2026-11-25 20:30 UTC");
	assert_string_equal(kx_time_format_human(0, out), "1970-01-01 00:00 UTC");
}

static void time_civil(void **state)
{
	struct kx_civil c;
	(void)state;
	kx_civil_from_ms(INT64_C(1795638600250), &c);
	assert_int_equal(c.year, 2026);
	assert_int_equal(c.month, 11);
	assert_int_equal(c.day, 25);
	assert_int_equal(c.hour, 20);
	assert_int_equal(c.min, 30);
	assert_int_equal(c.sec, 0);
	assert_int_equal(c.msec, 250);
	kx_civil_from_ms(-1, &c);
	assert_int_equal(c.year, 1969);
	assert_int_equal(c.month, 12);
	assert_int_equal(c.day, 31);
	assert_int_equal(c.hour, 23);
	assert_int_equal(c.msec, 999);
	assert_true(kx_days_from_civil(1970, 1, 1) == 0);
	assert_true(kx_days_from_civil(2000, 3, 1) == 11017);
	assert_true(kx_days_from_civil(1969, 12, 31) == -1);
}

static void time_now_is_plausible(void **state)
{
	(void)state;
	/* after 2025-01-01 and before 2100-01-01 */
	assert_true(kx_now_ms() > INT64_C(1735689600000));
	assert_true(kx_now_ms() < INT64_C(4102444800000));
}

/* ---- dates ---- */

static void date_parse_valid(void **state)
{
	int y = 0, m = 0, d = 0;
	(void)state;
	assert_int_equal(kx_date_parse("2026-11-25", &y, &m, &d), 0);
	assert_int_equal(y, 2026);
	assert_int_equal(m, 11);
	assert_int_equal(d, 25);
	assert_int_equal(kx_date_parse("2024-02-29", &y, &m, &d), 0);
	assert_int_equal(kx_date_parse("2026-12-31", &y, &m, &d), 0);
	assert_int_equal(kx_date_parse("2026-01-01", &y, &m, &d), 0);
}

static void date_parse_invalid(void **state)
{
	static const char *const bad[] = {"2026-02-30", "2026-02-29", "2026-13-01", "2026-00-01",
					  "2026-04-31", "2026-11-00", "2026-11-32", "2026-1-01",
					  "2026-11-5",  "26-11-25",   "2026/11/25", "2026-11-25T",
					  "2026-11-25 ", "",          "tomorrow",   "2026-11"};
	int y, m, d;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kx_date_parse(bad[i], &y, &m, &d) != KX_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(kx_date_parse(NULL, &y, &m, &d), KX_EINVAL);
}

/* ---- durations ---- */

static kx_ms D(const char *s)
{
	kx_ms d = -1;
	if (kx_duration_parse(s, &d))
		fail_msg("duration '%s' was refused", s);
	return d;
}

static void duration_parse_units(void **state)
{
	(void)state;
	assert_true(D("90s") == 90000);
	assert_true(D("1h30m") == 5400000);
	assert_true(D("2d") == 172800000);
	assert_true(D("1w") == 604800000);
	assert_true(D("250ms") == 250);
	assert_true(D("15m") == 900000);
	assert_true(D("24h") == 86400000);
	assert_true(D("0s") == 0);
	assert_true(D("0ms") == 0);
	assert_true(D("1m1ms") == 60001);
	assert_true(D("1w2d3h4m5s6ms") ==
		    604800000 + 2 * 86400000 + 3 * 3600000 + 4 * 60000 + 5 * 1000 + 6);
	assert_true(D("30m1h") == 5400000); /* order is not enforced */
}

static void duration_parse_refuses_bad_input(void **state)
{
	static const char *const bad[] = {"",     "-5m",  "5",     "m",  "5x",  "1h30",
					  "1.5h", " 5m",  "5m ",   "5 m", "5M",  "1y",
					  "5mm",  "ms",   "+5m",   "1h-5m", "5sec", "1H"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kx_ms d = 0;
		if (kx_duration_parse(bad[i], &d) != KX_EINVAL)
			fail_msg("duration '%s' was accepted", bad[i]);
	}
	assert_int_equal(kx_duration_parse(NULL, &(kx_ms){0}), KX_EINVAL);
}

static void duration_parse_overflow(void **state)
{
	kx_ms d;
	(void)state;
	assert_int_equal(kx_duration_parse("99999999999999999999ms", &d), KX_EINVAL);
	assert_int_equal(kx_duration_parse("99999999999999999999999999s", &d), KX_EINVAL);
	assert_int_equal(kx_duration_parse("10000000000000000w", &d), KX_EINVAL);
	assert_int_equal(kx_duration_parse("106751991168d", &d), KX_EINVAL);
	assert_int_equal(kx_duration_parse("9000000000000000000ms9000000000000000000ms", &d),
			 KX_EINVAL);
	assert_int_equal(kx_duration_parse("106751991167d106751991167d", &d), KX_EINVAL);
	/* the largest whole number of days that fits */
	assert_int_equal(kx_duration_parse("106751991167d", &d), 0);
	assert_true(d == INT64_C(106751991167) * 86400000);
}

static void duration_format(void **state)
{
	char out[32];
	(void)state;
	assert_string_equal(kx_duration_format(0, out), "0s");
	assert_string_equal(kx_duration_format(5400000, out), "1h30m");
	assert_string_equal(kx_duration_format(45000, out), "45s");
	assert_string_equal(kx_duration_format(90000, out), "1m30s");
	assert_string_equal(kx_duration_format(250, out), "250ms");
	assert_string_equal(kx_duration_format(86400000, out), "1d");
	assert_string_equal(kx_duration_format(604800000, out), "7d");
	assert_string_equal(kx_duration_format(90061001, out), "1d1h1m1s1ms");
	assert_string_equal(kx_duration_format(-5, out), "0s");
	kx_duration_format(INT64_MAX, out);
	assert_true(strlen(out) < 32);
	assert_prefix(out, "106751991167d");
}

static void duration_format_parse_round_trip(void **state)
{
	static const kx_ms v[] = {0, 1, 999, 1000, 61000, 5400000, 86400001, 604800000,
				  INT64_C(123456789012), INT64_MAX / 2};
	char out[32];
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		kx_ms back = -1;
		kx_duration_format(v[i], out);
		if (kx_duration_parse(out, &back) || back != v[i])
			fail_msg("%lld formats as '%s' which does not parse back", (long long)v[i], out);
	}
}

/* ---- secrets ---- */

static int secret_setup(void **state)
{
	(void)state;
	return kx_secret_init();
}

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static void secret_token_shape(void **state)
{
	char a[KX_TOKEN_LEN + 1], b[KX_TOKEN_LEN + 1];
	(void)state;
	assert_int_equal(kx_secret_init(), 0); /* a second init is fine */
	for (int round = 0; round < 50; round++) {
		memset(a, 0x55, sizeof(a));
		kx_token_generate(a);
		assert_int_equal(strlen(a), KX_TOKEN_LEN);
		assert_int_equal(strlen(a), 46);
		assert_prefix(a, "kx_");
		for (size_t i = 3; i < KX_TOKEN_LEN; i++)
			if (!is_b64url(a[i]))
				fail_msg("token '%s' has '%c' at %zu", a, a[i], i);
	}
	kx_token_generate(b);
	assert_string_not_equal(a, b);
}

static void secret_hash_is_stable(void **state)
{
	uint8_t h1[KX_HASH_LEN], h2[KX_HASH_LEN], h3[KX_HASH_LEN];
	char hex[2 * KX_HASH_LEN + 1];
	(void)state;
	kx_hash("", 0, h1);
	kx_hex(h1, KX_HASH_LEN, hex);
	/* BLAKE2b-256 of the empty string */
	assert_string_equal(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
	kx_hash("kx_test", 7, h1);
	kx_hex(h1, KX_HASH_LEN, hex);
	assert_string_equal(hex, "4c8c2205668e4fbc4763f75e6a585092b84a878768bbd64380308aa2ff779b2a");
	kx_hash("kx_test", 7, h2);
	assert_memory_equal(h1, h2, KX_HASH_LEN);
	kx_hash("kx_tesu", 7, h3);
	assert_memory_not_equal(h1, h3, KX_HASH_LEN);
	kx_hash("kx_test", 6, h3); /* length counts */
	assert_memory_not_equal(h1, h3, KX_HASH_LEN);
}

static void secret_random_id(void **state)
{
	char a[KX_ID_LEN], b[KX_ID_LEN], small[8];
	(void)state;
	kx_random_id("tok_", a, sizeof(a));
	kx_random_id("tok_", b, sizeof(b));
	assert_int_equal(strlen(a), KX_ID_LEN - 1);
	assert_prefix(a, "tok_");
	for (size_t i = 4; i < strlen(a); i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
	assert_string_not_equal(a, b);
	/* a short buffer is truncated, never overrun */
	memset(small, 'Z', sizeof(small));
	kx_random_id("tok_", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_prefix(small, "tok_");
}

static void secret_hex(void **state)
{
	static const uint8_t p[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];
	(void)state;
	kx_hex(p, sizeof(p), out);
	assert_string_equal(out, "000fa5ff");
	kx_hex(p, 0, out);
	assert_string_equal(out, "");
}

/* ---- err ---- */

static void err_set_and_clear(void **state)
{
	struct kx_err err = {0};
	(void)state;
	assert_int_equal(kx_err_set(&err, KX_EINVAL, "unknown severity '%s'", "P9"), KX_EINVAL);
	assert_int_equal(err.code, KX_EINVAL);
	assert_string_equal(err.msg, "unknown severity 'P9'");
	kx_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(kx_err_set(NULL, KX_ENOTFOUND, "x"), KX_ENOTFOUND);
	kx_err_clear(NULL);
}

static void err_message_is_truncated(void **state)
{
	struct kx_err err;
	char *long_text = repeat("y", 2000);
	(void)state;
	assert_int_equal(kx_err_set(&err, KX_EIO, "%s", long_text), KX_EIO);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	free(long_text);
}

static void err_names(void **state)
{
	(void)state;
	assert_string_equal(kx_err_name(KX_OK), "ok");
	assert_string_equal(kx_err_name(KX_ENOMEM), "out_of_memory");
	assert_string_equal(kx_err_name(KX_EINVAL), "invalid");
	assert_string_equal(kx_err_name(KX_ENOTFOUND), "not_found");
	assert_string_equal(kx_err_name(KX_ECONFLICT), "conflict");
	assert_string_equal(kx_err_name(KX_EAUTH), "unauthorized");
	assert_string_equal(kx_err_name(KX_EFORBIDDEN), "forbidden");
	assert_string_equal(kx_err_name(KX_EIO), "io_error");
	assert_string_equal(kx_err_name(KX_ESTORE), "store_error");
	assert_string_equal(kx_err_name(KX_EUNAVAIL), "unavailable");
	assert_string_equal(kx_err_name(KX_ETOOBIG), "too_large");
	assert_string_equal(kx_err_name(KX_EJSON), "invalid_json");
	assert_string_equal(kx_err_name(-999), "error");
	assert_string_equal(kx_err_name(7), "error");
}

/* ---- dynload ---- */

static struct {
	size_t (*strlen)(const char *);
	int (*no_such_function)(void);
} libc_api;

static void dynload_binds_and_reports(void **state)
{
	static const char *const libc[] = {"libc.so.6", NULL};
	static const char *const none[] = {"libkx-missing-1.so", "libkx-missing-2.so", NULL};
	static const struct kx_dl_sym good[] = {KX_DL_SYM(libc_api, strlen)};
	static const struct kx_dl_sym bad[] = {KX_DL_SYM(libc_api, strlen),
					       KX_DL_SYM(libc_api, no_such_function)};
	static struct kx_dl_lib ok = KX_DL_LIB(libc, "tests need libc", "libc", "odd", good);
	static struct kx_dl_lib missing =
		KX_DL_LIB(none, "this needs libkx-missing (Debian package x)", "x", "?", good);
	static struct kx_dl_lib nosym = KX_DL_LIB(libc, "n", "libc", "too old?", bad);
	struct kx_err err = {0};
	(void)state;

	assert_int_equal(kx_dl_load(&ok, &err), 0);
	assert_int_equal(libc_api.strlen("four"), 4);
	assert_int_equal(kx_dl_load(&ok, &err), 0); /* once */

	assert_int_equal(kx_dl_load(&missing, &err), KX_EIO);
	assert_contains(err.msg, "this needs libkx-missing (Debian package x): ");
	assert_contains(err.msg, "libkx-missing-1.so"); /* the first name's error */
	assert_int_equal(kx_dl_load(&missing, &err), KX_EIO); /* the same outcome again */

	assert_int_equal(kx_dl_load(&nosym, &err), KX_EIO);
	assert_string_equal(err.msg, "libc has no symbol 'no_such_function' (too old?)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_empty_is_empty_string),
		cmocka_unit_test(buf_appends_accumulate),
		cmocka_unit_test(buf_grows_past_initial_capacity),
		cmocka_unit_test(buf_large_formatted_append),
		cmocka_unit_test(buf_exactly_max_is_fine),
		cmocka_unit_test(buf_over_max_frees_the_buffer),
		cmocka_unit_test(buf_formatted_over_max_frees),
		cmocka_unit_test(buf_addc_over_max),
		cmocka_unit_test(buf_take_hands_over_content),
		cmocka_unit_test(buf_take_of_empty_is_empty_string),
		cmocka_unit_test(buf_clear_keeps_memory),
		cmocka_unit_test(buf_binary_content),
		cmocka_unit_test(time_parse_utc),
		cmocka_unit_test(time_parse_separators_and_case),
		cmocka_unit_test(time_parse_offsets),
		cmocka_unit_test(time_parse_fractions),
		cmocka_unit_test(time_parse_long_fractions_are_dropped),
		cmocka_unit_test(time_parse_leap_second_is_clamped),
		cmocka_unit_test(time_parse_leap_years),
		cmocka_unit_test(time_parse_refuses_bad_input),
		cmocka_unit_test(time_format_utc),
		cmocka_unit_test(time_format_clamps_years),
		cmocka_unit_test(time_format_parse_round_trip),
		cmocka_unit_test(time_format_human),
		cmocka_unit_test(time_civil),
		cmocka_unit_test(time_now_is_plausible),
		cmocka_unit_test(date_parse_valid),
		cmocka_unit_test(date_parse_invalid),
		cmocka_unit_test(duration_parse_units),
		cmocka_unit_test(duration_parse_refuses_bad_input),
		cmocka_unit_test(duration_parse_overflow),
		cmocka_unit_test(duration_format),
		cmocka_unit_test(duration_format_parse_round_trip),
		cmocka_unit_test_setup(secret_token_shape, secret_setup),
		cmocka_unit_test_setup(secret_hash_is_stable, secret_setup),
		cmocka_unit_test_setup(secret_random_id, secret_setup),
		cmocka_unit_test(secret_hex),
		cmocka_unit_test(err_set_and_clear),
		cmocka_unit_test(err_message_is_truncated),
		cmocka_unit_test(err_names),
		cmocka_unit_test(dynload_binds_and_reports),
		/* last: under UBSan it aborts the program (see the test) */
		cmocka_unit_test(time_format_extreme_instants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
