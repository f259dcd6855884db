/* record.h — the incident record in Markdown, following the runbooks'
 * template: summary (severity, status, detected, resolved), roles,
 * timeline, impact, root cause, resolution, action items.
 */
#ifndef KX_RECORD_H
#define KX_RECORD_H

#include "core/config.h"
#include "core/incident.h"
#include "lib/buf.h"

/* Appends the record to out. cfg supplies severity descriptions (may be
 * NULL). Returns 0 or KX_ENOMEM. */
int kx_record_markdown(struct kx_buf *out, const struct kx_incident *inc,
		       const struct kx_timeline_entry *timeline, size_t ntimeline,
		       const struct kx_action_item *items, size_t nitems,
		       const struct kx_config *cfg);

/* Appends s with Markdown's inline specials escaped and line breaks folded
 * to spaces, so user text cannot forge headings, lists or links. */
int kx_md_inline(struct kx_buf *out, const char *s);

#endif
