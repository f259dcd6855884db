/* h_alerts.c — detection endpoints: ingestion (Alertmanager webhook and
 * API v2, PagerDuty Events v2, generic JSON, heartbeat pings: public
 * routes that authenticate with an integration or heartbeat key) and the
 * API for alerts, services, integrations, heartbeats, silences and the
 * delivery log. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/notify.h"
#include "http/decode.h"
#include "http/decode_alerts.h"
#include "http/encode.h"
#include "core/route.h"
#include "lib/secret.h"
#include "http/server.h"
#include "service/alerts.h"
#include "service/ingest.h"
#include "service/outbox.h"

/* ---- encoders -------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Stored details are JSON text written by the decoders; anything else is
 * shown as a string rather than dropped. */
static json_t *details_json(const char *s)
{
	json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	return j ? j : (s ? json_string(s) : json_object());
}

static json_t *enc_alert(const struct kx_alert *a)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	json_object_set_new(j, "id", json_integer(a->id));
	json_object_set_new(j, "service", json_string(a->service));
	json_object_set_new(j, "dedup_key", json_string(a->dedup_key));
	json_object_set_new(j, "source", json_string(kx_alert_source_name(a->source)));
	json_object_set_new(j, "status", json_string(kx_alert_status_name(a->status)));
	json_object_set_new(j, "level", json_string(kx_alert_level_name(a->level)));
	json_object_set_new(j, "summary", str_or_null(a->summary));
	json_object_set_new(j, "source_host", str_or_null(a->source_host));
	json_object_set_new(j, "component", str_or_null(a->component));
	json_object_set_new(j, "group", str_or_null(a->group));
	json_object_set_new(j, "class", str_or_null(a->class));
	json_object_set_new(j, "labels", kx_enc_labels(&a->labels));
	json_object_set_new(j, "details", details_json(a->details));
	json_object_set_new(j, "severity", str_or_null(a->severity));
	json_object_set_new(j, "route", str_or_null(a->route));
	json_object_set_new(j, "incident", str_or_null(a->incident));
	json_object_set_new(j, "silenced_by", str_or_null(a->silenced_by));
	json_object_set_new(j, "noise", json_boolean(a->noise));
	json_object_set_new(j, "count", json_integer(a->count));
	json_object_set_new(j, "starts_at", kx_enc_time(a->starts_at));
	json_object_set_new(j, "first_seen", kx_enc_time(a->first_seen));
	json_object_set_new(j, "last_seen", kx_enc_time(a->last_seen));
	json_object_set_new(j, "ends_at", kx_enc_time(a->ends_at));
	json_object_set_new(j, "acked_at", kx_enc_time(a->acked_at));
	json_object_set_new(j, "acked_by", str_or_null(a->acked_by));
	json_object_set_new(j, "resolved_at", kx_enc_time(a->resolved_at));
	json_object_set_new(j, "resolved_by", str_or_null(a->resolved_by));
	return j;
}

static json_t *enc_service(const struct kx_service *s)
{
	return json_pack("{s:s, s:o, s:o, s:b, s:o}", "name", s->name, "description",
			 str_or_null(s->description), "labels", kx_enc_labels(&s->labels),
			 "from_config", s->from_config, "created_at", kx_enc_time(s->created_at));
}

static json_t *enc_integration(const struct kx_integration *i)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", i->id, "service", i->service,
			 "source", kx_alert_source_name(i->source), "name", str_or_null(i->name),
			 "created_by", str_or_null(i->created_by), "created_at",
			 kx_enc_time(i->created_at), "revoked_at", kx_enc_time(i->revoked_at));
}

static json_t *enc_heartbeat(const struct kx_heartbeat *h)
{
	char iv[32], gr[32];
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "name", h->name,
			 "service", h->service, "interval", kx_duration_format(h->interval, iv),
			 "grace", kx_duration_format(h->grace, gr), "severity",
			 kx_alert_level_name(h->level), "state", kx_heartbeat_state_name(h->state),
			 "last_ping", kx_enc_time(h->last_ping), "due_at", kx_enc_time(h->due_at),
			 "created_by", str_or_null(h->created_by), "created_at",
			 kx_enc_time(h->created_at));
}

static json_t *enc_silence(const struct kx_silence *s, kx_ms now)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "id", s->id, "kind",
			 kx_silence_kind_name(s->kind), "matchers", s->matchers, "starts_at",
			 kx_enc_time(s->starts_at), "ends_at", kx_enc_time(s->ends_at), "comment",
			 str_or_null(s->comment), "created_by", str_or_null(s->created_by),
			 "created_at", kx_enc_time(s->created_at), "expired_at",
			 kx_enc_time(s->expired_at), "active", kx_silence_active(s, now));
}

static json_t *enc_change(const struct kx_change_event *c)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)c->id, "service",
			 c->service, "summary", c->summary, "source", str_or_null(c->source_host),
			 "details", details_json(c->details), "at", kx_enc_time(c->at),
			 "received_at", kx_enc_time(c->received_at));
}

static json_t *enc_notification(const struct kx_notification *n)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:i, s:I, s:o, s:o, s:o, s:o, s:o}", "id", n->id,
			 "channel", n->channel, "event", n->event, "subject",
			 str_or_null(n->subject), "status", kx_notification_status_name(n->status),
			 "attempts", n->attempts, "last_code", (json_int_t)n->last_code,
			 "last_error", str_or_null(n->last_error), "created_at",
			 kx_enc_time(n->created_at), "last_attempt_at",
			 kx_enc_time(n->last_attempt_at), "next_attempt_at",
			 kx_enc_time(n->next_attempt_at), "delivered_at",
			 kx_enc_time(n->delivered_at));
}

/* ---- the key a source presents ------------------------------------------------ */

/* "Authorization: Bearer KEY" (Alertmanager's http_config.authorization),
 * "Authorization: Basic base64(user:KEY)" (basic_auth: the password), or
 * ?key=KEY. Copied into out (empty when none). */
static void presented_key(const struct kx_http_req *req, char *out, size_t outlen)
{
	const char *h = kx_http_header(req, "Authorization");
	const char *q = kx_http_query(req, "key");

	out[0] = '\0';
	if (h && !strncasecmp(h, "Bearer ", 7)) {
		snprintf(out, outlen, "%s", h + 7);
	} else if (h && !strncasecmp(h, "Basic ", 6)) {
		unsigned char raw[512];
		size_t n = 0;
		const char *colon;
		if (!sodium_base642bin(raw, sizeof(raw) - 1, h + 6, strlen(h + 6), " ", &n, NULL,
				       sodium_base64_VARIANT_ORIGINAL)) {
			raw[n] = '\0';
			const char *pw;
			size_t len;
			colon = strchr((const char *)raw, ':');
			pw = colon ? colon + 1 : (const char *)raw;
			len = strlen(pw);
			if (len < outlen) {
				memcpy(out, pw, len);
				out[len] = '\0';
			}
		}
		sodium_memzero(raw, sizeof(raw));
	} else if (q) {
		snprintf(out, outlen, "%s", q);
	}
	/* trailing whitespace from a pasted key */
	for (size_t n = strlen(out); n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\n'); n--)
		out[n - 1] = '\0';
}

static int auth_source(struct kx_http_req *req, enum kx_alert_source want,
		       struct kx_integration *out, struct kx_err *err)
{
	char key[300];
	int rc;
	presented_key(req, key, sizeof(key));
	rc = kx_svc_integration_auth(req->app, key, want, out, err);
	sodium_memzero(key, sizeof(key));
	return rc;
}

static json_t *enc_outcomes(const struct kx_ingest_outcome *o, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(
			a, json_pack("{s:I, s:s, s:b, s:b, s:o, s:b}", "alert", (json_int_t)o[i].alert,
				     "dedup_key", o[i].dedup_key, "created", o[i].created, "silenced",
				     o[i].silenced, "incident",
				     o[i].incident[0] ? json_string(o[i].incident) : json_null(),
				     "declared", o[i].declared));
	return a;
}

/* ---- an ingestion request in flight ---------------------------------------- */

/* What one ingestion request hands to the ingestion queue, and what its
 * answer needs when the queue is done with it (on the queue's thread). */
struct ingest_call {
	const struct kx_app *app;
	struct kx_ingest_job job;
	struct kx_alert_events evs;
	struct kx_integration in;
	char actor[64];
	void (*answer)(struct ingest_call *c, struct kx_http_resp *resp);
	struct kx_http_deferred *d;
};

static struct ingest_call *call_new(void (*answer)(struct ingest_call *, struct kx_http_resp *))
{
	struct ingest_call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	kx_alert_events_init(&c->evs);
	kx_integration_init(&c->in);
	c->answer = answer;
	return c;
}

static void call_free(struct ingest_call *c)
{
	if (!c)
		return;
	kx_alert_events_release(&c->evs);
	kx_integration_release(&c->in);
	free(c->job.outcomes);
	free(c);
}

static void call_done(struct kx_ingest_job *j)
{
	struct ingest_call *c = j->arg;
	struct kx_http_deferred *d = c->d;
	c->answer(c, kx_http_deferred_resp(d));
	call_free(c);
	kx_http_deferred_done(d);
}

static void call_start(void *arg, struct kx_http_deferred *d)
{
	struct ingest_call *c = arg;
	c->d = d;
	if (kx_ingest_submit(c->app->ingest, &c->job)) {
		c->job.rc = kx_err_set(&c->job.err, KX_EUNAVAIL, "the daemon is shutting down");
		call_done(&c->job);
	}
}

/* Ingests c's events (c->evs, authenticated as c->in) and answers: parked
 * on the ingestion queue when the daemon runs one, else right here. Takes
 * c. */
static void call_run(struct kx_http_req *req, struct kx_http_resp *resp, struct ingest_call *c)
{
	struct kx_ingest_job *j = &c->job;

	snprintf(c->actor, sizeof(c->actor), "integration:%s", c->in.id);
	c->app = req->app;
	j->arg = c;
	j->service = c->in.service;
	j->actor = c->actor;
	j->events = c->evs.v;
	j->n = c->evs.n;
	j->now = req->now;
	j->done = call_done;
	if (j->n && !(j->outcomes = calloc(j->n, sizeof(*j->outcomes)))) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		call_free(c);
		return;
	}
	if (j->n && req->app->ingest) {
		resp->defer = (struct kx_http_defer){call_start, c};
		return;
	}
	j->rc = j->n ? kx_svc_alert_ingest(req->app, j->service, j->actor, j->events, j->n, j->now,
					   j->outcomes, &j->err)
		     : 0;
	c->answer(c, resp);
	call_free(c);
}

/* Decode, authenticate, ingest: the Alertmanager and generic endpoints. */
typedef int (*batch_decoder)(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
			     struct kx_err *err);

static void ingest_batch(struct kx_http_req *req, struct kx_http_resp *resp,
			 enum kx_alert_source source, batch_decoder decode,
			 void (*answer)(struct ingest_call *, struct kx_http_resp *))
{
	struct ingest_call *c = call_new(answer);
	struct kx_err err = {0};

	if (!c) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		return;
	}
	if (auth_source(req, source, &c->in, &err) ||
	    decode(req->body, req->body_len, req->now, &c->evs, &err)) {
		c->job.rc = err.code ? err.code : KX_EINVAL;
		c->job.err = err;
		answer(c, resp);
		call_free(c);
		return;
	}
	call_run(req, resp, c);
}

static void answer_results(struct ingest_call *c, struct kx_http_resp *resp, unsigned status)
{
	if (c->job.rc) {
		kx_http_error(resp, c->job.rc, c->job.err.msg);
		return;
	}
	kx_http_json(resp, status,
		     json_pack("{s:s, s:i, s:o}", "status", "success", "alerts", (int)c->job.n,
			       "results", enc_outcomes(c->job.outcomes, c->job.n)));
}

static void answer_alertmanager(struct ingest_call *c, struct kx_http_resp *resp)
{
	answer_results(c, resp, 200);
}

static void answer_generic(struct ingest_call *c, struct kx_http_resp *resp)
{
	answer_results(c, resp, 202);
}

void kx_h_ingest_alertmanager(struct kx_http_req *req, struct kx_http_resp *resp)
{
	ingest_batch(req, resp, KX_SOURCE_ALERTMANAGER, kx_decode_am_webhook, answer_alertmanager);
}

void kx_h_ingest_generic(struct kx_http_req *req, struct kx_http_resp *resp)
{
	ingest_batch(req, resp, KX_SOURCE_GENERIC, kx_decode_generic_alerts, answer_generic);
}

/* ---- Alertmanager API v2 --------------------------------------------------- */

/* Senders of the API v2 (Prometheus, amtool) read only the status and
 * log the body: Klaxon's usual error object serves. */
static void am_error(struct kx_http_resp *resp, int code, const char *msg)
{
	kx_http_error(resp, code, msg);
}

/* Alertmanager's resolve_timeout: a posted alert without endsAt (amtool's
 * way) is taken to end this long after it was last posted, unless posted
 * again, as Alertmanager does. */
#define AM_RESOLVE_TIMEOUT ((kx_ms)5 * 60 * 1000)

static int decode_am_v2(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
			struct kx_err *err)
{
	int rc = kx_decode_am_v2(body, len, now, out, err);
	for (size_t i = 0; !rc && i < out->n; i++)
		if (out->v[i].action == KX_ALERT_TRIGGER && out->v[i].ends_at == KX_TIME_UNSET)
			out->v[i].ends_at = now + AM_RESOLVE_TIMEOUT;
	return rc;
}

static void answer_am_v2(struct ingest_call *c, struct kx_http_resp *resp)
{
	if (c->job.rc) {
		am_error(resp, c->job.rc, c->job.err.msg);
		return;
	}
	/* Alertmanager answers 200 with an empty body */
	kx_buf_clear(&resp->body);
	resp->status = 200;
	resp->content_type = "application/json";
}

void kx_h_am_v2_post(struct kx_http_req *req, struct kx_http_resp *resp)
{
	ingest_batch(req, resp, KX_SOURCE_ALERTMANAGER, decode_am_v2, answer_am_v2);
}

static json_t *enc_am_alert(const struct kx_alert *a, kx_ms now)
{
	json_t *details = details_json(a->details);
	json_t *ann = json_object_get(details, "annotations");
	json_t *gen = json_object_get(details, "generatorURL");
	char fp[KX_FINGERPRINT_LEN + 1];
	bool silenced = a->silenced_by != NULL;
	json_t *j;

	kx_alert_fingerprint(&a->labels, fp);
	j = json_pack("{s:O, s:o, s:s, s:o, s:o, s:[{s:s}], s:{s:s, s:o, s:o}, s:o, s:o}",
		      "annotations", json_is_object(ann) ? ann : json_object(), "endsAt",
		      kx_enc_time(a->ends_at != KX_TIME_UNSET ? a->ends_at : now + AM_RESOLVE_TIMEOUT),
		      "fingerprint", fp, "startsAt", kx_enc_time(a->starts_at), "updatedAt",
		      kx_enc_time(a->last_seen), "receivers", "name", "klaxon", "status", "state",
		      silenced ? "suppressed" : "active", "inhibitedBy", json_array(), "silencedBy",
		      silenced ? json_pack("[s]", a->silenced_by) : json_array(), "generatorURL",
		      json_is_string(gen) ? json_incref(gen) : json_string(""), "labels",
		      kx_enc_labels(&a->labels));
	json_decref(details);
	return j;
}

/* GET /api/v2/alerts?filter=alertname="X"&filter=…: amtool's query. */
static int collect_filter(const char *key, const char *value, void *arg)
{
	struct kx_buf *b = arg;
	if (strcmp(key, "filter") || !value || !*value)
		return 0;
	if ((b->len && kx_buf_addc(b, ',')) || kx_buf_adds(b, value))
		return KX_ENOMEM;
	return 0;
}

void kx_h_am_v2_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_matchers *m = NULL;
	struct kx_buf fb;
	struct kx_integration in;
	struct kx_alert_filter f = {0};
	struct kx_alerts list = {0};
	struct kx_token who;
	struct kx_err err = {0};
	json_t *a;

	if (auth_source(req, KX_SOURCE_ALERTMANAGER, &in, &err)) {
		am_error(resp, err.code, err.msg);
		return;
	}
	kx_buf_init(&fb, 16384);
	if (kx_http_query_each(req, collect_filter, &fb) ||
	    kx_matchers_parse(fb.len ? kx_buf_str(&fb) : "", &m, &err)) {
		if (!err.msg[0])
			kx_err_set(&err, KX_ETOOBIG, "the filters are too long");
		am_error(resp, err.code, err.msg);
		kx_buf_release(&fb);
		kx_integration_release(&in);
		return;
	}
	kx_buf_release(&fb);
	kx_token_init(&who);
	who.name = in.id;
	f.service = in.service;
	f.status = KX_ALERT_FIRING;
	f.since = KX_TIME_UNSET;
	f.limit = 1000;
	if (kx_svc_alert_list(req->app, &who, &f, &list, &err)) {
		am_error(resp, err.code, err.msg);
		kx_matchers_free(m);
		kx_integration_release(&in);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++) {
		struct kx_labels fields;
		kx_labels_init(&fields);
		if (!kx_alert_fields(&list.v[i], &fields, &err) && kx_matchers_match(m, &fields))
			json_array_append_new(a, enc_am_alert(&list.v[i], req->now));
		kx_labels_release(&fields);
	}
	kx_http_json(resp, 200, a);
	kx_matchers_free(m);
	kx_alerts_release(&list);
	kx_integration_release(&in);
}

void kx_h_am_v2_status(struct kx_http_req *req, struct kx_http_resp *resp)
{
	kx_ms started_at = req->app->started_at ? req->app->started_at : req->now;
	kx_http_json(resp, 200,
		     json_pack("{s:{s:s, s:s, s:[]}, s:{s:s}, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}}",
			       "cluster", "name", "klaxon", "status", "disabled", "peers", "config",
			       "original", "", "uptime", kx_enc_time(started_at), "versionInfo",
			       "branch", "main", "buildDate", "", "buildUser", "klaxon", "goVersion",
			       "none", "revision", "", "version", "0.25.0-klaxon"));
}

/* ---- PagerDuty Events API v2 ---------------------------------------------- */

/* PagerDuty's error form: 400 {"status":"invalid event","message":…,
 * "errors":[…]}. */
static void ev2_error(struct kx_http_resp *resp, int code, const char *msg,
		      const struct kx_ev2_errors *list)
{
	json_t *errors = json_array();
	unsigned status = 400;

	if (code == KX_EUNAVAIL || code == KX_ESTORE || code == KX_ENOMEM) {
		kx_http_error(resp, code, msg);
		return;
	}
	if (list && list->n)
		for (size_t i = 0; i < list->n; i++)
			json_array_append_new(errors, json_string(list->v[i]));
	else
		json_array_append_new(errors, json_string(msg));
	kx_http_json(resp, status,
		     json_pack("{s:s, s:s, s:o}", "status", "invalid event", "message",
			       "Event object is invalid", "errors", errors));
}

static void answer_ev2(struct ingest_call *c, struct kx_http_resp *resp)
{
	if (c->job.rc) {
		ev2_error(resp, c->job.rc, c->job.err.msg, NULL);
		return;
	}
	kx_http_json(resp, 202,
		     json_pack("{s:s, s:s, s:s}", "status", "success", "message", "Event processed",
			       "dedup_key", c->job.outcomes[0].dedup_key));
}

void kx_h_ev2_enqueue(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_ev2_errors errors = {0};
	struct kx_alert_event *ev;
	struct ingest_call *c;
	struct kx_err err = {0};
	char *key = NULL;
	int rc;

	if (!(c = call_new(answer_ev2)) || !(ev = kx_alert_events_push(&c->evs))) {
		call_free(c);
		ev2_error(resp, KX_ENOMEM, "out of memory", NULL);
		return;
	}
	if ((rc = kx_decode_events_v2(req->body, req->body_len, req->now, ev, &key, &errors,
				      &err))) {
		ev2_error(resp, rc, err.msg, &errors);
		goto fail;
	}
	if ((rc = kx_svc_integration_auth(req->app, key, KX_SOURCE_EVENTS_V2, &c->in, &err))) {
		if (rc == KX_EAUTH || rc == KX_EFORBIDDEN)
			ev2_error(resp, KX_EINVAL, "Invalid routing key", NULL);
		else
			ev2_error(resp, rc, err.msg, NULL);
		goto fail;
	}
	/* PagerDuty makes a fresh key for a trigger without one: repeats of a
	 * summary are separate alerts unless the sender says otherwise */
	if (ev->action == KX_ALERT_TRIGGER && !ev->dedup_key) {
		uint8_t raw[16];
		char hex[33];
		randombytes_buf(raw, sizeof(raw));
		kx_hex(raw, sizeof(raw), hex);
		if (!(ev->dedup_key = strdup(hex))) {
			ev2_error(resp, KX_ENOMEM, "out of memory", NULL);
			goto fail;
		}
	}
	call_run(req, resp, c);
	c = NULL;
fail:
	if (key)
		sodium_memzero(key, strlen(key));
	free(key);
	kx_ev2_errors_release(&errors);
	call_free(c);
}

void kx_h_ev2_change(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_change_event c;
	struct kx_ev2_errors errors = {0};
	struct kx_integration in;
	struct kx_err err = {0};
	char *key = NULL;
	int rc;

	kx_change_event_init(&c);
	kx_integration_init(&in);
	if ((rc = kx_decode_change_v2(req->body, req->body_len, req->now, &c, &key, &errors, &err))) {
		ev2_error(resp, rc, err.msg, &errors);
		goto out;
	}
	if ((rc = kx_svc_integration_auth(req->app, key, KX_SOURCE_EVENTS_V2, &in, &err))) {
		if (rc == KX_EAUTH || rc == KX_EFORBIDDEN)
			ev2_error(resp, KX_EINVAL, "Invalid routing key", NULL);
		else
			ev2_error(resp, rc, err.msg, NULL);
		goto out;
	}
	if (!(c.service = strdup(in.service)) ||
	    (rc = kx_svc_change_record(req->app, &c, req->now, &err))) {
		ev2_error(resp, c.service ? rc : KX_ENOMEM, c.service ? err.msg : "out of memory",
			  NULL);
		goto out;
	}
	kx_http_json(resp, 202,
		     json_pack("{s:s, s:s}", "status", "success", "message", "Change event processed"));
out:
	if (key)
		sodium_memzero(key, strlen(key));
	free(key);
	kx_ev2_errors_release(&errors);
	kx_integration_release(&in);
	kx_change_event_release(&c);
}

/* ---- heartbeat pings ----------------------------------------------------- */

void kx_h_heartbeat_ping(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_heartbeat h;
	struct kx_err err = {0};

	if (kx_svc_heartbeat_ping(req->app, req->params[0], req->now, &h, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, json_pack("{s:s, s:s, s:o}", "status", "ok", "heartbeat", h.name,
					  "due_at", kx_enc_time(h.due_at)));
	kx_heartbeat_release(&h);
}

/* ---- alerts --------------------------------------------------------------- */

static int parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v;
	if (!s || !*s || strlen(s) > 18)
		return -1;
	v = strtoll(s, &end, 10);
	if (*end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* ?limit=N, 1 to 1000; answers the error itself. */
static int parse_limit(struct kx_http_resp *resp, const char *s, int *out)
{
	struct kx_err err = {0};
	long long n;
	if (kx_param_number("limit", s, 1, 1000, &n, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return -1;
	}
	*out = (int)n;
	return 0;
}

void kx_h_alert_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_alert_filter f = {0};
	struct kx_alerts list = {0};
	struct kx_err err = {0};
	const char *status = kx_http_query(req, "status"), *limit = kx_http_query(req, "limit");
	const char *since = kx_http_query(req, "since"), *before = kx_http_query(req, "before");
	json_t *a;

	f.service = kx_http_query(req, "service");
	f.incident = kx_http_query(req, "incident");
	f.status = -1;
	f.since = KX_TIME_UNSET;
	f.limit = 100;
	if (status && strcmp(status, "all")) {
		enum kx_alert_status st;
		if (kx_alert_status_parse(status, &st, &err)) {
			kx_http_error(resp, KX_EINVAL, err.msg);
			return;
		}
		f.status = (int)st;
	}
	if (limit && parse_limit(resp, limit, &f.limit))
		return;
	if (before && parse_id(before, &f.before_id)) {
		kx_http_error(resp, KX_EINVAL, "'before' must be an alert id");
		return;
	}
	if (since && kx_param_when("since", since, req->now, &f.since, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	if (kx_svc_alert_list(req->app, req->who, &f, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_alert(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "alerts", a));
	kx_alerts_release(&list);
}

void kx_h_alert_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_alert a;
	struct kx_err err = {0};
	int64_t id;

	if (parse_id(req->params[0], &id)) {
		kx_http_errorf(resp, KX_ENOTFOUND, "alert '%.32s' not found", req->params[0]);
		return;
	}
	if (kx_svc_alert_get(req->app, req->who, id, &a, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, enc_alert(&a));
	kx_alert_release(&a);
}

static void alert_act(struct kx_http_req *req, struct kx_http_resp *resp, const char *what)
{
	struct kx_alert a;
	struct kx_err err = {0};
	bool noise = true;
	json_t *body = NULL;
	int64_t id;

	if (parse_id(req->params[0], &id)) {
		kx_http_errorf(resp, KX_ENOTFOUND, "alert '%.32s' not found", req->params[0]);
		return;
	}
	if (!strcmp(what, "noise")) {
		static const char *const keys[] = {"noise", NULL};
		if (kx_json_parse_object(req->body, req->body_len, &body, &err) ||
		    kx_json_check_keys(body, keys, &err) || kx_json_bool(body, "noise", &noise, &err)) {
			kx_http_error(resp, err.code, err.msg);
			json_decref(body);
			return;
		}
		json_decref(body);
	}
	if (kx_svc_alert_act(req->app, req->who, id, what, noise, req->now, &a, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, enc_alert(&a));
	kx_alert_release(&a);
}

void kx_h_alert_ack(struct kx_http_req *req, struct kx_http_resp *resp)
{
	alert_act(req, resp, "ack");
}

void kx_h_alert_resolve(struct kx_http_req *req, struct kx_http_resp *resp)
{
	alert_act(req, resp, "resolve");
}

void kx_h_alert_noise(struct kx_http_req *req, struct kx_http_resp *resp)
{
	alert_act(req, resp, "noise");
}

/* ---- services ------------------------------------------------------------- */

void kx_h_service_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const keys[] = {"name", "description", "labels", NULL};
	struct kx_service s;
	struct kx_err err = {0};
	const char *name = NULL, *desc = NULL;
	json_t *body = NULL;

	kx_service_init(&s);
	if (kx_json_parse_object(req->body, req->body_len, &body, &err) ||
	    kx_json_check_keys(body, keys, &err) || kx_json_str(body, "name", true, &name, &err) ||
	    kx_json_str(body, "description", false, &desc, &err) ||
	    kx_json_labels(body, "labels", &s.labels, NULL, NULL, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	s.name = (char *)name;
	s.description = (char *)desc;
	if (kx_svc_service_create(req->app, req->who, &s, req->now, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	s.created_at = req->now;
	snprintf(resp->location, sizeof(resp->location), "/v1/services/%s", name);
	kx_http_json(resp, 201, enc_service(&s));
out:
	s.name = s.description = NULL;
	kx_service_release(&s);
	json_decref(body);
}

void kx_h_service_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_services list = {0};
	struct kx_err err = {0};
	json_t *a;

	if (kx_svc_service_list(req->app, req->who, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_service(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "services", a));
	kx_services_release(&list);
}

void kx_h_service_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_service s;
	struct kx_change_events changes = {0};
	struct kx_alert_filter f = {0};
	struct kx_alerts firing = {0};
	struct kx_err err = {0};
	json_t *j, *c, *a;

	if (kx_svc_service_get(req->app, req->who, req->params[0], &s, &changes, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	f.service = s.name;
	f.status = KX_ALERT_FIRING;
	f.since = KX_TIME_UNSET;
	f.limit = 100;
	if (kx_svc_alert_list(req->app, req->who, &f, &firing, &err)) {
		kx_http_error(resp, err.code, err.msg);
		kx_service_release(&s);
		kx_change_events_release(&changes);
		return;
	}
	j = enc_service(&s);
	c = json_array();
	a = json_array();
	for (size_t i = 0; c && i < changes.n; i++)
		json_array_append_new(c, enc_change(&changes.v[i]));
	for (size_t i = 0; a && i < firing.n; i++)
		json_array_append_new(a, enc_alert(&firing.v[i]));
	if (j) {
		json_object_set_new(j, "changes", c);
		json_object_set_new(j, "firing", a);
	}
	kx_http_json(resp, 200, j);
	kx_service_release(&s);
	kx_change_events_release(&changes);
	kx_alerts_release(&firing);
}

/* ---- integrations ------------------------------------------------------------ */

/* This daemon's address as senders should use it: public_url, else the
 * Host the request came to (the port really bound, the name the client
 * used), else the listen address. */
static void base_url(const struct kx_http_req *req, char *out, size_t n)
{
	const char *host = kx_http_header(req, "Host");
	bool ok = host && *host && strlen(host) < 200;

	for (const char *p = host; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		     *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']';
	if (req->app->cfg->public_url)
		snprintf(out, n, "%s", req->app->cfg->public_url);
	else
		snprintf(out, n, "http://%s", ok ? host : req->app->cfg->listen);
}

/* Where a source of this kind sends, on this daemon. */
static json_t *integration_urls(const struct kx_http_req *req, enum kx_alert_source src,
				const char *key)
{
	char base[256], url[512];
	base_url(req, base, sizeof(base));
	switch (src) {
	case KX_SOURCE_ALERTMANAGER:
		snprintf(url, sizeof(url), "%s/v1/alerts/alertmanager", base);
		return json_pack("{s:s, s:s}", "webhook", url, "api_v2", base);
	case KX_SOURCE_EVENTS_V2: {
		char change[512];
		snprintf(url, sizeof(url), "%s/v2/enqueue", base);
		snprintf(change, sizeof(change), "%s/v2/change/enqueue", base);
		return json_pack("{s:s, s:s}", "events", url, "change", change);
	}
	default:
		snprintf(url, sizeof(url), "%s/v1/alerts?key=%s", base, key);
		return json_pack("{s:s}", "alerts", url);
	}
}

void kx_h_integration_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const keys[] = {"service", "source", "name", NULL};
	struct kx_integration in;
	struct kx_err err = {0};
	enum kx_alert_source src = KX_SOURCE_GENERIC;
	const char *service = NULL, *source = NULL, *name = NULL;
	char key[KX_INTEGRATION_KEY_LEN + 1];
	json_t *body = NULL, *j;

	if (kx_json_parse_object(req->body, req->body_len, &body, &err) ||
	    kx_json_check_keys(body, keys, &err) ||
	    kx_json_str(body, "service", true, &service, &err) ||
	    kx_json_str(body, "source", false, &source, &err) ||
	    kx_json_str(body, "name", false, &name, &err) ||
	    (source && kx_alert_source_parse(source, &src, &err)) ||
	    kx_svc_integration_create(req->app, req->who, service, src, name, req->now, &in, key,
				      &err)) {
		kx_http_error(resp, err.code, err.msg);
		json_decref(body);
		return;
	}
	j = enc_integration(&in);
	if (j) {
		json_object_set_new(j, "key", json_string(key));
		json_object_set_new(j, "urls", integration_urls(req, src, key));
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/integrations/%s", in.id);
	kx_http_json(resp, 201, j);
	sodium_memzero(key, sizeof(key));
	kx_integration_release(&in);
	json_decref(body);
}

void kx_h_integration_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_integrations list = {0};
	struct kx_err err = {0};
	json_t *a;

	if (kx_svc_integration_list(req->app, kx_http_query(req, "service"), &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_integration(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "integrations", a));
	kx_integrations_release(&list);
}

void kx_h_integration_revoke(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_err err = {0};

	if (kx_svc_integration_revoke(req->app, req->who, req->params[0], req->now, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, json_pack("{s:s, s:b}", "id", req->params[0], "revoked", 1));
}

/* ---- heartbeats -------------------------------------------------------------- */

static int duration_field(json_t *body, const char *key, kx_ms *out, struct kx_err *err)
{
	const char *s = NULL;
	int rc;
	if ((rc = kx_json_str(body, key, false, &s, err)) || !s)
		return rc;
	if (kx_duration_parse(s, out))
		return kx_err_set(err, KX_EINVAL, "'%s': cannot parse duration '%.64s' (use e.g. 90s, 5m)",
				  key, s);
	return 0;
}

void kx_h_heartbeat_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const keys[] = {"name", "service", "interval", "grace", "severity", NULL};
	struct kx_heartbeat h;
	struct kx_err err = {0};
	const char *name = NULL, *service = NULL, *sev = NULL;
	char key[KX_INTEGRATION_KEY_LEN + 1], url[512];
	json_t *body = NULL, *j;
	enum kx_alert_level level = KX_LEVEL_ERROR;

	kx_heartbeat_init(&h);
	h.interval = 300000;
	h.grace = 60000;
	if (kx_json_parse_object(req->body, req->body_len, &body, &err) ||
	    kx_json_check_keys(body, keys, &err) || kx_json_str(body, "name", true, &name, &err) ||
	    kx_json_str(body, "service", true, &service, &err) ||
	    duration_field(body, "interval", &h.interval, &err) ||
	    duration_field(body, "grace", &h.grace, &err) ||
	    kx_json_str(body, "severity", false, &sev, &err) ||
	    (sev && kx_alert_level_parse(sev, &level, &err))) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	h.level = level;
	if (!(h.name = strdup(name)) || !(h.service = strdup(service))) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (kx_svc_heartbeat_create(req->app, req->who, &h, req->now, key, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	j = enc_heartbeat(&h);
	{
		char base[256];
		base_url(req, base, sizeof(base));
		snprintf(url, sizeof(url), "%s/v1/heartbeats/%s", base, key);
	}
	if (j) {
		json_object_set_new(j, "key", json_string(key));
		json_object_set_new(j, "ping_url", json_string(url));
	}
	kx_http_json(resp, 201, j);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(url, sizeof(url));
out:
	kx_heartbeat_release(&h);
	json_decref(body);
}

void kx_h_heartbeat_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_heartbeats list = {0};
	struct kx_err err = {0};
	json_t *a;

	if (kx_svc_heartbeat_list(req->app, req->who, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_heartbeat(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "heartbeats", a));
	kx_heartbeats_release(&list);
}

void kx_h_heartbeat_delete(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_err err = {0};
	if (kx_svc_heartbeat_delete(req->app, req->who, req->params[0], req->now, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, json_pack("{s:s, s:b}", "name", req->params[0], "deleted", 1));
}

/* ---- silences ------------------------------------------------------------------ */

void kx_h_silence_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const keys[] = {"matchers", "starts_at", "ends_at", "duration",
					   "comment",  "kind",	    NULL};
	struct kx_silence s;
	struct kx_err err = {0};
	const char *matchers = NULL, *comment = NULL, *kind = NULL;
	kx_ms dur = 0;
	json_t *body = NULL;

	kx_silence_init(&s);
	if (kx_json_parse_object(req->body, req->body_len, &body, &err) ||
	    kx_json_check_keys(body, keys, &err) ||
	    kx_json_str(body, "matchers", true, &matchers, &err) ||
	    kx_json_str(body, "comment", false, &comment, &err) ||
	    kx_json_str(body, "kind", false, &kind, &err) ||
	    kx_json_time(body, "starts_at", &s.starts_at, &err) ||
	    kx_json_time(body, "ends_at", &s.ends_at, &err) ||
	    duration_field(body, "duration", &dur, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	if (kind && strcmp(kind, "silence") && strcmp(kind, "maintenance")) {
		kx_http_error(resp, KX_EINVAL, "'kind' must be silence or maintenance");
		goto out;
	}
	if (dur && s.ends_at != KX_TIME_UNSET) {
		kx_http_error(resp, KX_EINVAL, "give 'ends_at' or 'duration', not both");
		goto out;
	}
	if (dur)
		s.ends_at = (s.starts_at != KX_TIME_UNSET ? s.starts_at : req->now) + dur;
	s.kind = kind && !strcmp(kind, "maintenance") ? KX_MAINTENANCE : KX_SILENCE;
	if (!(s.matchers = strdup(matchers)) || (comment && !(s.comment = strdup(comment)))) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (kx_svc_silence_create(req->app, req->who, &s, req->now, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/silences/%s", s.id);
	kx_http_json(resp, 201, enc_silence(&s, req->now));
out:
	kx_silence_release(&s);
	json_decref(body);
}

void kx_h_silence_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_silences list = {0};
	struct kx_err err = {0};
	const char *all = kx_http_query(req, "all");
	json_t *a;

	if (kx_svc_silence_list(req->app, !(all && (!strcmp(all, "1") || !strcmp(all, "true"))),
				req->now, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_silence(&list.v[i], req->now));
	kx_http_json(resp, 200, json_pack("{s:o}", "silences", a));
	kx_silences_release(&list);
}

void kx_h_silence_expire(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_silence s;
	struct kx_err err = {0};
	if (kx_svc_silence_expire(req->app, req->who, req->params[0], req->now, &s, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, enc_silence(&s, req->now));
	kx_silence_release(&s);
}

/* ---- the delivery log ------------------------------------------------------- */

/* The delivery log names incidents and switches of every tenant: it is
 * for tokens without a label scope. */
static bool unscoped(struct kx_http_req *req, struct kx_http_resp *resp)
{
	if (!req->who->scope.n)
		return true;
	kx_http_error(resp, KX_EFORBIDDEN,
		      "the delivery log covers every tenant: it needs a token without a label scope");
	return false;
}

void kx_h_notification_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_notification_filter f = {0};
	struct kx_notifications list = {0};
	struct kx_err err = {0};
	const char *status = kx_http_query(req, "status"), *limit = kx_http_query(req, "limit");
	json_t *a;

	if (!unscoped(req, resp))
		return;
	f.channel = kx_http_query(req, "channel");
	f.subject = kx_http_query(req, "subject");
	f.status = -1;
	f.limit = 100;
	if (status) {
		enum kx_notification_status st;
		if (kx_notification_status_parse(status, &st, &err)) {
			kx_http_error(resp, KX_EINVAL, err.msg);
			return;
		}
		f.status = (int)st;
	}
	if (limit && parse_limit(resp, limit, &f.limit))
		return;
	if (kx_svc_notification_list(req->app, &f, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, enc_notification(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "notifications", a));
	kx_notifications_release(&list);
}

void kx_h_notification_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_notification n;
	struct kx_notification_attempts at = {0};
	struct kx_err err = {0};
	json_t *j, *a;

	if (!unscoped(req, resp))
		return;
	if (kx_svc_notification_get(req->app, req->params[0], &n, &at, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	j = enc_notification(&n);
	a = json_array();
	for (size_t i = 0; a && i < at.n; i++)
		json_array_append_new(
			a, json_pack("{s:i, s:o, s:I, s:I, s:o}", "number", at.v[i].number, "at",
				     kx_enc_time(at.v[i].at), "took_ms", (json_int_t)at.v[i].took,
				     "code", (json_int_t)at.v[i].code, "error",
				     str_or_null(at.v[i].error)));
	if (j)
		json_object_set_new(j, "attempt_log", a);
	kx_http_json(resp, 200, j);
	kx_notification_release(&n);
	kx_notification_attempts_release(&at);
}
