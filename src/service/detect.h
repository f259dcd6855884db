/* detect.h — detection rules at run time: the audit log feeds every
 * committed event to the detector (core/detect.h), and a rule that fires
 * opens an incident and, when the rule says `contain`, trips a kill switch
 * over the offending scope.
 *
 * What a firing does, in order, each step its own transaction and each
 * recorded by the service that does it (audit log, timeline, outbox):
 *   1. declares an incident (kx_svc_declare) with the rule's severity and
 *      type, the firing's title and labels (client, account, platform,
 *      lane of the triggering event, and detection=RULE);
 *   2. adds the evidence to its timeline (kx_svc_incident_note): count,
 *      window, first and last times, the group;
 *   3. with `contain`, sets a switch (kx_svc_switch_set) over the firing's
 *      selector, in the rule's mode, expiring after contain_for (0: until
 *      cleared), tied to the incident — also when the declaration failed,
 *      since stopping the damage matters more than the paperwork;
 *   4. queues the outbox event "detection.fired" (rule, group, count,
 *      window, times, incident, switch).
 * The acting identity is a synthetic admin token named "detection:RULE"
 * with no scope: that name is the author of the incident, its timeline
 * entries, the switch and their audit events.
 *
 * A failure in any step is logged and does not stop the next; nothing here
 * fails the append that fed it (its events are committed already).
 *
 * Only events appended through kx_svc_audit_append (automation's) are
 * fed; Klaxon's own recorded actions (kx_svc_audit_record: the incident and
 * switch a firing makes among them) are not, so a firing never feeds back.
 *
 * State is per daemon: with several daemons on one PostgreSQL store, each
 * counts the events appended through it, so a loop spread over daemons
 * behind a load balancer is seen by each only in part.
 */
#ifndef KX_SVC_DETECT_H
#define KX_SVC_DETECT_H

#include <stddef.h>

#include "core/audit.h"
#include "lib/err.h"
#include "lib/time.h"
#include "service/app.h"

struct kx_detect_rt;

/* Builds the runtime for app->cfg's detections; *out is NULL (and 0 is
 * returned) when none are configured. KX_EINVAL for a rule the detector
 * refuses (the config parser normally has already), KX_ENOMEM. */
int kx_detect_rt_new(const struct kx_app *app, struct kx_detect_rt **out, struct kx_err *err);
void kx_detect_rt_free(struct kx_detect_rt *rt);

/* Feeds ev[0..n), just committed by kx_svc_audit_append, to app->detect
 * (nothing when NULL) and carries out every firing (see above). The
 * detector's state is updated under its mutex; the side effects run after
 * it is released, on the caller's thread. Safe from any thread. */
void kx_svc_detect_feed(const struct kx_app *app, const struct kx_audit_event *ev, size_t n,
			kx_ms now);

#endif
