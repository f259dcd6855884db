/* err.h — error codes and the error struct every fallible call may fill.
 *
 * Functions that can fail return int: 0 on success, a negative KX_E… code on
 * failure. Where the caller needs a reason, the function takes a
 * `struct kx_err *` and writes a one-line message into it: lowercase, no full
 * stop, the subject quoted ("unknown severity 'P9'").
 */
#ifndef KX_ERR_H
#define KX_ERR_H

#include <stdarg.h>

enum {
	KX_OK = 0,
	KX_ENOMEM = -1,    /* allocation failed or a buffer hit its maximum */
	KX_EINVAL = -2,    /* bad input: the message says what and where */
	KX_ENOTFOUND = -3, /* no such object (or not visible to the caller) */
	KX_ECONFLICT = -4, /* stale version, illegal transition, duplicate */
	KX_EAUTH = -5,     /* missing or invalid credential */
	KX_EFORBIDDEN = -6,/* credential valid, not allowed */
	KX_EIO = -7,       /* file or network error */
	KX_ESTORE = -8,    /* the store failed (database error) */
	KX_EUNAVAIL = -9,  /* the store is unreachable right now */
	KX_ETOOBIG = -10,  /* input over its size limit */
	KX_EJSON = -11,    /* a body that is not the JSON asked for */
};

struct kx_err {
	int code;
	char msg[512];
};

/* Sets err->code and formats err->msg (truncating); returns code so that
 * callers can write `return kx_err_set(err, KX_EINVAL, "...")`.
 * err may be NULL. */
int kx_err_set(struct kx_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int kx_err_setv(struct kx_err *err, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Empties err. */
void kx_err_clear(struct kx_err *err);

/* A short stable name for a code ("invalid", "not_found", …). */
const char *kx_err_name(int code);

#endif
