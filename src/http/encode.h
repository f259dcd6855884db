/* encode.h — JSON views of the model for API responses. Each returns a new
 * reference (NULL on allocation failure). */
#ifndef KX_ENCODE_H
#define KX_ENCODE_H

#include <jansson.h>

#include "core/audit.h"
#include "core/config.h"
#include "core/incident.h"
#include "core/token.h"
#include "lib/buf.h"
#include "store/store.h"

json_t *kx_enc_time(kx_ms t); /* null when unset */
json_t *kx_enc_labels(const struct kx_labels *ls);
json_t *kx_enc_incident(const struct kx_incident *inc);
json_t *kx_enc_timeline_entry(const struct kx_timeline_entry *e);
json_t *kx_enc_action_item(const struct kx_action_item *a);
json_t *kx_enc_token(const struct kx_token *t);
json_t *kx_enc_severity(const struct kx_severity *s);
/* An audit event as stored: every field (null when absent), labels, seq,
 * and prev_hash and hash in hex. */
json_t *kx_enc_audit_event(const struct kx_audit_event *e);
/* A group of duplicates (with action and content_hash) or of recipients. */
json_t *kx_enc_audit_group(const struct kx_audit_group *g, bool duplicates);

/* CSV (RFC 4180): a field quoted when it holds a comma, a quote or a line
 * break, quotes doubled; rows end in CRLF. The audit columns are those of
 * kx_enc_audit_event, labels as their JSON text. */
int kx_enc_csv_field(struct kx_buf *out, const char *s);
int kx_enc_audit_csv_header(struct kx_buf *out);
int kx_enc_audit_csv_row(struct kx_buf *out, const struct kx_audit_event *e);

/* Serialises j (compact, or indented with pretty) into out. */
int kx_enc_dump(const json_t *j, struct kx_buf *out, bool pretty);

#endif
