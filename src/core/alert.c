#include "core/alert.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- life cycle of the structs ------------------------------------------ */

void kx_alert_event_init(struct kx_alert_event *e)
{
	memset(e, 0, sizeof(*e));
	e->level = KX_LEVEL_WARNING;
	e->starts_at = KX_TIME_UNSET;
	e->ends_at = KX_TIME_UNSET;
	kx_labels_init(&e->labels);
}

void kx_alert_event_release(struct kx_alert_event *e)
{
	free(e->dedup_key);
	free(e->summary);
	free(e->source_host);
	free(e->component);
	free(e->group);
	free(e->class);
	free(e->details);
	kx_labels_release(&e->labels);
	kx_alert_event_init(e);
}

void kx_alert_events_init(struct kx_alert_events *l)
{
	memset(l, 0, sizeof(*l));
}

void kx_alert_events_release(struct kx_alert_events *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_alert_event_release(&l->v[i]);
	free(l->v);
	kx_alert_events_init(l);
}

struct kx_alert_event *kx_alert_events_push(struct kx_alert_events *l)
{
	if (l->n >= KX_ALERT_BATCH_MAX)
		return NULL;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct kx_alert_event *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	kx_alert_event_init(&l->v[l->n]);
	return &l->v[l->n++];
}

void kx_alert_init(struct kx_alert *a)
{
	memset(a, 0, sizeof(*a));
	a->starts_at = a->first_seen = a->last_seen = KX_TIME_UNSET;
	a->ends_at = a->acked_at = a->resolved_at = KX_TIME_UNSET;
	kx_labels_init(&a->labels);
}

void kx_alert_release(struct kx_alert *a)
{
	free(a->service);
	free(a->dedup_key);
	free(a->summary);
	free(a->source_host);
	free(a->component);
	free(a->group);
	free(a->class);
	free(a->details);
	free(a->severity);
	free(a->route);
	free(a->incident);
	free(a->silenced_by);
	free(a->acked_by);
	free(a->resolved_by);
	kx_labels_release(&a->labels);
	kx_alert_init(a);
}

void kx_service_init(struct kx_service *s)
{
	memset(s, 0, sizeof(*s));
	s->created_at = KX_TIME_UNSET;
	kx_labels_init(&s->labels);
}

void kx_service_release(struct kx_service *s)
{
	free(s->name);
	free(s->description);
	kx_labels_release(&s->labels);
	kx_service_init(s);
}

int kx_service_name_check(const char *name, struct kx_err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > 64)
		return kx_err_set(err, KX_EINVAL, "a service name is 1 to 64 characters");
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return kx_err_set(err, KX_EINVAL,
					  "service name '%.64s' may hold only a-z, 0-9, '_' and '-'",
					  name);
	}
	return 0;
}

void kx_integration_init(struct kx_integration *i)
{
	memset(i, 0, sizeof(*i));
	i->created_at = i->revoked_at = KX_TIME_UNSET;
}

void kx_integration_release(struct kx_integration *i)
{
	free(i->service);
	free(i->name);
	free(i->created_by);
	kx_integration_init(i);
}

void kx_integration_key_generate(char out[KX_INTEGRATION_KEY_LEN + 1])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

	for (size_t i = 0; i < KX_INTEGRATION_KEY_LEN; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[KX_INTEGRATION_KEY_LEN] = '\0';
}

const char *kx_heartbeat_state_name(enum kx_heartbeat_state s)
{
	switch (s) {
	case KX_HB_UP: return "up";
	case KX_HB_DOWN: return "down";
	default: return "waiting";
	}
}

void kx_heartbeat_init(struct kx_heartbeat *h)
{
	memset(h, 0, sizeof(*h));
	h->level = KX_LEVEL_ERROR;
	h->last_ping = h->due_at = h->created_at = KX_TIME_UNSET;
}

void kx_heartbeat_release(struct kx_heartbeat *h)
{
	free(h->name);
	free(h->service);
	free(h->created_by);
	kx_heartbeat_init(h);
}

const char *kx_silence_kind_name(enum kx_silence_kind k)
{
	return k == KX_MAINTENANCE ? "maintenance" : "silence";
}

void kx_silence_init(struct kx_silence *s)
{
	memset(s, 0, sizeof(*s));
	s->starts_at = s->ends_at = s->created_at = s->expired_at = KX_TIME_UNSET;
}

void kx_silence_release(struct kx_silence *s)
{
	free(s->matchers);
	free(s->comment);
	free(s->created_by);
	kx_silence_init(s);
}

bool kx_silence_active(const struct kx_silence *s, kx_ms now)
{
	return s->expired_at == KX_TIME_UNSET && s->starts_at <= now && now < s->ends_at;
}

void kx_change_event_init(struct kx_change_event *c)
{
	memset(c, 0, sizeof(*c));
	c->at = c->received_at = KX_TIME_UNSET;
}

void kx_change_event_release(struct kx_change_event *c)
{
	free(c->service);
	free(c->summary);
	free(c->source_host);
	free(c->details);
	kx_change_event_init(c);
}
