/* guard.h — the stored records behind the gate: kill switches, caps and
 * approval requests, as the store keeps them and the API shows them.
 *
 * core/gate.h decides; this module only describes what is persisted and
 * the few pure rules about it (is a switch in force at time t, is an
 * approval still pending). Every string in these structs is owned by the
 * struct (free with the _release function); NULL means "not given".
 */
#ifndef KX_GUARD_H
#define KX_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/gate.h"
#include "core/labels.h"
#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"

/* A kill switch. Invariants: id is "sw_" + 16 hex; selector is canonical
 * (kx_selector_format); set_at is set; a ramp (ramp.start != KX_TIME_UNSET)
 * follows gate.h's rules. A switch is never deleted: clearing it sets
 * cleared_at/cleared_by, and the row stays for the record. */
struct kx_switch {
	char id[KX_ID_LEN];
	char *selector;		/* "" = everything */
	enum kx_gate_mode mode;
	char *reason;		/* required when set */
	char *set_by;		/* token name */
	kx_ms set_at;
	kx_ms expires_at;	/* KX_TIME_UNSET = until cleared */
	char *incident;		/* INC-… or NULL */
	struct kx_gate_ramp ramp; /* ramp.start == KX_TIME_UNSET: none */
	kx_ms cleared_at;	/* KX_TIME_UNSET while not cleared */
	char *cleared_by;
	char *clear_reason;
};
void kx_switch_init(struct kx_switch *sw);
void kx_switch_release(struct kx_switch *sw);

/* In force at `now`: not cleared, not expired (expires_at > now) and not
 * past the end of its ramp. A ramping switch is in force (it limits). */
bool kx_switch_active(const struct kx_switch *sw, kx_ms now);

/* The gate's view of sw (pointers borrowed from sw). */
void kx_switch_to_gate(const struct kx_switch *sw, struct kx_gate_switch *out);

/* A cap: id is [a-z0-9_.-]{1,64} (a label key's rules), spec parses with
 * kx_gate_cap_parse and is stored in canonical form. */
struct kx_cap {
	char *id;
	char *spec;
	char *set_by;
	kx_ms set_at;
};
void kx_cap_init(struct kx_cap *c);
void kx_cap_release(struct kx_cap *c);
/* KX_EINVAL "cap id 'X' must be 1 to 64 of a-z, 0-9, '_', '.', '-'". */
int kx_cap_id_check(const char *id, struct kx_err *err);

enum kx_approval_status {
	KX_APPROVAL_PENDING,
	KX_APPROVAL_APPROVED,
	KX_APPROVAL_DENIED,
	KX_APPROVAL_EXPIRED,
};
const char *kx_approval_status_name(enum kx_approval_status s); /* "pending", … */
int kx_approval_status_parse(const char *s, enum kx_approval_status *out, struct kx_err *err);

/* An action waiting for a human because an `approve` switch covers it.
 * Invariants: id is "apr_" + 16 hex; status PENDING iff decided_at unset.
 * A pending request whose expires_at has passed reads as EXPIRED
 * (kx_approval_effective_status) even before anything rewrites it. */
struct kx_approval {
	char id[KX_ID_LEN];
	char *switch_id;	/* the approve switch that asked */
	struct kx_labels labels; /* the action's labels */
	char *idempotency_key;	/* as the automation sent it, or NULL */
	bool read_only;
	char *requested_by;	/* token name */
	kx_ms requested_at;
	kx_ms expires_at;
	enum kx_approval_status status;
	char *decided_by;
	kx_ms decided_at;	/* KX_TIME_UNSET while pending */
	char *note;		/* the decider's words, or NULL */
};
void kx_approval_init(struct kx_approval *a);
void kx_approval_release(struct kx_approval *a);
enum kx_approval_status kx_approval_effective_status(const struct kx_approval *a, kx_ms now);

#endif
