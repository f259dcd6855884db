/* helpers.h — small helpers shared by the unit tests (include after
 * <cmocka.h>). Everything is static: each test_*.c is its own program. */
#ifndef KX_TEST_HELPERS_H
#define KX_TEST_HELPERS_H

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/time.h"

/* An instant from its RFC 3339 text; fails the test on a bad literal. */
static inline kx_ms T(const char *s)
{
	kx_ms t = 0;
	assert_int_equal(kx_time_parse(s, &t), 0);
	return t;
}

/* A string of n copies of the UTF-8 sequence unit, malloc'd. */
static inline char *repeat(const char *unit, size_t n)
{
	size_t u = strlen(unit);
	char *s = malloc(u * n + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * u, unit, u);
	s[u * n] = '\0';
	return s;
}

/* Asserts that haystack contains needle, printing both when it does not. */
#define assert_contains(haystack, needle)                                                     \
	do {                                                                                   \
		const char *h_ = (haystack), *n_ = (needle);                                   \
		if (!h_ || !strstr(h_, n_))                                                    \
			fail_msg("expected to find \"%s\" in:\n%s", n_, h_ ? h_ : "(null)");   \
	} while (0)

#define assert_not_contains(haystack, needle)                                                 \
	do {                                                                                   \
		const char *h_ = (haystack), *n_ = (needle);                                   \
		if (h_ && strstr(h_, n_))                                                      \
			fail_msg("did not expect \"%s\" in:\n%s", n_, h_);                     \
	} while (0)

/* Asserts that s starts with prefix. */
#define assert_prefix(s, prefix)                                                              \
	do {                                                                                   \
		const char *s_ = (s), *p_ = (prefix);                                          \
		if (!s_ || strncmp(s_, p_, strlen(p_)) != 0)                                   \
			fail_msg("expected \"%s\" to start with \"%s\"", s_ ? s_ : "(null)", p_); \
	} while (0)

#endif
