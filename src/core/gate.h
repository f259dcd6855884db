/* gate.h — the decision automation asks for before every action: kill
 * switches, rate caps, cooldowns and duplicate suppression.
 *
 * Pure logic: nothing here reads the clock (`now` is a parameter, ms since
 * the epoch), does I/O or takes a lock. Two halves:
 *
 *   struct kx_gate_snapshot  the definitions — switches and caps — built
 *                            once, then immutable: any number of threads may
 *                            check against it without locking. A change is a
 *                            new snapshot swapped in by the caller.
 *   struct kx_gate_state     what changes with each allowed action: cap
 *                            counters and recent idempotency keys. Survives
 *                            snapshot swaps (counters are keyed by cap id,
 *                            not by position), has bounded memory, and is
 *                            NOT thread-safe — see "Threads" below.
 *
 * ## Actions
 * An action is its labels (client, account, platform, lane, action,
 * target, …), an optional idempotency key and whether it is a read (no side
 * effect: fetching a feed) or a side effect (posting, commenting, DMing).
 *
 * ## Switches
 * A switch covers the actions its selector matches (core/selector.h; the
 * empty selector is the global switch) in one of three modes:
 *   block      every matching action is denied, reads included;
 *   read_only  matching side effects are denied, reads pass;
 *   approve    matching side effects need a human (approval_required),
 *              reads pass — "fail closed: require approval for all side
 *              effects".
 * A switch applies from the moment it is in the snapshot until expires_at
 * (exclusive; KX_TIME_UNSET = until cleared). set_at is informative and
 * the tie-breaker below; it never delays a switch, so clock skew between
 * daemons cannot open a gap.
 *
 * Precedence when several switches match: a denying switch (block, or
 * read_only for a side effect) beats approve — an action that a switch
 * refuses is never offered to a human for approval — and block is named
 * before read_only. Among switches of the same mode the one named is the
 * most specific (most selector requirements), then the oldest (set_at),
 * then the smallest id.
 *
 * ## Ramps (resuming gradually)
 * A switch may carry a ramp [start, end). Before start the switch applies
 * in full. From start to end it no longer blocks or asks; instead the
 * actions it would have covered share one sliding-window limit that grows
 * linearly:
 *
 *     limit(t) = floor + (peak - floor) * (t - start) / (end - start)
 *
 * actions per ramp window (integer division, so the limit steps up by
 * whole actions). At end the switch stops applying altogether: from then on
 * only the regular caps limit the scope ("unlimited" if none matches). To
 * ramp "to the cap", set peak to the matching cap's rate over the ramp
 * window. `klaxon resume SW --ramp 30m` is a ramp with start = now, end =
 * now + 30m and the service's choice of floor/peak/window. A ramp never
 * loosens a cap: caps apply throughout.
 *
 * ## Caps and cooldowns
 * A cap is a selector, a limit N >= 0 and a window W > 0: at most N matching
 * actions in any window of length W ("platform=instagram,action=comment:
 * 200/1d"). With `per KEY` every value of that label has its own counter
 * ("action=dm: 1/10s per account": each account may DM once per ten
 * seconds — a cooldown is a cap with N = 1). An action without the KEY
 * label shares the one counter kept for "no value" (fail closed: it is not
 * exempt). N = 0 allows nothing. Caps apply to reads too if their selector
 * matches them.
 *
 * Counting is a sliding log: each counter keeps the timestamps of the last
 * N allowed actions (a ring, never more than N). An event at time t counts
 * while now - t < W, i.e. it leaves the window at exactly t + W. Why a log
 * and not a token bucket: a platform rule "200 comments per day" means 200
 * in any 24 hours, and a bucket of 200 that refills 200 a day allows up to
 * ~400 in the first day (a full bucket plus the refill); the log is exact,
 * its retry_after is exact (the moment the oldest counted event leaves),
 * and its cost is 8 bytes per counted event, bounded below.
 *
 * ## Duplicates
 * An action with an idempotency key that was allowed within the snapshot's
 * dedupe window (default 24h, 0 turns suppression off) is denied with
 * reason "duplicate" (kx_gate_decision.id == "duplicate"). After the window
 * the key is new again. Keys are compared verbatim across all clients: the
 * caller namespaces them (e.g. prefixes the token's scope) if tenants must
 * not collide. Keys are 1..KX_GATE_KEY_MAX bytes without control
 * characters; "" or NULL means no key.
 *
 * ## The decision, in order
 *   1. a denying switch (block; read_only on a side effect)   -> deny
 *   2. a duplicate idempotency key                            -> deny
 *   3. caps and ramps; when several deny, the one with the
 *      longest retry_after is named (ties: the first defined) -> deny
 *   4. an approve switch (side effects)                       -> approval_required
 *   5.                                                           allow
 * Denials come before approval so that a human is never asked to approve
 * an action that would be refused anyway.
 *
 * ## Threads
 * kx_gate_check() only reads the state; kx_gate_record(), kx_gate_decide()
 * and kx_gate_check_batch() change it. The caller serialises them with one
 * mutex per state (a decision is one to two microseconds of work, so one
 * mutex carries a few hundred thousand decisions per second; checks alone
 * may share a read lock). Sharding
 * the state (one state + mutex per shard, chosen by a hash of the client)
 * is correct only when no cap and no idempotency key spans shards, i.e.
 * every cap selects on `client`; the single mutex is the safe default.
 * Snapshots need no lock; swap them with an atomic pointer and free the old
 * one when no reader holds it (reference count or RCU).
 *
 * ## Bounded memory (struct kx_gate_limits)
 * The state holds at most max_counters counters, max_events counted
 * timestamps over all counters, and max_keys idempotency keys. Counters and
 * keys sit on least-recently-used lists; expired ones are dropped as new
 * ones arrive, and when a limit is reached the least recently used is
 * evicted even if still live (counted in kx_gate_stats.evicted_*). An
 * evicted counter forgets its events and an evicted key its allowance, so
 * a limit that is too small errs towards allowing: size max_counters and
 * max_keys above the distinct counters/keys of one window (stats show
 * evictions). The only excess allowed is for the counters of the action
 * being recorded, which are never evicted from under it. The upper bound
 * on memory is about
 *     max_counters * (96 + KX_GATE_ID_MAX + KX_LABEL_VALUE_MAX)
 *   + max_events * 8
 *   + max_keys * (48 + KX_GATE_KEY_MAX)
 *   + 2 pointers per counter and per key (hash buckets)
 * With the defaults that is about 500 MiB at the very worst (every key and
 * every per value at its maximum length); with 36-byte keys and short
 * values under 150 MiB, and in practice far less (a counter's ring starts
 * at one slot and doubles). Note what a key limit means: at R keyed
 * actions per second, duplicates are caught for min(window, max_keys / R)
 * — 1M keys at 1,000 keyed actions/s is about 17 minutes, not 24 hours.
 *
 * ## Building snapshots
 * A switch or cap that fails to add (a selector that no longer parses, a
 * duplicate id) fails the snapshot. The caller must then keep serving the
 * previous snapshot, or fail closed (a snapshot with one global block or
 * approve switch) — never build one without the bad switch, which would
 * silently lift a stop.
 *
 * ## Speed
 * Sealing a snapshot indexes switches and caps by the values they require
 * of the `action` and `client` labels; a rule that requires neither is
 * indexed by whichever other label value it requires that the fewest such
 * rules share. A check therefore looks only at the rules that can match
 * (its action's and client's, those of its other indexed label values, and
 * the few that require no value at all) instead of all of them.
 * kx_gate_check() allocates nothing; recording allocates only for a new
 * counter, a growing ring or a new key. Measured on one core with 100
 * switches and 1,000 caps (test_gate prints it; a shared 2-core machine,
 * so the low ends are contention): 0.4 to 1 million checks/s, 0.35 to 0.65
 * million decisions/s (check + record with a fresh idempotency key).
 */
#ifndef KX_GATE_H
#define KX_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"
#include "core/selector.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/time.h"

#define KX_GATE_ID_MAX 128	   /* switch and cap ids, bytes */
#define KX_GATE_KEY_MAX 256	   /* idempotency keys, bytes */
#define KX_GATE_LIMIT_MAX 1000000  /* N of a cap, peak of a ramp */
#define KX_GATE_WINDOW_MAX (366 * 86400000LL) /* W of a cap or ramp: 366 days */
#define KX_GATE_DEDUPE_DEFAULT (86400000LL)   /* 24h */

/* retry_after when waiting cannot help (N = 0, a ramp whose limit stays
 * below the count, or not applicable). */
#define KX_GATE_NEVER INT64_MAX

/* ---- switches ---------------------------------------------------------- */

enum kx_gate_mode {
	KX_GATE_BLOCK,
	KX_GATE_APPROVE,
	KX_GATE_READ_ONLY,
};

/* "block", "approve", "read_only"; anything else is KX_EINVAL
 * ("unknown switch mode 'x' (use block, approve or read_only)"). */
int kx_gate_mode_parse(const char *s, enum kx_gate_mode *out, struct kx_err *err);
const char *kx_gate_mode_name(enum kx_gate_mode mode);

/* A ramp (see above). start == KX_TIME_UNSET: none, the other fields are
 * then ignored. Otherwise start < end, end - start <= KX_GATE_WINDOW_MAX,
 * 0 < window <= KX_GATE_WINDOW_MAX, floor <= peak, 1 <= peak <=
 * KX_GATE_LIMIT_MAX. */
struct kx_gate_ramp {
	kx_ms start, end;
	kx_ms window;
	uint32_t floor, peak;
};

/* A switch. As input to kx_gate_snapshot_add_switch() every pointer is
 * borrowed and copied; as returned by the snapshot (decisions,
 * kx_gate_snapshot_switch()) every pointer is owned by the snapshot and
 * `selector` is in canonical form. */
struct kx_gate_switch {
	const char *id;	      /* 1..KX_GATE_ID_MAX bytes, unique in a snapshot */
	const char *selector; /* selector text; "" or NULL = everything */
	enum kx_gate_mode mode;
	const char *reason;   /* why; may be NULL */
	const char *set_by;   /* who; may be NULL */
	kx_ms set_at;	      /* KX_TIME_UNSET if unknown (sorts as oldest) */
	kx_ms expires_at;     /* KX_TIME_UNSET = never */
	const char *incident; /* incident id or NULL */
	struct kx_gate_ramp ramp;
};

/* ---- caps -------------------------------------------------------------- */

/* A parsed cap spec. Invariants: limit <= KX_GATE_LIMIT_MAX, 0 < window <=
 * KX_GATE_WINDOW_MAX, per is "" or a valid label key. */
struct kx_gate_cap {
	struct kx_selector sel;
	uint32_t limit;
	kx_ms window;
	char per[KX_LABEL_KEY_MAX + 1];
};

void kx_gate_cap_init(struct kx_gate_cap *cap);
void kx_gate_cap_release(struct kx_gate_cap *cap);

/* Parses "SELECTOR: N/WINDOW [per KEY]":
 *     "platform=instagram,action=comment: 200/1d"
 *     "action=dm: 1/10s per account"
 *     "client=acme: 1000/hour"
 * SELECTOR is everything before the last ':' (see core/selector.h; may be
 * empty for a global cap). WINDOW is a duration ("10s", "1h30m", "1d") or
 * one of second, minute, hour, day, week. Errors say the column:
 * "cannot parse cap at column 26: window '0s' must be longer than zero".
 * cap must be initialised; on failure it is left empty. */
int kx_gate_cap_parse(struct kx_gate_cap *cap, const char *spec, struct kx_err *err);
/* Appends the canonical spec: "action=dm: 1/10s per account" (the window
 * as kx_duration_format prints it). Parses back to an equal cap. */
int kx_gate_cap_format(const struct kx_gate_cap *cap, struct kx_buf *out);

/* ---- snapshots ----------------------------------------------------------- */

struct kx_gate_snapshot;

/* An empty, unsealed snapshot (dedupe window KX_GATE_DEDUPE_DEFAULT), or
 * NULL when out of memory. */
struct kx_gate_snapshot *kx_gate_snapshot_new(void);
void kx_gate_snapshot_free(struct kx_gate_snapshot *snap);

/* Adds a copy of sw. KX_EINVAL (message naming the switch) for a bad id,
 * a selector that does not parse, an unknown mode or a bad ramp;
 * KX_ECONFLICT when the snapshot is sealed. */
int kx_gate_snapshot_add_switch(struct kx_gate_snapshot *snap, const struct kx_gate_switch *sw,
				struct kx_err *err);
/* Adds cap `id` from its spec (kx_gate_cap_parse); errors as above,
 * "cap 'c1': cannot parse cap at column 14: …". */
int kx_gate_snapshot_add_cap(struct kx_gate_snapshot *snap, const char *id, const char *spec,
			     struct kx_err *err);
/* The duplicate-suppression window (>= 0, 0 = off). */
int kx_gate_snapshot_set_dedupe_window(struct kx_gate_snapshot *snap, kx_ms window,
				       struct kx_err *err);
/* Checks that ids are unique per kind (KX_EINVAL "switch id 'x' is used
 * twice"; a cap and a switch may share one) and builds the indexes;
 * afterwards the snapshot is immutable and may be checked against. Sealing
 * twice is a no-op. */
int kx_gate_snapshot_seal(struct kx_gate_snapshot *snap, struct kx_err *err);

/* Reading a snapshot back (for listings and the switch stream). Switches
 * and caps keep the order they were added in. */
size_t kx_gate_snapshot_switch_count(const struct kx_gate_snapshot *snap);
const struct kx_gate_switch *kx_gate_snapshot_switch(const struct kx_gate_snapshot *snap,
						     size_t i);
size_t kx_gate_snapshot_cap_count(const struct kx_gate_snapshot *snap);
/* Cap i; *id and *spec (canonical) stay owned by the snapshot. */
const struct kx_gate_cap *kx_gate_snapshot_cap(const struct kx_gate_snapshot *snap, size_t i,
					       const char **id, const char **spec);

/* ---- state ---------------------------------------------------------------- */

struct kx_gate_limits {
	size_t max_counters; /* default 1 << 18 */
	size_t max_events;   /* default 1 << 22 (32 MiB of timestamps) */
	size_t max_keys;     /* default 1 << 20 */
	/* Allocate the hash tables' buckets for the limits up front (10 MiB of
	 * address space with the defaults, touched only as entries arrive), so
	 * that no doubling — a pause of tens of milliseconds under the
	 * caller's lock at a million keys — ever happens on the hot path. */
	bool presize;
};

struct kx_gate_stats {
	size_t counters, events, keys; /* live entries now */
	size_t bytes;		       /* memory held, bytes */
	uint64_t evicted_counters;     /* live counters dropped at a limit */
	uint64_t evicted_keys;	       /* live keys dropped at a limit */
};

struct kx_gate_state;

/* A new empty state; limits NULL (or a zero field) means the defaults.
 * NULL when out of memory. */
struct kx_gate_state *kx_gate_state_new(const struct kx_gate_limits *limits);
void kx_gate_state_free(struct kx_gate_state *st);
/* Forgets every counter and key (keeps the limits). */
void kx_gate_state_clear(struct kx_gate_state *st);
void kx_gate_state_stats(const struct kx_gate_state *st, struct kx_gate_stats *out);

/* ---- deciding --------------------------------------------------------------- */

struct kx_gate_action {
	const struct kx_labels *labels;	 /* required */
	const char *idempotency_key;	 /* NULL or "" = none */
	bool read_only;			 /* a read, not a side effect */
};

enum kx_gate_verdict {
	KX_GATE_ALLOW,
	KX_GATE_DENY,
	KX_GATE_APPROVAL_REQUIRED,
};

enum kx_gate_by {
	KX_GATE_BY_NONE,      /* allow */
	KX_GATE_BY_SWITCH,    /* a switch in full mode (deny or approval) */
	KX_GATE_BY_RAMP,      /* a ramping switch's limit */
	KX_GATE_BY_CAP,	      /* a cap */
	KX_GATE_BY_DUPLICATE, /* the idempotency key was allowed before */
	KX_GATE_BY_STATE,     /* the state could not record (out of memory): fail closed */
};

/* Every pointer is borrowed from the snapshot and valid while it lives. */
struct kx_gate_decision {
	enum kx_gate_verdict verdict;
	enum kx_gate_by by;
	/* what decided: the switch id, the cap id, "duplicate", "state";
	 * NULL on allow */
	const char *id;
	const struct kx_gate_switch *sw; /* BY_SWITCH, BY_RAMP */
	const struct kx_gate_cap *cap;	 /* BY_CAP */
	/* ms until the same action could be allowed (caps and ramps): when
	 * enough counted events leave the window. KX_GATE_NEVER when waiting
	 * cannot help or does not apply (switches, duplicates). */
	kx_ms retry_after;
	/* one line of valid UTF-8 for humans, e.g. "cap 'c1' allows 1 per 10s
	 * for actions matching 'action=dm' (per account '@brand'); retry in
	 * 4s"; "" on allow */
	char reason[512];
};

/* Decides on one action without changing the state. KX_EINVAL for a bad
 * action (no labels, a bad idempotency key), `now` outside the epoch to
 * the end of year 9999, or an unsealed snapshot. */
int kx_gate_check(const struct kx_gate_snapshot *snap, const struct kx_gate_state *st,
		  const struct kx_gate_action *act, kx_ms now, struct kx_gate_decision *out,
		  struct kx_err *err);

/* Applies an allow to the state: counts the action in every counter it
 * matches (caps and active ramps) and remembers its idempotency key. Used
 * by kx_gate_decide() and for actions allowed outside the gate (an
 * approval granted by a human). All or nothing: KX_ENOMEM leaves nothing
 * counted. A key already remembered keeps its first time. If `now` is
 * earlier than a counter's newest event (a clock stepped back) the event is
 * counted at that newest time, which keeps it counted longer, never
 * shorter. */
int kx_gate_record(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
		   const struct kx_gate_action *act, kx_ms now, struct kx_err *err);

/* Check, and record when the verdict is allow. If recording fails the
 * verdict becomes deny (KX_GATE_BY_STATE) and KX_ENOMEM is returned: the
 * gate never allows what it could not count. */
int kx_gate_decide(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
		   const struct kx_gate_action *act, kx_ms now, struct kx_gate_decision *out,
		   struct kx_err *err);

/* kx_gate_decide() over acts[0..n) in order, into out[0..n): each action
 * sees the effects of the allowed ones before it (two actions with the same
 * key: the second is a duplicate; a cap of 1: the second is denied). Every
 * action is validated first; an invalid one fails the whole batch with
 * KX_EINVAL naming its place, from 1 ("action 3: …"), and nothing decided or
 * recorded. Out of memory on one action denies that one (BY_STATE), the
 * rest are still decided, and KX_ENOMEM is returned at the end. */
int kx_gate_check_batch(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
			const struct kx_gate_action *acts, size_t n, kx_ms now,
			struct kx_gate_decision *out, struct kx_err *err);

const char *kx_gate_verdict_name(enum kx_gate_verdict v); /* "allow", "deny", "approval_required" */
const char *kx_gate_by_name(enum kx_gate_by by); /* "", "switch", "ramp", "cap", "duplicate", "state" */

#endif
