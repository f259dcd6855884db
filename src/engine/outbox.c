#include "engine/outbox.h"
#include "core/notify.h"
#include "engine/curl.h" /* libcurl, loaded at run time */
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/time.h"
#include "store/store.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS 500
#define LEASE_MIN_MS ((kx_ms)60000)
/* A lease outlives the slowest attempt by this much, so that no other
 * daemon claims a job while it is still being delivered. */
#define LEASE_SLACK_MS ((kx_ms)30000)
#define MAX_INFLIGHT 32
#define CONNECT_TIMEOUT_MS 10000L
#define RESP_KEEP 160 /* bytes of a failed answer quoted in the log */
#define MAX_ENGINES 8
#define USER_AGENT "klaxon/0.1"

/* One attempt in flight. Owns every pointer it holds. */
struct delivery {
	int64_t job;
	int attempts;
	enum kx_channel_kind kind;
	char *channel; /* name, for the log (never the URL: chat URLs are secrets) */
	char *id;      /* "ntf_…" */
	char *body;    /* the request body, or the e-mail message */
	size_t body_len, sent; /* e-mail: bytes of body handed to curl so far */
	struct curl_slist *headers;
	char *mail_from;	/* e-mail: the envelope sender "<addr>" */
	struct curl_slist *rcpt; /* e-mail: the envelope recipients */
	CURL *easy;
	kx_ms started;
	/* HTTP: the start of the answer's body; SMTP: the server's last reply */
	size_t resp_len;
	char resp[RESP_KEEP + 1];
	char errbuf[CURL_ERROR_SIZE];
	struct delivery *next;
};

/* Invariants: `inflight` lists ninflight deliveries, each added to multi;
 * only the worker thread touches them. `stop` and `wake` are guarded by
 * `lock` below. */
struct kx_engine {
	const struct kx_app *app;
	struct kx_store *store;
	struct kx_engine **slot; /* our entry in engines[] */
	pthread_t thread;
	CURLM *multi;
	char worker[320];
	kx_ms lease;
	bool stop, wake;
	bool claim_failing; /* the last claim failed (logged once per streak) */
	struct delivery *inflight;
	int ninflight;
};

/* The store has no unsubscribe, so a subscription must stay valid after its
 * engine is gone: it points at a slot here, which outlives every engine and
 * is emptied when its engine stops. A stale subscription on a slot reused by
 * a later engine only causes a spurious wake-up. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_engine *engines[MAX_ENGINES];

static void on_change(const char *topic, const char *payload, void *arg)
{
	struct kx_engine **slot = arg;
	(void)payload;
	if (strcmp(topic, "outbox") != 0 && strcmp(topic, "*") != 0)
		return;
	pthread_mutex_lock(&lock);
	if (*slot) {
		(*slot)->wake = true;
		curl_multi_wakeup((*slot)->multi);
	}
	pthread_mutex_unlock(&lock);
}

static void delivery_free(struct delivery *d)
{
	if (!d)
		return;
	if (d->easy)
		curl_easy_cleanup(d->easy);
	curl_slist_free_all(d->headers);
	curl_slist_free_all(d->rcpt);
	free(d->mail_from);
	free(d->channel);
	free(d->id);
	free(d->body);
	free(d);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct delivery *d = arg;
	size_t len = size * n, room = RESP_KEEP - d->resp_len;
	if (room > len)
		room = len;
	memcpy(d->resp + d->resp_len, p, room);
	d->resp_len += room;
	d->resp[d->resp_len] = '\0';
	return len; /* the rest is read and ignored; the timeout bounds it */
}

/* SMTP: libcurl hands each line the server sent to the debug callback as
 * CURLINFO_HEADER_IN. The first negative reply (4xx, 5xx) is the one a
 * failure quotes: the ones after it (QUIT's "221 Bye") say nothing. */
static int on_debug(CURL *c, curl_infotype type, char *p, size_t n, void *arg)
{
	struct delivery *d = arg;
	(void)c;
	if (type != CURLINFO_HEADER_IN || (d->resp_len && (d->resp[0] == '4' || d->resp[0] == '5')))
		return 0;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (n > RESP_KEEP)
		n = RESP_KEEP;
	memcpy(d->resp, p, n);
	d->resp_len = n;
	d->resp[n] = '\0';
	return 0;
}

/* SMTP: the message, as the DATA command's upload. */
static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct delivery *d = arg;
	size_t room = size * n, left = d->body_len - d->sent;
	if (room > left)
		room = left;
	memcpy(p, d->body + d->sent, room);
	d->sent += room;
	return room;
}

static void finish_job(struct kx_engine *e, int64_t job)
{
	struct kx_err err = {0};
	if (kx_store_job_finish(e->store, job, e->worker, &err))
		kx_log(KX_LOG_WARN, "outbox: cannot finish job %lld: %s", (long long)job, err.msg);
}

/* ---- the delivery log ---- */

/* Records one attempt of delivery `id` in the delivery log (store.h:
 * notification_attempt) in a short write transaction of its own, on the
 * worker thread, outside `lock`. A delivery the log has no row for (queued
 * before it existed) is skipped; any other failure is logged and costs
 * only the log entry: the job itself goes on. */
static void record(struct kx_engine *e, const char *id, int number,
		   enum kx_notification_status status, long code, const char *error,
		   kx_ms started, kx_ms now, kx_ms next_at)
{
	struct kx_notification n;
	struct kx_notification_attempt a = {0};
	struct kx_err err = {0};
	struct kx_tx *tx;
	char line[CURL_ERROR_SIZE + RESP_KEEP + 128];
	int rc;

	if (strlen(id) >= sizeof(n.id))
		return; /* not an id the service layer makes */
	kx_notification_init(&n);
	snprintf(n.id, sizeof(n.id), "%s", id);
	if (error) {
		size_t i;
		snprintf(line, sizeof(line), "%s", error);
		for (i = 0; line[i]; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				line[i] = ' ';
		n.last_error = line;
	}
	n.status = status;
	n.attempts = number;
	n.last_code = code;
	n.last_attempt_at = started;
	n.next_attempt_at = next_at;
	n.delivered_at = status == KX_NTF_DELIVERED ? now : KX_TIME_UNSET;
	a.number = number;
	a.at = started;
	a.took = now - started;
	a.code = code;
	a.error = n.last_error;

	if ((rc = kx_store_begin(e->store, true, &tx, &err)))
		goto fail;
	if ((rc = kx_store_notification_attempt(tx, &n, &a, &err))) {
		kx_store_rollback(tx);
		goto fail;
	}
	if (!(rc = kx_store_commit(tx, &err)))
		return;
fail:
	if (rc == KX_ENOTFOUND)
		kx_log(KX_LOG_DEBUG, "outbox: delivery %s is not in the delivery log", id);
	else
		kx_log(KX_LOG_WARN, "outbox: cannot record attempt %d of delivery %s: %s", number,
		       id, err.msg);
}

/* ---- starting a delivery ---- */

static bool valid_token(const char *s, const char *prefix, size_t min, size_t max)
{
	size_t n = strlen(s), p = strlen(prefix);
	if (n < min || n > max || strncmp(s, prefix, p) != 0)
		return false;
	for (size_t i = p; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int add_header(struct delivery *d, const char *name, const char *value)
{
	char line[512];
	struct curl_slist *l;
	snprintf(line, sizeof(line), "%s: %s", name, value);
	if (!(l = curl_slist_append(d->headers, line)))
		return KX_ENOMEM;
	d->headers = l;
	return 0;
}

/* An e-mail channel's message (core/notify.h), dated by the event's "at"
 * so that every attempt sends the same message. */
static char *make_message(const struct kx_engine *e, const struct kx_channel *ch, json_t *pl,
			  const char *event, const char *id, kx_ms now)
{
	struct kx_notify_email m = {0};
	struct kx_buf b;
	const char *at = json_string_value(json_object_get(pl, "at"));

	m.from = ch->from ? ch->from : "";
	m.to = ch->to;
	m.nto = ch->nto;
	m.event = event;
	m.delivery = id;
	m.data = json_object_get(pl, "data");
	m.labels = json_object_get(pl, "labels");
	m.public_url = e->app->cfg->public_url;
	if (!at || kx_time_parse(at, &m.date))
		m.date = now;
	kx_buf_init(&b, 1024 * 1024);
	if (kx_notify_email_message(&m, &b))
		return NULL;
	return kx_buf_take(&b, NULL);
}

/* The body the channel receives: the payload minus "channel" for a
 * webhook, {"text": …} for a chat channel, the message for e-mail. */
static char *make_body(const struct kx_engine *e, const struct kx_channel *ch, json_t *pl,
		       const char *event, const char *id, kx_ms now)
{
	json_t *o;
	char *s;

	if (ch->kind == KX_CHANNEL_EMAIL)
		return make_message(e, ch, pl, event, id, now);
	if (ch->kind == KX_CHANNEL_SLACK) {
		struct kx_buf text;
		kx_buf_init(&text, 64 * 1024);
		if (kx_notify_chat_text(event, json_object_get(pl, "data"), e->app->cfg->public_url,
					&text))
			return NULL;
		o = json_pack("{s:s}", "text", kx_buf_str(&text));
		kx_buf_release(&text);
	} else {
		if ((o = json_copy(pl)))
			json_object_del(o, "channel");
	}
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* The envelope recipients "<addr>" of ch->to. */
static int add_recipients(struct delivery *d, const struct kx_channel *ch)
{
	for (size_t i = 0; i < ch->nto; i++) {
		struct kx_buf b;
		struct curl_slist *l;
		kx_buf_init(&b, 1024);
		if (kx_notify_email_envelope(ch->to[i], &b))
			return KX_ENOMEM;
		l = curl_slist_append(d->rcpt, kx_buf_str(&b));
		kx_buf_release(&b);
		if (!l)
			return KX_ENOMEM;
		d->rcpt = l;
	}
	return 0;
}

static int setup_email(struct kx_engine *e, const struct kx_channel *ch, struct delivery *d)
{
	struct kx_buf from;
	CURL *c;

	kx_buf_init(&from, 1024);
	if (kx_notify_email_envelope(ch->from ? ch->from : "", &from) ||
	    !(d->mail_from = kx_buf_take(&from, NULL)) || add_recipients(d, ch))
		return KX_ENOMEM;
	d->body_len = strlen(d->body);
	if (!(c = d->easy = curl_easy_init()))
		return KX_ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, ch->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, d->mail_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, d->rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c, CURLOPT_READDATA, d);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->body_len);
	/* smtp://: STARTTLS when the server offers it, and required before a
	 * password is sent; smtps:// is TLS from the start */
	curl_easy_setopt(c, CURLOPT_USE_SSL, ch->username ? (long)CURLUSESSL_ALL
							  : (long)CURLUSESSL_TRY);
	if (ch->username) {
		curl_easy_setopt(c, CURLOPT_USERNAME, ch->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, ch->password ? ch->password : "");
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ch->timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 ch->timeout < CONNECT_TIMEOUT_MS ? (long)ch->timeout : CONNECT_TIMEOUT_MS);
	/* the server's replies, for the log (nothing is printed) */
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, d);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(c, CURLOPT_PRIVATE, d);
	return curl_multi_add_handle(e->multi, c) == CURLM_OK ? 0 : KX_ENOMEM;
}

static int setup_http(struct kx_engine *e, const struct kx_channel *ch, struct delivery *d,
		      const char *event)
{
	struct curl_slist *l;
	CURL *c;

	if (add_header(d, "Content-Type", "application/json") ||
	    add_header(d, "User-Agent", USER_AGENT) || add_header(d, "X-Klaxon-Event", event) ||
	    add_header(d, "X-Klaxon-Delivery", d->id) || add_header(d, "Idempotency-Key", d->id))
		return KX_ENOMEM;
	/* no "Expect: 100-continue" round trip before the body */
	if (!(l = curl_slist_append(d->headers, "Expect:")))
		return KX_ENOMEM;
	d->headers = l;
	if (ch->secret) {
		char sig[KX_NOTIFY_SIG_SIZE];
		kx_notify_sign(ch->secret, d->body, strlen(d->body), sig);
		if (add_header(d, "X-Klaxon-Signature", sig))
			return KX_ENOMEM;
	}
	if (!(c = d->easy = curl_easy_init()))
		return KX_ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, ch->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(d->body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ch->timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 ch->timeout < CONNECT_TIMEOUT_MS ? (long)ch->timeout : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(c, CURLOPT_PRIVATE, d);
	return curl_multi_add_handle(e->multi, c) == CURLM_OK ? 0 : KX_ENOMEM;
}

static int setup_request(struct kx_engine *e, const struct kx_channel *ch, struct delivery *d,
			 const char *event)
{
	if (ch->kind == KX_CHANNEL_EMAIL)
		return setup_email(e, ch, d);
	return setup_http(e, ch, d, event);
}

/* A "notify" job: delivers it, or drops it when it cannot be delivered. */
static void start_notify(struct kx_engine *e, const struct kx_job *job, kx_ms now)
{
	const struct kx_channel *ch;
	struct delivery *d = NULL;
	json_error_t jerr;
	json_t *pl = json_loads(job->payload, 0, &jerr);
	const char *name, *id, *event;
	char why[160];

	name = json_string_value(json_object_get(pl, "channel"));
	id = json_string_value(json_object_get(pl, "delivery"));
	event = json_string_value(json_object_get(pl, "event"));
	if (!name || !id || !event || !valid_token(id, "ntf_", 5, 64) ||
	    !valid_token(event, "", 1, 64)) {
		kx_log(KX_LOG_ERROR, "outbox: dropping job %lld: not a notification payload",
		       (long long)job->id);
		goto drop;
	}
	if (!(ch = kx_config_channel(e->app->cfg, name))) {
		kx_log(KX_LOG_WARN,
		       "outbox: dropping delivery %s (%s): channel '%s' is no longer configured", id,
		       event, name);
		snprintf(why, sizeof(why), "channel '%.64s' is no longer configured", name);
		goto drop_logged;
	}
	if (job->attempts > KX_NOTIFY_MAX_ATTEMPTS) {
		/* leases that kept expiring: daemons died while delivering it */
		kx_log(KX_LOG_ERROR, "outbox: dropping delivery %s (%s) to channel '%s' after %d attempts",
		       id, event, name, job->attempts - 1);
		snprintf(why, sizeof(why), "given up after %d attempts", job->attempts - 1);
		goto drop_logged;
	}
	if (!(d = calloc(1, sizeof(*d))) || !(d->channel = strdup(name)) ||
	    !(d->id = strdup(id)) || !(d->body = make_body(e, ch, pl, event, id, now)))
		goto nomem;
	d->kind = ch->kind;
	d->job = job->id;
	d->attempts = job->attempts;
	d->started = now;
	if (setup_request(e, ch, d, event))
		goto nomem;
	d->next = e->inflight;
	e->inflight = d;
	e->ninflight++;
	json_decref(pl);
	return;
nomem:
	/* put back for a later try; memory may be back by then */
	kx_log(KX_LOG_WARN, "outbox: cannot start delivery %s: out of memory", id);
	if (d && d->easy)
		curl_multi_remove_handle(e->multi, d->easy);
	delivery_free(d);
	json_decref(pl);
	{
		struct kx_err err = {0};
		if (kx_store_job_retry(e->store, job->id, e->worker, now + POLL_MS, &err))
			kx_log(KX_LOG_WARN, "outbox: cannot put job %lld back: %s",
			       (long long)job->id, err.msg);
	}
	return;
drop_logged:
	/* no attempt made: the claim that gave up is what the log shows */
	record(e, id, job->attempts, KX_NTF_DROPPED, 0, why, now, now, KX_TIME_UNSET);
drop:
	json_decref(pl);
	finish_job(e, job->id);
}

/* Job kinds this engine runs; a kind nobody runs is dropped with a log
 * line (left queued it would be claimed again forever). */
static const struct job_kind {
	const char *kind;
	void (*start)(struct kx_engine *e, const struct kx_job *job, kx_ms now);
} job_kinds[] = {
	{"notify", start_notify},
};

static void start_job(struct kx_engine *e, const struct kx_job *job, kx_ms now)
{
	for (size_t i = 0; i < sizeof(job_kinds) / sizeof(job_kinds[0]); i++)
		if (!strcmp(job->kind, job_kinds[i].kind)) {
			job_kinds[i].start(e, job, now);
			return;
		}
	kx_log(KX_LOG_WARN, "outbox: dropping job %lld of unknown kind '%.64s'", (long long)job->id,
	       job->kind);
	finish_job(e, job->id);
}

/* Claims what is due and starts it; true when the claim was full (there
 * may be more due). */
static bool claim(struct kx_engine *e, kx_ms now)
{
	struct kx_jobs jobs = {0};
	struct kx_err err = {0};
	int max = MAX_INFLIGHT - e->ninflight;
	bool full;

	if (kx_store_job_claim(e->store, e->worker, now, e->lease, max, &jobs, &err)) {
		if (!e->claim_failing)
			kx_log(KX_LOG_WARN, "outbox: cannot claim jobs: %s", err.msg);
		e->claim_failing = true;
		return false;
	}
	if (e->claim_failing)
		kx_log(KX_LOG_INFO, "outbox: claiming jobs again");
	e->claim_failing = false;
	for (size_t i = 0; i < jobs.n; i++)
		start_job(e, &jobs.v[i], now);
	full = (int)jobs.n == max;
	kx_jobs_release(&jobs);
	return full;
}

/* ---- finishing a delivery ---- */

/* One line on a failed attempt, for the log and the delivery log. */
static void describe(const struct delivery *d, CURLcode res, long code, char *out, size_t n)
{
	char quoted[RESP_KEEP + 1];
	size_t i;

	for (i = 0; i < d->resp_len; i++) {
		unsigned char c = (unsigned char)d->resp[i];
		quoted[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	quoted[i] = '\0';
	if (res != CURLE_OK) {
		const char *msg = d->errbuf[0] ? d->errbuf : curl_easy_strerror(res);
		/* SMTP: the server's reply says why ("550 5.1.1 … unknown") */
		if (d->kind == KX_CHANNEL_EMAIL && i && code >= 400)
			snprintf(out, n, "%s: server said '%s'", msg, quoted);
		else
			snprintf(out, n, "%s", msg);
		return;
	}
	if (d->kind == KX_CHANNEL_EMAIL)
		snprintf(out, n, "SMTP %ld", code);
	else if (i)
		snprintf(out, n, "HTTP %ld '%s%s'", code, quoted, i == RESP_KEEP ? "…" : "");
	else
		snprintf(out, n, "HTTP %ld", code);
}

/* What to do after an attempt; *code is the HTTP status or the last SMTP
 * reply code (0: none). */
static enum kx_notify_verdict verdict(const struct delivery *d, CURLcode res, long *code)
{
	*code = 0;
	if (res == CURLE_OK || d->kind == KX_CHANNEL_EMAIL)
		curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, code);
	/* a URL curl refuses will not get better by retrying */
	if (res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT)
		return KX_NOTIFY_DROP;
	if (d->kind != KX_CHANNEL_EMAIL)
		return res == CURLE_OK ? kx_notify_verdict(*code) : KX_NOTIFY_RETRY;
	if (res == CURLE_OK)
		return KX_NOTIFY_DONE;
	/* A 5xx reply is SMTP's permanent rejection (RFC 5321 4.2.1) — of the
	 * sender or a recipient (CURLE_SEND_ERROR), of the credentials
	 * (CURLE_LOGIN_DENIED), of the message after DATA or of the whole
	 * session at greeting (CURLE_WEIRD_SERVER_REPLY); a 4xx or no reply
	 * at all is worth another try. */
	return *code >= 500 && *code <= 599 ? KX_NOTIFY_DROP : KX_NOTIFY_RETRY;
}

static void done(struct kx_engine *e, struct delivery *d, CURLcode res, kx_ms now)
{
	struct kx_err err = {0};
	char what[CURL_ERROR_SIZE + RESP_KEEP + 64];
	long code;
	enum kx_notify_verdict v = verdict(d, res, &code);

	describe(d, res, code, what, sizeof(what));
	if (v == KX_NOTIFY_DONE) {
		kx_log(KX_LOG_DEBUG, "outbox: delivered %s to channel '%s' in %lld ms (attempt %d)",
		       d->id, d->channel, (long long)(now - d->started), d->attempts);
		record(e, d->id, d->attempts, KX_NTF_DELIVERED, code, NULL, d->started, now,
		       KX_TIME_UNSET);
		finish_job(e, d->job);
	} else if (v == KX_NOTIFY_DROP) {
		kx_log(KX_LOG_WARN,
		       "outbox: delivery %s to channel '%s' failed: %s (attempt %d; dropped, not retried)",
		       d->id, d->channel, what, d->attempts);
		record(e, d->id, d->attempts, KX_NTF_DROPPED, code, what, d->started, now,
		       KX_TIME_UNSET);
		finish_job(e, d->job);
	} else if (d->attempts >= KX_NOTIFY_MAX_ATTEMPTS) {
		kx_log(KX_LOG_ERROR,
		       "outbox: delivery %s to channel '%s' failed: %s (attempt %d; giving up)", d->id,
		       d->channel, what, d->attempts);
		record(e, d->id, d->attempts, KX_NTF_DROPPED, code, what, d->started, now,
		       KX_TIME_UNSET);
		finish_job(e, d->job);
	} else {
		kx_ms wait = kx_notify_backoff(d->attempts, randombytes_uniform(KX_NOTIFY_JITTER_STEPS));
		kx_log(KX_LOG_WARN,
		       "outbox: delivery %s to channel '%s' failed: %s (attempt %d; retrying in %lld ms)",
		       d->id, d->channel, what, d->attempts, (long long)wait);
		record(e, d->id, d->attempts, KX_NTF_RETRYING, code, what, d->started, now,
		       now + wait);
		if (kx_store_job_retry(e->store, d->job, e->worker, now + wait, &err))
			kx_log(KX_LOG_WARN, "outbox: cannot reschedule job %lld: %s", (long long)d->job,
			       err.msg);
	}
}

static void unlink_delivery(struct kx_engine *e, struct delivery *d)
{
	for (struct delivery **p = &e->inflight; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			e->ninflight--;
			break;
		}
	curl_multi_remove_handle(e->multi, d->easy);
}

static void reap(struct kx_engine *e)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		struct delivery *d;
		CURLcode res = m->data.result;
		char *priv = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		if (!(d = (struct delivery *)priv))
			continue;
		done(e, d, res, kx_now_ms());
		unlink_delivery(e, d); /* m is invalid from here on */
		delivery_free(d);
	}
}

/* At stop: what is in flight goes back to the queue, due at once, so the
 * next daemon (or the next start of this one) sends it without waiting for
 * the lease to run out. The receiver may have seen it: it dedupes. */
static void abandon(struct kx_engine *e)
{
	kx_ms now = kx_now_ms();
	while (e->inflight) {
		struct delivery *d = e->inflight;
		struct kx_err err = {0};
		unlink_delivery(e, d);
		record(e, d->id, d->attempts, KX_NTF_RETRYING, 0, "interrupted: the daemon stopped",
		       d->started, now, now);
		if (kx_store_job_retry(e->store, d->job, e->worker, now, &err))
			kx_log(KX_LOG_WARN, "outbox: cannot put job %lld back: %s", (long long)d->job,
			       err.msg);
		delivery_free(d);
	}
}

/* ---- the worker ---- */

static void *run(void *arg)
{
	struct kx_engine *e = arg;
	kx_ms last_claim = KX_TIME_UNSET;
	bool more = false;

	for (;;) {
		bool wake, stop;
		kx_ms now, left;
		int running;

		pthread_mutex_lock(&lock);
		stop = e->stop;
		wake = e->wake;
		e->wake = false;
		pthread_mutex_unlock(&lock);
		if (stop)
			break;
		now = kx_now_ms();
		if (e->ninflight < MAX_INFLIGHT &&
		    (wake || more || last_claim == KX_TIME_UNSET || now - last_claim >= POLL_MS)) {
			more = claim(e, now);
			last_claim = now;
		}
		curl_multi_perform(e->multi, &running);
		reap(e);
		left = POLL_MS - (kx_now_ms() - last_claim);
		if (more && e->ninflight < MAX_INFLIGHT)
			left = 0;
		/* returns early on socket activity, curl's own timers and
		 * curl_multi_wakeup (a commit, or stop) */
		curl_multi_poll(e->multi, NULL, 0, left < 0 ? 0 : left > POLL_MS ? POLL_MS : (int)left,
				NULL);
	}
	abandon(e);
	return NULL;
}

int kx_engine_start(const struct kx_app *app, struct kx_engine **out, struct kx_err *err)
{
	struct kx_engine *e;
	char host[256] = "localhost";
	size_t slot;
	int rc;

	*out = NULL;
	/* Only notify jobs need delivering, and a config without channels queues
	 * none: no thread, and libcurl stays unloaded. */
	if (app->cfg->nchannels == 0)
		return 0;
	if ((rc = kx_curl_load(err)))
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return kx_err_set(err, KX_EIO, "cannot initialise libcurl");
	if (!(e = calloc(1, sizeof(*e))) || !(e->multi = curl_multi_init())) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto fail;
	}
	e->app = app;
	e->store = app->store;
	e->wake = true; /* claim at once: jobs may be waiting from before */
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(e->worker, sizeof(e->worker), "%s:%d", host, (int)getpid());
	e->lease = LEASE_MIN_MS;
	for (size_t i = 0; i < app->cfg->nchannels; i++)
		if (app->cfg->channels[i].timeout + LEASE_SLACK_MS > e->lease)
			e->lease = app->cfg->channels[i].timeout + LEASE_SLACK_MS;

	pthread_mutex_lock(&lock);
	for (slot = 0; slot < MAX_ENGINES && engines[slot]; slot++)
		;
	if (slot < MAX_ENGINES) {
		engines[slot] = e;
		e->slot = &engines[slot];
	}
	pthread_mutex_unlock(&lock);
	if (!e->slot) {
		rc = kx_err_set(err, KX_ENOMEM, "too many outbox engines");
		goto fail;
	}
	if ((rc = kx_store_subscribe(app->store, on_change, e->slot, err)))
		goto fail;
	if (pthread_create(&e->thread, NULL, run, e) != 0) {
		rc = kx_err_set(err, KX_ENOMEM, "cannot start the outbox thread");
		goto fail;
	}
	kx_log(KX_LOG_INFO, "outbox: delivering to %zu channel%s as worker '%s'",
	       app->cfg->nchannels, app->cfg->nchannels == 1 ? "" : "s", e->worker);
	*out = e;
	return 0;
fail:
	if (e) {
		pthread_mutex_lock(&lock);
		if (e->slot)
			*e->slot = NULL;
		pthread_mutex_unlock(&lock);
		if (e->multi)
			curl_multi_cleanup(e->multi);
		free(e);
	}
	curl_global_cleanup();
	return rc;
}

void kx_engine_stop(struct kx_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&lock);
	*e->slot = NULL; /* no more wake-ups from the feed */
	e->stop = true;
	curl_multi_wakeup(e->multi);
	pthread_mutex_unlock(&lock);
	pthread_join(e->thread, NULL);
	curl_multi_cleanup(e->multi);
	free(e);
	curl_global_cleanup();
}
