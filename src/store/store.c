#include "store/store.h"

#include <stdlib.h>
#include <string.h>

struct kx_store {
	const struct kx_store_backend *be;
	void *state;
};

struct kx_tx {
	const struct kx_store_backend *be;
	void *tx;
};

static const struct kx_store_backend *const backends[] = {&kx_store_sqlite, &kx_store_postgres,
							   NULL};

int kx_store_open(const char *url, struct kx_store **out, struct kx_err *err)
{
	struct kx_store *s;
	int rc;

	for (int i = 0; backends[i]; i++) {
		if (!backends[i]->accepts(url))
			continue;
		if (!(s = calloc(1, sizeof(*s))))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		s->be = backends[i];
		if ((rc = s->be->open(url, &s->state, err))) {
			free(s);
			return rc;
		}
		*out = s;
		return 0;
	}
	return kx_err_set(err, KX_EINVAL,
			  "unsupported database URL '%.128s': use sqlite:PATH or postgres://…", url);
}

void kx_store_free(struct kx_store *s)
{
	if (!s)
		return;
	s->be->close(s->state);
	free(s);
}

int kx_store_ping(struct kx_store *s, struct kx_err *err)
{
	return s->be->ping(s->state, err);
}

const char *kx_store_backend_name(const struct kx_store *s)
{
	return s->be->name;
}

int kx_store_begin(struct kx_store *s, bool write, struct kx_tx **out, struct kx_err *err)
{
	struct kx_tx *tx = malloc(sizeof(*tx));
	int rc;
	if (!tx)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	tx->be = s->be;
	if ((rc = s->be->begin(s->state, write, &tx->tx, err))) {
		free(tx);
		return rc;
	}
	*out = tx;
	return 0;
}

int kx_store_commit(struct kx_tx *tx, struct kx_err *err)
{
	int rc = tx->be->commit(tx->tx, err);
	free(tx);
	return rc;
}

struct kx_pending {
	const struct kx_store_backend *be;
	void *p;
};

int kx_store_commit_async(struct kx_tx *tx, struct kx_pending **pending, struct kx_err *err)
{
	const struct kx_store_backend *be = tx->be;
	struct kx_pending *pd;
	void *p = NULL;
	int rc;

	*pending = NULL;
	if (!be->commit_async || !be->pending_wait || !(pd = malloc(sizeof(*pd))))
		return kx_store_commit(tx, err); /* durable on return */
	rc = be->commit_async(tx->tx, &p, err);
	free(tx);
	if (rc || !p) {
		free(pd);
		return rc;
	}
	pd->be = be;
	pd->p = p;
	*pending = pd;
	return 0;
}

int kx_store_pending_wait(struct kx_pending *pd, struct kx_err *err)
{
	int rc;
	if (!pd)
		return 0;
	rc = pd->be->pending_wait(pd->p, err);
	free(pd);
	return rc;
}

void kx_store_rollback(struct kx_tx *tx)
{
	if (!tx)
		return;
	tx->be->rollback(tx->tx);
	free(tx);
}

#define FWD(name, params, args)                                                                \
	int kx_store_##name params                                                             \
	{                                                                                      \
		return tx->be->name args;                                                      \
	}

FWD(incident_next_seq, (struct kx_tx * tx, const char *day, int64_t *seq, struct kx_err *err),
    (tx->tx, day, seq, err))
FWD(incident_insert, (struct kx_tx * tx, const struct kx_incident *inc, struct kx_err *err),
    (tx->tx, inc, err))
FWD(incident_get, (struct kx_tx * tx, const char *id, struct kx_incident *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(incident_update,
    (struct kx_tx * tx, const struct kx_incident *inc, int64_t v, struct kx_err *err),
    (tx->tx, inc, v, err))
FWD(incident_list,
    (struct kx_tx * tx, const struct kx_incident_filter *f, struct kx_incident_list *out,
     struct kx_err *err),
    (tx->tx, f, out, err))
FWD(timeline_add,
    (struct kx_tx * tx, const char *incident, struct kx_timeline_entry *e, struct kx_err *err),
    (tx->tx, incident, e, err))
FWD(timeline_list,
    (struct kx_tx * tx, const char *incident, struct kx_timeline *out, struct kx_err *err),
    (tx->tx, incident, out, err))
FWD(action_item_add,
    (struct kx_tx * tx, const char *incident, struct kx_action_item *a, struct kx_err *err),
    (tx->tx, incident, a, err))
FWD(action_item_get,
    (struct kx_tx * tx, const char *incident, int64_t number, struct kx_action_item *out,
     struct kx_err *err),
    (tx->tx, incident, number, out, err))
FWD(action_item_update,
    (struct kx_tx * tx, const char *incident, const struct kx_action_item *a,
     struct kx_err *err),
    (tx->tx, incident, a, err))
FWD(action_item_list,
    (struct kx_tx * tx, const char *incident, struct kx_action_items *out, struct kx_err *err),
    (tx->tx, incident, out, err))
FWD(token_count, (struct kx_tx * tx, int64_t *n, struct kx_err *err), (tx->tx, n, err))
FWD(token_insert, (struct kx_tx * tx, const struct kx_token *t, struct kx_err *err),
    (tx->tx, t, err))
FWD(token_by_hash,
    (struct kx_tx * tx, const uint8_t hash[KX_HASH_LEN], struct kx_token *out,
     struct kx_err *err),
    (tx->tx, hash, out, err))
FWD(token_get, (struct kx_tx * tx, const char *id, struct kx_token *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(token_list, (struct kx_tx * tx, struct kx_tokens *out, struct kx_err *err),
    (tx->tx, out, err))
FWD(token_revoke, (struct kx_tx * tx, const char *id, kx_ms at, struct kx_err *err),
    (tx->tx, id, at, err))

FWD(job_enqueue,
    (struct kx_tx * tx, const char *kind, const char *payload, kx_ms run_at, int64_t *id,
     struct kx_err *err),
    (tx->tx, kind, payload, run_at, id, err))
FWD(notify, (struct kx_tx * tx, const char *topic, const char *payload, struct kx_err *err),
    (tx->tx, topic, payload, err))

FWD(audit_append,
    (struct kx_tx * tx, struct kx_audit_event *ev, size_t n, struct kx_err *err),
    (tx->tx, ev, n, err))
FWD(audit_query,
    (struct kx_tx * tx, const struct kx_audit_filter *f, struct kx_audit_events *out,
     struct kx_err *err),
    (tx->tx, f, out, err))
FWD(audit_page,
    (struct kx_tx * tx, int64_t after_seq, int limit, struct kx_audit_events *out,
     struct kx_err *err),
    (tx->tx, after_seq, limit, out, err))
FWD(audit_duplicates,
    (struct kx_tx * tx, const struct kx_audit_filter *f, struct kx_audit_groups *out,
     struct kx_err *err),
    (tx->tx, f, out, err))
FWD(audit_recipients,
    (struct kx_tx * tx, const struct kx_audit_filter *f, struct kx_audit_groups *out,
     struct kx_err *err),
    (tx->tx, f, out, err))

FWD(switch_insert, (struct kx_tx * tx, const struct kx_switch *sw, struct kx_err *err),
    (tx->tx, sw, err))
FWD(switch_get, (struct kx_tx * tx, const char *id, struct kx_switch *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(switch_update, (struct kx_tx * tx, const struct kx_switch *sw, struct kx_err *err),
    (tx->tx, sw, err))
FWD(switch_list,
    (struct kx_tx * tx, bool all, kx_ms now, struct kx_switches *out, struct kx_err *err),
    (tx->tx, all, now, out, err))
FWD(cap_put, (struct kx_tx * tx, const struct kx_cap *c, bool *created, struct kx_err *err),
    (tx->tx, c, created, err))
FWD(cap_delete, (struct kx_tx * tx, const char *id, struct kx_err *err), (tx->tx, id, err))
FWD(cap_list, (struct kx_tx * tx, struct kx_caps *out, struct kx_err *err), (tx->tx, out, err))
FWD(approval_insert, (struct kx_tx * tx, const struct kx_approval *a, struct kx_err *err),
    (tx->tx, a, err))
FWD(approval_get,
    (struct kx_tx * tx, const char *id, struct kx_approval *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(approval_pending_by_key,
    (struct kx_tx * tx, const char *switch_id, const char *key, kx_ms now,
     struct kx_approval *out, struct kx_err *err),
    (tx->tx, switch_id, key, now, out, err))
FWD(approval_update, (struct kx_tx * tx, const struct kx_approval *a, struct kx_err *err),
    (tx->tx, a, err))
FWD(approval_list,
    (struct kx_tx * tx, const struct kx_approval_filter *f, struct kx_approvals *out,
     struct kx_err *err),
    (tx->tx, f, out, err))

FWD(service_put,
    (struct kx_tx * tx, const struct kx_service *sv, bool *created, struct kx_err *err),
    (tx->tx, sv, created, err))
FWD(service_get,
    (struct kx_tx * tx, const char *name, struct kx_service *out, struct kx_err *err),
    (tx->tx, name, out, err))
FWD(service_list, (struct kx_tx * tx, struct kx_services *out, struct kx_err *err),
    (tx->tx, out, err))
FWD(integration_insert, (struct kx_tx * tx, const struct kx_integration *i, struct kx_err *err),
    (tx->tx, i, err))
FWD(integration_get,
    (struct kx_tx * tx, const char *id, struct kx_integration *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(integration_by_hash,
    (struct kx_tx * tx, const uint8_t hash[KX_HASH_LEN], struct kx_integration *out,
     struct kx_err *err),
    (tx->tx, hash, out, err))
FWD(integration_list,
    (struct kx_tx * tx, const char *service, struct kx_integrations *out, struct kx_err *err),
    (tx->tx, service, out, err))
FWD(integration_revoke, (struct kx_tx * tx, const char *id, kx_ms at, struct kx_err *err),
    (tx->tx, id, at, err))
FWD(alert_firing_by_key,
    (struct kx_tx * tx, const char *service, const char *dedup_key, struct kx_alert *out,
     struct kx_err *err),
    (tx->tx, service, dedup_key, out, err))
FWD(alert_insert, (struct kx_tx * tx, struct kx_alert *a, struct kx_err *err), (tx->tx, a, err))
FWD(alert_update, (struct kx_tx * tx, const struct kx_alert *a, struct kx_err *err),
    (tx->tx, a, err))
FWD(alert_fold, (struct kx_tx * tx, const struct kx_alert *a, struct kx_err *err),
    (tx->tx, a, err))
FWD(alert_get, (struct kx_tx * tx, int64_t id, struct kx_alert *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(alert_list,
    (struct kx_tx * tx, const struct kx_alert_filter *f, struct kx_alerts *out,
     struct kx_err *err),
    (tx->tx, f, out, err))
FWD(alert_count_firing,
    (struct kx_tx * tx, const char *incident, int64_t *n, struct kx_err *err),
    (tx->tx, incident, n, err))
FWD(alert_expired,
    (struct kx_tx * tx, kx_ms now, int limit, struct kx_alerts *out, struct kx_err *err),
    (tx->tx, now, limit, out, err))
FWD(change_insert, (struct kx_tx * tx, struct kx_change_event *c, struct kx_err *err),
    (tx->tx, c, err))
FWD(change_list,
    (struct kx_tx * tx, const char *service, int limit, struct kx_change_events *out,
     struct kx_err *err),
    (tx->tx, service, limit, out, err))
FWD(heartbeat_insert, (struct kx_tx * tx, const struct kx_heartbeat *h, struct kx_err *err),
    (tx->tx, h, err))
FWD(heartbeat_get,
    (struct kx_tx * tx, const char *name, struct kx_heartbeat *out, struct kx_err *err),
    (tx->tx, name, out, err))
FWD(heartbeat_by_hash,
    (struct kx_tx * tx, const uint8_t hash[KX_HASH_LEN], struct kx_heartbeat *out,
     struct kx_err *err),
    (tx->tx, hash, out, err))
FWD(heartbeat_update, (struct kx_tx * tx, const struct kx_heartbeat *h, struct kx_err *err),
    (tx->tx, h, err))
FWD(heartbeat_delete, (struct kx_tx * tx, const char *name, struct kx_err *err),
    (tx->tx, name, err))
FWD(heartbeat_list, (struct kx_tx * tx, struct kx_heartbeats *out, struct kx_err *err),
    (tx->tx, out, err))
FWD(heartbeat_due,
    (struct kx_tx * tx, kx_ms now, int limit, struct kx_heartbeats *out, struct kx_err *err),
    (tx->tx, now, limit, out, err))
FWD(silence_insert, (struct kx_tx * tx, const struct kx_silence *sl, struct kx_err *err),
    (tx->tx, sl, err))
FWD(silence_get, (struct kx_tx * tx, const char *id, struct kx_silence *out, struct kx_err *err),
    (tx->tx, id, out, err))
FWD(silence_update, (struct kx_tx * tx, const struct kx_silence *sl, struct kx_err *err),
    (tx->tx, sl, err))
FWD(silence_list,
    (struct kx_tx * tx, bool active_only, kx_ms now, struct kx_silences *out,
     struct kx_err *err),
    (tx->tx, active_only, now, out, err))
FWD(notification_insert,
    (struct kx_tx * tx, const struct kx_notification *n, struct kx_err *err), (tx->tx, n, err))
FWD(notification_attempt,
    (struct kx_tx * tx, const struct kx_notification *n, const struct kx_notification_attempt *a,
     struct kx_err *err),
    (tx->tx, n, a, err))
FWD(notification_get,
    (struct kx_tx * tx, const char *id, struct kx_notification *out,
     struct kx_notification_attempts *attempts, struct kx_err *err),
    (tx->tx, id, out, attempts, err))
FWD(notification_list,
    (struct kx_tx * tx, const struct kx_notification_filter *f, struct kx_notifications *out,
     struct kx_err *err),
    (tx->tx, f, out, err))

int kx_store_job_claim(struct kx_store *s, const char *worker, kx_ms now, kx_ms lease, int max,
		       struct kx_jobs *out, struct kx_err *err)
{
	return s->be->job_claim(s->state, worker, now, lease, max, out, err);
}

int kx_store_job_finish(struct kx_store *s, int64_t id, const char *worker, struct kx_err *err)
{
	return s->be->job_finish(s->state, id, worker, err);
}

int kx_store_job_retry(struct kx_store *s, int64_t id, const char *worker, kx_ms run_at,
		       struct kx_err *err)
{
	return s->be->job_retry(s->state, id, worker, run_at, err);
}

int kx_store_singleton_try(struct kx_store *s, const char *name, bool *acquired,
			   struct kx_err *err)
{
	return s->be->singleton_try(s->state, name, acquired, err);
}

int kx_store_subscribe(struct kx_store *s, kx_change_fn fn, void *arg, struct kx_err *err)
{
	return s->be->subscribe(s->state, fn, arg, err);
}

void kx_jobs_release(struct kx_jobs *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->v[i].kind);
		free(j->v[i].payload);
	}
	free(j->v);
	j->v = NULL;
	j->n = 0;
}

void kx_incident_list_release(struct kx_incident_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_incident_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kx_timeline_release(struct kx_timeline *t)
{
	for (size_t i = 0; i < t->n; i++)
		kx_timeline_entry_release(&t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

void kx_action_items_release(struct kx_action_items *a)
{
	for (size_t i = 0; i < a->n; i++)
		kx_action_item_release(&a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

void kx_tokens_release(struct kx_tokens *t)
{
	for (size_t i = 0; i < t->n; i++)
		kx_token_release(&t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

void kx_audit_filter_init(struct kx_audit_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since = f->until = KX_TIME_UNSET;
	kx_labels_init(&f->labels);
}

void kx_audit_filter_release(struct kx_audit_filter *f)
{
	kx_labels_release(&f->labels);
}

void kx_audit_groups_release(struct kx_audit_groups *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i].action);
		free(g->v[i].target);
		free(g->v[i].content_hash);
	}
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

void kx_switches_release(struct kx_switches *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_switch_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kx_caps_release(struct kx_caps *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_cap_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kx_approvals_release(struct kx_approvals *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_approval_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The detection lists: each element is released with its module's
 * _release, then the array; the list is left empty. */
#define LIST_RELEASE(fn, type, elem_release)                                                   \
	void fn(struct type *l)                                                                \
	{                                                                                      \
		for (size_t i = 0; i < l->n; i++)                                              \
			elem_release(&l->v[i]);                                                \
		free(l->v);                                                                    \
		l->v = NULL;                                                                   \
		l->n = 0;                                                                      \
	}

LIST_RELEASE(kx_services_release, kx_services, kx_service_release)
LIST_RELEASE(kx_integrations_release, kx_integrations, kx_integration_release)
LIST_RELEASE(kx_alerts_release, kx_alerts, kx_alert_release)
LIST_RELEASE(kx_heartbeats_release, kx_heartbeats, kx_heartbeat_release)
LIST_RELEASE(kx_silences_release, kx_silences, kx_silence_release)
LIST_RELEASE(kx_change_events_release, kx_change_events, kx_change_event_release)
LIST_RELEASE(kx_notifications_release, kx_notifications, kx_notification_release)

/* An attempt has no module _release of its own (notify.h): its one owned
 * string is its error. */
static void attempt_release(struct kx_notification_attempt *a)
{
	free(a->error);
	a->error = NULL;
}

LIST_RELEASE(kx_notification_attempts_release, kx_notification_attempts, attempt_release)
