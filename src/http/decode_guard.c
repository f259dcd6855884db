/* decode_guard.c — guardrail request bodies (decode_guard.h). */
#include "http/decode_guard.h"
#include "http/decode.h"
#include "http/plainjson.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *body, size_t len, const char *const *keys, json_t **json,
		 struct kx_err *err)
{
	int rc = kx_json_parse_object(body, len, json, err);
	if (!rc && (rc = kx_json_check_keys(*json, keys, err))) {
		json_decref(*json);
		*json = NULL;
	}
	return rc;
}

static int fail(json_t **json, int rc)
{
	if (*json)
		json_decref(*json);
	*json = NULL;
	return rc;
}

/* A duration string field ("30m"); absent leaves *out. */
static int json_duration(json_t *obj, const char *key, kx_ms min, kx_ms max, kx_ms *out,
			 struct kx_err *err)
{
	const char *s;
	kx_ms d;
	int rc = kx_json_str(obj, key, false, &s, err);
	if (rc || !s)
		return rc;
	if (kx_duration_parse(s, &d))
		return kx_err_set(err, KX_EINVAL,
				  "cannot parse '%s': '%.64s' is not a duration like 30s, 15m, 2h or 1d",
				  key, s);
	if (d < min || d > max)
		return kx_err_set(err, KX_EINVAL, "'%s' must be %s", key,
				  min > 0 ? "longer than zero and at most 366d" : "0s to 366d");
	*out = d;
	return 0;
}

static int decode_action(json_t *obj, struct kx_gate_req *r, struct kx_err *err)
{
	static const char *const keys[] = {"labels", "idempotency_key", "read_only", NULL};
	int rc;
	if (!json_is_object(obj))
		return kx_err_set(err, KX_EINVAL, "an action must be a JSON object");
	if ((rc = kx_json_check_keys(obj, keys, err)) ||
	    (rc = kx_json_labels(obj, "labels", &r->labels, NULL, NULL, err)) ||
	    (rc = kx_json_str(obj, "idempotency_key", false, &r->idempotency_key, err)) ||
	    (rc = kx_json_bool(obj, "read_only", &r->read_only, err)))
		return rc;
	if (!json_object_get(obj, "labels"))
		return kx_err_set(err, KX_EINVAL, "'labels' is required");
	if (!r->labels.n)
		return kx_err_set(err, KX_EINVAL, "'labels' must name the action (at least one label)");
	return 0;
}

void kx_gate_reqs_free(struct kx_gate_req *reqs, size_t n)
{
	for (size_t i = 0; reqs && i < n; i++) {
		kx_labels_release(&reqs[i].labels);
		free(reqs[i].key_buf);
	}
	free(reqs);
}

/* ---- the fast path: one plain action, without a JSON tree ----
 *
 * The gate is asked before every automated action, and building a jansson
 * tree for a 200-byte body was a fifth of its time. This reader takes only
 * the usual shape — one action, keys labels / idempotency_key / read_only
 * in any order, printable-ASCII strings without escapes, each key once —
 * and says "not mine" (0) to anything else, every error included, which
 * then goes to the jansson path below: so both accept exactly the same
 * bodies with the same result (fuzz_guard checks it), and every message
 * comes from one place. */

static int fast_gate(const char *body, size_t len, struct kx_gate_req *req)
{
	struct kx_rd r = {body, body + len};
	bool labels = false, key = false, ro = false;
	char kname[32], kbuf[KX_GATE_KEY_MAX * 4 + 2];
	size_t n;

	if (!kx_rd_lit(&r, '{'))
		goto no;
	do {
		if (!kx_rd_string(&r, kname, sizeof(kname), &n) || !kx_rd_lit(&r, ':'))
			goto no;
		if (!strcmp(kname, "labels") && !labels) {
			labels = true;
			if (!kx_rd_labels(&r, &req->labels))
				goto no;
		} else if (!strcmp(kname, "idempotency_key") && !key) {
			key = true;
			if (!kx_rd_string(&r, kbuf, sizeof(kbuf), &n) ||
			    !(req->key_buf = strdup(kbuf)))
				goto no;
			req->idempotency_key = req->key_buf;
		} else if (!strcmp(kname, "read_only") && !ro) {
			ro = true;
			if (kx_rd_word(&r, "true"))
				req->read_only = true;
			else if (!kx_rd_word(&r, "false"))
				goto no;
		} else {
			goto no;
		}
	} while (kx_rd_lit(&r, ','));
	if (!kx_rd_lit(&r, '}') || !kx_rd_done(&r) || !labels)
		goto no;
	return 1;
no:
	kx_labels_release(&req->labels);
	kx_labels_init(&req->labels);
	free(req->key_buf);
	req->key_buf = NULL;
	req->idempotency_key = NULL;
	req->read_only = false;
	return 0;
}

int kx_decode_gate(const char *body, size_t len, struct kx_gate_req **reqs, size_t *n,
		   bool *batch, json_t **json, struct kx_err *err)
{
	struct kx_gate_req *one = calloc(1, sizeof(*one));
	if (one) {
		kx_labels_init(&one->labels);
		if (fast_gate(body, len, one)) {
			*reqs = one;
			*n = 1;
			*batch = false;
			*json = NULL;
			return 0;
		}
		free(one);
	}
	return kx_decode_gate_json(body, len, reqs, n, batch, json, err);
}

int kx_decode_gate_json(const char *body, size_t len, struct kx_gate_req **reqs, size_t *n,
			bool *batch, json_t **json, struct kx_err *err)
{
	json_t *arr, *item;
	size_t cnt, i;
	int rc;

	*reqs = NULL;
	*n = 0;
	*batch = false;
	if ((rc = kx_json_parse_object(body, len, json, err)))
		return rc;
	arr = json_object_get(*json, "actions");
	*batch = arr != NULL;
	if (!arr) {
		cnt = 1;
	} else {
		static const char *const keys[] = {"actions", NULL};
		if ((rc = kx_json_check_keys(*json, keys, err)))
			return fail(json, rc);
		if (!json_is_array(arr))
			return fail(json, kx_err_set(err, KX_EINVAL, "'actions' must be an array"));
		cnt = json_array_size(arr);
		if (cnt == 0 || cnt > KX_GATE_BATCH_MAX)
			return fail(json, kx_err_set(err, KX_EINVAL, "'actions' must hold 1 to %d actions",
						     KX_GATE_BATCH_MAX));
	}
	if (!(*reqs = calloc(cnt, sizeof(**reqs))))
		return fail(json, kx_err_set(err, KX_ENOMEM, "out of memory"));
	for (i = 0; i < cnt; i++)
		kx_labels_init(&(*reqs)[i].labels);
	*n = cnt;
	if (!arr) {
		rc = decode_action(*json, &(*reqs)[0], err);
	} else {
		json_array_foreach(arr, i, item) {
			struct kx_err e = {0};
			if ((rc = decode_action(item, &(*reqs)[i], &e))) {
				kx_err_set(err, rc, "action %zu: %s", i + 1, e.msg);
				break;
			}
		}
	}
	if (rc) {
		kx_gate_reqs_free(*reqs, *n);
		*reqs = NULL;
		*n = 0;
		return fail(json, rc);
	}
	return 0;
}

int kx_decode_switch(const char *body, size_t len, kx_ms now, struct kx_switch_req *out,
		     json_t **json, struct kx_err *err)
{
	static const char *const keys[] = {"selector", "mode",	   "reason",
					   "expires_in", "expires_at", "incident", NULL};
	const char *mode = NULL;
	kx_ms in = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->mode = KX_GATE_BLOCK;
	out->expires_at = KX_TIME_UNSET;
	if ((rc = parse(body, len, keys, json, err)))
		return rc;
	if ((rc = kx_json_str(*json, "selector", false, &out->selector, err)) ||
	    (rc = kx_json_str(*json, "mode", false, &mode, err)) ||
	    (rc = kx_json_str(*json, "reason", true, &out->reason, err)) ||
	    (rc = kx_json_str(*json, "incident", false, &out->incident, err)) ||
	    (rc = kx_json_time(*json, "expires_at", &out->expires_at, err)) ||
	    (rc = json_duration(*json, "expires_in", 1, KX_GATE_WINDOW_MAX, &in, err)))
		return fail(json, rc);
	if (mode && (rc = kx_gate_mode_parse(mode, &out->mode, err)))
		return fail(json, rc);
	if (in && out->expires_at != KX_TIME_UNSET)
		return fail(json, kx_err_set(err, KX_EINVAL,
					     "give 'expires_in' or 'expires_at', not both"));
	if (in)
		out->expires_at = now + in;
	if (!out->selector)
		out->selector = "";
	return 0;
}

int kx_decode_resume(const char *body, size_t len, struct kx_resume_req *out, json_t **json,
		     struct kx_err *err)
{
	static const char *const keys[] = {"ramp", "floor", "peak", "window", "reason", NULL};
	int64_t floor = -1, peak = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse(body, len, keys, json, err)))
		return rc;
	if ((rc = json_duration(*json, "ramp", 0, KX_GATE_WINDOW_MAX, &out->ramp, err)) ||
	    (rc = json_duration(*json, "window", 1, KX_GATE_WINDOW_MAX, &out->window, err)) ||
	    (rc = kx_json_int(*json, "floor", 0, KX_GATE_LIMIT_MAX, &floor, err)) ||
	    (rc = kx_json_int(*json, "peak", 1, KX_GATE_LIMIT_MAX, &peak, err)) ||
	    (rc = kx_json_str(*json, "reason", false, &out->reason, err)))
		return fail(json, rc);
	if (!out->ramp && (json_object_get(*json, "floor") || json_object_get(*json, "peak") ||
			   json_object_get(*json, "window")))
		return fail(json, kx_err_set(err, KX_EINVAL,
					     "'floor', 'peak' and 'window' shape a ramp: give 'ramp' too"));
	out->floor = floor < 0 ? KX_RAMP_DEFAULT : (uint32_t)floor;
	out->peak = (uint32_t)peak;
	return 0;
}

int kx_decode_one_string(const char *body, size_t len, const char *key, bool required,
			 const char **out, json_t **json, struct kx_err *err)
{
	const char *keys[] = {key, NULL};
	int rc;
	*out = NULL;
	if ((rc = parse(body, len, keys, json, err)))
		return rc;
	if ((rc = kx_json_str(*json, key, required, out, err)))
		return fail(json, rc);
	return 0;
}

/* "2h" back from now, or an RFC 3339 time. */
static int json_when(json_t *obj, const char *key, kx_ms now, kx_ms *out, struct kx_err *err)
{
	const char *s;
	kx_ms d;
	int rc = kx_json_str(obj, key, false, &s, err);
	if (rc || !s)
		return rc;
	if (kx_duration_parse(s, &d) == 0 && d >= 0) {
		*out = now - d;
		return 0;
	}
	if (kx_time_parse(s, out) == 0)
		return 0;
	return kx_err_set(err, KX_EINVAL,
			  "cannot parse '%s': '%.64s' is neither a duration (2h) nor an RFC 3339 time",
			  key, s);
}

int kx_decode_evidence(const char *body, size_t len, kx_ms now, struct kx_evidence_req *out,
		       json_t **json, struct kx_err *err)
{
	static const char *const keys[] = {"since",    "until", "account", "action", "client",
					   "platform", "lane",  "actor",   "limit",  NULL};
	int64_t limit = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->since = KX_TIME_UNSET;
	out->until = KX_TIME_UNSET;
	if ((rc = parse(body, len, keys, json, err)))
		return rc;
	if ((rc = json_when(*json, "since", now, &out->since, err)) ||
	    (rc = json_when(*json, "until", now, &out->until, err)) ||
	    (rc = kx_json_str(*json, "account", false, &out->account, err)) ||
	    (rc = kx_json_str(*json, "action", false, &out->action, err)) ||
	    (rc = kx_json_str(*json, "client", false, &out->client, err)) ||
	    (rc = kx_json_str(*json, "platform", false, &out->platform, err)) ||
	    (rc = kx_json_str(*json, "lane", false, &out->lane, err)) ||
	    (rc = kx_json_str(*json, "actor", false, &out->actor, err)) ||
	    (rc = kx_json_int(*json, "limit", 1, 1000, &limit, err)))
		return fail(json, rc);
	if (out->since != KX_TIME_UNSET && out->until != KX_TIME_UNSET && out->until <= out->since)
		return fail(json, kx_err_set(err, KX_EINVAL, "'until' must be after 'since'"));
	out->limit = (int)limit;
	return 0;
}
