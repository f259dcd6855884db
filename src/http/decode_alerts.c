/* decode_alerts.c — the ingestion parsers (see decode_alerts.h).
 *
 * Each decoder parses the body with jansson, builds its events one by one
 * and checks each with kx_alert_event_check before returning any: the
 * first problem fails the whole body (Events v2 collects every problem it
 * finds instead, as PagerDuty answers with a list).
 *
 * What comes from Alertmanager is taken as generously as the contract
 * allows, because Alertmanager re-sends a refused group for ever: derived
 * text (the summary picked from the annotations, the instance label, the
 * groupKey) is cut to its limit instead of refused, and control characters
 * in it become spaces. What a client of Klaxon's own API or of Events v2
 * sends is refused when over a limit, naming the field.
 */
#include "http/decode_alerts.h"
#include "core/text.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OOM "out of memory"

/* ---- messages ------------------------------------------------------------- */

/* Replaces what would make msg unprintable — control characters, invalid
 * UTF-8 (a "%.64s" may cut a character, jansson quotes raw input) — by '?'. */
static void tidy(char *msg)
{
	size_t n = strlen(msg), i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)msg[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (len <= n - i && kx_text_check(msg + i, len, 0) == 0) {
			i += len;
			continue;
		}
		msg[i++] = '?';
	}
}

/* Sets err to "WHERE: message" (just the message when where is NULL). */
static int failf(struct kx_err *err, int code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int failf(struct kx_err *err, int code, const char *where, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (where)
		return kx_err_set(err, code, "%s: %s", where, msg);
	return kx_err_set(err, code, "%s", msg);
}

/* Puts "WHERE: " before the message a callee left in err. */
static int prefix(struct kx_err *err, int code, const char *where)
{
	char msg[sizeof(err->msg)];

	if (!err || !where)
		return code;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	return kx_err_set(err, code, "%s: %s", where, msg);
}

/* The name of element i of an array, "alerts[3]". */
static const char *element(char buf[64], const char *array, size_t i)
{
	snprintf(buf, 64, "%s[%zu]", array, i);
	return buf;
}

/* ---- JSON ----------------------------------------------------------------- */

static int load(const char *body, size_t len, json_t **out, struct kx_err *err)
{
	json_error_t je;

	*out = NULL;
	if (len == 0)
		return kx_err_set(err, KX_EJSON, "the request body is empty");
	*out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return kx_err_set(err, KX_EJSON, "invalid JSON at line %d, column %d: %s", je.line,
				  je.column, je.text);
	return 0;
}

/* obj.key as a string: absent or null leaves *out NULL; another type is an
 * error naming `name` (the key as the sender knows it). */
static int get_str(json_t *obj, const char *key, const char *name, const char *where,
		   const char **out, struct kx_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return failf(err, KX_EINVAL, where, "'%s' must be a string", name);
	*out = json_string_value(v);
	return 0;
}

/* obj.key as an object (absent or null: NULL). */
static int get_obj(json_t *obj, const char *key, const char *name, const char *where,
		   json_t **out, struct kx_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return failf(err, KX_EINVAL, where, "'%s' must be an object", name);
	*out = v;
	return 0;
}

/* An object whose members are all strings (annotations, Alertmanager's
 * groupLabels…). */
static int check_string_map(json_t *obj, const char *name, const char *where,
			    struct kx_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		if (!json_is_string(v))
			return failf(err, KX_EINVAL, where, "'%s.%.64s' must be a string", name, k);
	}
	return 0;
}

/* Compact text of a details object; NULL details for an empty one (the
 * event's "NULL: {}"). */
static int dump_details(json_t *d, char **out, struct kx_err *err)
{
	*out = NULL;
	if (json_object_size(d) == 0)
		return 0;
	*out = json_dumps(d, JSON_COMPACT);
	return *out ? 0 : kx_err_set(err, KX_ENOMEM, OOM);
}

/* ---- time ----------------------------------------------------------------- */

/* RFC 3339 with any fraction, also with the ISO 8601 basic offset
 * ("+0000", as in PagerDuty's own examples); Go's zero time (Alertmanager
 * and amtool send it for "none") is KX_TIME_UNSET. */
static int parse_time(const char *s, kx_ms *out)
{
	static const kx_ms go_zero = (kx_ms)-62135596800000; /* 0001-01-01T00:00:00Z */
	size_t n = strlen(s);
	int rc = kx_time_parse(s, out);

	if (rc && n >= 5 && (s[n - 5] == '+' || s[n - 5] == '-')) {
		char *with_colon = malloc(n + 2);
		bool digits = true;
		for (size_t i = n - 4; i < n; i++)
			digits = digits && s[i] >= '0' && s[i] <= '9';
		if (!with_colon)
			return KX_ENOMEM;
		if (digits) {
			memcpy(with_colon, s, n - 2);
			with_colon[n - 2] = ':';
			memcpy(with_colon + n - 1, s + n - 2, 3); /* the last two digits and NUL */
			rc = kx_time_parse(with_colon, out);
		}
		free(with_colon);
	}
	if (rc)
		return KX_EINVAL;
	if (*out == go_zero)
		*out = KX_TIME_UNSET;
	return 0;
}

/* obj.key as a time (absent, null or zero: KX_TIME_UNSET). */
static int get_time(json_t *obj, const char *key, const char *name, const char *where,
		    kx_ms *out, struct kx_err *err)
{
	const char *s;
	int rc;

	*out = KX_TIME_UNSET;
	if ((rc = get_str(obj, key, name, where, &s, err)) || !s)
		return rc;
	rc = parse_time(s, out);
	if (rc == KX_ENOMEM)
		return kx_err_set(err, KX_ENOMEM, OOM);
	if (rc)
		return failf(err, KX_EINVAL, where,
			     "'%s' is not an RFC 3339 time like 2026-11-25T14:00:00Z: '%.64s'", name,
			     s);
	return 0;
}

/* The start window of kx_alert_event_check, with the sender's field name. */
static int check_start(kx_ms t, kx_ms now, const char *name, const char *where,
		       struct kx_err *err)
{
	if (t == KX_TIME_UNSET)
		return 0;
	if (t > now && (uint64_t)t - (uint64_t)now > (uint64_t)KX_ALERT_FUTURE_SKEW)
		return failf(err, KX_EINVAL, where, "'%s' is more than 5 minutes in the future",
			     name);
	if (t < now && (uint64_t)now - (uint64_t)t > (uint64_t)KX_ALERT_PAST_MAX)
		return failf(err, KX_EINVAL, where, "'%s' is more than 366 days in the past", name);
	return 0;
}

/* ---- text ----------------------------------------------------------------- */

/* The longest prefix of s[0..n) of at most max bytes that does not cut a
 * UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* A copy of the (valid UTF-8) string s, with every control character —
 * but newline, carriage return and tab when multiline — turned into a
 * space, cut to max_bytes bytes and max_chars characters (0: no limit);
 * a text cut by characters ends in "…". NULL when out of memory. */
static char *clean(const char *s, bool multiline, size_t max_bytes, size_t max_chars)
{
	size_t n = strlen(s), chars = 0, o = 0;
	char *out;

	if (max_bytes)
		n = utf8_cut(s, n, max_bytes);
	out = malloc(n + 4); /* room for the "…" */
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (len > n - i)
			break;
		if (max_chars && chars == max_chars - 1 && kx_text_chars(s + i, n - i) > 1) {
			/* room for one more character and more than one left */
			memcpy(out + o, "\xe2\x80\xa6", 3);
			o += 3;
			break;
		}
		if ((c < 0x20 && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) ||
		    c == 0x7f || (c == 0xc2 && len == 2 && (unsigned char)s[i + 1] < 0xa0)) {
			out[o++] = ' ';
		} else {
			memcpy(out + o, s + i, len);
			o += len;
		}
		chars++;
		i += len;
	}
	out[o] = '\0';
	return out;
}

/* Sets *dst to a cleaned copy of s (NULL stays NULL). */
static int set_clean(char **dst, const char *s, bool multiline, size_t max_bytes,
		     size_t max_chars, struct kx_err *err)
{
	if (!s)
		return 0;
	*dst = clean(s, multiline, max_bytes, max_chars);
	return *dst ? 0 : kx_err_set(err, KX_ENOMEM, OOM);
}

static int set_copy(char **dst, const char *s, struct kx_err *err)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : kx_err_set(err, KX_ENOMEM, OOM);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* obj.key as alert labels (core/alert.h rules). */
static int get_labels(json_t *obj, const char *key, const char *where, struct kx_labels *out,
		      struct kx_err *err)
{
	char at[96];
	json_t *v = json_object_get(obj, key), *val;
	const char *k;
	int rc;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return failf(err, KX_EINVAL, where, "'%s' must be an object of strings", key);
	if (where)
		snprintf(at, sizeof(at), "%s.%s", where, key);
	else
		snprintf(at, sizeof(at), "%s", key);
	json_object_foreach(v, k, val) {
		if (!json_is_string(val))
			return failf(err, KX_EINVAL, at, "'%.64s' must have a string value", k);
		if ((rc = kx_alert_label_set(out, k, json_string_value(val), err)))
			return prefix(err, rc, at);
	}
	return 0;
}

/* ---- Alertmanager ----------------------------------------------------------- */

/* What the webhook's envelope gives every alert of the group. */
struct am_group {
	bool webhook;
	const char *group_key, *receiver, *external_url;
};

/* The summary an Alertmanager alert shows: the first of its annotations
 * summary, description and message, its alertname, "alert". */
static const char *am_summary(json_t *annotations, const struct kx_labels *labels)
{
	static const char *const keys[] = {"summary", "description", "message"};
	const char *s;

	for (size_t i = 0; annotations && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(annotations, keys[i]);
		if ((s = nonempty(json_string_value(v))))
			return s;
	}
	if ((s = kx_labels_get(labels, "alertname")))
		return s;
	return "alert";
}

static int am_details(struct kx_alert_event *e, json_t *annotations, const char *generator,
		      const struct am_group *g, struct kx_err *err)
{
	json_t *d = json_object();
	int rc = 0;

	if (!d)
		return kx_err_set(err, KX_ENOMEM, OOM);
	if ((annotations ? json_object_set(d, "annotations", annotations)
			 : json_object_set_new(d, "annotations", json_object())) ||
	    (nonempty(generator) &&
	     json_object_set_new(d, "generatorURL", json_string(generator))) ||
	    (nonempty(g->external_url) &&
	     json_object_set_new(d, "externalURL", json_string(g->external_url))) ||
	    (nonempty(g->receiver) && json_object_set_new(d, "receiver", json_string(g->receiver))))
		rc = kx_err_set(err, KX_ENOMEM, OOM);
	if (!rc)
		rc = dump_details(d, &e->details, err);
	json_decref(d);
	return rc;
}

/* One alert of a webhook message or of an API v2 array. */
static int am_alert(json_t *a, const char *where, const struct am_group *g, kx_ms now,
		    struct kx_alert_event *e, struct kx_err *err)
{
	const char *status = NULL, *fingerprint = NULL, *generator = NULL, *s;
	json_t *annotations = NULL;
	kx_ms starts, ends;
	int rc;

	e->source = KX_SOURCE_ALERTMANAGER;
	if (!json_is_object(a))
		return failf(err, KX_EINVAL, where, "an alert must be an object");
	if (!json_object_get(a, "labels") || json_is_null(json_object_get(a, "labels")))
		return failf(err, KX_EINVAL, where, "'labels' is missing");
	if ((rc = get_labels(a, "labels", where, &e->labels, err)) ||
	    (rc = get_obj(a, "annotations", "annotations", where, &annotations, err)) ||
	    (annotations && (rc = check_string_map(annotations, "annotations", where, err))) ||
	    (rc = get_time(a, "startsAt", "startsAt", where, &starts, err)) ||
	    (rc = get_time(a, "endsAt", "endsAt", where, &ends, err)) ||
	    (rc = get_str(a, "generatorURL", "generatorURL", where, &generator, err)) ||
	    (rc = check_start(starts, now, "startsAt", where, err)))
		return rc;
	if (g->webhook) {
		if ((rc = get_str(a, "status", "status", where, &status, err)) ||
		    (rc = get_str(a, "fingerprint", "fingerprint", where, &fingerprint, err)))
			return rc;
		if (!status)
			return failf(err, KX_EINVAL, where, "'status' is missing");
		if (strcmp(status, "firing") == 0) {
			e->action = KX_ALERT_TRIGGER; /* its endsAt is the zero time */
		} else if (strcmp(status, "resolved") == 0) {
			e->action = KX_ALERT_RESOLVE;
			e->ends_at = ends;
		} else {
			return failf(err, KX_EINVAL, where,
				     "unknown status '%.64s': use firing or resolved", status);
		}
		if ((fingerprint = nonempty(fingerprint))) {
			size_t n = strlen(fingerprint);
			if (n > KX_ALERT_DEDUP_MAX)
				return failf(err, KX_ETOOBIG, where,
					     "'fingerprint' is too long (%zu > %d bytes)", n,
					     KX_ALERT_DEDUP_MAX);
			if (kx_text_check(fingerprint, n, 0))
				return failf(err, KX_EINVAL, where,
					     "'fingerprint' has control characters");
			if ((rc = set_copy(&e->dedup_key, fingerprint, err)))
				return rc;
		}
	} else {
		if (e->labels.n == 0)
			return failf(err, KX_EINVAL, where, "'labels' must not be empty");
		if (starts != KX_TIME_UNSET && ends != KX_TIME_UNSET && ends < starts)
			return failf(err, KX_EINVAL, where, "'endsAt' is before 'startsAt'");
		e->action = ends != KX_TIME_UNSET && ends <= now ? KX_ALERT_RESOLVE
								 : KX_ALERT_TRIGGER;
		e->ends_at = ends;
	}
	e->starts_at = starts;
	e->level = kx_alert_level_guess(kx_labels_get(&e->labels, "severity"), KX_LEVEL_WARNING);
	s = am_summary(annotations, &e->labels);
	if ((rc = set_clean(&e->summary, s, true, 0, KX_ALERT_SUMMARY_MAX, err)) ||
	    (rc = set_clean(&e->source_host, kx_labels_get(&e->labels, "instance"), false,
			    KX_ALERT_FIELD_MAX, 0, err)) ||
	    (rc = set_clean(&e->group, nonempty(g->group_key), false, KX_ALERT_FIELD_MAX, 0, err)) ||
	    (rc = am_details(e, annotations, generator, g, err)))
		return rc;
	return kx_alert_event_check(e, now, where, err);
}

static int am_alerts(json_t *alerts, const struct am_group *g, kx_ms now,
		     struct kx_alert_events *out, struct kx_err *err)
{
	char where[64];
	json_t *a;
	size_t i;
	int rc;

	if (json_array_size(alerts) > KX_ALERT_BATCH_MAX)
		return kx_err_set(err, KX_ETOOBIG, "too many alerts in one request (%zu > %d)",
				  json_array_size(alerts), KX_ALERT_BATCH_MAX);
	json_array_foreach(alerts, i, a) {
		struct kx_alert_event *e = kx_alert_events_push(out);
		if (!e)
			return kx_err_set(err, KX_ENOMEM, OOM);
		if ((rc = am_alert(a, element(where, "alerts", i), g, now, e, err)))
			return rc;
	}
	return 0;
}

static int am_webhook(json_t *root, kx_ms now, struct kx_alert_events *out, struct kx_err *err)
{
	static const char *const maps[] = {"groupLabels", "commonLabels", "commonAnnotations"};
	struct am_group g = {.webhook = true};
	const char *version, *status;
	json_t *alerts, *v;
	int rc;

	if (!json_is_object(root))
		return kx_err_set(err, KX_EINVAL, "the request body must be a JSON object");
	if ((rc = get_str(root, "version", "version", NULL, &version, err)))
		return rc;
	if (!version)
		return kx_err_set(err, KX_EINVAL,
				  "'version' is missing: this is the receiver of Alertmanager "
				  "webhook messages (version 4)");
	if (strcmp(version, "4") != 0)
		return kx_err_set(err, KX_EINVAL,
				  "unsupported webhook version '%.16s': only version 4 is accepted",
				  version);
	if ((rc = get_str(root, "groupKey", "groupKey", NULL, &g.group_key, err)) ||
	    (rc = get_str(root, "receiver", "receiver", NULL, &g.receiver, err)) ||
	    (rc = get_str(root, "externalURL", "externalURL", NULL, &g.external_url, err)) ||
	    (rc = get_str(root, "status", "status", NULL, &status, err)))
		return rc;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if ((rc = get_obj(root, maps[i], maps[i], NULL, &v, err)) ||
		    (v && (rc = check_string_map(v, maps[i], NULL, err))))
			return rc;
	v = json_object_get(root, "truncatedAlerts");
	if (v && !json_is_null(v) && !json_is_integer(v))
		return kx_err_set(err, KX_EINVAL, "'truncatedAlerts' must be a whole number");
	alerts = json_object_get(root, "alerts");
	if (!alerts || json_is_null(alerts))
		return kx_err_set(err, KX_EINVAL, "'alerts' is missing");
	if (!json_is_array(alerts))
		return kx_err_set(err, KX_EINVAL, "'alerts' must be an array");
	return am_alerts(alerts, &g, now, out, err);
}

int kx_decode_am_webhook(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
			 struct kx_err *err)
{
	json_t *root;
	int rc;

	kx_alert_events_init(out);
	if ((rc = load(body, len, &root, err)) == 0)
		rc = am_webhook(root, now, out, err);
	json_decref(root);
	if (rc) {
		kx_alert_events_release(out);
		if (err)
			tidy(err->msg);
	}
	return rc;
}

int kx_decode_am_v2(const char *body, size_t len, kx_ms now, struct kx_alert_events *out,
		    struct kx_err *err)
{
	const struct am_group g = {.webhook = false};
	json_t *root;
	int rc;

	kx_alert_events_init(out);
	if ((rc = load(body, len, &root, err)) == 0) {
		if (!json_is_array(root))
			rc = kx_err_set(err, KX_EINVAL,
					"the request body must be a JSON array of alerts");
		else
			rc = am_alerts(root, &g, now, out, err);
	}
	json_decref(root);
	if (rc) {
		kx_alert_events_release(out);
		if (err)
			tidy(err->msg);
	}
	return rc;
}

/* ---- PagerDuty Events v2 ------------------------------------------------------ */

void kx_ev2_errors_release(struct kx_ev2_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	memset(e, 0, sizeof(*e));
}

/* Every problem found in one event: the first is err, each is a line of
 * list (when there is one). */
struct problems {
	struct kx_ev2_errors *list;
	struct kx_err *err;
	int rc; /* the first problem's code, 0 while there is none */
};

static void problem(struct problems *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct problems *p, int code, const char *fmt, ...)
{
	char msg[sizeof(p->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tidy(msg);
	if (!p->rc) {
		p->rc = code;
		kx_err_set(p->err, code, "%s", msg);
	}
	if (p->list && p->list->n < KX_EV2_ERRORS_MAX) {
		char *line = strdup(msg);
		if (line)
			p->list->v[p->list->n++] = line;
	}
}

/* A problem a helper reported in e. */
static void problem_err(struct problems *p, const struct kx_err *e)
{
	problem(p, e->code, "%s", e->msg);
}

/* obj.key as a string, any problem noted; *out NULL when absent or bad. */
static void ev2_str(struct problems *p, json_t *obj, const char *key, const char *name,
		    const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return;
	if (!json_is_string(v)) {
		problem(p, KX_EINVAL, "'%s' must be a string", name);
		return;
	}
	*out = json_string_value(v);
}

/* A required string: "is missing" when absent or empty. */
static const char *ev2_required(struct problems *p, json_t *obj, const char *key,
				const char *name)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	const char *s;

	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v))) {
		problem(p, KX_EINVAL, "'%s' is missing", name);
		return NULL;
	}
	ev2_str(p, obj, key, name, &s);
	return s;
}

/* A one-line field of at most KX_ALERT_FIELD_MAX bytes, copied with its
 * control characters made spaces. */
static void ev2_field(struct problems *p, json_t *obj, const char *key, const char *name,
		      bool required, char **dst)
{
	const char *s;
	size_t n;

	if (required)
		s = ev2_required(p, obj, key, name);
	else
		ev2_str(p, obj, key, name, &s);
	if (!nonempty(s))
		return;
	if ((n = strlen(s)) > KX_ALERT_FIELD_MAX) {
		problem(p, KX_ETOOBIG, "'%s' is too long (%zu > %d bytes)", name, n,
			KX_ALERT_FIELD_MAX);
		return;
	}
	if (!(*dst = clean(s, false, 0, 0)))
		problem(p, KX_ENOMEM, OOM);
}

/* A summary of at most KX_ALERT_SUMMARY_MAX characters, as required text. */
static void ev2_summary(struct problems *p, json_t *payload, const char *name, char **dst)
{
	const char *s = ev2_required(p, payload, "summary", name);
	size_t chars;

	if (!s)
		return;
	chars = kx_text_chars(s, strlen(s));
	if (chars > KX_ALERT_SUMMARY_MAX) {
		problem(p, KX_ETOOBIG, "'%s' is too long (%zu > %d characters)", name, chars,
			KX_ALERT_SUMMARY_MAX);
		return;
	}
	if (!(*dst = clean(s, true, 0, 0)))
		problem(p, KX_ENOMEM, OOM);
}

static void ev2_timestamp(struct problems *p, json_t *payload, kx_ms now, kx_ms *out)
{
	struct kx_err e = {0};

	if (get_time(payload, "timestamp", "payload.timestamp", NULL, out, &e) ||
	    check_start(*out, now, "payload.timestamp", NULL, &e)) {
		*out = KX_TIME_UNSET;
		problem_err(p, &e);
	}
}

static void ev2_routing_key(struct problems *p, json_t *root, char **out)
{
	const char *key = ev2_required(p, root, "routing_key", "routing_key");
	size_t n;

	if (!key)
		return;
	if ((n = strlen(key)) != KX_INTEGRATION_KEY_LEN) {
		problem(p, KX_EINVAL, "'routing_key' has the wrong length (%zu, must be %d characters)",
			n, KX_INTEGRATION_KEY_LEN);
		return;
	}
	if (kx_text_check(key, n, 0)) {
		problem(p, KX_EINVAL, "'routing_key' has control characters");
		return;
	}
	if (!(*out = strdup(key)))
		problem(p, KX_ENOMEM, OOM);
}

/* links [{href, text?}] or images [{src, href?, alt?}], checked and copied
 * into d under their name. */
static void ev2_list(struct problems *p, json_t *root, const char *name, const char *required,
		     const char *const *optional, json_t *d)
{
	json_t *v = json_object_get(root, name), *item;
	const char *s;
	char at[96];
	size_t i;

	if (!v || json_is_null(v))
		return;
	if (!json_is_array(v)) {
		problem(p, KX_EINVAL, "'%s' must be an array", name);
		return;
	}
	json_array_foreach(v, i, item) {
		if (!json_is_object(item)) {
			problem(p, KX_EINVAL, "'%s[%zu]' must be an object", name, i);
			continue;
		}
		snprintf(at, sizeof(at), "%s[%zu].%s", name, i, required);
		ev2_required(p, item, required, at);
		for (const char *const *o = optional; *o; o++) {
			snprintf(at, sizeof(at), "%s[%zu].%s", name, i, *o);
			ev2_str(p, item, *o, at, &s);
		}
	}
	if (json_array_size(v) && json_object_set(d, name, v))
		problem(p, KX_ENOMEM, OOM);
}

/* Adds root.key (a string) to d. */
static void ev2_keep_str(struct problems *p, json_t *root, const char *key, json_t *d)
{
	const char *s;

	ev2_str(p, root, key, key, &s);
	if (nonempty(s) && json_object_set_new(d, key, json_string(s)))
		problem(p, KX_ENOMEM, OOM);
}

/* The details text of d, refused past KX_ALERT_DETAILS_MAX naming what
 * fills it. */
static void ev2_details(struct problems *p, json_t *d, const char *what, char **out)
{
	struct kx_err e = {0};
	size_t n;

	if (dump_details(d, out, &e)) {
		problem_err(p, &e);
		return;
	}
	if (*out && (n = strlen(*out)) > KX_ALERT_DETAILS_MAX)
		problem(p, KX_ETOOBIG, "%s are too large (%zu > %d bytes of details)", what, n,
			KX_ALERT_DETAILS_MAX);
}

/* Parses the body as one JSON object, or notes why not. */
static json_t *ev2_load(struct problems *p, const char *body, size_t len)
{
	struct kx_err e = {0};
	json_t *root;

	if (len > KX_ALERT_EVENT_MAX) {
		problem(p, KX_ETOOBIG, "the event is larger than %d bytes", KX_ALERT_EVENT_MAX);
		return NULL;
	}
	if (load(body, len, &root, &e)) {
		problem_err(p, &e);
		return NULL;
	}
	if (!json_is_object(root)) {
		problem(p, KX_EINVAL, "the request body must be a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

static void ev2_action(struct problems *p, json_t *root, enum kx_alert_action *out, bool *known)
{
	const char *s = ev2_required(p, root, "event_action", "event_action");

	*known = false;
	if (!s)
		return;
	if (kx_alert_action_parse(s, out, NULL)) {
		problem(p, KX_EINVAL,
			"'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
		return;
	}
	*known = true;
}

static void ev2_dedup_key(struct problems *p, json_t *root, bool required, char **out)
{
	json_t *v = json_object_get(root, "dedup_key");
	bool wrong_type = v && !json_is_null(v) && !json_is_string(v);
	const char *s;
	size_t n;

	ev2_str(p, root, "dedup_key", "dedup_key", &s);
	if (!nonempty(s)) {
		if (required && !wrong_type)
			problem(p, KX_EINVAL,
				"'dedup_key' is missing (required for acknowledge and resolve)");
		return;
	}
	if ((n = strlen(s)) > KX_ALERT_DEDUP_MAX) {
		problem(p, KX_ETOOBIG, "'dedup_key' is too long (%zu > %d bytes)", n,
			KX_ALERT_DEDUP_MAX);
		return;
	}
	if (kx_text_check(s, n, 0)) {
		problem(p, KX_EINVAL, "'dedup_key' has control characters");
		return;
	}
	if (!(*out = strdup(s)))
		problem(p, KX_ENOMEM, OOM);
}

static void ev2_payload(struct problems *p, json_t *payload, kx_ms now,
			struct kx_alert_event *e, json_t *d)
{
	const char *severity;
	json_t *cd;

	ev2_summary(p, payload, "payload.summary", &e->summary);
	ev2_field(p, payload, "source", "payload.source", true, &e->source_host);
	severity = ev2_required(p, payload, "severity", "payload.severity");
	if (severity && kx_alert_level_parse(severity, &e->level, NULL))
		problem(p, KX_EINVAL,
			"'payload.severity' is invalid (must be one of: critical, error, warning, info)");
	ev2_timestamp(p, payload, now, &e->starts_at);
	ev2_field(p, payload, "component", "payload.component", false, &e->component);
	ev2_field(p, payload, "group", "payload.group", false, &e->group);
	ev2_field(p, payload, "class", "payload.class", false, &e->class);
	cd = json_object_get(payload, "custom_details");
	if (cd && !json_is_null(cd) && json_object_set(d, "custom_details", cd))
		problem(p, KX_ENOMEM, OOM);
}

int kx_decode_events_v2(const char *body, size_t len, kx_ms now, struct kx_alert_event *out,
			char **routing_key, struct kx_ev2_errors *errors, struct kx_err *err)
{
	static const char *const link_opt[] = {"text", NULL};
	static const char *const image_opt[] = {"href", "alt", NULL};
	struct problems p = {errors, err, 0};
	json_t *root, *payload, *d = NULL;
	bool known;

	kx_alert_event_init(out);
	out->source = KX_SOURCE_EVENTS_V2;
	*routing_key = NULL;
	if (errors)
		memset(errors, 0, sizeof(*errors));
	if (!(root = ev2_load(&p, body, len)))
		goto out;
	if (!(d = json_object())) {
		problem(&p, KX_ENOMEM, OOM);
		goto out;
	}
	ev2_routing_key(&p, root, routing_key);
	ev2_action(&p, root, &out->action, &known);
	ev2_dedup_key(&p, root, known && out->action != KX_ALERT_TRIGGER, &out->dedup_key);
	payload = json_object_get(root, "payload");
	if (payload && !json_is_null(payload) && !json_is_object(payload)) {
		problem(&p, KX_EINVAL, "'payload' must be an object");
	} else if (known && out->action == KX_ALERT_TRIGGER) {
		/* acknowledge and resolve may carry a payload (Alertmanager sends
		 * the trigger's again): it is not theirs to change, so not read */
		if (!payload || json_is_null(payload))
			problem(&p, KX_EINVAL, "'payload' is missing");
		else
			ev2_payload(&p, payload, now, out, d);
	}
	ev2_list(&p, root, "links", "href", link_opt, d);
	ev2_list(&p, root, "images", "src", image_opt, d);
	ev2_keep_str(&p, root, "client", d);
	ev2_keep_str(&p, root, "client_url", d);
	if (!p.rc)
		ev2_details(&p, d, "'payload.custom_details', 'links' and 'images'", &out->details);
	if (!p.rc) {
		struct kx_err e = {0};
		if (kx_alert_event_check(out, now, NULL, &e))
			problem_err(&p, &e);
	}
out:
	json_decref(d);
	json_decref(root);
	if (p.rc) {
		kx_alert_event_release(out);
		out->source = KX_SOURCE_EVENTS_V2;
		free(*routing_key);
		*routing_key = NULL;
	}
	return p.rc;
}

int kx_decode_change_v2(const char *body, size_t len, kx_ms now, struct kx_change_event *out,
			char **routing_key, struct kx_ev2_errors *errors, struct kx_err *err)
{
	static const char *const link_opt[] = {"text", NULL};
	struct problems p = {errors, err, 0};
	json_t *root, *payload, *d = NULL, *cd;

	kx_change_event_init(out);
	*routing_key = NULL;
	if (errors)
		memset(errors, 0, sizeof(*errors));
	if (!(root = ev2_load(&p, body, len)))
		goto out;
	if (!(d = json_object())) {
		problem(&p, KX_ENOMEM, OOM);
		goto out;
	}
	ev2_routing_key(&p, root, routing_key);
	payload = json_object_get(root, "payload");
	if (!payload || json_is_null(payload)) {
		problem(&p, KX_EINVAL, "'payload' is missing");
	} else if (!json_is_object(payload)) {
		problem(&p, KX_EINVAL, "'payload' must be an object");
	} else {
		ev2_summary(&p, payload, "payload.summary", &out->summary);
		ev2_field(&p, payload, "source", "payload.source", false, &out->source_host);
		ev2_timestamp(&p, payload, now, &out->at);
		cd = json_object_get(payload, "custom_details");
		if (cd && !json_is_null(cd) && json_object_set(d, "custom_details", cd))
			problem(&p, KX_ENOMEM, OOM);
	}
	ev2_list(&p, root, "links", "href", link_opt, d);
	if (!p.rc)
		ev2_details(&p, d, "'payload.custom_details' and 'links'", &out->details);
	if (!p.rc && !out->details && !(out->details = strdup("{}")))
		problem(&p, KX_ENOMEM, OOM);
	if (out->at == KX_TIME_UNSET)
		out->at = now;
	out->received_at = now;
out:
	json_decref(d);
	json_decref(root);
	if (p.rc) {
		kx_change_event_release(out);
		free(*routing_key);
		*routing_key = NULL;
	}
	return p.rc;
}

/* ---- Klaxon's own POST /v1/alerts ------------------------------------------------ */

static int generic_alert(json_t *a, const char *where, kx_ms now, struct kx_alert_event *e,
			 struct kx_err *err)
{
	const char *summary, *status, *dedup, *severity, *source, *component, *group, *class;
	json_t *details;
	enum kx_alert_status st = KX_ALERT_FIRING;
	int rc;

	e->source = KX_SOURCE_GENERIC;
	if (!json_is_object(a))
		return failf(err, KX_EINVAL, where, "an alert must be an object");
	if ((rc = get_str(a, "summary", "summary", where, &summary, err)) ||
	    (rc = get_str(a, "status", "status", where, &status, err)) ||
	    (rc = get_str(a, "dedup_key", "dedup_key", where, &dedup, err)) ||
	    (rc = get_str(a, "severity", "severity", where, &severity, err)) ||
	    (rc = get_str(a, "source", "source", where, &source, err)) ||
	    (rc = get_str(a, "component", "component", where, &component, err)) ||
	    (rc = get_str(a, "group", "group", where, &group, err)) ||
	    (rc = get_str(a, "class", "class", where, &class, err)) ||
	    (rc = get_obj(a, "details", "details", where, &details, err)) ||
	    (rc = get_labels(a, "labels", where, &e->labels, err)) ||
	    (rc = get_time(a, "starts_at", "starts_at", where, &e->starts_at, err)) ||
	    (rc = check_start(e->starts_at, now, "starts_at", where, err)))
		return rc;
	if (status && (rc = kx_alert_status_parse(status, &st, err)))
		return prefix(err, rc, where);
	if (severity && (rc = kx_alert_level_parse(severity, &e->level, err)))
		return prefix(err, rc, where);
	e->action = st == KX_ALERT_RESOLVED ? KX_ALERT_RESOLVE : KX_ALERT_TRIGGER;
	if ((rc = set_copy(&e->summary, summary, err)) ||
	    (rc = set_copy(&e->dedup_key, dedup, err)) ||
	    (rc = set_copy(&e->source_host, source, err)) ||
	    (rc = set_copy(&e->component, component, err)) ||
	    (rc = set_copy(&e->group, group, err)) || (rc = set_copy(&e->class, class, err)) ||
	    (details && (rc = dump_details(details, &e->details, err))))
		return rc;
	return kx_alert_event_check(e, now, where, err);
}

static int generic(json_t *root, kx_ms now, struct kx_alert_events *out, struct kx_err *err)
{
	json_t *alerts, *a;
	char where[64];
	size_t i;
	int rc;

	if (!json_is_object(root))
		return kx_err_set(err, KX_EINVAL, "the request body must be a JSON object");
	alerts = json_object_get(root, "alerts");
	if (!alerts) {
		struct kx_alert_event *e = kx_alert_events_push(out);
		if (!e)
			return kx_err_set(err, KX_ENOMEM, OOM);
		return generic_alert(root, NULL, now, e, err);
	}
	if (!json_is_array(alerts))
		return kx_err_set(err, KX_EINVAL, "'alerts' must be an array");
	if (json_array_size(alerts) > KX_ALERT_BATCH_MAX)
		return kx_err_set(err, KX_ETOOBIG, "too many alerts in one request (%zu > %d)",
				  json_array_size(alerts), KX_ALERT_BATCH_MAX);
	json_array_foreach(alerts, i, a) {
		struct kx_alert_event *e = kx_alert_events_push(out);
		if (!e)
			return kx_err_set(err, KX_ENOMEM, OOM);
		if ((rc = generic_alert(a, element(where, "alerts", i), now, e, err)))
			return rc;
	}
	return 0;
}

int kx_decode_generic_alerts(const char *body, size_t len, kx_ms now,
			     struct kx_alert_events *out, struct kx_err *err)
{
	json_t *root;
	int rc;

	kx_alert_events_init(out);
	if ((rc = load(body, len, &root, err)) == 0)
		rc = generic(root, now, out, err);
	json_decref(root);
	if (rc) {
		kx_alert_events_release(out);
		if (err)
			tidy(err->msg);
	}
	return rc;
}
