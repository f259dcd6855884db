/* notify.h — the pure parts of notifications out (service/outbox.h queues
 * them, engine/outbox.h delivers them): which events a channel takes, the
 * webhook signature, how a receiver's answer is treated, the retry backoff
 * and the chat line a Slack or Mattermost channel shows.
 *
 * Nothing here does I/O or reads the clock; randomness (the backoff's
 * jitter) is a parameter.
 */
#ifndef KX_NOTIFY_H
#define KX_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/err.h"
#include "lib/buf.h"
#include "lib/time.h"

/* True when a channel whose `events` are events[0..n) takes `event`. An
 * entry is an event name ("switch.set"), a prefix pattern ending in ".*"
 * ("incident.*" takes "incident.declared", not "incident") or "*"; no
 * entries at all means every event. */
bool kx_notify_event_matches(char *const *events, size_t n, const char *event);

/* "sha256=" + 64 lowercase hex digits + NUL. */
#define KX_NOTIFY_SIG_SIZE (7 + 64 + 1)

/* The X-Klaxon-Signature value of a webhook body: "sha256=" + hex of
 * HMAC-SHA256(secret, body[0..len)). The receiver computes the same over
 * the raw body it read and compares in constant time. */
void kx_notify_sign(const char *secret, const void *body, size_t len,
		    char out[KX_NOTIFY_SIG_SIZE]);

/* What to do with a delivery attempt, from its HTTP status (0: no answer —
 * a network error or a timeout). */
enum kx_notify_verdict {
	KX_NOTIFY_DONE,	 /* 2xx: delivered */
	KX_NOTIFY_RETRY, /* no answer, 408, 429, 5xx: try again later */
	KX_NOTIFY_DROP,	 /* anything else (other 4xx, 1xx, 3xx): retrying cannot help */
};
enum kx_notify_verdict kx_notify_verdict(long status);

/* Attempts after which a delivery that keeps failing is dropped (about an
 * hour and a half of retrying with the backoff below). */
#define KX_NOTIFY_MAX_ATTEMPTS 25
#define KX_NOTIFY_BACKOFF_MIN ((kx_ms)1000)
#define KX_NOTIFY_BACKOFF_MAX ((kx_ms)300000)
/* r for kx_notify_backoff is uniform in [0, KX_NOTIFY_JITTER_STEPS). */
#define KX_NOTIFY_JITTER_STEPS 4001u

/* The wait before the next attempt after `attempts` failed ones (1 = the
 * first failed): 1 s doubling per attempt, times a jitter factor of
 * 0.8 + 0.4 * r / (KX_NOTIFY_JITTER_STEPS - 1), and never more than
 * KX_NOTIFY_BACKOFF_MAX. Jitter spreads out the retries of a burst that
 * failed together, so a receiver that comes back is not hit all at once. */
kx_ms kx_notify_backoff(int attempts, uint32_t r);

/* A label set as a JSON object {"client":"acme",…}; NULL when out of
 * memory. The caller owns the reference. */
json_t *kx_notify_labels_json(const struct kx_labels *ls);

/* Appends the chat text (Slack mrkdwn, which Mattermost also reads) of
 * `event` with its `data` (the object the event is about; may be NULL),
 * e.g. "🚨 P1 INC-20261125-001 declared: Duplicate comments (status
 * investigating)". public_url (may be NULL) adds a link to the incident.
 * Text that comes from users is escaped (&, <, >) so that it can neither
 * mention @channel nor forge links, and cut to a readable length. 0 or
 * KX_ENOMEM (b is then released). */
int kx_notify_chat_text(const char *event, json_t *data, const char *public_url,
			struct kx_buf *b);

/* ---- e-mail channels ---- */

/* Appends the plain-text line of `event`: what kx_notify_chat_text says,
 * without mrkdwn (no escaping, no *bold* or `code` marks, no link), e.g.
 * "🚨 P1 INC-20261125-001 declared: Duplicate comments (status
 * investigating)". One line: control characters in user text become
 * spaces; each piece of user text is cut to a readable length. 0 or
 * KX_ENOMEM (b is then released). */
int kx_notify_plain_text(const char *event, json_t *data, struct kx_buf *b);

/* What a notification e-mail says, and to whom. Borrowed pointers; from,
 * event and delivery are never NULL. */
struct kx_notify_email {
	const char *from;   /* the From: header: "addr" or "Name <addr>" */
	char *const *to;    /* the To: header, one entry per recipient */
	size_t nto;
	const char *event;  /* "incident.declared": X-Klaxon-Event */
	const char *delivery; /* "ntf_…": X-Klaxon-Delivery, Message-ID <DELIVERY@klaxon> */
	json_t *data;	    /* the event's object, may be NULL */
	json_t *labels;	    /* the object's labels {"client":"acme"}, may be NULL */
	const char *public_url; /* NULL: no link to the incident */
	kx_ms date;	    /* the Date: header (the event's time, the same on every attempt) */
};

/* Appends the whole message as the SMTP DATA carries it (RFC 5322): the
 * headers From, To, Subject, Date, Message-ID, X-Klaxon-Event,
 * X-Klaxon-Delivery, Auto-Submitted, MIME-Version, Content-Type
 * (text/plain; charset=utf-8) and Content-Transfer-Encoding (8bit), a
 * blank line, then the plain-text body: the event's line, its fields one
 * per line ("severity: P1"), the labels, a link to the incident when
 * public_url is set, and a signature naming the delivery.
 *
 * Lines end in CRLF and stay under 998 bytes (long ones are wrapped;
 * dot-stuffing is the SMTP client's). Header values never carry a CR or
 * LF from their source, so no text can add a header; the Subject (the
 * event's line, cut to KX_NOTIFY_SUBJECT_MAX bytes) is RFC 2047-encoded
 * when it is not plain ASCII, and folded. The message depends on m alone:
 * the same on every attempt. 0 or KX_ENOMEM (b is then released). */
#define KX_NOTIFY_SUBJECT_MAX 200
int kx_notify_email_message(const struct kx_notify_email *m, struct kx_buf *b);

/* Appends the SMTP envelope form "<addr>" of a From or To value ("addr",
 * "<addr>" or "Name <addr>"), without control characters or surrounding
 * spaces. 0 or KX_ENOMEM (b is then released). */
int kx_notify_email_envelope(const char *addr, struct kx_buf *b);

/* The delivery log: one row per notification (one event to one channel),
 * written with the outbox job in the event's transaction and updated by
 * engine/ after each attempt. */
enum kx_notification_status {
	KX_NTF_PENDING = 0, /* queued, not tried yet */
	KX_NTF_RETRYING,    /* failed at least once, will be tried again */
	KX_NTF_DELIVERED,   /* a 2xx answer (or the SMTP server took it) */
	KX_NTF_DROPPED,	    /* given up: a 4xx, or KX_NOTIFY_MAX_ATTEMPTS failures */
};
const char *kx_notification_status_name(enum kx_notification_status s);
int kx_notification_status_parse(const char *s, enum kx_notification_status *out,
				 struct kx_err *err);

struct kx_notification {
	char id[32];		/* the delivery id, "ntf_…": also the idempotency key */
	char *channel;
	char *event;		/* "incident.declared" */
	char *subject;		/* what it is about (an incident or switch id), may be NULL */
	enum kx_notification_status status;
	int attempts;
	long last_code;		/* HTTP status or SMTP reply code of the last attempt, 0: none */
	char *last_error;	/* one line, NULL when the last attempt succeeded */
	kx_ms created_at;
	kx_ms last_attempt_at;	/* KX_TIME_UNSET: never tried */
	kx_ms next_attempt_at;	/* KX_TIME_UNSET: no further attempt planned */
	kx_ms delivered_at;	/* KX_TIME_UNSET: not delivered */
};
void kx_notification_init(struct kx_notification *n);
void kx_notification_release(struct kx_notification *n);

/* One attempt of a delivery. */
struct kx_notification_attempt {
	int number;		/* 1, 2, … */
	kx_ms at;
	kx_ms took;		/* duration of the attempt */
	long code;		/* HTTP status / SMTP code, 0: no answer */
	char *error;		/* NULL on success */
};

#endif
