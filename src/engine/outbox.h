/* outbox.h — the background engine: delivers the outbox (service/outbox.h)
 * to the configured channels.
 *
 * One worker thread per daemon. It wakes when a transaction that queued
 * notifications commits (the change feed's "outbox" topic; "*" after the
 * feed reconnected) and every 500 ms regardless, claims the due jobs from
 * the store's queue (leased to "HOSTNAME:PID", so several daemons sharing a
 * PostgreSQL database split the work) and delivers them with libcurl, up to
 * 32 at a time.
 *
 * Webhook channels get the payload minus "channel" as a JSON POST with
 * X-Klaxon-Event, X-Klaxon-Delivery and Idempotency-Key headers (the
 * delivery id, the same on every attempt) and, with a secret,
 * X-Klaxon-Signature: sha256=HMAC. Slack and Mattermost channels get
 * {"text": …} (core/notify.h). A 2xx answer finishes the job; no answer, a
 * timeout, 408, 429 or 5xx retries it later with backoff (core/notify.h);
 * any other answer drops it.
 *
 * E-mail channels get a plain-text message (core/notify.h:
 * kx_notify_email_message) over SMTP to the channel's server (smtp:// with
 * STARTTLS when offered, and required when the channel has a username;
 * smtps://), from `from` to every `to`, with Message-ID
 * <DELIVERY@klaxon>: the same on every attempt. A recipient refused is
 * the whole message refused (nobody gets it, so a retry sends no
 * duplicates). The server taking the message finishes the job; a 5xx
 * reply (sender, recipient, credentials or message refused for good)
 * drops it; anything else — no answer, a timeout, a 4xx — retries it.
 *
 * Every failure is logged, and every attempt is recorded in the delivery
 * log (store.h: notification_attempt): delivered, retrying (and when), or
 * dropped, with the HTTP status or SMTP reply code and a one-line error.
 * An attempt cut short by kx_engine_stop is recorded as retrying.
 *
 * Delivery is at least once: a daemon that dies mid-delivery leaves its
 * lease to expire and the job is delivered again, by the same delivery id,
 * which is what receivers deduplicate on.
 *
 * The engine never blocks the API: it has its own thread, and its store
 * calls are short transactions of their own.
 */
#ifndef KX_ENGINE_OUTBOX_H
#define KX_ENGINE_OUTBOX_H

#include "lib/err.h"
#include "service/app.h"

struct kx_engine;

/* With no channels configured nothing starts (libcurl is not even
 * loaded) and *out is NULL; otherwise loads libcurl (engine/curl.h) and
 * starts the worker thread. app (and what it points to) must outlive the
 * engine. */
int kx_engine_start(const struct kx_app *app, struct kx_engine **out, struct kx_err *err);

/* Wakes the worker, abandons the deliveries in flight (their jobs are put
 * back, due at once, for the next daemon or the next start), joins the
 * thread and frees e. Returns within about a second. NULL is a no-op. */
void kx_engine_stop(struct kx_engine *e);

#endif
