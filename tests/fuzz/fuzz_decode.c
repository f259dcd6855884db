/* fuzz_decode.c — the request body decoders, and what the core does with
 * what they accept.
 *
 * Input: one selector byte, then the body. selector % 12 picks the decoder:
 *   0 declare, 1..8 change (status, severity, role, ack, impact, resolve,
 *   reopen, edit), 9 note, 10 action item, 11 token.
 * (selector / 12) % 4 picks the status of the incident a decoded change is
 * applied to. A decoded change goes through the matching kx_incident_apply_*
 * on an in-memory incident, and the result is rendered as a Markdown record,
 * so the fuzzer also reaches the core rules and the renderer. Oracles: the
 * incident invariants of core/incident.h after every accepted change, and
 * error messages that are never empty.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "core/text.h"
#include "http/decode.h"

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The built-in configuration, as the service checks severities and types
 * against it before applying a change (reachable until exit, not leaked). */
static const struct kx_config *config(void)
{
	static struct kx_config cfg;
	static bool ready;
	if (!ready) {
		check(kx_config_init(&cfg) == 0);
		ready = true;
	}
	return &cfg;
}

static bool types_known(const char *const *types, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!kx_config_type(config(), types[i]))
			return false;
	return true;
}

static void base_incident(struct kx_incident *inc, enum kx_status status)
{
	kx_incident_init(inc);
	kx_incident_id_format(inc->id, T0, 1);
	inc->title = strdup("Checkout is down");
	inc->severity = strdup("P2");
	inc->created_by = strdup("fuzz");
	inc->status = status;
	inc->declared_at = inc->updated_at = T0;
	inc->detected_at = T0 - 60000;
	inc->version = 1;
	if (status == KX_STATUS_RESOLVED) {
		inc->resolved_at = T0 + 60000;
		inc->mitigated_at = T0 + 60000;
	}
	kx_labels_add_pair(&inc->labels, "client=acme", NULL);
	check(inc->title && inc->severity && inc->created_by);
}

static void render(const struct kx_incident *inc, const struct kx_timeline_entry *t, size_t nt,
		   const struct kx_action_item *a, size_t na)
{
	struct kx_buf out;
	kx_buf_init(&out, 1 << 20);
	if (kx_record_markdown(&out, inc, t, nt, a, na, config()) == 0) {
		const char *md = kx_buf_str(&out);
		/* one top-level heading, and it is the first line */
		check(strncmp(md, "# Incident ", 11) == 0);
		check(strstr(md, "\n# ") == NULL);
	}
	kx_buf_release(&out);
}

static void check_invariants(const struct kx_incident *inc)
{
	check(kx_incident_id_valid(inc->id));
	check(inc->title && *inc->title);
	check(kx_check_title(inc->title, NULL) == 0);
	check(inc->severity != NULL);
	check((unsigned)inc->status <= KX_STATUS_RESOLVED);
	check((inc->resolved_at != KX_TIME_UNSET) == (inc->status == KX_STATUS_RESOLVED));
	check(kx_labels_match(&inc->labels, &inc->labels));
	for (size_t i = 1; i < inc->labels.n; i++)
		check(strcmp(inc->labels.v[i - 1].key, inc->labels.v[i].key) < 0);
	for (size_t i = 0; i < inc->nroles; i++)
		check(kx_role_valid(inc->roles[i].role));
}

static int apply(struct kx_incident *inc, const struct kx_change *c, const struct kx_labels *scope,
		 kx_ms now, struct kx_buf *text, struct kx_err *err)
{
	switch (c->kind) {
	case KX_CHANGE_STATUS:
		return kx_incident_apply_status(inc, c->status, c->note, now, text, err);
	case KX_CHANGE_SEVERITY:
		return kx_incident_apply_severity(inc, c->severity, c->note, now, text, err);
	case KX_CHANGE_ROLE:
		return kx_incident_apply_role(inc, c->role, c->person, c->remove, now, text, err);
	case KX_CHANGE_ACK:
		return kx_incident_apply_ack(inc, "fuzz", now, text, err);
	case KX_CHANGE_IMPACT:
		return kx_incident_apply_impact(inc, &c->impact, now, text, err);
	case KX_CHANGE_RESOLVE:
		return kx_incident_apply_resolve(inc, c->resolution, c->root_cause, now, text, err);
	case KX_CHANGE_REOPEN:
		return kx_incident_apply_reopen(inc, c->note, now, text, err);
	case KX_CHANGE_EDIT:
		return kx_incident_apply_edit(inc, &c->edit, scope, now, text, err);
	}
	return KX_EINVAL;
}

static void fuzz_change(const char *body, size_t len, enum kx_change_kind kind,
			enum kx_status status)
{
	struct kx_change c;
	struct kx_decoded hold;
	struct kx_err err = {0};
	int rc = kx_decode_change(body, len, kind, &c, &hold, &err);

	if (rc) {
		check(rc == KX_EINVAL || rc == KX_EJSON || rc == KX_ENOMEM);
		check(err.msg[0] != '\0');
	} else {
		struct kx_incident inc;
		struct kx_labels scope;
		struct kx_buf text;
		kx_ms now = T0 + 3600000;
		int64_t before;

		check(c.kind == kind);
		/* the service's own checks, made before the core sees the change */
		if ((kind == KX_CHANGE_SEVERITY && !kx_config_severity(config(), c.severity)) ||
		    (kind == KX_CHANGE_EDIT && c.edit.set_types &&
		     !types_known(c.edit.types, c.edit.ntypes))) {
			kx_decoded_release(&hold);
			return;
		}
		base_incident(&inc, status);
		kx_labels_init(&scope);
		kx_labels_add_pair(&scope, "client=acme", NULL);
		kx_buf_init(&text, 64 * 1024);
		before = inc.version;
		kx_err_clear(&err);
		rc = apply(&inc, &c, &scope, now, &text, &err);
		if (rc == 0) {
			check(inc.version == before + 1);
			check(inc.updated_at == now);
			check(kx_buf_str(&text)[0] != '\0');
			check(kx_labels_match(&inc.labels, &scope));
			check_invariants(&inc);
			{
				struct kx_timeline_entry e = {1, now, "fuzz", "change", NULL};
				e.text = (char *)kx_buf_str(&text);
				render(&inc, &e, 1, NULL, 0);
			}
		} else {
			check(err.msg[0] != '\0');
			check(rc == KX_EINVAL || rc == KX_ECONFLICT || rc == KX_EFORBIDDEN ||
			      rc == KX_ENOMEM);
		}
		kx_buf_release(&text);
		kx_labels_release(&scope);
		kx_incident_release(&inc);
	}
	kx_decoded_release(&hold);
}

static void fuzz_declare(const char *body, size_t len)
{
	struct kx_declare d;
	struct kx_decoded hold;
	struct kx_err err = {0};
	int rc = kx_decode_declare(body, len, &d, &hold, &err);
	if (rc) {
		check(err.msg[0] != '\0');
	} else {
		struct kx_incident inc;
		struct kx_labels scope;
		check(d.title && d.severity);
		check(d.types != NULL || d.ntypes == 0);
		for (size_t i = 0; i < d.labels.n; i++)
			check(kx_label_key_check(d.labels.v[i].key, NULL) == 0);
		/* what the service would build from it, when the title is fine */
		if (kx_check_title(d.title, NULL) == 0 && kx_config_severity(config(), d.severity) &&
		    types_known(d.types, d.ntypes) &&
		    (!d.summary || kx_check_text("summary", d.summary, NULL) == 0)) {
			kx_incident_init(&inc);
			kx_incident_id_format(inc.id, T0, 1);
			inc.title = strdup(d.title);
			inc.severity = strdup(d.severity);
			inc.summary = d.summary ? strdup(d.summary) : NULL;
			inc.created_by = strdup("fuzz");
			inc.declared_at = T0;
			inc.started_at = d.started_at;
			inc.detected_at = d.detected_at;
			for (size_t i = 0; i < d.ntypes; i++)
				kx_incident_add_type(&inc, d.types[i]);
			kx_labels_copy(&inc.labels, &d.labels);
			kx_labels_init(&scope);
			kx_labels_add_pair(&scope, "client=acme", NULL);
			rc = kx_labels_apply_scope(&inc.labels, &scope, NULL);
			check(rc == 0 || rc == KX_EFORBIDDEN || rc == KX_EINVAL);
			if (rc == 0)
				check(kx_labels_match(&inc.labels, &scope));
			if (inc.title && inc.severity && inc.created_by)
				render(&inc, NULL, 0, NULL, 0);
			kx_labels_release(&scope);
			kx_incident_release(&inc);
		}
	}
	kx_declare_release(&d);
	kx_decoded_release(&hold);
}

static void fuzz_note(const char *body, size_t len)
{
	struct kx_decoded hold;
	struct kx_err err = {0};
	const char *text = NULL;
	kx_ms at = 0;
	int rc = kx_decode_note(body, len, &text, &at, &hold, &err);
	if (rc) {
		check(err.msg[0] != '\0');
	} else {
		check(text != NULL);
		if (kx_check_text("text", text, NULL) == 0) {
			struct kx_incident inc;
			struct kx_timeline_entry e = {1, at == KX_TIME_UNSET ? T0 : at, "fuzz", "note",
						      (char *)text};
			base_incident(&inc, KX_STATUS_INVESTIGATING);
			render(&inc, &e, 1, NULL, 0);
			kx_incident_release(&inc);
		}
	}
	kx_decoded_release(&hold);
}

static void fuzz_item(const char *body, size_t len)
{
	struct kx_action_item a;
	struct kx_decoded hold;
	struct kx_err err = {0};
	int rc = kx_decode_action_item(body, len, &a, &hold, &err);
	if (rc) {
		check(err.msg[0] != '\0');
	} else {
		int y, m, d;
		check(a.title != NULL);
		check((unsigned)a.kind <= KX_ITEM_DETECT);
		check(a.due[0] == '\0' || kx_date_parse(a.due, &y, &m, &d) == 0);
		if (kx_check_title(a.title, NULL) == 0) {
			struct kx_incident inc;
			base_incident(&inc, KX_STATUS_MONITORING);
			render(&inc, NULL, 0, &a, 1);
			kx_incident_release(&inc);
		}
	}
	kx_decoded_release(&hold);
}

static void fuzz_token(const char *body, size_t len)
{
	struct kx_decoded hold;
	struct kx_err err = {0};
	enum kx_access role = KX_ACCESS_NONE;
	const char *name = NULL;
	int rc = kx_decode_token(body, len, &role, &name, &hold, &err);
	if (rc) {
		check(err.msg[0] != '\0');
	} else {
		struct kx_token creator;
		check(name != NULL);
		check(role >= KX_ACCESS_VIEWER && role <= KX_ACCESS_ADMIN);
		kx_token_init(&creator);
		creator.role = KX_ACCESS_ADMIN;
		kx_labels_add_pair(&creator.scope, "client=acme", NULL);
		rc = kx_token_may_create(&creator, role, &hold.labels, &err);
		check(rc == 0 || rc == KX_EFORBIDDEN);
		check(rc != 0 || kx_labels_match(&hold.labels, &creator.scope));
		kx_token_release(&creator);
	}
	kx_decoded_release(&hold);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	size_t len;
	unsigned sel;

	if (size < 1)
		return 0;
	sel = data[0];
	body = (const char *)data + 1;
	len = size - 1;
	switch (sel % 12) {
	case 0:
		fuzz_declare(body, len);
		break;
	case 9:
		fuzz_note(body, len);
		break;
	case 10:
		fuzz_item(body, len);
		break;
	case 11:
		fuzz_token(body, len);
		break;
	default:
		fuzz_change(body, len, (enum kx_change_kind)(sel % 12 - 1),
			    (enum kx_status)((sel / 12) % 4));
		break;
	}
	return 0;
}
