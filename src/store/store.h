/* store.h — the one persistence interface; backends: sqlite (and postgres).
 *
 * Only store/ speaks SQL. Services open a transaction, read and write
 * through it, and commit; a failed call leaves the transaction usable only
 * for rollback. Every function returns 0 or a negative KX_E… code with a
 * message in err; KX_ENOTFOUND for a missing row, KX_ECONFLICT for a stale
 * version or a uniqueness clash, KX_EUNAVAIL when the database cannot be
 * reached, KX_ESTORE for anything else.
 *
 * Objects read from the store are owned by the caller (release them with
 * their module's _release). The store is safe to use from many threads;
 * a transaction belongs to the thread that began it.
 */
#ifndef KX_STORE_H
#define KX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"
#include "core/audit.h"
#include "core/guard.h"
#include "core/incident.h"
#include "core/notify.h"
#include "core/token.h"
#include "lib/err.h"

struct kx_store;
struct kx_tx;

struct kx_incident_filter {
	const char *status;   /* NULL: any */
	const char *severity; /* NULL: any */
	struct kx_labels labels; /* all must match (scope and filters merged) */
	bool open_only;
	kx_ms declared_since; /* KX_TIME_UNSET: any */
	int limit;
};

struct kx_incident_list {
	struct kx_incident *v;
	size_t n;
};
void kx_incident_list_release(struct kx_incident_list *l);

struct kx_timeline {
	struct kx_timeline_entry *v;
	size_t n;
};
void kx_timeline_release(struct kx_timeline *t);

struct kx_action_items {
	struct kx_action_item *v;
	size_t n;
};
void kx_action_items_release(struct kx_action_items *a);

struct kx_tokens {
	struct kx_token *v;
	size_t n;
};
void kx_tokens_release(struct kx_tokens *t);

/* Background work (outbox deliveries, timers, probes): a durable queue that
 * any number of daemons drain together. A claimed job is leased to one
 * worker until `lease_until`; it is finished (deleted) or retried (put back
 * for later) by that worker. A worker that dies loses its lease and the job
 * runs again elsewhere, so handlers must be idempotent (at least once). */
struct kx_job {
	int64_t id;
	char *kind;
	char *payload;
	int attempts;   /* claims so far, this one included */
	kx_ms run_at;
	kx_ms lease_until;
};
struct kx_jobs {
	struct kx_job *v;
	size_t n;
};
void kx_jobs_release(struct kx_jobs *j);

/* Which audit events a query reads. Every condition given must hold;
 * NULL / KX_TIME_UNSET / 0 means "any". */
struct kx_audit_filter {
	kx_ms since; /* at >= since */
	kx_ms until; /* at < until */
	const char *actor;
	const char *client;
	const char *account;
	const char *platform;
	const char *lane;
	const char *action;
	const char *target;
	struct kx_labels labels; /* free labels, all must match (a scope's other keys) */
	int64_t after_seq;       /* > 0: only events with seq > after_seq */
	bool oldest_first;       /* order by seq ascending (default: newest first) */
	int limit;               /* rows at most; <= 0: 100 */
};
void kx_audit_filter_init(struct kx_audit_filter *f);
void kx_audit_filter_release(struct kx_audit_filter *f); /* frees labels only */

/* A group of events: duplicates (same action, target and content_hash) or
 * recipients (same target). content_hash and action are NULL where the
 * grouping does not use them or the events had none. */
struct kx_audit_group {
	char *action;
	char *target;
	char *content_hash;
	int64_t count;    /* events in the group */
	int64_t accounts; /* distinct accounts among them */
	kx_ms first_at;
	kx_ms last_at;
};
struct kx_audit_groups {
	struct kx_audit_group *v;
	size_t n;
};
void kx_audit_groups_release(struct kx_audit_groups *g);

struct kx_switches {
	struct kx_switch *v;
	size_t n;
};
void kx_switches_release(struct kx_switches *l);

struct kx_caps {
	struct kx_cap *v;
	size_t n;
};
void kx_caps_release(struct kx_caps *l);

struct kx_approvals {
	struct kx_approval *v;
	size_t n;
};
void kx_approvals_release(struct kx_approvals *l);

/* Which approval requests a listing reads. */
struct kx_approval_filter {
	bool pending_only; /* status pending and expires_at > now */
	kx_ms now;
	int limit;	   /* <= 0: 100 */
};


/* ---- detection: services, integrations, alerts, heartbeats, silences,
 * change events, the delivery log (migration 0004) ---- */
struct kx_services { struct kx_service *v; size_t n; };
void kx_services_release(struct kx_services *l);
struct kx_integrations { struct kx_integration *v; size_t n; };
void kx_integrations_release(struct kx_integrations *l);
struct kx_alerts { struct kx_alert *v; size_t n; };
void kx_alerts_release(struct kx_alerts *l);
struct kx_heartbeats { struct kx_heartbeat *v; size_t n; };
void kx_heartbeats_release(struct kx_heartbeats *l);
struct kx_silences { struct kx_silence *v; size_t n; };
void kx_silences_release(struct kx_silences *l);
struct kx_change_events { struct kx_change_event *v; size_t n; };
void kx_change_events_release(struct kx_change_events *l);
struct kx_notifications { struct kx_notification *v; size_t n; };
void kx_notifications_release(struct kx_notifications *l);
struct kx_notification_attempts { struct kx_notification_attempt *v; size_t n; };
void kx_notification_attempts_release(struct kx_notification_attempts *l);

/* Which alerts a listing reads; every condition given must hold. Newest
 * (highest id) first. */
struct kx_alert_filter {
	const char *service;  /* NULL: any */
	int status;	      /* -1: any, else enum kx_alert_status */
	const char *incident; /* NULL: any */
	kx_ms since;	      /* last_seen >= since; KX_TIME_UNSET: any */
	int64_t before_id;    /* > 0: id < before_id (paging) */
	int limit;	      /* <= 0: 100 */
};
/* Which notifications a listing reads; newest first. */
struct kx_notification_filter {
	const char *channel; /* NULL: any */
	int status;	     /* -1: any, else enum kx_notification_status */
	const char *subject; /* NULL: any */
	int limit;	     /* <= 0: 100 */
};

/* Change feed: a notification written in a transaction reaches every
 * subscriber — in this daemon and in every other daemon sharing the
 * database — after that transaction commits. The topic "*" means "changes
 * may have been missed (the feed reconnected): drop every cache". */
typedef void (*kx_change_fn)(const char *topic, const char *payload, void *arg);

/* A backend: OpenSMTPD's queue_backend pattern. `be` is the backend's own
 * state; `tx` its transaction. */
struct kx_store_backend {
	const char *name;
	/* Does this backend take the URL ("sqlite:…")? */
	bool (*accepts)(const char *url);
	int (*open)(const char *url, void **be, struct kx_err *err);
	void (*close)(void *be);
	int (*ping)(void *be, struct kx_err *err);

	int (*begin)(void *be, bool write, void **tx, struct kx_err *err);
	int (*commit)(void *tx, struct kx_err *err);
	void (*rollback)(void *tx);
	/* Optional (NULL: commit is used and is durable on return): commit a
	 * write transaction without waiting for it to reach the disk, and
	 * wait for that later (see kx_store_commit_async). */
	int (*commit_async)(void *tx, void **pending, struct kx_err *err);
	int (*pending_wait)(void *pending, struct kx_err *err);

	/* The next sequence number for incidents declared on day "YYYYMMDD". */
	int (*incident_next_seq)(void *tx, const char *day, int64_t *seq, struct kx_err *err);
	int (*incident_insert)(void *tx, const struct kx_incident *inc, struct kx_err *err);
	int (*incident_get)(void *tx, const char *id, struct kx_incident *out, struct kx_err *err);
	/* Writes inc (fields, types, labels, roles) if the stored version is
	 * still `expected_version`; KX_ECONFLICT otherwise. */
	int (*incident_update)(void *tx, const struct kx_incident *inc, int64_t expected_version,
			       struct kx_err *err);
	int (*incident_list)(void *tx, const struct kx_incident_filter *f,
			     struct kx_incident_list *out, struct kx_err *err);

	/* Sets e->id. */
	int (*timeline_add)(void *tx, const char *incident, struct kx_timeline_entry *e,
			    struct kx_err *err);
	int (*timeline_list)(void *tx, const char *incident, struct kx_timeline *out,
			     struct kx_err *err);

	/* Sets a->number to the next number of the incident. */
	int (*action_item_add)(void *tx, const char *incident, struct kx_action_item *a,
			       struct kx_err *err);
	int (*action_item_get)(void *tx, const char *incident, int64_t number,
			       struct kx_action_item *out, struct kx_err *err);
	int (*action_item_update)(void *tx, const char *incident, const struct kx_action_item *a,
				  struct kx_err *err);
	int (*action_item_list)(void *tx, const char *incident, struct kx_action_items *out,
				struct kx_err *err);

	int (*token_count)(void *tx, int64_t *n, struct kx_err *err);
	int (*token_insert)(void *tx, const struct kx_token *t, struct kx_err *err);
	int (*token_by_hash)(void *tx, const uint8_t hash[KX_HASH_LEN], struct kx_token *out,
			     struct kx_err *err);
	int (*token_get)(void *tx, const char *id, struct kx_token *out, struct kx_err *err);
	int (*token_list)(void *tx, struct kx_tokens *out, struct kx_err *err);
	int (*token_revoke)(void *tx, const char *id, kx_ms at, struct kx_err *err);

	int (*job_enqueue)(void *tx, const char *kind, const char *payload, kx_ms run_at,
			   int64_t *id, struct kx_err *err);
	/* In its own transaction: leases up to max due jobs (run_at <= now, not
	 * leased or lease expired) to `worker`; never hands one job to two
	 * claimers (FOR UPDATE SKIP LOCKED on PostgreSQL). */
	int (*job_claim)(void *be, const char *worker, kx_ms now, kx_ms lease, int max,
			 struct kx_jobs *out, struct kx_err *err);
	/* KX_ECONFLICT when the job is no longer leased to worker. */
	int (*job_finish)(void *be, int64_t id, const char *worker, struct kx_err *err);
	int (*job_retry)(void *be, int64_t id, const char *worker, kx_ms run_at,
			 struct kx_err *err);
	/* Singleton jobs: takes the named lock for this process if free, until
	 * close (an advisory lock on PostgreSQL; always granted on SQLite,
	 * which serves one daemon). */
	int (*singleton_try)(void *be, const char *name, bool *acquired, struct kx_err *err);

	int (*notify)(void *tx, const char *topic, const char *payload, struct kx_err *err);
	int (*subscribe)(void *be, kx_change_fn fn, void *arg, struct kx_err *err);

	/* The audit log (append-only). audit_append reads the chain head in
	 * tx and links ev[0..n) after it: it sets each event's seq, prev_hash
	 * and hash (kx_audit_chain) and inserts them. Appends serialize on the
	 * chain head — the writer lock on SQLite, a transaction-scoped advisory
	 * lock on PostgreSQL — so the chain never forks; call it last in a
	 * transaction that also changes other rows, to keep lock order. The
	 * events must already be valid (kx_audit_event_check). */
	int (*audit_append)(void *tx, struct kx_audit_event *ev, size_t n, struct kx_err *err);
	int (*audit_query)(void *tx, const struct kx_audit_filter *f,
			   struct kx_audit_events *out, struct kx_err *err);
	/* Up to limit events with seq > after_seq in seq order, hashes and all:
	 * the walk of verification. */
	int (*audit_page)(void *tx, int64_t after_seq, int limit, struct kx_audit_events *out,
			  struct kx_err *err);
	/* Groups of f's events with the same action, target and content_hash
	 * that hold more than one event (events without a target are left
	 * out), most events first. */
	int (*audit_duplicates)(void *tx, const struct kx_audit_filter *f,
				struct kx_audit_groups *out, struct kx_err *err);
	/* f's events grouped by target (events without one are left out), most
	 * events first. */
	int (*audit_recipients)(void *tx, const struct kx_audit_filter *f,
				struct kx_audit_groups *out, struct kx_err *err);

	/* Kill switches. Rows are never deleted; switch_update rewrites the
	 * mutable fields (mode, reason, expires_at, ramp, cleared_*) of the
	 * row with sw->id (KX_ENOTFOUND when there is none). switch_list
	 * returns, oldest set_at first, the switches in force at `now`
	 * (kx_switch_active) or, with all, every switch ever set. */
	int (*switch_insert)(void *tx, const struct kx_switch *sw, struct kx_err *err);
	int (*switch_get)(void *tx, const char *id, struct kx_switch *out, struct kx_err *err);
	int (*switch_update)(void *tx, const struct kx_switch *sw, struct kx_err *err);
	int (*switch_list)(void *tx, bool all, kx_ms now, struct kx_switches *out,
			   struct kx_err *err);

	/* Caps, keyed by id: cap_put inserts or replaces (*created says which);
	 * cap_delete is KX_ENOTFOUND for an unknown id; cap_list is by id. */
	int (*cap_put)(void *tx, const struct kx_cap *c, bool *created, struct kx_err *err);
	int (*cap_delete)(void *tx, const char *id, struct kx_err *err);
	int (*cap_list)(void *tx, struct kx_caps *out, struct kx_err *err);

	/* Approval requests. approval_pending_by_key finds the pending,
	 * unexpired request (expires_at > now) for an idempotency key and
	 * switch, KX_ENOTFOUND if none. approval_update rewrites status,
	 * decided_by, decided_at and note. approval_list is newest first. */
	int (*approval_insert)(void *tx, const struct kx_approval *a, struct kx_err *err);
	int (*approval_get)(void *tx, const char *id, struct kx_approval *out,
			    struct kx_err *err);
	int (*approval_pending_by_key)(void *tx, const char *switch_id, const char *key,
				       kx_ms now, struct kx_approval *out, struct kx_err *err);
	int (*approval_update)(void *tx, const struct kx_approval *a, struct kx_err *err);
	int (*approval_list)(void *tx, const struct kx_approval_filter *f,
			     struct kx_approvals *out, struct kx_err *err);

	/* Services, keyed by name: service_put inserts or replaces
	 * (description, labels, from_config; *created says which, may be
	 * NULL); service_list is by name. */
	int (*service_put)(void *tx, const struct kx_service *s, bool *created, struct kx_err *err);
	int (*service_get)(void *tx, const char *name, struct kx_service *out, struct kx_err *err);
	int (*service_list)(void *tx, struct kx_services *out, struct kx_err *err);

	/* Integration keys (stored as hashes). integration_by_hash finds
	 * revoked ones too (the caller checks revoked_at). integration_list:
	 * of one service (NULL: all), oldest first. */
	int (*integration_insert)(void *tx, const struct kx_integration *i, struct kx_err *err);
	int (*integration_get)(void *tx, const char *id, struct kx_integration *out,
			       struct kx_err *err);
	int (*integration_by_hash)(void *tx, const uint8_t hash[KX_HASH_LEN],
				   struct kx_integration *out, struct kx_err *err);
	int (*integration_list)(void *tx, const char *service, struct kx_integrations *out,
				struct kx_err *err);
	int (*integration_revoke)(void *tx, const char *id, kx_ms at, struct kx_err *err);

	/* Alerts. At most one alert per (service, dedup_key) is firing (a
	 * unique index): alert_insert of a second is KX_ECONFLICT, and the
	 * caller retries its transaction, finding the first one to fold into.
	 * alert_firing_by_key finds that firing alert (KX_ENOTFOUND if none)
	 * and, on PostgreSQL, locks its row until the transaction ends.
	 * alert_insert sets a->id; alert_update rewrites every field but id,
	 * service, dedup_key, source and first_seen; alert_fold writes only
	 * what a repeat of a firing alert changes — level, summary,
	 * source_host, component, group, class, labels, details, severity,
	 * route, silenced_by, count, last_seen and ends_at — and leaves the
	 * indexed status and incident alone, which saves rewriting their index
	 * entries (KX_ENOTFOUND unless a->id is firing). alert_count_firing counts
	 * the firing alerts attached to an incident. alert_expired lists, oldest
	 * ends_at first, up to limit firing alerts with ends_at <= now. */
	int (*alert_firing_by_key)(void *tx, const char *service, const char *dedup_key,
				   struct kx_alert *out, struct kx_err *err);
	int (*alert_insert)(void *tx, struct kx_alert *a, struct kx_err *err);
	int (*alert_update)(void *tx, const struct kx_alert *a, struct kx_err *err);
	int (*alert_fold)(void *tx, const struct kx_alert *a, struct kx_err *err);
	int (*alert_get)(void *tx, int64_t id, struct kx_alert *out, struct kx_err *err);
	int (*alert_list)(void *tx, const struct kx_alert_filter *f, struct kx_alerts *out,
			  struct kx_err *err);
	int (*alert_count_firing)(void *tx, const char *incident, int64_t *n, struct kx_err *err);
	int (*alert_expired)(void *tx, kx_ms now, int limit, struct kx_alerts *out,
			     struct kx_err *err);

	/* Change events on a service's timeline; change_list is newest first
	 * (service NULL: all). */
	int (*change_insert)(void *tx, struct kx_change_event *c, struct kx_err *err);
	int (*change_list)(void *tx, const char *service, int limit, struct kx_change_events *out,
			   struct kx_err *err);

	/* Heartbeats, keyed by name (insert of an existing name: KX_ECONFLICT).
	 * heartbeat_update rewrites state, last_ping and due_at.
	 * heartbeat_due lists, oldest due_at first, up to limit heartbeats not
	 * down whose due_at <= now; on PostgreSQL it locks them (SKIP LOCKED)
	 * until the transaction ends. */
	int (*heartbeat_insert)(void *tx, const struct kx_heartbeat *h, struct kx_err *err);
	int (*heartbeat_get)(void *tx, const char *name, struct kx_heartbeat *out,
			     struct kx_err *err);
	int (*heartbeat_by_hash)(void *tx, const uint8_t hash[KX_HASH_LEN],
				 struct kx_heartbeat *out, struct kx_err *err);
	int (*heartbeat_update)(void *tx, const struct kx_heartbeat *h, struct kx_err *err);
	int (*heartbeat_delete)(void *tx, const char *name, struct kx_err *err);
	int (*heartbeat_list)(void *tx, struct kx_heartbeats *out, struct kx_err *err);
	int (*heartbeat_due)(void *tx, kx_ms now, int limit, struct kx_heartbeats *out,
			     struct kx_err *err);

	/* Silences. silence_update rewrites ends_at, comment and expired_at.
	 * silence_list: with active_only, those in force at now
	 * (kx_silence_active); otherwise all; newest created first. */
	int (*silence_insert)(void *tx, const struct kx_silence *s, struct kx_err *err);
	int (*silence_get)(void *tx, const char *id, struct kx_silence *out, struct kx_err *err);
	int (*silence_update)(void *tx, const struct kx_silence *s, struct kx_err *err);
	int (*silence_list)(void *tx, bool active_only, kx_ms now, struct kx_silences *out,
			    struct kx_err *err);

	/* The delivery log. notification_insert adds a row (with the outbox
	 * job, in the event's transaction). notification_attempt appends
	 * attempt a to notification id and sets its status, attempts,
	 * last_code, last_error, last_attempt_at, next_attempt_at and, when
	 * delivered, delivered_at, from n (KX_ENOTFOUND for an unknown id).
	 * notification_get fills attempts too when it is not NULL (oldest
	 * first). */
	int (*notification_insert)(void *tx, const struct kx_notification *n, struct kx_err *err);
	int (*notification_attempt)(void *tx, const struct kx_notification *n,
				    const struct kx_notification_attempt *a, struct kx_err *err);
	int (*notification_get)(void *tx, const char *id, struct kx_notification *out,
				struct kx_notification_attempts *attempts, struct kx_err *err);
	int (*notification_list)(void *tx, const struct kx_notification_filter *f,
				 struct kx_notifications *out, struct kx_err *err);
};

/* Opens the store named by url ("sqlite:/path/klaxon.db"), creating it and
 * applying pending migrations. */
int kx_store_open(const char *url, struct kx_store **out, struct kx_err *err);
void kx_store_free(struct kx_store *s);
int kx_store_ping(struct kx_store *s, struct kx_err *err);
const char *kx_store_backend_name(const struct kx_store *s);

int kx_store_begin(struct kx_store *s, bool write, struct kx_tx **tx, struct kx_err *err);
/* Commits and frees tx (also when the commit fails). */
int kx_store_commit(struct kx_tx *tx, struct kx_err *err);
/* Rolls back and frees tx; NULL is a no-op. */
void kx_store_rollback(struct kx_tx *tx);
/* Commits and frees tx like kx_store_commit, but may return before the
 * commit is on disk: then *pending is set, and kx_store_pending_wait(),
 * on any thread, returns once it is durable (or reports that it could not
 * be made so), delivers the transaction's change notices and frees it.
 * Until then nothing may be told about the transaction. *pending is NULL
 * when the commit was durable on return (or failed). Lets a writer
 * prepare its next transaction while the last one's fsync runs. */
struct kx_pending;
int kx_store_commit_async(struct kx_tx *tx, struct kx_pending **pending, struct kx_err *err);
int kx_store_pending_wait(struct kx_pending *p, struct kx_err *err);

int kx_store_incident_next_seq(struct kx_tx *tx, const char *day, int64_t *seq,
			       struct kx_err *err);
int kx_store_incident_insert(struct kx_tx *tx, const struct kx_incident *inc,
			     struct kx_err *err);
int kx_store_incident_get(struct kx_tx *tx, const char *id, struct kx_incident *out,
			  struct kx_err *err);
int kx_store_incident_update(struct kx_tx *tx, const struct kx_incident *inc,
			     int64_t expected_version, struct kx_err *err);
int kx_store_incident_list(struct kx_tx *tx, const struct kx_incident_filter *f,
			   struct kx_incident_list *out, struct kx_err *err);
int kx_store_timeline_add(struct kx_tx *tx, const char *incident, struct kx_timeline_entry *e,
			  struct kx_err *err);
int kx_store_timeline_list(struct kx_tx *tx, const char *incident, struct kx_timeline *out,
			   struct kx_err *err);
int kx_store_action_item_add(struct kx_tx *tx, const char *incident, struct kx_action_item *a,
			     struct kx_err *err);
int kx_store_action_item_get(struct kx_tx *tx, const char *incident, int64_t number,
			     struct kx_action_item *out, struct kx_err *err);
int kx_store_action_item_update(struct kx_tx *tx, const char *incident,
				const struct kx_action_item *a, struct kx_err *err);
int kx_store_action_item_list(struct kx_tx *tx, const char *incident,
			      struct kx_action_items *out, struct kx_err *err);
int kx_store_token_count(struct kx_tx *tx, int64_t *n, struct kx_err *err);
int kx_store_token_insert(struct kx_tx *tx, const struct kx_token *t, struct kx_err *err);
int kx_store_token_by_hash(struct kx_tx *tx, const uint8_t hash[KX_HASH_LEN],
			   struct kx_token *out, struct kx_err *err);
int kx_store_token_get(struct kx_tx *tx, const char *id, struct kx_token *out,
		       struct kx_err *err);
int kx_store_token_list(struct kx_tx *tx, struct kx_tokens *out, struct kx_err *err);
int kx_store_token_revoke(struct kx_tx *tx, const char *id, kx_ms at, struct kx_err *err);

int kx_store_job_enqueue(struct kx_tx *tx, const char *kind, const char *payload, kx_ms run_at,
			 int64_t *id, struct kx_err *err);
int kx_store_job_claim(struct kx_store *s, const char *worker, kx_ms now, kx_ms lease, int max,
		       struct kx_jobs *out, struct kx_err *err);
int kx_store_job_finish(struct kx_store *s, int64_t id, const char *worker, struct kx_err *err);
int kx_store_job_retry(struct kx_store *s, int64_t id, const char *worker, kx_ms run_at,
		       struct kx_err *err);
int kx_store_singleton_try(struct kx_store *s, const char *name, bool *acquired,
			   struct kx_err *err);
/* Queues a change notification in tx (delivered after commit). topic and
 * payload are short identifiers (at most 200 bytes together). */
int kx_store_notify(struct kx_tx *tx, const char *topic, const char *payload,
		    struct kx_err *err);
/* Adds a subscriber; fn runs on a store thread and must be quick. */
int kx_store_subscribe(struct kx_store *s, kx_change_fn fn, void *arg, struct kx_err *err);

int kx_store_audit_append(struct kx_tx *tx, struct kx_audit_event *ev, size_t n,
			  struct kx_err *err);
int kx_store_audit_query(struct kx_tx *tx, const struct kx_audit_filter *f,
			 struct kx_audit_events *out, struct kx_err *err);
int kx_store_audit_page(struct kx_tx *tx, int64_t after_seq, int limit,
			struct kx_audit_events *out, struct kx_err *err);
int kx_store_audit_duplicates(struct kx_tx *tx, const struct kx_audit_filter *f,
			      struct kx_audit_groups *out, struct kx_err *err);
int kx_store_audit_recipients(struct kx_tx *tx, const struct kx_audit_filter *f,
			      struct kx_audit_groups *out, struct kx_err *err);

int kx_store_switch_insert(struct kx_tx *tx, const struct kx_switch *sw, struct kx_err *err);
int kx_store_switch_get(struct kx_tx *tx, const char *id, struct kx_switch *out,
			struct kx_err *err);
int kx_store_switch_update(struct kx_tx *tx, const struct kx_switch *sw, struct kx_err *err);
int kx_store_switch_list(struct kx_tx *tx, bool all, kx_ms now, struct kx_switches *out,
			 struct kx_err *err);
int kx_store_cap_put(struct kx_tx *tx, const struct kx_cap *c, bool *created,
		     struct kx_err *err);
int kx_store_cap_delete(struct kx_tx *tx, const char *id, struct kx_err *err);
int kx_store_cap_list(struct kx_tx *tx, struct kx_caps *out, struct kx_err *err);
int kx_store_approval_insert(struct kx_tx *tx, const struct kx_approval *a,
			     struct kx_err *err);
int kx_store_approval_get(struct kx_tx *tx, const char *id, struct kx_approval *out,
			  struct kx_err *err);
int kx_store_approval_pending_by_key(struct kx_tx *tx, const char *switch_id, const char *key,
				     kx_ms now, struct kx_approval *out, struct kx_err *err);
int kx_store_approval_update(struct kx_tx *tx, const struct kx_approval *a,
			     struct kx_err *err);
int kx_store_approval_list(struct kx_tx *tx, const struct kx_approval_filter *f,
			   struct kx_approvals *out, struct kx_err *err);

int kx_store_service_put(struct kx_tx *tx, const struct kx_service *s, bool *created,
			 struct kx_err *err);
int kx_store_service_get(struct kx_tx *tx, const char *name, struct kx_service *out,
			 struct kx_err *err);
int kx_store_service_list(struct kx_tx *tx, struct kx_services *out, struct kx_err *err);
int kx_store_integration_insert(struct kx_tx *tx, const struct kx_integration *i,
				struct kx_err *err);
int kx_store_integration_get(struct kx_tx *tx, const char *id, struct kx_integration *out,
			     struct kx_err *err);
int kx_store_integration_by_hash(struct kx_tx *tx, const uint8_t hash[KX_HASH_LEN],
				 struct kx_integration *out, struct kx_err *err);
int kx_store_integration_list(struct kx_tx *tx, const char *service,
			      struct kx_integrations *out, struct kx_err *err);
int kx_store_integration_revoke(struct kx_tx *tx, const char *id, kx_ms at, struct kx_err *err);
int kx_store_alert_firing_by_key(struct kx_tx *tx, const char *service, const char *dedup_key,
				 struct kx_alert *out, struct kx_err *err);
int kx_store_alert_insert(struct kx_tx *tx, struct kx_alert *a, struct kx_err *err);
int kx_store_alert_update(struct kx_tx *tx, const struct kx_alert *a, struct kx_err *err);
int kx_store_alert_fold(struct kx_tx *tx, const struct kx_alert *a, struct kx_err *err);
int kx_store_alert_get(struct kx_tx *tx, int64_t id, struct kx_alert *out, struct kx_err *err);
int kx_store_alert_list(struct kx_tx *tx, const struct kx_alert_filter *f, struct kx_alerts *out,
			struct kx_err *err);
int kx_store_alert_count_firing(struct kx_tx *tx, const char *incident, int64_t *n,
				struct kx_err *err);
int kx_store_alert_expired(struct kx_tx *tx, kx_ms now, int limit, struct kx_alerts *out,
			   struct kx_err *err);
int kx_store_change_insert(struct kx_tx *tx, struct kx_change_event *c, struct kx_err *err);
int kx_store_change_list(struct kx_tx *tx, const char *service, int limit,
			 struct kx_change_events *out, struct kx_err *err);
int kx_store_heartbeat_insert(struct kx_tx *tx, const struct kx_heartbeat *h, struct kx_err *err);
int kx_store_heartbeat_get(struct kx_tx *tx, const char *name, struct kx_heartbeat *out,
			   struct kx_err *err);
int kx_store_heartbeat_by_hash(struct kx_tx *tx, const uint8_t hash[KX_HASH_LEN],
			       struct kx_heartbeat *out, struct kx_err *err);
int kx_store_heartbeat_update(struct kx_tx *tx, const struct kx_heartbeat *h, struct kx_err *err);
int kx_store_heartbeat_delete(struct kx_tx *tx, const char *name, struct kx_err *err);
int kx_store_heartbeat_list(struct kx_tx *tx, struct kx_heartbeats *out, struct kx_err *err);
int kx_store_heartbeat_due(struct kx_tx *tx, kx_ms now, int limit, struct kx_heartbeats *out,
			   struct kx_err *err);
int kx_store_silence_insert(struct kx_tx *tx, const struct kx_silence *s, struct kx_err *err);
int kx_store_silence_get(struct kx_tx *tx, const char *id, struct kx_silence *out,
			 struct kx_err *err);
int kx_store_silence_update(struct kx_tx *tx, const struct kx_silence *s, struct kx_err *err);
int kx_store_silence_list(struct kx_tx *tx, bool active_only, kx_ms now,
			  struct kx_silences *out, struct kx_err *err);
int kx_store_notification_insert(struct kx_tx *tx, const struct kx_notification *n,
				 struct kx_err *err);
int kx_store_notification_attempt(struct kx_tx *tx, const struct kx_notification *n,
				  const struct kx_notification_attempt *a, struct kx_err *err);
int kx_store_notification_get(struct kx_tx *tx, const char *id, struct kx_notification *out,
			      struct kx_notification_attempts *attempts, struct kx_err *err);
int kx_store_notification_list(struct kx_tx *tx, const struct kx_notification_filter *f,
			       struct kx_notifications *out, struct kx_err *err);

extern const struct kx_store_backend kx_store_sqlite;
extern const struct kx_store_backend kx_store_postgres;

#endif
