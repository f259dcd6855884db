#include "engine/checks.h"
#include "core/alert.h"
#include "core/check.h"
#include "engine/curl.h" /* libcurl, loaded at run time */
#include "lib/log.h"
#include "lib/time.h"
#include "service/alerts.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS ((kx_ms)1000)
#define LOCK_RETRY_MS ((kx_ms)5000)	/* while another daemon has the work */
#define LOCK_RECHECK_MS ((kx_ms)30000) /* while we have it */
#define WAIT_MAX_MS ((kx_ms)1000)
#define BODY_MAX ((size_t)64 * 1024)
#define CONNECT_TIMEOUT_MS ((kx_ms)10000)
#define USER_AGENT "klaxon-check/1"
#define SINGLETON "checks"

/* One configured check. Invariants: easy is in the multi handle exactly
 * while busy; body (BODY_MAX bytes, only when the check has expect_body)
 * holds the first body_len bytes of the answer being read; `found` means
 * expect_body occurs in them. Only the worker thread touches a probe. */
struct probe {
	const struct kx_check *cfg;
	struct kx_check_state st;
	char key[80]; /* "check:NAME": the alert's dedup key and the actor */
	CURL *easy;
	bool busy;
	kx_ms due;	     /* monotonic: when the next probe starts */
	kx_ms started;	     /* wall clock: when the probe in flight started */
	kx_ms first_failure; /* wall clock: the start of the current failing streak */
	char *body;
	size_t body_len;
	bool found, cut; /* cut: the transfer was stopped here, on purpose */
	enum kx_check_transition pending; /* decided, not yet taken by the store */
	struct kx_check_state fired;	  /* the state when it fired: what the trigger says */
	bool send_failing;		  /* the last try to send it failed (logged once) */
	char errbuf[CURL_ERROR_SIZE];
};

/* `stop` is guarded by `lock`; the rest is the worker's, or set before it
 * starts. multi is NULL without checks (libcurl not loaded). */
struct kx_checks {
	const struct kx_app *app;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled at stop */
	bool stop;
	bool curl_ready; /* curl_global_init done */
	CURLM *multi;
	struct probe *probes;
	size_t nprobes;
	bool held;	      /* the singleton lock is ours */
	bool told_waiting;    /* "another daemon has it" logged */
	kx_ms next_lock, next_tick; /* monotonic */
	bool lock_failing, hb_failing, expire_failing;
};

static kx_ms mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (kx_ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct kx_checks *c)
{
	bool stop;
	pthread_mutex_lock(&c->lock);
	stop = c->stop;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

/* Sleeps up to ms, less when woken: by kx_checks_stop, and with probes by
 * their sockets and libcurl's own timers. */
static void wait_ms(struct kx_checks *c, kx_ms ms)
{
	struct timespec ts;

	if (ms < 0)
		ms = 0;
	if (c->multi) {
		curl_multi_poll(c->multi, NULL, 0, (int)ms, NULL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	if (!c->stop)
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	pthread_mutex_unlock(&c->lock);
}

/* ---- sending transitions ---- */

/* A trigger's event: summary, details and starts_at, from the state when
 * the check fired (a retried send says the same). */
static int fill_trigger(const struct probe *p, struct kx_alert_event *ev)
{
	const struct kx_check *k = p->cfg;
	const struct kx_check_state *st = &p->fired;
	char summary[KX_CHECK_REASON_MAX + 160];
	json_t *d;

	snprintf(summary, sizeof(summary), "Health check %s is failing: %s", k->name, st->reason);
	d = json_pack("{s:s, s:s, s:o, s:I}", "url", k->url, "reason", st->reason, "status",
		      st->status ? json_integer(st->status) : json_null(), "failures",
		      (json_int_t)st->failures);
	if (!d)
		return KX_ENOMEM;
	ev->details = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	if (!ev->details ||
	    !(ev->summary = strdup(k->summary && *k->summary ? k->summary : summary)))
		return KX_ENOMEM;
	ev->starts_at = p->first_failure;
	return 0;
}

/* Sends p's pending transition to the detection service. Kept pending when
 * the store cannot take it now (tried again at the next tick); dropped when
 * it never will (the service is unknown, the event refused). */
static void send_pending(struct kx_checks *c, struct probe *p, kx_ms now)
{
	struct kx_alert_event ev;
	struct kx_err err = {0};
	bool fire = p->pending == KX_CHECK_FIRE;
	int rc;

	kx_alert_event_init(&ev);
	ev.source = KX_SOURCE_CHECK;
	ev.action = fire ? KX_ALERT_TRIGGER : KX_ALERT_RESOLVE;
	ev.level = (enum kx_alert_level)p->cfg->level;
	if (!(ev.dedup_key = strdup(p->key)) || (fire && fill_trigger(p, &ev)))
		rc = kx_err_set(&err, KX_ENOMEM, "out of memory");
	else
		rc = kx_svc_alert_ingest(c->app, p->cfg->service, p->key, &ev, 1, now, NULL, &err);
	kx_alert_event_release(&ev);
	if (!rc) {
		if (p->send_failing)
			kx_log(KX_LOG_INFO, "checks: check '%s': %s sent", p->cfg->name,
			       fire ? "trigger" : "resolve");
		p->pending = KX_CHECK_NONE;
		p->send_failing = false;
	} else if (rc == KX_EINVAL || rc == KX_ENOTFOUND || rc == KX_EFORBIDDEN) {
		kx_log(KX_LOG_ERROR, "checks: check '%s': cannot %s its alert: %s", p->cfg->name,
		       fire ? "trigger" : "resolve", err.msg);
		p->pending = KX_CHECK_NONE;
		p->send_failing = false;
	} else {
		if (!p->send_failing)
			kx_log(KX_LOG_WARN, "checks: check '%s': cannot %s its alert: %s (trying again)",
			       p->cfg->name, fire ? "trigger" : "resolve", err.msg);
		p->send_failing = true;
	}
}

/* ---- probing ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct probe *p = arg;
	size_t len = size * n, room = BODY_MAX - p->body_len, from, need;

	if (!p->body) { /* no body test: read it up to the cap, and no further */
		p->body_len += len < room ? len : room;
		if (p->body_len < BODY_MAX)
			return len;
		p->cut = true;
		return 0;
	}
	if (room > len)
		room = len;
	memcpy(p->body + p->body_len, data, room);
	/* only where the new bytes can complete a match */
	need = strlen(p->cfg->expect_body);
	from = p->body_len >= need ? p->body_len - need + 1 : 0;
	p->body_len += room;
	if (kx_check_body_has(p->cfg, p->body + from, p->body_len - from)) {
		p->found = p->cut = true;
		return 0;
	}
	if (p->body_len < BODY_MAX)
		return len;
	p->cut = true;
	return 0;
}

static int probe_setup(struct probe *p)
{
	const struct kx_check *k = p->cfg;
	CURL *h;

	if (!(h = p->easy = curl_easy_init()))
		return KX_ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, k->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)k->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(k->timeout < CONNECT_TIMEOUT_MS ? k->timeout : CONNECT_TIMEOUT_MS));
	/* each probe opens a connection of its own: a server that stopped
	 * accepting connections must not pass on one kept alive */
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, p);
	return 0;
}

static void probe_start(struct kx_checks *c, struct probe *p, kx_ms mono)
{
	p->due += p->cfg->interval > 0 ? p->cfg->interval : 1000;
	if (p->due <= mono)
		p->due = mono + (p->cfg->interval > 0 ? p->cfg->interval : 1000);
	if (!p->easy && probe_setup(p)) {
		kx_log(KX_LOG_WARN, "checks: check '%s': cannot start a probe: out of memory",
		       p->cfg->name);
		return;
	}
	p->body_len = 0;
	p->found = p->cut = false;
	p->errbuf[0] = '\0';
	p->started = kx_now_ms();
	if (curl_multi_add_handle(c->multi, p->easy) != CURLM_OK) {
		kx_log(KX_LOG_WARN, "checks: check '%s': cannot start a probe", p->cfg->name);
		return;
	}
	p->busy = true;
}

/* What the finished transfer says, for core/check.h. */
static void outcome(const struct probe *p, CURLcode res, struct kx_probe *r)
{
	long status = 0, oserr = 0;

	memset(r, 0, sizeof(*r));
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && p->cut)) {
		r->outcome = KX_PROBE_ANSWERED;
		r->status = status;
		r->body_found = p->found;
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		r->outcome = KX_PROBE_TIMEOUT;
	} else if (res == CURLE_COULDNT_RESOLVE_HOST) {
		r->outcome = KX_PROBE_DNS;
	} else if (res == CURLE_COULDNT_CONNECT &&
		   curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK &&
		   oserr == ECONNREFUSED) {
		r->outcome = KX_PROBE_REFUSED;
	} else {
		r->outcome = KX_PROBE_ERROR;
		r->error = p->errbuf[0] ? p->errbuf : curl_easy_strerror(res);
	}
}

static void probe_done(struct kx_checks *c, struct probe *p, CURLcode res)
{
	struct kx_probe r;
	enum kx_check_transition t;
	kx_ms now = kx_now_ms();
	bool was_firing = p->st.firing;

	outcome(p, res, &r);
	t = kx_check_observe(&p->st, p->cfg, &r);
	if (p->st.failures == 1)
		p->first_failure = p->started;
	if (p->st.failures)
		kx_log(KX_LOG_DEBUG, "checks: check '%s' failed: %s (%u in a row)", p->cfg->name,
		       p->st.reason, p->st.failures);
	if (t == KX_CHECK_NONE)
		return;
	if (t == KX_CHECK_FIRE)
		kx_log(KX_LOG_WARN, "checks: check '%s' is failing: %s (%u in a row)", p->cfg->name,
		       p->st.reason, p->st.failures);
	else if (was_firing)
		kx_log(KX_LOG_INFO, "checks: check '%s' is passing again", p->cfg->name);
	else /* the first passing streak after a start (core/check.h: maybe_firing) */
		kx_log(KX_LOG_DEBUG, "checks: check '%s' is passing: resolving any alert left firing",
		       p->cfg->name);
	p->pending = t; /* a newer transition replaces one not sent yet */
	if (t == KX_CHECK_FIRE)
		p->fired = p->st;
	send_pending(c, p, now);
}

static void probe_abandon(struct kx_checks *c, struct probe *p)
{
	if (p->busy)
		curl_multi_remove_handle(c->multi, p->easy);
	p->busy = false;
}

static void reap(struct kx_checks *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		CURLcode res = m->data.result;
		CURL *h = m->easy_handle;
		char *priv = NULL;
		struct probe *p;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		if (!(p = (struct probe *)priv))
			continue;
		curl_multi_remove_handle(c->multi, h); /* m is invalid from here on */
		p->busy = false;
		probe_done(c, p, res);
	}
}

/* ---- the singleton lock, the ticks ---- */

/* Every probe starts over (due now, ok, perhaps left firing before). */
static void probes_reset(struct kx_checks *c, kx_ms mono)
{
	for (size_t i = 0; i < c->nprobes; i++) {
		struct probe *p = &c->probes[i];
		probe_abandon(c, p);
		kx_check_state_init(&p->st);
		p->st.maybe_firing = true;
		p->pending = KX_CHECK_NONE;
		p->send_failing = false;
		p->due = mono;
	}
}

static void take_lock(struct kx_checks *c, kx_ms mono)
{
	struct kx_err err = {0};
	bool got = false;

	if (kx_store_singleton_try(c->app->store, SINGLETON, &got, &err)) {
		/* no database, no work either way: keep what we had */
		if (!c->lock_failing)
			kx_log(KX_LOG_WARN, "checks: cannot take the '%s' lock: %s", SINGLETON, err.msg);
		c->lock_failing = true;
		c->next_lock = mono + LOCK_RETRY_MS;
		return;
	}
	c->lock_failing = false;
	if (got && !c->held) {
		kx_log(KX_LOG_INFO, "checks: running %zu health check%s and the heartbeat ticks",
		       c->nprobes, c->nprobes == 1 ? "" : "s");
		probes_reset(c, mono);
		c->next_tick = mono;
		c->told_waiting = false;
	} else if (!got && c->held) {
		kx_log(KX_LOG_WARN, "checks: the '%s' lock went to another daemon: stopping here",
		       SINGLETON);
		probes_reset(c, mono);
	} else if (!got && !c->told_waiting) {
		kx_log(KX_LOG_INFO, "checks: another daemon runs the health checks and ticks");
		c->told_waiting = true;
	}
	c->held = got;
	c->next_lock = mono + (got ? LOCK_RECHECK_MS : LOCK_RETRY_MS);
}

/* Logs a tick's failure once per streak, and its recovery. */
static void tick_result(int rc, const struct kx_err *err, const char *what, bool *failing)
{
	if (rc) {
		if (!*failing)
			kx_log(KX_LOG_WARN, "checks: %s failed: %s", what, err->msg);
		*failing = true;
	} else if (*failing) {
		kx_log(KX_LOG_INFO, "checks: %s works again", what);
		*failing = false;
	}
}

static void tick(struct kx_checks *c)
{
	struct kx_err err = {0};
	kx_ms now = kx_now_ms();
	int rc;

	rc = kx_svc_heartbeat_tick(c->app, now, &err);
	tick_result(rc, &err, "heartbeat tick", &c->hb_failing);
	kx_err_clear(&err);
	rc = kx_svc_alert_expire_tick(c->app, now, &err);
	tick_result(rc, &err, "alert expiry tick", &c->expire_failing);
	for (size_t i = 0; i < c->nprobes; i++)
		if (c->probes[i].pending != KX_CHECK_NONE)
			send_pending(c, &c->probes[i], now);
}

/* ---- the worker ---- */

/* Runs what is due; returns how long it may sleep. */
static kx_ms step(struct kx_checks *c)
{
	kx_ms mono = mono_ms(), next;
	int running;

	if (mono >= c->next_lock)
		take_lock(c, mono);
	if (c->held && mono >= c->next_tick) {
		tick(c);
		c->next_tick += TICK_MS;
		mono = mono_ms();
		if (c->next_tick <= mono)
			c->next_tick = mono + TICK_MS;
	}
	if (c->held)
		for (size_t i = 0; i < c->nprobes; i++)
			if (!c->probes[i].busy && c->probes[i].due <= mono)
				probe_start(c, &c->probes[i], mono);
	if (c->multi) {
		curl_multi_perform(c->multi, &running);
		reap(c);
	}

	next = c->next_lock;
	if (c->held) {
		if (c->next_tick < next)
			next = c->next_tick;
		for (size_t i = 0; i < c->nprobes; i++)
			if (!c->probes[i].busy && c->probes[i].due < next)
				next = c->probes[i].due;
	}
	next -= mono_ms();
	return next < 0 ? 0 : next > WAIT_MAX_MS ? WAIT_MAX_MS : next;
}

static void *run(void *arg)
{
	struct kx_checks *c = arg;

	c->next_lock = c->next_tick = mono_ms();
	while (!stopping(c))
		wait_ms(c, step(c));
	for (size_t i = 0; i < c->nprobes; i++)
		probe_abandon(c, &c->probes[i]);
	return NULL;
}

static void checks_free(struct kx_checks *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nprobes; i++) {
		if (c->probes[i].easy)
			curl_easy_cleanup(c->probes[i].easy);
		free(c->probes[i].body);
	}
	free(c->probes);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->curl_ready)
		curl_global_cleanup();
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int probes_init(struct kx_checks *c, const struct kx_config *cfg, struct kx_err *err)
{
	int rc;

	if ((rc = kx_curl_load(err)))
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return kx_err_set(err, KX_EIO, "cannot initialise libcurl");
	c->curl_ready = true;
	if (!(c->multi = curl_multi_init()) ||
	    !(c->probes = calloc(cfg->nchecks, sizeof(*c->probes))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	c->nprobes = cfg->nchecks;
	for (size_t i = 0; i < cfg->nchecks; i++) {
		struct probe *p = &c->probes[i];
		p->cfg = &cfg->checks[i];
		snprintf(p->key, sizeof(p->key), "check:%s", p->cfg->name);
		kx_check_state_init(&p->st);
		if (p->cfg->expect_body && *p->cfg->expect_body && !(p->body = malloc(BODY_MAX)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	return 0;
}

int kx_checks_start(const struct kx_app *app, struct kx_checks **out, struct kx_err *err)
{
	struct kx_checks *c;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->app = app;
	if (app->cfg->nchecks > 0 && (rc = probes_init(c, app->cfg, err)))
		goto fail;
	if (pthread_create(&c->thread, NULL, run, c) != 0) {
		rc = kx_err_set(err, KX_ENOMEM, "cannot start the checks thread");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	checks_free(c);
	return rc;
}

void kx_checks_stop(struct kx_checks *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (c->multi)
		curl_multi_wakeup(c->multi);
	pthread_join(c->thread, NULL);
	checks_free(c);
}
