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

#endif
