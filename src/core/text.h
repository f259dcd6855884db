/* text.h — checks on user-supplied text. */
#ifndef KX_TEXT_H
#define KX_TEXT_H

#include <stddef.h>

enum {
	KX_TEXT_MULTILINE = 1, /* allow \n, \r and \t */
};

/* 0 when s[0..n) is valid UTF-8 without NUL or control characters (other
 * than newline, carriage return and tab with KX_TEXT_MULTILINE); -1 otherwise. */
int kx_text_check(const char *s, size_t n, int flags);

/* Number of UTF-8 code points in a valid string. */
size_t kx_text_chars(const char *s, size_t n);

#endif
