/* fuzz_time.c — the small text parsers: RFC 3339 times, dates, durations,
 * "key=value" labels, incident IDs, and the UTF-8 check.
 *
 * The input is copied and NUL-terminated (these parsers take C strings).
 * Oracles: an accepted time formats to text that parses back to the same
 * instant (when its year is inside 0..9999, the range the format can
 * express); an accepted date is a real calendar day; an accepted duration is
 * non-negative and survives format → parse; an accepted label is valid by
 * the key and value checks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/incident.h"
#include "core/labels.h"
#include "core/text.h"
#include "lib/time.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void fuzz_time_parse(const char *s)
{
	kx_ms t, back;
	char out[KX_TIME_STRLEN], human[KX_TIME_STRLEN];
	struct kx_civil c;

	if (kx_time_parse(s, &t))
		return;
	kx_civil_from_ms(t, &c);
	check(c.month >= 1 && c.month <= 12 && c.day >= 1 && c.day <= 31);
	check(c.hour >= 0 && c.hour < 24 && c.min >= 0 && c.min < 60);
	check(c.sec >= 0 && c.sec < 60 && c.msec >= 0 && c.msec < 1000);
	kx_time_format(t, out);
	check(strlen(out) < KX_TIME_STRLEN);
	kx_time_format_human(t, human);
	check(strlen(human) == 20);
	if (c.year >= 0 && c.year <= 9999) {
		check(kx_time_parse(out, &back) == 0);
		check(back == t);
	}
}

static void fuzz_date_parse(const char *s)
{
	int y, m, d;
	struct kx_civil c;
	if (kx_date_parse(s, &y, &m, &d))
		return;
	check(strlen(s) == 10);
	check(y >= 0 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31);
	/* a real day: it survives days → civil → days */
	kx_civil_from_ms(kx_days_from_civil(y, m, d) * 86400000, &c);
	check(c.year == y && c.month == m && c.day == d);
}

static void fuzz_duration(const char *s)
{
	kx_ms d, back;
	char out[32];
	if (kx_duration_parse(s, &d))
		return;
	check(d >= 0);
	kx_duration_format(d, out);
	check(strlen(out) < 32);
	check(kx_duration_parse(out, &back) == 0);
	check(back == d);
}

static void fuzz_label(const char *s)
{
	struct kx_labels ls;
	struct kx_err err = {0};
	struct kx_buf b;
	int rc;

	kx_labels_init(&ls);
	kx_labels_add_pair(&ls, "zzz=last", NULL);
	rc = kx_labels_add_pair(&ls, s, &err);
	if (rc == 0) {
		const char *eq = strchr(s, '=');
		check(eq != NULL);
		check(ls.n == 1 || ls.n == 2);
		for (size_t i = 0; i < ls.n; i++) {
			check(kx_label_key_check(ls.v[i].key, NULL) == 0);
			check(kx_label_value_check(ls.v[i].key, ls.v[i].value, NULL) == 0);
		}
		for (size_t i = 1; i < ls.n; i++)
			check(strcmp(ls.v[i - 1].key, ls.v[i].key) < 0);
		check(strcmp(kx_labels_get(&ls, ls.v[0].key), ls.v[0].value) == 0);
		kx_buf_init(&b, 0);
		check(kx_labels_format(&ls, &b) == 0);
		kx_buf_release(&b);
	} else {
		check(rc == KX_EINVAL);
		check(err.msg[0] != '\0');
		check(ls.n == 1);
	}
	kx_labels_release(&ls);
}

static void fuzz_misc(const char *s, size_t n)
{
	enum kx_status st;
	enum kx_item_kind k;
	if (kx_text_check(s, n, 0) == 0)
		check(kx_text_chars(s, n) <= n);
	if (kx_incident_id_valid(s)) {
		size_t len = strlen(s);
		check(len >= 16 && len <= 22 && strncmp(s, "INC-", 4) == 0);
	}
	if (kx_status_parse(s, &st, NULL) == 0)
		check(strcmp(kx_status_name(st), s) == 0);
	if (kx_item_kind_parse(s, &k, NULL) == 0)
		check(strcmp(kx_item_kind_name(k), s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_time_parse(s);
	fuzz_date_parse(s);
	fuzz_duration(s);
	fuzz_label(s);
	fuzz_misc(s, size);
	free(s);
	return 0;
}
