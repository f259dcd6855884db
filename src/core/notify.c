#include "core/notify.h"
#include "lib/err.h"
#include "lib/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Longest piece of user text (a title, a reason) a chat line shows. */
#define CHAT_FIELD_MAX 300
/* The generic summary: at most this many fields, each value cut here. */
#define SUMMARY_FIELDS 8
#define SUMMARY_VALUE_MAX 80

bool kx_notify_event_matches(char *const *events, size_t n, const char *event)
{
	size_t elen = strlen(event);
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		const char *p = events[i];
		size_t plen = strlen(p);
		if (!strcmp(p, "*") || !strcmp(p, event))
			return true;
		/* "incident.*": the prefix with its dot, and something after it */
		if (plen >= 2 && p[plen - 2] == '.' && p[plen - 1] == '*' && elen > plen - 1 &&
		    !strncmp(p, event, plen - 1))
			return true;
	}
	return false;
}

void kx_notify_sign(const char *secret, const void *body, size_t len,
		    char out[KX_NOTIFY_SIG_SIZE])
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	kx_hex(mac, sizeof(mac), out + 7);
	sodium_memzero(&st, sizeof(st));
}

enum kx_notify_verdict kx_notify_verdict(long status)
{
	if (status >= 200 && status <= 299)
		return KX_NOTIFY_DONE;
	if (status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599))
		return KX_NOTIFY_RETRY;
	return KX_NOTIFY_DROP;
}

kx_ms kx_notify_backoff(int attempts, uint32_t r)
{
	kx_ms base = KX_NOTIFY_BACKOFF_MIN, d;

	if (r >= KX_NOTIFY_JITTER_STEPS)
		r = KX_NOTIFY_JITTER_STEPS - 1;
	for (int i = 1; i < attempts && base < KX_NOTIFY_BACKOFF_MAX; i++)
		base *= 2;
	if (base > KX_NOTIFY_BACKOFF_MAX)
		base = KX_NOTIFY_BACKOFF_MAX;
	/* factor 0.8 .. 1.2 in steps of 1/10000 */
	d = base * (8000 + (kx_ms)r) / 10000;
	return d > KX_NOTIFY_BACKOFF_MAX ? KX_NOTIFY_BACKOFF_MAX : d;
}

json_t *kx_notify_labels_json(const struct kx_labels *ls)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; ls && i < ls->n; i++)
		if (json_object_set_new(o, ls->v[i].key, json_string(ls->v[i].value))) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* ---- chat text ---- */

static const char *str(json_t *data, const char *key)
{
	json_t *v = json_object_get(data, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	return s && *s ? s : NULL;
}

/* The length of s cut to at most max bytes without splitting a UTF-8
 * sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* Appends user text, escaped for Slack mrkdwn and kept on one line; in a
 * code span a backquote would end the span early, so it becomes a quote. */
static int add_text(struct kx_buf *b, const char *s, size_t max, bool code)
{
	size_t len = strlen(s), n = utf8_cut(s, len, max);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '&')
			rc = kx_buf_adds(b, "&amp;");
		else if (c == '<')
			rc = kx_buf_adds(b, "&lt;");
		else if (c == '>')
			rc = kx_buf_adds(b, "&gt;");
		else if (c < 0x20 || c == 0x7f)
			rc = kx_buf_addc(b, ' ');
		else if (code && c == '`')
			rc = kx_buf_addc(b, '\'');
		else
			rc = kx_buf_addc(b, (char)c);
	}
	if (!rc && n < len)
		rc = kx_buf_adds(b, "…");
	return rc;
}

static int add_field(struct kx_buf *b, const char *before, const char *s, const char *after)
{
	int rc;
	if (!s)
		return 0;
	if ((rc = kx_buf_adds(b, before)) || (rc = add_text(b, s, CHAT_FIELD_MAX, false)))
		return rc;
	return kx_buf_adds(b, after);
}

/* "on `client=acme`", or "on *everything*" for the empty selector. */
static int add_scope(struct kx_buf *b, json_t *data)
{
	const char *sel = str(data, "selector");
	int rc;
	if (!sel)
		return kx_buf_adds(b, " on *everything*");
	if ((rc = kx_buf_adds(b, " on `")) || (rc = add_text(b, sel, CHAT_FIELD_MAX, true)))
		return rc;
	return kx_buf_addc(b, '`');
}

/* " (until …, incident INC-…)" from the fields that are present. */
static int add_context(struct kx_buf *b, json_t *data)
{
	const char *until = str(data, "expires_at"), *inc = str(data, "incident");
	int rc = 0;
	if (!until && !inc)
		return 0;
	rc = kx_buf_adds(b, " (");
	if (!rc && until)
		rc = add_field(b, "until ", until, inc ? ", " : "");
	if (!rc && inc)
		rc = add_field(b, "incident ", inc, "");
	return rc ? rc : kx_buf_addc(b, ')');
}

static int text_declared(struct kx_buf *b, json_t *data, const char *public_url)
{
	const char *id = str(data, "id");
	int rc;
	if ((rc = kx_buf_adds(b, "🚨")) || (rc = add_field(b, " ", str(data, "severity"), "")) ||
	    (rc = add_field(b, " ", id, "")) || (rc = kx_buf_adds(b, " declared: ")) ||
	    (rc = add_text(b, str(data, "title") ? str(data, "title") : "(untitled)",
			   CHAT_FIELD_MAX, false)) ||
	    (rc = add_field(b, " (status ", str(data, "status"), ")")))
		return rc;
	if (public_url && *public_url && id) {
		size_t n = strlen(public_url);
		while (n > 0 && public_url[n - 1] == '/')
			n--;
		if ((rc = kx_buf_addf(b, "\n<%.*s/incidents/", (int)n, public_url)) ||
		    (rc = add_text(b, id, CHAT_FIELD_MAX, false)) ||
		    (rc = add_field(b, "|Open ", id, " in Klaxon>")))
			return rc;
	}
	return 0;
}

static int text_switch(struct kx_buf *b, const char *event, json_t *data)
{
	const char *id = str(data, "id");
	const char *who, *reason;
	int rc;

	if (!strcmp(event, "switch.set")) {
		who = str(data, "set_by");
		reason = str(data, "reason");
		if ((rc = kx_buf_adds(b, "🛑 Emergency stop: switch")) ||
		    (rc = add_field(b, " ", id, "")) ||
		    (rc = add_field(b, " *", str(data, "mode"), "*")))
			return rc;
	} else {
		bool cleared = !strcmp(event, "switch.cleared");
		who = str(data, "cleared_by") ? str(data, "cleared_by") : str(data, "set_by");
		reason = str(data, "clear_reason") ? str(data, "clear_reason") : str(data, "reason");
		if ((rc = kx_buf_adds(b, cleared ? "✅ Switch" : "↗️ Switch")) ||
		    (rc = add_field(b, " ", id, "")) ||
		    (rc = kx_buf_adds(b, cleared ? " cleared" : " resuming (ramping back up)")))
			return rc;
	}
	if ((rc = add_scope(b, data)) || (rc = add_field(b, " by ", who, "")) ||
	    (rc = add_field(b, " — reason: ", reason, "")))
		return rc;
	return add_context(b, data);
}

/* "cap.set: id=x, spec=…": the object's scalar fields, in order. */
static int text_generic(struct kx_buf *b, const char *event, json_t *data)
{
	const char *key;
	json_t *v;
	int shown = 0, rc;

	if ((rc = add_text(b, event, CHAT_FIELD_MAX, false)))
		return rc;
	if (!json_is_object(data))
		return 0;
	json_object_foreach(data, key, v) {
		char num[64];
		const char *s = NULL;
		if (json_is_string(v))
			s = json_string_value(v);
		else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			s = num;
		} else if (json_is_real(v)) {
			snprintf(num, sizeof(num), "%g", json_real_value(v));
			s = num;
		} else if (json_is_boolean(v))
			s = json_is_true(v) ? "true" : "false";
		if (!s || !*s)
			continue;
		if (shown == SUMMARY_FIELDS)
			return kx_buf_adds(b, ", …");
		if ((rc = kx_buf_adds(b, shown ? ", " : ": ")) ||
		    (rc = add_text(b, key, SUMMARY_VALUE_MAX, false)) || (rc = kx_buf_addc(b, '=')) ||
		    (rc = add_text(b, s, SUMMARY_VALUE_MAX, false)))
			return rc;
		shown++;
	}
	return 0;
}

int kx_notify_chat_text(const char *event, json_t *data, const char *public_url,
			struct kx_buf *b)
{
	if (!strcmp(event, "incident.declared"))
		return text_declared(b, data, public_url);
	if (!strcmp(event, "switch.set") || !strcmp(event, "switch.cleared") ||
	    !strcmp(event, "switch.resumed"))
		return text_switch(b, event, data);
	return text_generic(b, event, data);
}

/* ---- the delivery log ---------------------------------------------------- */

static const char *const ntf_status_names[] = {"pending", "retrying", "delivered", "dropped"};

const char *kx_notification_status_name(enum kx_notification_status s)
{
	return (unsigned)s < 4 ? ntf_status_names[s] : "pending";
}

int kx_notification_status_parse(const char *s, enum kx_notification_status *out,
				 struct kx_err *err)
{
	for (int i = 0; i < 4; i++)
		if (s && !strcmp(s, ntf_status_names[i])) {
			*out = (enum kx_notification_status)i;
			return 0;
		}
	return kx_err_set(err, KX_EINVAL,
			  "unknown notification status '%.64s': use pending, retrying, delivered or dropped",
			  s ? s : "");
}

void kx_notification_init(struct kx_notification *n)
{
	memset(n, 0, sizeof(*n));
	n->created_at = n->last_attempt_at = n->next_attempt_at = n->delivered_at = KX_TIME_UNSET;
}

void kx_notification_release(struct kx_notification *n)
{
	free(n->channel);
	free(n->event);
	free(n->subject);
	free(n->last_error);
	kx_notification_init(n);
}
