/* fuzz_alertmanager.c — the Alertmanager decoders: the webhook receiver
 * (payload version 4) and API v2 POST /api/v2/alerts.
 *
 * Input: one selector byte, then the body. selector % 2 picks the decoder:
 * 0 webhook, 1 API v2. (selector / 2) % 4 moves "now" (0, +1 min, -1 day,
 * +400 days from 2026-11-22T21:20:00Z, the day the seeds were captured),
 * so the time window and the API v2 firing/resolved split are reached from
 * both sides.
 *
 * Oracles: a refused body has a printable message and an empty list; an
 * accepted one holds at most KX_ALERT_BATCH_MAX events, each of which
 * passes kx_alert_event_check, has labels that are sorted, unique and
 * valid under kx_alert_label_set, a summary, details that parse as a JSON
 * object, and the action the contract gives it (API v2: a resolve exactly
 * when endsAt is at or before now; webhook: ends_at only on a resolve).
 * Decoding the same body twice gives the same events, and the fingerprint
 * does not depend on the order the labels were set in.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "http/decode_alerts.h"

#define T0 INT64_C(1795382400000) /* 2026-11-22T21:20:00Z */

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_text(const char *s, bool multiline)
{
	if (s)
		check(kx_text_check(s, strlen(s), multiline ? KX_TEXT_MULTILINE : 0) == 0);
}

static void check_labels(const struct kx_labels *ls)
{
	struct kx_labels copy;
	char a[KX_FINGERPRINT_LEN + 1], b[KX_FINGERPRINT_LEN + 1];

	check(ls->n <= KX_ALERT_LABELS_MAX);
	kx_labels_init(&copy);
	for (size_t i = 0; i < ls->n; i++) {
		check(ls->v[i].value[0] != '\0');
		if (i > 0)
			check(strcmp(ls->v[i - 1].key, ls->v[i].key) < 0);
	}
	/* set again, backwards: the same set, the same fingerprint */
	for (size_t i = ls->n; i-- > 0;)
		check(kx_alert_label_set(&copy, ls->v[i].key, ls->v[i].value, NULL) == 0);
	check(copy.n == ls->n);
	kx_alert_fingerprint(ls, a);
	kx_alert_fingerprint(&copy, b);
	check(strlen(a) == KX_FINGERPRINT_LEN && strcmp(a, b) == 0);
	kx_labels_release(&copy);
}

static void check_details(const char *d)
{
	json_t *j;
	if (!d)
		return;
	j = json_loads(d, 0, NULL);
	check(j && json_is_object(j));
	check(json_is_object(json_object_get(j, "annotations")));
	json_decref(j);
}

static void check_event(const struct kx_alert_event *e, bool webhook, kx_ms now)
{
	struct kx_err err = {0};

	check(kx_alert_event_check(e, now, NULL, &err) == 0);
	check(e->source == KX_SOURCE_ALERTMANAGER);
	check(e->action == KX_ALERT_TRIGGER || e->action == KX_ALERT_RESOLVE);
	check(e->summary && e->summary[0]);
	check_text(e->summary, true);
	check_text(e->source_host, false);
	check_text(e->group, false);
	check(!e->component && !e->class);
	{
		/* the instance label, cut to the field's limit */
		const char *inst = kx_labels_get(&e->labels, "instance");
		check(!inst == !e->source_host);
		check(!inst || strncmp(inst, e->source_host, strlen(e->source_host)) == 0);
	}
	check(e->level == kx_alert_level_guess(kx_labels_get(&e->labels, "severity"),
					       KX_LEVEL_WARNING));
	check_labels(&e->labels);
	check_details(e->details);
	check(e->details != NULL); /* annotations are always there */
	if (webhook) {
		check(e->action == KX_ALERT_RESOLVE || e->ends_at == KX_TIME_UNSET);
		check(!e->dedup_key || e->dedup_key[0]);
	} else {
		check(e->dedup_key == NULL && e->group == NULL);
		check(e->labels.n > 0);
		check((e->action == KX_ALERT_RESOLVE) ==
		      (e->ends_at != KX_TIME_UNSET && e->ends_at <= now));
		check(e->starts_at == KX_TIME_UNSET || e->ends_at == KX_TIME_UNSET ||
		      e->starts_at <= e->ends_at);
	}
}

static bool same_event(const struct kx_alert_event *a, const struct kx_alert_event *b)
{
	if (a->action != b->action || a->level != b->level || a->starts_at != b->starts_at ||
	    a->ends_at != b->ends_at || a->labels.n != b->labels.n)
		return false;
	for (size_t i = 0; i < a->labels.n; i++)
		if (strcmp(a->labels.v[i].key, b->labels.v[i].key) ||
		    strcmp(a->labels.v[i].value, b->labels.v[i].value))
			return false;
	return same_str(a->dedup_key, b->dedup_key) && same_str(a->summary, b->summary) &&
	       same_str(a->source_host, b->source_host) && same_str(a->group, b->group) &&
	       same_str(a->details, b->details);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const kx_ms shifts[] = {0, 60000, -86400000, INT64_C(400) * 86400000};
	int (*decode)(const char *, size_t, kx_ms, struct kx_alert_events *, struct kx_err *);
	struct kx_alert_events out, again;
	struct kx_err err = {0}, err2 = {0};
	const char *body;
	bool webhook;
	kx_ms now;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	webhook = data[0] % 2 == 0;
	now = T0 + shifts[(data[0] / 2) % 4];
	body = (const char *)data + 1;
	len = size - 1;
	decode = webhook ? kx_decode_am_webhook : kx_decode_am_v2;

	rc = decode(body, len, now, &out, &err);
	if (rc) {
		check(rc == KX_EINVAL || rc == KX_EJSON || rc == KX_ETOOBIG || rc == KX_ENOMEM);
		check(err.code == rc && err.msg[0] != '\0');
		check_text(err.msg, false);
		check(out.n == 0 && out.v == NULL);
	} else {
		check(out.n <= KX_ALERT_BATCH_MAX);
		for (size_t i = 0; i < out.n; i++)
			check_event(&out.v[i], webhook, now);
	}
	/* the decoders are pure: the same body gives the same answer */
	check(decode(body, len, now, &again, &err2) == rc);
	if (rc) {
		check(strcmp(err.msg, err2.msg) == 0);
	} else {
		check(again.n == out.n);
		for (size_t i = 0; i < out.n; i++)
			check(same_event(&out.v[i], &again.v[i]));
	}
	kx_alert_events_release(&again);
	kx_alert_events_release(&out);
	return 0;
}
