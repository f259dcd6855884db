/* guard.h — the guardrail use cases: kill switches (the emergency stop),
 * caps, approvals, and the gate that automation asks before every action.
 *
 * The gate decides from an immutable snapshot (core/gate.h) held in memory
 * and swapped atomically whenever a switch or cap changes anywhere: the
 * change is written with a change-feed notification (topic "gate") in the
 * same transaction, and every daemon that shares the store rebuilds its
 * snapshot when it hears it. A gate check never waits on the database,
 * except to persist an approval request (approval_required) — a human must
 * be able to find it.
 *
 * Scope: a token with a label scope may only set switches and caps whose
 * selector is at least as narrow as its scope (every scope label required
 * with '='), sees only those, and the actions it checks carry its scope
 * labels (a conflicting value is KX_EFORBIDDEN). Role checks are the
 * router's.
 *
 * Every change is written to the audit log (actor = the token's name), to
 * the outbox (event "switch.set", "switch.cleared", "switch.resumed",
 * "cap.set", "cap.cleared", "approval.requested", "approval.decided") and,
 * for a switch tied to an incident, to that incident's timeline — all in
 * the change's transaction.
 */
#ifndef KX_SVC_GUARD_H
#define KX_SVC_GUARD_H

#include <jansson.h>

#include "core/gate.h"
#include "core/guard.h"
#include "core/token.h"
#include "service/app.h"
#include "store/store.h"

#define KX_GATE_BATCH_MAX 1000 /* actions in one batch check */

/* ---- the gate runtime (one per daemon, app->gate) --------------------- */

struct kx_gate_rt;

/* Builds the first snapshot from the store and the config's caps, and
 * subscribes to the change feed. */
int kx_gate_rt_new(const struct kx_app *app, struct kx_gate_rt **out, struct kx_err *err);
/* Stops the reload thread (listeners are called no more); the runtime
 * still answers from its last snapshot until freed. Idempotent; NULL is a
 * no-op. Call it before what the listeners point at goes away. */
void kx_gate_rt_stop(struct kx_gate_rt *rt);
void kx_gate_rt_free(struct kx_gate_rt *rt);
/* Rebuilds the snapshot from the store now (the feed does it by itself).
 * On failure the previous snapshot stays in force. */
int kx_gate_rt_reload(struct kx_gate_rt *rt, struct kx_err *err);
/* A number that grows with every snapshot swap. */
uint64_t kx_gate_rt_version(const struct kx_gate_rt *rt);

/* A deep copy of the switches of the snapshot in force (those a token
 * with `scope` can be affected by) and its version: what the switch
 * stream sends, without a database read. */
int kx_gate_rt_switches(struct kx_gate_rt *rt, const struct kx_labels *scope,
			struct kx_switches *out, uint64_t *version, struct kx_err *err);

/* Appends the switch stream's event ("event: switches\ndata: {…}\n\n")
 * for the set in force as `scope` sees it, and its version. Encoded once
 * per version and scope, however many subscribers ask. */
int kx_gate_rt_stream_event(struct kx_gate_rt *rt, const struct kx_labels *scope,
			    struct kx_buf *out, uint64_t *version);

/* Approval decisions, for the switch stream: how many were heard of so
 * far (in this daemon or any other sharing the store), and the JSON views
 * of those after *after that `scope` may see (the newest 64 at most; *after
 * is moved to the count). */
uint64_t kx_gate_rt_decisions(struct kx_gate_rt *rt);
int kx_gate_rt_decisions_since(struct kx_gate_rt *rt, const struct kx_labels *scope,
			       uint64_t *after, kx_ms now, json_t **out);

/* The API's JSON view of a switch, a cap and an approval request (new
 * references; NULL when out of memory). */
json_t *kx_switch_json(const struct kx_switch *sw, kx_ms now);
json_t *kx_cap_json(const struct kx_cap *c, bool from_config);
json_t *kx_approval_json(const struct kx_approval *a, kx_ms now);
/* Is cap id from the configuration file? */
bool kx_svc_cap_is_config(const struct kx_app *app, const char *id);

/* Called (on a store thread) after every swap: the switch stream. */
typedef void (*kx_gate_listener)(void *arg);
int kx_gate_rt_listen(struct kx_gate_rt *rt, kx_gate_listener fn, void *arg);

/* ---- checking ---------------------------------------------------------- */

struct kx_gate_req {
	struct kx_labels labels;
	const char *idempotency_key; /* NULL: none */
	bool read_only;
	char *key_buf; /* the decoder's own copy of the key, if it made one */
};

/* The answer for one action, as the API shows it:
 *   {"decision":"allow"}
 *   {"decision":"deny","by":"switch|ramp|cap|duplicate|state","id":…,"reason":…,
 *    "retry_after":seconds (caps and ramps only)}
 *   {"decision":"approval_required","request_id":"apr_…","id":"sw_…","reason":…}
 */
struct kx_gate_answer {
	enum kx_gate_verdict verdict;
	enum kx_gate_by by;
	char id[KX_GATE_ID_MAX + 1];   /* what decided ("" on allow) */
	kx_ms retry_after;	       /* KX_GATE_NEVER when not applicable */
	char reason[512];
	char request_id[KX_ID_LEN];    /* approval_required */
};

/* Decides reqs[0..n) in order (n <= KX_GATE_BATCH_MAX) for who. Invalid
 * input (bad labels, a scope conflict) fails the whole batch, naming the
 * action when `batch` (counted from 1), with nothing decided. An approval
 * request stores the idempotency key as the gate sees it (a scoped
 * token's key prefixed with its scope, "client=acme|KEY"). */
int kx_svc_gate_check(const struct kx_app *app, const struct kx_token *who,
		      struct kx_gate_req *reqs, size_t n, bool batch, kx_ms now,
		      struct kx_gate_answer *out, struct kx_err *err);

/* ---- switches ---------------------------------------------------------- */

struct kx_switch_req {
	const char *selector;	/* text; "" = everything */
	enum kx_gate_mode mode;
	const char *reason;	/* required */
	kx_ms expires_at;	/* KX_TIME_UNSET: until cleared */
	const char *incident;	/* NULL or an incident the caller can see */
};

/* Sets a switch; effective in this daemon's gate before it returns. */
int kx_svc_switch_set(const struct kx_app *app, const struct kx_token *who,
		      const struct kx_switch_req *req, kx_ms now, struct kx_switch *out,
		      struct kx_err *err);
/* Lifts a switch at once. KX_ECONFLICT if it is not in force. */
int kx_svc_switch_clear(const struct kx_app *app, const struct kx_token *who, const char *id,
			const char *reason, kx_ms now, struct kx_switch *out, struct kx_err *err);
/* Lifts a switch gradually: over `ramp` the actions it covered share a limit
 * growing from floor to peak per window. peak 0, window 0 and floor
 * KX_RAMP_DEFAULT take the config's defaults; ramp 0 lifts it at once. */
#define KX_RAMP_DEFAULT UINT32_MAX
int kx_svc_switch_resume(const struct kx_app *app, const struct kx_token *who, const char *id,
			 kx_ms ramp, uint32_t floor, uint32_t peak, kx_ms window,
			 const char *reason, kx_ms now, struct kx_switch *out, struct kx_err *err);
int kx_svc_switch_get(const struct kx_app *app, const struct kx_token *who, const char *id,
		      struct kx_switch *out, struct kx_err *err);
int kx_svc_switch_list(const struct kx_app *app, const struct kx_token *who, bool all,
		       kx_ms now, struct kx_switches *out, struct kx_err *err);

/* ---- caps -------------------------------------------------------------- */

/* Caps from the config are listed too (set_by "config") and cannot be
 * changed through the API (KX_ECONFLICT). */
int kx_svc_cap_put(const struct kx_app *app, const struct kx_token *who, const char *id,
		   const char *spec, kx_ms now, struct kx_cap *out, bool *created,
		   struct kx_err *err);
int kx_svc_cap_delete(const struct kx_app *app, const struct kx_token *who, const char *id,
		      kx_ms now, struct kx_err *err);
int kx_svc_cap_list(const struct kx_app *app, const struct kx_token *who, struct kx_caps *out,
		    struct kx_err *err);

/* ---- approvals --------------------------------------------------------- */

int kx_svc_approval_get(const struct kx_app *app, const struct kx_token *who, const char *id,
			kx_ms now, struct kx_approval *out, struct kx_err *err);
int kx_svc_approval_list(const struct kx_app *app, const struct kx_token *who,
			 bool pending_only, int limit, kx_ms now, struct kx_approvals *out,
			 struct kx_err *err);
/* approve true/false. KX_ECONFLICT when no longer pending (decided or
 * expired). An approval counts the action in the gate's caps. */
int kx_svc_approval_decide(const struct kx_app *app, const struct kx_token *who,
			   const char *id, bool approve, const char *note, kx_ms now,
			   struct kx_approval *out, struct kx_err *err);

#endif
