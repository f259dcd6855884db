/* server.c — libmicrohttpd front end.
 *
 * Per connection-request state lives in struct reqstate: the body buffer
 * (capped at max_body; beyond it the rest is drained and the answer is
 * 413), and scratch space for the path parameters. Following what was
 * measured on MHD (docs/benchmarks.md), the response is queued only on the
 * final call, after the body has been consumed, so keep-alive survives.
 */
#include "http/server.h"
#include "http/encode.h"
#include "lib/log.h"
#include "service/tokens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATH 2048
/* Past this many bytes of an oversized body, stop draining and close. */
#define DRAIN_FACTOR 16

struct kx_server {
	struct MHD_Daemon *d;
	const struct kx_app *app;
	size_t max_body;
	unsigned port;
};

struct reqstate {
	struct kx_buf body;
	size_t seen;
	bool too_big;
};

const char *kx_http_header(const struct kx_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *kx_http_query(const struct kx_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct each_ctx {
	int (*fn)(const char *, const char *, void *);
	void *arg;
	int rc;
};

static enum MHD_Result each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct each_ctx *c = cls;
	(void)kind;
	c->rc = c->fn(key, value ? value : "", c->arg);
	return c->rc ? MHD_NO : MHD_YES;
}

int kx_http_query_each(const struct kx_http_req *req,
		       int (*fn)(const char *key, const char *value, void *arg), void *arg)
{
	struct each_ctx c = {fn, arg, 0};
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, each_cb, &c);
	return c.rc;
}

unsigned kx_http_status_for(int code)
{
	switch (code) {
	case KX_EINVAL: return 400;
	case KX_EJSON: return 400;
	case KX_EAUTH: return 401;
	case KX_EFORBIDDEN: return 403;
	case KX_ENOTFOUND: return 404;
	case KX_ECONFLICT: return 409;
	case KX_ETOOBIG: return 413;
	case KX_EUNAVAIL: return 503;
	default: return 500;
	}
}

void kx_http_json(struct kx_http_resp *resp, unsigned status, json_t *j)
{
	kx_buf_clear(&resp->body);
	if (!j || kx_enc_dump(j, &resp->body, false)) {
		if (j)
			json_decref(j);
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		return;
	}
	json_decref(j);
	resp->status = status;
	resp->content_type = "application/json";
}

/* The one place error bodies are built. */
static void error_body(struct kx_http_resp *resp, unsigned status, const char *code,
		       const char *message)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	resp->status = status;
	resp->content_type = "application/json";
	kx_buf_clear(&resp->body);
	if (!j || kx_enc_dump(j, &resp->body, false)) {
		kx_buf_clear(&resp->body);
		kx_buf_adds(&resp->body,
			    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}");
	}
	if (j)
		json_decref(j);
	if (status >= 500)
		kx_log(KX_LOG_ERROR, "%u: %s", status, message);
}

void kx_http_error(struct kx_http_resp *resp, int code, const char *message)
{
	error_body(resp, kx_http_status_for(code), kx_err_name(code),
		   message && *message ? message : kx_err_name(code));
}

void kx_http_errorf(struct kx_http_resp *resp, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kx_http_error(resp, code, msg);
}

/* Splits path into segments in scratch; returns the count or -1. */
static int split(const char *path, char *scratch, size_t cap, char **seg, int maxseg)
{
	size_t n = strlen(path);
	int count = 0;
	char *p;

	if (n == 0 || path[0] != '/' || n >= cap)
		return -1;
	memcpy(scratch, path + 1, n);
	p = scratch;
	if (!*p)
		return 0;
	for (;;) {
		char *slash = strchr(p, '/');
		if (count == maxseg)
			return -1;
		seg[count++] = p;
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return count;
}

/* Does pattern match the segments? Fills params. */
static bool match(const char *pattern, char **seg, int nseg, const char **params)
{
	char buf[128], *pseg[16];
	int np = split(pattern, buf, sizeof(buf), pseg, 16), k = 0;
	if (np != nseg)
		return false;
	for (int i = 0; i < np; i++) {
		if (pseg[i][0] == '{') {
			if (!seg[i][0] || k >= KX_MAX_PARAMS)
				return false;
			params[k++] = seg[i];
		} else if (strcmp(pseg[i], seg[i]) != 0) {
			return false;
		}
	}
	return true;
}

static int authenticate(struct kx_http_req *req, struct kx_token *tok, struct kx_err *err)
{
	const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || !*h)
		return kx_err_set(err, KX_EAUTH,
				  "missing token: send 'Authorization: Bearer TOKEN'");
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return kx_err_set(err, KX_EAUTH,
				  "unsupported authorization scheme: send 'Authorization: Bearer TOKEN'");
	h += 7;
	while (*h == ' ')
		h++;
	if (!*h)
		return kx_err_set(err, KX_EAUTH, "empty bearer token");
	return kx_svc_authenticate(req->app, h, tok, err);
}

static void dispatch(struct kx_http_req *req, struct kx_http_resp *resp)
{
	char scratch[MAX_PATH], *seg[16], allow[64] = "";
	const struct kx_route *found = NULL;
	struct kx_token tok;
	struct kx_err err = {0};
	int nseg = split(req->path, scratch, sizeof(scratch), seg, 16);
	int rc;

	for (const struct kx_route *r = kx_routes; nseg >= 0 && r->method; r++) {
		const char *params[KX_MAX_PARAMS] = {0};
		if (!match(r->pattern, seg, nseg, params))
			continue;
		if (strcmp(r->method, req->method) == 0) {
			found = r;
			memcpy(req->params, params, sizeof(params));
			break;
		}
		if (!strstr(allow, r->method)) {
			size_t n = strlen(allow);
			snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", r->method);
		}
	}
	if (!found) {
		if (allow[0]) {
			char msg[320];
			snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
			snprintf(msg, sizeof(msg), "method %s is not allowed on %.200s (use %s)",
				 req->method, req->path, allow);
			error_body(resp, 405, "method_not_allowed", msg);
			return;
		}
		kx_http_errorf(resp, KX_ENOTFOUND, "no such endpoint: %s %.200s", req->method,
			       req->path);
		return;
	}
	if (found->need == KX_ACCESS_NONE) {
		found->fn(req, resp);
		return;
	}
	if ((rc = authenticate(req, &tok, &err))) {
		kx_http_error(resp, rc, err.msg);
		return;
	}
	if (tok.role < found->need) {
		kx_http_errorf(resp, KX_EFORBIDDEN, "this needs the %s role; the token is %s",
			       kx_access_name(found->need), kx_access_name(tok.role));
	} else {
		req->who = &tok;
		found->fn(req, resp);
		req->who = NULL;
	}
	kx_token_release(&tok);
}

static enum MHD_Result respond(struct MHD_Connection *c, struct kx_http_resp *r)
{
	struct MHD_Response *mr;
	size_t len;
	char *data = kx_buf_take(&r->body, &len);
	enum MHD_Result ret;

	if (!data)
		return MHD_NO;
	mr = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!mr) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : "application/json");
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (r->location[0])
		MHD_add_response_header(mr, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->allow[0])
		MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->status == 401)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"klaxon\"");
	ret = MHD_queue_response(c, r->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct kx_server *s = cls;
	struct reqstate *rs = *con_cls;
	struct kx_http_req req;
	struct kx_http_resp resp;
	enum MHD_Result ret;

	(void)version;
	if (!rs) {
		if (!(rs = calloc(1, sizeof(*rs))))
			return MHD_NO;
		kx_buf_init(&rs->body, s->max_body);
		*con_cls = rs;
		return MHD_YES;
	}
	if (*upload_size) {
		rs->seen += *upload_size;
		if (!rs->too_big && kx_buf_add(&rs->body, upload_data, *upload_size))
			rs->too_big = true; /* kx_buf freed itself */
		*upload_size = 0;
		if (rs->seen > s->max_body * DRAIN_FACTOR)
			return MHD_NO; /* a flood, not a request: drop the connection */
		return MHD_YES;
	}

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	kx_buf_init(&resp.body, 0);
	req.app = s->app;
	req.conn = conn;
	req.method = method;
	req.path = url;
	req.body = kx_buf_str(&rs->body);
	req.body_len = rs->body.len;
	req.now = kx_now_ms();
	resp.status = 200;
	if (rs->too_big)
		kx_http_errorf(&resp, KX_ETOOBIG, "request body is larger than %zu bytes",
			       s->max_body);
	else
		dispatch(&req, &resp);
	ret = respond(conn, &resp);
	kx_buf_release(&resp.body);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct reqstate *rs = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (!rs)
		return;
	kx_buf_release(&rs->body);
	free(rs);
	*con_cls = NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %HH in paths and query values, except %00: a NUL would cut the
 * string short and make "/v1/incidents/X%00junk" mean "/v1/incidents/X".
 * It stays the three characters "%00", which no route or ID accepts. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	(void)cls;
	(void)c;
	for (const char *r = s; *r; r++) {
		int hi, lo;
		if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	kx_log(KX_LOG_WARN, "http: %s", msg);
}

int kx_server_start(const struct kx_app *app, const struct kx_server_opts *o,
		    struct kx_server **out, struct kx_err *err)
{
	struct kx_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct sockaddr *sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;

	if (!s)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	s->app = app;
	s->max_body = o->max_body;
	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (strchr(o->host, ':')) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)o->port);
		if (inet_pton(AF_INET6, o->host, &a6.sin6_addr) != 1)
			goto badhost;
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)o->port);
		if (inet_pton(AF_INET, o->host, &a4.sin_addr) != 1)
			goto badhost;
		sa = (struct sockaddr *)&a4;
	}
	errno = 0;
	s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE,
				(unsigned)(o->threads > 1 ? o->threads : 0),
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
				MHD_OPTION_END);
	if (!s->d) {
		int e = errno;
		free(s);
		return kx_err_set(err, KX_EIO, "cannot listen on %s:%u: %s", o->host, o->port,
				  e ? strerror(e) : "address in use or not available");
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : o->port;
	*out = s;
	return 0;
badhost:
	free(s);
	return kx_err_set(err, KX_EINVAL, "cannot listen on '%s': not an IP address", o->host);
}

unsigned kx_server_port(const struct kx_server *s)
{
	return s->port;
}

void kx_server_stop(struct kx_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
