#include "service/outbox.h"
#include "core/notify.h"
#include "core/selector.h"
#include "lib/secret.h"

#include <stdlib.h>
#include <string.h>

/* A payload larger than this is refused rather than queued: no receiver
 * wants a notification of megabytes, and the job table should stay small. */
#define PAYLOAD_MAX ((size_t)256 * 1024)

/* Does the channel take this event with these labels? */
static int channel_takes(const struct kx_channel *ch, const char *event,
			 const struct kx_labels *labels, json_t *data, bool *takes,
			 struct kx_err *err)
{
	struct kx_selector sel;
	struct kx_labels none = {0};
	int rc;

	*takes = kx_notify_event_matches(ch->events, ch->nevents, event);
	/* `severities` narrows the incident events to those severities */
	if (*takes && ch->nseverities && !strncmp(event, "incident.", 9)) {
		const char *sev = json_string_value(json_object_get(data, "severity"));
		bool found = false;
		for (size_t i = 0; sev && i < ch->nseverities && !found; i++)
			found = !strcmp(ch->severities[i], sev);
		*takes = found;
	}
	if (!*takes || !ch->selector || !*ch->selector)
		return 0;
	kx_selector_init(&sel);
	/* config.c validated (and canonicalised) it, so this only fails on
	 * memory */
	if ((rc = kx_selector_parse(&sel, ch->selector, err)) == 0)
		*takes = kx_selector_matches(&sel, labels ? labels : &none);
	kx_selector_release(&sel);
	return rc;
}

/* {"channel","delivery","event","at","labels","data"} as text. */
static int build_payload(const char *channel, const char *event,
			 const struct kx_labels *labels, json_t *data, kx_ms now, char id[32],
			 char **out, struct kx_err *err)
{
	char at[KX_TIME_STRLEN];
	json_t *o;
	size_t len;

	kx_random_id("ntf_", id, 32);
	kx_time_format(now, at);
	/* data is borrowed: the payload takes a reference of its own */
	if (!(o = json_object()) || json_object_set_new(o, "channel", json_string(channel)) ||
	    json_object_set_new(o, "delivery", json_string(id)) ||
	    json_object_set_new(o, "event", json_string(event)) ||
	    json_object_set_new(o, "at", json_string(at)) ||
	    json_object_set_new(o, "labels", kx_notify_labels_json(labels)) ||
	    json_object_set_new(o, "data", data ? json_incref(data) : json_object())) {
		json_decref(o);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!*out)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	len = strlen(*out);
	if (len > PAYLOAD_MAX) {
		free(*out);
		*out = NULL;
		return kx_err_set(err, KX_ETOOBIG, "notification '%s' is too large (%zu bytes)",
				  event, len);
	}
	return 0;
}

int kx_svc_outbox_emit(const struct kx_app *app, struct kx_tx *tx, const char *event,
		       const struct kx_labels *labels, json_t *data, kx_ms now, int *queued,
		       struct kx_err *err)
{
	int n = 0, rc = 0;

	if (queued)
		*queued = 0;
	for (size_t i = 0; i < app->cfg->nchannels; i++) {
		const struct kx_channel *ch = &app->cfg->channels[i];
		struct kx_notification ntf;
		char *payload = NULL;
		int64_t id;
		bool takes;

		if ((rc = channel_takes(ch, event, labels, data, &takes, err)))
			return rc;
		if (!takes)
			continue;
		kx_notification_init(&ntf);
		if ((rc = build_payload(ch->name, event, labels, data, now, ntf.id, &payload, err)))
			return rc;
		/* the delivery log's row, in the same transaction as the job */
		ntf.channel = (char *)ch->name;
		ntf.event = (char *)event;
		ntf.subject = (char *)json_string_value(json_object_get(data, "id"));
		ntf.status = KX_NTF_PENDING;
		ntf.created_at = now;
		ntf.next_attempt_at = now;
		rc = kx_store_job_enqueue(tx, "notify", payload, now, &id, err);
		if (!rc)
			rc = kx_store_notification_insert(tx, &ntf, err);
		free(payload);
		if (rc)
			return rc;
		n++;
	}
	/* One wake-up for the engine, delivered when tx commits. */
	if (n > 0 && (rc = kx_store_notify(tx, "outbox", "", err)))
		return rc;
	if (queued)
		*queued = n;
	return 0;
}

int kx_svc_notification_list(const struct kx_app *app, const struct kx_notification_filter *f,
			     struct kx_notifications *out, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_notification_list(tx, f, out, err);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_notification_get(const struct kx_app *app, const char *id,
			    struct kx_notification *out,
			    struct kx_notification_attempts *attempts, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;
	kx_notification_init(out);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_notification_get(tx, id, out, attempts, err);
	kx_store_rollback(tx);
	if (rc == KX_ENOTFOUND)
		kx_err_set(err, rc, "notification '%.64s' not found", id);
	return rc;
}
