#include "lib/time.h"
#include "lib/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

kx_ms kx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (kx_ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil, written out from the published math. */
int64_t kx_days_from_civil(int y, int m, int d)
{
	int64_t yy = (int64_t)y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t mp = (m + 9) % 12;
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

void kx_civil_from_ms(kx_ms t, struct kx_civil *c)
{
	/* Floor division without forming t - rem, which overflows near INT64_MIN. */
	int64_t rem = t % 86400000;
	int64_t days = t / 86400000 - (rem < 0);
	if (rem < 0)
		rem += 86400000;
	civil_from_days(days, &c->year, &c->month, &c->day);
	c->hour = (int)(rem / 3600000);
	c->min = (int)(rem / 60000 % 60);
	c->sec = (int)(rem / 1000 % 60);
	c->msec = (int)(rem % 1000);
}

static int clamp_year(int y)
{
	return y < 0 ? 0 : y > 9999 ? 9999 : y;
}

char *kx_time_format(kx_ms t, char out[KX_TIME_STRLEN])
{
	struct kx_civil c;
	kx_civil_from_ms(t, &c);
	if (c.msec)
		snprintf(out, KX_TIME_STRLEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 clamp_year(c.year), c.month, c.day, c.hour, c.min, c.sec, c.msec);
	else
		snprintf(out, KX_TIME_STRLEN, "%04d-%02d-%02dT%02d:%02d:%02dZ",
			 clamp_year(c.year), c.month, c.day, c.hour, c.min, c.sec);
	return out;
}

char *kx_time_format_human(kx_ms t, char out[KX_TIME_STRLEN])
{
	struct kx_civil c;
	kx_civil_from_ms(t, &c);
	snprintf(out, KX_TIME_STRLEN, "%04d-%02d-%02d %02d:%02d UTC",
		 clamp_year(c.year), c.month, c.day, c.hour, c.min);
	return out;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static int parse_date(const char **p, int *y, int *m, int *d)
{
	if (digits(p, 4, y) || **p != '-')
		return -1;
	(*p)++;
	if (digits(p, 2, m) || **p != '-')
		return -1;
	(*p)++;
	if (digits(p, 2, d))
		return -1;
	if (*m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
		return -1;
	return 0;
}

int kx_date_parse(const char *s, int *y, int *m, int *d)
{
	const char *p = s;
	if (!s || parse_date(&p, y, m, d) || *p)
		return KX_EINVAL;
	return 0;
}

int kx_time_parse(const char *s, kx_ms *out)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, ms = 0, oh, om;
	int64_t off = 0;

	if (!s || parse_date(&p, &y, &mo, &d))
		return KX_EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return KX_EINVAL;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return KX_EINVAL;
	if (h > 23 || mi > 59 || sec > 60)
		return KX_EINVAL;
	if (sec == 60)
		sec = 59; /* a leap second is held at :59 */
	if (*p == '.') {
		int n = 0;
		p++;
		if (*p < '0' || *p > '9')
			return KX_EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (n < 3)
				ms = ms * 10 + (*p - '0');
			n++;
			p++;
		}
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return KX_EINVAL;
		off = sign * ((int64_t)oh * 60 + om) * 60000;
	} else {
		return KX_EINVAL;
	}
	if (*p)
		return KX_EINVAL;
	*out = kx_days_from_civil(y, mo, d) * 86400000 + (int64_t)h * 3600000 +
	       (int64_t)mi * 60000 + (int64_t)sec * 1000 + ms - off;
	return 0;
}

int kx_duration_parse(const char *s, kx_ms *out)
{
	const char *p = s;
	kx_ms total = 0;

	if (!s || !*s)
		return KX_EINVAL;
	while (*p) {
		int64_t v = 0, unit;
		if (*p < '0' || *p > '9')
			return KX_EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				return KX_EINVAL;
			v = v * 10 + (*p++ - '0');
		}
		if (p[0] == 'm' && p[1] == 's') {
			unit = 1;
			p += 2;
		} else {
			switch (*p) {
			case 's': unit = 1000; break;
			case 'm': unit = 60000; break;
			case 'h': unit = 3600000; break;
			case 'd': unit = 86400000; break;
			case 'w': unit = 7 * 86400000LL; break;
			default: return KX_EINVAL;
			}
			p++;
		}
		if (v > (INT64_MAX - total) / unit)
			return KX_EINVAL;
		total += v * unit;
	}
	*out = total;
	return 0;
}

char *kx_duration_format(kx_ms d, char out[32])
{
	static const struct { kx_ms ms; char u; } units[] = {
		{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
	size_t n = 0;
	if (d < 0)
		d = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (d >= units[i].ms) {
			n += (size_t)snprintf(out + n, 32 - n, "%lld%c",
					      (long long)(d / units[i].ms), units[i].u);
			d %= units[i].ms;
		}
	}
	if (d)
		snprintf(out + n, 32 - n, "%lldms", (long long)d);
	else if (!n)
		snprintf(out, 32, "0s");
	return out;
}
