/* evidence.c — audit evidence on an incident's timeline (evidence.h). */
#include "service/evidence.h"
#include "core/incident.h"
#include "service/audit.h"
#include "service/incidents.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_ROOM (KX_TEXT_MAX - 512) /* leave space for the closing line */

static void describe_filter(struct kx_buf *b, const struct kx_audit_filter *f)
{
	char ts[KX_TIME_STRLEN];
	const char *names[] = {"client", "account", "platform", "lane", "action", "actor", "target"};
	const char *vals[] = {f->client, f->account, f->platform, f->lane,
			      f->action, f->actor,   f->target};
	bool any = false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!vals[i])
			continue;
		kx_buf_addf(b, "%s%s=%s", any ? ", " : "", names[i], vals[i]);
		any = true;
	}
	if (f->since != KX_TIME_UNSET)
		kx_buf_addf(b, "%ssince %s", any ? ", " : "", kx_time_format(f->since, ts)), any = true;
	if (f->until != KX_TIME_UNSET)
		kx_buf_addf(b, "%suntil %s", any ? ", " : "", kx_time_format(f->until, ts)), any = true;
	if (!any)
		kx_buf_adds(b, "all events");
}

static void field(struct kx_buf *b, const char *s)
{
	kx_buf_addf(b, " %s", s && *s ? s : "-");
}

int kx_svc_incident_evidence(const struct kx_app *app, const struct kx_token *who,
			     const char *id, struct kx_audit_filter *f, int limit, kx_ms now,
			     struct kx_timeline_entry *out, int64_t *attached, int64_t *total,
			     struct kx_err *err)
{
	struct kx_incident inc;
	struct kx_audit_events ev = {0};
	struct kx_timeline_entry e = {0};
	struct kx_tx *tx = NULL;
	struct kx_buf text;
	size_t listed = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	kx_incident_init(&inc);
	kx_buf_init(&text, 8 * KX_TEXT_MAX); /* trimmed to TEXT_ROOM below */
	if (limit < 0 || limit > KX_EVIDENCE_MAX)
		return kx_err_set(err, KX_EINVAL, "'limit' must be 1 to %d", KX_EVIDENCE_MAX);
	if (!limit)
		limit = KX_EVIDENCE_DEFAULT;
	if ((rc = kx_svc_incident_get(app, who, id, &inc, NULL, NULL, err)))
		return rc;
	/* The incident's tenant labels narrow the search unless given. */
	if (!f->client)
		f->client = kx_labels_get(&inc.labels, "client");
	if (!f->account)
		f->account = kx_labels_get(&inc.labels, "account");
	if (!f->platform)
		f->platform = kx_labels_get(&inc.labels, "platform");
	if (!f->lane)
		f->lane = kx_labels_get(&inc.labels, "lane");
	f->limit = KX_AUDIT_LIMIT_MAX;
	if ((rc = kx_svc_audit_query(app, who, f, &ev, err)))
		goto out;
	*total = (int64_t)ev.n;
	kx_buf_addf(&text, "Audit evidence: %zu%s event%s (", ev.n,
		    ev.n >= KX_AUDIT_LIMIT_MAX ? "+" : "", ev.n == 1 ? "" : "s");
	describe_filter(&text, f);
	kx_buf_addf(&text, ")%s\n", ev.n ? ", newest first:" : ".");
	for (size_t i = 0; i < ev.n && listed < (size_t)limit; i++) {
		const struct kx_audit_event *a = &ev.v[i];
		char ts[KX_TIME_STRLEN];
		size_t before = text.len;
		kx_buf_addf(&text, "- #%lld %s", (long long)a->seq, kx_time_format(a->at, ts));
		field(&text, a->actor);
		field(&text, a->account);
		field(&text, a->action);
		field(&text, a->target);
		field(&text, a->outcome);
		if (a->content_hash)
			kx_buf_addf(&text, " content=%.16s", a->content_hash);
		if (a->trace_id)
			kx_buf_addf(&text, " trace=%s", a->trace_id);
		kx_buf_addc(&text, '\n');
		if (text.len > TEXT_ROOM) {
			text.len = before; /* keep the entry within a note's size */
			text.data[before] = '\0';
			break;
		}
		listed++;
	}
	if (listed < ev.n)
		kx_buf_addf(&text, "(%zu listed; the rest: klaxon audit list with the same filters)\n",
			    listed);
	if (!kx_buf_str(&text)[0]) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	e.at = now;
	e.author = who->name;
	e.kind = "evidence";
	e.text = (char *)kx_buf_str(&text);
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = kx_store_timeline_add(tx, inc.id, &e, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "incident.evidence", inc.id, &inc.labels, now,
				      err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
	if (rc)
		goto out;
	out->id = e.id;
	out->at = now;
	out->author = strdup(who->name);
	out->kind = strdup("evidence");
	out->text = strdup(kx_buf_str(&text));
	if (!out->author || !out->kind || !out->text) {
		kx_timeline_entry_release(out);
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	*attached = (int64_t)listed;
out:
	kx_store_rollback(tx);
	kx_audit_events_release(&ev);
	kx_buf_release(&text);
	kx_incident_release(&inc);
	return rc;
}
