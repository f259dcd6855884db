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

#endif
