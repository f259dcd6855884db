#include "lib/err.h"

#include <stdio.h>

int kx_err_setv(struct kx_err *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int kx_err_set(struct kx_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kx_err_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void kx_err_clear(struct kx_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *kx_err_name(int code)
{
	switch (code) {
	case KX_OK: return "ok";
	case KX_ENOMEM: return "out_of_memory";
	case KX_EINVAL: return "invalid";
	case KX_ENOTFOUND: return "not_found";
	case KX_ECONFLICT: return "conflict";
	case KX_EAUTH: return "unauthorized";
	case KX_EFORBIDDEN: return "forbidden";
	case KX_EIO: return "io_error";
	case KX_ESTORE: return "store_error";
	case KX_EUNAVAIL: return "unavailable";
	case KX_ETOOBIG: return "too_large";
	case KX_EJSON: return "invalid_json";
	}
	return "error";
}
