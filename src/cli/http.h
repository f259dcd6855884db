/* http.h — the klaxon client's one-request-at-a-time HTTP client (libcurl's
 * easy interface).
 *
 * A request goes to base URL + path, carries the bearer token when there is
 * one and an optional JSON body, and gives up after 30 seconds. It never
 * follows redirects, speaks only http and https, and sends the path as given
 * (no dot-segment squashing), so a percent-encoded ID stays one segment.
 */
#ifndef KX_CLI_HTTP_H
#define KX_CLI_HTTP_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

#define KX_HTTP_TIMEOUT_S 30L
/* The largest response body accepted (an export of a long incident fits). */
#define KX_HTTP_MAX_BODY ((size_t)64 << 20)

/* Sets up and tears down libcurl; call once, first and last in main(). */
int kx_http_global_init(void);
void kx_http_global_cleanup(void);

/* What came back. body is caller-initialised (kx_buf_init) and released. */
struct kx_http_resp {
	long status;
	struct kx_buf body;
};

void kx_http_resp_init(struct kx_http_resp *r);
void kx_http_resp_release(struct kx_http_resp *r);

/* Sends METHOD base+path. body (len bytes, may be NULL) is sent as
 * application/json. token may be NULL. On return 0 resp->status holds the
 * HTTP status (any, including 4xx/5xx) and resp->body the answer. When no
 * answer arrives, returns KX_EIO with err "cannot reach klaxond at BASE:
 * <curl error>"; KX_ETOOBIG when the body passes KX_HTTP_MAX_BODY. */
int kx_http_request(const char *base, const char *token, const char *method,
		    const char *path, const char *body, size_t len,
		    struct kx_http_resp *resp, struct kx_err *err);
/* kx_http_request with the body sent as content_type (NULL:
 * application/json), e.g. "application/x-ndjson". */
int kx_http_request_as(const char *base, const char *token, const char *method,
		       const char *path, const char *content_type, const char *body,
		       size_t len, struct kx_http_resp *resp, struct kx_err *err);

/* Appends s percent-encoded: every byte outside [A-Za-z0-9._~-] becomes
 * %XX. Safe for a path segment and for a query key or value. */
int kx_http_escape(struct kx_buf *b, const char *s);

/* Appends "?key=value" (or "&key=value" when b already holds a '?'), both
 * percent-encoded. */
int kx_http_query_add(struct kx_buf *b, const char *key, const char *value);

#endif
