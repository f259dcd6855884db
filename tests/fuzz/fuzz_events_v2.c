/* fuzz_events_v2.c — the PagerDuty Events API v2 decoders: alert events
 * (POST /v2/enqueue) and change events (POST /v2/change/enqueue).
 *
 * Input: one selector byte, then the body. selector % 2 picks the decoder:
 * 0 alert event, 1 change event. (selector / 2) % 2 moves "now" a year on
 * from 2026-11-22T21:20:00Z, so timestamps fall out of the window.
 *
 * Oracles: a refused body has between 1 and KX_EV2_ERRORS_MAX printable
 * messages, the first of which is err; the event and routing key are
 * empty; decoding again without an error list gives the same code and
 * message. An accepted body has no messages, a 32-character routing key,
 * and an event that passes kx_alert_event_check with what its action
 * needs (a trigger: summary and source; acknowledge and resolve: a dedup
 * key) and details that parse as a JSON object; a change event has a
 * summary, a time and details.
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

static void check_text(const char *s, bool multiline)
{
	if (s)
		check(kx_text_check(s, strlen(s), multiline ? KX_TEXT_MULTILINE : 0) == 0);
}

static void check_object(const char *d, bool may_be_null)
{
	json_t *j;
	if (!d) {
		check(may_be_null);
		return;
	}
	check(strlen(d) <= KX_ALERT_DETAILS_MAX);
	j = json_loads(d, 0, NULL);
	check(j && json_is_object(j));
	json_decref(j);
}

static void check_refusal(int rc, const struct kx_err *err, const struct kx_ev2_errors *errors,
			  const char *key)
{
	check(rc == KX_EINVAL || rc == KX_EJSON || rc == KX_ETOOBIG || rc == KX_ENOMEM);
	check(err->code == rc && err->msg[0] != '\0');
	check_text(err->msg, false);
	check(key == NULL);
	check(errors->n >= 1 || rc == KX_ENOMEM);
	check(errors->n <= KX_EV2_ERRORS_MAX);
	if (errors->n)
		check(strcmp(errors->v[0], err->msg) == 0);
	for (size_t i = 0; i < errors->n; i++) {
		check(errors->v[i] && errors->v[i][0]);
		check_text(errors->v[i], false);
	}
}

static void fuzz_event(const char *body, size_t len, kx_ms now)
{
	struct kx_alert_event e;
	struct kx_ev2_errors errors;
	struct kx_err err = {0}, err2 = {0};
	char *key = NULL, *key2 = NULL;
	int rc = kx_decode_events_v2(body, len, now, &e, &key, &errors, &err), rc2;

	if (rc) {
		check_refusal(rc, &err, &errors, key);
		check(!e.summary && !e.dedup_key && !e.details && !e.source_host && !e.component &&
		      !e.group && !e.class && e.labels.n == 0);
	} else {
		check(errors.n == 0);
		check(key && strlen(key) == KX_INTEGRATION_KEY_LEN);
		check(kx_alert_event_check(&e, now, NULL, &err) == 0);
		check(e.source == KX_SOURCE_EVENTS_V2);
		check(e.labels.n == 0);
		if (e.action == KX_ALERT_TRIGGER) {
			check(e.summary && e.source_host);
			check(kx_text_chars(e.summary, strlen(e.summary)) <= KX_ALERT_SUMMARY_MAX);
		} else {
			check(e.action == KX_ALERT_ACKNOWLEDGE || e.action == KX_ALERT_RESOLVE);
			check(e.dedup_key != NULL);
			check(!e.summary && !e.source_host && e.starts_at == KX_TIME_UNSET);
		}
		check(!e.dedup_key || (e.dedup_key[0] && strlen(e.dedup_key) <= KX_ALERT_DEDUP_MAX));
		check_text(e.summary, true);
		check_text(e.source_host, false);
		check_text(e.component, false);
		check_object(e.details, true);
	}
	/* without a list of messages: the same outcome */
	{
		struct kx_alert_event e2;
		rc2 = kx_decode_events_v2(body, len, now, &e2, &key2, NULL, &err2);
		check(rc2 == rc);
		check(!rc || strcmp(err.msg, err2.msg) == 0);
		check(rc || (key2 && strcmp(key, key2) == 0));
		kx_alert_event_release(&e2);
	}
	free(key2);
	free(key);
	kx_ev2_errors_release(&errors);
	kx_alert_event_release(&e);
}

static void fuzz_change(const char *body, size_t len, kx_ms now)
{
	struct kx_change_event c;
	struct kx_ev2_errors errors;
	struct kx_err err = {0}, err2 = {0};
	char *key = NULL, *key2 = NULL;
	int rc = kx_decode_change_v2(body, len, now, &c, &key, &errors, &err), rc2;

	if (rc) {
		check_refusal(rc, &err, &errors, key);
		check(!c.summary && !c.source_host && !c.details && !c.service);
	} else {
		check(errors.n == 0);
		check(key && strlen(key) == KX_INTEGRATION_KEY_LEN);
		check(c.service == NULL);
		check(c.summary && c.summary[0]);
		check(kx_text_chars(c.summary, strlen(c.summary)) <= KX_ALERT_SUMMARY_MAX);
		check_text(c.summary, true);
		check_text(c.source_host, false);
		check(!c.source_host || strlen(c.source_host) <= KX_ALERT_FIELD_MAX);
		check(c.at != KX_TIME_UNSET && c.received_at == now);
		check(c.at <= now + KX_ALERT_FUTURE_SKEW && c.at >= now - KX_ALERT_PAST_MAX);
		check_object(c.details, false);
	}
	{
		struct kx_change_event c2;
		rc2 = kx_decode_change_v2(body, len, now, &c2, &key2, NULL, &err2);
		check(rc2 == rc);
		check(!rc || strcmp(err.msg, err2.msg) == 0);
		kx_change_event_release(&c2);
	}
	free(key2);
	free(key);
	kx_ev2_errors_release(&errors);
	kx_change_event_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kx_ms now;

	if (size < 1)
		return 0;
	now = T0 + ((data[0] / 2) % 2 ? INT64_C(365) * 86400000 : 0);
	if (data[0] % 2 == 0)
		fuzz_event((const char *)data + 1, size - 1, now);
	else
		fuzz_change((const char *)data + 1, size - 1, now);
	return 0;
}
