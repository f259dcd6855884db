/* checks.h — the engine's periodic work: health checks (core/check.h) and
 * the once-a-second ticks of the detection service (service/alerts.h:
 * heartbeats that are due, alerts whose ends_at passed).
 *
 * One thread per daemon. With several daemons on one PostgreSQL database
 * only one does this work: the thread takes the store's singleton lock
 * "checks" (store.h: singleton_try) and, while another daemon holds it,
 * asks again every 5 s without probing or ticking; once held, it asks
 * every 30 s, so that a lock lost with its connection is noticed and the
 * work stops (or is taken back).
 *
 * Ticks: every second, kx_svc_heartbeat_tick and kx_svc_alert_expire_tick.
 * An error is logged once per streak of failures, and the next tick tries
 * again.
 *
 * Probes: each configured check is an HTTP(S) GET of its url every
 * `interval` (the first one at once), all of them in flight together on
 * one libcurl multi handle. Each probe has the check's timeout, a
 * connection of its own (a probe must see a server that no longer accepts
 * connections), no redirects followed, User-Agent "klaxon-check/1", and
 * reads at most 64 KiB of body for the expect_body test (the transfer is
 * cut there, or as soon as the text is found). core/check.h judges it; on a
 * transition the check's alert is triggered or resolved through
 * kx_svc_alert_ingest (source "check", dedup key and actor "check:NAME",
 * summary the check's or "Health check NAME is failing: REASON", details
 * {"url", "reason", "status", "failures"}). A firing check that keeps
 * failing sends nothing more. A transition the store could not take is
 * sent again at the next tick until it is (or until a newer one replaces
 * it). A check starts ok and not firing, but its alert may be left firing
 * by an earlier run: its first passing streak sends a resolve, which
 * changes nothing when there was none.
 *
 * Nothing here blocks the API: the thread is its own, and its store calls
 * are short transactions of their own. A store call that hangs (the
 * database unreachable) delays the probes in flight, which may then be
 * judged as timeouts; their alerts cannot be stored then anyway.
 */
#ifndef KX_ENGINE_CHECKS_H
#define KX_ENGINE_CHECKS_H

#include "lib/err.h"
#include "service/app.h"

struct kx_checks;

/* Starts the thread. libcurl is loaded (engine/curl.h) only when
 * app->cfg->nchecks > 0; the ticks run either way. app (and what it points
 * to) must outlive c. 0, or KX_EIO (libcurl missing) / KX_ENOMEM with a
 * message. */
int kx_checks_start(const struct kx_app *app, struct kx_checks **out, struct kx_err *err);

/* Wakes the thread, abandons the probes in flight, joins it and frees c.
 * Returns within about a second (a store call in progress is waited for).
 * NULL is a no-op. */
void kx_checks_stop(struct kx_checks *c);

#endif
