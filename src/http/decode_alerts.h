/* decode_alerts.h — the ingestion parsers: request bodies of the alert
 * sources turned into struct kx_alert_event lists (core/alert.h). The
 * formats are in ../shared/WIRE-FORMATS.md and docs/api.md.
 *
 * Every decoder reads the whole body (body[0..len), not NUL-terminated)
 * with jansson and is all or nothing: on error `out` holds nothing
 * (released) and err says what is wrong and where, e.g.
 * "alerts[2].labels: 'Alert Name' is not a valid label name" or
 * "invalid JSON at line 1, column 17: unexpected end of input". Wrong
 * types, unknown enum values, oversize fields and more than
 * KX_ALERT_BATCH_MAX alerts are KX_EINVAL (KX_ETOOBIG for sizes). Each
 * decoded event also passes kx_alert_event_check(…, now, …), so future
 * and far-past timestamps are refused here. Unknown extra members are
 * ignored (senders add fields over time); a member with the wrong type is
 * an error.
 *
 * Timestamps are RFC 3339 with any fraction and offset
 * (kx_time_parse_rfc3339 or equivalent); Go's zero time
 * "0001-01-01T00:00:00Z" means "unset".
 */
#ifndef KX_DECODE_ALERTS_H
#define KX_DECODE_ALERTS_H

#include <stddef.h>

#include "core/alert.h"
#include "lib/err.h"
#include "lib/time.h"

/* Alertmanager webhook (payload "version": "4"; "3" is not accepted …
 * any other version than "4" is refused naming it). One event per element
 * of "alerts": status "firing" → TRIGGER, "resolved" → RESOLVE (ends_at =
 * endsAt); dedup_key = "fingerprint" when present and non-empty (NULL
 * otherwise); labels = the alert's labels (commonLabels/groupLabels are
 * not merged: each alert carries its own); level =
 * kx_alert_level_guess(labels.severity, KX_LEVEL_WARNING); summary =
 * annotations.summary, else annotations.description, else
 * annotations.message, else labels.alertname, else "alert"; source_host =
 * labels.instance; group = the payload's groupKey cut to
 * KX_ALERT_FIELD_MAX; details = {"annotations":{…},"generatorURL":…,
 * "externalURL":…,"receiver":…}. */
int kx_decode_am_webhook(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
			 struct kx_err *err);

/* Alertmanager API v2 POST /api/v2/alerts: a JSON array of postable
 * alerts {labels (required, non-empty), annotations, startsAt, endsAt,
 * generatorURL}. endsAt at or before now → RESOLVE, else TRIGGER with
 * ends_at = endsAt (UNSET when absent). dedup_key NULL (fingerprint of
 * labels), and the rest as for the webhook. */
int kx_decode_am_v2(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
		    struct kx_err *err);

/* PagerDuty Events API v2 POST /v2/enqueue: one event. routing_key is
 * returned in *routing_key (owned; the caller authenticates with it) and
 * must be a string of KX_INTEGRATION_KEY_LEN characters; event_action
 * trigger|acknowledge|resolve; dedup_key optional for a trigger (≤ 255),
 * required otherwise; a trigger needs payload {summary (≤ 1024 chars),
 * source, severity critical|error|warning|info}, optional timestamp,
 * component, group, class, custom_details (any JSON, kept as is); optional
 * top-level links [{href, text}] and images [{src, href, alt}]; "client",
 * "client_url" kept in details. details = {"custom_details":…, "links":
 * […], "images": […], "client":…, "client_url":…}.
 *
 * PagerDuty answers a bad event with a list of messages, so this decoder
 * collects every problem it finds (not just the first) into `errors` (up
 * to 16, each a NUL-terminated line like "'payload.severity' is invalid
 * (must be one of: critical, error, warning, info)") and sets err to the
 * first. `errors` may be NULL. */
#define KX_EV2_ERRORS_MAX 16
struct kx_ev2_errors {
	char *v[KX_EV2_ERRORS_MAX];
	size_t n;
};
void kx_ev2_errors_release(struct kx_ev2_errors *e);
int kx_decode_events_v2(const char *body, size_t len, kx_ms now, struct kx_alert_event *out,
			char **routing_key, struct kx_ev2_errors *errors, struct kx_err *err);

/* PagerDuty change event POST /v2/change/enqueue: {routing_key, payload:
 * {summary (required, ≤ 1024), source, timestamp, custom_details}, links}.
 * out->service is left NULL (the caller fills it from the key). */
int kx_decode_change_v2(const char *body, size_t len, kx_ms now, struct kx_change_event *out,
			char **routing_key, struct kx_ev2_errors *errors, struct kx_err *err);

/* Klaxon's own POST /v1/alerts: one object or {"alerts":[…]}, each
 * {"summary" (required for trigger), "status": "firing"|"resolved"
 * (default firing), "dedup_key", "severity": critical|error|warning|info
 * (default warning), "source", "component", "group", "class", "labels":
 * {…}, "details": {…}, "starts_at"}. dedup_key absent → fingerprint of
 * labels when there are labels, else of the summary (the service layer
 * does this: the decoder leaves it NULL). */
int kx_decode_generic_alerts(const char *body, size_t len, kx_ms now,
			     struct kx_alert_events *out, struct kx_err *err);

#endif
