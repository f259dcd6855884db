#include "service/detect.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/detect.h"
#include "core/guard.h"
#include "core/incident.h"
#include "core/token.h"
#include "lib/log.h"
#include "service/guard.h"
#include "service/incidents.h"
#include "service/outbox.h"

/* The detector is not thread-safe: every feed holds `lock`. Nothing slow
 * (no store call) happens while it is held. */
struct kx_detect_rt {
	pthread_mutex_t lock;
	struct kx_detector *det;
};

int kx_detect_rt_new(const struct kx_app *app, struct kx_detect_rt **out, struct kx_err *err)
{
	struct kx_detect_rt *rt;
	int rc;

	*out = NULL;
	if (!app->cfg->ndetections)
		return 0;
	if (!(rt = calloc(1, sizeof(*rt))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if ((rc = kx_detector_new(app->cfg->detections, app->cfg->ndetections, 0, &rt->det, err))) {
		free(rt);
		return rc;
	}
	if (pthread_mutex_init(&rt->lock, NULL)) {
		kx_detector_free(rt->det);
		free(rt);
		return kx_err_set(err, KX_ENOMEM, "cannot create a mutex");
	}
	*out = rt;
	return 0;
}

void kx_detect_rt_free(struct kx_detect_rt *rt)
{
	if (!rt)
		return;
	pthread_mutex_destroy(&rt->lock);
	kx_detector_free(rt->det);
	free(rt);
}

static enum kx_gate_mode gate_mode(const struct kx_detection *r)
{
	switch (r->contain_mode) {
	case KX_CONTAIN_APPROVE: return KX_GATE_APPROVE;
	case KX_CONTAIN_READ_ONLY: return KX_GATE_READ_ONLY;
	default: return KX_GATE_BLOCK;
	}
}

/* ---- the steps of a firing --------------------------------------------- */

static int declare(const struct kx_app *app, const struct kx_token *who,
		   const struct kx_detect_fired *f, kx_ms now, struct kx_incident *inc)
{
	const struct kx_detection *r = f->rule;
	const char *types[1] = {r->type};
	char summary[256];
	struct kx_declare d;
	struct kx_err err = {0};
	int rc;

	kx_declare_init(&d);
	snprintf(summary, sizeof(summary), "Opened by detection rule '%s'%s.", r->name,
		 r->contain ? ", which also contains the offending scope with a kill switch" : "");
	d.title = f->title;
	d.severity = r->severity;
	d.summary = summary;
	d.types = types;
	d.ntypes = r->type ? 1 : 0;
	d.started_at = f->first_at;
	d.detected_at = now;
	if ((rc = kx_labels_copy(&d.labels, &f->labels)) == 0)
		rc = kx_svc_declare(app, who, &d, now, inc, &err);
	else
		kx_err_set(&err, rc, "out of memory");
	kx_declare_release(&d);
	if (rc)
		kx_log(KX_LOG_ERROR, "detection '%s' fired for %s: cannot declare an incident: %s",
		       r->name, f->group, err.msg);
	else
		kx_log(KX_LOG_WARN, "detection '%s' fired for %s: declared %s (%s)", r->name, f->group,
		       inc->id, r->severity);
	return rc;
}

static void note(const struct kx_app *app, const struct kx_token *who, const char *rule,
		 const char *id, const char *text, kx_ms now)
{
	struct kx_timeline_entry e = {0};
	struct kx_err err = {0};
	if (kx_svc_incident_note(app, who, id, text, KX_TIME_UNSET, now, &e, &err))
		kx_log(KX_LOG_ERROR, "detection '%s': cannot add a note to %s: %s", rule, id, err.msg);
	else
		kx_timeline_entry_release(&e);
}

/* Trips the switch; sw->id[0] stays '\0' when none was set. */
static void contain(const struct kx_app *app, const struct kx_token *who,
		    const struct kx_detect_fired *f, const char *incident, kx_ms now,
		    struct kx_switch *sw)
{
	const struct kx_detection *r = f->rule;
	struct kx_switch_req req = {0};
	struct kx_err err = {0};
	char reason[1000], why[700];

	kx_switch_init(sw);
	if (!r->contain)
		return;
	if (!f->contain_selector) {
		kx_log(KX_LOG_WARN,
		       "detection '%s' fired for %s: not contained, the event has none of the "
		       "fields to contain by",
		       r->name, f->group);
		if (incident)
			note(app, who, r->name, incident,
			     "Not contained: the triggering event has none of the fields this rule "
			     "contains by, and a detection never stops everything.",
			     now);
		return;
	}
	/* the made title names the rule already */
	if (r->title)
		snprintf(reason, sizeof(reason), "detection '%s': %s", r->name, f->title);
	else
		snprintf(reason, sizeof(reason), "%s", f->title);
	req.selector = f->contain_selector;
	req.mode = gate_mode(r);
	req.reason = reason;
	req.expires_at = r->contain_for ? now + r->contain_for : KX_TIME_UNSET;
	req.incident = incident;
	if (kx_svc_switch_set(app, who, &req, now, sw, &err)) {
		kx_log(KX_LOG_ERROR, "detection '%s' fired for %s: cannot set a switch over '%s': %s",
		       r->name, f->group, f->contain_selector, err.msg);
		snprintf(why, sizeof(why), "%s", err.msg);
		kx_switch_release(sw);
		kx_switch_init(sw);
		if (incident) {
			char text[1200];
			snprintf(text, sizeof(text), "Containment failed: cannot set a switch over '%s': %s",
				 f->contain_selector, why);
			note(app, who, r->name, incident, text, now);
		}
		return;
	}
	kx_log(KX_LOG_WARN, "detection '%s': switch %s set over '%s' (%s)", r->name, sw->id,
	       sw->selector, kx_gate_mode_name(sw->mode));
}

/* "detection.fired" in a transaction of its own: the incident and the
 * switch are committed already (and notified by their own events). */
static void emit(const struct kx_app *app, const struct kx_detect_fired *f, const char *incident,
		 const char *switch_id, kx_ms now)
{
	const struct kx_detection *r = f->rule;
	char first[KX_TIME_STRLEN], lastt[KX_TIME_STRLEN], dur[32];
	struct kx_tx *tx = NULL;
	struct kx_err err = {0};
	json_t *data;
	int rc;

	kx_time_format(f->first_at, first);
	kx_time_format(f->last_at, lastt);
	kx_duration_format(r->window, dur);
	data = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s?}", "rule",
			 r->name, "kind", r->kind == KX_DETECT_RATE ? "rate" : "duplicates", "group",
			 f->group, "count", (json_int_t)f->count, "threshold",
			 (json_int_t)r->threshold, "window", dur, "first_at", first, "last_at", lastt,
			 "seq", (json_int_t)f->seq, "incident", incident, "switch", switch_id,
			 "selector", f->contain_selector);
	if (!data) {
		kx_log(KX_LOG_ERROR, "detection '%s': cannot queue 'detection.fired': out of memory",
		       r->name);
		return;
	}
	if ((rc = kx_store_begin(app->store, true, &tx, &err)) ||
	    (rc = kx_svc_outbox_emit(app, tx, "detection.fired", &f->labels, data, now, NULL, &err)))
		goto out;
	rc = kx_store_commit(tx, &err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	json_decref(data);
	if (rc)
		kx_log(KX_LOG_ERROR, "detection '%s': cannot queue 'detection.fired': %s", r->name,
		       err.msg);
}

static void act(const struct kx_app *app, const struct kx_detect_fired *f, kx_ms now)
{
	const struct kx_detection *r = f->rule;
	struct kx_token who;
	struct kx_incident inc;
	struct kx_switch sw;
	char name[128];
	bool declared;

	kx_token_init(&who);
	kx_incident_init(&inc);
	snprintf(name, sizeof(name), "detection:%s", r->name);
	who.name = name; /* borrowed: `who` is not released */
	who.role = KX_ACCESS_ADMIN;

	declared = declare(app, &who, f, now, &inc) == 0;
	if (declared)
		note(app, &who, r->name, inc.id, f->evidence, now);
	contain(app, &who, f, declared ? inc.id : NULL, now, &sw);
	emit(app, f, declared ? inc.id : NULL, sw.id[0] ? sw.id : NULL, now);
	kx_switch_release(&sw);
	kx_incident_release(&inc);
}

void kx_svc_detect_feed(const struct kx_app *app, const struct kx_audit_event *ev, size_t n,
			kx_ms now)
{
	struct kx_detect_rt *rt = app->detect;
	struct kx_detect_firings fired;
	struct kx_err err = {0};
	bool nomem = false;

	if (!rt)
		return;
	kx_detect_firings_init(&fired);
	pthread_mutex_lock(&rt->lock);
	for (size_t i = 0; i < n; i++)
		if (kx_detector_feed(rt->det, &ev[i], now, &fired, &err))
			nomem = true;
	pthread_mutex_unlock(&rt->lock);
	if (nomem)
		kx_log(KX_LOG_ERROR, "detections: %s (some events were not counted)", err.msg);
	for (size_t i = 0; i < fired.n; i++)
		act(app, &fired.v[i], now);
	kx_detect_firings_release(&fired);
}
