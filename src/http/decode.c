#include "http/decode.h"
#include "http/plainjson.h"

#include <errno.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kx_decoded_release(struct kx_decoded *d)
{
	if (d->json)
		json_decref(d->json);
	free(d->types);
	free(d->unset);
	kx_labels_release(&d->labels);
	memset(d, 0, sizeof(*d));
	kx_labels_init(&d->labels);
}

int kx_json_parse_object(const char *body, size_t len, json_t **out, struct kx_err *err)
{
	json_error_t je;
	json_t *j;

	*out = NULL;
	if (len == 0) {
		*out = json_object();
		return *out ? 0 : kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return kx_err_set(err, KX_EJSON, "invalid JSON at line %d column %d: %s", je.line,
				  je.column, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return kx_err_set(err, KX_EJSON, "the request body must be a JSON object");
	}
	*out = j;
	return 0;
}

int kx_json_check_keys(json_t *obj, const char *const *allowed, struct kx_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0) {
				ok = true;
				break;
			}
		if (!ok)
			return kx_err_set(err, KX_EINVAL, "unknown field '%.64s'", key);
	}
	return 0;
}

int kx_json_str(json_t *obj, const char *key, bool required, const char **out,
		struct kx_err *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return kx_err_set(err, KX_EINVAL, "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return kx_err_set(err, KX_EINVAL, "'%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int kx_json_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
		struct kx_err *err)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return kx_err_set(err, KX_EINVAL, "'%s' must be a whole number", key);
	n = json_integer_value(v);
	if (n < min || n > max)
		return kx_err_set(err, KX_EINVAL, "'%s' must be between %lld and %lld", key,
				  (long long)min, (long long)max);
	*out = n;
	return 0;
}

int kx_json_bool(json_t *obj, const char *key, bool *out, struct kx_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return kx_err_set(err, KX_EINVAL, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int kx_json_time(json_t *obj, const char *key, kx_ms *out, struct kx_err *err)
{
	const char *s;
	int rc = kx_json_str(obj, key, false, &s, err);
	if (rc || !s)
		return rc;
	if (kx_time_parse(s, out))
		return kx_err_set(err, KX_EINVAL,
				  "cannot parse '%s': '%.64s' is not an RFC 3339 time like 2026-11-25T14:00:00Z",
				  key, s);
	return 0;
}

int kx_json_labels(json_t *obj, const char *key, struct kx_labels *out, const char ***unset,
		   size_t *nunset, struct kx_err *err)
{
	json_t *v = json_object_get(obj, key), *val;
	const char *k;
	int rc;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return kx_err_set(err, KX_EINVAL, "'%s' must be an object of \"key\": \"value\"", key);
	if (json_object_size(v) > KX_LABELS_MAX)
		return kx_err_set(err, KX_EINVAL, "too many labels (at most %d)", KX_LABELS_MAX);
	if (unset) {
		*unset = calloc(json_object_size(v) + 1, sizeof(**unset));
		*nunset = 0;
		if (!*unset)
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	json_object_foreach(v, k, val) {
		if (json_is_null(val) && unset) {
			if ((rc = kx_label_key_check(k, err)))
				return rc;
			(*unset)[(*nunset)++] = k;
			continue;
		}
		if (!json_is_string(val))
			return kx_err_set(err, KX_EINVAL, "label '%.64s' must have a string value", k);
		if ((rc = kx_labels_set(out, k, json_string_value(val), err)))
			return rc;
	}
	return 0;
}

int kx_json_strings(json_t *obj, const char *key, const char ***out, size_t *n, bool *present,
		    struct kx_err *err)
{
	json_t *v = json_object_get(obj, key), *item;
	size_t i;

	*out = NULL;
	*n = 0;
	if (present)
		*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return kx_err_set(err, KX_EINVAL, "'%s' must be an array of strings", key);
	if (json_array_size(v) > 64)
		return kx_err_set(err, KX_EINVAL, "'%s' has more than 64 entries", key);
	if (present)
		*present = true;
	*out = calloc(json_array_size(v) + 1, sizeof(**out));
	if (!*out)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		if (!json_is_string(item))
			return kx_err_set(err, KX_EINVAL, "'%s' must be an array of strings", key);
		(*out)[(*n)++] = json_string_value(item);
	}
	return 0;
}

static int begin(const char *body, size_t len, const char *const *allowed,
		 struct kx_decoded *hold, struct kx_err *err)
{
	int rc;
	memset(hold, 0, sizeof(*hold));
	kx_labels_init(&hold->labels);
	if ((rc = kx_json_parse_object(body, len, &hold->json, err)))
		return rc;
	return kx_json_check_keys(hold->json, allowed, err);
}

int kx_decode_declare(const char *body, size_t len, struct kx_declare *d,
		      struct kx_decoded *hold, struct kx_err *err)
{
	static const char *const keys[] = {"title", "severity", "summary", "types", "labels",
					   "started_at", "detected_at", NULL};
	int rc;

	kx_declare_init(d);
	if ((rc = begin(body, len, keys, hold, err)) ||
	    (rc = kx_json_str(hold->json, "title", true, &d->title, err)) ||
	    (rc = kx_json_str(hold->json, "severity", true, &d->severity, err)) ||
	    (rc = kx_json_str(hold->json, "summary", false, &d->summary, err)) ||
	    (rc = kx_json_strings(hold->json, "types", &hold->types, &d->ntypes, NULL, err)) ||
	    (rc = kx_json_labels(hold->json, "labels", &d->labels, NULL, NULL, err)) ||
	    (rc = kx_json_time(hold->json, "started_at", &d->started_at, err)) ||
	    (rc = kx_json_time(hold->json, "detected_at", &d->detected_at, err)))
		return rc;
	d->types = hold->types;
	return 0;
}

static int decode_status(json_t *j, struct kx_change *c, struct kx_err *err)
{
	const char *s;
	int rc;
	if ((rc = kx_json_str(j, "status", true, &s, err)) ||
	    (rc = kx_status_parse(s, &c->status, err)))
		return rc;
	return kx_json_str(j, "note", false, &c->note, err);
}

static int decode_impact(json_t *j, struct kx_change *c, struct kx_err *err)
{
	const int64_t max = INT64_C(1) << 53;
	int rc;
	if ((rc = kx_json_int(j, "users", 0, max, &c->impact.users, err)) ||
	    (rc = kx_json_int(j, "accounts", 0, max, &c->impact.accounts, err)) ||
	    (rc = kx_json_int(j, "actions", 0, max, &c->impact.actions, err)))
		return rc;
	if ((rc = kx_json_str(j, "revenue", false, (const char **)&c->impact.revenue, err)))
		return rc;
	return kx_json_str(j, "description", false, (const char **)&c->impact.description, err);
}

static int decode_edit(json_t *j, struct kx_change *c, struct kx_decoded *hold,
		       struct kx_err *err)
{
	struct kx_incident_edit *e = &c->edit;
	int rc;
	if ((rc = kx_json_str(j, "title", false, &e->title, err)) ||
	    (rc = kx_json_str(j, "summary", false, &e->summary, err)) ||
	    (rc = kx_json_str(j, "root_cause", false, &e->root_cause, err)) ||
	    (rc = kx_json_strings(j, "types", &hold->types, &e->ntypes, &e->set_types, err)) ||
	    (rc = kx_json_labels(j, "labels", &hold->labels, &hold->unset, &e->nunset, err)))
		return rc;
	e->types = hold->types;
	e->labels_set = &hold->labels;
	e->labels_unset = hold->unset;
	return 0;
}

int kx_decode_change(const char *body, size_t len, enum kx_change_kind kind,
		     struct kx_change *c, struct kx_decoded *hold, struct kx_err *err)
{
	static const char *const k_status[] = {"status", "note", "version", NULL};
	static const char *const k_sev[] = {"severity", "note", "version", NULL};
	static const char *const k_role[] = {"role", "person", "remove", "version", NULL};
	static const char *const k_ack[] = {"version", NULL};
	static const char *const k_impact[] = {"users", "accounts", "actions", "revenue",
					       "description", "version", NULL};
	static const char *const k_resolve[] = {"resolution", "root_cause", "version", NULL};
	static const char *const k_reopen[] = {"note", "version", NULL};
	static const char *const k_edit[] = {"title", "summary", "root_cause", "types", "labels",
					     "version", NULL};
	static const char *const *const keys[] = {
		[KX_CHANGE_STATUS] = k_status, [KX_CHANGE_SEVERITY] = k_sev,
		[KX_CHANGE_ROLE] = k_role,     [KX_CHANGE_ACK] = k_ack,
		[KX_CHANGE_IMPACT] = k_impact, [KX_CHANGE_RESOLVE] = k_resolve,
		[KX_CHANGE_REOPEN] = k_reopen, [KX_CHANGE_EDIT] = k_edit,
	};
	json_t *j;
	int rc;

	kx_change_init(c, kind);
	if ((rc = begin(body, len, keys[kind], hold, err)))
		return rc;
	j = hold->json;
	if ((rc = kx_json_int(j, "version", 1, INT64_MAX, &c->expect_version, err)))
		return rc;
	switch (kind) {
	case KX_CHANGE_STATUS:
		return decode_status(j, c, err);
	case KX_CHANGE_SEVERITY:
		if ((rc = kx_json_str(j, "severity", true, &c->severity, err)))
			return rc;
		return kx_json_str(j, "note", false, &c->note, err);
	case KX_CHANGE_ROLE:
		if ((rc = kx_json_str(j, "role", true, &c->role, err)) ||
		    (rc = kx_json_str(j, "person", true, &c->person, err)))
			return rc;
		return kx_json_bool(j, "remove", &c->remove, err);
	case KX_CHANGE_ACK:
		return 0;
	case KX_CHANGE_IMPACT:
		return decode_impact(j, c, err);
	case KX_CHANGE_RESOLVE:
		if ((rc = kx_json_str(j, "resolution", true, &c->resolution, err)))
			return rc;
		return kx_json_str(j, "root_cause", false, &c->root_cause, err);
	case KX_CHANGE_REOPEN:
		return kx_json_str(j, "note", false, &c->note, err);
	case KX_CHANGE_EDIT:
		return decode_edit(j, c, hold, err);
	}
	return kx_err_set(err, KX_EINVAL, "unknown change");
}

int kx_decode_note(const char *body, size_t len, const char **text, kx_ms *at,
		   struct kx_decoded *hold, struct kx_err *err)
{
	static const char *const keys[] = {"text", "at", NULL};
	int rc;
	*at = KX_TIME_UNSET;
	if ((rc = begin(body, len, keys, hold, err)) ||
	    (rc = kx_json_str(hold->json, "text", true, text, err)))
		return rc;
	return kx_json_time(hold->json, "at", at, err);
}

int kx_decode_action_item(const char *body, size_t len, struct kx_action_item *a,
			  struct kx_decoded *hold, struct kx_err *err)
{
	static const char *const keys[] = {"title", "kind", "owner", "due", NULL};
	const char *kind, *due, *title, *owner;
	int y, m, d, rc;

	memset(a, 0, sizeof(*a));
	if ((rc = begin(body, len, keys, hold, err)) ||
	    (rc = kx_json_str(hold->json, "title", true, &title, err)) ||
	    (rc = kx_json_str(hold->json, "kind", true, &kind, err)) ||
	    (rc = kx_item_kind_parse(kind, &a->kind, err)) ||
	    (rc = kx_json_str(hold->json, "owner", false, &owner, err)) ||
	    (rc = kx_json_str(hold->json, "due", false, &due, err)))
		return rc;
	if (due) {
		if (kx_date_parse(due, &y, &m, &d))
			return kx_err_set(err, KX_EINVAL,
					  "cannot parse 'due': '%.32s' is not a date like 2026-12-01", due);
		memcpy(a->due, due, 10);
		a->due[10] = '\0';
	}
	/* The item borrows these; the service copies nothing, the handler
	 * keeps hold alive. Cast away const: the item type owns in general. */
	a->title = (char *)title;
	a->owner = (char *)owner;
	return 0;
}

int kx_decode_token(const char *body, size_t len, enum kx_access *role, const char **name,
		    struct kx_decoded *hold, struct kx_err *err)
{
	static const char *const keys[] = {"role", "name", "labels", NULL};
	const char *r;
	int rc;
	if ((rc = begin(body, len, keys, hold, err)) ||
	    (rc = kx_json_str(hold->json, "role", true, &r, err)) ||
	    (rc = kx_access_parse(r, role, err)) ||
	    (rc = kx_json_str(hold->json, "name", true, name, err)))
		return rc;
	return kx_json_labels(hold->json, "labels", &hold->labels, NULL, NULL, err);
}

/* ---- audit events ---- */

int kx_decode_audit_event(json_t *obj, kx_ms now, struct kx_audit_event *e, struct kx_err *err)
{
	static const char *const keys[] = {
		"at",	   "actor",	   "client",	   "account",	   "platform",
		"lane",	   "action",	   "target",	   "content_hash", "outcome",
		"trace_id", "artifact_url", "idempotency_key", "labels", NULL,
	};
	int rc;

	kx_audit_event_init(e);
	if (!json_is_object(obj))
		return kx_err_set(err, KX_EINVAL, "an event must be a JSON object");
	if ((rc = kx_json_check_keys(obj, keys, err)) ||
	    (rc = kx_json_time(obj, "at", &e->at, err)))
		goto fail;
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		const char *name = kx_audit_field_names[i], *v;
		bool required = !strcmp(name, "actor") || !strcmp(name, "action");
		if ((rc = kx_json_str(obj, name, required, &v, err)))
			goto fail;
		if (v && !(*kx_audit_field(e, i) = strdup(v))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if ((rc = kx_json_labels(obj, "labels", &e->labels, NULL, NULL, err)))
		goto fail;
	if (e->at == KX_TIME_UNSET)
		e->at = now;
	if ((rc = kx_audit_event_check(e, now, err)))
		goto fail;
	return 0;
fail:
	kx_audit_event_release(e);
	return rc;
}

/* The usual event line without a JSON tree (see plainjson.h): known keys
 * once each, plain strings, labels of plain strings, an RFC 3339 "at". 1:
 * decoded and checked, into e; 0: not this path's (e left empty), let
 * jansson decide — which also words every error. */
int kx_decode_audit_line_fast(const char *p, size_t len, kx_ms now, struct kx_audit_event *e)
{
	struct kx_rd r = {p, p + len};
	bool seen[KX_AUDIT_NFIELDS + 2] = {false};
	char key[32], ts[64];
	size_t n;

	kx_audit_event_init(e);
	if (!kx_rd_lit(&r, '{') || kx_rd_lit(&r, '}'))
		goto no;
	do {
		size_t i;
		if (!kx_rd_string(&r, key, sizeof(key), &n) || !kx_rd_lit(&r, ':'))
			goto no;
		for (i = 0; i < KX_AUDIT_NFIELDS; i++)
			if (!strcmp(key, kx_audit_field_names[i]))
				break;
		if (i < KX_AUDIT_NFIELDS) {
			const char *v;
			if (seen[i] || !kx_rd_span(&r, &v, &n) ||
			    !(*kx_audit_field(e, i) = strndup(v, n)))
				goto no;
			seen[i] = true;
		} else if (!strcmp(key, "at")) {
			if (seen[KX_AUDIT_NFIELDS] || !kx_rd_string(&r, ts, sizeof(ts), &n) ||
			    kx_time_parse(ts, &e->at))
				goto no;
			seen[KX_AUDIT_NFIELDS] = true;
		} else if (!strcmp(key, "labels")) {
			if (seen[KX_AUDIT_NFIELDS + 1] || !kx_rd_labels(&r, &e->labels))
				goto no;
			seen[KX_AUDIT_NFIELDS + 1] = true;
		} else {
			goto no;
		}
	} while (kx_rd_lit(&r, ','));
	if (!kx_rd_lit(&r, '}') || !kx_rd_done(&r) || !e->actor || !e->action)
		goto no;
	if (e->at == KX_TIME_UNSET)
		e->at = now;
	if (kx_audit_event_check(e, now, NULL))
		goto no;
	return 1;
no:
	kx_audit_event_release(e);
	kx_audit_event_init(e);
	return 0;
}

/* Makes room for one more event in out; 0 or KX_ENOMEM. */
static int grow_events(struct kx_audit_events *out, size_t *cap, struct kx_err *err)
{
	struct kx_audit_event *v;
	size_t nc;
	if (out->n < *cap)
		return 0;
	if (out->n >= KX_AUDIT_BATCH_MAX)
		return kx_err_set(err, KX_EINVAL, "too many events in one request (at most %d)",
				  KX_AUDIT_BATCH_MAX);
	nc = *cap ? *cap * 2 : 8;
	if (!(v = realloc(out->v, nc * sizeof(*v))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	out->v = v;
	*cap = nc;
	return 0;
}

/* Prefixes err's message with what (a line or an event number). */
static int name_it(struct kx_err *err, const char *what, size_t n, int rc)
{
	char msg[sizeof(err->msg)];
	if (!err)
		return rc;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	return kx_err_set(err, rc, "%s %zu: %s", what, n, msg);
}

static int decode_ndjson(const char *body, size_t len, kx_ms now, struct kx_audit_events *out,
			 struct kx_err *err)
{
	const char *p = body, *end = body + len;
	size_t line = 0, cap = 0;
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *q;
		json_error_t je;
		json_t *j;

		line++;
		for (q = p; q < eol && (*q == ' ' || *q == '\t' || *q == '\r'); q++)
			;
		if (q == eol) { /* a blank line */
			p = nl ? nl + 1 : end;
			continue;
		}
		if ((rc = grow_events(out, &cap, err)))
			return rc;
		if (kx_decode_audit_line_fast(p, (size_t)(eol - p), now, &out->v[out->n])) {
			out->n++;
			p = nl ? nl + 1 : end;
			continue;
		}
		j = json_loadb(p, (size_t)(eol - p), JSON_REJECT_DUPLICATES, &je);
		if (!j)
			return kx_err_set(err, KX_EJSON, "line %zu: invalid JSON at column %d: %s",
					  line, je.column, je.text);
		if (!json_is_object(j)) {
			json_decref(j);
			return kx_err_set(err, KX_EJSON, "line %zu: not a JSON object", line);
		}
		rc = kx_decode_audit_event(j, now, &out->v[out->n], err);
		json_decref(j);
		if (rc)
			return name_it(err, "line", line, rc);
		out->n++;
		p = nl ? nl + 1 : end;
	}
	if (out->n == 0)
		return kx_err_set(err, KX_EINVAL, "no events: the body has no lines");
	return 0;
}

static int decode_json(const char *body, size_t len, kx_ms now, struct kx_audit_events *out,
		       struct kx_err *err)
{
	static const char *const batch_keys[] = {"events", NULL};
	json_t *j, *events, *item;
	size_t i, cap = 0;
	int rc;

	if ((rc = kx_json_parse_object(body, len, &j, err)))
		return rc;
	events = json_object_get(j, "events");
	if (!events) {
		if (!(rc = grow_events(out, &cap, err)) &&
		    !(rc = kx_decode_audit_event(j, now, &out->v[0], err)))
			out->n = 1;
		goto out;
	}
	if ((rc = kx_json_check_keys(j, batch_keys, err)))
		goto out;
	if (!json_is_array(events) || json_array_size(events) == 0) {
		rc = kx_err_set(err, KX_EINVAL, "'events' must be a non-empty array of events");
		goto out;
	}
	json_array_foreach(events, i, item) {
		if ((rc = grow_events(out, &cap, err)))
			goto out;
		if ((rc = kx_decode_audit_event(item, now, &out->v[out->n], err))) {
			rc = name_it(err, "event", i + 1, rc);
			goto out;
		}
		out->n++;
	}
out:
	json_decref(j);
	return rc;
}

int kx_decode_audit(const char *body, size_t len, bool ndjson, kx_ms now,
		    struct kx_audit_events *out, struct kx_err *err)
{
	int rc;
	out->v = NULL;
	out->n = 0;
	rc = ndjson ? decode_ndjson(body, len, now, out, err) : decode_json(body, len, now, out, err);
	if (rc)
		kx_audit_events_release(out);
	return rc;
}

/* ---- query parameters ---- */

/* A duration back from now ("2h") or an RFC 3339 time. */
int kx_param_when(const char *key, const char *value, kx_ms now, kx_ms *out,
		  struct kx_err *err)
{
	kx_ms d;
	if (!kx_duration_parse(value, &d)) {
		*out = now - d;
		return 0;
	}
	if (!kx_time_parse(value, out))
		return 0;
	return kx_err_set(err, KX_EINVAL,
			  "cannot parse '%s': '%.40s' is neither a duration like 2h nor an RFC 3339 "
			  "time like 2026-11-25T14:00:00Z",
			  key, value);
}

int kx_param_number(const char *key, const char *value, long long min, long long max,
		    long long *out, struct kx_err *err)
{
	char *end;
	long long n;
	errno = 0;
	n = strtoll(value, &end, 10);
	if (errno || end == value || *end || n < min || n > max)
		return kx_err_set(err, KX_EINVAL, "'%s' must be a number from %lld to %lld", key, min,
				  max);
	*out = n;
	return 0;
}
