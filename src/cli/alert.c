/* klaxon alert …, silence …, service …, integration …, heartbeat …,
 * notification …: detection. Sources (Alertmanager, PagerDuty Events v2
 * clients, anything that posts JSON, heartbeats) report alerts on a
 * service with an integration key; routing turns them into incidents,
 * silences mute them, and the delivery log says what was sent about them. */
#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Width of the longest key in the show commands ("Acknowledged",
 * "Next attempt", "Expected end"). */
#define SHOW_KEYW 12
/* Summaries, matchers and comments are cut to these in tables. */
#define SUMMARY_MAX 40
#define CELL_MAX 40
/* The most rows the API gives in one list (its `limit`). */
#define LIMIT_MAX 1000
/* The most firing alerts GET /v1/services/{name} includes. */
#define SERVICE_FIRING_MAX 100

/* ---- helpers ------------------------------------------------------------- */

/* Prints "<id>: <what>" with the ID the daemon answered, else the one
 * given. */
static int confirm(const char *id, const char *given, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int confirm(const char *id, const char *given, const char *fmt, ...)
{
	struct kx_buf b;
	va_list ap;
	int rc;

	kx_buf_init(&b, 0);
	va_start(ap, fmt);
	rc = kx_buf_addf(&b, "%s: ", id ? id : given) || kx_buf_addvf(&b, fmt, ap);
	va_end(ap);
	if (!rc)
		rc = kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* Checks that VALUE flag `flag`, when given, is one of choices
 * (NULL-terminated); `expected` lists them for the message. */
static int check_choice(const struct kx_args *a, const char *flag, const char *const *choices,
			const char *expected)
{
	const char *v = kx_args_get(a, flag);

	if (!v)
		return 0;
	for (size_t i = 0; choices[i]; i++)
		if (!strcmp(v, choices[i]))
			return 0;
	return kx_cli_usage(a, "invalid value '%s' for '--%s': expected %s", v, flag, expected);
}

/* Checks that the VALUE flags named (NULL-terminated), when given, are not
 * empty: an empty filter would match nothing rather than everything. */
static int check_nonempty(const struct kx_args *a, const char *const *flags)
{
	for (size_t i = 0; flags[i]; i++) {
		const char *v = kx_args_get(a, flags[i]);

		if (v && !*v)
			return kx_cli_usage(a, "invalid value '' for '--%s': expected a value", flags[i]);
	}
	return 0;
}

/* Appends "?flag=value&…" for each VALUE flag of flags (NULL-terminated)
 * that was given; the query keys are the flag names. */
static int add_query(struct kx_buf *path, const struct kx_args *a, const char *const *flags)
{
	for (size_t i = 0; flags[i]; i++) {
		const char *v = kx_args_get(a, flags[i]);

		if (v && kx_http_query_add(path, flags[i], v))
			return KX_ENOMEM;
	}
	return 0;
}

/* GETs path and hands the list member `member` of the answer to print,
 * unless --json (then the answer is printed as it came). */
static int list_and_print(const struct kx_cli *cli, const char *path, const char *member,
			  int (*print)(const json_t *list, const struct kx_args *a),
			  const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange(cli, "GET", path, NULL, &ans);

	if (!rc && !cli->json)
		rc = print(json_object_get(ans, member), a);
	json_decref(ans);
	return rc;
}

/* Appends s cut to max (>= 1) code points, the last being "…" when cut. */
static int add_cut(struct kx_buf *b, const char *s, size_t max)
{
	size_t n = 0, keep = 0;

	for (size_t i = 0; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (n == max - 1)
			keep = i;
		if (n++ == max)
			return kx_buf_add(b, s, keep) || kx_buf_adds(b, "…");
	}
	return kx_buf_adds(b, s);
}

/* Appends s as one shell word: as it is when no shell treats any of its
 * characters specially, else in single quotes. */
static int add_shell_word(struct kx_buf *b, const char *s)
{
	static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789-_./:=@%+,";

	if (*s && strspn(s, plain) == strlen(s))
		return kx_buf_adds(b, s);
	if (kx_buf_addc(b, '\''))
		return KX_ENOMEM;
	for (const char *p = s; *p; p++)
		if (*p == '\'' ? kx_buf_adds(b, "'\\''") : kx_buf_addc(b, *p))
			return KX_ENOMEM;
	return kx_buf_addc(b, '\'');
}

/* Appends s as a single-quoted YAML scalar. */
static int add_yaml_string(struct kx_buf *b, const char *s)
{
	if (kx_buf_addc(b, '\''))
		return KX_ENOMEM;
	for (const char *p = s; *p; p++)
		if ((*p == '\'' && kx_buf_addc(b, '\'')) || kx_buf_addc(b, *p))
			return KX_ENOMEM;
	return kx_buf_addc(b, '\'');
}

/* The time o[key] in milliseconds, or -1 when absent or unparsable. */
static kx_ms time_of(const json_t *o, const char *key)
{
	const char *s = kx_cli_jstr(o, key);
	kx_ms t;

	return s && !kx_time_parse(s, &t) ? t : -1;
}

/* Appends the time o[key] to the second ("2026-12-01 21:31:22 UTC"):
 * delivery attempts a few seconds apart would all read the same to the
 * minute. Unparsable: as it is; absent: nothing. */
static int add_time_s(struct kx_buf *b, const json_t *o, const char *key)
{
	const char *s = kx_cli_jstr(o, key);
	struct kx_civil c;
	kx_ms t;

	if (!s)
		return 0;
	if (kx_time_parse(s, &t))
		return kx_buf_adds(b, s);
	kx_civil_from_ms(t, &c);
	return kx_buf_addf(b, "%04d-%02d-%02d %02d:%02d:%02d UTC", c.year, c.month, c.day, c.hour,
			   c.min, c.sec);
}

static void time_s_cell(struct kx_table *t, const json_t *o, const char *key)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	add_time_s(&b, o, key); /* ENOMEM: "-" */
	kx_table_cell(t, b.len ? kx_buf_str(&b) : NULL);
	kx_buf_release(&b);
}

/* One line of a show command: label, then member key of the object. */
struct show_row {
	const char *label;
	const char *key;
	char kind;	/* 't' text, 'l' one item per line, 'T' time, 'S' time to
			 * the second, 'j' JSON, 'c' a reply code (0: none) */
	const char *by; /* 'T': a member naming who, shown as "TIME by WHO" */
};

static int add_row_value(struct kx_buf *b, const json_t *o, const struct show_row *r)
{
	const json_t *v = json_object_get(o, r->key);
	const char *by = r->by ? kx_cli_jstr(o, r->by) : NULL;
	char *text;
	int rc;

	switch (r->kind) {
	case 'T':
		if (kx_cli_add_time(b, o, r->key))
			return KX_ENOMEM;
		return b->len && by && *by ? kx_buf_addf(b, " by %s", by) : 0;
	case 'S':
		return add_time_s(b, o, r->key);
	case 'j':
		if (!v || json_is_null(v) || (json_is_object(v) && !json_object_size(v)))
			return 0;
		if (!(text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
			return KX_ENOMEM;
		rc = kx_buf_adds(b, text);
		free(text);
		return rc;
	case 'c':
		return json_integer_value(v) ? kx_cli_jtext(b, v, ", ") : 0;
	case 'l':
		return kx_cli_jtext(b, v, "\n");
	default:
		return kx_cli_jtext(b, v, ", ");
	}
}

/* Prints rows[0..n) of o as "Label:  value" lines. */
static int print_rows(const json_t *o, const struct show_row *rows, size_t n)
{
	struct kx_buf b;
	int rc = 0;

	kx_buf_init(&b, 0);
	for (size_t i = 0; !rc && i < n; i++) {
		kx_buf_clear(&b);
		rc = add_row_value(&b, o, &rows[i]) ||
		     kx_out_kv(stdout, SHOW_KEYW, rows[i].label, kx_buf_str(&b));
	}
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* Prints "\nTITLE" and, when list is empty, "  none". Returns whether it
 * was empty. */
static int section(const char *title, const json_t *list)
{
	printf("\n%s\n", title);
	if (json_array_size(list))
		return 0;
	printf("  none\n");
	return 1;
}

static const char *const levels[] = {"critical", "error", "warning", "info", NULL};
#define LEVELS_TEXT "critical, error, warning or info"

/* ---- alerts -------------------------------------------------------------- */

/* "acked, silenced, noise": what people or a silence did to an alert. */
static int add_flags(struct kx_buf *b, const json_t *al)
{
	if (kx_cli_jstr(al, "acked_at") && kx_buf_adds(b, "acked"))
		return KX_ENOMEM;
	if (kx_cli_jstr(al, "silenced_by") && kx_buf_adds(b, b->len ? ", silenced" : "silenced"))
		return KX_ENOMEM;
	if (json_is_true(json_object_get(al, "noise")) && kx_buf_adds(b, b->len ? ", noise" : "noise"))
		return KX_ENOMEM;
	return 0;
}

static int any_flags(const json_t *list)
{
	struct kx_buf b;
	json_t *al;
	size_t i;
	int any = 0;

	kx_buf_init(&b, 0);
	json_array_foreach(list, i, al) {
		kx_buf_clear(&b);
		add_flags(&b, al);
		any = any || b.len;
	}
	kx_buf_release(&b);
	return any;
}

/* The alerts table. brief (for `service show`): without the STATUS and
 * SERVICE columns, all being the service's firing alerts. The FLAGS
 * column is there when some alert has a flag. */
static int print_alert_table(const json_t *list, int brief, size_t indent)
{
	static const char *const full[] = {"ID",    "STATUS",   "LEVEL",     "SERVICE", "SUMMARY",
					   "COUNT", "INCIDENT", "LAST SEEN", "FLAGS"};
	static const char *const part[] = {"ID",	"LEVEL",     "SUMMARY", "COUNT",
					   "INCIDENT", "LAST SEEN", "FLAGS"};
	int flags = any_flags(list);
	struct kx_table *t;
	struct kx_buf b;
	json_t *al;
	size_t i;

	t = kx_table_new((brief ? 7 : 9) - (flags ? 0 : 1), brief ? part : full);
	if (!t)
		return kx_cli_oom();
	kx_table_set_indent(t, indent);
	kx_table_set_max(t, brief ? 2 : 4, SUMMARY_MAX);
	kx_buf_init(&b, 0);
	json_array_foreach(list, i, al) {
		kx_cli_jcell(t, al, "id", ",");
		if (!brief)
			kx_table_cell(t, kx_cli_jstr(al, "status"));
		kx_table_cell(t, kx_cli_jstr(al, "level"));
		if (!brief)
			kx_table_cell(t, kx_cli_jstr(al, "service"));
		kx_table_cell(t, kx_cli_jstr(al, "summary"));
		kx_cli_jcell(t, al, "count", ",");
		kx_table_cell(t, kx_cli_jstr(al, "incident"));
		kx_cli_time_cell(t, al, "last_seen");
		if (flags) {
			kx_buf_clear(&b);
			add_flags(&b, al); /* ENOMEM: "-" */
			kx_table_cell(t, b.len ? kx_buf_str(&b) : "");
		}
	}
	kx_buf_release(&b);
	return kx_cli_print_table(t);
}

static int print_alert_list(const json_t *list, const struct kx_args *a)
{
	const char *status = kx_args_get(a, "status");
	const char *limit = kx_args_get(a, "limit");
	long long max = 100; /* the API's default */
	int rc;

	if (!status)
		status = "firing";
	if (json_array_size(list) == 0) {
		printf(!strcmp(status, "all") ? "no alerts\n" : "no %s alerts\n", status);
		return KX_CLI_OK;
	}
	if ((rc = print_alert_table(list, 0, 0)))
		return rc;
	if (limit)
		kx_cli_parse_count(limit, &max); /* checked before the request */
	if ((long long)json_array_size(list) >= max && max < LIMIT_MAX)
		printf("(the newest %lld shown: raise --limit, up to %d, or narrow with --since for more)\n",
		       max, LIMIT_MAX);
	return KX_CLI_OK;
}

static int cmd_alert_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const statuses[] = {"firing", "resolved", "all", NULL};
	static const char *const texts[] = {"service", "incident", NULL};
	static const char *const query[] = {"service", "incident", "since", "limit", NULL};
	const char *status = kx_args_get(a, "status");
	struct kx_buf path;
	int rc;

	if ((rc = check_choice(a, "status", statuses, "firing, resolved or all")) ||
	    (rc = check_nonempty(a, texts)) || (rc = kx_cli_check_when(a, "since")) ||
	    (rc = kx_cli_check_limit(a, LIMIT_MAX)))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_buf_adds(&path, "/v1/alerts") ||
	    kx_http_query_add(&path, "status", status ? status : "firing") ||
	    add_query(&path, a, query))
		rc = kx_cli_oom();
	else
		rc = list_and_print(cli, kx_buf_str(&path), "alerts", print_alert_list, a);
	kx_buf_release(&path);
	return rc;
}

/* Alert IDs are numbers; anything else is a usage error, not a 404. */
static int check_alert_id(const struct kx_args *a)
{
	long long n;

	if (kx_cli_parse_count(a->pos[0], &n) || n < 1)
		return kx_cli_usage(a, "invalid alert ID '%s': expected a number such as 42", a->pos[0]);
	return 0;
}

static int print_alert(const json_t *al)
{
	static const struct show_row rows[] = {
		{"ID", "id", 't', NULL},
		{"Summary", "summary", 't', NULL},
		{"Status", "status", 't', NULL},
		{"Level", "level", 't', NULL},
		{"Severity", "severity", 't', NULL},
		{"Service", "service", 't', NULL},
		{"Incident", "incident", 't', NULL},
		{"Route", "route", 't', NULL},
		{"Source", "source", 't', NULL},
		{"Host", "source_host", 't', NULL},
		{"Component", "component", 't', NULL},
		{"Group", "group", 't', NULL},
		{"Class", "class", 't', NULL},
		{"Dedup key", "dedup_key", 't', NULL},
		{"Labels", "labels", 'l', NULL},
		{"Details", "details", 'j', NULL},
		{"Count", "count", 't', NULL},
		{"Started", "starts_at", 'T', NULL},
		{"First seen", "first_seen", 'T', NULL},
		{"Last seen", "last_seen", 'T', NULL},
		{"Expected end", "ends_at", 'T', NULL},
		{"Acknowledged", "acked_at", 'T', "acked_by"},
		{"Resolved", "resolved_at", 'T', "resolved_by"},
		{"Silenced by", "silenced_by", 't', NULL},
		{"Noise", "noise", 't', NULL},
	};

	return print_rows(al, rows, sizeof(rows) / sizeof(rows[0]));
}

static int cmd_alert_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc;

	if ((rc = check_alert_id(a)))
		return rc;
	rc = kx_cli_exchange_id(cli, a, "alert ID", "alerts", "GET", "", NULL, &ans);
	if (!rc && !cli->json)
		rc = print_alert(ans);
	json_decref(ans);
	return rc;
}

/* POSTs an action on the alert and confirms it: "alert 42: WHAT — SUMMARY". */
static int alert_act(struct kx_cli *cli, const struct kx_args *a, const char *suffix,
		     const json_t *body, const char *what)
{
	const char *summary;
	struct kx_buf line;
	json_t *ans = NULL;
	int rc;

	if ((rc = check_alert_id(a)))
		return rc;
	rc = kx_cli_exchange_id(cli, a, "alert ID", "alerts", "POST", suffix, body, &ans);
	if (rc || cli->json)
		goto out;
	summary = kx_cli_jstr(ans, "summary");
	kx_buf_init(&line, 0);
	if (kx_buf_addf(&line, "alert %s: %s", a->pos[0], what) ||
	    (summary && *summary && (kx_buf_adds(&line, " — ") || add_cut(&line, summary, SUMMARY_MAX))) ||
	    kx_out_line(stdout, kx_buf_str(&line)))
		rc = kx_cli_oom();
	kx_buf_release(&line);
out:
	json_decref(ans);
	return rc;
}

static int cmd_alert_ack(struct kx_cli *cli, const struct kx_args *a)
{
	return alert_act(cli, a, "/acknowledge", NULL, "acknowledged");
}

static int cmd_alert_resolve(struct kx_cli *cli, const struct kx_args *a)
{
	return alert_act(cli, a, "/resolve", NULL, "resolved");
}

static int cmd_alert_noise(struct kx_cli *cli, const struct kx_args *a)
{
	int undo = kx_args_has(a, "undo");
	json_t *body = json_pack("{s:b}", "noise", !undo);
	int rc;

	if (!body)
		return kx_cli_oom();
	rc = alert_act(cli, a, "/noise", body, undo ? "no longer marked as noise" : "marked as noise");
	json_decref(body);
	return rc;
}

/* ---- silences ------------------------------------------------------------ */

/* Builds the body of POST /v1/silences from the flags: the --match values
 * joined with ',', the end (--for as duration, --until as ends_at), the
 * start, the comment and the kind. Returns 0 or an exit status. */
static int silence_body(const struct kx_args *a, json_t **out)
{
	const char *dur = kx_args_get(a, "for"), *until = kx_args_get(a, "until");
	size_t n;
	const char *const *match = kx_args_list(a, "match", &n);
	struct kx_buf m;
	json_t *body;
	int rc;

	*out = NULL;
	if ((rc = kx_cli_check_duration(a, "for")) || (rc = kx_cli_check_time(a, "until")) ||
	    (rc = kx_cli_check_time(a, "starts")))
		return rc;
	if (dur && until)
		return kx_cli_usage(a, "give --for or --until, not both");
	if (!dur && !until)
		return kx_cli_usage(a, "a silence needs an end: give --for DURATION or --until TIME");
	kx_buf_init(&m, 0);
	for (size_t i = 0; i < n; i++) {
		if (strspn(match[i], " \t") == strlen(match[i])) {
			kx_buf_release(&m);
			return kx_cli_usage(a, "invalid value '%s' for '--match': expected a matcher such as alertname=\"DiskFull\"",
					    match[i]);
		}
		if ((i && kx_buf_addc(&m, ',')) || kx_buf_adds(&m, match[i])) {
			kx_buf_release(&m);
			return kx_cli_oom();
		}
	}
	body = json_pack("{s:s, s:s*, s:s*, s:s*, s:s*, s:s}", "matchers", kx_buf_str(&m),
			 "duration", dur, "ends_at", until, "starts_at", kx_args_get(a, "starts"),
			 "comment", kx_args_get(a, "comment"), "kind",
			 kx_args_has(a, "maintenance") ? "maintenance" : "silence");
	kx_buf_release(&m);
	if (!body)
		return kx_cli_oom();
	*out = body;
	return 0;
}

/* "sil_…: silencing alertname="X" until TIME", "sil_…: will silence …
 * from TIME until TIME", "sil_…: maintenance window for … until TIME". */
static int confirm_silence(const json_t *s)
{
	const char *kind = kx_cli_jstr(s, "kind"), *id = kx_cli_jstr(s, "id");
	int maint = kind && !strcmp(kind, "maintenance");
	int later = time_of(s, "starts_at") > time_of(s, "created_at");
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b, "%s: %s %s", id ? id : "?",
			 maint ? "maintenance window for" : later ? "will silence" : "silencing",
			 kx_cli_jstr(s, "matchers") ? kx_cli_jstr(s, "matchers") : "?") ||
	     (later && (kx_buf_adds(&b, " from ") || kx_cli_add_time(&b, s, "starts_at"))) ||
	     kx_buf_adds(&b, " until ") || kx_cli_add_time(&b, s, "ends_at") ||
	     kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

static int cmd_silence_create(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body, *ans = NULL;
	int rc;

	if ((rc = silence_body(a, &body)))
		return rc;
	rc = kx_cli_exchange(cli, "POST", "/v1/silences", body, &ans);
	if (!rc && !cli->json)
		rc = confirm_silence(ans);
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* active, expired (ended early by a person), scheduled or ended. */
static const char *silence_state(const json_t *s, kx_ms now)
{
	if (json_is_true(json_object_get(s, "active")))
		return "active";
	if (kx_cli_jstr(s, "expired_at"))
		return "expired";
	return time_of(s, "starts_at") > now ? "scheduled" : "ended";
}

static int print_silences(const json_t *list, const struct kx_args *a)
{
	static const char *const head[] = {"ID",      "KIND",	    "MATCHERS", "STARTS",
					   "ENDS",    "COMMENT",    "CREATED BY", "STATE"};
	int all = kx_args_has(a, "all");
	kx_ms now = kx_now_ms();
	struct kx_table *t;
	json_t *s;
	size_t i;

	if (json_array_size(list) == 0) {
		printf(all ? "no silences\n" : "no silences in force\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(all ? 8 : 7, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 2, SUMMARY_MAX);
	kx_table_set_max(t, 5, CELL_MAX);
	json_array_foreach(list, i, s) {
		kx_table_cell(t, kx_cli_jstr(s, "id"));
		kx_table_cell(t, kx_cli_jstr(s, "kind"));
		kx_table_cell(t, kx_cli_jstr(s, "matchers"));
		kx_cli_time_cell(t, s, "starts_at");
		kx_cli_time_cell(t, s, "ends_at");
		kx_table_cell(t, kx_cli_jstr(s, "comment"));
		kx_table_cell(t, kx_cli_jstr(s, "created_by"));
		if (all)
			kx_table_cell(t, silence_state(s, now));
	}
	return kx_cli_print_table(t);
}

static int cmd_silence_list(struct kx_cli *cli, const struct kx_args *a)
{
	return list_and_print(cli, kx_args_has(a, "all") ? "/v1/silences?all=true" : "/v1/silences",
			      "silences", print_silences, a);
}

static int cmd_silence_expire(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "silence ID", "silences", "POST", "/expire", NULL, &ans);

	if (!rc && !cli->json)
		rc = confirm(kx_cli_jstr(ans, "id"), a->pos[0], "expired: alerts matching %s notify again",
			     kx_cli_jstr(ans, "matchers") ? kx_cli_jstr(ans, "matchers") : "it");
	json_decref(ans);
	return rc;
}

/* ---- services ------------------------------------------------------------ */

static int cmd_service_create(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = json_pack("{s:s, s:s*}", "name", a->pos[0], "description",
				 kx_args_get(a, "description"));
	json_t *labels = NULL, *ans = NULL;
	int rc;

	if (!body)
		return kx_cli_oom();
	if (kx_args_has(a, "label")) {
		labels = json_object();
		if (!labels || json_object_set_new(body, "labels", labels)) {
			rc = kx_cli_oom();
			goto out;
		}
		if ((rc = kx_cli_labels(a, "label", labels)))
			goto out;
	}
	rc = kx_cli_exchange(cli, "POST", "/v1/services", body, &ans);
	if (!rc && !cli->json)
		rc = confirm(kx_cli_jstr(ans, "name"), a->pos[0], "service created");
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

static const char *defined_in(const json_t *s)
{
	return json_is_true(json_object_get(s, "from_config")) ? "config" : "api";
}

static int print_services(const json_t *list, const struct kx_args *a)
{
	static const char *const head[] = {"NAME", "DESCRIPTION", "LABELS", "SOURCE", "CREATED"};
	struct kx_table *t;
	json_t *s;
	size_t i;

	(void)a;
	if (json_array_size(list) == 0) {
		printf("no services\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(5, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 1, SUMMARY_MAX);
	kx_table_set_max(t, 2, CELL_MAX);
	json_array_foreach(list, i, s) {
		kx_table_cell(t, kx_cli_jstr(s, "name"));
		kx_table_cell(t, kx_cli_jstr(s, "description"));
		kx_cli_jcell(t, s, "labels", ",");
		kx_table_cell(t, defined_in(s));
		kx_cli_time_cell(t, s, "created_at");
	}
	return kx_cli_print_table(t);
}

static int cmd_service_list(struct kx_cli *cli, const struct kx_args *a)
{
	return list_and_print(cli, "/v1/services", "services", print_services, a);
}

static int print_changes(const json_t *list)
{
	static const char *const head[] = {"AT", "SOURCE", "SUMMARY"};
	struct kx_table *t = kx_table_new(3, head);
	json_t *c;
	size_t i;

	if (!t)
		return kx_cli_oom();
	kx_table_set_indent(t, 2);
	kx_table_set_max(t, 2, KX_OUT_TITLE_MAX);
	json_array_foreach(list, i, c) {
		kx_cli_time_cell(t, c, "at");
		kx_table_cell(t, kx_cli_jstr(c, "source"));
		kx_table_cell(t, kx_cli_jstr(c, "summary"));
	}
	return kx_cli_print_table(t);
}

static int print_service(const json_t *s)
{
	static const struct show_row rows[] = {
		{"Name", "name", 't', NULL},
		{"Description", "description", 't', NULL},
		{"Labels", "labels", 't', NULL},
	};
	static const struct show_row created[] = {{"Created", "created_at", 'T', NULL}};
	const json_t *firing = json_object_get(s, "firing");
	const json_t *changes = json_object_get(s, "changes");
	int rc;

	if ((rc = print_rows(s, rows, sizeof(rows) / sizeof(rows[0]))))
		return rc;
	if (kx_out_kv(stdout, SHOW_KEYW, "Defined in",
		      json_is_true(json_object_get(s, "from_config")) ? "the config file (read-only)"
								      : "the API"))
		return kx_cli_oom();
	if ((rc = print_rows(s, created, 1)))
		return rc;
	if (!section("Firing alerts", firing) && (rc = print_alert_table(firing, 1, 2)))
		return rc;
	if (json_array_size(firing) >= SERVICE_FIRING_MAX) {
		struct kx_buf b;

		kx_buf_init(&b, 0);
		rc = kx_buf_addf(&b, "  (the newest %d: 'klaxon alert list --service %s --limit 1000' for more)",
				 SERVICE_FIRING_MAX,
				 kx_cli_jstr(s, "name") ? kx_cli_jstr(s, "name") : "NAME") ||
		     kx_out_line(stdout, kx_buf_str(&b));
		kx_buf_release(&b);
		if (rc)
			return kx_cli_oom();
	}
	if (!section("Recent changes", changes) && (rc = print_changes(changes)))
		return rc;
	return KX_CLI_OK;
}

static int cmd_service_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "service name", "services", "GET", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = print_service(ans);
	json_decref(ans);
	return rc;
}

/* ---- integrations -------------------------------------------------------- */

/* Prints a new secret so that it cannot be missed: what it is, that it is
 * shown once, then the key alone on an indented line. */
static int print_key(const char *what, const char *key)
{
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	printf("%s (shown only this once: klaxond keeps only its hash):\n\n", what);
	rc = kx_buf_addf(&b, "    %s", key) || kx_out_line(stdout, kx_buf_str(&b));
	printf("\n");
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* Prints the receiver for alertmanager.yml: the webhook URL and the key
 * as its bearer credentials. */
static int print_am_snippet(const char *service, const char *url, const char *key)
{
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b,
			 "\nAdd this receiver to alertmanager.yml and route alerts to it:\n\n"
			 "receivers:\n"
			 "  - name: klaxon-%s\n"
			 "    webhook_configs:\n"
			 "      - url: ",
			 service) ||
	     add_yaml_string(&b, url) ||
	     kx_buf_adds(&b, "\n"
			     "        send_resolved: true\n"
			     "        http_config:\n"
			     "          authorization:\n"
			     "            type: Bearer\n"
			     "            credentials: ") ||
	     add_yaml_string(&b, key);
	/* Lines of text from the daemon are cleaned one by one. */
	for (const char *p = kx_buf_str(&b), *nl; !rc; p = nl + 1) {
		struct kx_buf line;

		nl = strchr(p, '\n');
		kx_buf_init(&line, 0);
		rc = kx_buf_add(&line, p, nl ? (size_t)(nl - p) : strlen(p)) ||
		     kx_out_line(stdout, kx_buf_str(&line));
		kx_buf_release(&line);
		if (!nl)
			break;
	}
	kx_buf_release(&b);
	return rc;
}

static int print_integration_created(const json_t *in)
{
	static const struct {
		const char *key, *label;
	} urls[] = {
		{"webhook", "Webhook URL"}, {"api_v2", "API v2 URL"},	{"events", "Events URL"},
		{"change", "Changes URL"},  {"alerts", "Alerts URL"},
	};
	static const struct show_row rows[] = {
		{"ID", "id", 't', NULL},
		{"Service", "service", 't', NULL},
		{"Source", "source", 't', NULL},
		{"Name", "name", 't', NULL},
	};
	const char *key = kx_cli_jstr(in, "key"), *source = kx_cli_jstr(in, "source");
	const json_t *u = json_object_get(in, "urls");
	int rc;

	if (!key) {
		fprintf(stderr, "klaxon: the answer from klaxond has no 'key'\n");
		return KX_CLI_FAIL;
	}
	if ((rc = print_key("Integration key", key)) ||
	    (rc = print_rows(in, rows, sizeof(rows) / sizeof(rows[0]))))
		return rc;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		if (kx_cli_jstr(u, urls[i].key) &&
		    kx_out_kv(stdout, SHOW_KEYW, urls[i].label, kx_cli_jstr(u, urls[i].key)))
			return kx_cli_oom();
	if (source && !strcmp(source, "events-v2"))
		printf("\nSenders put the key in each event as \"routing_key\".\n");
	else if (source && !strcmp(source, "generic"))
		printf("\nSenders POST alerts as JSON to the Alerts URL (it carries the key), or to\n"
		       ".../v1/alerts with \"Authorization: Bearer KEY\".\n");
	if (source && !strcmp(source, "alertmanager") && kx_cli_jstr(u, "webhook") &&
	    print_am_snippet(kx_cli_jstr(in, "service") ? kx_cli_jstr(in, "service") : "klaxon",
			     kx_cli_jstr(u, "webhook"), key))
		return kx_cli_oom();
	return KX_CLI_OK;
}

static int cmd_integration_create(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const sources[] = {"alertmanager", "events-v2", "generic", NULL};
	static const char *const texts[] = {"service", "name", NULL};
	json_t *body, *ans = NULL;
	int rc;

	if ((rc = check_choice(a, "source", sources, "alertmanager, events-v2 or generic")) ||
	    (rc = check_nonempty(a, texts)))
		return rc;
	body = json_pack("{s:s, s:s*, s:s*}", "service", kx_args_get(a, "service"), "source",
			 kx_args_get(a, "source"), "name", kx_args_get(a, "name"));
	if (!body)
		return kx_cli_oom();
	rc = kx_cli_exchange(cli, "POST", "/v1/integrations", body, &ans);
	if (!rc && !cli->json)
		rc = print_integration_created(ans);
	json_decref(body);
	json_decref(ans);
	return rc;
}

static int any_revoked(const json_t *list)
{
	json_t *in;
	size_t i;

	json_array_foreach(list, i, in)
		if (kx_cli_jstr(in, "revoked_at"))
			return 1;
	return 0;
}

static int print_integrations(const json_t *list, const struct kx_args *a)
{
	static const char *const head[] = {"ID",	 "SERVICE", "SOURCE", "NAME",
					   "CREATED BY", "CREATED", "REVOKED"};
	int revoked = any_revoked(list);
	struct kx_table *t;
	json_t *in;
	size_t i;

	(void)a;
	if (json_array_size(list) == 0) {
		printf("no integrations\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(revoked ? 7 : 6, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 3, CELL_MAX);
	json_array_foreach(list, i, in) {
		kx_table_cell(t, kx_cli_jstr(in, "id"));
		kx_table_cell(t, kx_cli_jstr(in, "service"));
		kx_table_cell(t, kx_cli_jstr(in, "source"));
		kx_table_cell(t, kx_cli_jstr(in, "name"));
		kx_table_cell(t, kx_cli_jstr(in, "created_by"));
		kx_cli_time_cell(t, in, "created_at");
		if (revoked)
			kx_cli_time_cell(t, in, "revoked_at");
	}
	return kx_cli_print_table(t);
}

static int cmd_integration_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const query[] = {"service", NULL};
	struct kx_buf path;
	int rc;

	if ((rc = check_nonempty(a, query)))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_buf_adds(&path, "/v1/integrations") || add_query(&path, a, query))
		rc = kx_cli_oom();
	else
		rc = list_and_print(cli, kx_buf_str(&path), "integrations", print_integrations, a);
	kx_buf_release(&path);
	return rc;
}

static int cmd_integration_revoke(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "integration ID", "integrations", "DELETE", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = confirm(kx_cli_jstr(ans, "id"), a->pos[0],
			     "revoked; sources sending with its key are refused from now on");
	json_decref(ans);
	return rc;
}

/* ---- heartbeats ---------------------------------------------------------- */

static int print_heartbeat_created(const json_t *h)
{
	static const struct show_row rows[] = {
		{"Name", "name", 't', NULL},	     {"Service", "service", 't', NULL},
		{"Interval", "interval", 't', NULL}, {"Grace", "grace", 't', NULL},
		{"Severity", "severity", 't', NULL}, {"State", "state", 't', NULL},
		{"Ping URL", "ping_url", 't', NULL},
	};
	const char *key = kx_cli_jstr(h, "key"), *url = kx_cli_jstr(h, "ping_url");
	const char *iv = kx_cli_jstr(h, "interval"), *gr = kx_cli_jstr(h, "grace");
	struct kx_buf b;
	int rc;

	if (!key || !url) {
		fprintf(stderr, "klaxon: the answer from klaxond has no 'key' or 'ping_url'\n");
		return KX_CLI_FAIL;
	}
	if ((rc = print_key("Heartbeat key", key)) ||
	    (rc = print_rows(h, rows, sizeof(rows) / sizeof(rows[0]))))
		return rc;
	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b,
			 "\nNothing is raised before the first ping; after it, no ping for %s + %s\n"
			 "opens an alert of level %s on %s. Ping it from the job:\n\n"
			 "  curl -fsS -X POST ",
			 iv ? iv : "the interval", gr ? gr : "the grace",
			 kx_cli_jstr(h, "severity") ? kx_cli_jstr(h, "severity") : "?",
			 kx_cli_jstr(h, "service") ? kx_cli_jstr(h, "service") : "its service") ||
	     add_shell_word(&b, url);
	if (!rc) {
		struct kx_buf clean;

		/* the daemon's text, cleaned; the line breaks are ours */
		kx_buf_init(&clean, 0);
		rc = kx_out_clean(&clean, kx_buf_str(&b), 1);
		if (!rc)
			printf("%s\n", kx_buf_str(&clean));
		kx_buf_release(&clean);
	}
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

static int cmd_heartbeat_create(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body, *ans = NULL;
	int rc;

	if ((rc = kx_cli_check_duration(a, "interval")) || (rc = kx_cli_check_duration(a, "grace")) ||
	    (rc = check_choice(a, "severity", levels, LEVELS_TEXT)))
		return rc;
	body = json_pack("{s:s, s:s, s:s*, s:s*, s:s*}", "name", a->pos[0], "service",
			 kx_args_get(a, "service"), "interval", kx_args_get(a, "interval"), "grace",
			 kx_args_get(a, "grace"), "severity", kx_args_get(a, "severity"));
	if (!body)
		return kx_cli_oom();
	rc = kx_cli_exchange(cli, "POST", "/v1/heartbeats", body, &ans);
	if (!rc && !cli->json)
		rc = print_heartbeat_created(ans);
	json_decref(body);
	json_decref(ans);
	return rc;
}

static int print_heartbeats(const json_t *list, const struct kx_args *a)
{
	static const char *const head[] = {"NAME",  "SERVICE",	 "STATE", "INTERVAL",
					   "GRACE", "LAST PING", "DUE"};
	struct kx_table *t;
	json_t *h;
	size_t i;

	(void)a;
	if (json_array_size(list) == 0) {
		printf("no heartbeats\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(7, head)))
		return kx_cli_oom();
	json_array_foreach(list, i, h) {
		kx_table_cell(t, kx_cli_jstr(h, "name"));
		kx_table_cell(t, kx_cli_jstr(h, "service"));
		kx_table_cell(t, kx_cli_jstr(h, "state"));
		kx_table_cell(t, kx_cli_jstr(h, "interval"));
		kx_table_cell(t, kx_cli_jstr(h, "grace"));
		if (kx_cli_jstr(h, "last_ping"))
			kx_cli_time_cell(t, h, "last_ping");
		else
			kx_table_cell(t, "never");
		kx_cli_time_cell(t, h, "due_at");
	}
	return kx_cli_print_table(t);
}

static int cmd_heartbeat_list(struct kx_cli *cli, const struct kx_args *a)
{
	return list_and_print(cli, "/v1/heartbeats", "heartbeats", print_heartbeats, a);
}

static int cmd_heartbeat_delete(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "heartbeat name", "heartbeats", "DELETE", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = confirm(kx_cli_jstr(ans, "name"), a->pos[0], "heartbeat deleted");
	json_decref(ans);
	return rc;
}

static int cmd_heartbeat_ping(struct kx_cli *cli, const struct kx_args *a)
{
	/* The key is the credential: no token goes to the public route. */
	struct kx_cli anon = *cli;
	struct kx_buf line;
	json_t *ans = NULL;
	int rc;

	anon.token = NULL;
	rc = kx_cli_exchange_id(&anon, a, "heartbeat key", "heartbeats", "POST", "", NULL, &ans);
	if (rc || cli->json)
		goto out;
	kx_buf_init(&line, 0);
	if (kx_buf_addf(&line, "%s: pinged",
			kx_cli_jstr(ans, "heartbeat") ? kx_cli_jstr(ans, "heartbeat") : "heartbeat") ||
	    (kx_cli_jstr(ans, "due_at") &&
	     (kx_buf_adds(&line, "; next ping due by ") || add_time_s(&line, ans, "due_at"))) ||
	    kx_out_line(stdout, kx_buf_str(&line)))
		rc = kx_cli_oom();
	kx_buf_release(&line);
out:
	json_decref(ans);
	return rc;
}

/* ---- notifications ------------------------------------------------------- */

static int print_notifications(const json_t *list, const struct kx_args *a)
{
	static const char *const head[] = {"ID",	"CHANNEL",   "EVENT",	"SUBJECT",  "STATUS",
					   "ATTEMPTS", "LAST CODE", "CREATED", "DELIVERED"};
	struct kx_table *t;
	json_t *n;
	size_t i;

	(void)a;
	if (json_array_size(list) == 0) {
		printf("no notifications\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(9, head)))
		return kx_cli_oom();
	json_array_foreach(list, i, n) {
		kx_table_cell(t, kx_cli_jstr(n, "id"));
		kx_table_cell(t, kx_cli_jstr(n, "channel"));
		kx_table_cell(t, kx_cli_jstr(n, "event"));
		kx_table_cell(t, kx_cli_jstr(n, "subject"));
		kx_table_cell(t, kx_cli_jstr(n, "status"));
		kx_cli_jcell(t, n, "attempts", ",");
		if (json_integer_value(json_object_get(n, "last_code")))
			kx_cli_jcell(t, n, "last_code", ",");
		else
			kx_table_cell(t, NULL);
		kx_cli_time_cell(t, n, "created_at");
		kx_cli_time_cell(t, n, "delivered_at");
	}
	return kx_cli_print_table(t);
}

static int cmd_notification_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const statuses[] = {"pending", "retrying", "delivered", "dropped", NULL};
	static const char *const texts[] = {"channel", "subject", NULL};
	static const char *const query[] = {"channel", "status", "subject", "limit", NULL};
	struct kx_buf path;
	int rc;

	if ((rc = check_choice(a, "status", statuses, "pending, retrying, delivered or dropped")) ||
	    (rc = check_nonempty(a, texts)) || (rc = kx_cli_check_limit(a, LIMIT_MAX)))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_buf_adds(&path, "/v1/notifications") || add_query(&path, a, query))
		rc = kx_cli_oom();
	else
		rc = list_and_print(cli, kx_buf_str(&path), "notifications", print_notifications, a);
	kx_buf_release(&path);
	return rc;
}

static int print_attempts(const json_t *list)
{
	static const char *const head[] = {"N", "AT", "TOOK", "CODE", "ERROR"};
	struct kx_table *t = kx_table_new(5, head);
	json_t *at;
	size_t i;

	if (!t)
		return kx_cli_oom();
	kx_table_set_indent(t, 2);
	json_array_foreach(list, i, at) {
		const json_t *took = json_object_get(at, "took_ms");
		char d[32];

		kx_cli_jcell(t, at, "number", ",");
		time_s_cell(t, at, "at");
		if (json_is_integer(took) && json_integer_value(took) >= 0)
			kx_table_cell(t, kx_duration_format((kx_ms)json_integer_value(took), d));
		else
			kx_table_cell(t, NULL);
		if (json_integer_value(json_object_get(at, "code")))
			kx_cli_jcell(t, at, "code", ",");
		else
			kx_table_cell(t, "no answer");
		kx_table_cell(t, kx_cli_jstr(at, "error"));
	}
	return kx_cli_print_table(t);
}

static int print_notification(const json_t *n)
{
	static const struct show_row head[] = {
		{"ID", "id", 't', NULL},
		{"Channel", "channel", 't', NULL},
		{"Event", "event", 't', NULL},
		{"Subject", "subject", 't', NULL},
		{"Status", "status", 't', NULL},
	};
	static const struct show_row rows[] = {
		{"Last code", "last_code", 'c', NULL},
		{"Last error", "last_error", 't', NULL},
		{"Created", "created_at", 'S', NULL},
		{"Last attempt", "last_attempt_at", 'S', NULL},
		{"Next attempt", "next_attempt_at", 'S', NULL},
		{"Delivered", "delivered_at", 'S', NULL},
	};
	const json_t *attempts = json_object_get(n, "attempt_log");
	int rc;

	if ((rc = print_rows(n, head, sizeof(head) / sizeof(head[0]))))
		return rc;
	{
		static const struct show_row count[] = {{"Attempts", "attempts", 'c', NULL}};
		if ((rc = print_rows(n, count, 1)))
			return rc;
	}
	if ((rc = print_rows(n, rows, sizeof(rows) / sizeof(rows[0]))))
		return rc;
	if (!section("Attempts", attempts))
		return print_attempts(attempts);
	return KX_CLI_OK;
}

static int cmd_notification_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "notification ID", "notifications", "GET", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = print_notification(ans);
	json_decref(ans);
	return rc;
}

/* ---- the command tree ------------------------------------------------------ */

static const struct kx_opt no_opts[] = {{0}};
static const char *const args_alert[] = {"ALERT_ID", NULL};
static const char *const args_silence[] = {"SILENCE_ID", NULL};
static const char *const args_service[] = {"NAME", NULL};
static const char *const args_integration[] = {"INTEGRATION_ID", NULL};
static const char *const args_heartbeat[] = {"NAME", NULL};
static const char *const args_key[] = {"KEY", NULL};
static const char *const args_notification[] = {"NOTIFICATION_ID", NULL};

/* alert */

static const struct kx_opt alert_list_opts[] = {
	{"service", KX_OPT_VALUE, "SERVICE", 0, "only this service's alerts"},
	{"status", KX_OPT_VALUE, "STATUS", 0, "firing (default), resolved or all"},
	{"incident", KX_OPT_VALUE, "ID", 0, "only the alerts attached to this incident"},
	{"since", KX_OPT_VALUE, "WHEN", 0, "only alerts seen since a duration back (2h) or an RFC 3339 time"},
	{"limit", KX_OPT_VALUE, "N", 0, "at most N alerts, 1-1000 (default 100)"},
	{0},
};

static const struct kx_opt noise_opts[] = {
	{"undo", KX_OPT_BOOL, NULL, 0, "remove the mark"},
	{0},
};

#define SILENCE_USAGE                                                                          \
	"--match MATCHER... (--for DURATION | --until TIME) [--starts TIME] [--comment TEXT] " \
	"[--maintenance]"
#define SILENCE_DESCRIPTION                                                                       \
	"Mute the alerts that match every matcher (Alertmanager's syntax: name=\"v\", !=, =~ and " \
	"!~ with a regex; names are alert labels or the fields service, severity, source, "       \
	"summary…) from now or --starts until the end. Muted alerts are recorded but open no "    \
	"incident and notify nobody. Prints the silence's ID."

static const struct kx_opt silence_opts[] = {
	{"match", KX_OPT_LIST, "MATCHER", 1, "e.g. alertname=\"DiskFull\" or instance=~\"db[0-9]+\""},
	{"for", KX_OPT_VALUE, "DURATION", 0, "how long, e.g. 2h (or give --until)"},
	{"until", KX_OPT_VALUE, "TIME", 0, "when it ends, an RFC 3339 time"},
	{"starts", KX_OPT_VALUE, "TIME", 0, "when it begins, an RFC 3339 time (default now)"},
	{"comment", KX_OPT_VALUE, "TEXT", 0, "why; shown in silence list"},
	{"maintenance", KX_OPT_BOOL, NULL, 0, "record it as a maintenance window, not a silence"},
	{0},
};

static const struct kx_cmd alert_list = {
	.name = "list",
	.summary = "list alerts, newest first",
	.usage = "[--service SERVICE] [--status firing|resolved|all] [--incident ID] [--since 2h] [--limit N]",
	.description = "List alerts, newest first: by default the firing ones. FLAGS says whether an "
		       "alert was acknowledged (acked), muted by a silence (silenced) or marked as "
		       "noise.",
	.opts = alert_list_opts,
	.example = "klaxon alert list --service payments --since 2h",
	.run = cmd_alert_list,
};

static const struct kx_cmd alert_show = {
	.name = "show",
	.summary = "show an alert with its labels and details",
	.usage = "ALERT_ID",
	.description = "Show an alert: every field, its labels one per line and the details its "
		       "source sent (as compact JSON).",
	.args = args_alert,
	.opts = no_opts,
	.example = "klaxon alert show 42",
	.run = cmd_alert_show,
};

static const struct kx_cmd alert_ack = {
	.name = "ack",
	.summary = "acknowledge an alert",
	.usage = "ALERT_ID",
	.description = "Acknowledge a firing alert: someone is on it. It keeps firing until its "
		       "source resolves it (or 'klaxon alert resolve').",
	.args = args_alert,
	.opts = no_opts,
	.example = "klaxon alert ack 42",
	.run = cmd_alert_ack,
};

static const struct kx_cmd alert_resolve = {
	.name = "resolve",
	.summary = "resolve an alert by hand",
	.usage = "ALERT_ID",
	.description = "Resolve an alert by hand, e.g. one whose source will never send the resolve. "
		       "When it was the last firing alert of its incident, the incident's timeline "
		       "says so.",
	.args = args_alert,
	.opts = no_opts,
	.example = "klaxon alert resolve 42",
	.run = cmd_alert_resolve,
};

static const struct kx_cmd alert_noise = {
	.name = "noise",
	.summary = "mark an alert as noise (or unmark it)",
	.usage = "ALERT_ID [--undo]",
	.description = "Mark an alert as noise: it did not need a person. The mark is kept for "
		       "reviewing alert quality; it changes nothing else. --undo removes it.",
	.args = args_alert,
	.opts = noise_opts,
	.example = "klaxon alert noise 42",
	.run = cmd_alert_noise,
};

static const struct kx_cmd alert_silence = {
	.name = "silence",
	.summary = "silence alerts that match (same as 'klaxon silence create')",
	.usage = SILENCE_USAGE,
	.description = SILENCE_DESCRIPTION,
	.opts = silence_opts,
	.example = "klaxon alert silence --match 'alertname=\"DiskFull\"' --match 'instance=\"db1\"' --for 2h --comment \"resizing the volume\"",
	.run = cmd_silence_create,
};

static const struct kx_cmd *const alert_children[] = {
	&alert_list, &alert_show, &alert_ack, &alert_resolve, &alert_noise, &alert_silence, NULL,
};

const struct kx_cmd kx_cli_alert = {
	.name = "alert",
	.summary = "list, show, acknowledge and resolve alerts",
	.usage = "COMMAND [ARGS]",
	.description = "Alerts: what sources report on services. Routing attaches a firing alert to "
		       "an incident (or declares one) unless a silence mutes it.",
	.children = alert_children,
};

/* silence */

static const struct kx_opt silence_list_opts[] = {
	{"all", KX_OPT_BOOL, NULL, 0, "also silences that ended, were expired or start later"},
	{0},
};

static const struct kx_cmd silence_list = {
	.name = "list",
	.summary = "list the silences in force",
	.usage = "[--all]",
	.description = "List the silences and maintenance windows in force now (with --all: every "
		       "one, with its STATE: active, scheduled, ended or expired).",
	.opts = silence_list_opts,
	.example = "klaxon silence list",
	.run = cmd_silence_list,
};

static const struct kx_cmd silence_create = {
	.name = "create",
	.summary = "silence alerts that match, for a while",
	.usage = SILENCE_USAGE,
	.description = SILENCE_DESCRIPTION,
	.opts = silence_opts,
	.example = "klaxon silence create --match 'service=\"payments\"' --starts 2026-12-02T22:00:00Z --for 1h --maintenance --comment \"db upgrade\"",
	.run = cmd_silence_create,
};

static const struct kx_cmd silence_expire = {
	.name = "expire",
	.summary = "end a silence now",
	.usage = "SILENCE_ID",
	.description = "End a silence or maintenance window now: the alerts it muted open incidents "
		       "and notify again when they next fire. It stays on record (silence list --all).",
	.args = args_silence,
	.opts = no_opts,
	.example = "klaxon silence expire sil_911fba7df0d9b4b3",
	.run = cmd_silence_expire,
};

static const struct kx_cmd *const silence_children[] = {
	&silence_list, &silence_create, &silence_expire, NULL,
};

const struct kx_cmd kx_cli_silence = {
	.name = "silence",
	.summary = "list, create and expire silences and maintenance windows",
	.usage = "COMMAND [ARGS]",
	.description = "Silences and maintenance windows: for a while, alerts that match are "
		       "recorded but open no incident and notify nobody.",
	.children = silence_children,
};

/* service */

static const struct kx_opt service_create_opts[] = {
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "a label copied onto the incidents its alerts open"},
	{"description", KX_OPT_VALUE, "TEXT", 0, "what it is"},
	{0},
};

static const struct kx_cmd service_create = {
	.name = "create",
	.summary = "create a service",
	.usage = "NAME [--label k=v]... [--description TEXT]",
	.description = "Create a service, the thing that breaks (1 to 64 of a-z, 0-9, '_' and '-'). "
		       "Then give its sources a key with 'klaxon integration create' or a "
		       "heartbeat with 'klaxon heartbeat create'.",
	.args = args_service,
	.opts = service_create_opts,
	.example = "klaxon service create payments --label team=payments --description \"card payments API\"",
	.run = cmd_service_create,
};

static const struct kx_cmd service_list = {
	.name = "list",
	.summary = "list the services",
	.usage = "",
	.description = "List the services, from the API and from the config file (SOURCE config: "
		       "read-only through the API).",
	.opts = no_opts,
	.example = "klaxon service list",
	.run = cmd_service_list,
};

static const struct kx_cmd service_show = {
	.name = "show",
	.summary = "show a service, its firing alerts and recent changes",
	.usage = "NAME",
	.description = "Show a service: its fields, its firing alerts and the change events (deploys, "
		       "config pushes) its sources reported most recently.",
	.args = args_service,
	.opts = no_opts,
	.example = "klaxon service show payments",
	.run = cmd_service_show,
};

static const struct kx_cmd *const service_children[] = {
	&service_create, &service_list, &service_show, NULL,
};

const struct kx_cmd kx_cli_service = {
	.name = "service",
	.summary = "create, list and show the services alerts are about",
	.usage = "COMMAND [ARGS]",
	.description = "Services: what alerts are about. Every alert belongs to one; its labels go "
		       "onto the incidents its alerts open.",
	.children = service_children,
};

/* integration */

static const struct kx_opt integration_create_opts[] = {
	{"service", KX_OPT_VALUE, "SERVICE", 1, "the service its alerts belong to"},
	{"source", KX_OPT_VALUE, "SOURCE", 0, "alertmanager, events-v2 (PagerDuty Events API v2) or generic (the default)"},
	{"name", KX_OPT_VALUE, "NAME", 0, "what sends with it, e.g. prometheus-eu"},
	{0},
};

static const struct kx_opt integration_list_opts[] = {
	{"service", KX_OPT_VALUE, "SERVICE", 0, "only this service's integrations"},
	{0},
};

static const struct kx_cmd integration_create = {
	.name = "create",
	.summary = "create a key for a source to send alerts with",
	.usage = "--service SERVICE [--source alertmanager|events-v2|generic] [--name NAME]",
	.description = "Create an integration: a key that a source presents when it sends alerts on "
		       "a service. Prints the key (shown only once) and where to send; for "
		       "Alertmanager, a receiver to paste into alertmanager.yml. With --json, the "
		       "daemon's answer, which holds the key.",
	.opts = integration_create_opts,
	.example = "klaxon integration create --service payments --source alertmanager --name prometheus-eu",
	.run = cmd_integration_create,
};

static const struct kx_cmd integration_list = {
	.name = "list",
	.summary = "list the integrations",
	.usage = "[--service SERVICE]",
	.description = "List the integrations (never their keys), with when each was revoked.",
	.opts = integration_list_opts,
	.example = "klaxon integration list --service payments",
	.run = cmd_integration_list,
};

static const struct kx_cmd integration_revoke = {
	.name = "revoke",
	.summary = "revoke an integration's key",
	.usage = "INTEGRATION_ID",
	.description = "Revoke an integration: its key is refused from now on. Its alerts stay.",
	.args = args_integration,
	.opts = no_opts,
	.example = "klaxon integration revoke int_b82b2ceb3ff1dd13",
	.run = cmd_integration_revoke,
};

static const struct kx_cmd *const integration_children[] = {
	&integration_create, &integration_list, &integration_revoke, NULL,
};

const struct kx_cmd kx_cli_integration = {
	.name = "integration",
	.summary = "create, list and revoke the keys of alert sources (admin)",
	.usage = "COMMAND [ARGS]",
	.description = "Integrations: the keys with which Alertmanager, PagerDuty Events v2 clients "
		       "and other sources send alerts on a service.",
	.children = integration_children,
};

/* heartbeat */

static const struct kx_opt heartbeat_create_opts[] = {
	{"service", KX_OPT_VALUE, "SERVICE", 1, "the service its alert belongs to"},
	{"interval", KX_OPT_VALUE, "DURATION", 0, "the longest gap between pings, 1s-7d (default 5m)"},
	{"grace", KX_OPT_VALUE, "DURATION", 0, "extra time before a late ping counts as missed (default 1m)"},
	{"severity", KX_OPT_VALUE, "LEVEL", 0, "of the alert a missed ping opens: " LEVELS_TEXT " (default error)"},
	{0},
};

static const struct kx_cmd heartbeat_create = {
	.name = "create",
	.summary = "create a heartbeat a job must ping",
	.usage = "NAME --service SERVICE [--interval 5m] [--grace 1m] [--severity LEVEL]",
	.description = "Create a heartbeat (a dead man's switch): a job pings it at least every "
		       "interval; when a ping is more than the grace late, an alert opens, and the next "
		       "ping resolves it. Nothing is raised before the first ping. Prints its key (shown "
		       "only once), its ping URL and a curl line for the job.",
	.args = args_heartbeat,
	.opts = heartbeat_create_opts,
	.example = "klaxon heartbeat create nightly-backup --service payments --interval 1d --grace 1h",
	.run = cmd_heartbeat_create,
};

static const struct kx_cmd heartbeat_list = {
	.name = "list",
	.summary = "list the heartbeats and when each is due",
	.usage = "",
	.description = "List the heartbeats: STATE waiting (no ping yet), up or down (an alert is "
		       "open), the last ping and when the next is due.",
	.opts = no_opts,
	.example = "klaxon heartbeat list",
	.run = cmd_heartbeat_list,
};

static const struct kx_cmd heartbeat_delete = {
	.name = "delete",
	.summary = "delete a heartbeat",
	.usage = "NAME",
	.description = "Delete a heartbeat: its key stops working and a missed ping no longer raises "
		       "anything.",
	.args = args_heartbeat,
	.opts = no_opts,
	.example = "klaxon heartbeat delete nightly-backup",
	.run = cmd_heartbeat_delete,
};

static const struct kx_cmd heartbeat_ping = {
	.name = "ping",
	.summary = "ping a heartbeat, as its job does",
	.usage = "KEY",
	.description = "Ping a heartbeat with its key, as the job does (no token needed or sent). "
		       "Prints when the next ping is due.",
	.args = args_key,
	.opts = no_opts,
	.example = "klaxon heartbeat ping 8dw1k3m0q2x7c5v9b4n6z8a1s3d5f7g9",
	.run = cmd_heartbeat_ping,
};

static const struct kx_cmd *const heartbeat_children[] = {
	&heartbeat_create, &heartbeat_list, &heartbeat_delete, &heartbeat_ping, NULL,
};

const struct kx_cmd kx_cli_heartbeat = {
	.name = "heartbeat",
	.summary = "create, list, delete and ping heartbeats (dead man's switches)",
	.usage = "COMMAND [ARGS]",
	.description = "Heartbeats: jobs that must check in; a missed ping opens an alert.",
	.children = heartbeat_children,
};

/* notification */

static const struct kx_opt notification_list_opts[] = {
	{"channel", KX_OPT_VALUE, "NAME", 0, "only this channel's notifications"},
	{"status", KX_OPT_VALUE, "STATUS", 0, "pending, retrying, delivered or dropped"},
	{"subject", KX_OPT_VALUE, "ID", 0, "only those about this incident or switch"},
	{"limit", KX_OPT_VALUE, "N", 0, "at most N notifications, 1-1000 (default 100)"},
	{0},
};

static const struct kx_cmd notification_list = {
	.name = "list",
	.summary = "list notifications sent or being sent, newest first",
	.usage = "[--channel NAME] [--status pending|retrying|delivered|dropped] [--subject ID] [--limit N]",
	.description = "List the delivery log, newest first: one row per event sent to one channel, "
		       "with how many attempts it took and the last reply code.",
	.opts = notification_list_opts,
	.example = "klaxon notification list --status dropped",
	.run = cmd_notification_list,
};

static const struct kx_cmd notification_show = {
	.name = "show",
	.summary = "show a notification and its attempts",
	.usage = "NOTIFICATION_ID",
	.description = "Show a notification: what it was about, where it went, and every attempt to "
		       "deliver it with its reply code and error.",
	.args = args_notification,
	.opts = no_opts,
	.example = "klaxon notification show ntf_3b9d0c2e7a415f68",
	.run = cmd_notification_show,
};

static const struct kx_cmd *const notification_children[] = {
	&notification_list, &notification_show, NULL,
};

const struct kx_cmd kx_cli_notification = {
	.name = "notification",
	.summary = "the delivery log: what was sent to which channel",
	.usage = "COMMAND [ARGS]",
	.description = "Notifications: every event sent to a channel (chat, webhook, e-mail) and "
		       "every attempt to deliver it.",
	.children = notification_children,
};
