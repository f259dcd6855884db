#include "core/alert.h"
#include "core/text.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names ---------------------------------------------------------------- */

static const char *const status_names[] = {"firing", "resolved"};
static const char *const level_names[] = {"critical", "error", "warning", "info"};
static const char *const source_names[] = {"alertmanager", "events-v2", "generic",
					   "heartbeat",	   "check",	"manual"};
static const char *const action_names[] = {"trigger", "acknowledge", "resolve"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The name of value i in names[0..n), "unknown" for a value out of range
 * (a broken caller; never a wire value). */
static const char *name_of(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : "unknown";
}

const char *kx_alert_status_name(enum kx_alert_status s)
{
	return name_of(status_names, COUNT(status_names), (unsigned)s);
}

const char *kx_alert_level_name(enum kx_alert_level l)
{
	return name_of(level_names, COUNT(level_names), (unsigned)l);
}

const char *kx_alert_source_name(enum kx_alert_source s)
{
	return name_of(source_names, COUNT(source_names), (unsigned)s);
}

const char *kx_alert_action_name(enum kx_alert_action a)
{
	return name_of(action_names, COUNT(action_names), (unsigned)a);
}

/* Finds s in names[0..n) (exactly: wire values are lowercase), else fills
 * err with "unknown WHAT 's': use a, b or c". */
static int parse_name(const char *s, const char *const *names, size_t n, const char *what,
		      unsigned *out, struct kx_err *err)
{
	char list[128];
	size_t used = 0;

	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (unsigned)i;
			return 0;
		}
	list[0] = '\0';
	for (size_t i = 0; i < n && used < sizeof(list); i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", sep, names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return kx_err_set(err, KX_EINVAL, "unknown %s '%.64s': use %s", what, s ? s : "", list);
}

int kx_alert_status_parse(const char *s, enum kx_alert_status *out, struct kx_err *err)
{
	unsigned v;
	int rc = parse_name(s, status_names, COUNT(status_names), "status", &v, err);
	if (rc == 0)
		*out = (enum kx_alert_status)v;
	return rc;
}

int kx_alert_level_parse(const char *s, enum kx_alert_level *out, struct kx_err *err)
{
	unsigned v;
	int rc = parse_name(s, level_names, COUNT(level_names), "severity", &v, err);
	if (rc == 0)
		*out = (enum kx_alert_level)v;
	return rc;
}

int kx_alert_source_parse(const char *s, enum kx_alert_source *out, struct kx_err *err)
{
	unsigned v;
	int rc = parse_name(s, source_names, COUNT(source_names), "source", &v, err);
	if (rc == 0)
		*out = (enum kx_alert_source)v;
	return rc;
}

int kx_alert_action_parse(const char *s, enum kx_alert_action *out, struct kx_err *err)
{
	unsigned v;
	int rc = parse_name(s, action_names, COUNT(action_names), "event action", &v, err);
	if (rc == 0)
		*out = (enum kx_alert_action)v;
	return rc;
}

enum kx_alert_level kx_alert_level_guess(const char *s, enum kx_alert_level fallback)
{
	static const struct {
		const char *word;
		enum kx_alert_level level;
	} words[] = {
		{"critical", KX_LEVEL_CRITICAL}, {"page", KX_LEVEL_CRITICAL},
		{"high", KX_LEVEL_CRITICAL},	 {"p1", KX_LEVEL_CRITICAL},
		{"sev1", KX_LEVEL_CRITICAL},	 {"emergency", KX_LEVEL_CRITICAL},
		{"fatal", KX_LEVEL_CRITICAL},	 {"error", KX_LEVEL_ERROR},
		{"major", KX_LEVEL_ERROR},	 {"p2", KX_LEVEL_ERROR},
		{"sev2", KX_LEVEL_ERROR},	 {"warning", KX_LEVEL_WARNING},
		{"warn", KX_LEVEL_WARNING},	 {"minor", KX_LEVEL_WARNING},
		{"p3", KX_LEVEL_WARNING},	 {"sev3", KX_LEVEL_WARNING},
		{"info", KX_LEVEL_INFO},	 {"low", KX_LEVEL_INFO},
		{"none", KX_LEVEL_INFO},	 {"p4", KX_LEVEL_INFO},
		{"p5", KX_LEVEL_INFO},		 {"ok", KX_LEVEL_INFO},
	};

	if (!s)
		return fallback;
	for (size_t i = 0; i < COUNT(words); i++)
		if (strcasecmp(s, words[i].word) == 0)
			return words[i].level;
	return fallback;
}

/* ---- labels ---------------------------------------------------------------- */

static bool label_name_valid(const char *key, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return false;
	}
	return true;
}

/* Where key is in the sorted set, or where it would go. */
static size_t label_find(const struct kx_labels *ls, const char *key, bool *found)
{
	size_t lo = 0, hi = ls->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ls->v[mid].key, key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int kx_alert_label_set(struct kx_labels *ls, const char *key, const char *value,
		       struct kx_err *err)
{
	size_t kn = key ? strlen(key) : 0, vn = value ? strlen(value) : 0, at;
	struct kx_label l;
	bool found;

	if (kn > KX_ALERT_LABEL_KEY_MAX)
		return kx_err_set(err, KX_ETOOBIG, "label name '%.64s…' is longer than %d bytes",
				  key, KX_ALERT_LABEL_KEY_MAX);
	if (kn == 0)
		return kx_err_set(err, KX_EINVAL, "a label name is empty");
	if (kx_text_check(key, kn, 0))
		return kx_err_set(err, KX_EINVAL,
				  "a label name has control characters or invalid UTF-8");
	if (!label_name_valid(key, kn))
		return kx_err_set(err, KX_EINVAL, "'%.64s' is not a valid label name", key);
	if (vn > KX_ALERT_LABEL_VALUE_MAX)
		return kx_err_set(err, KX_ETOOBIG, "label '%s' has a value longer than %d bytes",
				  key, KX_ALERT_LABEL_VALUE_MAX);
	if (kx_text_check(value, vn, 0))
		return kx_err_set(err, KX_EINVAL,
				  "label '%s' has a value with control characters or invalid UTF-8",
				  key);
	at = label_find(ls, key, &found);
	if (vn == 0) { /* "no such label" */
		if (found)
			kx_labels_remove(ls, key);
		return 0;
	}
	if (found) {
		char *v = strdup(value);
		if (!v)
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		free(ls->v[at].value);
		ls->v[at].value = v;
		return 0;
	}
	if (ls->n >= KX_ALERT_LABELS_MAX)
		return kx_err_set(err, KX_ETOOBIG, "too many labels (at most %d)",
				  KX_ALERT_LABELS_MAX);
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 8;
		struct kx_label *v = realloc(ls->v, cap * sizeof(*v));
		if (!v)
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		ls->v = v;
		ls->cap = cap;
	}
	l.key = strdup(key);
	l.value = strdup(value);
	if (!l.key || !l.value) {
		free(l.key);
		free(l.value);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	memmove(ls->v + at + 1, ls->v + at, (ls->n - at) * sizeof(*ls->v));
	ls->v[at] = l;
	ls->n++;
	return 0;
}

void kx_alert_fingerprint(const struct kx_labels *ls, char out[KX_FINGERPRINT_LEN + 1])
{
	static const unsigned char sep = 0xff; /* never in UTF-8, so pairs cannot run together */
	static const char hex[] = "0123456789abcdef";
	/* libsodium's BLAKE2b gives at least 16 bytes; the first 8 are the print. */
	unsigned char h[crypto_generichash_BYTES_MIN];
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	for (size_t i = 0; i < ls->n; i++) {
		crypto_generichash_update(&st, (const unsigned char *)ls->v[i].key,
					  strlen(ls->v[i].key));
		crypto_generichash_update(&st, &sep, 1);
		crypto_generichash_update(&st, (const unsigned char *)ls->v[i].value,
					  strlen(ls->v[i].value));
		crypto_generichash_update(&st, &sep, 1);
	}
	crypto_generichash_final(&st, h, sizeof(h));
	for (size_t i = 0; i < KX_FINGERPRINT_LEN / 2; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 0xf];
	}
	out[KX_FINGERPRINT_LEN] = '\0';
}

/* ---- the event check ------------------------------------------------------ */

/* Fills err with "WHERE: message" (or just the message without where). */
static int check_fail(struct kx_err *err, int code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int check_fail(struct kx_err *err, int code, const char *where, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (where && *where)
		return kx_err_set(err, code, "%s: %s", where, msg);
	return kx_err_set(err, code, "%s", msg);
}

/* A one-line field: at most KX_ALERT_FIELD_MAX (or max) bytes of UTF-8
 * without control characters. */
static int check_field(const char *name, const char *s, size_t max, const char *where,
		       struct kx_err *err)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	if (n > max)
		return check_fail(err, KX_ETOOBIG, where, "'%s' is too long (%zu > %zu bytes)", name,
				  n, max);
	if (kx_text_check(s, n, 0))
		return check_fail(err, KX_EINVAL, where,
				  "'%s' has control characters or invalid UTF-8", name);
	return 0;
}

int kx_alert_event_check(const struct kx_alert_event *e, kx_ms now, const char *where,
			 struct kx_err *err)
{
	int rc;

	if ((unsigned)e->source > KX_SOURCE_MANUAL || (unsigned)e->action > KX_ALERT_RESOLVE ||
	    (unsigned)e->level > KX_LEVEL_INFO)
		return check_fail(err, KX_EINVAL, where, "the event has an unknown kind or level");
	if (e->action == KX_ALERT_TRIGGER && (!e->summary || !*e->summary))
		return check_fail(err, KX_EINVAL, where, "'summary' is required");
	if (e->summary) {
		size_t n = strlen(e->summary), chars;
		if (kx_text_check(e->summary, n, KX_TEXT_MULTILINE))
			return check_fail(err, KX_EINVAL, where,
					  "'summary' has control characters or invalid UTF-8");
		chars = kx_text_chars(e->summary, n);
		if (chars > KX_ALERT_SUMMARY_MAX)
			return check_fail(err, KX_ETOOBIG, where,
					  "'summary' is too long (%zu > %d characters)", chars,
					  KX_ALERT_SUMMARY_MAX);
	}
	if (e->dedup_key && !*e->dedup_key)
		return check_fail(err, KX_EINVAL, where, "'dedup_key' is empty");
	if ((rc = check_field("dedup_key", e->dedup_key, KX_ALERT_DEDUP_MAX, where, err)) ||
	    (rc = check_field("source", e->source_host, KX_ALERT_FIELD_MAX, where, err)) ||
	    (rc = check_field("component", e->component, KX_ALERT_FIELD_MAX, where, err)) ||
	    (rc = check_field("group", e->group, KX_ALERT_FIELD_MAX, where, err)) ||
	    (rc = check_field("class", e->class, KX_ALERT_FIELD_MAX, where, err)))
		return rc;
	if (e->labels.n > KX_ALERT_LABELS_MAX)
		return check_fail(err, KX_ETOOBIG, where, "too many labels (%zu > %d)", e->labels.n,
				  KX_ALERT_LABELS_MAX);
	for (size_t i = 0; i < e->labels.n; i++) {
		const struct kx_label *l = &e->labels.v[i];
		size_t kn = strlen(l->key), vn = strlen(l->value);
		if (kn > KX_ALERT_LABEL_KEY_MAX || !label_name_valid(l->key, kn) ||
		    vn == 0 || vn > KX_ALERT_LABEL_VALUE_MAX || kx_text_check(l->value, vn, 0) ||
		    (i > 0 && strcmp(e->labels.v[i - 1].key, l->key) >= 0))
			return check_fail(err, KX_EINVAL, where, "label '%.64s' is not valid",
					  kx_text_check(l->key, kn, 0) ? "?" : l->key);
	}
	if (e->details && strlen(e->details) > KX_ALERT_DETAILS_MAX)
		return check_fail(err, KX_ETOOBIG, where, "'details' is larger than %d bytes",
				  KX_ALERT_DETAILS_MAX);
	if (e->starts_at != KX_TIME_UNSET) {
		/* compared as differences so that no sum can overflow */
		if (e->starts_at > now && (uint64_t)e->starts_at - (uint64_t)now >
						  (uint64_t)KX_ALERT_FUTURE_SKEW)
			return check_fail(err, KX_EINVAL, where,
					  "'starts_at' is more than 5 minutes in the future");
		if (e->starts_at < now &&
		    (uint64_t)now - (uint64_t)e->starts_at > (uint64_t)KX_ALERT_PAST_MAX)
			return check_fail(err, KX_EINVAL, where,
					  "'starts_at' is more than 366 days in the past");
	}
	return 0;
}

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
