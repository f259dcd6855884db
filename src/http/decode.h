/* decode.h — strict decoding of JSON request bodies into service requests.
 *
 * Bodies must be JSON objects; unknown keys, wrong types and out-of-range
 * values are KX_EINVAL with a message naming the field. Decoded structs
 * point into the json_t they came from: keep it alive while using them.
 * These are the parsers the fuzz targets drive.
 */
#ifndef KX_DECODE_H
#define KX_DECODE_H

#include <jansson.h>

#include "service/audit.h"
#include "service/incidents.h"

/* An empty body (len 0) is an empty object. */
int kx_json_parse_object(const char *body, size_t len, json_t **out, struct kx_err *err);
/* allowed is NULL-terminated. */
int kx_json_check_keys(json_t *obj, const char *const *allowed, struct kx_err *err);
/* Absent or null leaves *out NULL unless required. */
int kx_json_str(json_t *obj, const char *key, bool required, const char **out,
		struct kx_err *err);
int kx_json_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
		struct kx_err *err);
int kx_json_bool(json_t *obj, const char *key, bool *out, struct kx_err *err);
int kx_json_time(json_t *obj, const char *key, kx_ms *out, struct kx_err *err);
/* Labels object {"k":"v"}; with unset != NULL, null values are collected
 * there (keys to remove) instead of being an error. */
int kx_json_labels(json_t *obj, const char *key, struct kx_labels *out, const char ***unset,
		   size_t *nunset, struct kx_err *err);
/* Array of strings; *out is malloc'd (free it), its strings point into obj. */
int kx_json_strings(json_t *obj, const char *key, const char ***out, size_t *n, bool *present,
		    struct kx_err *err);

/* Query parameters: a duration back from now ("2h") or an RFC 3339 time;
 * a decimal number from min to max. KX_EINVAL naming the parameter. */
int kx_param_when(const char *key, const char *value, kx_ms now, kx_ms *out,
		  struct kx_err *err);
int kx_param_number(const char *key, const char *value, long long min, long long max,
		    long long *out, struct kx_err *err);

/* Holds what a decoded request borrows or owns besides the JSON. */
struct kx_decoded {
	json_t *json;
	const char **types;
	const char **unset;
	struct kx_labels labels;
};
void kx_decoded_release(struct kx_decoded *d);

int kx_decode_declare(const char *body, size_t len, struct kx_declare *out,
		      struct kx_decoded *hold, struct kx_err *err);
int kx_decode_change(const char *body, size_t len, enum kx_change_kind kind,
		     struct kx_change *out, struct kx_decoded *hold, struct kx_err *err);
int kx_decode_note(const char *body, size_t len, const char **text, kx_ms *at,
		   struct kx_decoded *hold, struct kx_err *err);
int kx_decode_action_item(const char *body, size_t len, struct kx_action_item *out,
			  struct kx_decoded *hold, struct kx_err *err);
int kx_decode_token(const char *body, size_t len, enum kx_access *role, const char **name,
		    struct kx_decoded *hold, struct kx_err *err);

/* Audit events from a POST /v1/audit/events body: one JSON object (one
 * event), {"events":[…]} (a batch), or — with ndjson — one JSON object per
 * line (blank lines are skipped). Every event is decoded and checked
 * (kx_audit_event_check against now; an absent "at" is now), at most
 * KX_AUDIT_BATCH_MAX of them, before any is
 * returned, so a bad one fails the whole body, with a message that names
 * it: "line 3: …" for NDJSON, "event 3: …" (1-based) for a batch. On
 * success out owns the events (kx_audit_events_release); on failure it is
 * empty. */
int kx_decode_audit(const char *body, size_t len, bool ndjson, kx_ms now,
		    struct kx_audit_events *out, struct kx_err *err);
/* One NDJSON line of the usual shape decoded without a JSON tree (see
 * plainjson.h): 1 and *out checked, or 0 (out empty) when the line is not
 * of that shape or not valid — then kx_decode_audit_event decides. On
 * every line where it returns 1 the full decoder gives the same event
 * (fuzz_audit checks it). */
int kx_decode_audit_line_fast(const char *p, size_t len, kx_ms now,
			      struct kx_audit_event *out);
/* One audit event object (the fields of api.md), checked against now. */
int kx_decode_audit_event(json_t *obj, kx_ms now, struct kx_audit_event *out,
			  struct kx_err *err);

#endif
