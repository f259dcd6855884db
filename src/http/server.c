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
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATH 2048
/* Past this many bytes of an oversized body, stop draining and close. */
#define DRAIN_FACTOR 16

#define PING_MS 15000 /* a stream silent this long gets a ": ping" */
/* How long stop waits for parked requests (a store statement gives up
 * after 15 s). */
#define STOP_WAIT_MS 30000

/* A streamed answer in flight. Invariant: suspended iff the connection was
 * parked by stream_read and not yet resumed; both under lock. */
struct stream {
	struct kx_server *srv;
	struct MHD_Connection *conn;
	struct kx_http_stream h;
	pthread_mutex_t lock;
	struct kx_buf pending;
	size_t off;
	bool suspended;
	kx_ms last_write;
	struct stream *next;
};

struct kx_server {
	struct MHD_Daemon *d;
	const struct kx_app *app;
	size_t max_body;
	unsigned port;

	pthread_mutex_t streams_lock;
	struct stream *streams;
	size_t nstreams;
	_Atomic bool stopping; /* read by stream_read without the lock */
	/* requests in a handler or parked (deferred, not yet done); counted
	 * before `stopping` is checked, so that stop sees every one */
	_Atomic int busy;
	pthread_mutex_t ping_lock;
	pthread_cond_t ping_cond;
	pthread_t ping_thread;
	bool ping_started;
};

/* A parked request (kx_http_resp.defer): its answer, filled by the worker
 * before it resumes the connection. */
struct kx_http_deferred {
	struct kx_server *srv;
	struct MHD_Connection *conn;
	struct kx_http_resp resp;
};

struct reqstate {
	struct kx_buf body;
	size_t seen;
	bool too_big;
	bool deferred; /* def holds the answer to send once resumed */
	struct kx_http_deferred def;
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

/* Does pattern match the segments? Fills params. Walks the pattern in
 * place (no copy: this runs for every route on every request). */
static bool match(const char *pattern, char **seg, int nseg, const char **params)
{
	const char *p = pattern;
	int i = 0, k = 0;

	if (*p != '/')
		return false;
	p++;
	if (!*p)
		return nseg == 0;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (i >= nseg)
			return false;
		if (p[0] == '{') {
			if (!seg[i][0] || k >= KX_MAX_PARAMS)
				return false;
			params[k++] = seg[i];
		} else if (strncmp(p, seg[i], n) != 0 || seg[i][n] != '\0') {
			return false;
		}
		i++;
		if (!end)
			break;
		p = end + 1;
	}
	return i == nseg;
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
	if (tok.automation && !found->automation) {
		kx_http_errorf(resp, KX_EFORBIDDEN,
			       "an automation token may only check the gate, append audit events, "
			       "read switches and caps, and poll its approval requests");
	} else if (tok.role < found->need) {
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

/* ---- streams (Server-Sent Events) ---- */

static void stream_unlink(struct stream *st)
{
	struct kx_server *s = st->srv;
	pthread_mutex_lock(&s->streams_lock);
	for (struct stream **p = &s->streams; *p; p = &(*p)->next) {
		if (*p == st) {
			*p = st->next;
			s->nstreams--;
			break;
		}
	}
	pthread_mutex_unlock(&s->streams_lock);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	kx_ms now = kx_now_ms();
	size_t n;
	(void)pos;

	pthread_mutex_lock(&st->lock);
	if (st->off >= st->pending.len) {
		int r;
		kx_buf_clear(&st->pending);
		st->off = 0;
		r = st->srv->stopping ? -1 : st->h.read(st->h.arg, &st->pending);
		if (r < 0 || (r > 0 && !st->pending.data)) {
			pthread_mutex_unlock(&st->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (st->pending.len == 0 && now - st->last_write >= PING_MS)
			kx_buf_adds(&st->pending, ": ping\n\n");
		if (st->pending.len == 0) {
			/* Nothing to say: park the connection until a wake. */
			st->suspended = true;
			MHD_suspend_connection(st->conn);
			pthread_mutex_unlock(&st->lock);
			return 0;
		}
	}
	n = st->pending.len - st->off;
	if (n > max)
		n = max;
	memcpy(buf, st->pending.data + st->off, n);
	st->off += n;
	st->last_write = now;
	pthread_mutex_unlock(&st->lock);
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	stream_unlink(st);
	if (st->h.free)
		st->h.free(st->h.arg);
	kx_buf_release(&st->pending);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

void kx_server_wake_streams(struct kx_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->streams_lock);
	for (struct stream *st = s->streams; st; st = st->next) {
		pthread_mutex_lock(&st->lock);
		if (st->suspended) {
			st->suspended = false;
			MHD_resume_connection(st->conn);
		}
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_unlock(&s->streams_lock);
}

static void *ping_main(void *arg)
{
	struct kx_server *s = arg;
	pthread_mutex_lock(&s->ping_lock);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		pthread_cond_timedwait(&s->ping_cond, &s->ping_lock, &ts);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->ping_lock);
		kx_server_wake_streams(s); /* streams due a ping send one */
		pthread_mutex_lock(&s->ping_lock);
	}
	pthread_mutex_unlock(&s->ping_lock);
	return NULL;
}

static enum MHD_Result respond_stream(struct kx_server *s, struct MHD_Connection *c,
				      struct kx_http_resp *r)
{
	struct stream *st = calloc(1, sizeof(*st));
	struct MHD_Response *mr;
	enum MHD_Result ret;

	if (!st) {
		if (r->stream.free)
			r->stream.free(r->stream.arg);
		return MHD_NO;
	}
	st->srv = s;
	st->conn = c;
	st->h = r->stream;
	pthread_mutex_init(&st->lock, NULL);
	kx_buf_init(&st->pending, 4 << 20);
	st->last_write = kx_now_ms();
	mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
	if (!mr) {
		stream_free(st);
		return MHD_NO;
	}
	pthread_mutex_lock(&s->streams_lock);
	st->next = s->streams;
	s->streams = st;
	s->nstreams++;
	pthread_mutex_unlock(&s->streams_lock);
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(mr, "X-Accel-Buffering", "no");
	ret = MHD_queue_response(c, 200, mr);
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
	if (rs->deferred) {
		/* resumed: the worker's answer is ready */
		rs->deferred = false;
		ret = respond(conn, &rs->def.resp);
		kx_buf_release(&rs->def.resp.body);
		return ret;
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
	atomic_fetch_add(&s->busy, 1);
	req.app = s->app;
	req.conn = conn;
	req.method = method;
	req.path = url;
	req.body = kx_buf_str(&rs->body);
	req.body_len = rs->body.len;
	req.now = kx_now_ms();
	resp.status = 200;
	if (s->stopping) /* nothing new once stopping: the answer is retried elsewhere */
		kx_http_error(&resp, KX_EUNAVAIL, "klaxond is shutting down");
	else if (rs->too_big)
		kx_http_errorf(&resp, KX_ETOOBIG, "request body is larger than %zu bytes",
			       s->max_body);
	else
		dispatch(&req, &resp);
	if (resp.stream.read && resp.status == 200) {
		kx_buf_release(&resp.body);
		atomic_fetch_sub(&s->busy, 1);
		return respond_stream(s, conn, &resp);
	}
	if (resp.defer.start) {
		struct kx_http_defer df = resp.defer;
		rs->def.srv = s;
		rs->def.conn = conn;
		rs->def.resp = resp;
		rs->def.resp.defer.start = NULL;
		rs->deferred = true;
		/* still busy until kx_http_deferred_done; parked before the work
		 * starts, so that a quick worker's resume always finds it parked */
		MHD_suspend_connection(conn);
		df.start(df.arg, &rs->def);
		return MHD_YES;
	}
	atomic_fetch_sub(&s->busy, 1);
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
	if (rs->deferred)
		kx_buf_release(&rs->def.resp.body);
	kx_buf_release(&rs->body);
	free(rs);
	*con_cls = NULL;
}

struct kx_http_resp *kx_http_deferred_resp(struct kx_http_deferred *d)
{
	return &d->resp;
}

void kx_http_deferred_done(struct kx_http_deferred *d)
{
	struct kx_server *s = d->srv;
	/* d belongs to the connection, which may be gone once resumed */
	MHD_resume_connection(d->conn);
	atomic_fetch_sub(&s->busy, 1);
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
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *info;

	if (!s)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	s->app = app;
	s->max_body = o->max_body;
	pthread_mutex_init(&s->streams_lock, NULL);
	pthread_mutex_init(&s->ping_lock, NULL);
	pthread_cond_init(&s->ping_cond, NULL);
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
	s->ping_started = pthread_create(&s->ping_thread, NULL, ping_main, s) == 0;
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
	pthread_mutex_lock(&s->ping_lock);
	s->stopping = true;
	pthread_cond_signal(&s->ping_cond);
	pthread_mutex_unlock(&s->ping_lock);
	if (s->ping_started)
		pthread_join(s->ping_thread, NULL);
	/* MHD cannot stop with parked connections: let every stream end first
	 * (stream_read answers end-of-stream once stopping is set). */
	for (int i = 0; i < 200; i++) {
		size_t n;
		kx_server_wake_streams(s);
		pthread_mutex_lock(&s->streams_lock);
		n = s->nstreams;
		pthread_mutex_unlock(&s->streams_lock);
		if (!n)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	/* and let every parked request get its answer (its worker is still
	 * running: klaxond stops the ingestion queue after the server); new
	 * ones are refused since `stopping` */
	for (int i = 0; i < STOP_WAIT_MS / 10 && atomic_load(&s->busy) > 0; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	if (atomic_load(&s->busy) > 0) {
		/* MHD aborts when stopped with parked connections, and their
		 * workers would answer into freed memory: leave it to exit */
		kx_log(KX_LOG_ERROR, "http: %d requests still unanswered after %d s; not waiting",
		       atomic_load(&s->busy), STOP_WAIT_MS / 1000);
		return;
	}
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->streams_lock);
	pthread_mutex_destroy(&s->ping_lock);
	pthread_cond_destroy(&s->ping_cond);
	free(s);
}
