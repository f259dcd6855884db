/* alert.h — alerts: what monitoring says is wrong with a service.
 *
 * An alert belongs to a service (struct kx_service) and is identified
 * within it by its dedup key: Alertmanager's fingerprint (or a hash of the
 * labels when absent), PagerDuty's dedup_key, a heartbeat's or a health
 * check's name. While an alert is firing, every event with its dedup key
 * folds into it (count, last_seen, the newest summary and details); once
 * resolved, the next trigger with that key opens a new alert.
 *
 * Sources report events (struct kx_alert_event, what the decoders in
 * http/decode_alerts.h produce); the service layer (service/alerts.h)
 * turns them into stored alerts (struct kx_alert), routes them
 * (core/route.h) and links them to incidents.
 *
 * Alert labels follow Prometheus, not Klaxon's scope labels: keys are
 * [A-Za-z_][A-Za-z0-9_]* up to KX_ALERT_LABEL_KEY_MAX bytes, values any
 * UTF-8 without control characters up to KX_ALERT_LABEL_VALUE_MAX bytes
 * (an empty value means "no such label", as in Prometheus, and is
 * dropped). They are kept in a struct kx_labels (sorted, one value per
 * key) filled with kx_alert_label_set, which applies these rules instead
 * of kx_labels_set's.
 *
 * Nothing here does I/O or reads the clock.
 */
#ifndef KX_ALERT_H
#define KX_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"

/* Limits (bad input beyond them is a 400 naming the field). */
#define KX_ALERT_SUMMARY_MAX 1024   /* characters (PagerDuty's limit) */
#define KX_ALERT_DEDUP_MAX 255	    /* bytes (PagerDuty's limit) */
#define KX_ALERT_FIELD_MAX 255	    /* bytes: source, component, group, class */
#define KX_ALERT_LABELS_MAX 128	    /* labels per alert */
#define KX_ALERT_LABEL_KEY_MAX 128  /* bytes */
#define KX_ALERT_LABEL_VALUE_MAX 2048 /* bytes */
#define KX_ALERT_DETAILS_MAX (64 * 1024) /* bytes of details JSON text */
#define KX_ALERT_EVENT_MAX (512 * 1024)	 /* bytes of one request body (PagerDuty's) */
#define KX_ALERT_BATCH_MAX 1000		 /* alerts in one request */
#define KX_ALERT_FUTURE_SKEW ((kx_ms)5 * 60 * 1000)	   /* a start this far ahead is refused */
#define KX_ALERT_PAST_MAX ((kx_ms)366 * 24 * 3600 * 1000) /* a start this far back is refused */

enum kx_alert_status { KX_ALERT_FIRING = 0, KX_ALERT_RESOLVED = 1 };
/* PagerDuty's four levels, most severe first. */
enum kx_alert_level { KX_LEVEL_CRITICAL = 0, KX_LEVEL_ERROR, KX_LEVEL_WARNING, KX_LEVEL_INFO };
enum kx_alert_source {
	KX_SOURCE_ALERTMANAGER = 0, /* webhook receiver and API v2 */
	KX_SOURCE_EVENTS_V2,	    /* PagerDuty Events API v2 */
	KX_SOURCE_GENERIC,	    /* POST /v1/alerts */
	KX_SOURCE_HEARTBEAT,	    /* a missed heartbeat */
	KX_SOURCE_CHECK,	    /* a failing health check */
	KX_SOURCE_MANUAL,	    /* created through the API by a person */
};
enum kx_alert_action { KX_ALERT_TRIGGER = 0, KX_ALERT_ACKNOWLEDGE, KX_ALERT_RESOLVE };

const char *kx_alert_status_name(enum kx_alert_status s);   /* "firing", "resolved" */
const char *kx_alert_level_name(enum kx_alert_level l);	    /* "critical", … */
const char *kx_alert_source_name(enum kx_alert_source s);   /* "alertmanager", "events-v2",
							     * "generic", "heartbeat", "check",
							     * "manual" */
const char *kx_alert_action_name(enum kx_alert_action a);   /* "trigger", "acknowledge", "resolve" */
int kx_alert_status_parse(const char *s, enum kx_alert_status *out, struct kx_err *err);
int kx_alert_level_parse(const char *s, enum kx_alert_level *out, struct kx_err *err);
int kx_alert_source_parse(const char *s, enum kx_alert_source *out, struct kx_err *err);
int kx_alert_action_parse(const char *s, enum kx_alert_action *out, struct kx_err *err);

/* The level of a Prometheus `severity` label, loosely: "critical", "page",
 * "high", "p1", "sev1", "emergency", "fatal" → critical; "error", "major",
 * "p2", "sev2" → error; "warning", "warn", "minor", "p3", "sev3" → warning;
 * "info", "low", "none", "p4", "p5", "ok" → info (case-insensitive);
 * anything else, or NULL → `fallback`. */
enum kx_alert_level kx_alert_level_guess(const char *s, enum kx_alert_level fallback);

/* Validation and insertion of one alert label (see above). An empty value
 * is accepted and not stored. KX_EINVAL naming the key; KX_ETOOBIG past
 * KX_ALERT_LABELS_MAX labels. */
int kx_alert_label_set(struct kx_labels *ls, const char *key, const char *value,
		       struct kx_err *err);

/* The fingerprint of a label set, as Klaxon computes it when a source
 * gives none: 16 lowercase hex digits of BLAKE2b over the sorted
 * "key\xffvalue\xff" pairs. Order-independent. */
#define KX_FINGERPRINT_LEN 16
void kx_alert_fingerprint(const struct kx_labels *ls, char out[KX_FINGERPRINT_LEN + 1]);

/* One event from a source: a trigger (new or repeat), an acknowledge or a
 * resolve, as the decoders read it. Every string is owned (NULL: absent). */
struct kx_alert_event {
	enum kx_alert_source source;
	enum kx_alert_action action;
	char *dedup_key;	/* NULL: the service layer derives it (fingerprint) */
	char *summary;		/* required for a trigger */
	char *source_host;	/* Events v2 payload.source; Alertmanager: instance label */
	char *component, *group, *class;
	enum kx_alert_level level;
	struct kx_labels labels; /* Prometheus labels; Events v2: none */
	char *details;		/* a JSON object as compact text, NULL: {} — annotations,
				 * generatorURL, custom_details, links, images … */
	kx_ms starts_at;	/* when it began; KX_TIME_UNSET: now */
	kx_ms ends_at;		/* Alertmanager: resolved at (past) or expected end of a
				 * firing alert (future, API v2 only); KX_TIME_UNSET: none */
};
void kx_alert_event_init(struct kx_alert_event *e);
void kx_alert_event_release(struct kx_alert_event *e);

/* Checks what the decoders cannot: a trigger has a summary; lengths are in
 * the limits above; starts_at is neither after now + KX_ALERT_FUTURE_SKEW
 * nor before now - KX_ALERT_PAST_MAX. `where` prefixes messages
 * ("alerts[3]: 'summary' is required"); may be NULL. */
int kx_alert_event_check(const struct kx_alert_event *e, kx_ms now, const char *where,
			 struct kx_err *err);

/* A list of events, as one request carries them. */
struct kx_alert_events {
	struct kx_alert_event *v;
	size_t n, cap;
};
void kx_alert_events_init(struct kx_alert_events *l);
void kx_alert_events_release(struct kx_alert_events *l);
/* Appends a new initialised event and returns it, NULL when out of memory
 * or at KX_ALERT_BATCH_MAX. */
struct kx_alert_event *kx_alert_events_push(struct kx_alert_events *l);

/* A stored alert. */
struct kx_alert {
	int64_t id;		/* > 0, assigned by the store */
	char *service;
	char *dedup_key;
	enum kx_alert_source source;
	enum kx_alert_status status;
	enum kx_alert_level level;
	char *summary;
	char *source_host, *component, *group, *class; /* NULL: absent */
	struct kx_labels labels;
	char *details;		/* JSON object text, never NULL once stored ("{}") */
	char *severity;		/* the Klaxon severity the route gave ("P1"), NULL: none */
	char *route;		/* the routing rule that matched, NULL: the default */
	char *incident;		/* the incident it is attached to, NULL: none */
	char *silenced_by;	/* silence id that muted it when it last fired, NULL: none */
	bool noise;		/* marked as noise by a person */
	int64_t count;		/* events folded into it (1 for a new alert) */
	kx_ms starts_at, first_seen, last_seen;
	kx_ms ends_at;		/* expected end (Alertmanager API v2), KX_TIME_UNSET: none */
	kx_ms acked_at, resolved_at; /* KX_TIME_UNSET: not (yet) */
	char *acked_by, *resolved_by; /* a token name, "source" or "expired"; NULL */
};
void kx_alert_init(struct kx_alert *a);
void kx_alert_release(struct kx_alert *a);

/* A service: what breaks ("payments"). Names follow [a-z0-9_-]{1,64}. */
struct kx_service {
	char *name;
	char *description;	/* may be NULL */
	struct kx_labels labels; /* Klaxon labels copied onto its incidents */
	bool from_config;	/* defined in the config file (read-only via the API) */
	kx_ms created_at;
};
void kx_service_init(struct kx_service *s);
void kx_service_release(struct kx_service *s);
int kx_service_name_check(const char *name, struct kx_err *err);

/* An integration key: how a source authenticates. The key itself
 * (KX_INTEGRATION_KEY_LEN characters of [a-z0-9], PagerDuty's length, for
 * every source) is shown once at creation and stored as its hash. */
#define KX_INTEGRATION_KEY_LEN 32
struct kx_integration {
	char id[KX_ID_LEN];	/* "int_…" */
	uint8_t hash[KX_HASH_LEN];
	char *service;
	enum kx_alert_source source; /* ALERTMANAGER, EVENTS_V2 or GENERIC */
	char *name;		/* may be NULL */
	char *created_by;
	kx_ms created_at;
	kx_ms revoked_at;	/* KX_TIME_UNSET while valid */
};
void kx_integration_init(struct kx_integration *i);
void kx_integration_release(struct kx_integration *i);
/* A fresh key: KX_INTEGRATION_KEY_LEN random [a-z0-9] + NUL. */
void kx_integration_key_generate(char out[KX_INTEGRATION_KEY_LEN + 1]);

/* A heartbeat: the sender pings POST /v1/heartbeats/{key} at least every
 * `interval`; when no ping came for interval + grace it is `down` and has
 * an alert open (source heartbeat, dedup key "heartbeat:NAME"), which the
 * next ping resolves. A new heartbeat is `waiting` until its first ping
 * and cannot go down before it (as in Grafana OnCall and GoAlert: one
 * created before its sender is deployed does not page). */
enum kx_heartbeat_state { KX_HB_WAITING = 0, KX_HB_UP, KX_HB_DOWN };
const char *kx_heartbeat_state_name(enum kx_heartbeat_state s); /* "waiting", "up", "down" */
struct kx_heartbeat {
	char *name;		/* [a-z0-9_-]{1,64}, unique */
	char *service;
	uint8_t hash[KX_HASH_LEN]; /* of its ping key */
	kx_ms interval, grace;
	enum kx_alert_level level; /* of the alert a miss opens (default error) */
	enum kx_heartbeat_state state;
	kx_ms last_ping;	/* KX_TIME_UNSET: never */
	kx_ms due_at;		/* last_ping + interval + grace; KX_TIME_UNSET while waiting */
	char *created_by;
	kx_ms created_at;
};
void kx_heartbeat_init(struct kx_heartbeat *h);
void kx_heartbeat_release(struct kx_heartbeat *h);

/* A silence or maintenance window: alerts that match every matcher
 * (core/route.h) while starts_at <= now < ends_at are stored and shown but
 * neither open nor attach to incidents, nor notify. Their resolves are
 * still recorded. */
enum kx_silence_kind { KX_SILENCE = 0, KX_MAINTENANCE };
const char *kx_silence_kind_name(enum kx_silence_kind k); /* "silence", "maintenance" */
struct kx_silence {
	char id[KX_ID_LEN];	/* "sil_…" */
	enum kx_silence_kind kind;
	char *matchers;		/* canonical text: `alertname=~"DB.*",service="payments"` */
	kx_ms starts_at, ends_at;
	char *comment;
	char *created_by;
	kx_ms created_at;
	kx_ms expired_at;	/* ended early by a person; KX_TIME_UNSET: not */
};
void kx_silence_init(struct kx_silence *s);
void kx_silence_release(struct kx_silence *s);
bool kx_silence_active(const struct kx_silence *s, kx_ms now);

/* A change event (PagerDuty's /v2/change/enqueue): a deploy, a config
 * push — recorded on the service's timeline. */
struct kx_change_event {
	int64_t id;
	char *service;
	char *summary;
	char *source_host;	/* may be NULL */
	char *details;		/* JSON object text (custom_details, links) */
	kx_ms at;		/* the event's timestamp, or its arrival */
	kx_ms received_at;
};
void kx_change_event_init(struct kx_change_event *c);
void kx_change_event_release(struct kx_change_event *c);

#endif
