/* h_guard.c — the guardrail API: /v1/gate/check, /v1/switches (and their
 * Server-Sent Events stream), /v1/caps, /v1/approvals, and the evidence
 * endpoint of an incident. Thin: decode, call service/guard.h, encode. */
#include "http/decode_guard.h"
#include "http/encode.h"
#include "http/server.h"
#include "service/evidence.h"
#include "service/guard.h"
#include "service/tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the gate ---- */

static json_t *answer_json(const struct kx_gate_answer *a)
{
	json_t *o = json_pack("{s:s}", "decision", kx_gate_verdict_name(a->verdict));
	if (!o || a->verdict == KX_GATE_ALLOW)
		return o;
	json_object_set_new(o, "by", json_string(kx_gate_by_name(a->by)));
	json_object_set_new(o, "id", json_string(a->id));
	json_object_set_new(o, "reason", json_string(a->reason));
	if (a->verdict == KX_GATE_APPROVAL_REQUIRED)
		json_object_set_new(o, "request_id", json_string(a->request_id));
	if (a->verdict == KX_GATE_DENY && a->retry_after != KX_GATE_NEVER &&
	    (a->by == KX_GATE_BY_CAP || a->by == KX_GATE_BY_RAMP))
	{
		/* whole seconds, rounded up, as HTTP's Retry-After; and exact */
		json_object_set_new(o, "retry_after",
				    json_integer((json_int_t)((a->retry_after + 999) / 1000)));
		json_object_set_new(o, "retry_after_ms", json_integer((json_int_t)a->retry_after));
	}
	return o;
}

void kx_h_gate_check(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_gate_req *reqs = NULL;
	struct kx_gate_answer one, *ans = &one;
	struct kx_err err = {0};
	json_t *json = NULL, *arr;
	size_t n = 0;
	bool batch;

	if (kx_decode_gate(req->body, req->body_len, &reqs, &n, &batch, &json, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	if (n > 1 && !(ans = calloc(n, sizeof(*ans)))) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (kx_svc_gate_check(req->app, req->who, reqs, n, batch, req->now, ans, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	if (!batch && ans[0].verdict == KX_GATE_ALLOW) {
		/* the hot path's usual answer, without building it */
		kx_buf_clear(&resp->body);
		if (kx_buf_adds(&resp->body, "{\"decision\":\"allow\"}"))
			kx_http_error(resp, KX_ENOMEM, "out of memory");
		else
			resp->content_type = "application/json";
		goto out;
	}
	if (!batch) {
		kx_http_json(resp, 200, answer_json(&ans[0]));
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, answer_json(&ans[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	kx_http_json(resp, 200, arr ? json_pack("{s:o}", "decisions", arr) : NULL);
out:
	if (ans != &one)
		free(ans);
	kx_gate_reqs_free(reqs, n);
	if (json)
		json_decref(json);
}

/* ---- switches ---- */

static void switch_answer(struct kx_http_resp *resp, unsigned status, const struct kx_switch *sw,
			  kx_ms now)
{
	json_t *j = kx_switch_json(sw, now);
	kx_http_json(resp, status, j ? json_pack("{s:o}", "switch", j) : NULL);
}

void kx_h_switch_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_switch_req sr;
	struct kx_switch sw;
	struct kx_err err = {0};
	json_t *json = NULL;

	kx_switch_init(&sw);
	if (kx_decode_switch(req->body, req->body_len, req->now, &sr, &json, &err) ||
	    kx_svc_switch_set(req->app, req->who, &sr, req->now, &sw, &err)) {
		kx_http_error(resp, err.code, err.msg);
	} else {
		snprintf(resp->location, sizeof(resp->location), "/v1/switches/%s", sw.id);
		switch_answer(resp, 201, &sw, req->now);
	}
	kx_switch_release(&sw);
	if (json)
		json_decref(json);
}

/* ?all=true|false */
static int bool_query(const struct kx_http_req *req, const char *key, bool *out,
		      struct kx_err *err)
{
	const char *v = kx_http_query(req, key);
	*out = false;
	if (!v)
		return 0;
	if (!strcmp(v, "true") || !strcmp(v, "1") || !*v)
		*out = true;
	else if (strcmp(v, "false") && strcmp(v, "0"))
		return kx_err_set(err, KX_EINVAL, "'%s' must be true or false, not '%.32s'", key, v);
	return 0;
}

struct query_check {
	const char *const *allowed;
	const char *bad;
};

static int unknown_query(const char *key, const char *value, void *arg)
{
	struct query_check *c = arg;
	(void)value;
	for (const char *const *a = c->allowed; *a; a++)
		if (!strcmp(*a, key))
			return 0;
	c->bad = key;
	return 1;
}

static int check_query(const struct kx_http_req *req, const char *const *allowed,
		       struct kx_err *err)
{
	struct query_check c = {allowed, NULL};
	if (kx_http_query_each(req, unknown_query, &c))
		return kx_err_set(err, KX_EINVAL, "unknown query parameter '%.64s'", c.bad);
	return 0;
}

void kx_h_switch_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const allowed[] = {"all", NULL};
	struct kx_switches l = {0};
	struct kx_err err = {0};
	json_t *arr;
	bool all;

	if (check_query(req, allowed, &err) || bool_query(req, "all", &all, &err) ||
	    kx_svc_switch_list(req->app, req->who, all, req->now, &l, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kx_switch_json(&l.v[i], req->now));
	kx_http_json(resp, 200,
		     arr ? json_pack("{s:o,s:I}", "switches", arr, "version",
				     (json_int_t)(req->app->gate ? kx_gate_rt_version(req->app->gate)
								 : 0))
			 : NULL);
	kx_switches_release(&l);
}

void kx_h_switch_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_switch sw;
	struct kx_err err = {0};
	if (kx_svc_switch_get(req->app, req->who, req->params[0], &sw, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		switch_answer(resp, 200, &sw, req->now);
	kx_switch_release(&sw);
}

void kx_h_switch_clear(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_switch sw;
	struct kx_err err = {0};
	const char *reason;
	json_t *json = NULL;

	kx_switch_init(&sw);
	if (kx_decode_one_string(req->body, req->body_len, "reason", false, &reason, &json, &err) ||
	    kx_svc_switch_clear(req->app, req->who, req->params[0], reason, req->now, &sw, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		switch_answer(resp, 200, &sw, req->now);
	kx_switch_release(&sw);
	if (json)
		json_decref(json);
}

void kx_h_switch_resume(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_resume_req r;
	struct kx_switch sw;
	struct kx_err err = {0};
	json_t *json = NULL;

	kx_switch_init(&sw);
	if (kx_decode_resume(req->body, req->body_len, &r, &json, &err) ||
	    kx_svc_switch_resume(req->app, req->who, req->params[0], r.ramp, r.floor, r.peak,
				 r.window, r.reason, req->now, &sw, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		switch_answer(resp, 200, &sw, req->now);
	kx_switch_release(&sw);
	if (json)
		json_decref(json);
}

/* The switch stream: one "switches" event with the whole set in force on
 * connect and after every change of the gate's snapshot. */
struct sse {
	const struct kx_app *app;
	struct kx_labels scope;
	uint64_t sent; /* version last sent; 0: none yet */
	uint64_t decisions; /* approval decisions already looked at */
	bool hello;
	uint8_t token_hash[KX_HASH_LEN];
	kx_ms token_checked; /* the token is re-checked every TOKEN_RECHECK_MS */
};

#define TOKEN_RECHECK_MS 5000

/* Decisions on approval requests in the stream's scope, one event each. */
static int sse_decisions(struct sse *s, struct kx_buf *out)
{
	json_t *arr;
	size_t i;
	json_t *a;
	if (kx_gate_rt_decisions(s->app->gate) == s->decisions)
		return 0;
	if (kx_gate_rt_decisions_since(s->app->gate, &s->scope, &s->decisions, kx_now_ms(), &arr))
		return -1;
	json_array_foreach(arr, i, a) {
		json_t *j = json_pack("{s:O}", "approval", a);
		int rc = !j || kx_buf_adds(out, "event: approval\ndata: ") ||
			 kx_enc_dump(j, out, false) || kx_buf_adds(out, "\n\n");
		if (j)
			json_decref(j);
		if (rc) {
			json_decref(arr);
			return -1;
		}
	}
	json_decref(arr);
	return 0;
}

static int sse_read(void *arg, struct kx_buf *out)
{
	struct sse *s = arg;
	struct kx_err err = {0};
	uint64_t v;

	if (!s->app->gate)
		return -1;
	if (kx_now_ms() - s->token_checked >= TOKEN_RECHECK_MS) {
		/* a revoked token loses its stream within seconds (the ping
		 * thread wakes every stream every 5 s) */
		if (kx_svc_token_valid(s->app, s->token_hash, &err) == KX_EAUTH)
			return -1;
		s->token_checked = kx_now_ms();
	}
	if (!s->hello) {
		s->hello = true;
		s->decisions = kx_gate_rt_decisions(s->app->gate); /* news only */
		kx_buf_adds(out, "retry: 2000\n\n");
	}
	if (sse_decisions(s, out))
		return -1;
	v = kx_gate_rt_version(s->app->gate);
	if (s->sent == v)
		return out->len ? 1 : 0;
	if (kx_gate_rt_stream_event(s->app->gate, &s->scope, out, &v))
		return -1;
	s->sent = v;
	return 1;
}

static void sse_free(void *arg)
{
	struct sse *s = arg;
	kx_labels_release(&s->scope);
	free(s);
}

void kx_h_switch_stream(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct sse *s;
	if (!req->app->gate) {
		kx_http_error(resp, KX_EUNAVAIL, "the gate is not running");
		return;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		return;
	}
	s->app = req->app;
	memcpy(s->token_hash, req->who->hash, KX_HASH_LEN);
	s->token_checked = req->now;
	kx_labels_init(&s->scope);
	if (kx_labels_copy(&s->scope, &req->who->scope)) {
		sse_free(s);
		kx_http_error(resp, KX_ENOMEM, "out of memory");
		return;
	}
	resp->status = 200;
	resp->stream.read = sse_read;
	resp->stream.free = sse_free;
	resp->stream.arg = s;
}

/* ---- caps ---- */

void kx_h_cap_put(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_cap cap;
	struct kx_err err = {0};
	const char *spec;
	json_t *json = NULL, *j;
	bool created = false;

	kx_cap_init(&cap);
	if (kx_decode_one_string(req->body, req->body_len, "spec", true, &spec, &json, &err) ||
	    kx_svc_cap_put(req->app, req->who, req->params[0], spec, req->now, &cap, &created,
			   &err)) {
		kx_http_error(resp, err.code, err.msg);
	} else {
		j = kx_cap_json(&cap, false);
		kx_http_json(resp, created ? 201 : 200, j ? json_pack("{s:o}", "cap", j) : NULL);
	}
	kx_cap_release(&cap);
	if (json)
		json_decref(json);
}

void kx_h_cap_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_caps l = {0};
	struct kx_err err = {0};
	json_t *arr;
	if (kx_svc_cap_list(req->app, req->who, &l, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kx_cap_json(&l.v[i], kx_svc_cap_is_config(req->app,
										       l.v[i].id)));
	kx_http_json(resp, 200, arr ? json_pack("{s:o}", "caps", arr) : NULL);
	kx_caps_release(&l);
}

void kx_h_cap_delete(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_err err = {0};
	if (kx_svc_cap_delete(req->app, req->who, req->params[0], req->now, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		kx_http_json(resp, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

/* ---- approvals ---- */

static void approval_answer(struct kx_http_resp *resp, const struct kx_approval *a, kx_ms now)
{
	json_t *j = kx_approval_json(a, now);
	kx_http_json(resp, 200, j ? json_pack("{s:o}", "approval", j) : NULL);
}

void kx_h_approval_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	static const char *const allowed[] = {"status", "limit", NULL};
	const char *status = kx_http_query(req, "status"), *lim = kx_http_query(req, "limit");
	struct kx_approvals l = {0};
	struct kx_err err = {0};
	long limit = 100;
	bool pending = true;
	json_t *arr;

	if (check_query(req, allowed, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	if (status && !strcmp(status, "all"))
		pending = false;
	else if (status && strcmp(status, "pending")) {
		kx_http_errorf(resp, KX_EINVAL, "'status' must be pending or all, not '%.32s'", status);
		return;
	}
	if (lim) {
		char *end;
		errno = 0;
		limit = strtol(lim, &end, 10);
		if (errno || end == lim || *end || limit < 1 || limit > 10000) {
			kx_http_error(resp, KX_EINVAL, "'limit' must be a number from 1 to 10000");
			return;
		}
	}
	if (kx_svc_approval_list(req->app, req->who, pending, (int)limit, req->now, &l, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kx_approval_json(&l.v[i], req->now));
	kx_http_json(resp, 200, arr ? json_pack("{s:o}", "approvals", arr) : NULL);
	kx_approvals_release(&l);
}

void kx_h_approval_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_approval a;
	struct kx_err err = {0};
	if (kx_svc_approval_get(req->app, req->who, req->params[0], req->now, &a, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		approval_answer(resp, &a, req->now);
	kx_approval_release(&a);
}

static void decide(struct kx_http_req *req, struct kx_http_resp *resp, bool approve)
{
	struct kx_approval a;
	struct kx_err err = {0};
	const char *note;
	json_t *json = NULL;

	kx_approval_init(&a);
	if (kx_decode_one_string(req->body, req->body_len, "note", false, &note, &json, &err) ||
	    kx_svc_approval_decide(req->app, req->who, req->params[0], approve, note, req->now, &a,
				   &err))
		kx_http_error(resp, err.code, err.msg);
	else
		approval_answer(resp, &a, req->now);
	kx_approval_release(&a);
	if (json)
		json_decref(json);
}

void kx_h_approval_approve(struct kx_http_req *req, struct kx_http_resp *resp)
{
	decide(req, resp, true);
}

void kx_h_approval_deny(struct kx_http_req *req, struct kx_http_resp *resp)
{
	decide(req, resp, false);
}

/* ---- evidence ---- */

void kx_h_incident_evidence(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_evidence_req er;
	struct kx_audit_filter f;
	struct kx_timeline_entry e = {0};
	struct kx_err err = {0};
	int64_t attached = 0, total = 0;
	json_t *json = NULL;

	kx_audit_filter_init(&f);
	if (kx_decode_evidence(req->body, req->body_len, req->now, &er, &json, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	f.since = er.since;
	f.until = er.until;
	f.account = er.account;
	f.action = er.action;
	f.client = er.client;
	f.platform = er.platform;
	f.lane = er.lane;
	f.actor = er.actor;
	if (kx_svc_incident_evidence(req->app, req->who, req->params[0], &f, er.limit, req->now, &e,
				     &attached, &total, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		kx_http_json(resp, 201,
			     json_pack("{s:o,s:I,s:I}", "entry", kx_enc_timeline_entry(&e), "events",
				       (json_int_t)attached, "total", (json_int_t)total));
	kx_timeline_entry_release(&e);
out:
	kx_audit_filter_release(&f);
	if (json)
		json_decref(json);
}
