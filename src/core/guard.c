/* guard.c — stored switch, cap and approval records (see guard.h). */
#include "core/guard.h"

#include <stdlib.h>
#include <string.h>

void kx_switch_init(struct kx_switch *sw)
{
	memset(sw, 0, sizeof(*sw));
	sw->mode = KX_GATE_BLOCK;
	sw->set_at = KX_TIME_UNSET;
	sw->expires_at = KX_TIME_UNSET;
	sw->cleared_at = KX_TIME_UNSET;
	sw->ramp.start = KX_TIME_UNSET;
	sw->ramp.end = KX_TIME_UNSET;
}

void kx_switch_release(struct kx_switch *sw)
{
	free(sw->selector);
	free(sw->reason);
	free(sw->set_by);
	free(sw->incident);
	free(sw->cleared_by);
	free(sw->clear_reason);
	kx_switch_init(sw);
}

bool kx_switch_active(const struct kx_switch *sw, kx_ms now)
{
	if (sw->cleared_at != KX_TIME_UNSET)
		return false;
	if (sw->expires_at != KX_TIME_UNSET && sw->expires_at <= now)
		return false;
	if (sw->ramp.start != KX_TIME_UNSET && sw->ramp.end <= now)
		return false;
	return true;
}

void kx_switch_to_gate(const struct kx_switch *sw, struct kx_gate_switch *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sw->id;
	out->selector = sw->selector ? sw->selector : "";
	out->mode = sw->mode;
	out->reason = sw->reason;
	out->set_by = sw->set_by;
	out->set_at = sw->set_at;
	out->expires_at = sw->expires_at;
	out->incident = sw->incident;
	out->ramp = sw->ramp;
}

void kx_cap_init(struct kx_cap *c)
{
	memset(c, 0, sizeof(*c));
	c->set_at = KX_TIME_UNSET;
}

void kx_cap_release(struct kx_cap *c)
{
	free(c->id);
	free(c->spec);
	free(c->set_by);
	kx_cap_init(c);
}

int kx_cap_id_check(const char *id, struct kx_err *err)
{
	size_t n = id ? strlen(id) : 0;
	bool ok = n >= 1 && n <= 64;
	for (size_t i = 0; ok && i < n; i++) {
		char ch = id[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		     ch == '.' || ch == '-';
	}
	if (!ok)
		return kx_err_set(err, KX_EINVAL,
				  "cap id '%.80s' must be 1 to 64 of a-z, 0-9, '_', '.', '-'",
				  id ? id : "");
	return 0;
}

static const char *const status_names[] = {"pending", "approved", "denied", "expired"};

const char *kx_approval_status_name(enum kx_approval_status s)
{
	return (unsigned)s < 4 ? status_names[s] : "pending";
}

int kx_approval_status_parse(const char *s, enum kx_approval_status *out, struct kx_err *err)
{
	for (int i = 0; i < 4; i++) {
		if (s && strcmp(s, status_names[i]) == 0) {
			*out = (enum kx_approval_status)i;
			return 0;
		}
	}
	return kx_err_set(err, KX_EINVAL,
			  "unknown approval status '%.64s': use pending, approved, denied or expired",
			  s ? s : "");
}

void kx_approval_init(struct kx_approval *a)
{
	memset(a, 0, sizeof(*a));
	kx_labels_init(&a->labels);
	a->requested_at = KX_TIME_UNSET;
	a->expires_at = KX_TIME_UNSET;
	a->decided_at = KX_TIME_UNSET;
}

void kx_approval_release(struct kx_approval *a)
{
	free(a->switch_id);
	kx_labels_release(&a->labels);
	free(a->idempotency_key);
	free(a->requested_by);
	free(a->decided_by);
	free(a->note);
	kx_approval_init(a);
}

enum kx_approval_status kx_approval_effective_status(const struct kx_approval *a, kx_ms now)
{
	if (a->status == KX_APPROVAL_PENDING && a->expires_at != KX_TIME_UNSET &&
	    a->expires_at <= now)
		return KX_APPROVAL_EXPIRED;
	return a->status;
}
