#include "core/check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Bytes of expect_body quoted in a reason. */
#define QUOTE_MAX 64

bool kx_check_body_has(const struct kx_check *c, const char *body, size_t len)
{
	size_t n;

	if (!c->expect_body || !*c->expect_body)
		return true;
	n = strlen(c->expect_body);
	if (!body || n > len)
		return false;
	for (size_t i = 0; i + n <= len; i++)
		if (body[i] == c->expect_body[0] && !memcmp(body + i, c->expect_body, n))
			return true;
	return false;
}

#define ELL "…"
#define ELL_LEN (sizeof(ELL) - 1)

/* Appends s[0..len) to out (of size n, holding *used bytes, NUL-terminated)
 * as one line: control characters become spaces. Past max bytes, or past
 * what fits while keeping `reserve` bytes free for what follows, it is cut
 * on a UTF-8 boundary and marked with "…". */
static void put(char *out, size_t n, size_t *used, const char *s, size_t len, size_t max,
		size_t reserve)
{
	size_t room = n - 1 - *used, cut = len;
	bool cutting = false;

	room = room > reserve ? room - reserve : 0;
	if (cut > max) {
		cut = max;
		cutting = true;
	}
	if (cut > room || (cutting && cut + ELL_LEN > room)) {
		cut = room >= ELL_LEN ? room - ELL_LEN : 0;
		cutting = true;
	}
	if (cutting)
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
	for (size_t i = 0; i < cut; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[(*used)++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	if (cutting && *used + ELL_LEN <= n - 1) {
		memcpy(out + *used, ELL, ELL_LEN);
		*used += ELL_LEN;
	}
	out[*used] = '\0';
}

static bool status_ok(const struct kx_check *c, long status)
{
	if (c->expect_status)
		return status == c->expect_status;
	return status >= 200 && status <= 299;
}

static void reason_status(const struct kx_check *c, long status, char *out, size_t n)
{
	if (c->expect_status)
		snprintf(out, n, "HTTP %ld (expected %d)", status, c->expect_status);
	else
		snprintf(out, n, "HTTP %ld (expected 2xx)", status);
}

static void reason_body(const struct kx_check *c, char *out, size_t n)
{
	static const char pre[] = "body does not contain '";
	size_t used = 0;

	out[0] = '\0';
	put(out, n, &used, pre, sizeof(pre) - 1, SIZE_MAX, 0);
	put(out, n, &used, c->expect_body, strlen(c->expect_body), QUOTE_MAX, 1);
	put(out, n, &used, "'", 1, SIZE_MAX, 0);
}

bool kx_check_judge(const struct kx_check *c, const struct kx_probe *p, char *reason, size_t n)
{
	size_t used = 0;

	reason[0] = '\0';
	switch (p->outcome) {
	case KX_PROBE_ANSWERED:
		if (!status_ok(c, p->status)) {
			reason_status(c, p->status, reason, n);
			return false;
		}
		if (c->expect_body && *c->expect_body && !p->body_found) {
			reason_body(c, reason, n);
			return false;
		}
		return true;
	case KX_PROBE_TIMEOUT:
		snprintf(reason, n, "timeout after %lld ms", (long long)c->timeout);
		return false;
	case KX_PROBE_REFUSED:
		snprintf(reason, n, "connection refused");
		return false;
	case KX_PROBE_DNS:
		snprintf(reason, n, "cannot resolve host");
		return false;
	case KX_PROBE_ERROR:
	default:
		if (p->error && *p->error) {
			/* the first line of it */
			size_t len = strcspn(p->error, "\r\n");
			put(reason, n, &used, p->error, len, SIZE_MAX, 0);
		} else {
			snprintf(reason, n, "request failed");
		}
		return false;
	}
}

void kx_check_state_init(struct kx_check_state *s)
{
	memset(s, 0, sizeof(*s));
}

enum kx_check_transition kx_check_observe(struct kx_check_state *s, const struct kx_check *c,
					  const struct kx_probe *p)
{
	uint32_t fail_after = c->fail_after ? c->fail_after : 1;
	uint32_t resolve_after = c->resolve_after ? c->resolve_after : 1;
	bool ok = kx_check_judge(c, p, s->reason, sizeof(s->reason));

	s->status = p->outcome == KX_PROBE_ANSWERED ? p->status : 0;
	if (ok) {
		s->failures = 0;
		if (s->successes < UINT32_MAX)
			s->successes++;
		if ((s->firing || s->maybe_firing) && s->successes >= resolve_after) {
			s->firing = s->maybe_firing = false;
			return KX_CHECK_RESOLVE;
		}
		return KX_CHECK_NONE;
	}
	s->successes = 0;
	if (s->failures < UINT32_MAX)
		s->failures++;
	if (!s->firing && s->failures >= fail_after) {
		s->firing = true;
		s->maybe_firing = false;
		return KX_CHECK_FIRE;
	}
	return KX_CHECK_NONE;
}
