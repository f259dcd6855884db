/* audit.h — the audit log use cases: append, query, the seeds' questions
 * (duplicates, recipients), verification, and recording Klaxon's own human
 * actions.
 *
 * The log is append-only: nothing here changes or removes an event. A
 * token's label scope limits what it reads and writes exactly as for
 * incidents: a token scoped client=acme sees only events with client=acme
 * (scope keys client, account, platform, lane and action select those
 * fields; other keys select free labels), and events it appends get its
 * scope's values (a different value is KX_EFORBIDDEN). Role checks are the
 * caller's (the HTTP router's).
 */
#ifndef KX_SVC_AUDIT_H
#define KX_SVC_AUDIT_H

#include "core/audit.h"
#include "core/token.h"
#include "service/app.h"
#include "store/store.h"

#define KX_AUDIT_BATCH_MAX 10000 /* events in one append */
#define KX_AUDIT_LIMIT_MAX 10000 /* rows in one answer */

/* Appends ev[0..n) as one batch, all or nothing: every event is checked
 * first (an unset `at` becomes now, the caller's scope is applied), and a
 * single bad event refuses the whole batch, with a message that names it
 * ("event 3: 'actor' is required"; no prefix when n is 1). On success the
 * events carry their seq and hashes; they were committed together, with
 * consecutive seqs. */
int kx_svc_audit_append(const struct kx_app *app, const struct kx_token *who,
			struct kx_audit_event *ev, size_t n, kx_ms now, struct kx_err *err);

/* Records a human action in tx, the caller's own transaction, so that the
 * action and its audit event commit together or not at all: actor is the
 * token's name, outcome "success", at now. labels are the labels of the
 * object acted on (an incident's, a token's scope): client, account,
 * platform, lane and action go to those fields (an `action` label is left
 * out: the field is the action recorded), the rest stay labels, so that the
 * event is visible to the tokens that see the object. Call it after the
 * transaction's other writes (store.h: audit_append). */
int kx_svc_audit_record(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
			const char *action, const char *target, const struct kx_labels *labels,
			kx_ms now, struct kx_err *err);

/* The events of f as `who` may see them (f is merged with the caller's
 * scope; a filter that contradicts the scope finds nothing). f->limit must
 * be at most KX_AUDIT_LIMIT_MAX. */
int kx_svc_audit_query(const struct kx_app *app, const struct kx_token *who,
		       struct kx_audit_filter *f, struct kx_audit_events *out, struct kx_err *err);
/* Same action, target and content_hash more than once among f's events. */
int kx_svc_audit_duplicates(const struct kx_app *app, const struct kx_token *who,
			    struct kx_audit_filter *f, struct kx_audit_groups *out,
			    struct kx_err *err);
/* f's events by target, with counts. */
int kx_svc_audit_recipients(const struct kx_app *app, const struct kx_token *who,
			    struct kx_audit_filter *f, struct kx_audit_groups *out,
			    struct kx_err *err);

/* The outcome of walking the chain. */
struct kx_audit_verify {
	bool intact;
	int64_t events;     /* events found correct (all of them when intact) */
	int64_t broken_seq; /* the first event that is not (0 when intact) */
	char reason[512];   /* what differs there ("" when intact) */
	int64_t head_seq;   /* the last correct event (0: none) */
	uint8_t head_hash[KX_HASH_LEN];
};

/* Walks the whole chain in one read transaction, recomputing every hash,
 * and stops at the first event that is not the correct successor of the
 * one before (core/audit.h: kx_audit_verify_step). A broken chain is a
 * result (out->intact false), not an error. The walk covers every event
 * whatever their labels, so a token with a label scope may not run it
 * (KX_EFORBIDDEN). */
int kx_svc_audit_verify(const struct kx_app *app, const struct kx_token *who,
			struct kx_audit_verify *out, struct kx_err *err);

#endif
