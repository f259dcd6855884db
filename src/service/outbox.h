/* outbox.h — notifications out, durably: an event is written to the outbox
 * (the store's job queue, kind "notify") in the same transaction as the
 * change that caused it, one job per configured channel that takes it
 * (config.h: struct kx_channel — its `events` and `selector`). engine/
 * delivers the jobs after commit, at least once, each with an idempotency
 * key that the receiver uses to drop repeats.
 *
 * Events are named "resource.verb": "incident.declared", "switch.set",
 * "switch.cleared", "switch.resumed", "cap.set", "cap.cleared",
 * "approval.requested", "approval.decided", "detection.fired".
 */
#ifndef KX_SVC_OUTBOX_H
#define KX_SVC_OUTBOX_H

#include <jansson.h>

#include "core/labels.h"
#include "service/app.h"
#include "store/store.h"

/* Queues `event` in tx for every channel that takes it. labels are the
 * labels of the object concerned (matched against channel selectors and
 * sent along); data is the event's object (borrowed; it is copied into the
 * payload) — e.g. the switch as the API shows it. *queued (may be NULL)
 * is set to the number of channels it went to. Also notifies the change
 * feed (topic "outbox") so that the engine wakes at commit. */
int kx_svc_outbox_emit(const struct kx_app *app, struct kx_tx *tx, const char *event,
		       const struct kx_labels *labels, json_t *data, kx_ms now, int *queued,
		       struct kx_err *err);

/* The delivery log (newest first; get also reads the attempts when
 * attempts is not NULL). KX_ENOTFOUND for an unknown id. */
int kx_svc_notification_list(const struct kx_app *app, const struct kx_notification_filter *f,
			     struct kx_notifications *out, struct kx_err *err);
int kx_svc_notification_get(const struct kx_app *app, const char *id,
			    struct kx_notification *out,
			    struct kx_notification_attempts *attempts, struct kx_err *err);

#endif
