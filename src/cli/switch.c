/* klaxon stop, resume, switch …: the emergency stop and the kill switches
 * behind it, including `switch watch`, which follows the switch stream
 * (Server-Sent Events) until interrupted. */
#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Width of the longest key in `switch show` ("Clear reason"). */
#define SHOW_KEYW 12
/* Reasons and selectors are cut to this in tables. */
#define CELL_MAX 40

/* `switch watch`: the daemon pings every 15 s; a stream silent for three
 * pings is taken for dead and reconnected. */
#define WATCH_SILENCE_S 45L
#define WATCH_BACKOFF_MIN_S 1
#define WATCH_BACKOFF_MAX_S 30
/* The largest SSE line or event accepted (a full switch set fits). */
#define WATCH_MAX_EVENT ((size_t)16 << 20)

/* ---- helpers ------------------------------------------------------------- */

/* Appends the human form ("2026-11-25 14:31 UTC") of the RFC 3339 time in
 * member key of o; the text as it is when it does not parse; nothing when
 * absent or null. */

/* The selector as people read it: "everything" for the empty one. */
static const char *selector_text(const json_t *sw)
{
	const char *s = kx_cli_jstr(sw, "selector");

	return !s ? "-" : *s ? s : "everything";
}

/* Where a switch stands, from its fields: cleared, in force, ramping (in
 * force, but lifting gradually), lifted (its ramp has ended) or expired. */
static const char *switch_state(const json_t *sw)
{
	int ramp = json_is_object(json_object_get(sw, "ramp"));

	if (kx_cli_jstr(sw, "cleared_at"))
		return "cleared";
	if (json_is_true(json_object_get(sw, "active")))
		return ramp ? "ramping" : "in force";
	return ramp ? "lifted" : "expired";
}

/* Appends "1 to 60 actions per 1m, 2026-11-25 14:31 UTC to 15:01 UTC" for
 * a ramp object. */
static int add_ramp(struct kx_buf *b, const json_t *ramp)
{
	const char *win = kx_cli_jstr(ramp, "window");

	if (kx_buf_addf(b, "%lld to %lld actions per %s, ",
			(long long)json_integer_value(json_object_get(ramp, "floor")),
			(long long)json_integer_value(json_object_get(ramp, "peak")),
			win ? win : "?") ||
	    kx_cli_add_time(b, ramp, "start") || kx_buf_adds(b, " to ") || kx_cli_add_time(b, ramp, "end"))
		return KX_ENOMEM;
	return 0;
}

/* "sw_… block client=acme (in force until 2026-11-25 16:31 UTC)". */
static int add_summary(struct kx_buf *b, const json_t *sw)
{
	const char *id = kx_cli_jstr(sw, "id"), *mode = kx_cli_jstr(sw, "mode");
	const char *state = switch_state(sw);

	if (kx_buf_addf(b, "%s %s %s (", id ? id : "?", mode ? mode : "?", selector_text(sw)))
		return KX_ENOMEM;
	if (!strcmp(state, "in force") && kx_cli_jstr(sw, "expires_at")) {
		if (kx_buf_adds(b, "in force until ") || kx_cli_add_time(b, sw, "expires_at"))
			return KX_ENOMEM;
	} else if (!strcmp(state, "in force")) {
		if (kx_buf_adds(b, "in force now"))
			return KX_ENOMEM;
	} else if (kx_buf_adds(b, state)) {
		return KX_ENOMEM;
	}
	return kx_buf_addc(b, ')');
}

/* Prints "PREFIX: <summary>" for the switch in ans.switch. */
static int confirm_switch(const json_t *ans, const char *prefix)
{
	const json_t *sw = json_object_get(ans, "switch");
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b, "%s: ", prefix) || add_summary(&b, sw) ||
	     kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* Sends a request about switch a->pos[0] (+ suffix); see kx_cli_exchange. */
static int sexchange(struct kx_cli *cli, const struct kx_args *a, const char *method,
		     const char *suffix, const json_t *body, json_t **out)
{
	struct kx_buf path;
	int rc;

	*out = NULL;
	if ((rc = kx_cli_check_segment(a, "switch ID", a->pos[0])))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_cli_path(&path, "switches", a->pos[0], suffix))
		rc = kx_cli_oom();
	else
		rc = kx_cli_exchange(cli, method, kx_buf_str(&path), body, out);
	kx_buf_release(&path);
	return rc;
}

static int check_mode(const struct kx_args *a)
{
	const char *m = kx_args_get(a, "mode");

	if (m && strcmp(m, "block") && strcmp(m, "approve") && strcmp(m, "read_only"))
		return kx_cli_usage(a, "invalid value '%s' for '--mode': expected block, approve or read_only",
				    m);
	return 0;
}

/* Adds --expires to body: a duration as expires_in, a time as expires_at. */
static int add_expires(const struct kx_args *a, json_t *body)
{
	const char *v = kx_args_get(a, "expires");
	kx_ms t;

	if (!v)
		return 0;
	if (!kx_duration_parse(v, &t))
		return json_object_set_new(body, "expires_in", json_string(v)) ? kx_cli_oom() : 0;
	if (!kx_time_parse(v, &t))
		return json_object_set_new(body, "expires_at", json_string(v)) ? kx_cli_oom() : 0;
	return kx_cli_usage(a, "invalid value '%s' for '--expires': expected a duration such as 2h "
			    "or an RFC 3339 time such as 2026-11-25T18:00:00Z",
			    v);
}

/* POSTs a new switch over selector (mode, reason, expiry and incident from
 * the flags) and confirms it with prefix. */
static int set_switch(struct kx_cli *cli, const struct kx_args *a, const char *selector,
		      const char *prefix)
{
	json_t *body, *ans = NULL;
	int rc;

	if ((rc = check_mode(a)))
		return rc;
	body = json_pack("{s:s, s:s, s:s, s:s*}", "selector", selector, "mode",
			 kx_args_get(a, "mode") ? kx_args_get(a, "mode") : "block", "reason",
			 kx_args_get(a, "reason"), "incident", kx_args_get(a, "incident"));
	if (!body)
		return kx_cli_oom();
	if ((rc = add_expires(a, body)))
		goto out;
	rc = kx_cli_exchange(cli, "POST", "/v1/switches", body, &ans);
	if (!rc && !cli->json)
		rc = confirm_switch(ans, prefix);
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* ---- stop ---------------------------------------------------------------- */

/* Whether a selector value must be quoted (core/selector.h: ',', '(', ')',
 * '"', '=' or surrounding blanks; '\' too, to be unambiguous). */
static int needs_quotes(const char *v)
{
	size_t n = strlen(v);

	return strpbrk(v, ",()\"=\\") || v[0] == ' ' || v[0] == '\t' ||
	       (n && (v[n - 1] == ' ' || v[n - 1] == '\t'));
}

/* Appends "key=value" (quoted when it must be) to a selector. */
static int add_requirement(struct kx_buf *b, const char *key, const char *value)
{
	if ((b->len && kx_buf_addc(b, ',')) || kx_buf_addf(b, "%s=", key))
		return KX_ENOMEM;
	if (!needs_quotes(value))
		return kx_buf_adds(b, value);
	if (kx_buf_addc(b, '"'))
		return KX_ENOMEM;
	for (const char *p = value; *p; p++)
		if (((*p == '"' || *p == '\\') && kx_buf_addc(b, '\\')) || kx_buf_addc(b, *p))
			return KX_ENOMEM;
	return kx_buf_addc(b, '"');
}

static const char *const stop_fields[] = {"client", "platform", "account", "lane", "action"};
#define NFIELDS (sizeof(stop_fields) / sizeof(stop_fields[0]))

/* Collects --client … --action and --label into labels (a key given twice
 * with different values is a usage error). Returns 0 or an exit status. */
static int stop_labels(const struct kx_args *a, json_t *labels)
{
	json_t *extra = json_object();
	const char *key;
	json_t *v;
	int rc;

	if (!extra)
		return kx_cli_oom();
	for (size_t i = 0; i < NFIELDS; i++) {
		const char *val = kx_args_get(a, stop_fields[i]);

		if (val && !*val) {
			rc = kx_cli_usage(a, "invalid value '' for '--%s': expected a value",
					  stop_fields[i]);
			goto out;
		}
		if (val && json_object_set_new(labels, stop_fields[i], json_string(val))) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if ((rc = kx_cli_labels(a, "label", extra)))
		goto out;
	json_object_foreach(extra, key, v) {
		const char *had = kx_cli_jstr(labels, key);

		if (had && strcmp(had, json_string_value(v))) {
			rc = kx_cli_usage(a, "'%s' given twice ('%s' and '%s'): a stop matches one value per label",
					  key, had, json_string_value(v));
			goto out;
		}
		if (json_object_set(labels, key, v)) {
			rc = kx_cli_oom();
			goto out;
		}
	}
out:
	json_decref(extra);
	return rc;
}

/* Builds the stop's selector: equality on every label given, and --selector
 * appended. Returns 0 or an exit status. */
static int stop_selector(const struct kx_args *a, struct kx_buf *sel)
{
	json_t *labels = json_object(), *v;
	const char *key, *extra = kx_args_get(a, "selector");
	int rc;

	if (!labels)
		return kx_cli_oom();
	if ((rc = stop_labels(a, labels)))
		goto out;
	json_object_foreach(labels, key, v) {
		if (add_requirement(sel, key, json_string_value(v))) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if (extra && strspn(extra, " \t") != strlen(extra) &&
	    ((sel->len && kx_buf_addc(sel, ',')) || kx_buf_adds(sel, extra)))
		rc = kx_cli_oom();
out:
	json_decref(labels);
	return rc;
}

/* An empty selector stops every action of every client: only with --all,
 * and --all only alone, so that a forgotten or empty filter never widens
 * a stop to the world. */
static int check_everything(const struct kx_args *a, const struct kx_buf *sel, int with_fields)
{
	int all = kx_args_has(a, "all");

	if (sel->len && all)
		return kx_cli_usage(a, "--all stops everything: it cannot be combined with a %s",
				    with_fields ? "filter" : "non-empty --selector");
	if (!sel->len && !all)
		return kx_cli_usage(a, with_fields
				       ? "refusing to stop everything: no filter given; narrow the stop with "
					 "--client, --platform, --account, --lane, --action, --label or "
					 "--selector, or pass --all to stop every action"
				       : "refusing to stop everything: the selector is empty; pass --all to "
					 "stop every action");
	return 0;
}

static int cmd_stop(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf sel;
	int rc;

	kx_buf_init(&sel, 0);
	if ((rc = stop_selector(a, &sel)) || (rc = check_everything(a, &sel, 1)))
		goto out;
	rc = set_switch(cli, a, kx_buf_str(&sel), "stopped");
out:
	kx_buf_release(&sel);
	return rc;
}

/* ---- resume, switch set / clear ------------------------------------------ */

static int cmd_resume(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const counts[] = {"floor", "peak"};
	const char *ramp = kx_args_get(a, "ramp");
	json_t *body = json_pack("{s:s*, s:s*}", "reason", kx_args_get(a, "reason"), "ramp", ramp);
	json_t *ans = NULL;
	const json_t *sw, *r;
	struct kx_buf line;
	int rc;

	kx_buf_init(&line, 0);
	if (!body)
		return kx_cli_oom();
	if ((rc = kx_cli_check_duration(a, "ramp")) || (rc = kx_cli_check_duration(a, "window")))
		goto out;
	if (!ramp && (kx_args_has(a, "floor") || kx_args_has(a, "peak") || kx_args_has(a, "window"))) {
		rc = kx_cli_usage(a, "--floor, --peak and --window shape a ramp: give --ramp too");
		goto out;
	}
	for (size_t i = 0; i < 2; i++) {
		const char *v = kx_args_get(a, counts[i]);
		long long n;

		if (!v)
			continue;
		if (kx_cli_parse_count(v, &n)) {
			rc = kx_cli_usage(a, "invalid value '%s' for '--%s': expected a non-negative integer",
					  v, counts[i]);
			goto out;
		}
		if (json_object_set_new(body, counts[i], json_integer(n))) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if (kx_args_get(a, "window") &&
	    json_object_set_new(body, "window", json_string(kx_args_get(a, "window")))) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = sexchange(cli, a, "POST", "/resume", body, &ans);
	if (rc || cli->json)
		goto out;
	sw = json_object_get(ans, "switch");
	r = json_object_get(sw, "ramp");
	if (kx_buf_addf(&line, "resumed: %s ", kx_cli_jstr(sw, "id") ? kx_cli_jstr(sw, "id")
								     : a->pos[0])) {
		rc = kx_cli_oom();
		goto out;
	}
	if (json_is_object(r))
		rc = kx_buf_adds(&line, "ramping up, ") || add_ramp(&line, r);
	else
		rc = kx_buf_addf(&line, "%s %s lifted now", kx_cli_jstr(sw, "mode") ? kx_cli_jstr(sw, "mode") : "?",
				 selector_text(sw));
	if (rc || kx_out_line(stdout, kx_buf_str(&line)))
		rc = kx_cli_oom();
out:
	kx_buf_release(&line);
	json_decref(body);
	json_decref(ans);
	return rc;
}

static int cmd_set(struct kx_cli *cli, const struct kx_args *a)
{
	const char *sel = kx_args_get(a, "selector");
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	/* Only blanks is the empty selector too. */
	if (strspn(sel, " \t") != strlen(sel) && kx_buf_adds(&b, sel)) {
		rc = kx_cli_oom();
		goto out;
	}
	if ((rc = check_everything(a, &b, 0)))
		goto out;
	rc = set_switch(cli, a, kx_buf_str(&b), "set");
out:
	kx_buf_release(&b);
	return rc;
}

static int cmd_clear(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = json_pack("{s:s*}", "reason", kx_args_get(a, "reason")), *ans = NULL;
	int rc;

	if (!body)
		return kx_cli_oom();
	rc = sexchange(cli, a, "POST", "/clear", body, &ans);
	if (!rc && !cli->json)
		rc = confirm_switch(ans, "cleared");
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* ---- list, show ------------------------------------------------------------ */

static int any_not_plain(const json_t *list)
{
	json_t *sw;
	size_t i;

	json_array_foreach(list, i, sw)
		if (strcmp(switch_state(sw), "in force"))
			return 1;
	return 0;
}

static int print_switches(const json_t *list, int all)
{
	static const char *const head[] = {"ID",     "MODE",   "SELECTOR", "REASON",
					   "SET BY", "SET AT", "EXPIRES",  "STATE"};
	struct kx_table *t;
	int state = all || any_not_plain(list);
	json_t *sw;
	size_t i;

	if (json_array_size(list) == 0) {
		printf(all ? "no switches\n" : "no switches in force\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(state ? 8 : 7, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 2, CELL_MAX);
	kx_table_set_max(t, 3, CELL_MAX);
	json_array_foreach(list, i, sw) {
		kx_table_cell(t, kx_cli_jstr(sw, "id"));
		kx_table_cell(t, kx_cli_jstr(sw, "mode"));
		kx_table_cell(t, selector_text(sw));
		kx_table_cell(t, kx_cli_jstr(sw, "reason"));
		kx_table_cell(t, kx_cli_jstr(sw, "set_by"));
		kx_cli_time_cell(t, sw, "set_at");
		kx_cli_time_cell(t, sw, "expires_at");
		if (state)
			kx_table_cell(t, switch_state(sw));
	}
	return kx_cli_print_table(t);
}

static int cmd_list(struct kx_cli *cli, const struct kx_args *a)
{
	int all = kx_args_has(a, "all");
	json_t *ans = NULL;
	int rc = kx_cli_exchange(cli, "GET", all ? "/v1/switches?all=true" : "/v1/switches", NULL,
				 &ans);

	if (!rc && !cli->json)
		rc = print_switches(json_object_get(ans, "switches"), all);
	json_decref(ans);
	return rc;
}

static int print_switch(const json_t *sw)
{
	const json_t *ramp = json_object_get(sw, "ramp");
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
#define KV(key, value) (rc = rc || kx_out_kv(stdout, SHOW_KEYW, key, value))
#define KVT(key, field)                                                   \
	do {                                                              \
		kx_buf_clear(&b);                                         \
		rc = rc || kx_cli_add_time(&b, sw, field);                       \
		KV(key, kx_buf_str(&b));                                  \
	} while (0)
	rc = 0;
	KV("ID", kx_cli_jstr(sw, "id"));
	KV("State", switch_state(sw));
	KV("Mode", kx_cli_jstr(sw, "mode"));
	KV("Selector", selector_text(sw));
	KV("Reason", kx_cli_jstr(sw, "reason"));
	KV("Set by", kx_cli_jstr(sw, "set_by"));
	KVT("Set at", "set_at");
	if (kx_cli_jstr(sw, "expires_at"))
		KVT("Expires", "expires_at");
	else
		KV("Expires", "when cleared");
	KV("Incident", kx_cli_jstr(sw, "incident"));
	kx_buf_clear(&b);
	if (json_is_object(ramp))
		rc = rc || add_ramp(&b, ramp);
	KV("Ramp", kx_buf_str(&b));
	if (kx_cli_jstr(sw, "cleared_at")) {
		KVT("Cleared", "cleared_at");
		KV("Cleared by", kx_cli_jstr(sw, "cleared_by"));
		KV("Clear reason", kx_cli_jstr(sw, "clear_reason"));
	}
#undef KV
#undef KVT
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

static int cmd_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = sexchange(cli, a, "GET", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = print_switch(json_object_get(ans, "switch"));
	json_decref(ans);
	return rc;
}

/* ---- watch ----------------------------------------------------------------- */

/* One `switch watch`: the SSE parser's state and the last switch set seen
 * (kept across reconnections, so that what changed while the stream was
 * down is printed when it is back). Invariants: line holds the current
 * unfinished line; data the data lines of the event being read, joined
 * with '\n'; prev is NULL until the first event, then an owned array. */
struct watch {
	const struct kx_cli *cli;
	CURL *h;
	long status;	  /* of the current connection, 0 until known */
	struct kx_buf line, data, event, errbody;
	int cr;		  /* the last byte was '\r' (a '\n' after it is the same end) */
	int events;	  /* events handled on this connection */
	int fatal;	  /* stop for good: the exit status */
	json_t *prev;
	long long version;
};

/* Prints "2026-11-25 14:31:02  v7  WHAT  <switch>" for one change: the
 * switch's ID, mode and selector, then for a switch in force its expiry
 * and reason, for a ramping one its ramp; nothing more once lifted. */
static int watch_line(const struct watch *w, const char *what, const json_t *sw)
{
	const char *reason = kx_cli_jstr(sw, "reason");
	const char *id = kx_cli_jstr(sw, "id"), *mode = kx_cli_jstr(sw, "mode");
	const json_t *ramp = json_object_get(sw, "ramp");
	struct kx_civil c;
	struct kx_buf b;
	int rc;

	kx_civil_from_ms(kx_now_ms(), &c);
	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b, "%04d-%02d-%02d %02d:%02d:%02d  v%lld  %s", c.year, c.month, c.day,
			 c.hour, c.min, c.sec, w->version, what);
	if (!rc && sw)
		rc = kx_buf_addf(&b, "  %s %s %s", id ? id : "?", mode ? mode : "?", selector_text(sw));
	if (!rc && sw && !strcmp(what, "ramping") && json_is_object(ramp))
		rc = kx_buf_adds(&b, ": ") || add_ramp(&b, ramp);
	else if (!rc && sw && strcmp(what, "lifted")) {
		if (kx_cli_jstr(sw, "expires_at"))
			rc = kx_buf_adds(&b, " until ") || kx_cli_add_time(&b, sw, "expires_at");
		if (!rc && reason)
			rc = kx_buf_addf(&b, " — %s", reason);
	}
	if (!rc)
		rc = kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc;
}

static const json_t *find_switch(const json_t *list, const char *id)
{
	json_t *sw;
	size_t i;

	json_array_foreach(list, i, sw)
		if (id && kx_cli_jstr(sw, "id") && !strcmp(kx_cli_jstr(sw, "id"), id))
			return sw;
	return NULL;
}

/* Prints what changed from w->prev to now: one line per switch set,
 * changed or gone. On the very first event, the switches in force. */
static int watch_diff(struct watch *w, const json_t *now)
{
	json_t *sw;
	size_t i;
	int rc = 0;

	if (!w->prev) {
		struct kx_buf b;

		kx_buf_init(&b, 0);
		rc = kx_buf_addf(&b, "connected: %zu switch%s in force", json_array_size(now),
				 json_array_size(now) == 1 ? "" : "es") ||
		     watch_line(w, kx_buf_str(&b), NULL);
		kx_buf_release(&b);
		json_array_foreach(now, i, sw)
			rc = rc || watch_line(w, json_is_object(json_object_get(sw, "ramp"))
						      ? "ramping" : "in force", sw);
		return rc;
	}
	json_array_foreach(now, i, sw) {
		const json_t *old = find_switch(w->prev, kx_cli_jstr(sw, "id"));
		int ramp = json_is_object(json_object_get(sw, "ramp"));

		if (!old)
			rc = rc || watch_line(w, ramp ? "ramping" : "set", sw);
		else if (!json_equal((json_t *)old, sw))
			rc = rc || watch_line(w, ramp ? "ramping" : "changed", sw);
	}
	json_array_foreach(w->prev, i, sw)
		if (!find_switch(now, kx_cli_jstr(sw, "id")))
			rc = rc || watch_line(w, "lifted", sw);
	return rc;
}

/* Handles one complete SSE event (the `switches` ones; others are
 * ignored, as the SSE rules say). */
static int watch_event(struct watch *w)
{
	json_t *ev, *list;
	int rc = 0;

	if (strcmp(kx_buf_str(&w->event), "switches") || !w->data.len)
		return 0;
	ev = json_loadb(kx_buf_str(&w->data), w->data.len, 0, NULL);
	list = json_object_get(ev, "switches");
	if (!json_is_array(list)) {
		json_decref(ev);
		fprintf(stderr, "klaxon: cannot parse an event of the switch stream\n");
		return 0; /* one bad event is not the end of the stream */
	}
	w->version = (long long)json_integer_value(json_object_get(ev, "version"));
	w->events++;
	if (w->cli->json) {
		char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);

		rc = !text || fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF;
		free(text);
	} else {
		rc = watch_diff(w, list);
	}
	if (!rc) {
		json_decref(w->prev);
		w->prev = json_incref(list);
	}
	json_decref(ev);
	if (fflush(stdout) == EOF)
		rc = 1;
	return rc;
}

/* One line of the stream (without its end). */
static int watch_field(struct watch *w)
{
	const char *s = kx_buf_str(&w->line), *colon, *value;
	size_t nlen;
	int rc = 0;

	if (!w->line.len) { /* a blank line ends the event */
		rc = watch_event(w);
		kx_buf_clear(&w->data);
		kx_buf_clear(&w->event);
		return rc;
	}
	if (s[0] == ':') /* a comment: the daemon's ping */
		return 0;
	colon = strchr(s, ':');
	nlen = colon ? (size_t)(colon - s) : strlen(s);
	value = colon ? colon + 1 : "";
	if (*value == ' ')
		value++;
	if (nlen == 5 && !strncmp(s, "event", 5)) {
		kx_buf_clear(&w->event);
		return kx_buf_adds(&w->event, value);
	}
	if (nlen == 4 && !strncmp(s, "data", 4) &&
	    ((w->data.len && kx_buf_addc(&w->data, '\n')) || kx_buf_adds(&w->data, value)))
		return KX_ENOMEM;
	return 0; /* id, retry and unknown fields */
}

static size_t watch_write(char *p, size_t size, size_t n, void *ud)
{
	struct watch *w = ud;
	size_t len = size * n;

	if (!w->status)
		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->status < 200 || w->status > 299) {
		kx_buf_add(&w->errbody, p, len); /* too long: cut */
		return len;
	}
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\n' && w->cr) {
			w->cr = 0;
			continue;
		}
		w->cr = c == '\r';
		if (c == '\n' || c == '\r') {
			int rc = watch_field(w);

			kx_buf_clear(&w->line);
			if (rc) {
				if (ferror(stdout)) {
					fprintf(stderr, "klaxon: cannot write to standard output\n");
					w->fatal = KX_CLI_FAIL;
				} else {
					w->fatal = kx_cli_oom();
				}
				return 0;
			}
		} else if (kx_buf_addc(&w->line, c)) {
			w->fatal = kx_cli_oom();
			return 0;
		}
	}
	return len;
}

/* "the daemon's message" of an error answer, else "HTTP <status>". */
static void answer_message(const struct watch *w, struct kx_err *err)
{
	json_t *root = json_loadb(kx_buf_str(&w->errbody), w->errbody.len, 0, NULL);
	const char *msg = kx_cli_jstr(json_object_get(root, "error"), "message");

	if (msg && *msg)
		kx_err_set(err, KX_EIO, "%s", msg);
	else
		kx_err_set(err, KX_EIO, "HTTP %ld", w->status);
	json_decref(root);
}

/* One connection: follows the stream until it ends. Returns 0 when it
 * ended (or could not start) in a way worth retrying, err saying why;
 * otherwise sets w->fatal. */
static int watch_connect(struct watch *w, struct curl_slist *headers, const char *url,
			 struct kx_err *err)
{
	char ebuf[CURL_ERROR_SIZE];
	CURLcode cc;

	ebuf[0] = '\0';
	w->status = 0;
	w->events = 0;
	w->cr = 0;
	kx_buf_clear(&w->line);
	kx_buf_clear(&w->data);
	kx_buf_clear(&w->event);
	kx_buf_clear(&w->errbody);
	if (!(w->h = curl_easy_init())) {
		w->fatal = kx_cli_oom();
		return 0;
	}
	curl_easy_setopt(w->h, CURLOPT_URL, url);
	curl_easy_setopt(w->h, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(w->h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(w->h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(w->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(w->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->h, CURLOPT_CONNECTTIMEOUT, KX_HTTP_TIMEOUT_S);
	/* No overall timeout: the stream is meant to last. Silence is. */
	curl_easy_setopt(w->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(w->h, CURLOPT_LOW_SPEED_TIME, WATCH_SILENCE_S);
	curl_easy_setopt(w->h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(w->h, CURLOPT_USERAGENT, "klaxon/" KX_VERSION);
	curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	cc = curl_easy_perform(w->h);
	if (!w->status)
		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
	curl_easy_cleanup(w->h);
	w->h = NULL;
	if (w->fatal)
		return 0;
	if (w->status && (w->status < 200 || w->status > 299)) {
		answer_message(w, err);
		/* 5xx may pass (the store is back); 4xx will not. */
		if (w->status < 500)
			w->fatal = kx_cli_fail(err);
		return 0;
	}
	if (cc != CURLE_OK) {
		size_t n = strlen(ebuf);

		while (n && (ebuf[n - 1] == '\n' || ebuf[n - 1] == '\r'))
			ebuf[--n] = '\0';
		kx_err_set(err, KX_EIO, "%s", n ? ebuf : curl_easy_strerror(cc));
	} else {
		kx_err_set(err, KX_EIO, "the daemon closed the stream");
	}
	return 0;
}

static int cmd_watch(struct kx_cli *cli, const struct kx_args *a)
{
	struct curl_slist *headers = NULL, *l;
	struct kx_buf url, auth;
	struct watch w;
	int backoff = WATCH_BACKOFF_MIN_S, ever = 0;

	(void)a;
	memset(&w, 0, sizeof(w));
	w.cli = cli;
	kx_buf_init(&w.line, WATCH_MAX_EVENT);
	kx_buf_init(&w.data, WATCH_MAX_EVENT);
	kx_buf_init(&w.event, 256);
	kx_buf_init(&w.errbody, (size_t)64 << 10);
	kx_buf_init(&url, 0);
	kx_buf_init(&auth, 0);
	if (kx_buf_addf(&url, "%s/v1/switches/stream", cli->url) ||
	    (cli->token && kx_buf_addf(&auth, "Authorization: Bearer %s", cli->token)) ||
	    !(l = curl_slist_append(headers, "Accept: text/event-stream")) ||
	    !(headers = l) || (auth.len && !(l = curl_slist_append(headers, kx_buf_str(&auth)))) ||
	    !(headers = l)) {
		w.fatal = kx_cli_oom();
		goto out;
	}
	for (;;) {
		struct kx_err err;
		struct timespec ts;

		kx_err_clear(&err);
		watch_connect(&w, headers, kx_buf_str(&url), &err);
		if (w.fatal)
			break;
		if (w.events) {
			ever = 1;
			backoff = WATCH_BACKOFF_MIN_S;
		} else if (!ever) {
			/* Never connected: nothing to follow, say so and stop. */
			struct kx_err e;

			kx_err_set(&e, KX_EIO, "cannot reach klaxond at %s: %s", cli->url, err.msg);
			w.fatal = kx_cli_fail(&e);
			break;
		}
		fprintf(stderr, "klaxon: switch stream lost (%s); reconnecting in %ds\n", err.msg,
			backoff);
		ts.tv_sec = backoff;
		ts.tv_nsec = 0;
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_S ? WATCH_BACKOFF_MAX_S : backoff * 2;
	}
out:
	curl_slist_free_all(headers);
	json_decref(w.prev);
	kx_buf_release(&w.line);
	kx_buf_release(&w.data);
	kx_buf_release(&w.event);
	kx_buf_release(&w.errbody);
	kx_buf_release(&url);
	kx_buf_release(&auth);
	return w.fatal;
}

/* ---- the command tree ------------------------------------------------------ */

#define MODE_HELP "block (default: deny everything), approve (side effects need a human) or read_only"
#define EXPIRES_HELP "lift it by itself after a duration (2h) or at an RFC 3339 time"

static const struct kx_opt stop_opts[] = {
	{"client", KX_OPT_VALUE, "CLIENT", 0, "only this client's actions"},
	{"platform", KX_OPT_VALUE, "PLATFORM", 0, "only actions on this platform"},
	{"account", KX_OPT_VALUE, "ACCOUNT", 0, "only this account's actions"},
	{"lane", KX_OPT_VALUE, "LANE", 0, "only this lane (api, browser)"},
	{"action", KX_OPT_VALUE, "ACTION", 0, "only this kind of action (comment, dm, publish…)"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "only actions carrying this label"},
	{"selector", KX_OPT_VALUE, "SELECTOR", 0, "a selector added to the filters, e.g. 'action in (dm,comment)'"},
	{"all", KX_OPT_BOOL, NULL, 0, "stop every action of every client (needed when no filter is given)"},
	{"reason", KX_OPT_VALUE, "TEXT", 1, "why; shown to whoever the stop blocks"},
	{"mode", KX_OPT_VALUE, "MODE", 0, MODE_HELP},
	{"expires", KX_OPT_VALUE, "WHEN", 0, EXPIRES_HELP},
	{"incident", KX_OPT_VALUE, "ID", 0, "the incident it belongs to (recorded on its timeline)"},
	{0},
};

static const struct kx_opt resume_opts[] = {
	{"ramp", KX_OPT_VALUE, "DURATION", 0, "lift gradually over DURATION (default: at once)"},
	{"floor", KX_OPT_VALUE, "N", 0, "actions per window at the start of the ramp (default from config)"},
	{"peak", KX_OPT_VALUE, "N", 0, "actions per window at the end of the ramp (default from config)"},
	{"window", KX_OPT_VALUE, "DURATION", 0, "the ramp's counting window, e.g. 1m (default from config)"},
	{"reason", KX_OPT_VALUE, "TEXT", 0, "why it is safe again"},
	{0},
};

static const struct kx_opt list_opts[] = {
	{"all", KX_OPT_BOOL, NULL, 0, "also switches cleared, expired or lifted"},
	{0},
};

static const struct kx_opt set_opts[] = {
	{"selector", KX_OPT_VALUE, "SELECTOR", 1, "which actions, e.g. 'client=acme,action in (dm,comment)'"},
	{"mode", KX_OPT_VALUE, "MODE", 1, "block, approve or read_only"},
	{"reason", KX_OPT_VALUE, "TEXT", 1, "why; shown to whoever the switch blocks"},
	{"expires", KX_OPT_VALUE, "WHEN", 0, EXPIRES_HELP},
	{"incident", KX_OPT_VALUE, "ID", 0, "the incident it belongs to"},
	{"all", KX_OPT_BOOL, NULL, 0, "confirm that an empty selector (everything) is meant"},
	{0},
};

static const struct kx_opt clear_opts[] = {
	{"reason", KX_OPT_VALUE, "TEXT", 0, "why it is lifted"},
	{0},
};

static const struct kx_opt no_opts[] = {{0}};
static const char *const args_switch[] = {"SWITCH_ID", NULL};

const struct kx_cmd kx_cli_stop = {
	.name = "stop",
	.summary = "emergency stop: block a client, platform, account, lane or action",
	.usage = "[--client X] [--platform Y] [--account A] [--lane L] [--action A] [--label k=v]... "
		 "[--selector S] [--all] --reason TEXT [--mode block|approve|read_only] [--expires 2h] "
		 "[--incident ID]",
	.description = "Set a kill switch over every action that matches all the filters given; the gate "
		       "refuses them from now on. With no filter at all the stop covers everything, "
		       "which needs --all. Prints the switch's ID.",
	.opts = stop_opts,
	.example = "klaxon stop --client acme --platform instagram --reason \"duplicate comments\" --incident INC-20261125-001",
	.run = cmd_stop,
};

const struct kx_cmd kx_cli_resume = {
	.name = "resume",
	.summary = "lift a stop, at once or ramping up",
	.usage = "SWITCH_ID [--ramp 30m] [--floor N] [--peak N] [--window 1m] [--reason TEXT]",
	.description = "Lift a kill switch. With --ramp the actions it covered are let through "
		       "gradually: a limit per window that grows from --floor to --peak over the ramp.",
	.args = args_switch,
	.opts = resume_opts,
	.example = "klaxon resume sw_4f1c2a9e0b7d3c65 --ramp 30m --reason \"dedupe fixed\"",
	.run = cmd_resume,
};

static const struct kx_cmd list = {
	.name = "list",
	.summary = "list the switches in force",
	.usage = "[--all]",
	.description = "List the kill switches in force (with --all: every switch ever set).",
	.opts = list_opts,
	.example = "klaxon switch list",
	.run = cmd_list,
};

static const struct kx_cmd show = {
	.name = "show",
	.summary = "show a switch",
	.usage = "SWITCH_ID",
	.description = "Show a kill switch: what it covers, who set it and why, its ramp and how it ended.",
	.args = args_switch,
	.opts = no_opts,
	.example = "klaxon switch show sw_4f1c2a9e0b7d3c65",
	.run = cmd_show,
};

static const struct kx_cmd set = {
	.name = "set",
	.summary = "set a switch from a selector",
	.usage = "--selector S --mode block|approve|read_only --reason TEXT [--expires D] [--incident ID] [--all]",
	.description = "Set a kill switch over the actions a selector matches (see 'klaxon stop' for "
		       "the label form). An empty selector covers everything and needs --all.",
	.opts = set_opts,
	.example = "klaxon switch set --selector 'client=acme,action in (dm,comment)' --mode approve --reason \"review replies\"",
	.run = cmd_set,
};

static const struct kx_cmd clear = {
	.name = "clear",
	.summary = "lift a switch at once",
	.usage = "SWITCH_ID [--reason TEXT]",
	.description = "Lift a kill switch now; it stays on record (switch list --all).",
	.args = args_switch,
	.opts = clear_opts,
	.example = "klaxon switch clear sw_4f1c2a9e0b7d3c65 --reason \"false alarm\"",
	.run = cmd_clear,
};

static const struct kx_cmd watch = {
	.name = "watch",
	.summary = "follow switch changes as they happen",
	.usage = "",
	.description = "Follow the switch stream: print the switches in force, then one line per "
		       "switch set, changed or lifted, until interrupted. Reconnects when the stream "
		       "drops. With --json, one line of JSON per update.",
	.opts = no_opts,
	.example = "klaxon switch watch",
	.run = cmd_watch,
};

static const struct kx_cmd *const switch_children[] = {&list, &show, &set, &clear, &watch, NULL};

const struct kx_cmd kx_cli_switch = {
	.name = "switch",
	.summary = "list, set, clear and watch kill switches",
	.usage = "COMMAND [ARGS]",
	.description = "Kill switches: what the gate refuses (block), lets through read-only "
		       "(read_only) or hands to a human (approve). 'klaxon stop' and 'klaxon resume' "
		       "are the quick forms.",
	.children = switch_children,
};
