/* evidence.h — attaching audit evidence to an incident: a sample of the
 * audit events behind it, written into its timeline (kind "evidence") so
 * that the record and the postmortem carry it.
 */
#ifndef KX_SVC_EVIDENCE_H
#define KX_SVC_EVIDENCE_H

#include "core/token.h"
#include "service/app.h"
#include "store/store.h"

#define KX_EVIDENCE_DEFAULT 50
#define KX_EVIDENCE_MAX 1000

/* The events of f (merged with who's scope; where f names no client,
 * account, platform or lane, the incident's label of that name is used)
 * newest first, at most limit (0: KX_EVIDENCE_DEFAULT) listed in one
 * timeline entry with the query that found them. *attached is how many
 * the entry lists, *total how many matched (counted up to 10,000). The
 * entry and an audit event "incident.evidence" commit together. */
int kx_svc_incident_evidence(const struct kx_app *app, const struct kx_token *who,
			     const char *id, struct kx_audit_filter *f, int limit, kx_ms now,
			     struct kx_timeline_entry *out, int64_t *attached, int64_t *total,
			     struct kx_err *err);

#endif
