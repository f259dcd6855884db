/* incidents.h — the incident use cases: declare, read, list, change.
 *
 * Every call takes the caller's token (`who`): its label scope limits what
 * it sees — an incident outside the scope is KX_ENOTFOUND, exactly as if it
 * did not exist — and its name is the author of the timeline entries. Each
 * change is one write transaction: the incident row and its timeline entry
 * commit together or not at all. Role checks (viewer/responder) are the
 * caller's (the HTTP router's) job.
 */
#ifndef KX_SVC_INCIDENTS_H
#define KX_SVC_INCIDENTS_H

#include "core/incident.h"
#include "core/token.h"
#include "service/app.h"
#include "store/store.h"

struct kx_declare {
	const char *title;
	const char *severity;
	const char *summary;
	const char *const *types;
	size_t ntypes;
	struct kx_labels labels;
	kx_ms started_at;  /* KX_TIME_UNSET: unknown */
	kx_ms detected_at; /* KX_TIME_UNSET: now */
};
void kx_declare_init(struct kx_declare *d);
void kx_declare_release(struct kx_declare *d); /* frees labels only */

int kx_svc_declare(const struct kx_app *app, const struct kx_token *who,
		   const struct kx_declare *d, kx_ms now, struct kx_incident *out,
		   struct kx_err *err);

/* The same inside the caller's write transaction (alert routing declares
 * in the transaction that stores the alert). */
int kx_svc_declare_tx(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
		      const struct kx_declare *d, kx_ms now, struct kx_incident *out,
		      struct kx_err *err);

/* timeline and items may be NULL when not wanted. */
int kx_svc_incident_get(const struct kx_app *app, const struct kx_token *who, const char *id,
			struct kx_incident *out, struct kx_timeline *timeline,
			struct kx_action_items *items, struct kx_err *err);

/* f->labels is merged with the caller's scope (a filter that contradicts
 * the scope finds nothing). */
int kx_svc_incident_list(const struct kx_app *app, const struct kx_token *who,
			 struct kx_incident_filter *f, struct kx_incident_list *out,
			 struct kx_err *err);

enum kx_change_kind {
	KX_CHANGE_STATUS,
	KX_CHANGE_SEVERITY,
	KX_CHANGE_ROLE,
	KX_CHANGE_ACK,
	KX_CHANGE_IMPACT,
	KX_CHANGE_RESOLVE,
	KX_CHANGE_REOPEN,
	KX_CHANGE_EDIT,
};

/* One change to an incident. Fields used per kind:
 * STATUS: status, note; SEVERITY: severity, note; ROLE: role, person, remove;
 * ACK: –; IMPACT: impact; RESOLVE: resolution, root_cause; REOPEN: note;
 * EDIT: edit. expect_version < 0: no optimistic check. */
struct kx_change {
	enum kx_change_kind kind;
	int64_t expect_version;
	enum kx_status status;
	const char *severity;
	const char *note;
	const char *role;
	const char *person;
	bool remove;
	struct kx_impact impact;
	const char *resolution;
	const char *root_cause;
	struct kx_incident_edit edit;
};
void kx_change_init(struct kx_change *c, enum kx_change_kind kind);

/* Applies c; on success out holds the incident as stored. */
int kx_svc_incident_change(const struct kx_app *app, const struct kx_token *who,
			   const char *id, const struct kx_change *c, kx_ms now,
			   struct kx_incident *out, struct kx_err *err);

/* The same inside the caller's write transaction. */
int kx_svc_incident_change_tx(const struct kx_app *app, struct kx_tx *tx,
			      const struct kx_token *who, const char *id,
			      const struct kx_change *c, kx_ms now, struct kx_incident *out,
			      struct kx_err *err);
/* A timeline entry of `kind` ("alert") by who, at now, in tx; the caller
 * has checked that the incident exists and who may see it. */
int kx_svc_incident_entry_tx(struct kx_tx *tx, const struct kx_token *who, const char *id,
			     const char *kind, const char *text, kx_ms now, struct kx_err *err);

/* A note on the timeline at `at` (KX_TIME_UNSET: now). */
int kx_svc_incident_note(const struct kx_app *app, const struct kx_token *who, const char *id,
			 const char *text, kx_ms at, kx_ms now, struct kx_timeline_entry *out,
			 struct kx_err *err);
int kx_svc_timeline(const struct kx_app *app, const struct kx_token *who, const char *id,
		    struct kx_timeline *out, struct kx_err *err);

/* Action items. a->title, kind, owner, due are read; number etc. set. */
int kx_svc_action_item_add(const struct kx_app *app, const struct kx_token *who,
			   const char *id, struct kx_action_item *a, kx_ms now,
			   struct kx_err *err);
int kx_svc_action_item_done(const struct kx_app *app, const struct kx_token *who,
			    const char *id, int64_t number, kx_ms now,
			    struct kx_action_item *out, struct kx_err *err);
int kx_svc_action_items(const struct kx_app *app, const struct kx_token *who, const char *id,
			struct kx_action_items *out, struct kx_err *err);

/* The Markdown record, appended to out. */
int kx_svc_incident_markdown(const struct kx_app *app, const struct kx_token *who,
			     const char *id, struct kx_buf *out, struct kx_err *err);

#endif
