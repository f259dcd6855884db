#include "core/audit.h"
#include "core/incident.h"
#include "core/text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* 2000-01-01T00:00:00Z: anything earlier is a typo, not an action. */
#define EARLIEST_MS 946684800000LL

/* The stored format's tag, NUL included (see kx_audit_canonical). */
static const char TAG[] = "klaxon.audit.v1";

const char *const kx_audit_field_names[KX_AUDIT_NFIELDS] = {
	"actor",   "client",	   "account",  "platform",     "lane",	       "action",
	"target",  "content_hash", "outcome",  "trace_id",     "artifact_url", "idempotency_key",
};

char **kx_audit_field(struct kx_audit_event *e, size_t i)
{
	char **f[KX_AUDIT_NFIELDS] = {
		&e->actor,  &e->client,	      &e->account, &e->platform, &e->lane,
		&e->action, &e->target,	      &e->content_hash, &e->outcome, &e->trace_id,
		&e->artifact_url, &e->idempotency_key,
	};
	return i < KX_AUDIT_NFIELDS ? f[i] : NULL;
}

const char *kx_audit_field_value(const struct kx_audit_event *e, size_t i)
{
	char **f = kx_audit_field((struct kx_audit_event *)e, i);
	return f ? *f : NULL;
}

void kx_audit_event_init(struct kx_audit_event *e)
{
	memset(e, 0, sizeof(*e));
	e->at = KX_TIME_UNSET;
	kx_labels_init(&e->labels);
}

void kx_audit_event_release(struct kx_audit_event *e)
{
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++)
		free(*kx_audit_field(e, i));
	kx_labels_release(&e->labels);
	kx_audit_event_init(e);
}

int kx_audit_event_copy(struct kx_audit_event *dst, const struct kx_audit_event *src)
{
	kx_audit_event_init(dst);
	dst->seq = src->seq;
	dst->at = src->at;
	memcpy(dst->prev_hash, src->prev_hash, KX_HASH_LEN);
	memcpy(dst->hash, src->hash, KX_HASH_LEN);
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		const char *v = kx_audit_field_value(src, i);
		if (v && !(*kx_audit_field(dst, i) = strdup(v)))
			goto nomem;
	}
	if (kx_labels_copy(&dst->labels, &src->labels))
		goto nomem;
	return 0;
nomem:
	kx_audit_event_release(dst);
	return KX_ENOMEM;
}

void kx_audit_events_release(struct kx_audit_events *l)
{
	for (size_t i = 0; i < l->n; i++)
		kx_audit_event_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* ---- scope ---- */

/* The fields a label scope may name; index into kx_audit_field_names. */
static int scope_field(const char *key)
{
	static const int idx[] = {1, 2, 3, 4, 5}; /* client account platform lane action */
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		if (strcmp(kx_audit_field_names[idx[i]], key) == 0)
			return idx[i];
	return -1;
}

bool kx_audit_scope_key(const char *key)
{
	return scope_field(key) >= 0;
}

const char *kx_audit_scope_value(const struct kx_audit_event *e, const char *key)
{
	int f = scope_field(key);
	return f >= 0 ? kx_audit_field_value(e, (size_t)f) : kx_labels_get(&e->labels, key);
}

bool kx_audit_match_scope(const struct kx_audit_event *e, const struct kx_labels *scope)
{
	for (size_t i = 0; i < scope->n; i++) {
		const char *v = kx_audit_scope_value(e, scope->v[i].key);
		if (!v || strcmp(v, scope->v[i].value) != 0)
			return false;
	}
	return true;
}

int kx_audit_apply_scope(struct kx_audit_event *e, const struct kx_labels *scope,
			 struct kx_err *err)
{
	int rc;
	for (size_t i = 0; i < scope->n; i++) {
		const char *v = kx_audit_scope_value(e, scope->v[i].key);
		if (v && strcmp(v, scope->v[i].value) != 0)
			return kx_err_set(err, KX_EFORBIDDEN, "'%s' is '%.64s', outside this token's scope",
					  scope->v[i].key, v);
	}
	for (size_t i = 0; i < scope->n; i++) {
		int f = scope_field(scope->v[i].key);
		char **slot;
		if (f < 0) {
			if ((rc = kx_labels_set(&e->labels, scope->v[i].key, scope->v[i].value, err)))
				return rc;
			continue;
		}
		slot = kx_audit_field(e, (size_t)f);
		if (!*slot && !(*slot = strdup(scope->v[i].value)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- validation ---- */

/* The byte limit of field i. */
static size_t field_max(size_t i)
{
	const char *n = kx_audit_field_names[i];
	if (!strcmp(n, "target"))
		return KX_AUDIT_TARGET_MAX;
	if (!strcmp(n, "artifact_url"))
		return KX_AUDIT_URL_MAX;
	if (!strcmp(n, "content_hash") || !strcmp(n, "idempotency_key"))
		return KX_AUDIT_KEY_MAX;
	/* What a label scope names holds what a label value may hold. */
	if (kx_audit_scope_key(n))
		return KX_LABEL_VALUE_MAX;
	return KX_NAME_MAX;
}

int kx_audit_event_check(const struct kx_audit_event *e, kx_ms now, struct kx_err *err)
{
	int rc;

	if (!e->actor)
		return kx_err_set(err, KX_EINVAL, "'actor' is required");
	if (!e->action)
		return kx_err_set(err, KX_EINVAL, "'action' is required");
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		const char *v = kx_audit_field_value(e, i);
		size_t n;
		if (!v)
			continue;
		n = strlen(v);
		if (n == 0)
			return kx_err_set(err, KX_EINVAL, "'%s' is empty", kx_audit_field_names[i]);
		if (n > field_max(i))
			return kx_err_set(err, KX_EINVAL, "'%s' is longer than %zu bytes",
					  kx_audit_field_names[i], field_max(i));
		if (kx_text_check(v, n, 0))
			return kx_err_set(err, KX_EINVAL, "'%s' has control characters or invalid UTF-8",
					  kx_audit_field_names[i]);
	}
	if (e->at == KX_TIME_UNSET)
		return kx_err_set(err, KX_EINVAL, "'at' is required");
	if (e->at < EARLIEST_MS)
		return kx_err_set(err, KX_EINVAL, "'at' is before 2000-01-01");
	if (e->at > now && e->at - now > KX_AUDIT_FUTURE_MS)
		return kx_err_set(err, KX_EINVAL, "'at' is more than 5 minutes in the future");
	for (size_t i = 0; i < e->labels.n; i++) {
		if (kx_audit_scope_key(e->labels.v[i].key))
			return kx_err_set(err, KX_EINVAL,
					  "label '%s' must be given as the field '%s', not as a label",
					  e->labels.v[i].key, e->labels.v[i].key);
		if ((rc = kx_label_key_check(e->labels.v[i].key, err)) ||
		    (rc = kx_label_value_check(e->labels.v[i].key, e->labels.v[i].value, err)))
			return rc;
	}
	return 0;
}

/* ---- the chain ---- */

static int add_be(struct kx_buf *b, uint64_t v, int bytes)
{
	uint8_t x[8];
	for (int i = 0; i < bytes; i++)
		x[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return kx_buf_add(b, x, (size_t)bytes);
}

static int add_str(struct kx_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > UINT32_MAX)
		return KX_ENOMEM;
	if (add_be(b, n, 4))
		return KX_ENOMEM;
	return kx_buf_add(b, s, n);
}

int kx_audit_canonical(const struct kx_audit_event *e, struct kx_buf *out)
{
	if (kx_buf_add(out, TAG, sizeof(TAG)) || add_be(out, (uint64_t)e->seq, 8) ||
	    add_be(out, (uint64_t)e->at, 8))
		return KX_ENOMEM;
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++) {
		const char *v = kx_audit_field_value(e, i);
		if (kx_buf_addc(out, v ? 1 : 0) || (v && add_str(out, v)))
			return KX_ENOMEM;
	}
	if (add_be(out, e->labels.n, 4))
		return KX_ENOMEM;
	/* kx_labels keeps its labels sorted by key: one order for one set. */
	for (size_t i = 0; i < e->labels.n; i++)
		if (add_str(out, e->labels.v[i].key) || add_str(out, e->labels.v[i].value))
			return KX_ENOMEM;
	return 0;
}

int kx_audit_compute(const struct kx_audit_event *e, const uint8_t prev[KX_HASH_LEN],
		     uint8_t out[KX_HASH_LEN])
{
	struct kx_buf b;
	kx_buf_init(&b, 0);
	if (kx_audit_canonical(e, &b))
		return KX_ENOMEM;
	kx_hash2(prev, KX_HASH_LEN, b.data, b.len, out);
	kx_buf_release(&b);
	return 0;
}

int kx_audit_chain(struct kx_audit_event *e, const uint8_t *prev)
{
	if (prev)
		memcpy(e->prev_hash, prev, KX_HASH_LEN);
	else
		memset(e->prev_hash, 0, KX_HASH_LEN);
	return kx_audit_compute(e, e->prev_hash, e->hash);
}

int kx_audit_verify_step(const struct kx_audit_event *e, int64_t prev_seq, const uint8_t *prev,
			 struct kx_err *why)
{
	static const uint8_t zero[KX_HASH_LEN];
	const uint8_t *want = prev ? prev : zero;
	uint8_t h[KX_HASH_LEN];
	char a[2 * KX_HASH_LEN + 1], b[2 * KX_HASH_LEN + 1];

	if (e->seq != prev_seq + 1) {
		if (prev_seq == 0)
			return kx_err_set(why, KX_ECONFLICT,
					  "the log starts at event %lld, not 1: events before it are missing",
					  (long long)e->seq);
		return kx_err_set(why, KX_ECONFLICT,
				  "event %lld follows event %lld: events in between are missing",
				  (long long)e->seq, (long long)prev_seq);
	}
	if (memcmp(e->prev_hash, want, KX_HASH_LEN) != 0) {
		kx_hex(e->prev_hash, KX_HASH_LEN, a);
		kx_hex(want, KX_HASH_LEN, b);
		if (!prev)
			return kx_err_set(why, KX_ECONFLICT,
					  "prev_hash is %.16s…, the first event's must be all zeros", a);
		return kx_err_set(why, KX_ECONFLICT,
				  "prev_hash %.16s… is not the hash of event %lld (%.16s…): that event "
				  "or this link was changed",
				  a, (long long)prev_seq, b);
	}
	if (kx_audit_compute(e, e->prev_hash, h))
		return kx_err_set(why, KX_ENOMEM, "out of memory");
	if (memcmp(h, e->hash, KX_HASH_LEN) != 0) {
		kx_hex(e->hash, KX_HASH_LEN, a);
		kx_hex(h, KX_HASH_LEN, b);
		return kx_err_set(why, KX_ECONFLICT,
				  "the stored hash %.16s… does not match the event's content (%.16s…): "
				  "the event was changed after it was written",
				  a, b);
	}
	return 0;
}

/* ---- labels as stored ---- */

static int json_str(struct kx_buf *b, const char *s)
{
	if (kx_buf_addc(b, '"'))
		return KX_ENOMEM;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		if (*p == '"' || *p == '\\')
			rc = kx_buf_addc(b, '\\') || kx_buf_addc(b, (char)*p);
		else if (*p < 0x20)
			rc = kx_buf_addf(b, "\\u%04x", (unsigned)*p);
		else
			rc = kx_buf_addc(b, (char)*p);
		if (rc)
			return KX_ENOMEM;
	}
	return kx_buf_addc(b, '"');
}

int kx_audit_labels_json(const struct kx_labels *ls, struct kx_buf *out)
{
	if (kx_buf_addc(out, '{'))
		return KX_ENOMEM;
	for (size_t i = 0; i < ls->n; i++)
		if ((i && kx_buf_addc(out, ',')) || json_str(out, ls->v[i].key) ||
		    kx_buf_addc(out, ':') || json_str(out, ls->v[i].value))
			return KX_ENOMEM;
	return kx_buf_addc(out, '}');
}

int kx_audit_labels_parse(const char *text, struct kx_labels *ls, struct kx_err *err)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *k;
	int rc = 0;

	if (!j || !json_is_object(j)) {
		json_decref(j);
		return kx_err_set(err, KX_EINVAL, "stored labels are not a JSON object");
	}
	json_object_foreach(j, k, v) {
		if (!json_is_string(v)) {
			rc = kx_err_set(err, KX_EINVAL, "stored label '%.64s' is not a string", k);
			break;
		}
		if ((rc = kx_labels_set(ls, k, json_string_value(v), err)))
			break;
	}
	json_decref(j);
	return rc;
}
