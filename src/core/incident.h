/* incident.h — the incident model and the pure rules that change it.
 *
 * An incident is changed only through the kx_incident_apply_* functions:
 * each validates the change against the current state, mutates the
 * in-memory incident (bumping version and updated_at) and writes the
 * human-readable timeline text of the change into `text`. The caller
 * persists the incident and the timeline entry in one transaction. Nothing
 * here reads the clock: `now` is always a parameter.
 *
 * Invariants of a struct kx_incident:
 * - id is "INC-YYYYMMDD-NNN" (NNN at least three digits);
 * - title is non-empty; severity names a level of the config;
 * - resolved_at is set iff status is resolved;
 * - timestamps are KX_TIME_UNSET when unknown.
 */
#ifndef KX_INCIDENT_H
#define KX_INCIDENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/time.h"

#define KX_INCIDENT_ID_MAX 32
#define KX_TITLE_MAX 200         /* characters */
#define KX_TEXT_MAX (16 * 1024)  /* bytes: summary, notes, root cause… */
#define KX_NAME_MAX 128          /* bytes: people, authors, owners */
#define KX_REVENUE_MAX 64

enum kx_status {
	KX_STATUS_INVESTIGATING,
	KX_STATUS_IDENTIFIED,
	KX_STATUS_MONITORING,
	KX_STATUS_RESOLVED,
};

const char *kx_status_name(enum kx_status s);
int kx_status_parse(const char *s, enum kx_status *out, struct kx_err *err);

/* 0 when from → to is allowed, else KX_ECONFLICT with the reason. Active
 * statuses move freely among themselves and to resolved; resolved only goes
 * back to investigating (a reopen); a move to the current status is refused. */
int kx_status_check(enum kx_status from, enum kx_status to, struct kx_err *err);

/* Roles. Every role holds one person except "sme", which holds many. */
bool kx_role_valid(const char *role);
bool kx_role_multi(const char *role);
const char *kx_role_title(const char *role); /* "Incident commander" */
extern const char *const kx_roles[];          /* NULL-terminated */

struct kx_role {
	char *role;
	char *person;
};

struct kx_impact {
	int64_t users;    /* -1 when unknown */
	int64_t accounts; /* -1 when unknown */
	int64_t actions;  /* -1 when unknown */
	char *revenue;    /* NULL when unknown */
	char *description;
};

struct kx_incident {
	char id[KX_INCIDENT_ID_MAX];
	char *title;
	char *summary;
	char *severity;
	enum kx_status status;
	char **types;
	size_t ntypes;
	struct kx_labels labels;
	struct kx_role *roles;
	size_t nroles;
	struct kx_impact impact;
	char *root_cause;
	char *resolution;
	char *created_by;
	kx_ms started_at, detected_at, declared_at, acknowledged_at, mitigated_at,
		resolved_at, updated_at;
	int64_t version;
};

void kx_incident_init(struct kx_incident *inc);
void kx_incident_release(struct kx_incident *inc);

/* "INC-20261125-007" from the declaration instant and the day's sequence;
 * day_key gets "20261125" (9 bytes). */
void kx_incident_id_format(char out[KX_INCIDENT_ID_MAX], kx_ms declared, int64_t seq);
void kx_incident_day_key(char out[9], kx_ms declared);
/* True for a well-formed ID (does not say whether it exists). */
bool kx_incident_id_valid(const char *id);

/* Field checks shared by declaration and edits. */
int kx_check_title(const char *title, struct kx_err *err);
int kx_check_text(const char *field, const char *text, struct kx_err *err);
int kx_check_name(const char *field, const char *name, struct kx_err *err);

/* Type lists. */
int kx_incident_add_type(struct kx_incident *inc, const char *type);
bool kx_incident_has_type(const struct kx_incident *inc, const char *type);
void kx_incident_clear_types(struct kx_incident *inc);
/* Role holders. */
int kx_incident_add_role(struct kx_incident *inc, const char *role, const char *person);
const char *kx_incident_role_person(const struct kx_incident *inc, const char *role);

/* ---- changes (each: validate, mutate, describe in text) ---- */

int kx_incident_apply_status(struct kx_incident *inc, enum kx_status to, const char *note,
			     kx_ms now, struct kx_buf *text, struct kx_err *err);
int kx_incident_apply_severity(struct kx_incident *inc, const char *severity,
			       const char *note, kx_ms now, struct kx_buf *text,
			       struct kx_err *err);
/* Assigns (or with remove, takes off) person in role. Assigning a commander
 * acknowledges the incident if it was not yet. */
int kx_incident_apply_role(struct kx_incident *inc, const char *role, const char *person,
			   bool remove, kx_ms now, struct kx_buf *text, struct kx_err *err);
int kx_incident_apply_ack(struct kx_incident *inc, const char *who, kx_ms now,
			  struct kx_buf *text, struct kx_err *err);
/* Fields of `in` that are set (>= 0 or non-NULL) replace the stored ones. */
int kx_incident_apply_impact(struct kx_incident *inc, const struct kx_impact *in,
			     kx_ms now, struct kx_buf *text, struct kx_err *err);
int kx_incident_apply_resolve(struct kx_incident *inc, const char *resolution,
			      const char *root_cause, kx_ms now, struct kx_buf *text,
			      struct kx_err *err);
int kx_incident_apply_reopen(struct kx_incident *inc, const char *note, kx_ms now,
			     struct kx_buf *text, struct kx_err *err);

/* An edit: fields left NULL are not touched. types (when non-NULL) replaces
 * the list; labels_set are set and labels_unset removed. The scope (may be
 * empty) must still match afterwards, else KX_EFORBIDDEN. */
struct kx_incident_edit {
	const char *title;
	const char *summary;
	const char *root_cause;
	const char *const *types;
	size_t ntypes;
	bool set_types;
	const struct kx_labels *labels_set;
	const char *const *labels_unset;
	size_t nunset;
};
int kx_incident_apply_edit(struct kx_incident *inc, const struct kx_incident_edit *e,
			   const struct kx_labels *scope, kx_ms now, struct kx_buf *text,
			   struct kx_err *err);

/* ---- timeline and action items ---- */

struct kx_timeline_entry {
	int64_t id;
	kx_ms at;
	char *author;
	char *kind;
	char *text;
};
void kx_timeline_entry_release(struct kx_timeline_entry *e);

enum kx_item_kind { KX_ITEM_MITIGATE, KX_ITEM_PREVENT, KX_ITEM_DETECT };
const char *kx_item_kind_name(enum kx_item_kind k);
int kx_item_kind_parse(const char *s, enum kx_item_kind *out, struct kx_err *err);

struct kx_action_item {
	int64_t number; /* 1, 2, … within the incident */
	char *title;
	enum kx_item_kind kind;
	char *owner; /* may be NULL */
	char due[11]; /* "YYYY-MM-DD" or "" */
	bool done;
	kx_ms created_at;
	kx_ms done_at;
};
void kx_action_item_release(struct kx_action_item *a);

#endif
