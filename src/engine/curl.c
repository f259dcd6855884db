#define KX_CURL_NO_MACROS
#include "engine/curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct kx_curl_api kx_curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[400];
static int loaded;

/* Stores dlsym's object pointer into a function pointer without the
 * object-to-function cast ISO C leaves undefined. */
#define BIND(name)                                                                             \
	do {                                                                                   \
		void *sym = dlsym(h, #name);                                                   \
		if (!sym) {                                                                    \
			snprintf(load_error, sizeof(load_error),                               \
				 "libcurl has no symbol '%s' (older than 7.68?)", #name);      \
			return;                                                                \
		}                                                                              \
		memcpy(&kx_curl.name, &sym, sizeof(sym));                                      \
	} while (0)

/* The handle is kept for the life of the process (as libpq's is): libcurl
 * and the TLS library under it keep global state, and unloading them while
 * another thread may still be in them buys nothing. */
static void load(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		/* same ABI, GnuTLS flavour (Debian package libcurl3-gnutls) */
		char first[300];
		snprintf(first, sizeof(first), "%s", dlerror());
		if (!(h = dlopen("libcurl-gnutls.so.4", RTLD_NOW | RTLD_LOCAL))) {
			snprintf(load_error, sizeof(load_error),
				 "notification channels need libcurl (Debian package libcurl4): %s",
				 first);
			return;
		}
	}
	BIND(curl_global_init);
	BIND(curl_global_cleanup);
	BIND(curl_slist_append);
	BIND(curl_slist_free_all);
	BIND(curl_easy_init);
	BIND(curl_easy_setopt);
	BIND(curl_easy_getinfo);
	BIND(curl_easy_strerror);
	BIND(curl_easy_cleanup);
	BIND(curl_multi_init);
	BIND(curl_multi_add_handle);
	BIND(curl_multi_remove_handle);
	BIND(curl_multi_perform);
	BIND(curl_multi_poll);
	BIND(curl_multi_wakeup);
	BIND(curl_multi_info_read);
	BIND(curl_multi_cleanup);
	loaded = 1;
}

int kx_curl_load(struct kx_err *err)
{
	pthread_once(&once, load);
	if (!loaded)
		return kx_err_set(err, KX_EIO, "%s",
				  load_error[0] ? load_error : "cannot load libcurl.so.4");
	return 0;
}
