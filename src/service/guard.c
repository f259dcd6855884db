/* guard.c — kill switches, caps, approvals and the gate runtime (guard.h).
 *
 * The runtime holds one sealed snapshot and the decision state behind one
 * mutex: a check is a couple of microseconds of pure work under it, and a
 * swap is a pointer exchange under it (the new snapshot is built outside).
 * Rebuilds are asked for by the change feed (topic "gate", or "*" after a
 * feed reconnect) and run on a thread of their own, so a store thread is
 * never held up by a database read; a change made here also rebuilds at
 * once, before its request is answered.
 */
#include "service/guard.h"
#include "core/selector.h"
#include "core/text.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "service/audit.h"
#include "service/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LISTENERS 8
#define DECIDED_RING 64	 /* approval decisions kept for the switch stream */
#define PENDING_IDS 1024 /* decisions heard of, not yet read */
#define EVENT_CACHE 16	 /* encoded stream events kept, by scope */
#define RELOAD_EVERY_MS 30000 /* a safety net under the change feed */
#define REASON_MAX 1000

struct kx_gate_rt {
	const struct kx_app *app;
	pthread_mutex_t lock; /* snap, sw, state */
	struct kx_gate_snapshot *snap;
	struct kx_switches sw; /* what snap was built from (in force when built) */
	struct kx_gate_state *state;
	_Atomic uint64_t version;
	uint8_t fingerprint[KX_HASH_LEN]; /* of what snap was built from */
	_Atomic kx_ms next_change;	  /* the next expiry or ramp end, or KX_TIME_UNSET */
	bool failsafe;			  /* snap is the fail-closed one */

	pthread_mutex_t build_lock; /* one rebuild at a time, in order */

	/* Approval decisions for the stream, newest last: ring[i % DECIDED_RING]
	 * holds decision number i + 1 (under lock). */
	struct kx_approval ring[DECIDED_RING];
	uint64_t decided; /* decisions pushed so far */

	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	bool dirty, stop;
	char pending[PENDING_IDS][KX_ID_LEN]; /* approvals decided somewhere (wake_lock) */
	int npending;
	pthread_t thread;
	bool thread_started;

	/* The switch stream's event text per scope for the current version:
	 * encoded once, copied to every subscriber (under cache_lock). */
	pthread_mutex_t cache_lock;
	struct {
		char *scope; /* kx_labels_format of the scope; NULL: slot free */
		uint64_t version;
		char *text;
		size_t len;
	} cache[EVENT_CACHE];
	unsigned cache_next;

	struct {
		kx_gate_listener fn;
		void *arg;
	} listeners[MAX_LISTENERS];
	_Atomic int nlisteners;
};

/* ---- small helpers ------------------------------------------------------ */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jtime(kx_ms t)
{
	char ts[KX_TIME_STRLEN];
	return t == KX_TIME_UNSET ? json_null() : json_string(kx_time_format(t, ts));
}

static json_t *jlabels(const struct kx_labels *ls)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < ls->n; i++)
		json_object_set_new(o, ls->v[i].key, json_string(ls->v[i].value));
	return o;
}

static int switch_copy(struct kx_switch *dst, const struct kx_switch *src)
{
	*dst = *src;
	dst->selector = xstrdup(src->selector);
	dst->reason = xstrdup(src->reason);
	dst->set_by = xstrdup(src->set_by);
	dst->incident = xstrdup(src->incident);
	dst->cleared_by = xstrdup(src->cleared_by);
	dst->clear_reason = xstrdup(src->clear_reason);
	if ((src->selector && !dst->selector) || (src->reason && !dst->reason) ||
	    (src->set_by && !dst->set_by) || (src->incident && !dst->incident) ||
	    (src->cleared_by && !dst->cleared_by) || (src->clear_reason && !dst->clear_reason)) {
		kx_switch_release(dst);
		return KX_ENOMEM;
	}
	return 0;
}

/* Could an action in `scope` match sel? Every requirement on a scope key
 * must accept the scope's value; other keys can be anything. */
static bool selector_compatible(const struct kx_selector *sel, const struct kx_labels *scope)
{
	for (size_t i = 0; i < scope->n; i++) {
		const struct kx_selector_req *r = kx_selector_get(sel, scope->v[i].key);
		bool in = false;
		if (!r)
			continue;
		for (size_t k = 0; k < r->n; k++)
			in |= strcmp(r->values[k], scope->v[i].value) == 0;
		if ((r->op == KX_SELECTOR_EQ || r->op == KX_SELECTOR_IN) ? !in : in)
			return false;
	}
	return true;
}

/* Does sel cover nothing outside scope (every scope label required with
 * '=')? Only such switches and caps may a scoped token set. */
static bool selector_within(const struct kx_selector *sel, const struct kx_labels *scope)
{
	for (size_t i = 0; i < scope->n; i++) {
		const struct kx_selector_req *r = kx_selector_get(sel, scope->v[i].key);
		if (!r || r->op != KX_SELECTOR_EQ || strcmp(r->values[0], scope->v[i].value) != 0)
			return false;
	}
	return true;
}

static bool text_compatible(const char *text, const struct kx_labels *scope)
{
	struct kx_selector sel;
	bool ok;
	if (!scope->n)
		return true;
	kx_selector_init(&sel);
	ok = kx_selector_parse(&sel, text ? text : "", NULL) == 0 &&
	     selector_compatible(&sel, scope);
	kx_selector_release(&sel);
	return ok;
}

/* The labels that a selector's '=' requirements name: what a switch is
 * "about", for the audit log, channel selectors and scope visibility. */
static int selector_labels(const struct kx_selector *sel, struct kx_labels *out,
			   struct kx_err *err)
{
	for (size_t i = 0; i < sel->n; i++) {
		int rc;
		if (sel->v[i].op != KX_SELECTOR_EQ)
			continue;
		if ((rc = kx_labels_set(out, sel->v[i].key, sel->v[i].values[0], err)))
			return rc;
	}
	return 0;
}

static int scope_error(const struct kx_token *who, const char *what, struct kx_err *err)
{
	struct kx_buf b;
	int rc;
	kx_buf_init(&b, 4096);
	kx_labels_format(&who->scope, &b);
	rc = kx_err_set(err, KX_EFORBIDDEN,
			"this token is scoped to %s: a %s must require %s too", kx_buf_str(&b), what,
			kx_buf_str(&b));
	kx_buf_release(&b);
	return rc;
}

static int check_reason(const char *what, const char *s, bool required, struct kx_err *err)
{
	if (!s || !*s)
		return required ? kx_err_set(err, KX_EINVAL, "'%s' is required", what) : 0;
	if (strlen(s) > REASON_MAX)
		return kx_err_set(err, KX_EINVAL, "'%s' is longer than %d bytes", what, REASON_MAX);
	if (kx_text_check(s, strlen(s), KX_TEXT_MULTILINE))
		return kx_err_set(err, KX_EINVAL, "'%s': control characters or invalid UTF-8", what);
	return 0;
}

/* ---- JSON views ----------------------------------------------------------- */

json_t *kx_switch_json(const struct kx_switch *sw, kx_ms now)
{
	json_t *ramp = json_null();
	if (sw->ramp.start != KX_TIME_UNSET) {
		char w[32];
		ramp = json_pack("{s:o,s:o,s:s,s:I,s:I}", "start", jtime(sw->ramp.start), "end",
				 jtime(sw->ramp.end), "window", kx_duration_format(sw->ramp.window, w),
				 "floor", (json_int_t)sw->ramp.floor, "peak",
				 (json_int_t)sw->ramp.peak);
	}
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "id", sw->id,
			 "selector", sw->selector ? sw->selector : "", "mode",
			 kx_gate_mode_name(sw->mode), "reason", jstr(sw->reason), "set_by",
			 jstr(sw->set_by), "set_at", jtime(sw->set_at), "expires_at",
			 jtime(sw->expires_at), "incident", jstr(sw->incident), "ramp",
			 ramp ? ramp : json_null(), "cleared_at", jtime(sw->cleared_at),
			 "cleared_by", jstr(sw->cleared_by), "clear_reason", jstr(sw->clear_reason),
			 "active", kx_switch_active(sw, now));
}

json_t *kx_cap_json(const struct kx_cap *c, bool from_config)
{
	return json_pack("{s:s,s:s,s:o,s:o,s:s}", "id", c->id, "spec", c->spec, "set_by",
			 jstr(c->set_by), "set_at", jtime(c->set_at), "source",
			 from_config ? "config" : "api");
}

json_t *kx_approval_json(const struct kx_approval *a, kx_ms now)
{
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o}", "id", a->id,
			 "status", kx_approval_status_name(kx_approval_effective_status(a, now)),
			 "switch", jstr(a->switch_id), "labels", jlabels(&a->labels),
			 "idempotency_key", jstr(a->idempotency_key), "read_only", a->read_only,
			 "requested_by", jstr(a->requested_by), "requested_at",
			 jtime(a->requested_at), "expires_at", jtime(a->expires_at), "decided_by",
			 jstr(a->decided_by), "decided_at", jtime(a->decided_at), "note",
			 jstr(a->note));
}

/* ---- the runtime ----------------------------------------------------------- */

bool kx_svc_cap_is_config(const struct kx_app *app, const char *id)
{
	for (size_t i = 0; i < app->cfg->gate.ncaps; i++)
		if (!strcmp(app->cfg->gate.caps[i].id, id))
			return true;
	return false;
}

/* A snapshot that stops everything: what the gate serves when it has never
 * been able to read the switches (fail closed). */
static struct kx_gate_snapshot *failsafe_snapshot(void)
{
	struct kx_gate_snapshot *s = kx_gate_snapshot_new();
	struct kx_gate_switch sw = {0};
	sw.id = "failsafe";
	sw.selector = "";
	sw.mode = KX_GATE_BLOCK;
	sw.reason = "the switches could not be read: failing closed";
	sw.set_by = "klaxond";
	sw.set_at = KX_TIME_UNSET;
	sw.expires_at = KX_TIME_UNSET;
	sw.ramp.start = KX_TIME_UNSET;
	if (!s || kx_gate_snapshot_add_switch(s, &sw, NULL) || kx_gate_snapshot_seal(s, NULL)) {
		kx_gate_snapshot_free(s);
		return NULL;
	}
	return s;
}

/* A hash of everything a snapshot is built from, so that a rebuild that
 * finds nothing new changes nothing (no swap, no stream event). */
static int fingerprint(const struct kx_switches *sw, const struct kx_caps *caps,
		       uint8_t out[KX_HASH_LEN])
{
	struct kx_buf b;
	int rc = 0;
	kx_buf_init(&b, 0);
	for (size_t i = 0; !rc && i < sw->n; i++) {
		const struct kx_switch *w = &sw->v[i];
		rc = kx_buf_addf(&b, "%s\x1f%s\x1f%d\x1f%lld\x1f%lld\x1f%lld\x1f%lld\x1f%u\x1f%u\x1f%s\x1f%s\x1e",
				 w->id, w->selector ? w->selector : "", (int)w->mode,
				 (long long)w->expires_at, (long long)w->ramp.start,
				 (long long)w->ramp.end, (long long)w->ramp.window, w->ramp.floor,
				 w->ramp.peak, w->reason ? w->reason : "",
				 w->incident ? w->incident : "");
	}
	for (size_t i = 0; !rc && i < caps->n; i++)
		rc = kx_buf_addf(&b, "cap\x1f%s\x1f%s\x1e", caps->v[i].id, caps->v[i].spec);
	if (!rc)
		kx_hash(b.data ? b.data : "", b.len, out);
	kx_buf_release(&b);
	return rc ? KX_ENOMEM : 0;
}

/* The next moment the set in force changes by itself: an expiry or the end
 * of a ramp. */
static kx_ms next_change(const struct kx_switches *sw)
{
	kx_ms next = KX_TIME_UNSET;
	for (size_t i = 0; i < sw->n; i++) {
		kx_ms t = sw->v[i].expires_at;
		if (sw->v[i].ramp.start != KX_TIME_UNSET &&
		    (t == KX_TIME_UNSET || sw->v[i].ramp.end < t))
			t = sw->v[i].ramp.end;
		if (t != KX_TIME_UNSET && (next == KX_TIME_UNSET || t < next))
			next = t;
	}
	return next;
}

/* Reads switches and caps and builds a sealed snapshot; *same says that
 * they are what `fp` was computed from (nothing is built then). */
static int build(const struct kx_app *app, kx_ms now, const uint8_t *fp, bool *same,
		 uint8_t newfp[KX_HASH_LEN], struct kx_gate_snapshot **snap,
		 struct kx_switches *sw, struct kx_err *err)
{
	struct kx_caps caps = {0};
	struct kx_tx *tx = NULL;
	struct kx_gate_snapshot *s = NULL;
	int rc;

	*snap = NULL;
	if ((rc = kx_store_begin(app->store, false, &tx, err)) ||
	    (rc = kx_store_switch_list(tx, false, now, sw, err)) ||
	    (rc = kx_store_cap_list(tx, &caps, err)))
		goto out;
	if ((rc = fingerprint(sw, &caps, newfp))) {
		rc = kx_err_set(err, rc, "out of memory");
		goto out;
	}
	*same = fp && memcmp(fp, newfp, KX_HASH_LEN) == 0;
	if (*same) {
		kx_switches_release(sw);
		goto out;
	}
	if (!(s = kx_gate_snapshot_new())) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_gate_snapshot_set_dedupe_window(s, app->cfg->gate.dedupe_window, err)))
		goto out;
	for (size_t i = 0; i < sw->n; i++) {
		struct kx_gate_switch g;
		kx_switch_to_gate(&sw->v[i], &g);
		if ((rc = kx_gate_snapshot_add_switch(s, &g, err)))
			goto out;
	}
	for (size_t i = 0; i < app->cfg->gate.ncaps; i++)
		if ((rc = kx_gate_snapshot_add_cap(s, app->cfg->gate.caps[i].id,
						   app->cfg->gate.caps[i].spec, err)))
			goto out;
	for (size_t i = 0; i < caps.n; i++) {
		if (kx_svc_cap_is_config(app, caps.v[i].id))
			continue; /* the file wins */
		if ((rc = kx_gate_snapshot_add_cap(s, caps.v[i].id, caps.v[i].spec, err)))
			goto out;
	}
	if ((rc = kx_gate_snapshot_seal(s, err)))
		goto out;
	*snap = s;
	s = NULL;
out:
	kx_store_rollback(tx);
	kx_caps_release(&caps);
	kx_gate_snapshot_free(s);
	if (rc)
		kx_switches_release(sw);
	return rc;
}

static void notify_listeners(struct kx_gate_rt *rt)
{
	int n = atomic_load(&rt->nlisteners);
	for (int i = 0; i < n; i++)
		rt->listeners[i].fn(rt->listeners[i].arg);
}

int kx_gate_rt_reload(struct kx_gate_rt *rt, struct kx_err *err)
{
	struct kx_gate_snapshot *snap, *old;
	struct kx_switches sw = {0}, oldsw;
	uint8_t fp[KX_HASH_LEN];
	bool same = false;
	int rc;

	pthread_mutex_lock(&rt->build_lock);
	rc = build(rt->app, kx_now_ms(), rt->snap && !rt->failsafe ? rt->fingerprint : NULL, &same,
		   fp, &snap, &sw, err);
	if (rc || same) {
		pthread_mutex_unlock(&rt->build_lock);
		return rc;
	}
	pthread_mutex_lock(&rt->lock);
	old = rt->snap;
	oldsw = rt->sw;
	rt->snap = snap;
	rt->sw = sw;
	rt->failsafe = false;
	memcpy(rt->fingerprint, fp, KX_HASH_LEN);
	atomic_store(&rt->next_change, next_change(&sw));
	atomic_fetch_add(&rt->version, 1);
	pthread_mutex_unlock(&rt->lock);
	pthread_mutex_unlock(&rt->build_lock);
	kx_gate_snapshot_free(old);
	kx_switches_release(&oldsw);
	notify_listeners(rt);
	return 0;
}

/* Reads the approvals decided (here or in another daemon) and adds them
 * to the ring the switch stream reads. */
static void push_decisions(struct kx_gate_rt *rt, char (*ids)[KX_ID_LEN], int n)
{
	struct kx_tx *tx = NULL;
	struct kx_err err = {0};
	bool pushed = false;

	if (kx_store_begin(rt->app->store, false, &tx, &err)) {
		kx_log(KX_LOG_WARN, "gate: cannot read decided approvals: %s", err.msg);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct kx_approval a;
		kx_approval_init(&a);
		if (kx_store_approval_get(tx, ids[i], &a, &err)) {
			kx_approval_release(&a);
			continue;
		}
		pthread_mutex_lock(&rt->lock);
		kx_approval_release(&rt->ring[rt->decided % DECIDED_RING]);
		rt->ring[rt->decided % DECIDED_RING] = a;
		rt->decided++;
		pthread_mutex_unlock(&rt->lock);
		pushed = true;
	}
	kx_store_rollback(tx);
	if (pushed)
		notify_listeners(rt);
}

static void *reload_thread(void *arg)
{
	struct kx_gate_rt *rt = arg;
	pthread_mutex_lock(&rt->wake_lock);
	while (!rt->stop) {
		struct timespec ts;
		struct kx_err err = {0};
		if (!rt->dirty && !rt->npending) {
			/* until the next expiry or ramp end (so the stream drops a
			 * switch when it stops applying), at most RELOAD_EVERY_MS */
			kx_ms wait = RELOAD_EVERY_MS, next = atomic_load(&rt->next_change);
			if (next != KX_TIME_UNSET) {
				kx_ms d = next - kx_now_ms() + 5;
				wait = d < 5 ? 5 : d < wait ? d : wait;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&rt->wake, &rt->wake_lock, &ts);
			if (rt->stop)
				break;
		}
		{
			bool dirty = rt->dirty;
			static char ids[PENDING_IDS][KX_ID_LEN]; /* this thread's only */
			int n = rt->npending;
			memcpy(ids, rt->pending, sizeof(ids[0]) * (size_t)n);
			rt->npending = 0;
			rt->dirty = false;
			pthread_mutex_unlock(&rt->wake_lock);
			if (n)
				push_decisions(rt, ids, n);
			if ((dirty || !n) && kx_gate_rt_reload(rt, &err))
				kx_log(KX_LOG_ERROR,
				       "gate: cannot reload the switches, keeping the previous set: %s",
				       err.msg);
		}
		pthread_mutex_lock(&rt->wake_lock);
	}
	pthread_mutex_unlock(&rt->wake_lock);
	return NULL;
}

static void on_change(const char *topic, const char *payload, void *arg)
{
	struct kx_gate_rt *rt = arg;
	bool approval = strcmp(topic, "approval") == 0;
	if (strcmp(topic, "gate") != 0 && strcmp(topic, "*") != 0 && !approval)
		return;
	pthread_mutex_lock(&rt->wake_lock);
	if (!approval)
		rt->dirty = true;
	else if (payload && strlen(payload) < KX_ID_LEN && rt->npending < PENDING_IDS)
		memcpy(rt->pending[rt->npending++], payload, strlen(payload) + 1);
	else if (payload)
		kx_log(KX_LOG_WARN, "gate: too many approval decisions at once; %s not streamed",
		       payload);
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->wake_lock);
}

int kx_gate_rt_new(const struct kx_app *app, struct kx_gate_rt **out, struct kx_err *err)
{
	struct kx_gate_rt *rt = calloc(1, sizeof(*rt));
	struct kx_err e = {0};
	int rc;

	if (!rt)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	rt->app = app;
	atomic_store(&rt->next_change, KX_TIME_UNSET);
	for (int i = 0; i < DECIDED_RING; i++)
		kx_approval_init(&rt->ring[i]);
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->cache_lock, NULL);
	pthread_mutex_init(&rt->build_lock, NULL);
	pthread_mutex_init(&rt->wake_lock, NULL);
	pthread_cond_init(&rt->wake, NULL);
	if (!(rt->state = kx_gate_state_new(&(struct kx_gate_limits){.presize = true}))) {
		kx_gate_rt_free(rt);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if (kx_gate_rt_reload(rt, &e)) {
		/* Fail closed until a rebuild works (the reload thread retries). */
		kx_log(KX_LOG_ERROR, "gate: cannot read the switches, blocking every action: %s",
		       e.msg);
		rt->snap = failsafe_snapshot();
		rt->failsafe = true;
		rt->dirty = true;
		if (!rt->snap) {
			kx_gate_rt_free(rt);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
	}
	if ((rc = kx_store_subscribe(app->store, on_change, rt, err))) {
		kx_gate_rt_free(rt);
		return rc;
	}
	if (pthread_create(&rt->thread, NULL, reload_thread, rt)) {
		kx_gate_rt_free(rt);
		return kx_err_set(err, KX_ENOMEM, "cannot start the gate's reload thread");
	}
	rt->thread_started = true;
	*out = rt;
	return 0;
}

void kx_gate_rt_stop(struct kx_gate_rt *rt)
{
	if (!rt || !rt->thread_started)
		return;
	pthread_mutex_lock(&rt->wake_lock);
	rt->stop = true;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->wake_lock);
	pthread_join(rt->thread, NULL);
	rt->thread_started = false;
}

void kx_gate_rt_free(struct kx_gate_rt *rt)
{
	if (!rt)
		return;
	kx_gate_rt_stop(rt);
	/* The store's subscription stays: the store is freed after us and
	 * delivers nothing once the daemon stops serving. */
	kx_gate_snapshot_free(rt->snap);
	kx_switches_release(&rt->sw);
	kx_gate_state_free(rt->state);
	for (int i = 0; i < DECIDED_RING; i++)
		kx_approval_release(&rt->ring[i]);
	for (int i = 0; i < EVENT_CACHE; i++) {
		free(rt->cache[i].scope);
		free(rt->cache[i].text);
	}
	pthread_mutex_destroy(&rt->cache_lock);
	pthread_mutex_destroy(&rt->lock);
	pthread_mutex_destroy(&rt->build_lock);
	pthread_mutex_destroy(&rt->wake_lock);
	pthread_cond_destroy(&rt->wake);
	free(rt);
}

uint64_t kx_gate_rt_version(const struct kx_gate_rt *rt)
{
	return atomic_load(&((struct kx_gate_rt *)rt)->version);
}

int kx_gate_rt_listen(struct kx_gate_rt *rt, kx_gate_listener fn, void *arg)
{
	int n = atomic_load(&rt->nlisteners);
	if (n >= MAX_LISTENERS)
		return KX_ENOMEM;
	rt->listeners[n].fn = fn;
	rt->listeners[n].arg = arg;
	atomic_store(&rt->nlisteners, n + 1);
	return 0;
}

int kx_gate_rt_switches(struct kx_gate_rt *rt, const struct kx_labels *scope,
			struct kx_switches *out, uint64_t *version, struct kx_err *err)
{
	int rc = 0;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&rt->lock);
	*version = atomic_load(&rt->version);
	if (rt->sw.n && !(out->v = calloc(rt->sw.n, sizeof(*out->v))))
		rc = KX_ENOMEM;
	for (size_t i = 0; !rc && i < rt->sw.n; i++) {
		if (!text_compatible(rt->sw.v[i].selector, scope))
			continue;
		if ((rc = switch_copy(&out->v[out->n], &rt->sw.v[i])) == 0)
			out->n++;
	}
	pthread_mutex_unlock(&rt->lock);
	if (rc) {
		kx_switches_release(out);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	return 0;
}

uint64_t kx_gate_rt_decisions(struct kx_gate_rt *rt)
{
	uint64_t n;
	pthread_mutex_lock(&rt->lock);
	n = rt->decided;
	pthread_mutex_unlock(&rt->lock);
	return n;
}

int kx_gate_rt_decisions_since(struct kx_gate_rt *rt, const struct kx_labels *scope,
			       uint64_t *after, kx_ms now, json_t **out)
{
	json_t *arr = json_array();
	int rc = 0;
	*out = NULL;
	if (!arr)
		return KX_ENOMEM;
	pthread_mutex_lock(&rt->lock);
	if (rt->decided - *after > DECIDED_RING)
		*after = rt->decided - DECIDED_RING; /* older ones are gone */
	for (uint64_t i = *after; i < rt->decided && !rc; i++) {
		const struct kx_approval *a = &rt->ring[i % DECIDED_RING];
		if (kx_labels_match(&a->labels, scope) &&
		    json_array_append_new(arr, kx_approval_json(a, now)))
			rc = KX_ENOMEM;
	}
	*after = rt->decided;
	pthread_mutex_unlock(&rt->lock);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int encode_event(struct kx_gate_rt *rt, const struct kx_labels *scope, struct kx_buf *out,
			uint64_t *version)
{
	struct kx_switches l = {0};
	struct kx_err err = {0};
	json_t *arr, *j;
	char *text;
	kx_ms now = kx_now_ms();
	int rc;

	if ((rc = kx_gate_rt_switches(rt, scope, &l, version, &err)))
		return rc;
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kx_switch_json(&l.v[i], now));
	kx_switches_release(&l);
	j = arr ? json_pack("{s:I,s:o}", "version", (json_int_t)*version, "switches", arr) : NULL;
	if (!j)
		return KX_ENOMEM;
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return KX_ENOMEM;
	rc = kx_buf_adds(out, "event: switches\ndata: ") || kx_buf_adds(out, text) ||
	     kx_buf_adds(out, "\n\n");
	free(text);
	return rc ? KX_ENOMEM : 0;
}

int kx_gate_rt_stream_event(struct kx_gate_rt *rt, const struct kx_labels *scope,
			    struct kx_buf *out, uint64_t *version)
{
	struct kx_buf key, ev;
	uint64_t want = kx_gate_rt_version(rt);
	int rc = 0;
	bool hit = false;

	kx_buf_init(&key, 0);
	if (kx_labels_format(scope, &key) || kx_buf_addc(&key, '\0')) {
		kx_buf_release(&key);
		return KX_ENOMEM;
	}
	pthread_mutex_lock(&rt->cache_lock);
	for (unsigned i = 0; i < EVENT_CACHE && !hit; i++) {
		if (rt->cache[i].scope && rt->cache[i].version == want &&
		    !strcmp(rt->cache[i].scope, key.data)) {
			hit = true;
			*version = want;
			rc = kx_buf_add(out, rt->cache[i].text, rt->cache[i].len) ? KX_ENOMEM : 0;
		}
	}
	pthread_mutex_unlock(&rt->cache_lock);
	if (hit) {
		kx_buf_release(&key);
		return rc;
	}
	/* Encode outside the lock; racing subscribers may each encode once. */
	kx_buf_init(&ev, 0);
	if ((rc = encode_event(rt, scope, &ev, version))) {
		kx_buf_release(&ev);
		kx_buf_release(&key);
		return rc;
	}
	rc = kx_buf_add(out, ev.data, ev.len) ? KX_ENOMEM : 0;
	pthread_mutex_lock(&rt->cache_lock);
	{
		unsigned slot = rt->cache_next++ % EVENT_CACHE;
		for (unsigned i = 0; i < EVENT_CACHE; i++) /* same scope: replace it */
			if (rt->cache[i].scope && !strcmp(rt->cache[i].scope, key.data)) {
				slot = i;
				break;
			}
		free(rt->cache[slot].scope);
		free(rt->cache[slot].text);
		rt->cache[slot].scope = kx_buf_take(&key, NULL);
		rt->cache[slot].version = *version;
		rt->cache[slot].text = kx_buf_take(&ev, &rt->cache[slot].len);
		if (!rt->cache[slot].scope || !rt->cache[slot].text) {
			free(rt->cache[slot].scope);
			free(rt->cache[slot].text);
			rt->cache[slot].scope = rt->cache[slot].text = NULL;
		}
	}
	pthread_mutex_unlock(&rt->cache_lock);
	kx_buf_release(&ev);
	kx_buf_release(&key);
	return rc;
}

/* After a change committed here: in force before the request is answered. */
static void reload_now(const struct kx_app *app)
{
	struct kx_err e = {0};
	if (app->gate && kx_gate_rt_reload(app->gate, &e))
		kx_log(KX_LOG_ERROR, "gate: cannot reload after a change: %s", e.msg);
}

/* Commits a change to switches or caps and rebuilds the gate at once (the
 * change feed rebuilds the other daemons'). tx is gone afterwards. */
static int commit_gate_change(const struct kx_app *app, struct kx_tx **tx, struct kx_err *err)
{
	int rc = kx_store_commit(*tx, err);
	*tx = NULL;
	if (!rc)
		reload_now(app);
	return rc;
}

/* ---- checking ------------------------------------------------------------- */

/* The idempotency key as the gate sees it: a scoped token's keys are its
 * own, so two tenants using the same key do not collide. */
static int namespaced_key(const struct kx_token *who, const char *key, char *out, size_t outlen,
			  struct kx_err *err)
{
	struct kx_buf b;
	int rc = 0;
	if (!key || !*key) {
		out[0] = '\0';
		return 0;
	}
	if (!who->scope.n) {
		if (strlen(key) > KX_GATE_KEY_MAX)
			return kx_err_set(err, KX_EINVAL, "'idempotency_key' is longer than %d bytes",
					  KX_GATE_KEY_MAX);
		snprintf(out, outlen, "%s", key);
		return 0;
	}
	kx_buf_init(&b, 0);
	if (kx_labels_format(&who->scope, &b) || kx_buf_addf(&b, "|%s", key))
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	else if (b.len > KX_GATE_KEY_MAX)
		rc = kx_err_set(err, KX_EINVAL,
				"'idempotency_key' is too long for this token's scope (at most %zu bytes)",
				KX_GATE_KEY_MAX > b.len - strlen(key)
					? (size_t)KX_GATE_KEY_MAX - (b.len - strlen(key))
					: (size_t)0);
	else
		snprintf(out, outlen, "%s", kx_buf_str(&b));
	kx_buf_release(&b);
	return rc;
}

/* Persists the approval requests of a batch (one transaction) and fills
 * their request ids. An action with an idempotency key that already waits
 * for a human gets the same request again. */
static int request_approvals(const struct kx_app *app, const struct kx_token *who,
			     struct kx_gate_req *reqs, char (*keys)[KX_GATE_KEY_MAX + 1], size_t n,
			     kx_ms now, struct kx_gate_answer *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc = 0, asked = 0;

	for (size_t i = 0; i < n; i++)
		asked += out[i].verdict == KX_GATE_APPROVAL_REQUIRED;
	if (!asked)
		return 0;
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		struct kx_approval a;
		/* the key as the gate knows it: a scoped token's keys are its own */
		const char *key = keys[i][0] ? keys[i] : NULL;
		json_t *j;
		if (out[i].verdict != KX_GATE_APPROVAL_REQUIRED)
			continue;
		kx_approval_init(&a);
		if (key && *key) {
			rc = kx_store_approval_pending_by_key(tx, out[i].id, key, now, &a, err);
			if (rc == 0) {
				memcpy(out[i].request_id, a.id, sizeof(a.id));
				kx_approval_release(&a);
				continue;
			}
			if (rc != KX_ENOTFOUND)
				break;
			rc = 0;
		}
		kx_random_id("apr_", a.id, sizeof(a.id));
		a.switch_id = strdup(out[i].id);
		a.idempotency_key = xstrdup(key && *key ? key : NULL);
		a.requested_by = xstrdup(who->name);
		a.read_only = reqs[i].read_only;
		a.requested_at = now;
		a.expires_at = now + app->cfg->gate.approval_ttl;
		a.status = KX_APPROVAL_PENDING;
		if (!a.switch_id || (key && *key && !a.idempotency_key) ||
		    kx_labels_copy(&a.labels, &reqs[i].labels))
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		if (!rc)
			rc = kx_store_approval_insert(tx, &a, err);
		if (!rc) {
			j = kx_approval_json(&a, now);
			rc = kx_svc_outbox_emit(app, tx, "approval.requested", &a.labels, j, now, NULL,
						err);
			json_decref(j);
		}
		if (!rc)
			memcpy(out[i].request_id, a.id, sizeof(a.id));
		kx_approval_release(&a);
	}
	if (rc) {
		kx_store_rollback(tx);
		return rc;
	}
	return kx_store_commit(tx, err);
}

int kx_svc_gate_check(const struct kx_app *app, const struct kx_token *who,
		      struct kx_gate_req *reqs, size_t n, bool batch, kx_ms now,
		      struct kx_gate_answer *out, struct kx_err *err)
{
	struct kx_gate_action acts[64], *pacts = acts;
	struct kx_gate_decision decs[64], *pdecs = decs;
	char (*keys)[KX_GATE_KEY_MAX + 1] = NULL;
	struct kx_gate_rt *rt = app->gate;
	int rc = 0;

	if (!rt)
		return kx_err_set(err, KX_EUNAVAIL, "the gate is not running");
	if (n == 0 || n > KX_GATE_BATCH_MAX)
		return kx_err_set(err, KX_EINVAL, "a check holds 1 to %d actions", KX_GATE_BATCH_MAX);
	if (n > 64) {
		pacts = calloc(n, sizeof(*pacts));
		pdecs = calloc(n, sizeof(*pdecs));
	}
	keys = calloc(n, sizeof(*keys));
	if (!pacts || !pdecs || !keys) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct kx_err e = {0};
		int r;
		if (!reqs[i].labels.n)
			r = kx_err_set(&e, KX_EINVAL, "'labels' must name the action (at least one label)");
		else if (!(r = kx_labels_apply_scope(&reqs[i].labels, &who->scope, &e)))
			r = namespaced_key(who, reqs[i].idempotency_key, keys[i], sizeof(keys[i]), &e);
		if (r) {
			rc = batch ? kx_err_set(err, r, "action %zu: %s", i + 1, e.msg)
				   : kx_err_set(err, r, "%s", e.msg);
			goto out;
		}
		pacts[i].labels = &reqs[i].labels;
		pacts[i].idempotency_key = keys[i][0] ? keys[i] : NULL;
		pacts[i].read_only = reqs[i].read_only;
	}
	pthread_mutex_lock(&rt->lock);
	if (!batch)
		rc = kx_gate_decide(rt->snap, rt->state, &pacts[0], now, &pdecs[0], err);
	else
		rc = kx_gate_check_batch(rt->snap, rt->state, pacts, n, now, pdecs, err);
	/* Copy out what decided while the snapshot is certainly alive. */
	for (size_t i = 0; (rc == 0 || rc == KX_ENOMEM) && i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].verdict = pdecs[i].verdict;
		out[i].by = pdecs[i].by;
		out[i].retry_after = pdecs[i].retry_after;
		snprintf(out[i].id, sizeof(out[i].id), "%s", pdecs[i].id ? pdecs[i].id : "");
		snprintf(out[i].reason, sizeof(out[i].reason), "%s", pdecs[i].reason);
	}
	pthread_mutex_unlock(&rt->lock);
	if (rc == KX_ENOMEM)
		rc = 0; /* those actions were denied (by "state"): that is the answer */
	if (!rc)
		rc = request_approvals(app, who, reqs, keys, n, now, out, err);
out:
	if (pacts != acts)
		free(pacts);
	if (pdecs != decs)
		free(pdecs);
	free(keys);
	return rc;
}

/* ---- switches -------------------------------------------------------------- */

/* Reads switch id in tx as `who` may see it. */
static int switch_visible(struct kx_tx *tx, const struct kx_token *who, const char *id,
			  struct kx_switch *out, struct kx_err *err)
{
	int rc = kx_store_switch_get(tx, id, out, err);
	if (rc == KX_ENOTFOUND || (!rc && !text_compatible(out->selector, &who->scope))) {
		if (!rc)
			kx_switch_release(out);
		return kx_err_set(err, KX_ENOTFOUND, "switch '%.64s' not found", id);
	}
	return rc;
}

/* A timeline entry on the switch's incident (if any and visible). */
static int note_incident(struct kx_tx *tx, const struct kx_token *who, const char *incident,
			 const char *text, kx_ms now, struct kx_err *err)
{
	struct kx_timeline_entry e = {0};
	struct kx_incident inc;
	int rc;
	if (!incident)
		return 0;
	kx_incident_init(&inc);
	rc = kx_store_incident_get(tx, incident, &inc, err);
	if (!rc && !kx_labels_match(&inc.labels, &who->scope))
		rc = KX_ENOTFOUND;
	kx_incident_release(&inc);
	if (rc == KX_ENOTFOUND)
		return kx_err_set(err, KX_ENOTFOUND, "incident '%.64s' not found", incident);
	if (rc)
		return rc;
	e.at = now;
	e.author = (char *)(who->name ? who->name : "klaxon");
	e.kind = "switch";
	e.text = (char *)text;
	return kx_store_timeline_add(tx, incident, &e, err);
}

/* The common tail of every switch change: the change feed, the outbox, the
 * incident's timeline and the audit log, in the change's transaction. */
static int switch_effects(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
			  const struct kx_switch *sw, const char *event, const char *audit_action,
			  const char *note, kx_ms now, struct kx_err *err)
{
	struct kx_selector sel;
	struct kx_labels labels;
	json_t *j = NULL;
	int rc;

	kx_selector_init(&sel);
	kx_labels_init(&labels);
	if ((rc = kx_selector_parse(&sel, sw->selector, err)) ||
	    (rc = selector_labels(&sel, &labels, err)))
		goto out;
	if (!(j = kx_switch_json(sw, now))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_notify(tx, "gate", sw->id, err)) ||
	    (rc = kx_svc_outbox_emit(app, tx, event, &labels, j, now, NULL, err)) ||
	    (rc = note_incident(tx, who, sw->incident, note, now, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, audit_action, sw->id, &labels, now, err)))
		goto out;
out:
	json_decref(j);
	kx_labels_release(&labels);
	kx_selector_release(&sel);
	return rc;
}

static const char *mode_words(enum kx_gate_mode m)
{
	switch (m) {
	case KX_GATE_APPROVE: return "approval required for side effects";
	case KX_GATE_READ_ONLY: return "read-only";
	default: return "blocked";
	}
}

int kx_svc_switch_set(const struct kx_app *app, const struct kx_token *who,
		      const struct kx_switch_req *req, kx_ms now, struct kx_switch *out,
		      struct kx_err *err)
{
	struct kx_selector sel;
	struct kx_buf canon, note;
	struct kx_tx *tx = NULL;
	int rc;

	kx_switch_init(out);
	kx_selector_init(&sel);
	kx_buf_init(&canon, 0);
	kx_buf_init(&note, 0);
	if ((rc = check_reason("reason", req->reason, true, err)))
		goto out;
	if ((rc = kx_selector_parse(&sel, req->selector ? req->selector : "", err)))
		goto out;
	if (!selector_within(&sel, &who->scope)) {
		rc = scope_error(who, "switch", err);
		goto out;
	}
	if (req->mode != KX_GATE_BLOCK && req->mode != KX_GATE_APPROVE &&
	    req->mode != KX_GATE_READ_ONLY) {
		rc = kx_err_set(err, KX_EINVAL, "unknown switch mode");
		goto out;
	}
	if (req->expires_at != KX_TIME_UNSET &&
	    (req->expires_at <= now || req->expires_at - now > KX_GATE_WINDOW_MAX)) {
		rc = kx_err_set(err, KX_EINVAL, "'expires_at' must be in the future, at most 366 days on");
		goto out;
	}
	if ((rc = kx_selector_format(&sel, &canon))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	kx_random_id("sw_", out->id, sizeof(out->id));
	out->selector = strdup(kx_buf_str(&canon));
	out->mode = req->mode;
	out->reason = strdup(req->reason);
	out->set_by = strdup(who->name ? who->name : "klaxon");
	out->set_at = now;
	out->expires_at = req->expires_at;
	out->incident = xstrdup(req->incident);
	if (!out->selector || !out->reason || !out->set_by || (req->incident && !out->incident) ||
	    kx_buf_addf(&note, "Switch %s set: %s for %s — %s", out->id, mode_words(out->mode),
			*out->selector ? out->selector : "everything", out->reason)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = kx_store_switch_insert(tx, out, err)) ||
	    (rc = switch_effects(app, tx, who, out, "switch.set", "switch.set", kx_buf_str(&note),
				 now, err)))
		goto out;
	rc = commit_gate_change(app, &tx, err);
out:
	kx_store_rollback(tx);
	if (rc)
		kx_switch_release(out);
	kx_buf_release(&canon);
	kx_buf_release(&note);
	kx_selector_release(&sel);
	return rc;
}

/* A lifted approve switch leaves nothing to approve: its pending requests
 * end as expired (the automation re-checks and is allowed), in tx, and the
 * streams hear of each. */
static int expire_approvals(struct kx_tx *tx, const struct kx_token *who, const char *sw,
			    kx_ms now, struct kx_err *err)
{
	struct kx_approval_filter f = {true, now, 10000};
	struct kx_approvals l = {0};
	int rc = kx_store_approval_list(tx, &f, &l, err);
	for (size_t i = 0; !rc && i < l.n; i++) {
		struct kx_approval *a = &l.v[i];
		if (!a->switch_id || strcmp(a->switch_id, sw) != 0)
			continue;
		a->status = KX_APPROVAL_EXPIRED;
		a->decided_at = now;
		free(a->decided_by);
		free(a->note);
		a->decided_by = strdup(who->name ? who->name : "klaxon");
		a->note = strdup("the switch that asked for approval was lifted");
		if (!a->decided_by || !a->note)
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		if (!rc)
			rc = kx_store_approval_update(tx, a, err);
		if (!rc)
			rc = kx_store_notify(tx, "approval", a->id, err);
	}
	kx_approvals_release(&l);
	return rc;
}

/* Clear (ramp == 0) or resume with a ramp. */
static int lift(const struct kx_app *app, const struct kx_token *who, const char *id,
		bool resume, kx_ms ramp, uint32_t floor, uint32_t peak, kx_ms window,
		const char *reason, kx_ms now, struct kx_switch *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	struct kx_selector sel;
	struct kx_buf note;
	const char *event;
	int rc;

	kx_switch_init(out);
	kx_selector_init(&sel);
	kx_buf_init(&note, 0);
	if ((rc = check_reason("reason", reason, false, err)))
		goto out;
	if (ramp < 0 || ramp > KX_GATE_WINDOW_MAX) {
		rc = kx_err_set(err, KX_EINVAL, "'ramp' must be 0s to 366d");
		goto out;
	}
	if (ramp) {
		if (!window)
			window = app->cfg->gate.ramp_window;
		if (!peak)
			peak = app->cfg->gate.ramp_peak;
		if (floor == KX_RAMP_DEFAULT)
			floor = app->cfg->gate.ramp_floor <= peak ? app->cfg->gate.ramp_floor : peak;
		if (window <= 0 || window > KX_GATE_WINDOW_MAX) {
			rc = kx_err_set(err, KX_EINVAL, "'window' must be above zero, at most 366d");
			goto out;
		}
		if (peak < 1 || peak > KX_GATE_LIMIT_MAX || floor > peak) {
			rc = kx_err_set(err, KX_EINVAL,
					"the ramp must go from 'floor' up to 'peak' (1 to %d), not %u to %u",
					KX_GATE_LIMIT_MAX, floor, peak);
			goto out;
		}
	}
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = switch_visible(tx, who, id, out, err)))
		goto out;
	if ((rc = kx_selector_parse(&sel, out->selector, err)))
		goto out;
	if (!selector_within(&sel, &who->scope)) {
		rc = scope_error(who, "switch", err);
		goto out;
	}
	if (!kx_switch_active(out, now)) {
		rc = kx_err_set(err, KX_ECONFLICT, "switch '%s' is no longer in force", out->id);
		goto out;
	}
	if (ramp && out->ramp.start != KX_TIME_UNSET) {
		rc = kx_err_set(err, KX_ECONFLICT, "switch '%s' is already resuming (ramp until %s)",
				out->id, "its end");
		goto out;
	}
	if (ramp) {
		char d[32];
		out->ramp.start = now;
		out->ramp.end = now + ramp;
		out->ramp.window = window;
		out->ramp.floor = floor;
		out->ramp.peak = peak;
		free(out->clear_reason);
		out->clear_reason = xstrdup(reason);
		event = "switch.resumed";
		rc = kx_buf_addf(&note, "Switch %s resuming over %s: %u rising to %u actions per %s%s%s",
				 out->id, kx_duration_format(ramp, d), floor, peak,
				 kx_duration_format(window, (char[32]){0}), reason ? " — " : "",
				 reason ? reason : "");
	} else {
		out->cleared_at = now;
		free(out->cleared_by);
		free(out->clear_reason); /* a ramp's reason, replaced by this one */
		out->cleared_by = strdup(who->name ? who->name : "klaxon");
		out->clear_reason = xstrdup(reason);
		event = resume ? "switch.resumed" : "switch.cleared";
		rc = kx_buf_addf(&note, "Switch %s lifted%s%s", out->id, reason ? " — " : "",
				 reason ? reason : "");
		if (!out->cleared_by)
			rc = KX_ENOMEM;
	}
	if (rc || (reason && !out->clear_reason)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_switch_update(tx, out, err)) ||
	    (out->mode == KX_GATE_APPROVE && (rc = expire_approvals(tx, who, out->id, now, err))) ||
	    (rc = switch_effects(app, tx, who, out, event,
				 ramp ? "switch.resume" : "switch.clear", kx_buf_str(&note), now,
				 err)))
		goto out;
	rc = commit_gate_change(app, &tx, err);
out:
	kx_store_rollback(tx);
	if (rc)
		kx_switch_release(out);
	kx_buf_release(&note);
	kx_selector_release(&sel);
	return rc;
}

int kx_svc_switch_clear(const struct kx_app *app, const struct kx_token *who, const char *id,
			const char *reason, kx_ms now, struct kx_switch *out, struct kx_err *err)
{
	return lift(app, who, id, false, 0, 0, 0, 0, reason, now, out, err);
}

int kx_svc_switch_resume(const struct kx_app *app, const struct kx_token *who, const char *id,
			 kx_ms ramp, uint32_t floor, uint32_t peak, kx_ms window,
			 const char *reason, kx_ms now, struct kx_switch *out, struct kx_err *err)
{
	return lift(app, who, id, true, ramp, floor, peak, window, reason, now, out, err);
}

int kx_svc_switch_get(const struct kx_app *app, const struct kx_token *who, const char *id,
		      struct kx_switch *out, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;
	kx_switch_init(out);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = switch_visible(tx, who, id, out, err);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_switch_list(const struct kx_app *app, const struct kx_token *who, bool all,
		       kx_ms now, struct kx_switches *out, struct kx_err *err)
{
	struct kx_tx *tx;
	size_t keep = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_switch_list(tx, all, now, out, err);
	kx_store_rollback(tx);
	if (rc)
		return rc;
	for (size_t i = 0; i < out->n; i++) {
		if (text_compatible(out->v[i].selector, &who->scope))
			out->v[keep++] = out->v[i];
		else
			kx_switch_release(&out->v[i]);
	}
	out->n = keep;
	return 0;
}

/* ---- caps ------------------------------------------------------------------ */

static int cap_scope_check(const struct kx_token *who, const struct kx_gate_cap *cap,
			   struct kx_err *err)
{
	return selector_within(&cap->sel, &who->scope) ? 0 : scope_error(who, "cap", err);
}

static int cap_effects(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
		       const struct kx_cap *c, const struct kx_gate_cap *parsed, const char *event,
		       const char *audit_action, kx_ms now, struct kx_err *err)
{
	struct kx_labels labels;
	json_t *j = kx_cap_json(c, false);
	int rc;
	kx_labels_init(&labels);
	if (!j)
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
	else if (!(rc = selector_labels(&parsed->sel, &labels, err)) &&
		 !(rc = kx_store_notify(tx, "gate", c->id, err)) &&
		 !(rc = kx_svc_outbox_emit(app, tx, event, &labels, j, now, NULL, err)))
		rc = kx_svc_audit_record(app, tx, who, audit_action, c->id, &labels, now, err);
	json_decref(j);
	kx_labels_release(&labels);
	return rc;
}

/* The stored cap with this id, read in tx: *found points into *caps (NULL
 * when there is none), and *parsed holds its spec when *ok (a stored spec
 * that no longer parses is found but not ok). */
static int stored_cap(struct kx_tx *tx, const char *id, struct kx_caps *caps,
		      const struct kx_cap **found, struct kx_gate_cap *parsed, bool *ok,
		      struct kx_err *err)
{
	int rc = kx_store_cap_list(tx, caps, err);
	*found = NULL;
	*ok = false;
	for (size_t i = 0; !rc && i < caps->n && !*found; i++)
		if (!strcmp(caps->v[i].id, id))
			*found = &caps->v[i];
	if (*found)
		*ok = kx_gate_cap_parse(parsed, (*found)->spec, NULL) == 0;
	return rc;
}

/* A scoped token may replace a cap only if it could have set it: another
 * tenant's cap is not its to overwrite. */
static int cap_id_free_for(struct kx_tx *tx, const struct kx_token *who, const char *id,
			   struct kx_err *err)
{
	struct kx_caps caps = {0};
	struct kx_gate_cap parsed;
	const struct kx_cap *found;
	bool ok;
	int rc;
	if (!who->scope.n)
		return 0;
	kx_gate_cap_init(&parsed);
	rc = stored_cap(tx, id, &caps, &found, &parsed, &ok, err);
	if (!rc && found && !(ok && selector_within(&parsed.sel, &who->scope)))
		rc = kx_err_set(err, KX_EFORBIDDEN,
				"cap id '%s' is taken outside this token's scope; choose another", id);
	kx_gate_cap_release(&parsed);
	kx_caps_release(&caps);
	return rc;
}

int kx_svc_cap_put(const struct kx_app *app, const struct kx_token *who, const char *id,
		   const char *spec, kx_ms now, struct kx_cap *out, bool *created,
		   struct kx_err *err)
{
	struct kx_gate_cap parsed;
	struct kx_buf canon;
	struct kx_tx *tx = NULL;
	int rc;

	kx_cap_init(out);
	kx_gate_cap_init(&parsed);
	kx_buf_init(&canon, 0);
	if ((rc = kx_cap_id_check(id, err)))
		goto out;
	if (!spec) {
		rc = kx_err_set(err, KX_EINVAL, "'spec' is required, e.g. \"action=dm: 1/10s per account\"");
		goto out;
	}
	if ((rc = kx_gate_cap_parse(&parsed, spec, err)) || (rc = cap_scope_check(who, &parsed, err)))
		goto out;
	if (kx_svc_cap_is_config(app, id)) {
		rc = kx_err_set(err, KX_ECONFLICT,
				"cap '%s' comes from the configuration file; change it there", id);
		goto out;
	}
	if (kx_gate_cap_format(&parsed, &canon)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	out->id = strdup(id);
	out->spec = strdup(kx_buf_str(&canon));
	out->set_by = strdup(who->name ? who->name : "klaxon");
	out->set_at = now;
	if (!out->id || !out->spec || !out->set_by) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = cap_id_free_for(tx, who, id, err)) ||
	    (rc = kx_store_cap_put(tx, out, created, err)) ||
	    (rc = cap_effects(app, tx, who, out, &parsed, "cap.set", "cap.set", now, err)))
		goto out;
	rc = commit_gate_change(app, &tx, err);
out:
	kx_store_rollback(tx);
	if (rc)
		kx_cap_release(out);
	kx_gate_cap_release(&parsed);
	kx_buf_release(&canon);
	return rc;
}

int kx_svc_cap_delete(const struct kx_app *app, const struct kx_token *who, const char *id,
		      kx_ms now, struct kx_err *err)
{
	struct kx_caps caps = {0};
	struct kx_gate_cap parsed;
	struct kx_tx *tx = NULL;
	const struct kx_cap *found = NULL;
	bool ok = false;
	int rc;

	kx_gate_cap_init(&parsed);
	if ((rc = kx_cap_id_check(id, err)))
		return rc;
	if (kx_svc_cap_is_config(app, id))
		return kx_err_set(err, KX_ECONFLICT,
				  "cap '%s' comes from the configuration file; remove it there", id);
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = stored_cap(tx, id, &caps, &found, &parsed, &ok, err)))
		goto out;
	if (!found || !ok || !selector_compatible(&parsed.sel, &who->scope)) {
		rc = kx_err_set(err, KX_ENOTFOUND, "cap '%s' not found", id);
		goto out;
	}
	if ((rc = cap_scope_check(who, &parsed, err)) || (rc = kx_store_cap_delete(tx, id, err)) ||
	    (rc = cap_effects(app, tx, who, found, &parsed, "cap.cleared", "cap.clear", now, err)))
		goto out;
	rc = commit_gate_change(app, &tx, err);
out:
	kx_store_rollback(tx);
	kx_caps_release(&caps);
	kx_gate_cap_release(&parsed);
	return rc;
}

int kx_svc_cap_list(const struct kx_app *app, const struct kx_token *who, struct kx_caps *out,
		    struct kx_err *err)
{
	const struct kx_gate_config *g = &app->cfg->gate;
	struct kx_caps stored = {0};
	struct kx_tx *tx;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_cap_list(tx, &stored, err);
	kx_store_rollback(tx);
	if (rc)
		return rc;
	if (!(out->v = calloc(stored.n + g->ncaps + 1, sizeof(*out->v)))) {
		kx_caps_release(&stored);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < g->ncaps; i++) {
		struct kx_cap *c = &out->v[out->n];
		struct kx_gate_cap parsed;
		struct kx_buf canon;
		bool show;
		kx_gate_cap_init(&parsed);
		kx_buf_init(&canon, 0);
		show = kx_gate_cap_parse(&parsed, g->caps[i].spec, NULL) == 0 &&
		       selector_compatible(&parsed.sel, &who->scope) &&
		       kx_gate_cap_format(&parsed, &canon) == 0;
		kx_cap_init(c);
		if (show) {
			c->id = strdup(g->caps[i].id);
			c->spec = strdup(kx_buf_str(&canon));
			c->set_by = strdup("config");
			out->n++;
		}
		kx_gate_cap_release(&parsed);
		kx_buf_release(&canon);
	}
	for (size_t i = 0; i < stored.n; i++) {
		struct kx_gate_cap parsed;
		kx_gate_cap_init(&parsed);
		if (!kx_svc_cap_is_config(app, stored.v[i].id) &&
		    kx_gate_cap_parse(&parsed, stored.v[i].spec, NULL) == 0 &&
		    selector_compatible(&parsed.sel, &who->scope)) {
			out->v[out->n++] = stored.v[i];
			kx_cap_init(&stored.v[i]);
		}
		kx_gate_cap_release(&parsed);
	}
	kx_caps_release(&stored);
	for (size_t i = 0; i < out->n; i++) {
		if (!out->v[i].id || !out->v[i].spec) {
			kx_caps_release(out);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* ---- approvals ---------------------------------------------------------------- */

static int approval_visible(struct kx_tx *tx, const struct kx_token *who, const char *id,
			    struct kx_approval *out, struct kx_err *err)
{
	int rc = kx_store_approval_get(tx, id, out, err);
	if (rc == KX_ENOTFOUND || (!rc && !kx_labels_match(&out->labels, &who->scope))) {
		if (!rc)
			kx_approval_release(out);
		return kx_err_set(err, KX_ENOTFOUND, "approval request '%.64s' not found", id);
	}
	return rc;
}

int kx_svc_approval_get(const struct kx_app *app, const struct kx_token *who, const char *id,
			kx_ms now, struct kx_approval *out, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;
	(void)now;
	kx_approval_init(out);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = approval_visible(tx, who, id, out, err);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_approval_list(const struct kx_app *app, const struct kx_token *who,
			 bool pending_only, int limit, kx_ms now, struct kx_approvals *out,
			 struct kx_err *err)
{
	/* A scoped token's limit counts its own requests: read enough to fill
	 * it after the others are filtered out. */
	struct kx_approval_filter f = {pending_only, now, who->scope.n ? 10000 : limit};
	struct kx_tx *tx;
	size_t keep = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (limit < 0 || limit > 10000)
		return kx_err_set(err, KX_EINVAL, "'limit' must be 1 to 10000");
	if (limit == 0)
		limit = 100;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_approval_list(tx, &f, out, err);
	kx_store_rollback(tx);
	if (rc)
		return rc;
	for (size_t i = 0; i < out->n; i++) {
		if (keep < (size_t)limit && kx_labels_match(&out->v[i].labels, &who->scope))
			out->v[keep++] = out->v[i];
		else
			kx_approval_release(&out->v[i]);
	}
	out->n = keep;
	return 0;
}

int kx_svc_approval_decide(const struct kx_app *app, const struct kx_token *who,
			   const char *id, bool approve, const char *note, kx_ms now,
			   struct kx_approval *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	enum kx_approval_status st;
	json_t *j = NULL;
	int rc;

	kx_approval_init(out);
	if ((rc = check_reason("note", note, false, err)))
		return rc;
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = approval_visible(tx, who, id, out, err)))
		goto out;
	st = kx_approval_effective_status(out, now);
	if (st != KX_APPROVAL_PENDING) {
		rc = kx_err_set(err, KX_ECONFLICT, "approval request '%s' is %s, not pending", out->id,
				kx_approval_status_name(st));
		goto out;
	}
	out->status = approve ? KX_APPROVAL_APPROVED : KX_APPROVAL_DENIED;
	out->decided_by = strdup(who->name ? who->name : "klaxon");
	out->decided_at = now;
	out->note = xstrdup(note);
	if (!out->decided_by || (note && !out->note)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (!(j = kx_approval_json(out, now))) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kx_store_approval_update(tx, out, err)) ||
	    (rc = kx_store_notify(tx, "approval", out->id, err)) ||
	    (rc = kx_svc_outbox_emit(app, tx, "approval.decided", &out->labels, j, now, NULL, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, approve ? "approval.approve" : "approval.deny",
				      out->id, &out->labels, now, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
	/* An approved action happens: count it against the caps, and remember
	 * its key, as if the gate had allowed it. */
	if (!rc && approve && app->gate) {
		struct kx_gate_action act = {&out->labels, out->idempotency_key, out->read_only};
		struct kx_err e = {0};
		pthread_mutex_lock(&app->gate->lock);
		if (kx_gate_record(app->gate->snap, app->gate->state, &act, now, &e))
			kx_log(KX_LOG_WARN, "gate: approved action %s not counted: %s", out->id, e.msg);
		pthread_mutex_unlock(&app->gate->lock);
	}
out:
	json_decref(j);
	kx_store_rollback(tx);
	if (rc)
		kx_approval_release(out);
	return rc;
}
