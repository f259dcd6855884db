#include "service/alerts.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/incident.h"
#include "core/route.h"
#include "core/text.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "service/audit.h"
#include "service/incidents.h"
#include "service/ingest.h"

/* ---- helpers ---------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A token for an identity that is not a person: admin, no scope, named
 * `name` (borrowed: the token is not released). */
static void machine_token(struct kx_token *t, const char *name)
{
	kx_token_init(t);
	t->name = (char *)name;
	t->role = KX_ACCESS_ADMIN;
}

/* Text cut to at most max characters at a UTF-8 boundary, with control
 * characters (newlines from a multi-line summary) turned into spaces:
 * what an incident title may hold. */
static void one_line(const char *s, size_t max, char *out, size_t outlen)
{
	size_t o = 0, chars = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < outlen; p++) {
		if ((*p & 0xC0) != 0x80) {
			if (chars == max)
				break;
			chars++;
		}
		out[o++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
	}
	out[o] = '\0';
}

/* A dedup key for an event that came without one. */
static int derive_key(struct kx_alert_event *e, struct kx_err *err)
{
	char fp[KX_FINGERPRINT_LEN + 1];

	if (e->dedup_key)
		return 0;
	if (e->labels.n) {
		kx_alert_fingerprint(&e->labels, fp);
	} else {
		uint8_t h[KX_HASH_LEN];
		const char *s = e->summary ? e->summary : "";
		kx_hash(s, strlen(s), h);
		kx_hex(h, KX_FINGERPRINT_LEN / 2, fp);
		fp[KX_FINGERPRINT_LEN] = '\0';
	}
	if (!(e->dedup_key = strdup(fp)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return 0;
}

/* ---- ingestion -------------------------------------------------------------- */

#define GROUP_CACHE 64

struct ingest {
	const struct kx_app *app;
	struct kx_tx *tx;
	const char *actor;
	struct kx_token who;
	struct kx_silencer *silencer;
	struct kx_service svc;	    /* the service the events arrived for */
	struct {
		char hash[KX_FINGERPRINT_LEN + 1];
		char service[65];
		char incident[32];
	} groups[GROUP_CACHE];	    /* incidents found or opened in this batch */
	size_t ngroups;
	kx_ms now;
};

static const char *cached_group(const struct ingest *g, const char *service, const char *hash)
{
	for (size_t i = 0; i < g->ngroups; i++)
		if (!strcmp(g->groups[i].hash, hash) && !strcmp(g->groups[i].service, service))
			return g->groups[i].incident;
	return NULL;
}

static void cache_group(struct ingest *g, const char *service, const char *hash,
			const char *incident)
{
	size_t i = g->ngroups < GROUP_CACHE ? g->ngroups++ : (size_t)(g->now % GROUP_CACHE);
	snprintf(g->groups[i].hash, sizeof(g->groups[i].hash), "%s", hash);
	snprintf(g->groups[i].service, sizeof(g->groups[i].service), "%s", service);
	snprintf(g->groups[i].incident, sizeof(g->groups[i].incident), "%s", incident);
}

/* The service an event goes to: the one it came for, or the one its route
 * names (created on first use, so a route may name a service before anyone
 * defined it). Its labels go onto the incidents it opens. */
static int routed_service(struct ingest *g, const char *name, struct kx_service *out,
			  bool *borrowed, struct kx_err *err)
{
	int rc;

	*borrowed = !strcmp(name, g->svc.name);
	if (*borrowed) {
		*out = g->svc;
		return 0;
	}
	kx_service_init(out);
	rc = kx_store_service_get(g->tx, name, out, err);
	if (rc != KX_ENOTFOUND)
		return rc;
	if (!(out->name = strdup(name)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	out->created_at = g->now;
	return kx_store_service_put(g->tx, out, NULL, err);
}

static int attach_entry(struct ingest *g, const char *incident, const struct kx_alert *a,
			struct kx_err *err)
{
	char text[1400], sum[1100];
	one_line(a->summary ? a->summary : "", KX_ALERT_SUMMARY_MAX, sum, sizeof(sum));
	snprintf(text, sizeof(text), "Alert attached (%s, %s, key %.255s): %s",
		 kx_alert_source_name(a->source), kx_alert_level_name(a->level), a->dedup_key, sum);
	return kx_svc_incident_entry_tx(g->tx, &g->who, incident, "alert", text, g->now, err);
}

/* Attaches a to its group's open incident, or opens one when the route
 * says so. */
static int route_into_incident(struct ingest *g, struct kx_alert *a, const struct kx_service *svc,
			       const struct kx_route_decision *d, struct kx_ingest_outcome *o,
			       struct kx_err *err)
{
	const char *cached = cached_group(g, svc->name, d->group_hash);
	struct kx_incident_filter f = {0};
	struct kx_incident_list found = {0};
	struct kx_declare decl;
	struct kx_incident inc;
	char title[KX_TITLE_MAX * 4 + 8], summary[512];
	int rc;

	if (d->action == KX_ROUTE_NONE)
		return 0;
	if (cached) {
		if (!(a->incident = strdup(cached)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		return attach_entry(g, cached, a, err);
	}
	kx_labels_init(&f.labels);
	f.open_only = true;
	f.limit = 1;
	f.declared_since = KX_TIME_UNSET;
	if ((rc = kx_labels_set(&f.labels, "service", svc->name, err)) ||
	    (rc = kx_labels_set(&f.labels, "alert_group", d->group_hash, err)) ||
	    (rc = kx_store_incident_list(g->tx, &f, &found, err))) {
		kx_labels_release(&f.labels);
		return rc;
	}
	kx_labels_release(&f.labels);
	if (found.n) {
		rc = (a->incident = strdup(found.v[0].id)) ? attach_entry(g, found.v[0].id, a, err)
							   : kx_err_set(err, KX_ENOMEM, "out of memory");
		if (!rc)
			cache_group(g, svc->name, d->group_hash, found.v[0].id);
		kx_incident_list_release(&found);
		return rc;
	}
	kx_incident_list_release(&found);
	if (!d->opens)
		return 0;

	one_line(a->summary ? a->summary : "alert", KX_TITLE_MAX, title, sizeof(title));
	snprintf(summary, sizeof(summary), "Opened by an alert from %s on service %s (route %s).",
		 kx_alert_source_name(a->source), svc->name, d->rule->name);
	kx_declare_init(&decl);
	decl.title = title;
	decl.severity = d->severity;
	decl.summary = summary;
	decl.types = (const char *const *)d->rule->types;
	decl.ntypes = d->rule->ntypes;
	decl.started_at = a->starts_at;
	decl.detected_at = g->now;
	if (decl.started_at != KX_TIME_UNSET && decl.started_at > g->now)
		decl.started_at = g->now;
	if (kx_labels_copy(&decl.labels, &svc->labels)) {
		kx_declare_release(&decl);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < d->rule->labels.n && !rc; i++)
		rc = kx_labels_set(&decl.labels, d->rule->labels.v[i].key, d->rule->labels.v[i].value,
				   err);
	if (!rc)
		rc = kx_labels_set(&decl.labels, "service", svc->name, err);
	if (!rc)
		rc = kx_labels_set(&decl.labels, "alert_group", d->group_hash, err);
	kx_incident_init(&inc);
	if (!rc)
		rc = kx_svc_declare_tx(g->app, g->tx, &g->who, &decl, g->now, &inc, err);
	kx_declare_release(&decl);
	if (rc)
		return rc;
	if (!(a->incident = strdup(inc.id)))
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	if (!rc)
		rc = attach_entry(g, inc.id, a, err);
	if (!rc) {
		cache_group(g, svc->name, d->group_hash, inc.id);
		if (o)
			o->declared = true;
	}
	kx_incident_release(&inc);
	return rc;
}

/* Copies what a trigger says into the alert (new or folded). */
static int take_event(struct kx_alert *a, struct kx_alert_event *e, kx_ms now, struct kx_err *err)
{
	char *summary = dup_or_null(e->summary ? e->summary : "alert");
	char *details = dup_or_null(e->details ? e->details : "{}");
	struct kx_labels labels;

	kx_labels_init(&labels);
	if (!summary || !details || kx_labels_copy(&labels, &e->labels)) {
		free(summary);
		free(details);
		kx_labels_release(&labels);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	free(a->summary);
	a->summary = summary;
	free(a->details);
	a->details = details;
	kx_labels_release(&a->labels);
	a->labels = labels;
	/* copies, not moves: a batch that failed is ingested again */
#define TAKE(f)                                                                                    \
	if (e->f) {                                                                                \
		char *v = strdup(e->f);                                                            \
		if (!v)                                                                            \
			return kx_err_set(err, KX_ENOMEM, "out of memory");                        \
		free(a->f);                                                                        \
		a->f = v;                                                                          \
	}
	TAKE(source_host)
	TAKE(component)
	TAKE(group)
	TAKE(class)
#undef TAKE
	a->level = e->level;
	a->ends_at = e->ends_at != KX_TIME_UNSET && e->ends_at > now ? e->ends_at : KX_TIME_UNSET;
	a->last_seen = now;
	return 0;
}

/* After a resolve: when it was the last firing alert of its incident, the
 * timeline says so, and with the rule's resolve_to_monitoring the incident
 * moves to monitoring. */
/* The rule that routed an alert when it fired (its stored name): a
 * resolve carries fewer fields than the trigger, so routing it again
 * could pick another rule. */
static const struct kx_routing_rule *rule_named(const struct kx_config *cfg, const char *name,
						const struct kx_routing_rule *fallback)
{
	for (size_t i = 0; name && i < cfg->nroutes; i++)
		if (!strcmp(cfg->routes[i].name, name))
			return &cfg->routes[i];
	return name && !strcmp(name, "default") ? &cfg->route_default : fallback;
}

static int after_resolve(struct ingest *g, const char *incident,
			 const struct kx_routing_rule *rule, struct kx_err *err)
{
	struct kx_incident inc;
	struct kx_change c;
	int64_t firing = 0;
	int rc;

	if ((rc = kx_store_alert_count_firing(g->tx, incident, &firing, err)) || firing > 0)
		return rc;
	kx_incident_init(&inc);
	if ((rc = kx_store_incident_get(g->tx, incident, &inc, err))) {
		/* an incident that is gone is nothing to report on */
		return rc == KX_ENOTFOUND ? 0 : rc;
	}
	if (inc.status == KX_STATUS_RESOLVED) {
		kx_incident_release(&inc);
		return 0;
	}
	rc = kx_svc_incident_entry_tx(g->tx, &g->who, incident, "alert",
				      rule->resolve_to_monitoring
					      ? "All alerts of this incident have resolved; moving it to monitoring."
					      : "All alerts of this incident have resolved.",
				      g->now, err);
	if (!rc && rule->resolve_to_monitoring && inc.status != KX_STATUS_MONITORING) {
		struct kx_incident out;
		kx_change_init(&c, KX_CHANGE_STATUS);
		c.status = KX_STATUS_MONITORING;
		c.note = "all alerts resolved";
		kx_incident_init(&out);
		rc = kx_svc_incident_change_tx(g->app, g->tx, &g->who, incident, &c, g->now, &out, err);
		kx_incident_release(&out);
	}
	kx_incident_release(&inc);
	return rc;
}

static int ingest_one(struct ingest *g, struct kx_alert_event *e, struct kx_ingest_outcome *o,
		      struct kx_err *err)
{
	struct kx_labels fields;
	struct kx_route_decision d;
	struct kx_service svc;
	struct kx_alert a;
	bool found, attached, borrowed = true;
	int rc;

	kx_labels_init(&fields);
	kx_alert_init(&a);
	memset(&d, 0, sizeof(d));
	kx_service_init(&svc);
	if (o)
		memset(o, 0, sizeof(*o));
	if ((rc = derive_key(e, err)) || (rc = kx_alert_event_fields(e, g->svc.name, &fields, err)) ||
	    (rc = kx_route_decide(g->app->router, e, g->svc.name, &fields, &d, err)) ||
	    (rc = routed_service(g, d.service, &svc, &borrowed, err)))
		goto out;
	rc = kx_store_alert_firing_by_key(g->tx, svc.name, e->dedup_key, &a, err);
	found = rc == 0;
	if (rc && rc != KX_ENOTFOUND)
		goto out;
	rc = 0;
	if (o)
		snprintf(o->dedup_key, sizeof(o->dedup_key), "%s", e->dedup_key);

	switch (e->action) {
	case KX_ALERT_TRIGGER: {
		const char *sil = kx_silencer_match(g->silencer, &fields, g->now);
		if (!found) {
			a.service = strdup(svc.name);
			a.dedup_key = strdup(e->dedup_key);
			a.source = e->source;
			a.status = KX_ALERT_FIRING;
			a.count = 1;
			a.first_seen = g->now;
			a.starts_at = e->starts_at != KX_TIME_UNSET ? e->starts_at : g->now;
			if (!a.service || !a.dedup_key) {
				rc = kx_err_set(err, KX_ENOMEM, "out of memory");
				goto out;
			}
		} else {
			a.count++;
		}
		if ((rc = take_event(&a, e, g->now, err)))
			goto out;
		free(a.severity);
		free(a.route);
		free(a.silenced_by);
		a.severity = strdup(d.severity);
		a.route = strdup(d.rule->name);
		a.silenced_by = sil ? strdup(sil) : NULL;
		if (!a.severity || !a.route || (sil && !a.silenced_by)) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		/* silenced: stored and shown, but no incident and no page */
		attached = false;
		if (!sil && !a.incident) {
			if ((rc = route_into_incident(g, &a, &svc, &d, o, err)))
				goto out;
			attached = a.incident != NULL;
		}
		/* a repeat that changed no status or incident: the narrow write */
		rc = !found   ? kx_store_alert_insert(g->tx, &a, err)
		     : attached ? kx_store_alert_update(g->tx, &a, err)
				: kx_store_alert_fold(g->tx, &a, err);
		if (o) {
			o->created = !found;
			o->silenced = sil != NULL;
		}
		break;
	}
	case KX_ALERT_ACKNOWLEDGE:
		if (!found)
			break;
		if (a.acked_at == KX_TIME_UNSET) {
			a.acked_at = g->now;
			if (!(a.acked_by = strdup(g->actor))) {
				rc = kx_err_set(err, KX_ENOMEM, "out of memory");
				goto out;
			}
		}
		a.last_seen = g->now;
		rc = kx_store_alert_update(g->tx, &a, err);
		break;
	case KX_ALERT_RESOLVE:
		/* a resolve for a key that is not firing changes nothing; one for a
		 * silenced alert is recorded like any other */
		if (!found)
			break;
		a.status = KX_ALERT_RESOLVED;
		a.resolved_at = e->ends_at != KX_TIME_UNSET && e->ends_at <= g->now ? e->ends_at : g->now;
		if (a.resolved_at < a.starts_at)
			a.resolved_at = a.starts_at;
		a.last_seen = g->now;
		free(a.resolved_by);
		if (!(a.resolved_by = strdup(g->actor))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = kx_store_alert_update(g->tx, &a, err)))
			goto out;
		if (a.incident)
			rc = after_resolve(g, a.incident, rule_named(g->app->cfg, a.route, d.rule), err);
		break;
	}
	if (!rc && o) {
		o->alert = a.id;
		snprintf(o->incident, sizeof(o->incident), "%s", a.incident ? a.incident : "");
	}
out:
	kx_labels_release(&fields);
	kx_route_decision_release(&d);
	kx_alert_release(&a);
	if (!borrowed)
		kx_service_release(&svc);
	return rc;
}

/* What every batch of a transaction shares: the silences in force and the
 * incidents found or opened so far. */
static int ingest_begin(const struct kx_app *app, struct kx_tx *tx, kx_ms now,
			struct ingest **out, struct kx_err *err)
{
	struct kx_silences sil = {0};
	struct ingest *g;
	int rc;

	*out = NULL;
	if (!app->router)
		return kx_err_set(err, KX_EINVAL, "alert routing is not running");
	if (!(g = calloc(1, sizeof(*g))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	g->app = app;
	g->tx = tx;
	g->now = now;
	kx_service_init(&g->svc);
	if ((rc = kx_store_silence_list(tx, true, now, &sil, err)) ||
	    (rc = kx_silencer_new(sil.v, sil.n, now, &g->silencer, err))) {
		kx_silences_release(&sil);
		free(g);
		return rc;
	}
	kx_silences_release(&sil);
	*out = g;
	return 0;
}

static void ingest_end(struct ingest *g)
{
	if (!g)
		return;
	kx_silencer_free(g->silencer);
	kx_service_release(&g->svc);
	free(g);
}

/* One batch for `service` as `actor`, in g's transaction. */
static int ingest_events(struct ingest *g, const char *service, const char *actor,
			 struct kx_alert_event *events, size_t n, kx_ms now,
			 struct kx_ingest_outcome *outcomes, struct kx_err *err)
{
	int rc = 0;

	g->actor = actor;
	g->now = now;
	machine_token(&g->who, actor);
	if (!g->svc.name || strcmp(g->svc.name, service) != 0) {
		kx_service_release(&g->svc);
		kx_service_init(&g->svc);
		if ((rc = kx_store_service_get(g->tx, service, &g->svc, err))) {
			kx_service_release(&g->svc);
			kx_service_init(&g->svc);
			if (rc == KX_ENOTFOUND)
				kx_err_set(err, KX_ENOTFOUND, "service '%.64s' not found", service);
			return rc;
		}
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = ingest_one(g, &events[i], outcomes ? &outcomes[i] : NULL, err))) {
			if (n > 1) { /* say which alert of the batch it was */
				struct kx_err e = *err;
				kx_err_set(err, rc, "alerts[%zu]: %s", i, e.msg);
			}
			break;
		}
	return rc;
}

/* The batch in the caller's write transaction. */
static int ingest_tx(const struct kx_app *app, struct kx_tx *tx, const char *service,
		     const char *actor, struct kx_alert_event *events, size_t n, kx_ms now,
		     struct kx_ingest_outcome *outcomes, struct kx_err *err)
{
	struct ingest *g;
	int rc;

	if ((rc = ingest_begin(app, tx, now, &g, err)))
		return rc;
	rc = ingest_events(g, service, actor, events, n, now, outcomes, err);
	ingest_end(g);
	return rc;
}

int kx_svc_alert_ingest(const struct kx_app *app, const char *service, const char *actor,
			struct kx_alert_event *events, size_t n, kx_ms now,
			struct kx_ingest_outcome *outcomes, struct kx_err *err)
{
	int rc = 0;

	for (int attempt = 0; attempt < 4; attempt++) {
		struct kx_tx *tx = NULL;
		if ((rc = kx_store_begin(app->store, true, &tx, err)))
			return rc;
		rc = ingest_tx(app, tx, service, actor, events, n, now, outcomes, err);
		if (!rc)
			return kx_store_commit(tx, err);
		kx_store_rollback(tx);
		/* two daemons inserting the same new alert: the loser folds into
		 * the winner's on the next try */
		if (rc != KX_ECONFLICT)
			return rc;
	}
	return rc;
}

/* Many requests' batches in one transaction, added while it is open. A
 * job's events are changed by ingestion (dedup keys derived), which is why
 * a fallback after a failure may run them again: derive_key keeps a key
 * it already set, and take_event copies fields into an alert that the
 * rollback threw away. */
struct kx_ingest_batch {
	const struct kx_app *app;
	struct kx_tx *tx;
	struct ingest *g;
	int rc; /* the first failure: the batch is then rolled back */
	struct kx_err err;
};

int kx_svc_ingest_batch_begin(const struct kx_app *app, kx_ms now, struct kx_ingest_batch **out,
			      struct kx_err *err)
{
	struct kx_ingest_batch *b = calloc(1, sizeof(*b));
	int rc;

	*out = NULL;
	if (!b)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	b->app = app;
	if ((rc = kx_store_begin(app->store, true, &b->tx, err))) {
		free(b);
		return rc;
	}
	if ((rc = ingest_begin(app, b->tx, now, &b->g, err))) {
		kx_store_rollback(b->tx);
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

int kx_svc_ingest_batch_add(struct kx_ingest_batch *b, struct kx_ingest_job *const *jobs,
			    size_t n)
{
	for (size_t i = 0; i < n && !b->rc; i++)
		if (jobs[i]->n)
			b->rc = ingest_events(b->g, jobs[i]->service, jobs[i]->actor, jobs[i]->events,
					      jobs[i]->n, jobs[i]->now, jobs[i]->outcomes, &b->err);
	return b->rc;
}

void kx_svc_ingest_batch_end(struct kx_ingest_batch *b, struct kx_ingest_job *const *jobs,
			     size_t n, struct kx_pending **pending)
{
	const struct kx_app *app = b->app;
	int rc = b->rc;
	struct kx_err err = b->err;

	*pending = NULL;
	ingest_end(b->g);
	if (rc)
		kx_store_rollback(b->tx);
	else
		rc = kx_store_commit_async(b->tx, pending, &err);
	free(b);
	if (!rc) {
		for (size_t i = 0; i < n; i++)
			jobs[i]->rc = 0;
		return;
	}
	/* alone, its outcome is its own (but a conflict is worth a retry) */
	if (n == 1 && rc != KX_ECONFLICT) {
		jobs[0]->rc = rc;
		jobs[0]->err = err;
		return;
	}
	/* a batch that failed: each job in a transaction of its own */
	for (size_t i = 0; i < n; i++) {
		struct kx_ingest_job *j = jobs[i];
		j->rc = j->n ? kx_svc_alert_ingest(app, j->service, j->actor, j->events, j->n, j->now,
						   j->outcomes, &j->err)
			     : 0;
	}
}

/* ---- integration keys ------------------------------------------------------- */

/* The stored key, from the ingestion runtime's cache when it is there. */
static int integration_lookup(const struct kx_app *app, const uint8_t h[KX_HASH_LEN],
			      struct kx_integration *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	kx_ms now = kx_now_ms();
	uint64_t gen = 0;
	int rc;

	if (kx_ingest_key_get(app->ingest, h, now, out, &gen))
		return 0;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_integration_by_hash(tx, h, out, err);
	kx_store_rollback(tx);
	if (rc == KX_ENOTFOUND)
		return kx_err_set(err, KX_EAUTH, "unknown integration key");
	if (rc)
		return rc;
	if (out->revoked_at != KX_TIME_UNSET) {
		kx_integration_release(out);
		return kx_err_set(err, KX_EAUTH, "this integration key has been revoked");
	}
	kx_ingest_key_put(app->ingest, out, now, gen);
	return 0;
}

int kx_svc_integration_auth(const struct kx_app *app, const char *key,
			    enum kx_alert_source want, struct kx_integration *out,
			    struct kx_err *err)
{
	uint8_t h[KX_HASH_LEN];
	int rc;

	kx_integration_init(out);
	if (!key || !*key || strlen(key) > 256)
		return kx_err_set(err, KX_EAUTH, "an integration key is required");
	kx_hash(key, strlen(key), h);
	if ((rc = integration_lookup(app, h, out, err)))
		return rc;
	if (out->source != want && !(out->source == KX_SOURCE_GENERIC && want != KX_SOURCE_EVENTS_V2)) {
		rc = kx_err_set(err, KX_EFORBIDDEN, "this integration key is for %s, not %s",
				kx_alert_source_name(out->source), kx_alert_source_name(want));
		kx_integration_release(out);
		return rc;
	}
	return 0;
}

int kx_svc_integration_create(const struct kx_app *app, const struct kx_token *who,
			      const char *service, enum kx_alert_source source, const char *name,
			      kx_ms now, struct kx_integration *out,
			      char key[KX_INTEGRATION_KEY_LEN + 1], struct kx_err *err)
{
	struct kx_service svc;
	struct kx_tx *tx = NULL;
	int rc;

	kx_integration_init(out);
	if (source != KX_SOURCE_ALERTMANAGER && source != KX_SOURCE_EVENTS_V2 &&
	    source != KX_SOURCE_GENERIC)
		return kx_err_set(err, KX_EINVAL,
				  "'source' must be alertmanager, events-v2 or generic");
	if (name && (rc = kx_check_text("name", name, err)))
		return rc;
	if (name && strlen(name) > 200)
		return kx_err_set(err, KX_EINVAL, "'name' is longer than 200 bytes");
	kx_service_init(&svc);
	kx_integration_key_generate(key);
	kx_random_id("int_", out->id, sizeof(out->id));
	kx_hash(key, strlen(key), out->hash);
	out->source = source;
	out->created_at = now;
	if (!(out->service = strdup(service)) || (name && !(out->name = strdup(name))) ||
	    !(out->created_by = strdup(who->name))) {
		kx_integration_release(out);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		goto fail;
	if ((rc = kx_store_service_get(tx, service, &svc, err))) {
		if (rc == KX_ENOTFOUND)
			kx_err_set(err, KX_ENOTFOUND, "service '%.64s' not found", service);
		goto fail;
	}
	if (!kx_labels_match(&svc.labels, &who->scope)) {
		rc = kx_err_set(err, KX_ENOTFOUND, "service '%.64s' not found", service);
		goto fail;
	}
	if ((rc = kx_store_integration_insert(tx, out, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "integration.create", out->id, &svc.labels, now,
				      err)))
		goto fail;
	rc = kx_store_commit(tx, err);
	tx = NULL;
	if (rc)
		goto fail;
	kx_service_release(&svc);
	return 0;
fail:
	kx_store_rollback(tx);
	kx_service_release(&svc);
	kx_integration_release(out);
	sodium_memzero(key, KX_INTEGRATION_KEY_LEN);
	return rc;
}

int kx_svc_integration_list(const struct kx_app *app, const char *service,
			    struct kx_integrations *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_integration_list(tx, service, out, err);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_integration_revoke(const struct kx_app *app, const struct kx_token *who,
			      const char *id, kx_ms now, struct kx_err *err)
{
	struct kx_integration i;
	struct kx_tx *tx = NULL;
	int rc;

	kx_integration_init(&i);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_integration_get(tx, id, &i, err))) {
		if (rc == KX_ENOTFOUND)
			kx_err_set(err, rc, "integration '%.64s' not found", id);
		goto out;
	}
	if (i.revoked_at != KX_TIME_UNSET) {
		rc = kx_err_set(err, KX_ECONFLICT, "integration '%s' is already revoked", id);
		goto out;
	}
	/* the notice empties every daemon's key cache (service/ingest.h) */
	if ((rc = kx_store_integration_revoke(tx, id, now, err)) ||
	    (rc = kx_store_notify(tx, "integrations", id, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "integration.revoke", id, NULL, now, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	kx_integration_release(&i);
	return rc;
}

/* ---- services ---------------------------------------------------------------- */

int kx_svc_services_sync(const struct kx_app *app, kx_ms now, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	for (size_t i = 0; i < app->cfg->nservices && !rc; i++) {
		const struct kx_service_config *c = &app->cfg->services[i];
		struct kx_service s, old;
		kx_service_init(&s);
		kx_service_init(&old);
		s.name = c->name;
		s.description = c->description;
		s.labels = c->labels;
		s.from_config = true;
		s.created_at = now;
		/* keep the first creation time */
		if (kx_store_service_get(tx, c->name, &old, err) == 0)
			s.created_at = old.created_at;
		kx_service_release(&old);
		rc = kx_store_service_put(tx, &s, NULL, err);
	}
	if (rc) {
		kx_store_rollback(tx);
		return rc;
	}
	return kx_store_commit(tx, err);
}

int kx_svc_service_create(const struct kx_app *app, const struct kx_token *who,
			  const struct kx_service *s, kx_ms now, struct kx_err *err)
{
	struct kx_service put = *s, old;
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_service_name_check(s->name, err)))
		return rc;
	if (s->description && ((rc = kx_check_text("description", s->description, err))))
		return rc;
	if (s->description && strlen(s->description) > 4096)
		return kx_err_set(err, KX_EINVAL, "'description' is longer than 4096 bytes");
	put.from_config = false;
	put.created_at = now;
	kx_service_init(&old);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	rc = kx_store_service_get(tx, s->name, &old, err);
	if (rc == 0) {
		rc = kx_err_set(err, KX_ECONFLICT, "service '%s' already exists", s->name);
		goto out;
	}
	if (rc != KX_ENOTFOUND)
		goto out;
	if ((rc = kx_store_service_put(tx, &put, NULL, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "service.create", s->name, &s->labels, now,
				      err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	kx_service_release(&old);
	return rc;
}

int kx_svc_service_list(const struct kx_app *app, const struct kx_token *who,
			struct kx_services *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	size_t keep = 0;
	int rc;

	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_service_list(tx, out, err);
	kx_store_rollback(tx);
	if (rc)
		return rc;
	for (size_t i = 0; i < out->n; i++) {
		if (kx_labels_match(&out->v[i].labels, &who->scope))
			out->v[keep++] = out->v[i];
		else
			kx_service_release(&out->v[i]);
	}
	out->n = keep;
	return 0;
}

int kx_svc_service_get(const struct kx_app *app, const struct kx_token *who, const char *name,
		       struct kx_service *out, struct kx_change_events *changes,
		       struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	kx_service_init(out);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_service_get(tx, name, out, err);
	if (!rc && !kx_labels_match(&out->labels, &who->scope)) {
		kx_service_release(out);
		rc = KX_ENOTFOUND;
	}
	if (rc == KX_ENOTFOUND)
		kx_err_set(err, rc, "service '%.64s' not found", name);
	if (!rc && changes && (rc = kx_store_change_list(tx, name, 50, changes, err)))
		kx_service_release(out);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_change_record(const struct kx_app *app, struct kx_change_event *c, kx_ms now,
			 struct kx_err *err)
{
	struct kx_service svc;
	struct kx_tx *tx = NULL;
	int rc;

	kx_service_init(&svc);
	c->received_at = now;
	if (c->at == KX_TIME_UNSET)
		c->at = now;
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_service_get(tx, c->service, &svc, err)) ||
	    (rc = kx_store_change_insert(tx, c, err))) {
		kx_store_rollback(tx);
		kx_service_release(&svc);
		return rc;
	}
	kx_service_release(&svc);
	return kx_store_commit(tx, err);
}

/* ---- alerts, by people ------------------------------------------------------ */

/* Can who see alerts of this service? A scoped token sees the services
 * whose labels match its scope. */
static int service_visible(struct kx_tx *tx, const struct kx_token *who, const char *service,
			   bool *visible, struct kx_err *err)
{
	struct kx_service s;
	int rc;

	*visible = true;
	if (!who->scope.n)
		return 0;
	kx_service_init(&s);
	rc = kx_store_service_get(tx, service, &s, err);
	*visible = rc == 0 && kx_labels_match(&s.labels, &who->scope);
	kx_service_release(&s);
	return rc == KX_ENOTFOUND ? 0 : rc;
}

int kx_svc_alert_list(const struct kx_app *app, const struct kx_token *who,
		      const struct kx_alert_filter *f, struct kx_alerts *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	size_t keep = 0;
	int rc;

	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_alert_list(tx, f, out, err);
	for (size_t i = 0; !rc && i < out->n; i++) {
		bool vis;
		if ((rc = service_visible(tx, who, out->v[i].service, &vis, err)))
			break;
		if (vis)
			out->v[keep++] = out->v[i];
		else
			kx_alert_release(&out->v[i]);
	}
	if (!rc)
		out->n = keep;
	kx_store_rollback(tx);
	return rc;
}

static int load_alert(struct kx_tx *tx, const struct kx_token *who, int64_t id,
		      struct kx_alert *out, struct kx_err *err)
{
	bool vis = false;
	int rc = kx_store_alert_get(tx, id, out, err);
	if (!rc && (rc = service_visible(tx, who, out->service, &vis, err)) == 0 && !vis) {
		kx_alert_release(out);
		rc = KX_ENOTFOUND;
	}
	if (rc == KX_ENOTFOUND)
		kx_err_set(err, rc, "alert %lld not found", (long long)id);
	return rc;
}

int kx_svc_alert_get(const struct kx_app *app, const struct kx_token *who, int64_t id,
		     struct kx_alert *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	kx_alert_init(out);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = load_alert(tx, who, id, out, err);
	kx_store_rollback(tx);
	return rc;
}

/* A person acknowledges, resolves or marks an alert as noise. A resolve
 * goes through ingestion's path, so that the incident hears of its last
 * alert resolving exactly as when the source resolves it. */
int kx_svc_alert_act(const struct kx_app *app, const struct kx_token *who, int64_t id,
		     const char *what, bool noise, kx_ms now, struct kx_alert *out,
		     struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	struct kx_alert a;
	const char *audit;
	int rc;

	kx_alert_init(&a);
	kx_alert_init(out);
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = load_alert(tx, who, id, &a, err)))
		goto out;
	if (!strcmp(what, "resolve")) {
		struct kx_alert_event e;
		audit = "alert.resolve";
		if (a.status == KX_ALERT_RESOLVED) {
			rc = kx_err_set(err, KX_ECONFLICT, "alert %lld is already resolved", (long long)id);
			goto out;
		}
		kx_alert_event_init(&e);
		e.source = a.source;
		e.action = KX_ALERT_RESOLVE;
		e.level = a.level;
		rc = (e.dedup_key = strdup(a.dedup_key)) && !kx_labels_copy(&e.labels, &a.labels)
			     ? ingest_tx(app, tx, a.service, who->name, &e, 1, now, NULL, err)
			     : kx_err_set(err, KX_ENOMEM, "out of memory");
		kx_alert_event_release(&e);
		if (rc)
			goto out;
	} else if (!strcmp(what, "ack")) {
		audit = "alert.acknowledge";
		if (a.status == KX_ALERT_RESOLVED) {
			rc = kx_err_set(err, KX_ECONFLICT, "alert %lld is resolved", (long long)id);
			goto out;
		}
		if (a.acked_at == KX_TIME_UNSET) {
			a.acked_at = now;
			if (!(a.acked_by = strdup(who->name))) {
				rc = kx_err_set(err, KX_ENOMEM, "out of memory");
				goto out;
			}
			if ((rc = kx_store_alert_update(tx, &a, err)))
				goto out;
		}
	} else {
		audit = noise ? "alert.noise" : "alert.not_noise";
		a.noise = noise;
		if ((rc = kx_store_alert_update(tx, &a, err)))
			goto out;
	}
	{
		char target[32];
		snprintf(target, sizeof(target), "alert:%lld", (long long)id);
		if ((rc = kx_svc_audit_record(app, tx, who, audit, target, NULL, now, err)) ||
		    (rc = kx_store_alert_get(tx, id, out, err)))
			goto out;
	}
	rc = kx_store_commit(tx, err);
	tx = NULL;
	if (rc)
		kx_alert_release(out);
out:
	kx_store_rollback(tx);
	kx_alert_release(&a);
	return rc;
}

/* ---- silences --------------------------------------------------------------- */

int kx_svc_silence_create(const struct kx_app *app, const struct kx_token *who,
			  struct kx_silence *s, kx_ms now, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	char *canon = NULL;
	int rc;

	/* a silence reaches every service's alerts: a token scoped to one
	 * tenant may not mute the others' */
	if (who->scope.n)
		return kx_err_set(err, KX_EFORBIDDEN,
				  "silences cover every service: they need a token without a label scope");
	if ((rc = kx_matchers_canonical(s->matchers, &canon, err)))
		return rc;
	if (!*canon) {
		free(canon);
		return kx_err_set(err, KX_EINVAL,
				  "a silence needs at least one matcher (e.g. alertname=\"DiskFull\")");
	}
	free(s->matchers);
	s->matchers = canon;
	if (s->starts_at == KX_TIME_UNSET)
		s->starts_at = now;
	if (s->ends_at == KX_TIME_UNSET)
		return kx_err_set(err, KX_EINVAL, "a silence needs an end: give 'ends_at' or 'duration'");
	if (s->ends_at <= s->starts_at)
		return kx_err_set(err, KX_EINVAL, "a silence must end after it starts");
	if (s->ends_at - s->starts_at > (kx_ms)366 * 86400000)
		return kx_err_set(err, KX_EINVAL, "a silence lasts at most 366 days");
	if (s->ends_at <= now)
		return kx_err_set(err, KX_EINVAL, "that silence would already be over");
	if (s->comment && ((rc = kx_check_text("comment", s->comment, err))))
		return rc;
	if (s->comment && strlen(s->comment) > 4096)
		return kx_err_set(err, KX_EINVAL, "'comment' is longer than 4096 bytes");
	kx_random_id("sil_", s->id, sizeof(s->id));
	s->created_at = now;
	s->expired_at = KX_TIME_UNSET;
	free(s->created_by);
	if (!(s->created_by = strdup(who->name)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_silence_insert(tx, s, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who,
				      s->kind == KX_MAINTENANCE ? "maintenance.create" : "silence.create",
				      s->id, NULL, now, err))) {
		kx_store_rollback(tx);
		return rc;
	}
	return kx_store_commit(tx, err);
}

int kx_svc_silence_list(const struct kx_app *app, bool active_only, kx_ms now,
			struct kx_silences *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;
	size_t keep = 0;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_silence_list(tx, false, now, out, err);
	kx_store_rollback(tx);
	if (rc || !active_only)
		return rc;
	/* in force or still to come (a maintenance window planned for
	 * tonight), as Alertmanager lists active and pending silences */
	for (size_t i = 0; i < out->n; i++) {
		if (out->v[i].expired_at == KX_TIME_UNSET && out->v[i].ends_at > now)
			out->v[keep++] = out->v[i];
		else
			kx_silence_release(&out->v[i]);
	}
	out->n = keep;
	return 0;
}

int kx_svc_silence_expire(const struct kx_app *app, const struct kx_token *who, const char *id,
			  kx_ms now, struct kx_silence *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	kx_silence_init(out);
	if (who->scope.n)
		return kx_err_set(err, KX_EFORBIDDEN,
				  "silences cover every service: they need a token without a label scope");
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_silence_get(tx, id, out, err))) {
		if (rc == KX_ENOTFOUND)
			kx_err_set(err, rc, "silence '%.64s' not found", id);
		goto out;
	}
	if (!kx_silence_active(out, now) && out->starts_at <= now) {
		rc = kx_err_set(err, KX_ECONFLICT, "silence '%s' is not in force", id);
		goto out;
	}
	out->expired_at = now;
	if ((rc = kx_store_silence_update(tx, out, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "silence.expire", id, NULL, now, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	if (rc)
		kx_silence_release(out);
	return rc;
}

/* ---- heartbeats ------------------------------------------------------------- */

static int heartbeat_event(const struct kx_app *app, struct kx_tx *tx,
			   const struct kx_heartbeat *h, enum kx_alert_action action, kx_ms now,
			   struct kx_err *err);

int kx_svc_heartbeat_create(const struct kx_app *app, const struct kx_token *who,
			    struct kx_heartbeat *h, kx_ms now,
			    char key[KX_INTEGRATION_KEY_LEN + 1], struct kx_err *err)
{
	struct kx_service svc;
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_service_name_check(h->name, err)))
		return kx_err_set(err, KX_EINVAL, "heartbeat name '%.64s': use 1 to 64 of a-z, 0-9, '_' and '-'",
				  h->name ? h->name : "");
	if (h->interval < 1000 || h->interval > (kx_ms)7 * 86400000)
		return kx_err_set(err, KX_EINVAL, "'interval' must be from 1s to 7d");
	if (h->grace < 0 || h->grace > (kx_ms)7 * 86400000)
		return kx_err_set(err, KX_EINVAL, "'grace' must be from 0 to 7d");
	kx_integration_key_generate(key);
	kx_hash(key, strlen(key), h->hash);
	h->state = KX_HB_WAITING;
	h->last_ping = KX_TIME_UNSET;
	h->created_at = now;
	/* armed by its first ping, as in Grafana OnCall and GoAlert: a
	 * heartbeat created before its sender is deployed does not page */
	h->due_at = KX_TIME_UNSET;
	free(h->created_by);
	if (!(h->created_by = strdup(who->name)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	kx_service_init(&svc);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_service_get(tx, h->service, &svc, err)) ||
	    (!kx_labels_match(&svc.labels, &who->scope) && (rc = KX_ENOTFOUND))) {
		if (rc == KX_ENOTFOUND)
			kx_err_set(err, rc, "service '%.64s' not found", h->service);
		goto fail;
	}
	if ((rc = kx_store_heartbeat_insert(tx, h, err))) {
		if (rc == KX_ECONFLICT)
			kx_err_set(err, rc, "heartbeat '%s' already exists", h->name);
		goto fail;
	}
	if ((rc = kx_svc_audit_record(app, tx, who, "heartbeat.create", h->name, &svc.labels, now,
				      err)))
		goto fail;
	kx_service_release(&svc);
	return kx_store_commit(tx, err);
fail:
	kx_store_rollback(tx);
	kx_service_release(&svc);
	sodium_memzero(key, KX_INTEGRATION_KEY_LEN);
	return rc;
}

int kx_svc_heartbeat_list(const struct kx_app *app, const struct kx_token *who,
			  struct kx_heartbeats *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	size_t keep = 0;
	int rc;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_heartbeat_list(tx, out, err);
	for (size_t i = 0; !rc && i < out->n; i++) {
		bool vis;
		if ((rc = service_visible(tx, who, out->v[i].service, &vis, err)))
			break;
		if (vis)
			out->v[keep++] = out->v[i];
		else
			kx_heartbeat_release(&out->v[i]);
	}
	if (!rc)
		out->n = keep;
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_heartbeat_delete(const struct kx_app *app, const struct kx_token *who,
			    const char *name, kx_ms now, struct kx_err *err)
{
	struct kx_heartbeat h;
	struct kx_tx *tx = NULL;
	bool vis = true;
	int rc;

	kx_heartbeat_init(&h);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_heartbeat_get(tx, name, &h, err)) ||
	    (rc = service_visible(tx, who, h.service, &vis, err)) || (!vis && (rc = KX_ENOTFOUND)))
		goto out;
	/* a heartbeat that goes away takes its open alert with it: nothing
	 * would ever resolve it otherwise */
	if ((h.state == KX_HB_DOWN &&
	     (rc = heartbeat_event(app, tx, &h, KX_ALERT_RESOLVE, now, err))) ||
	    (rc = kx_store_heartbeat_delete(tx, name, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "heartbeat.delete", name, NULL, now, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	if (rc == KX_ENOTFOUND)
		kx_err_set(err, rc, "heartbeat '%.64s' not found", name);
	kx_store_rollback(tx);
	kx_heartbeat_release(&h);
	return rc;
}

/* The alert of a heartbeat going down (trigger) or coming back (resolve). */
static int heartbeat_event(const struct kx_app *app, struct kx_tx *tx,
			   const struct kx_heartbeat *h, enum kx_alert_action action, kx_ms now,
			   struct kx_err *err)
{
	struct kx_alert_event e;
	char actor[80], key[80], summary[300], details[200], last[KX_TIME_STRLEN];
	char iv[32], gr[32];
	int rc;

	kx_alert_event_init(&e);
	snprintf(actor, sizeof(actor), "heartbeat:%s", h->name);
	snprintf(key, sizeof(key), "heartbeat:%s", h->name);
	kx_duration_format(h->interval, iv);
	kx_duration_format(h->grace, gr);
	if (h->last_ping != KX_TIME_UNSET)
		kx_time_format(h->last_ping, last);
	else
		snprintf(last, sizeof(last), "never");
	snprintf(summary, sizeof(summary), "Heartbeat %s missed: no ping for %s + %s grace (last ping: %s)",
		 h->name, iv, gr, last);
	snprintf(details, sizeof(details), "{\"heartbeat\":\"%s\",\"last_ping\":\"%s\"}", h->name,
		 last);
	e.source = KX_SOURCE_HEARTBEAT;
	e.action = action;
	e.level = h->level;
	if (!(e.dedup_key = strdup(key)) || !(e.summary = strdup(summary)) ||
	    !(e.details = strdup(details)) ||
	    (rc = kx_alert_label_set(&e.labels, "heartbeat", h->name, err)) != 0) {
		kx_alert_event_release(&e);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	rc = ingest_tx(app, tx, h->service, actor, &e, 1, now, NULL, err);
	kx_alert_event_release(&e);
	return rc;
}

int kx_svc_heartbeat_ping(const struct kx_app *app, const char *key, kx_ms now,
			  struct kx_heartbeat *out, struct kx_err *err)
{
	uint8_t h[KX_HASH_LEN];
	struct kx_tx *tx = NULL;
	bool was_down;
	int rc;

	kx_heartbeat_init(out);
	if (!key || strlen(key) != KX_INTEGRATION_KEY_LEN)
		return kx_err_set(err, KX_ENOTFOUND, "unknown heartbeat");
	kx_hash(key, strlen(key), h);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_heartbeat_by_hash(tx, h, out, err))) {
		if (rc == KX_ENOTFOUND)
			kx_err_set(err, rc, "unknown heartbeat");
		goto out;
	}
	was_down = out->state == KX_HB_DOWN;
	out->state = KX_HB_UP;
	out->last_ping = now;
	out->due_at = now + out->interval + out->grace;
	if ((rc = kx_store_heartbeat_update(tx, out, err)) ||
	    (was_down && (rc = heartbeat_event(app, tx, out, KX_ALERT_RESOLVE, now, err))))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	if (rc)
		kx_heartbeat_release(out);
	return rc;
}

int kx_svc_heartbeat_tick(const struct kx_app *app, kx_ms now, struct kx_err *err)
{
	struct kx_heartbeats due = {0};
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_heartbeat_due(tx, now, 100, &due, err)))
		goto out;
	for (size_t i = 0; i < due.n && !rc; i++) {
		due.v[i].state = KX_HB_DOWN;
		if (!(rc = kx_store_heartbeat_update(tx, &due.v[i], err)))
			rc = heartbeat_event(app, tx, &due.v[i], KX_ALERT_TRIGGER, now, err);
	}
	if (rc || !due.n)
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	kx_heartbeats_release(&due);
	return rc;
}

int kx_svc_alert_expire_tick(const struct kx_app *app, kx_ms now, struct kx_err *err)
{
	struct kx_alerts due = {0};
	struct kx_tx *tx = NULL;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_alert_expired(tx, now, 200, &due, err)))
		goto out;
	for (size_t i = 0; i < due.n && !rc; i++) {
		struct kx_alert_event e;
		kx_alert_event_init(&e);
		e.source = due.v[i].source;
		e.action = KX_ALERT_RESOLVE;
		e.level = due.v[i].level;
		e.ends_at = due.v[i].ends_at;
		rc = (e.dedup_key = strdup(due.v[i].dedup_key)) &&
			     !kx_labels_copy(&e.labels, &due.v[i].labels)
			     ? ingest_tx(app, tx, due.v[i].service, "expired", &e, 1, now, NULL, err)
			     : kx_err_set(err, KX_ENOMEM, "out of memory");
		kx_alert_event_release(&e);
	}
	if (rc || !due.n)
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
out:
	kx_store_rollback(tx);
	kx_alerts_release(&due);
	return rc;
}
