/* curl.h — libcurl, loaded when the outbox engine starts with notification
 * channels, or the checks engine with health checks (engine/checks.h).
 *
 * A daemon with neither configured never maps libcurl and its
 * dependency chain (TLS, Kerberos, LDAP, HTTP/2, …), which keeps its
 * start-up time and idle memory down (like libpq, store/postgres/pq.h).
 * engine/ includes this header instead of calling libcurl directly: each
 * curl_… name below resolves to a pointer filled by kx_curl_load(). Only
 * libcurl's headers are needed at build time.
 *
 * libcurl's GCC type-checking wrappers of curl_easy_setopt and
 * curl_easy_getinfo are macros around the real functions, so they are
 * turned off here: the calls go through the table.
 */
#ifndef KX_ENGINE_CURL_H
#define KX_ENGINE_CURL_H

#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK
#endif
#include <curl/curl.h> /* types and prototypes only */

#include "lib/err.h"

struct kx_curl_api {
	__typeof__(curl_global_init) *curl_global_init;
	__typeof__(curl_global_cleanup) *curl_global_cleanup;
	__typeof__(curl_slist_append) *curl_slist_append;
	__typeof__(curl_slist_free_all) *curl_slist_free_all;
	__typeof__(curl_easy_init) *curl_easy_init;
	__typeof__(curl_easy_setopt) *curl_easy_setopt;
	__typeof__(curl_easy_getinfo) *curl_easy_getinfo;
	__typeof__(curl_easy_strerror) *curl_easy_strerror;
	__typeof__(curl_easy_cleanup) *curl_easy_cleanup;
	__typeof__(curl_multi_init) *curl_multi_init;
	__typeof__(curl_multi_add_handle) *curl_multi_add_handle;
	__typeof__(curl_multi_remove_handle) *curl_multi_remove_handle;
	__typeof__(curl_multi_perform) *curl_multi_perform;
	__typeof__(curl_multi_poll) *curl_multi_poll;
	__typeof__(curl_multi_wakeup) *curl_multi_wakeup;
	__typeof__(curl_multi_info_read) *curl_multi_info_read;
	__typeof__(curl_multi_cleanup) *curl_multi_cleanup;
};

extern struct kx_curl_api kx_curl;

/* Loads libcurl once (thread-safe) and never unloads it; 0 or KX_EIO with
 * a one-line message naming the library and the package to install. */
int kx_curl_load(struct kx_err *err);

#ifndef KX_CURL_NO_MACROS
/* curl.h defines these two as function-like macros (argument count checks) */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init (kx_curl.curl_global_init)
#define curl_global_cleanup (kx_curl.curl_global_cleanup)
#define curl_slist_append (kx_curl.curl_slist_append)
#define curl_slist_free_all (kx_curl.curl_slist_free_all)
#define curl_easy_init (kx_curl.curl_easy_init)
#define curl_easy_setopt (kx_curl.curl_easy_setopt)
#define curl_easy_getinfo (kx_curl.curl_easy_getinfo)
#define curl_easy_strerror (kx_curl.curl_easy_strerror)
#define curl_easy_cleanup (kx_curl.curl_easy_cleanup)
#define curl_multi_init (kx_curl.curl_multi_init)
#define curl_multi_add_handle (kx_curl.curl_multi_add_handle)
#define curl_multi_remove_handle (kx_curl.curl_multi_remove_handle)
#define curl_multi_perform (kx_curl.curl_multi_perform)
#define curl_multi_poll (kx_curl.curl_multi_poll)
#define curl_multi_wakeup (kx_curl.curl_multi_wakeup)
#define curl_multi_info_read (kx_curl.curl_multi_info_read)
#define curl_multi_cleanup (kx_curl.curl_multi_cleanup)
#endif /* KX_CURL_NO_MACROS */

#endif
