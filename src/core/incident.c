#include "core/incident.h"
#include "core/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {"investigating", "identified", "monitoring",
					   "resolved"};

const char *kx_status_name(enum kx_status s)
{
	return (unsigned)s < 4 ? status_names[s] : "unknown";
}

int kx_status_parse(const char *s, enum kx_status *out, struct kx_err *err)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum kx_status)i;
			return 0;
		}
	}
	return kx_err_set(err, KX_EINVAL,
			  "unknown status '%.64s': use investigating, identified, monitoring or resolved",
			  s);
}

int kx_status_check(enum kx_status from, enum kx_status to, struct kx_err *err)
{
	if (from == to)
		return kx_err_set(err, KX_ECONFLICT, "incident is already %s", kx_status_name(to));
	if (from == KX_STATUS_RESOLVED && to != KX_STATUS_INVESTIGATING)
		return kx_err_set(err, KX_ECONFLICT,
				  "cannot move a resolved incident to %s: reopen it first",
				  kx_status_name(to));
	return 0;
}

const char *const kx_roles[] = {"commander", "ops_lead", "tech_lead", "comms_lead", "scribe",
				"sme", NULL};
static const char *const role_titles[] = {"Incident commander", "Ops lead", "Tech lead",
					  "Comms lead", "Scribe", "Subject-matter expert"};

static int role_index(const char *role)
{
	for (int i = 0; kx_roles[i]; i++)
		if (strcmp(role, kx_roles[i]) == 0)
			return i;
	return -1;
}

bool kx_role_valid(const char *role)
{
	return role_index(role) >= 0;
}

bool kx_role_multi(const char *role)
{
	return strcmp(role, "sme") == 0;
}

const char *kx_role_title(const char *role)
{
	int i = role_index(role);
	return i >= 0 ? role_titles[i] : role;
}

void kx_incident_init(struct kx_incident *inc)
{
	memset(inc, 0, sizeof(*inc));
	kx_labels_init(&inc->labels);
	inc->impact.users = inc->impact.accounts = inc->impact.actions = -1;
	inc->started_at = inc->detected_at = inc->declared_at = inc->acknowledged_at =
		inc->mitigated_at = inc->resolved_at = inc->updated_at = KX_TIME_UNSET;
}

void kx_incident_clear_types(struct kx_incident *inc)
{
	for (size_t i = 0; i < inc->ntypes; i++)
		free(inc->types[i]);
	free(inc->types);
	inc->types = NULL;
	inc->ntypes = 0;
}

void kx_incident_release(struct kx_incident *inc)
{
	free(inc->title);
	free(inc->summary);
	free(inc->severity);
	kx_incident_clear_types(inc);
	kx_labels_release(&inc->labels);
	for (size_t i = 0; i < inc->nroles; i++) {
		free(inc->roles[i].role);
		free(inc->roles[i].person);
	}
	free(inc->roles);
	free(inc->impact.revenue);
	free(inc->impact.description);
	free(inc->root_cause);
	free(inc->resolution);
	free(inc->created_by);
	kx_incident_init(inc);
}

void kx_incident_day_key(char out[9], kx_ms declared)
{
	struct kx_civil c;
	kx_civil_from_ms(declared, &c);
	unsigned y = c.year < 0 ? 0u : (unsigned)c.year % 10000u;
	unsigned m = (unsigned)c.month % 100u, d = (unsigned)c.day % 100u;
	char tmp[16];
	snprintf(tmp, sizeof(tmp), "%04u%02u%02u", y, m, d);
	memcpy(out, tmp, 8);
	out[8] = '\0';
}

void kx_incident_id_format(char out[KX_INCIDENT_ID_MAX], kx_ms declared, int64_t seq)
{
	char day[9];
	kx_incident_day_key(day, declared);
	snprintf(out, KX_INCIDENT_ID_MAX, "INC-%s-%03lld", day, (long long)seq);
}

bool kx_incident_id_valid(const char *id)
{
	size_t n = strlen(id);
	int y, m, d;
	char date[11];

	if (n < 16 || n > 22 || strncmp(id, "INC-", 4) != 0 || id[12] != '-')
		return false;
	for (size_t i = 4; i < n; i++)
		if (i != 12 && (id[i] < '0' || id[i] > '9'))
			return false;
	snprintf(date, sizeof(date), "%.4s-%.2s-%.2s", id + 4, id + 8, id + 10);
	if (kx_date_parse(date, &y, &m, &d))
		return false;
	return !(n > 16 && id[13] == '0'); /* no padding beyond three digits */
}

int kx_check_title(const char *title, struct kx_err *err)
{
	size_t n = strlen(title), chars;
	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "'title' is empty");
	if (kx_text_check(title, n, 0))
		return kx_err_set(err, KX_EINVAL,
				  "'title' has control characters or invalid UTF-8");
	chars = kx_text_chars(title, n);
	if (chars > KX_TITLE_MAX)
		return kx_err_set(err, KX_EINVAL, "'title' is %zu characters long, at most %d allowed",
				  chars, KX_TITLE_MAX);
	return 0;
}

int kx_check_text(const char *field, const char *text, struct kx_err *err)
{
	size_t n = strlen(text);
	if (n > KX_TEXT_MAX)
		return kx_err_set(err, KX_EINVAL, "'%s' is %zu bytes long, at most %d allowed", field,
				  n, KX_TEXT_MAX);
	if (kx_text_check(text, n, KX_TEXT_MULTILINE))
		return kx_err_set(err, KX_EINVAL, "'%s' has control characters or invalid UTF-8",
				  field);
	return 0;
}

int kx_check_name(const char *field, const char *name, struct kx_err *err)
{
	size_t n = strlen(name);
	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "'%s' is empty", field);
	if (n > KX_NAME_MAX)
		return kx_err_set(err, KX_EINVAL, "'%s' is longer than %d bytes", field, KX_NAME_MAX);
	if (kx_text_check(name, n, 0))
		return kx_err_set(err, KX_EINVAL, "'%s' has control characters or invalid UTF-8",
				  field);
	return 0;
}

int kx_incident_add_type(struct kx_incident *inc, const char *type)
{
	char **p;
	if (kx_incident_has_type(inc, type))
		return 0;
	p = realloc(inc->types, (inc->ntypes + 1) * sizeof(*p));
	if (!p)
		return KX_ENOMEM;
	inc->types = p;
	if (!(p[inc->ntypes] = strdup(type)))
		return KX_ENOMEM;
	inc->ntypes++;
	return 0;
}

bool kx_incident_has_type(const struct kx_incident *inc, const char *type)
{
	for (size_t i = 0; i < inc->ntypes; i++)
		if (strcmp(inc->types[i], type) == 0)
			return true;
	return false;
}

int kx_incident_add_role(struct kx_incident *inc, const char *role, const char *person)
{
	struct kx_role *p = realloc(inc->roles, (inc->nroles + 1) * sizeof(*p));
	if (!p)
		return KX_ENOMEM;
	inc->roles = p;
	p[inc->nroles].role = strdup(role);
	p[inc->nroles].person = strdup(person);
	if (!p[inc->nroles].role || !p[inc->nroles].person) {
		free(p[inc->nroles].role);
		free(p[inc->nroles].person);
		return KX_ENOMEM;
	}
	inc->nroles++;
	return 0;
}

const char *kx_incident_role_person(const struct kx_incident *inc, const char *role)
{
	for (size_t i = 0; i < inc->nroles; i++)
		if (strcmp(inc->roles[i].role, role) == 0)
			return inc->roles[i].person;
	return NULL;
}

static void remove_role_at(struct kx_incident *inc, size_t i)
{
	free(inc->roles[i].role);
	free(inc->roles[i].person);
	memmove(inc->roles + i, inc->roles + i + 1, (inc->nroles - i - 1) * sizeof(*inc->roles));
	inc->nroles--;
}

static void touch(struct kx_incident *inc, kx_ms now)
{
	inc->version++;
	inc->updated_at = now;
}

static int set_str(char **dst, const char *src)
{
	char *p = NULL;
	if (src && !(p = strdup(src)))
		return KX_ENOMEM;
	free(*dst);
	*dst = p;
	return 0;
}

static int add_note(struct kx_buf *text, const char *note)
{
	if (note && *note)
		return kx_buf_addf(text, ": %s", note);
	return 0;
}

int kx_incident_apply_status(struct kx_incident *inc, enum kx_status to, const char *note,
			     kx_ms now, struct kx_buf *text, struct kx_err *err)
{
	enum kx_status from = inc->status;
	int rc;

	if (note && (rc = kx_check_text("note", note, err)))
		return rc;
	if ((rc = kx_status_check(from, to, err)))
		return rc;
	inc->status = to;
	if ((to == KX_STATUS_MONITORING || to == KX_STATUS_RESOLVED) &&
	    inc->mitigated_at == KX_TIME_UNSET)
		inc->mitigated_at = now;
	if (to == KX_STATUS_RESOLVED)
		inc->resolved_at = now;
	else
		inc->resolved_at = KX_TIME_UNSET;
	touch(inc, now);
	if (from == KX_STATUS_RESOLVED)
		rc = kx_buf_addf(text, "reopened: status resolved → %s", kx_status_name(to));
	else
		rc = kx_buf_addf(text, "status %s → %s", kx_status_name(from), kx_status_name(to));
	if (rc || add_note(text, note))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_severity(struct kx_incident *inc, const char *severity,
			       const char *note, kx_ms now, struct kx_buf *text,
			       struct kx_err *err)
{
	char *old;
	int rc;

	if (note && (rc = kx_check_text("note", note, err)))
		return rc;
	if (strcmp(inc->severity, severity) == 0)
		return kx_err_set(err, KX_ECONFLICT, "incident is already %s", severity);
	old = inc->severity;
	inc->severity = strdup(severity);
	if (!inc->severity) {
		inc->severity = old;
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	touch(inc, now);
	rc = kx_buf_addf(text, "severity %s → %s", old, severity);
	free(old);
	if (rc || add_note(text, note))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_role(struct kx_incident *inc, const char *role, const char *person,
			   bool remove, kx_ms now, struct kx_buf *text, struct kx_err *err)
{
	int rc;
	bool had = false;

	if (!kx_role_valid(role))
		return kx_err_set(err, KX_EINVAL,
				  "unknown role '%.64s': use commander, ops_lead, tech_lead, comms_lead, scribe or sme",
				  role);
	if ((rc = kx_check_name("person", person, err)))
		return rc;
	for (size_t i = 0; i < inc->nroles; i++) {
		if (strcmp(inc->roles[i].role, role) != 0)
			continue;
		if (strcmp(inc->roles[i].person, person) == 0) {
			had = true;
			if (remove) {
				remove_role_at(inc, i);
				break;
			}
		}
	}
	if (remove) {
		if (!had)
			return kx_err_set(err, KX_ECONFLICT, "'%s' is not %s", person, role);
		touch(inc, now);
		if (kx_buf_addf(text, "%s removed as %s", person, kx_role_title(role)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		return 0;
	}
	if (had)
		return kx_err_set(err, KX_ECONFLICT, "'%s' is already %s", person, role);
	if (!kx_role_multi(role)) {
		for (size_t i = 0; i < inc->nroles; i++) {
			if (strcmp(inc->roles[i].role, role) == 0) {
				remove_role_at(inc, i);
				break;
			}
		}
	}
	if (kx_incident_add_role(inc, role, person))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (strcmp(role, "commander") == 0 && inc->acknowledged_at == KX_TIME_UNSET)
		inc->acknowledged_at = now;
	touch(inc, now);
	if (kx_buf_addf(text, "%s is %s", person, kx_role_title(role)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_ack(struct kx_incident *inc, const char *who, kx_ms now,
			  struct kx_buf *text, struct kx_err *err)
{
	if (inc->acknowledged_at != KX_TIME_UNSET)
		return kx_err_set(err, KX_ECONFLICT, "incident is already acknowledged");
	inc->acknowledged_at = now;
	touch(inc, now);
	if (kx_buf_addf(text, "acknowledged by %s", who))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_impact(struct kx_incident *inc, const struct kx_impact *in,
			     kx_ms now, struct kx_buf *text, struct kx_err *err)
{
	int rc = 0;
	const char *sep = "impact: ";

	if (in->users < 0 && in->accounts < 0 && in->actions < 0 && !in->revenue &&
	    !in->description)
		return kx_err_set(err, KX_EINVAL,
				  "no impact given: set users, accounts, actions, revenue or description");
	if (in->revenue) {
		size_t n = strlen(in->revenue);
		if (n == 0 || n > KX_REVENUE_MAX || kx_text_check(in->revenue, n, 0))
			return kx_err_set(err, KX_EINVAL,
					  "'revenue' must be 1 to %d characters of text", KX_REVENUE_MAX);
	}
	if (in->description && (rc = kx_check_text("description", in->description, err)))
		return rc;
	if (in->users >= 0) {
		inc->impact.users = in->users;
		rc |= kx_buf_addf(text, "%s%lld user%s", sep, (long long)in->users,
				  in->users == 1 ? "" : "s");
		sep = ", ";
	}
	if (in->accounts >= 0) {
		inc->impact.accounts = in->accounts;
		rc |= kx_buf_addf(text, "%s%lld account%s", sep, (long long)in->accounts,
				  in->accounts == 1 ? "" : "s");
		sep = ", ";
	}
	if (in->actions >= 0) {
		inc->impact.actions = in->actions;
		rc |= kx_buf_addf(text, "%s%lld action%s", sep, (long long)in->actions,
				  in->actions == 1 ? "" : "s");
		sep = ", ";
	}
	if (in->revenue) {
		rc |= set_str(&inc->impact.revenue, in->revenue);
		rc |= kx_buf_addf(text, "%srevenue %s", sep, in->revenue);
		sep = ", ";
	}
	if (in->description) {
		rc |= set_str(&inc->impact.description, in->description);
		rc |= kx_buf_addf(text, "%s%s", sep, in->description);
	}
	if (rc)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	touch(inc, now);
	return 0;
}

int kx_incident_apply_resolve(struct kx_incident *inc, const char *resolution,
			      const char *root_cause, kx_ms now, struct kx_buf *text,
			      struct kx_err *err)
{
	int rc;

	if (!resolution || !*resolution)
		return kx_err_set(err, KX_EINVAL, "'resolution' is required to resolve an incident");
	if ((rc = kx_check_text("resolution", resolution, err)))
		return rc;
	if (root_cause && (rc = kx_check_text("root_cause", root_cause, err)))
		return rc;
	if (inc->status == KX_STATUS_RESOLVED)
		return kx_err_set(err, KX_ECONFLICT, "incident is already resolved");
	if (set_str(&inc->resolution, resolution) ||
	    (root_cause && set_str(&inc->root_cause, root_cause)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (inc->mitigated_at == KX_TIME_UNSET)
		inc->mitigated_at = now;
	inc->status = KX_STATUS_RESOLVED;
	inc->resolved_at = now;
	touch(inc, now);
	if (kx_buf_addf(text, "resolved: %s", resolution))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_reopen(struct kx_incident *inc, const char *note, kx_ms now,
			     struct kx_buf *text, struct kx_err *err)
{
	int rc;
	if (note && (rc = kx_check_text("note", note, err)))
		return rc;
	if (inc->status != KX_STATUS_RESOLVED)
		return kx_err_set(err, KX_ECONFLICT, "incident is not resolved (it is %s)",
				  kx_status_name(inc->status));
	inc->status = KX_STATUS_INVESTIGATING;
	inc->resolved_at = KX_TIME_UNSET;
	touch(inc, now);
	if (kx_buf_adds(text, "reopened: status resolved → investigating") || add_note(text, note))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

int kx_incident_apply_edit(struct kx_incident *inc, const struct kx_incident_edit *e,
			   const struct kx_labels *scope, kx_ms now, struct kx_buf *text,
			   struct kx_err *err)
{
	int rc;
	const char *sep = "edited ";
	bool any = false;

	if (e->title && (rc = kx_check_title(e->title, err)))
		return rc;
	if (e->summary && (rc = kx_check_text("summary", e->summary, err)))
		return rc;
	if (e->root_cause && (rc = kx_check_text("root_cause", e->root_cause, err)))
		return rc;
	if (e->title) {
		if (set_str(&inc->title, e->title) || kx_buf_addf(text, "%stitle: %s", sep, e->title))
			goto nomem;
		sep = "; ";
		any = true;
	}
	if (e->summary) {
		if (set_str(&inc->summary, e->summary) || kx_buf_addf(text, "%ssummary", sep))
			goto nomem;
		sep = "; ";
		any = true;
	}
	if (e->root_cause) {
		if (set_str(&inc->root_cause, e->root_cause) ||
		    kx_buf_addf(text, "%sroot cause: %s", sep, e->root_cause))
			goto nomem;
		sep = "; ";
		any = true;
	}
	if (e->set_types) {
		kx_incident_clear_types(inc);
		if (kx_buf_addf(text, "%stypes:", sep))
			goto nomem;
		for (size_t i = 0; i < e->ntypes; i++)
			if (kx_incident_add_type(inc, e->types[i]) ||
			    kx_buf_addf(text, " %s", e->types[i]))
				goto nomem;
		if (e->ntypes == 0 && kx_buf_adds(text, " none"))
			goto nomem;
		sep = "; ";
		any = true;
	}
	for (size_t i = 0; i < e->nunset; i++) {
		if ((rc = kx_label_key_check(e->labels_unset[i], err)))
			return rc;
		kx_labels_remove(&inc->labels, e->labels_unset[i]);
		if (kx_buf_addf(text, "%slabel -%s", sep, e->labels_unset[i]))
			goto nomem;
		sep = "; ";
		any = true;
	}
	if (e->labels_set) {
		for (size_t i = 0; i < e->labels_set->n; i++) {
			const struct kx_label *l = &e->labels_set->v[i];
			if ((rc = kx_labels_set(&inc->labels, l->key, l->value, err)))
				return rc;
			if (kx_buf_addf(text, "%slabel %s=%s", sep, l->key, l->value))
				goto nomem;
			sep = "; ";
			any = true;
		}
	}
	if (!any)
		return kx_err_set(err, KX_EINVAL, "nothing to change");
	if (scope && !kx_labels_match(&inc->labels, scope))
		return kx_err_set(err, KX_EFORBIDDEN,
				  "the change would move the incident outside this token's scope");
	touch(inc, now);
	return 0;
nomem:
	return kx_err_set(err, KX_ENOMEM, "out of memory");
}

void kx_timeline_entry_release(struct kx_timeline_entry *e)
{
	free(e->author);
	free(e->kind);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

static const char *const kind_names[] = {"mitigate", "prevent", "detect"};

const char *kx_item_kind_name(enum kx_item_kind k)
{
	return (unsigned)k < 3 ? kind_names[k] : "unknown";
}

int kx_item_kind_parse(const char *s, enum kx_item_kind *out, struct kx_err *err)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum kx_item_kind)i;
			return 0;
		}
	}
	return kx_err_set(err, KX_EINVAL,
			  "unknown action item kind '%.64s': use mitigate, prevent or detect", s);
}

void kx_action_item_release(struct kx_action_item *a)
{
	free(a->title);
	free(a->owner);
	memset(a, 0, sizeof(*a));
}
