/* check.h — a health check's state machine (engine/checks.h probes, this
 * judges).
 *
 * A check (struct kx_check, core/config.h) is an HTTP(S) GET every
 * `interval`. Each probe ends in a struct kx_probe — what came back, or
 * how it failed — which kx_check_judge turns into ok or failed with a
 * one-line reason:
 *
 *     HTTP 503 (expected 200)          status other than expect_status
 *     HTTP 302 (expected 2xx)          no expect_status: any 2xx is ok
 *     body does not contain '"ok"'     expect_body absent from the body read
 *     timeout after 5000 ms            no full answer within the check's timeout
 *     connection refused
 *     cannot resolve host
 *     SSL certificate problem: …       anything else: the transport's message
 *
 * kx_check_observe feeds the judged probes to a struct kx_check_state,
 * which counts consecutive failures and successes and reports the two
 * transitions: FIRE after fail_after consecutive failures of a check that
 * is not firing, RESOLVE after resolve_after consecutive successes of one
 * that is. Nothing in between is reported: a firing check that keeps
 * failing fires once.
 *
 * Nothing here does I/O, reads the clock or allocates.
 */
#ifndef KX_CHECK_H
#define KX_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* How a probe ended. */
enum kx_probe_outcome {
	KX_PROBE_ANSWERED = 0, /* an HTTP answer: status (and body_found) are set */
	KX_PROBE_TIMEOUT,      /* no full answer within the check's timeout */
	KX_PROBE_REFUSED,      /* the server refused the connection */
	KX_PROBE_DNS,	       /* the host name does not resolve */
	KX_PROBE_ERROR,	       /* anything else (TLS, reset, …): `error` says what */
};

/* One probe's result, as the engine saw it. */
struct kx_probe {
	enum kx_probe_outcome outcome;
	long status;	   /* ANSWERED: the HTTP status */
	bool body_found;   /* ANSWERED: expect_body was in the body read (kx_check_body_has) */
	const char *error; /* ERROR: the transport's message (one line is kept); may be NULL */
};

/* Room for a reason, NUL included; longer ones are cut (on a UTF-8
 * boundary, with "…"). */
#define KX_CHECK_REASON_MAX 256

/* True when body[0..len) passes c's body test: c has no expect_body, or
 * it occurs in it (bytes compared; the body may hold NULs). */
bool kx_check_body_has(const struct kx_check *c, const char *body, size_t len);

/* Judges probe p of check c: true when it passed. A failed probe gets its
 * reason in reason[0..n) (n > 0; "" when it passed). */
bool kx_check_judge(const struct kx_check *c, const struct kx_probe *p, char *reason, size_t n);

/* What one check's probes add up to. Starts ok and not firing
 * (kx_check_state_init). Invariants: at most one of failures and
 * successes is non-zero; reason is "" exactly when the last probe passed
 * (or there was none). */
struct kx_check_state {
	bool firing;	     /* FIRE reported, RESOLVE not since */
	/* A previous run (this daemon before a restart, or another daemon that
	 * had the checks before) may have left the check's alert firing: the
	 * first resolve_after successes then report RESOLVE although `firing`
	 * is false. The first FIRE or RESOLVE clears it. A resolve of an alert
	 * that is not firing changes nothing, so the caller may set this
	 * whenever it is unsure (engine/checks.c does at start). */
	bool maybe_firing;
	uint32_t failures;   /* consecutive failed probes, the last one included */
	uint32_t successes;  /* consecutive passed probes */
	long status;	     /* of the last probe, 0: no answer */
	char reason[KX_CHECK_REASON_MAX]; /* of the last probe */
};

void kx_check_state_init(struct kx_check_state *s);

enum kx_check_transition {
	KX_CHECK_NONE = 0, /* nothing to report */
	KX_CHECK_FIRE,	   /* the check is failing: trigger its alert */
	KX_CHECK_RESOLVE,  /* the check is passing again: resolve it */
};

/* Judges probe p of check c and adds it to s; returns the transition it
 * causes. fail_after and resolve_after of 0 count as 1. */
enum kx_check_transition kx_check_observe(struct kx_check_state *s, const struct kx_check *c,
					  const struct kx_probe *p);

#endif
