/* dynload.h — a shared library loaded at run time, once, the first time a
 * feature needs it (libpq for PostgreSQL stores, libcurl for notification
 * channels), so that a daemon that never uses the feature never maps the
 * library and its dependency chain.
 *
 * The handle is kept for the life of the process: these libraries keep
 * global state, and unloading them while another thread may still be in
 * them buys nothing.
 */
#ifndef KX_DYNLOAD_H
#define KX_DYNLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

/* One function to resolve: slot is the address of the function pointer
 * that receives it (KX_DL_SYM fills both from the api struct's field). */
struct kx_dl_sym {
	const char *name;
	void *slot;
};
#define KX_DL_SYM(api, fn) {#fn, &(api).fn}

/* What to load. Initialise with KX_DL_LIB; the rest is kx_dl_load's. */
struct kx_dl_lib {
	const char *const *sonames; /* tried in order, NULL-terminated */
	const char *need;	    /* "PostgreSQL support needs libpq (Debian package libpq5)" */
	const char *name;	    /* "libpq", in "libpq has no symbol 'X'" */
	const char *hint;	    /* after that, e.g. "too old?" */
	const struct kx_dl_sym *syms;
	size_t nsyms;
	pthread_mutex_t lock;
	bool tried, loaded;
	char error[400];
};
#define KX_DL_LIB(sonames, need, name, hint, syms)                                           \
	{sonames, need, name, hint, syms, sizeof(syms) / sizeof((syms)[0]),                  \
	 PTHREAD_MUTEX_INITIALIZER, false, false, ""}

/* Loads lib the first time (thread-safe; later calls give the first
 * outcome): 0, or KX_EIO with "NEED: dlerror of the first soname" or "NAME
 * has no symbol 'X' (HINT)". */
int kx_dl_load(struct kx_dl_lib *lib, struct kx_err *err);

#endif
