#include "service/incidents.h"
#include "core/notify.h"
#include "core/record.h"
#include "core/text.h"
#include "service/audit.h"
#include "service/outbox.h"

#include <stdlib.h>
#include <string.h>

/* Clock skew tolerated on client-supplied times before they count as
 * "in the future". */
#define SKEW_MS 60000
/* 2000-01-01T00:00:00Z: anything earlier is a typo, not an incident. */
#define EARLIEST_MS 946684800000LL

void kx_declare_init(struct kx_declare *d)
{
	memset(d, 0, sizeof(*d));
	kx_labels_init(&d->labels);
	d->started_at = d->detected_at = KX_TIME_UNSET;
}

void kx_declare_release(struct kx_declare *d)
{
	kx_labels_release(&d->labels);
}

void kx_change_init(struct kx_change *c, enum kx_change_kind kind)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->expect_version = -1;
	c->impact.users = c->impact.accounts = c->impact.actions = -1;
}

static int check_time(const char *field, kx_ms t, kx_ms now, struct kx_err *err)
{
	if (t == KX_TIME_UNSET)
		return 0;
	if (t > now + SKEW_MS)
		return kx_err_set(err, KX_EINVAL, "'%s' is in the future", field);
	if (t < EARLIEST_MS)
		return kx_err_set(err, KX_EINVAL, "'%s' is before 2000-01-01", field);
	return 0;
}

static int check_types(const struct kx_config *cfg, const char *const *types, size_t n,
		       struct kx_err *err)
{
	if (n > 32)
		return kx_err_set(err, KX_EINVAL, "too many types (at most 32)");
	for (size_t i = 0; i < n; i++)
		if (!kx_config_type(cfg, types[i]))
			return kx_err_set(err, KX_EINVAL,
					  "unknown type '%.64s' (see GET /v1/types)", types[i]);
	return 0;
}

static int check_severity(const struct kx_config *cfg, const char *sev, struct kx_err *err)
{
	if (!kx_config_severity(cfg, sev))
		return kx_config_severity_error(cfg, sev, err);
	return 0;
}

static int add_entry(struct kx_tx *tx, const struct kx_token *who, const char *id,
		     const char *kind, const char *text, kx_ms at, struct kx_timeline_entry *out,
		     struct kx_err *err)
{
	struct kx_timeline_entry e = {0};
	int rc;
	e.at = at;
	e.author = who->name;
	e.kind = (char *)kind;
	e.text = (char *)text;
	rc = kx_store_timeline_add(tx, id, &e, err);
	if (!rc && out) {
		out->id = e.id;
		out->at = at;
		out->author = strdup(who->name);
		out->kind = strdup(kind);
		out->text = strdup(text);
		if (!out->author || !out->kind || !out->text) {
			kx_timeline_entry_release(out);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
	}
	return rc;
}

static int declare_text(struct kx_buf *b, const struct kx_incident *inc)
{
	int rc = kx_buf_addf(b, "declared %s: %s", inc->severity, inc->title);
	if (inc->ntypes) {
		rc |= kx_buf_adds(b, " [");
		for (size_t i = 0; i < inc->ntypes; i++)
			rc |= kx_buf_addf(b, "%s%s", i ? ", " : "", inc->types[i]);
		rc |= kx_buf_adds(b, "]");
	}
	if (inc->labels.n) {
		rc |= kx_buf_adds(b, " {");
		rc |= kx_labels_format(&inc->labels, b);
		rc |= kx_buf_adds(b, "}");
	}
	return rc ? KX_ENOMEM : 0;
}

int kx_svc_declare(const struct kx_app *app, const struct kx_token *who,
		   const struct kx_declare *d, kx_ms now, struct kx_incident *out,
		   struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_svc_declare_tx(app, tx, who, d, now, out, err))) {
		kx_store_rollback(tx);
		return rc;
	}
	if ((rc = kx_store_commit(tx, err)))
		kx_incident_release(out);
	return rc;
}

int kx_svc_declare_tx(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
		      const struct kx_declare *d, kx_ms now, struct kx_incident *out,
		      struct kx_err *err)
{
	struct kx_incident inc;
	struct kx_buf text;
	char day[9], at[KX_TIME_STRLEN];
	json_t *ev = NULL;
	int64_t seq;
	int rc;

	kx_incident_init(&inc);
	kx_buf_init(&text, 64 * 1024);
	if (!d->title)
		return kx_err_set(err, KX_EINVAL, "'title' is required");
	if (!d->severity)
		return kx_err_set(err, KX_EINVAL, "'severity' is required");
	if ((rc = kx_check_title(d->title, err)) || (rc = check_severity(app->cfg, d->severity, err)) ||
	    (d->summary && (rc = kx_check_text("summary", d->summary, err))) ||
	    (rc = check_types(app->cfg, d->types, d->ntypes, err)) ||
	    (rc = check_time("started_at", d->started_at, now, err)) ||
	    (rc = check_time("detected_at", d->detected_at, now, err)))
		goto out;
	if (d->started_at != KX_TIME_UNSET && d->detected_at != KX_TIME_UNSET &&
	    d->started_at > d->detected_at) {
		rc = kx_err_set(err, KX_EINVAL, "'started_at' is after 'detected_at'");
		goto out;
	}
	rc = KX_ENOMEM;
	if (!(inc.title = strdup(d->title)) || !(inc.severity = strdup(d->severity)) ||
	    (d->summary && !(inc.summary = strdup(d->summary))) ||
	    !(inc.created_by = strdup(who->name)) || kx_labels_copy(&inc.labels, &d->labels)) {
		kx_err_set(err, rc, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < d->ntypes; i++)
		if (kx_incident_add_type(&inc, d->types[i])) {
			kx_err_set(err, rc, "out of memory");
			goto out;
		}
	if ((rc = kx_labels_apply_scope(&inc.labels, &who->scope, err)))
		goto out;
	inc.status = KX_STATUS_INVESTIGATING;
	inc.started_at = d->started_at;
	inc.detected_at = d->detected_at != KX_TIME_UNSET ? d->detected_at : now;
	if (inc.started_at != KX_TIME_UNSET && inc.started_at > inc.detected_at)
		inc.started_at = inc.detected_at;
	inc.declared_at = now;
	inc.updated_at = now;
	inc.version = 1;
	if (declare_text(&text, &inc)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}

	kx_incident_day_key(day, now);
	if ((rc = kx_store_incident_next_seq(tx, day, &seq, err)))
		goto out;
	kx_incident_id_format(inc.id, now, seq);
	ev = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", inc.id, "title", inc.title,
		       "severity", inc.severity, "status", kx_status_name(inc.status), "labels",
		       kx_notify_labels_json(&inc.labels), "declared_at", kx_time_format(now, at));
	if ((rc = kx_store_incident_insert(tx, &inc, err)) ||
	    (rc = add_entry(tx, who, inc.id, "declared", kx_buf_str(&text), now, NULL, err)) ||
	    (rc = ev ? 0 : kx_err_set(err, KX_ENOMEM, "out of memory")) ||
	    (rc = kx_svc_outbox_emit(app, tx, "incident.declared", &inc.labels, ev, now, NULL,
				     err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "incident.declare", inc.id, &inc.labels, now,
				      err)))
		goto out;
	*out = inc;
	kx_incident_init(&inc);
out:
	kx_incident_release(&inc);
	kx_buf_release(&text);
	json_decref(ev);
	return rc;
}

/* Loads the incident if `who` may see it: one that exists outside the
 * caller's scope is reported exactly like one that does not exist. */
static int load_visible(struct kx_tx *tx, const struct kx_token *who, const char *id,
			struct kx_incident *out, struct kx_err *err)
{
	int rc;
	if (!kx_incident_id_valid(id))
		return kx_err_set(err, KX_ENOTFOUND, "incident '%.64s' not found", id);
	if ((rc = kx_store_incident_get(tx, id, out, err)))
		return rc;
	if (!kx_labels_match(&out->labels, &who->scope)) {
		kx_incident_release(out);
		return kx_err_set(err, KX_ENOTFOUND, "incident '%.64s' not found", id);
	}
	return 0;
}

/* Opens a write transaction on an incident the caller may see: on success
 * *tx is open; on failure nothing is left open. */
static int begin_on_visible(const struct kx_app *app, const struct kx_token *who,
			    const char *id, struct kx_tx **tx, struct kx_err *err)
{
	struct kx_incident inc;
	int rc = kx_store_begin(app->store, true, tx, err);
	if (rc)
		return rc;
	if ((rc = load_visible(*tx, who, id, &inc, err))) {
		kx_store_rollback(*tx);
		*tx = NULL;
		return rc;
	}
	kx_incident_release(&inc);
	return 0;
}

int kx_svc_incident_get(const struct kx_app *app, const struct kx_token *who, const char *id,
			struct kx_incident *out, struct kx_timeline *timeline,
			struct kx_action_items *items, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	if ((rc = load_visible(tx, who, id, out, err)))
		goto out;
	if (timeline && (rc = kx_store_timeline_list(tx, id, timeline, err))) {
		kx_incident_release(out);
		goto out;
	}
	if (items && (rc = kx_store_action_item_list(tx, id, items, err))) {
		if (timeline)
			kx_timeline_release(timeline);
		kx_incident_release(out);
	}
out:
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_incident_list(const struct kx_app *app, const struct kx_token *who,
			 struct kx_incident_filter *f, struct kx_incident_list *out,
			 struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	out->v = NULL;
	out->n = 0;
	for (size_t i = 0; i < who->scope.n; i++) {
		const char *v = kx_labels_get(&f->labels, who->scope.v[i].key);
		if (v && strcmp(v, who->scope.v[i].value) != 0)
			return 0; /* the filter asks for something outside the scope */
		if ((rc = kx_labels_set(&f->labels, who->scope.v[i].key, who->scope.v[i].value, err)))
			return rc;
	}
	if (f->severity && (rc = check_severity(app->cfg, f->severity, err)))
		return rc;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_incident_list(tx, f, out, err);
	kx_store_rollback(tx);
	return rc;
}

static const char *change_kind(enum kx_change_kind k, const struct kx_incident *before,
			       const struct kx_incident *after)
{
	switch (k) {
	case KX_CHANGE_STATUS:
		if (after->status == KX_STATUS_RESOLVED)
			return "resolved";
		return before->status == KX_STATUS_RESOLVED ? "reopened" : "status";
	case KX_CHANGE_SEVERITY: return "severity";
	case KX_CHANGE_ROLE: return "role";
	case KX_CHANGE_ACK: return "acknowledged";
	case KX_CHANGE_IMPACT: return "impact";
	case KX_CHANGE_RESOLVE: return "resolved";
	case KX_CHANGE_REOPEN: return "reopened";
	case KX_CHANGE_EDIT: return "edit";
	}
	return "change";
}

static int apply(const struct kx_app *app, const struct kx_token *who, struct kx_incident *inc,
		 const struct kx_change *c, kx_ms now, struct kx_buf *text, struct kx_err *err)
{
	int rc;
	switch (c->kind) {
	case KX_CHANGE_STATUS:
		return kx_incident_apply_status(inc, c->status, c->note, now, text, err);
	case KX_CHANGE_SEVERITY:
		if ((rc = check_severity(app->cfg, c->severity, err)))
			return rc;
		return kx_incident_apply_severity(inc, c->severity, c->note, now, text, err);
	case KX_CHANGE_ROLE:
		return kx_incident_apply_role(inc, c->role, c->person, c->remove, now, text, err);
	case KX_CHANGE_ACK:
		return kx_incident_apply_ack(inc, who->name, now, text, err);
	case KX_CHANGE_IMPACT:
		return kx_incident_apply_impact(inc, &c->impact, now, text, err);
	case KX_CHANGE_RESOLVE:
		return kx_incident_apply_resolve(inc, c->resolution, c->root_cause, now, text, err);
	case KX_CHANGE_REOPEN:
		return kx_incident_apply_reopen(inc, c->note, now, text, err);
	case KX_CHANGE_EDIT:
		if (c->edit.set_types &&
		    (rc = check_types(app->cfg, c->edit.types, c->edit.ntypes, err)))
			return rc;
		return kx_incident_apply_edit(inc, &c->edit, &who->scope, now, text, err);
	}
	return kx_err_set(err, KX_EINVAL, "unknown change");
}

/* The audit log's name for a change: every human change to an incident is
 * on record there too, with its author. */
static const char *audit_action(enum kx_change_kind k)
{
	switch (k) {
	case KX_CHANGE_STATUS: return "incident.status";
	case KX_CHANGE_SEVERITY: return "incident.severity";
	case KX_CHANGE_ROLE: return "incident.assign";
	case KX_CHANGE_ACK: return "incident.acknowledge";
	case KX_CHANGE_IMPACT: return "incident.impact";
	case KX_CHANGE_RESOLVE: return "incident.resolve";
	case KX_CHANGE_REOPEN: return "incident.reopen";
	default: return "incident.edit";
	}
}

int kx_svc_incident_change(const struct kx_app *app, const struct kx_token *who,
			   const char *id, const struct kx_change *c, kx_ms now,
			   struct kx_incident *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_svc_incident_change_tx(app, tx, who, id, c, now, out, err))) {
		kx_store_rollback(tx);
		return rc;
	}
	if ((rc = kx_store_commit(tx, err)))
		kx_incident_release(out);
	return rc;
}

/* The outbox event of a change, NULL when it sends none. */
static const char *change_event(enum kx_change_kind k, const struct kx_incident *before,
				const struct kx_incident *after)
{
	if (after->status == KX_STATUS_RESOLVED && before->status != KX_STATUS_RESOLVED)
		return "incident.resolved";
	if (after->status != before->status)
		return "incident.status_changed";
	if (k == KX_CHANGE_SEVERITY && strcmp(after->severity, before->severity))
		return "incident.severity_changed";
	return NULL;
}

static int emit_change(const struct kx_app *app, struct kx_tx *tx, const char *event,
		       const struct kx_incident *before, const struct kx_incident *inc, kx_ms now,
		       struct kx_err *err)
{
	char at[KX_TIME_STRLEN];
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "id", inc->id, "title",
			       inc->title, "severity", inc->severity, "status",
			       kx_status_name(inc->status), "previous_status",
			       kx_status_name(before->status), "previous_severity",
			       before->severity, "labels", kx_notify_labels_json(&inc->labels),
			       "at", kx_time_format(now, at));
	int rc;
	if (!ev)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	rc = kx_svc_outbox_emit(app, tx, event, &inc->labels, ev, now, NULL, err);
	json_decref(ev);
	return rc;
}

int kx_svc_incident_entry_tx(struct kx_tx *tx, const struct kx_token *who, const char *id,
			     const char *kind, const char *text, kx_ms now, struct kx_err *err)
{
	return add_entry(tx, who, id, kind, text, now, NULL, err);
}

int kx_svc_incident_change_tx(const struct kx_app *app, struct kx_tx *tx,
			      const struct kx_token *who, const char *id,
			      const struct kx_change *c, kx_ms now, struct kx_incident *out,
			      struct kx_err *err)
{
	struct kx_incident inc;
	struct kx_buf text;
	enum kx_status before;
	char before_sev[64];
	const char *event;
	int64_t version;
	int rc;

	kx_incident_init(&inc);
	kx_buf_init(&text, 64 * 1024);
	if ((rc = load_visible(tx, who, id, &inc, err)))
		goto out;
	snprintf(before_sev, sizeof(before_sev), "%s", inc.severity);
	if (c->expect_version >= 0 && c->expect_version != inc.version) {
		rc = kx_err_set(err, KX_ECONFLICT,
				"incident '%s' is at version %lld, not %lld: reload and retry", id,
				(long long)inc.version, (long long)c->expect_version);
		goto out;
	}
	version = inc.version;
	before = inc.status;
	if ((rc = apply(app, who, &inc, c, now, &text, err)))
		goto out;
	{
		struct kx_incident b = {.status = before};
		if ((rc = kx_store_incident_update(tx, &inc, version, err)) ||
		    (rc = add_entry(tx, who, id, change_kind(c->kind, &b, &inc), kx_buf_str(&text), now,
				    NULL, err)) ||
		    (rc = kx_svc_audit_record(app, tx, who, audit_action(c->kind), id, &inc.labels, now,
					      err)))
			goto out;
		b.severity = before_sev;
		if ((event = change_event(c->kind, &b, &inc)) &&
		    (rc = emit_change(app, tx, event, &b, &inc, now, err)))
			goto out;
	}
	*out = inc;
	kx_incident_init(&inc);
out:
	kx_incident_release(&inc);
	kx_buf_release(&text);
	return rc;
}

int kx_svc_incident_note(const struct kx_app *app, const struct kx_token *who, const char *id,
			 const char *text, kx_ms at, kx_ms now, struct kx_timeline_entry *out,
			 struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	if (!text || !*text)
		return kx_err_set(err, KX_EINVAL, "'text' is required");
	if ((rc = kx_check_text("text", text, err)) || (rc = check_time("at", at, now, err)))
		return rc;
	if ((rc = begin_on_visible(app, who, id, &tx, err)))
		return rc;
	if ((rc = add_entry(tx, who, id, "note", text, at == KX_TIME_UNSET ? now : at, out, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
	if (rc)
		kx_timeline_entry_release(out);
out:
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_timeline(const struct kx_app *app, const struct kx_token *who, const char *id,
		    struct kx_timeline *out, struct kx_err *err)
{
	struct kx_incident inc;
	int rc = kx_svc_incident_get(app, who, id, &inc, out, NULL, err);
	if (!rc)
		kx_incident_release(&inc);
	return rc;
}

int kx_svc_action_item_add(const struct kx_app *app, const struct kx_token *who,
			   const char *id, struct kx_action_item *a, kx_ms now,
			   struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	struct kx_buf text;
	int rc;

	if (!a->title || !*a->title)
		return kx_err_set(err, KX_EINVAL, "'title' is required");
	if ((rc = kx_check_title(a->title, err)) ||
	    (a->owner && (rc = kx_check_name("owner", a->owner, err))))
		return rc;
	a->done = false;
	a->created_at = now;
	a->done_at = KX_TIME_UNSET;
	kx_buf_init(&text, 64 * 1024);
	if ((rc = begin_on_visible(app, who, id, &tx, err)) ||
	    (rc = kx_store_action_item_add(tx, id, a, err)))
		goto out;
	if (kx_buf_addf(&text, "action item %lld added (%s): %s", (long long)a->number,
			kx_item_kind_name(a->kind), a->title)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (a->owner && kx_buf_addf(&text, ", owner %s", a->owner)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (a->due[0] && kx_buf_addf(&text, ", due %s", a->due)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = add_entry(tx, who, id, "action_item", kx_buf_str(&text), now, NULL, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	kx_buf_release(&text);
	return rc;
}

int kx_svc_action_item_done(const struct kx_app *app, const struct kx_token *who,
			    const char *id, int64_t number, kx_ms now,
			    struct kx_action_item *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	struct kx_buf text;
	int rc;

	memset(out, 0, sizeof(*out));
	kx_buf_init(&text, 64 * 1024);
	if ((rc = begin_on_visible(app, who, id, &tx, err)) ||
	    (rc = kx_store_action_item_get(tx, id, number, out, err)))
		goto out;
	if (out->done) {
		rc = kx_err_set(err, KX_ECONFLICT, "action item %lld is already done",
				(long long)number);
		goto out;
	}
	out->done = true;
	out->done_at = now;
	if (kx_buf_addf(&text, "action item %lld done: %s", (long long)number, out->title)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_action_item_update(tx, id, out, err)) ||
	    (rc = add_entry(tx, who, id, "action_item", kx_buf_str(&text), now, NULL, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	if (rc)
		kx_action_item_release(out);
	kx_store_rollback(tx);
	kx_buf_release(&text);
	return rc;
}

int kx_svc_action_items(const struct kx_app *app, const struct kx_token *who, const char *id,
			struct kx_action_items *out, struct kx_err *err)
{
	struct kx_incident inc;
	int rc = kx_svc_incident_get(app, who, id, &inc, NULL, out, err);
	if (!rc)
		kx_incident_release(&inc);
	return rc;
}

int kx_svc_incident_markdown(const struct kx_app *app, const struct kx_token *who,
			     const char *id, struct kx_buf *out, struct kx_err *err)
{
	struct kx_incident inc;
	struct kx_timeline tl;
	struct kx_action_items items;
	int rc = kx_svc_incident_get(app, who, id, &inc, &tl, &items, err);
	if (rc)
		return rc;
	if (kx_record_markdown(out, &inc, tl.v, tl.n, items.v, items.n, app->cfg))
		rc = kx_err_set(err, KX_ENOMEM, "the record is too large to render");
	kx_incident_release(&inc);
	kx_timeline_release(&tl);
	kx_action_items_release(&items);
	return rc;
}
