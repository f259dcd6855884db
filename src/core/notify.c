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

/* ---- e-mail -------------------------------------------------------------- */

/* The body lists at most this many fields of the event's object, each value
 * cut here; a line longer than MAIL_LINE_MAX bytes is wrapped (SMTP allows
 * 998 plus CRLF). */
#define MAIL_FIELDS 24
#define MAIL_KEY_MAX 80
#define MAIL_VALUE_MAX 300
#define MAIL_LINE_MAX 900
/* Header lines are folded to stay within this many characters where they
 * can (RFC 5322's "SHOULD" of 78). */
#define MAIL_FOLD 78
/* Bytes of UTF-8 per RFC 2047 encoded word: 56 base64 characters, a word of
 * 68, which fits on a line after "Subject: ". */
#define MAIL_EW_BYTES 42
#define MAIL_EW_B64 sodium_base64_ENCODED_LEN(MAIL_EW_BYTES, sodium_base64_VARIANT_ORIGINAL)

/* Appends user text on one line, as is but for control characters (spaces
 * then), cut to max bytes on a character boundary with "…". */
static int plain_add(struct kx_buf *b, const char *s, size_t max)
{
	size_t len = strlen(s), n = utf8_cut(s, len, max);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		rc = kx_buf_addc(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	if (!rc && n < len)
		rc = kx_buf_adds(b, "…");
	return rc;
}

static int plain_field(struct kx_buf *b, const char *before, const char *s, const char *after)
{
	int rc;
	if (!s)
		return 0;
	if ((rc = kx_buf_adds(b, before)) || (rc = plain_add(b, s, CHAT_FIELD_MAX)))
		return rc;
	return kx_buf_adds(b, after);
}

static int plain_declared(struct kx_buf *b, json_t *data)
{
	const char *title = str(data, "title");
	int rc;
	if ((rc = kx_buf_adds(b, "🚨")) || (rc = plain_field(b, " ", str(data, "severity"), "")) ||
	    (rc = plain_field(b, " ", str(data, "id"), "")) || (rc = kx_buf_adds(b, " declared: ")) ||
	    (rc = plain_add(b, title ? title : "(untitled)", CHAT_FIELD_MAX)))
		return rc;
	return plain_field(b, " (status ", str(data, "status"), ")");
}

/* As text_switch, without the marks. */
static int plain_switch(struct kx_buf *b, const char *event, json_t *data)
{
	const char *id = str(data, "id"), *sel = str(data, "selector");
	const char *who, *reason, *until = str(data, "expires_at"), *inc = str(data, "incident");
	int rc;

	if (!strcmp(event, "switch.set")) {
		who = str(data, "set_by");
		reason = str(data, "reason");
		if ((rc = kx_buf_adds(b, "🛑 Emergency stop: switch")) ||
		    (rc = plain_field(b, " ", id, "")) ||
		    (rc = plain_field(b, " ", str(data, "mode"), "")))
			return rc;
	} else {
		bool cleared = !strcmp(event, "switch.cleared");
		who = str(data, "cleared_by") ? str(data, "cleared_by") : str(data, "set_by");
		reason = str(data, "clear_reason") ? str(data, "clear_reason") : str(data, "reason");
		if ((rc = kx_buf_adds(b, cleared ? "✅ Switch" : "↗️ Switch")) ||
		    (rc = plain_field(b, " ", id, "")) ||
		    (rc = kx_buf_adds(b, cleared ? " cleared" : " resuming (ramping back up)")))
			return rc;
	}
	if ((rc = plain_field(b, " on ", sel ? sel : "everything", "")) ||
	    (rc = plain_field(b, " by ", who, "")) ||
	    (rc = plain_field(b, " — reason: ", reason, "")))
		return rc;
	if (!until && !inc)
		return 0;
	if ((rc = kx_buf_adds(b, " (")) ||
	    (rc = plain_field(b, "until ", until, inc ? ", " : "")) ||
	    (rc = plain_field(b, "incident ", inc, "")))
		return rc;
	return kx_buf_addc(b, ')');
}

/* A scalar JSON value as text, NULL for null, objects, arrays and "". */
static const char *scalar(json_t *v, char num[64])
{
	const char *s = NULL;
	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_integer(v)) {
		snprintf(num, 64, "%lld", (long long)json_integer_value(v));
		s = num;
	} else if (json_is_real(v)) {
		snprintf(num, 64, "%g", json_real_value(v));
		s = num;
	} else if (json_is_boolean(v))
		s = json_is_true(v) ? "true" : "false";
	return s && *s ? s : NULL;
}

/* As text_generic, without escaping. */
static int plain_generic(struct kx_buf *b, const char *event, json_t *data)
{
	const char *key;
	json_t *v;
	int shown = 0, rc;

	if ((rc = plain_add(b, event, CHAT_FIELD_MAX)))
		return rc;
	if (!json_is_object(data))
		return 0;
	json_object_foreach(data, key, v) {
		char num[64];
		const char *s = scalar(v, num);
		if (!s)
			continue;
		if (shown == SUMMARY_FIELDS)
			return kx_buf_adds(b, ", …");
		if ((rc = kx_buf_adds(b, shown ? ", " : ": ")) ||
		    (rc = plain_add(b, key, SUMMARY_VALUE_MAX)) || (rc = kx_buf_addc(b, '=')) ||
		    (rc = plain_add(b, s, SUMMARY_VALUE_MAX)))
			return rc;
		shown++;
	}
	return 0;
}

int kx_notify_plain_text(const char *event, json_t *data, struct kx_buf *b)
{
	if (!strcmp(event, "incident.declared"))
		return plain_declared(b, data);
	if (!strcmp(event, "switch.set") || !strcmp(event, "switch.cleared") ||
	    !strcmp(event, "switch.resumed"))
		return plain_switch(b, event, data);
	return plain_generic(b, event, data);
}

/* "Name: value" + CRLF; control characters in value (CR and LF above
 * all) are dropped, so that no value can start a header of its own. */
static int mail_header(struct kx_buf *b, const char *name, const char *value)
{
	int rc = kx_buf_addf(b, "%s: ", name);
	for (const char *p = value; !rc && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != 0x7f)
			rc = kx_buf_addc(b, (char)c);
	}
	return rc ? rc : kx_buf_adds(b, "\r\n");
}

static bool ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* The Subject header: plain ASCII folded before a space where a line would
 * pass MAIL_FOLD, anything else as RFC 2047 "B" encoded words, one per
 * line (whitespace between encoded words is not part of the text).
 * s has no control characters (kx_notify_plain_text). */
static int mail_subject(struct kx_buf *b, const char *s)
{
	size_t n = strlen(s), col = 9, i = 0;
	int rc;

	if ((rc = kx_buf_adds(b, "Subject: ")))
		return rc;
	if (ascii_only(s)) {
		while (i < n && !rc) {
			size_t j = i;
			while (j < n && s[j] == ' ')
				j++;
			while (j < n && s[j] != ' ')
				j++;
			if (col > 9 && s[i] == ' ' && col + (j - i) > MAIL_FOLD) {
				rc = kx_buf_adds(b, "\r\n");
				col = 0;
			}
			if (!rc)
				rc = kx_buf_add(b, s + i, j - i);
			col += j - i;
			i = j;
		}
	} else {
		while (i < n && !rc) {
			char b64[MAIL_EW_B64];
			size_t k = utf8_cut(s + i, n - i, MAIL_EW_BYTES);
			if (k == 0) /* not UTF-8 after all: cut anywhere */
				k = n - i < MAIL_EW_BYTES ? n - i : MAIL_EW_BYTES;
			sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)s + i, k,
					  sodium_base64_VARIANT_ORIGINAL);
			rc = kx_buf_addf(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", b64);
			i += k;
		}
	}
	return rc ? rc : kx_buf_adds(b, "\r\n");
}

/* "To: a@example.org, b@example.org", folded after a comma. */
static int mail_to(struct kx_buf *b, char *const *to, size_t nto)
{
	size_t col = 4;
	int rc = kx_buf_adds(b, "To: ");
	for (size_t i = 0; i < nto && !rc; i++) {
		size_t len = 0;
		for (const char *p = to[i]; *p; p++)
			len += (unsigned char)*p >= 0x20 && *p != 0x7f;
		if (i) {
			bool fold = col + 2 + len > MAIL_FOLD;
			rc = kx_buf_adds(b, fold ? ",\r\n " : ", ");
			col = fold ? 1 : col + 2;
		}
		for (const char *p = to[i]; !rc && *p; p++)
			if ((unsigned char)*p >= 0x20 && *p != 0x7f)
				rc = kx_buf_addc(b, *p);
		col += len;
	}
	return rc ? rc : kx_buf_adds(b, "\r\n");
}

/* "Date: Wed, 25 Nov 2026 20:30:00 +0000" */
static int mail_date(struct kx_buf *b, kx_ms t)
{
	static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct kx_civil c;
	int64_t days = t / 86400000 - (t % 86400000 < 0);
	int wd = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */

	kx_civil_from_ms(t, &c);
	return kx_buf_addf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wday[wd], c.day,
			   mon[(c.month - 1) % 12], c.year, c.hour, c.min, c.sec);
}

/* Appends text[0..len) (no CR or LF in it) as body lines of at most
 * MAIL_LINE_MAX bytes: broken at the last space that keeps a line short
 * enough, else on a character boundary. */
static int mail_line(struct kx_buf *b, const char *s, size_t len)
{
	int rc = 0;
	while (len > MAIL_LINE_MAX && !rc) {
		size_t k = MAIL_LINE_MAX, skip = 0;
		while (k > 0 && s[k] != ' ')
			k--;
		if (k > 0)
			skip = 1;
		else
			k = utf8_cut(s, len, MAIL_LINE_MAX);
		if (k == 0)
			k = MAIL_LINE_MAX;
		if (!(rc = kx_buf_add(b, s, k)))
			rc = kx_buf_adds(b, "\r\n");
		s += k + skip;
		len -= k + skip;
	}
	if (!rc)
		rc = kx_buf_add(b, s, len);
	return rc ? rc : kx_buf_adds(b, "\r\n");
}

/* "key: value" per scalar field of data. */
static int mail_fields(struct kx_buf *b, json_t *data)
{
	struct kx_buf line;
	const char *key;
	json_t *v;
	int shown = 0, rc = 0;

	if (!json_is_object(data))
		return 0;
	kx_buf_init(&line, MAIL_KEY_MAX + MAIL_VALUE_MAX + 64);
	json_object_foreach(data, key, v) {
		char num[64];
		const char *s = scalar(v, num);
		if (!s)
			continue;
		if (shown++ == MAIL_FIELDS) {
			rc = kx_buf_adds(b, "…\r\n");
			break;
		}
		kx_buf_clear(&line);
		if ((rc = plain_add(&line, key, MAIL_KEY_MAX)) || (rc = kx_buf_adds(&line, ": ")) ||
		    (rc = plain_add(&line, s, MAIL_VALUE_MAX)) ||
		    (rc = mail_line(b, kx_buf_str(&line), line.len)))
			break;
	}
	kx_buf_release(&line);
	return rc;
}

/* "labels: client=acme, platform=instagram" */
static int mail_labels(struct kx_buf *b, json_t *labels)
{
	struct kx_buf line;
	const char *key;
	json_t *v;
	int n = 0, rc = 0;

	if (!json_is_object(labels) || json_object_size(labels) == 0)
		return 0;
	kx_buf_init(&line, 64 * 1024);
	rc = kx_buf_adds(&line, "labels: ");
	json_object_foreach(labels, key, v) {
		if (rc || !json_is_string(v))
			continue;
		if ((n++ && (rc = kx_buf_adds(&line, ", "))) ||
		    (rc = plain_add(&line, key, MAIL_KEY_MAX)) || (rc = kx_buf_addc(&line, '=')) ||
		    (rc = plain_add(&line, json_string_value(v), MAIL_VALUE_MAX)))
			break;
	}
	if (!rc)
		rc = mail_line(b, kx_buf_str(&line), line.len);
	kx_buf_release(&line);
	return rc;
}

/* "Open in Klaxon: URL/incidents/ID" for an event about an incident (or
 * naming one). */
static int mail_link(struct kx_buf *b, const char *event, json_t *data, const char *public_url)
{
	const char *id = !strncmp(event, "incident.", 9) ? str(data, "id") : str(data, "incident");
	size_t n;
	int rc;

	if (!public_url || !*public_url || !id)
		return 0;
	n = strlen(public_url);
	while (n > 0 && public_url[n - 1] == '/')
		n--;
	if ((rc = kx_buf_addf(b, "\r\nOpen in Klaxon: %.*s/incidents/", (int)n, public_url)) ||
	    (rc = plain_add(b, id, CHAT_FIELD_MAX)))
		return rc;
	return kx_buf_adds(b, "\r\n");
}

static int mail_body(struct kx_buf *b, const struct kx_notify_email *m, const char *text,
		     size_t len)
{
	int rc;
	if ((rc = mail_line(b, text, len)) || (rc = kx_buf_adds(b, "\r\n")) ||
	    (rc = mail_fields(b, m->data)) || (rc = mail_labels(b, m->labels)) ||
	    (rc = mail_link(b, m->event, m->data, m->public_url)) ||
	    (rc = kx_buf_adds(b, "\r\n-- \r\nKlaxon, event ")) ||
	    (rc = plain_add(b, m->event, MAIL_KEY_MAX)) || (rc = kx_buf_adds(b, ", delivery ")) ||
	    (rc = plain_add(b, m->delivery, MAIL_KEY_MAX)))
		return rc;
	return kx_buf_adds(b, "\r\n");
}

int kx_notify_email_message(const struct kx_notify_email *m, struct kx_buf *b)
{
	struct kx_buf text, subject, id;
	int rc;

	kx_buf_init(&text, 64 * 1024);
	kx_buf_init(&subject, KX_NOTIFY_SUBJECT_MAX + 8);
	kx_buf_init(&id, 256);
	if ((rc = kx_notify_plain_text(m->event, m->data, &text)) ||
	    (rc = plain_add(&subject, kx_buf_str(&text), KX_NOTIFY_SUBJECT_MAX)) ||
	    (rc = kx_buf_addc(&id, '<')) || (rc = plain_add(&id, m->delivery, 200)) ||
	    (rc = kx_buf_adds(&id, "@klaxon>")))
		goto out;
	if ((rc = mail_header(b, "From", m->from)) || (rc = mail_to(b, m->to, m->nto)) ||
	    (rc = mail_subject(b, kx_buf_str(&subject))) || (rc = mail_date(b, m->date)) ||
	    (rc = mail_header(b, "Message-ID", kx_buf_str(&id))) ||
	    (rc = mail_header(b, "X-Klaxon-Event", m->event)) ||
	    (rc = mail_header(b, "X-Klaxon-Delivery", m->delivery)) ||
	    (rc = mail_header(b, "Auto-Submitted", "auto-generated")) ||
	    (rc = mail_header(b, "MIME-Version", "1.0")) ||
	    (rc = mail_header(b, "Content-Type", "text/plain; charset=utf-8")) ||
	    (rc = mail_header(b, "Content-Transfer-Encoding", "8bit")) ||
	    (rc = kx_buf_adds(b, "\r\n")) ||
	    (rc = mail_body(b, m, kx_buf_str(&text), text.len)))
		goto out;
out:
	kx_buf_release(&text);
	kx_buf_release(&subject);
	kx_buf_release(&id);
	if (rc)
		kx_buf_release(b);
	return rc;
}

int kx_notify_email_envelope(const char *addr, struct kx_buf *b)
{
	const char *s = addr, *e, *lt = strrchr(addr, '<');
	int rc;

	if (lt && strchr(lt, '>')) {
		s = lt + 1;
		e = strchr(lt, '>');
	} else {
		e = addr + strlen(addr);
	}
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	rc = kx_buf_addc(b, '<');
	for (; !rc && s < e; s++)
		if ((unsigned char)*s > 0x20 && *s != 0x7f)
			rc = kx_buf_addc(b, *s);
	return rc ? rc : kx_buf_addc(b, '>');
}
