/* audit.h — the audit event and the hash chain that makes the log
 * tamper-evident.
 *
 * An audit event records one action: automation's side effects (a comment,
 * a DM, a publish) and Klaxon's own human actions (declaring an incident,
 * creating a token). Events form one chain in append order: event `seq`
 * stores the hash of event seq - 1 (`prev_hash`; 32 zero bytes for event 1)
 * and its own hash
 *
 *     hash = BLAKE2b-256(prev_hash || kx_audit_canonical(event))
 *
 * so changing, removing or reordering any stored event breaks the chain at
 * that event or the next, which kx_audit_verify_step finds. The canonical
 * encoding below is a stored format: changing it makes every existing chain
 * look broken. It never changes; a new format would get a new version tag.
 *
 * Invariants of a struct kx_audit_event that passed kx_audit_event_check:
 * - actor and action are set; every string is valid UTF-8 without control
 *   characters and within its limit: target KX_AUDIT_TARGET_MAX,
 *   artifact_url KX_AUDIT_URL_MAX, content_hash and idempotency_key
 *   KX_AUDIT_KEY_MAX, client, account, platform, lane and action
 *   KX_LABEL_VALUE_MAX (they are what a label scope matches), the rest
 *   KX_NAME_MAX;
 * - at is set, not before 2000-01-01 and not more than
 *   KX_AUDIT_FUTURE_MS after the `now` it was checked against;
 * - labels never use a key that is also a field (client, account, platform,
 *   lane, action; see kx_audit_scope_key): those are given as fields.
 * The event owns its strings and labels (release with
 * kx_audit_event_release). Nothing here reads the clock or does I/O.
 */
#ifndef KX_AUDIT_H
#define KX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"

#define KX_AUDIT_TARGET_MAX 1024 /* bytes: target (a post URL, a user handle…) */
#define KX_AUDIT_URL_MAX 2048    /* bytes: artifact_url */
#define KX_AUDIT_KEY_MAX 256     /* bytes: content_hash, idempotency_key */
/* Clock skew tolerated on `at` before an event counts as "in the future". */
#define KX_AUDIT_FUTURE_MS (5 * 60 * 1000)

struct kx_audit_event {
	int64_t seq; /* chain position, from 1; 0 until appended */
	kx_ms at;    /* when the action happened; KX_TIME_UNSET: not given */
	char *actor;
	char *client;
	char *account;
	char *platform;
	char *lane;
	char *action;
	char *target;
	char *content_hash;
	char *outcome;
	char *trace_id;
	char *artifact_url;
	char *idempotency_key;
	struct kx_labels labels;
	uint8_t prev_hash[KX_HASH_LEN];
	uint8_t hash[KX_HASH_LEN];
};

/* A list of events (read from the store, or decoded from a request). */
struct kx_audit_events {
	struct kx_audit_event *v;
	size_t n;
};

void kx_audit_event_init(struct kx_audit_event *e);
void kx_audit_event_release(struct kx_audit_event *e);
/* Deep copy into dst (initialised here); 0 or KX_ENOMEM. */
int kx_audit_event_copy(struct kx_audit_event *dst, const struct kx_audit_event *src);
void kx_audit_events_release(struct kx_audit_events *l);

/* The text fields by name, in canonical order: what the encoders and the
 * decoders iterate over. kx_audit_field(e, i) is the address of field i's
 * pointer, for i < KX_AUDIT_NFIELDS. */
#define KX_AUDIT_NFIELDS 12
extern const char *const kx_audit_field_names[KX_AUDIT_NFIELDS];
char **kx_audit_field(struct kx_audit_event *e, size_t i);
const char *kx_audit_field_value(const struct kx_audit_event *e, size_t i);

/* Is key one of the fields a label scope may name (client, account,
 * platform, lane, action)? Such a key selects the field, not a label. */
bool kx_audit_scope_key(const char *key);
/* The value the scope key `key` sees on e: the field for a scope key, the
 * label otherwise; NULL when absent. */
const char *kx_audit_scope_value(const struct kx_audit_event *e, const char *key);
/* Does e carry every label of scope (an empty scope matches everything)? */
bool kx_audit_match_scope(const struct kx_audit_event *e, const struct kx_labels *scope);
/* Gives e the scope's values where it has none; a different value already
 * there is KX_EFORBIDDEN naming the key. */
int kx_audit_apply_scope(struct kx_audit_event *e, const struct kx_labels *scope,
			 struct kx_err *err);

/* Checks the invariants above against `now`. The message names the field
 * ("'actor' is required", "'target' is longer than 1024 bytes"); the
 * caller prefixes where the event came from. */
int kx_audit_event_check(const struct kx_audit_event *e, kx_ms now, struct kx_err *err);

/* Appends the canonical bytes of e (everything but prev_hash and hash) to
 * out: the tag "klaxon.audit.v1\0"; seq and at as 8-byte big-endian
 * integers (at unset as INT64_MIN); each text field in kx_audit_field_names
 * order as one byte 0 (absent) or 1 followed by a 4-byte big-endian length
 * and the bytes; the label count (4 bytes) and each label's key and value,
 * length-prefixed likewise, in key order. 0 or KX_ENOMEM. */
int kx_audit_canonical(const struct kx_audit_event *e, struct kx_buf *out);

/* hash = BLAKE2b-256(prev || canonical(e)) into out. 0 or KX_ENOMEM. */
int kx_audit_compute(const struct kx_audit_event *e, const uint8_t prev[KX_HASH_LEN],
		     uint8_t out[KX_HASH_LEN]);
/* Links e after prev (its predecessor's hash; NULL for the first event):
 * sets e->prev_hash and e->hash. e->seq must be set. 0 or KX_ENOMEM. */
int kx_audit_chain(struct kx_audit_event *e, const uint8_t *prev);

/* One step of verification: is stored event e the correct successor of an
 * event with sequence number prev_seq (0: e must be the first) and hash
 * prev (NULL when e is the first)? Returns 0, or KX_ECONFLICT with `why`
 * saying what differs — a gap in the sequence, a prev_hash that is not the
 * predecessor's hash, or a hash that does not match the event's content —
 * or KX_ENOMEM. */
int kx_audit_verify_step(const struct kx_audit_event *e, int64_t prev_seq, const uint8_t *prev,
			 struct kx_err *why);

/* Labels as a compact JSON object with keys in order ({"k":"v",…}), the
 * form the store keeps; appended to out. 0 or KX_ENOMEM. */
int kx_audit_labels_json(const struct kx_labels *ls, struct kx_buf *out);
/* Parses what kx_audit_labels_json wrote (any JSON object of strings) into
 * ls, which must be empty. 0 or KX_EINVAL/KX_ENOMEM. */
int kx_audit_labels_parse(const char *json, struct kx_labels *ls, struct kx_err *err);

#endif
