/* encode.h — JSON views of the model for API responses. Each returns a new
 * reference (NULL on allocation failure). */
#ifndef KX_ENCODE_H
#define KX_ENCODE_H

#include <jansson.h>

#include "core/config.h"
#include "core/incident.h"
#include "core/token.h"
#include "lib/buf.h"

json_t *kx_enc_time(kx_ms t); /* null when unset */
json_t *kx_enc_labels(const struct kx_labels *ls);
json_t *kx_enc_incident(const struct kx_incident *inc);
json_t *kx_enc_timeline_entry(const struct kx_timeline_entry *e);
json_t *kx_enc_action_item(const struct kx_action_item *a);
json_t *kx_enc_token(const struct kx_token *t);
json_t *kx_enc_severity(const struct kx_severity *s);

/* Serialises j (compact, or indented with pretty) into out. */
int kx_enc_dump(const json_t *j, struct kx_buf *out, bool pretty);

#endif
