/* fuzz_alerts_generic.c — the decoder of Klaxon's own POST /v1/alerts.
 *
 * Input: the body (one alert object or {"alerts":[…]}), decoded against a
 * fixed now (2026-11-22T21:20:00Z).
 *
 * Oracles: a refused body has a printable message and an empty list; an
 * accepted one holds at most KX_ALERT_BATCH_MAX events, each of which
 * passes kx_alert_event_check, comes from the generic source, is a trigger
 * with a summary or a resolve, has sorted, unique labels valid under
 * kx_alert_label_set and details that are a JSON object; and decoding the
 * same body again gives the same events.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "http/decode_alerts.h"

#define NOW INT64_C(1795382400000) /* 2026-11-22T21:20:00Z */

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_event(const struct kx_alert_event *e)
{
	struct kx_err err = {0};
	struct kx_labels copy;

	check(kx_alert_event_check(e, NOW, NULL, &err) == 0);
	check(e->source == KX_SOURCE_GENERIC);
	check(e->action == KX_ALERT_TRIGGER || e->action == KX_ALERT_RESOLVE);
	check(e->action != KX_ALERT_TRIGGER || (e->summary && e->summary[0]));
	check(e->ends_at == KX_TIME_UNSET);
	check((unsigned)e->level <= KX_LEVEL_INFO);
	kx_labels_init(&copy);
	for (size_t i = 0; i < e->labels.n; i++) {
		if (i > 0)
			check(strcmp(e->labels.v[i - 1].key, e->labels.v[i].key) < 0);
		check(kx_alert_label_set(&copy, e->labels.v[i].key, e->labels.v[i].value, NULL) ==
		      0);
	}
	check(copy.n == e->labels.n);
	kx_labels_release(&copy);
	if (e->details) {
		json_t *j = json_loads(e->details, 0, NULL);
		check(j && json_is_object(j) && json_object_size(j) > 0);
		json_decref(j);
	}
}

static bool same_event(const struct kx_alert_event *a, const struct kx_alert_event *b)
{
	if (a->action != b->action || a->level != b->level || a->starts_at != b->starts_at ||
	    a->labels.n != b->labels.n)
		return false;
	for (size_t i = 0; i < a->labels.n; i++)
		if (strcmp(a->labels.v[i].key, b->labels.v[i].key) ||
		    strcmp(a->labels.v[i].value, b->labels.v[i].value))
			return false;
	return same_str(a->dedup_key, b->dedup_key) && same_str(a->summary, b->summary) &&
	       same_str(a->source_host, b->source_host) && same_str(a->component, b->component) &&
	       same_str(a->group, b->group) && same_str(a->class, b->class) &&
	       same_str(a->details, b->details);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kx_alert_events out, again;
	struct kx_err err = {0}, err2 = {0};
	const char *body = (const char *)data;
	int rc = kx_decode_generic_alerts(body, size, NOW, &out, &err);

	if (rc) {
		check(rc == KX_EINVAL || rc == KX_EJSON || rc == KX_ETOOBIG || rc == KX_ENOMEM);
		check(err.code == rc && err.msg[0] != '\0');
		check(kx_text_check(err.msg, strlen(err.msg), 0) == 0);
		check(out.n == 0 && out.v == NULL);
	} else {
		check(out.n <= KX_ALERT_BATCH_MAX);
		for (size_t i = 0; i < out.n; i++)
			check_event(&out.v[i]);
	}
	check(kx_decode_generic_alerts(body, size, NOW, &again, &err2) == rc);
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
