/* h_incidents.c — /v1/incidents handlers: decode, call the service, encode. */
#include "http/decode.h"
#include "http/encode.h"
#include "http/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_incident(struct kx_http_resp *resp, unsigned status, struct kx_incident *inc)
{
	kx_http_json(resp, status, kx_enc_incident(inc));
	kx_incident_release(inc);
}

static json_t *enc_timeline(const struct kx_timeline *t)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < t->n; i++)
		json_array_append_new(a, kx_enc_timeline_entry(&t->v[i]));
	return a;
}

static json_t *enc_items(const struct kx_action_items *items)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < items->n; i++)
		json_array_append_new(a, kx_enc_action_item(&items->v[i]));
	return a;
}

void kx_h_incident_declare(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_declare d;
	struct kx_decoded hold;
	struct kx_incident inc;
	struct kx_err err = {0};

	if (kx_decode_declare(req->body, req->body_len, &d, &hold, &err) ||
	    kx_svc_declare(req->app, req->who, &d, req->now, &inc, &err)) {
		kx_http_error(resp, err.code, err.msg);
	} else {
		snprintf(resp->location, sizeof(resp->location), "/v1/incidents/%s", inc.id);
		reply_incident(resp, 201, &inc);
	}
	kx_declare_release(&d);
	kx_decoded_release(&hold);
}

struct list_q {
	struct kx_incident_filter *f;
	struct kx_err *err;
	kx_ms since; /* a duration; KX_TIME_UNSET when not given */
};

static int list_param(const char *key, const char *value, void *arg)
{
	struct list_q *q = arg;
	struct kx_incident_filter *f = q->f;
	enum kx_status st;
	char *end;
	long n;
	kx_ms d;

	if (!strcmp(key, "status")) {
		if (kx_status_parse(value, &st, q->err))
			return KX_EINVAL;
		f->status = value;
	} else if (!strcmp(key, "severity")) {
		f->severity = value;
	} else if (!strcmp(key, "label")) {
		if (kx_labels_add_pair(&f->labels, value, q->err))
			return KX_EINVAL;
	} else if (!strcmp(key, "since")) {
		if (kx_duration_parse(value, &d))
			return kx_err_set(q->err, KX_EINVAL,
					  "cannot parse 'since': '%.32s' is not a duration like 2h", value);
		q->since = d;
	} else if (!strcmp(key, "open")) {
		if (!strcmp(value, "true") || !strcmp(value, "1"))
			f->open_only = true;
		else if (strcmp(value, "false") && strcmp(value, "0"))
			return kx_err_set(q->err, KX_EINVAL, "'open' must be true or false");
	} else if (!strcmp(key, "limit")) {
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || end == value || *end || n < 1 || n > 1000)
			return kx_err_set(q->err, KX_EINVAL, "'limit' must be a number from 1 to 1000");
		f->limit = (int)n;
	} else {
		return kx_err_set(q->err, KX_EINVAL, "unknown query parameter '%.64s'", key);
	}
	return 0;
}

void kx_h_incident_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_incident_filter f = {0};
	struct kx_incident_list list = {0};
	struct kx_err err = {0};
	struct list_q q = {&f, &err, KX_TIME_UNSET};
	json_t *arr;

	kx_labels_init(&f.labels);
	f.declared_since = KX_TIME_UNSET;
	f.limit = 100;
	if (kx_http_query_each(req, list_param, &q)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	if (q.since != KX_TIME_UNSET)
		f.declared_since = req->now - q.since;
	if (kx_svc_incident_list(req->app, req->who, &f, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < list.n; i++)
		json_array_append_new(arr, kx_enc_incident(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "incidents", arr));
out:
	kx_incident_list_release(&list);
	kx_labels_release(&f.labels);
}

void kx_h_incident_get(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_incident inc;
	struct kx_timeline tl;
	struct kx_action_items items;
	struct kx_err err = {0};
	json_t *j;

	if (kx_svc_incident_get(req->app, req->who, req->params[0], &inc, &tl, &items, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	j = kx_enc_incident(&inc);
	if (j) {
		json_object_set_new(j, "timeline", enc_timeline(&tl));
		json_object_set_new(j, "action_items", enc_items(&items));
	}
	kx_http_json(resp, 200, j);
	kx_incident_release(&inc);
	kx_timeline_release(&tl);
	kx_action_items_release(&items);
}

/* The shared shape of every incident change endpoint. */
static void change(struct kx_http_req *req, struct kx_http_resp *resp, enum kx_change_kind kind)
{
	struct kx_change c;
	struct kx_decoded hold;
	struct kx_incident inc;
	struct kx_err err = {0};

	if (kx_decode_change(req->body, req->body_len, kind, &c, &hold, &err) ||
	    kx_svc_incident_change(req->app, req->who, req->params[0], &c, req->now, &inc, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		reply_incident(resp, 200, &inc);
	kx_decoded_release(&hold);
}

void kx_h_incident_edit(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_EDIT);
}

void kx_h_incident_status(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_STATUS);
}

void kx_h_incident_severity(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_SEVERITY);
}

void kx_h_incident_roles(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_ROLE);
}

void kx_h_incident_ack(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_ACK);
}

void kx_h_incident_impact(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_IMPACT);
}

void kx_h_incident_resolve(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_RESOLVE);
}

void kx_h_incident_reopen(struct kx_http_req *req, struct kx_http_resp *resp)
{
	change(req, resp, KX_CHANGE_REOPEN);
}

void kx_h_timeline_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_timeline tl;
	struct kx_err err = {0};

	if (kx_svc_timeline(req->app, req->who, req->params[0], &tl, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, json_pack("{s:o}", "timeline", enc_timeline(&tl)));
	kx_timeline_release(&tl);
}

void kx_h_timeline_add(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_decoded hold;
	struct kx_timeline_entry e = {0};
	struct kx_err err = {0};
	const char *text;
	kx_ms at;

	if (kx_decode_note(req->body, req->body_len, &text, &at, &hold, &err) ||
	    kx_svc_incident_note(req->app, req->who, req->params[0], text, at, req->now, &e, &err)) {
		kx_http_error(resp, err.code, err.msg);
	} else {
		kx_http_json(resp, 201, kx_enc_timeline_entry(&e));
		kx_timeline_entry_release(&e);
	}
	kx_decoded_release(&hold);
}

void kx_h_action_items_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_action_items items;
	struct kx_err err = {0};

	if (kx_svc_action_items(req->app, req->who, req->params[0], &items, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, json_pack("{s:o}", "action_items", enc_items(&items)));
	kx_action_items_release(&items);
}

void kx_h_action_item_add(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_decoded hold;
	struct kx_action_item a;
	struct kx_err err = {0};

	/* a borrows its strings from hold: never release a itself. */
	if (kx_decode_action_item(req->body, req->body_len, &a, &hold, &err) ||
	    kx_svc_action_item_add(req->app, req->who, req->params[0], &a, req->now, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		kx_http_json(resp, 201, kx_enc_action_item(&a));
	kx_decoded_release(&hold);
}

void kx_h_action_item_done(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_action_item a;
	struct kx_err err = {0};
	char *end;
	long long n;

	errno = 0;
	n = strtoll(req->params[1], &end, 10);
	if (errno || *end || end == req->params[1] || n < 1) {
		kx_http_errorf(resp, KX_ENOTFOUND, "action item '%.32s' not found", req->params[1]);
		return;
	}
	if (kx_svc_action_item_done(req->app, req->who, req->params[0], n, req->now, &a, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, kx_enc_action_item(&a));
	kx_action_item_release(&a);
}

void kx_h_incident_export(struct kx_http_req *req, struct kx_http_resp *resp)
{
	const char *format = kx_http_query(req, "format");
	struct kx_err err = {0};

	if (!format || !strcmp(format, "md") || !strcmp(format, "markdown")) {
		kx_buf_clear(&resp->body);
		if (kx_svc_incident_markdown(req->app, req->who, req->params[0], &resp->body, &err)) {
			kx_http_error(resp, err.code, err.msg);
			return;
		}
		resp->status = 200;
		resp->content_type = "text/markdown; charset=utf-8";
		return;
	}
	if (!strcmp(format, "json")) {
		kx_h_incident_get(req, resp);
		return;
	}
	kx_http_errorf(resp, KX_EINVAL, "unknown export format '%.32s': use md or json", format);
}
