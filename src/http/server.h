/* server.h — the HTTP front: libmicrohttpd, routing, authentication and the
 * response helpers the handlers share.
 *
 * Handlers are thin: decode the request, call one service function, encode
 * the answer. They never see SQL or MHD. Request bodies are buffered up to
 * the configured limit; anything larger is answered 413 before a handler
 * runs.
 */
#ifndef KX_HTTP_SERVER_H
#define KX_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>

#include "core/token.h"
#include "lib/buf.h"
#include "service/app.h"

#define KX_MAX_PARAMS 4

struct kx_http_req {
	const struct kx_app *app;
	void *conn; /* the server's; reach it only through the functions below */
	const char *method;
	const char *path;
	const char *params[KX_MAX_PARAMS]; /* {name} segments of the route, in order */
	const char *body;
	size_t body_len;
	const struct kx_token *who; /* NULL on public routes */
	kx_ms now;
};

/* A streamed answer (Server-Sent Events). Instead of a body, a handler may
 * set resp->stream: the server then calls read() whenever the client can
 * take more. read appends to out and returns 1 (data appended), 0 (nothing
 * now: the connection is parked, costing no thread, until
 * kx_server_wake_streams()) or -1 (end the stream). The server adds a
 * ": ping" comment after 15 s of silence, which is also how a client that
 * went away is noticed. free(arg) runs when the connection ends. */
struct kx_http_stream {
	int (*read)(void *arg, struct kx_buf *out);
	void (*free)(void *arg);
	void *arg;
};

/* A deferred answer, for work done on another thread (the ingestion
 * queue, service/ingest.h). Instead of answering, a handler may set
 * resp->defer: the server parks the connection — it holds no thread while
 * parked — and then calls start(arg, d). Whoever does the work fills
 * kx_http_deferred_resp(d) as a handler fills its resp and then calls
 * kx_http_deferred_done(d), exactly once, from any thread; the server
 * sends that answer. Nothing else of the request (headers, body) may be
 * read after the handler returned: decode it first. */
struct kx_http_deferred;
struct kx_http_defer {
	void (*start)(void *arg, struct kx_http_deferred *d);
	void *arg;
};

struct kx_http_resp {
	unsigned status;
	struct kx_http_stream stream; /* read == NULL: an ordinary answer */
	struct kx_http_defer defer;   /* start == NULL: answered now */
	const char *content_type;
	struct kx_buf body;
	char location[160];
	char allow[64];
};

struct kx_http_resp *kx_http_deferred_resp(struct kx_http_deferred *d);
void kx_http_deferred_done(struct kx_http_deferred *d);

/* A request header's value (name case-insensitive), or NULL. */
const char *kx_http_header(const struct kx_http_req *req, const char *name);
/* A query parameter's value, or NULL. */
const char *kx_http_query(const struct kx_http_req *req, const char *name);
/* Calls fn for each query parameter; stops at the first non-zero return. */
int kx_http_query_each(const struct kx_http_req *req,
		       int (*fn)(const char *key, const char *value, void *arg), void *arg);

/* Answers status with j as the body (takes the reference). */
void kx_http_json(struct kx_http_resp *resp, unsigned status, json_t *j);
/* Answers the error for a KX_E… code: {"error":{"code","message"}}. */
void kx_http_error(struct kx_http_resp *resp, int code, const char *message);
void kx_http_errorf(struct kx_http_resp *resp, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* HTTP status for a KX_E… code. */
unsigned kx_http_status_for(int code);

typedef void (*kx_handler)(struct kx_http_req *req, struct kx_http_resp *resp);

struct kx_route {
	const char *method;
	const char *pattern; /* "/v1/incidents/{id}/status" */
	enum kx_access need; /* KX_ACCESS_NONE: public */
	kx_handler fn;
	bool automation;     /* open to automation tokens (core/token.h) too */
};

extern const struct kx_route kx_routes[]; /* {NULL}-terminated */

struct kx_server;

struct kx_server_opts {
	const char *host; /* "127.0.0.1", "0.0.0.0", "::1" */
	unsigned port;
	int threads;
	size_t max_body;
};

int kx_server_start(const struct kx_app *app, const struct kx_server_opts *opts,
		    struct kx_server **out, struct kx_err *err);
unsigned kx_server_port(const struct kx_server *s);
/* Gives every parked stream a chance to send (thread-safe). */
void kx_server_wake_streams(struct kx_server *s);
void kx_server_stop(struct kx_server *s);

/* Handler families. */
void kx_h_healthz(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_readyz(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_severities(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_types(struct kx_http_req *req, struct kx_http_resp *resp);

void kx_h_incident_declare(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_edit(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_status(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_severity(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_roles(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_ack(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_impact(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_resolve(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_reopen(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_timeline_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_timeline_add(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_action_items_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_action_item_add(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_action_item_done(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_export(struct kx_http_req *req, struct kx_http_resp *resp);

void kx_h_token_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_token_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_token_revoke(struct kx_http_req *req, struct kx_http_resp *resp);

void kx_h_audit_append(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_audit_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_audit_duplicates(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_audit_recipients(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_audit_verify(struct kx_http_req *req, struct kx_http_resp *resp);

/* h_alerts.c: ingestion (public, integration keys) and the detection API */
void kx_h_ingest_alertmanager(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_ingest_generic(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_am_v2_post(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_am_v2_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_am_v2_status(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_ev2_enqueue(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_ev2_change(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_heartbeat_ping(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_alert_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_alert_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_alert_ack(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_alert_resolve(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_alert_noise(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_service_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_service_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_service_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_integration_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_integration_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_integration_revoke(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_heartbeat_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_heartbeat_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_heartbeat_delete(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_silence_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_silence_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_silence_expire(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_notification_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_notification_get(struct kx_http_req *req, struct kx_http_resp *resp);

void kx_h_gate_check(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_create(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_clear(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_resume(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_switch_stream(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_cap_put(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_cap_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_cap_delete(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_approval_list(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_approval_get(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_approval_approve(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_approval_deny(struct kx_http_req *req, struct kx_http_resp *resp);
void kx_h_incident_evidence(struct kx_http_req *req, struct kx_http_resp *resp);

#endif
