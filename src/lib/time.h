/* time.h — instants as int64 milliseconds since the Unix epoch (UTC), their
 * RFC 3339 text form, calendar dates and durations ("1h30m").
 *
 * Everything here is pure except kx_now_ms(), which reads the wall clock;
 * core/ never calls it (time is a parameter there).
 */
#ifndef KX_TIME_H
#define KX_TIME_H

#include <stdint.h>

typedef int64_t kx_ms;

/* An unknown or unset instant (NULL in the store, null on the wire). */
#define KX_TIME_UNSET INT64_MIN

/* Wide enough for "9999-12-31T23:59:59.999Z" plus NUL. */
#define KX_TIME_STRLEN 32

struct kx_civil {
	int year, month, day, hour, min, sec, msec;
};

/* Wall clock, milliseconds since the epoch. */
kx_ms kx_now_ms(void);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t kx_days_from_civil(int y, int m, int d);
void kx_civil_from_ms(kx_ms t, struct kx_civil *c);

/* "2026-11-25T20:30:00Z"; milliseconds are added (".250Z") only when not
 * zero. Returns out. Years outside 0..9999 are clamped to that range. */
char *kx_time_format(kx_ms t, char out[KX_TIME_STRLEN]);
/* "2026-11-25 20:30 UTC", the human form used in Markdown records. */
char *kx_time_format_human(kx_ms t, char out[KX_TIME_STRLEN]);

/* Parses RFC 3339 ("2026-11-25T20:30:00Z", "…T20:30:00.5+01:00"); a space or
 * a lowercase 't' may separate date and time, 'z' is accepted. Fraction
 * digits past milliseconds are dropped. Returns 0 or KX_EINVAL. */
int kx_time_parse(const char *s, kx_ms *out);

/* Parses a calendar date "YYYY-MM-DD" (validated: 2026-02-30 is refused). */
int kx_date_parse(const char *s, int *y, int *m, int *d);

/* Parses a duration: one or more <integer><unit> with unit ms, s, m, h, d, w
 * ("90s", "1h30m", "2d"). Zero is allowed; negatives are not. Returns 0 or
 * KX_EINVAL (also on overflow). */
int kx_duration_parse(const char *s, kx_ms *out);
/* "1h30m", "45s", "0s"; out must hold 32 bytes. */
char *kx_duration_format(kx_ms d, char out[32]);

#endif
