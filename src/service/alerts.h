/* alerts.h — the detection use cases: services, integration keys, alert
 * ingestion and routing into incidents, heartbeats, silences, change
 * events.
 *
 * Ingestion (kx_svc_alert_ingest) takes a batch of events for one service
 * and commits it in one write transaction, all or nothing: per event it
 * routes (core/route.h), folds into the firing alert of the same dedup key
 * or inserts a new one, checks the silences in force, and — unless
 * silenced or routed to stay an alert — attaches the alert to the open
 * incident of its group or declares one (service/incidents.h), with
 * timeline entries, audit records and outbox notifications in the same
 * transaction. A resolve closes the alert; when it was the last firing
 * alert of its incident, the timeline says so and, with the rule's
 * resolve_to_monitoring, the incident moves to monitoring. A resolve for a
 * key with no firing alert is accepted and changes nothing.
 *
 * Identity: ingestion acts as "integration:ID" (the key's) or, for the
 * engine's heartbeats and health checks, "heartbeat:NAME" and
 * "check:NAME": that name is the author of what it records.
 */
#ifndef KX_SVC_ALERTS_H
#define KX_SVC_ALERTS_H

#include "core/alert.h"
#include "core/token.h"
#include "service/app.h"
#include "store/store.h"

struct kx_router;

/* What one ingested event did (for the HTTP answer and the tests). */
struct kx_ingest_outcome {
	int64_t alert;		/* the alert's id, 0 for a resolve/ack that found none */
	char dedup_key[KX_ALERT_DEDUP_MAX + 1];
	bool created;		/* a new alert (else folded, acked or resolved) */
	bool silenced;
	char incident[32];	/* the incident it is attached to, "" if none */
	bool declared;		/* that incident was declared by this event */
};

/* Ingests events[0..n) for `service` (must exist, else KX_ENOTFOUND)
 * as `actor` ("integration:int_…"). outcomes (may be NULL) has room for n.
 * Events without a dedup key get one: the fingerprint of their labels, or
 * of their summary when they have none. Retries its transaction on
 * KX_ECONFLICT (two daemons folding the same alert). */
int kx_svc_alert_ingest(const struct kx_app *app, const char *service, const char *actor,
			struct kx_alert_event *events, size_t n, kx_ms now,
			struct kx_ingest_outcome *outcomes, struct kx_err *err);

/* Integration keys: authenticate the key a source presented; KX_EAUTH for
 * an unknown or revoked key, KX_EFORBIDDEN when the key is for another
 * source (`want`; KX_SOURCE_GENERIC keys are accepted by every endpoint
 * but Events v2, whose clients rely on its key length). */
int kx_svc_integration_auth(const struct kx_app *app, const char *key,
			    enum kx_alert_source want, struct kx_integration *out,
			    struct kx_err *err);

/* The engine's periodic work (engine/checks.h calls these about once a
 * second): heartbeats that are due go down and open an alert; firing
 * alerts whose ends_at passed (Alertmanager API v2) resolve. */
int kx_svc_heartbeat_tick(const struct kx_app *app, kx_ms now, struct kx_err *err);
int kx_svc_alert_expire_tick(const struct kx_app *app, kx_ms now, struct kx_err *err);

/* A ping: KX_ENOTFOUND for an unknown key. Resolves its alert when down. */
int kx_svc_heartbeat_ping(const struct kx_app *app, const char *key, kx_ms now,
			  struct kx_heartbeat *out, struct kx_err *err);

/* Services from the config are written to the store at start-up. */
int kx_svc_services_sync(const struct kx_app *app, kx_ms now, struct kx_err *err);

/* Services through the API (admin): s->name, description and labels are
 * read; KX_ECONFLICT when the name is taken. A scoped token lists and
 * reads only the services whose labels match its scope. get also reads
 * the newest change events when changes is not NULL. */
int kx_svc_service_create(const struct kx_app *app, const struct kx_token *who,
			  const struct kx_service *s, kx_ms now, struct kx_err *err);
int kx_svc_service_list(const struct kx_app *app, const struct kx_token *who,
			struct kx_services *out, struct kx_err *err);
int kx_svc_service_get(const struct kx_app *app, const struct kx_token *who, const char *name,
		       struct kx_service *out, struct kx_change_events *changes,
		       struct kx_err *err);
/* Records a change event (c->service set, must exist). */
int kx_svc_change_record(const struct kx_app *app, struct kx_change_event *c, kx_ms now,
			 struct kx_err *err);

/* Integration keys (admin). create fills out and the key (shown once). */
int kx_svc_integration_create(const struct kx_app *app, const struct kx_token *who,
			      const char *service, enum kx_alert_source source, const char *name,
			      kx_ms now, struct kx_integration *out,
			      char key[KX_INTEGRATION_KEY_LEN + 1], struct kx_err *err);
int kx_svc_integration_list(const struct kx_app *app, const char *service,
			    struct kx_integrations *out, struct kx_err *err);
int kx_svc_integration_revoke(const struct kx_app *app, const struct kx_token *who,
			      const char *id, kx_ms now, struct kx_err *err);

/* Alerts as people see them: services outside a scoped token's scope
 * are invisible (KX_ENOTFOUND). act: what = "ack", "resolve" or "noise"
 * (noise sets or clears the mark); out is the alert afterwards. */
int kx_svc_alert_list(const struct kx_app *app, const struct kx_token *who,
		      const struct kx_alert_filter *f, struct kx_alerts *out, struct kx_err *err);
int kx_svc_alert_get(const struct kx_app *app, const struct kx_token *who, int64_t id,
		     struct kx_alert *out, struct kx_err *err);
int kx_svc_alert_act(const struct kx_app *app, const struct kx_token *who, int64_t id,
		     const char *what, bool noise, kx_ms now, struct kx_alert *out,
		     struct kx_err *err);

/* Silences and maintenance windows (create and expire need a token
 * without a label scope: a silence reaches every service). create
 * canonicalises s->matchers
 * (at least one), defaults starts_at to now, and sets id, created_*.
 * list: with active_only, those in force or still to come; else all. */
int kx_svc_silence_create(const struct kx_app *app, const struct kx_token *who,
			  struct kx_silence *s, kx_ms now, struct kx_err *err);
int kx_svc_silence_list(const struct kx_app *app, bool active_only, kx_ms now,
			struct kx_silences *out, struct kx_err *err);
int kx_svc_silence_expire(const struct kx_app *app, const struct kx_token *who, const char *id,
			  kx_ms now, struct kx_silence *out, struct kx_err *err);

/* Heartbeats. create reads h->name, service, interval, grace, level and
 * fills the rest and the ping key (shown once). A scoped token sees and
 * deletes only those of services in its scope; deleting one that is down
 * resolves its alert. */
int kx_svc_heartbeat_create(const struct kx_app *app, const struct kx_token *who,
			    struct kx_heartbeat *h, kx_ms now,
			    char key[KX_INTEGRATION_KEY_LEN + 1], struct kx_err *err);
int kx_svc_heartbeat_list(const struct kx_app *app, const struct kx_token *who,
			  struct kx_heartbeats *out, struct kx_err *err);
int kx_svc_heartbeat_delete(const struct kx_app *app, const struct kx_token *who,
			    const char *name, kx_ms now, struct kx_err *err);

#endif
