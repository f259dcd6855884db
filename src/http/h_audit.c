/* h_audit.c — /v1/audit handlers: append events, read them (JSON, NDJSON,
 * CSV), the seeds' questions (duplicates, recipients), verify the chain. */
#include "http/decode.h"
#include "http/encode.h"
#include "http/server.h"
#include "service/audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Is the Content-Type NDJSON (one JSON object per line)? */
static bool is_ndjson(const char *ct)
{
	static const char *const types[] = {"application/x-ndjson", "application/ndjson",
					    "application/jsonl", NULL};
	size_t n;
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	for (const char *const *t = types; *t; t++)
		if (strlen(*t) == n && strncasecmp(ct, *t, n) == 0)
			return true;
	return false;
}

void kx_h_audit_append(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_audit_events ev = {0};
	struct kx_err err = {0};
	bool ndjson = is_ndjson(kx_http_header(req, "Content-Type"));

	if (kx_decode_audit(req->body, req->body_len, ndjson, req->now, &ev, &err) ||
	    kx_svc_audit_append(req->app, req->who, ev.v, ev.n, req->now, &err))
		kx_http_error(resp, err.code, err.msg);
	else
		kx_http_json(resp, 201,
			     json_pack("{s:I,s:I,s:I}", "appended", (json_int_t)ev.n, "first_seq",
				       (json_int_t)ev.v[0].seq, "last_seq",
				       (json_int_t)ev.v[ev.n - 1].seq));
	kx_audit_events_release(&ev);
}

enum fmt { FMT_JSON, FMT_NDJSON, FMT_CSV };

/* The query of a read: the filter and, for GET /v1/audit/events, how the
 * answer is written. */
struct audit_q {
	struct kx_audit_filter *f;
	struct kx_err *err;
	kx_ms now;
	bool listing; /* GET /v1/audit/events: after_seq, order and format too */
	enum fmt format;
};

/* The filter field a text parameter sets, or NULL. */
static const char **text_param(struct kx_audit_filter *f, const char *key)
{
	static const char *const names[] = {"actor", "client", "account", "platform",
					    "lane",  "action", "target"};
	const char **slots[] = {&f->actor, &f->client, &f->account, &f->platform,
				&f->lane,  &f->action, &f->target};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(key, names[i]))
			return slots[i];
	return NULL;
}

static int label_param(struct kx_audit_filter *f, const char *value, struct kx_err *err)
{
	size_t kn = strcspn(value, "=");
	char key[KX_LABEL_KEY_MAX + 1];
	if (kn <= KX_LABEL_KEY_MAX) {
		memcpy(key, value, kn);
		key[kn] = '\0';
		if (kx_audit_scope_key(key))
			return kx_err_set(err, KX_EINVAL,
					  "'%s' is a field, not a label: use the '%s' parameter", key,
					  key);
	}
	return kx_labels_add_pair(&f->labels, value, err);
}

static int audit_param(const char *key, const char *value, void *arg)
{
	struct audit_q *q = arg;
	struct kx_audit_filter *f = q->f;
	const char **slot = text_param(f, key);
	long long n;
	int rc;

	if (slot) {
		if (!*value)
			return kx_err_set(q->err, KX_EINVAL, "'%s' must not be empty", key);
		*slot = value;
	} else if (!strcmp(key, "since")) {
		return kx_param_when(key, value, q->now, &f->since, q->err);
	} else if (!strcmp(key, "until")) {
		return kx_param_when(key, value, q->now, &f->until, q->err);
	} else if (!strcmp(key, "label")) {
		return label_param(f, value, q->err);
	} else if (!strcmp(key, "limit")) {
		if ((rc = kx_param_number(key, value, 1, KX_AUDIT_LIMIT_MAX, &n, q->err)))
			return rc;
		f->limit = (int)n;
	} else if (q->listing && !strcmp(key, "after_seq")) {
		if ((rc = kx_param_number(key, value, 0, INT64_MAX, &n, q->err)))
			return rc;
		f->after_seq = n;
	} else if (q->listing && !strcmp(key, "order")) {
		if (strcmp(value, "asc") && strcmp(value, "desc"))
			return kx_err_set(q->err, KX_EINVAL, "'order' must be asc or desc");
		f->oldest_first = !strcmp(value, "asc");
	} else if (q->listing && !strcmp(key, "format")) {
		if (!strcmp(value, "json"))
			q->format = FMT_JSON;
		else if (!strcmp(value, "ndjson"))
			q->format = FMT_NDJSON;
		else if (!strcmp(value, "csv"))
			q->format = FMT_CSV;
		else
			return kx_err_set(q->err, KX_EINVAL,
					  "unknown format '%.32s': use json, ndjson or csv", value);
	} else {
		return kx_err_set(q->err, KX_EINVAL, "unknown query parameter '%.64s'", key);
	}
	return 0;
}

/* Parses the query into f (initialised by the caller); 0 or answers the
 * error and returns its code. */
static int parse_query(struct kx_http_req *req, struct kx_http_resp *resp, struct audit_q *q)
{
	q->f->limit = 100;
	if (kx_http_query_each(req, audit_param, q)) {
		kx_http_error(resp, q->err->code, q->err->msg);
		return q->err->code;
	}
	if (q->f->since != KX_TIME_UNSET && q->f->until != KX_TIME_UNSET &&
	    q->f->since > q->f->until) {
		kx_http_error(resp, KX_EINVAL, "'since' is after 'until'");
		return KX_EINVAL;
	}
	return 0;
}

/* Writes events as NDJSON or CSV into the response body. */
static int write_lines(struct kx_http_resp *resp, const struct kx_audit_events *l, enum fmt fmt)
{
	kx_buf_clear(&resp->body);
	if (fmt == FMT_CSV && kx_enc_audit_csv_header(&resp->body))
		return KX_ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		json_t *j;
		int rc;
		if (fmt == FMT_CSV) {
			if (kx_enc_audit_csv_row(&resp->body, &l->v[i]))
				return KX_ENOMEM;
			continue;
		}
		j = kx_enc_audit_event(&l->v[i]);
		rc = kx_enc_dump(j, &resp->body, false) || kx_buf_addc(&resp->body, '\n');
		json_decref(j);
		if (rc)
			return KX_ENOMEM;
	}
	resp->status = 200;
	resp->content_type = fmt == FMT_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson";
	return 0;
}

void kx_h_audit_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_audit_filter f;
	struct kx_audit_events list = {0};
	struct kx_err err = {0};
	struct audit_q q = {&f, &err, req->now, true, FMT_JSON};
	json_t *arr;

	kx_audit_filter_init(&f);
	if (parse_query(req, resp, &q))
		goto out;
	if (kx_svc_audit_query(req->app, req->who, &f, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	if (q.format != FMT_JSON) {
		if (write_lines(resp, &list, q.format))
			kx_http_error(resp, KX_ENOMEM, "the answer is too large: ask for fewer events");
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < list.n; i++)
		json_array_append_new(arr, kx_enc_audit_event(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "events", arr));
out:
	kx_audit_events_release(&list);
	kx_audit_filter_release(&f);
}

static void groups(struct kx_http_req *req, struct kx_http_resp *resp, bool duplicates)
{
	struct kx_audit_filter f;
	struct kx_audit_groups g = {0};
	struct kx_err err = {0};
	struct audit_q q = {&f, &err, req->now, false, FMT_JSON};
	json_t *arr;
	int rc;

	kx_audit_filter_init(&f);
	if (parse_query(req, resp, &q))
		goto out;
	rc = duplicates ? kx_svc_audit_duplicates(req->app, req->who, &f, &g, &err)
			: kx_svc_audit_recipients(req->app, req->who, &f, &g, &err);
	if (rc) {
		kx_http_error(resp, err.code, err.msg);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < g.n; i++)
		json_array_append_new(arr, kx_enc_audit_group(&g.v[i], duplicates));
	kx_http_json(resp, 200,
		     json_pack("{s:o}", duplicates ? "duplicates" : "recipients", arr));
out:
	kx_audit_groups_release(&g);
	kx_audit_filter_release(&f);
}

void kx_h_audit_duplicates(struct kx_http_req *req, struct kx_http_resp *resp)
{
	groups(req, resp, true);
}

void kx_h_audit_recipients(struct kx_http_req *req, struct kx_http_resp *resp)
{
	groups(req, resp, false);
}

void kx_h_audit_verify(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_audit_verify v;
	struct kx_err err = {0};
	char hex[2 * KX_HASH_LEN + 1];
	json_t *j, *head;

	if (kx_svc_audit_verify(req->app, req->who, &v, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_hex(v.head_hash, KX_HASH_LEN, hex);
	head = v.head_seq ? json_pack("{s:I,s:s}", "seq", (json_int_t)v.head_seq, "hash", hex)
			  : json_null();
	if (v.intact)
		j = json_pack("{s:b,s:I,s:o}", "intact", 1, "events", (json_int_t)v.events, "head",
			      head);
	else
		j = json_pack("{s:b,s:I,s:I,s:s,s:o}", "intact", 0, "events", (json_int_t)v.events,
			      "broken_at", (json_int_t)v.broken_seq, "reason", v.reason, "head",
			      head);
	kx_http_json(resp, 200, j);
}
