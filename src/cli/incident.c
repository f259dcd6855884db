/* klaxon incident …: declare, follow and resolve incidents. */
#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* Width of the longest key in `show` ("Acknowledged"). */
#define SHOW_KEYW 12

/* ---- helpers ------------------------------------------------------------- */

/* Appends "/v1/incidents/<id>" + suffix for the incident named by the first
 * positional argument. */
static int ipath(struct kx_buf *b, const struct kx_args *a, const char *suffix)
{
	return kx_cli_path(b, "incidents", a->pos[0], suffix);
}

/* Sends a request about the incident a->pos[0]; see kx_cli_exchange. */
static int iexchange(struct kx_cli *cli, const struct kx_args *a,
		     const char *method, const char *suffix, const json_t *body,
		     json_t **out)
{
	struct kx_buf path;
	int rc;

	*out = NULL;
	kx_buf_init(&path, 0);
	if (ipath(&path, a, suffix))
		rc = kx_cli_oom();
	else
		rc = kx_cli_exchange(cli, method, kx_buf_str(&path), body, out);
	kx_buf_release(&path);
	return rc;
}

/* Prints "<ID>: <message>", the one-line confirmation of a change. The ID
 * is the one the daemon answered with, else the one given. */
static int confirm(const struct kx_args *a, const json_t *inc,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int confirm(const struct kx_args *a, const json_t *inc,
		   const char *fmt, ...)
{
	const char *id = kx_cli_jstr(inc, "id");
	struct kx_buf b;
	va_list ap;
	int rc;

	kx_buf_init(&b, 0);
	va_start(ap, fmt);
	rc = kx_buf_addf(&b, "%s: ", id ? id : a->pos[0]) || kx_buf_addvf(&b, fmt, ap);
	va_end(ap);
	if (!rc)
		rc = kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* Appends the human form ("2026-11-25 14:31 UTC") of the RFC 3339 time in
 * member key of o; the text as it is when it does not parse; nothing when
 * absent or null. */
/* Adds a table cell with the text of member key of o ("-" when empty). */
/* Prints a finished table; returns an exit status. */
/* Sets body.types to the --type values, when there are any. */
static int add_types(const struct kx_args *a, json_t *body)
{
	size_t n;
	const char *const *list = kx_args_list(a, "type", &n);
	json_t *types;

	if (!n)
		return 0;
	types = json_array();
	if (!types || json_object_set_new(body, "types", types))
		return kx_cli_oom();
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(types, json_string(list[i])))
			return kx_cli_oom();
	return 0;
}

/* Sets body.labels from --label (and --unlabel as nulls), when given. */
static int add_labels(const struct kx_args *a, json_t *body, int unlabel)
{
	size_t nset, nunset = 0;
	const char *const *unset = NULL;
	json_t *labels;
	int rc;

	kx_args_list(a, "label", &nset);
	if (unlabel)
		unset = kx_args_list(a, "unlabel", &nunset);
	if (!nset && !nunset)
		return 0;
	labels = json_object();
	if (!labels || json_object_set_new(body, "labels", labels))
		return kx_cli_oom();
	rc = kx_cli_labels(a, "label", labels);
	if (rc)
		return rc;
	for (size_t i = 0; i < nunset; i++) {
		if (!*unset[i] || strchr(unset[i], '='))
			return kx_cli_usage(a, "invalid value '%s' for '--unlabel': expected a label KEY",
					    unset[i]);
		if (json_object_get(labels, unset[i]) && !json_is_null(json_object_get(labels, unset[i])))
			return kx_cli_usage(a, "label '%s' is both set and removed", unset[i]);
		if (json_object_set_new(labels, unset[i], json_null()))
			return kx_cli_oom();
	}
	return 0;
}

/* ---- declare ------------------------------------------------------------- */

static int print_summary(const json_t *inc)
{
	struct kx_buf types, labels;
	int rc;

	kx_buf_init(&types, 0);
	kx_buf_init(&labels, 0);
	rc = kx_out_line(stdout, kx_cli_jstr(inc, "id") ? kx_cli_jstr(inc, "id") : "-") ||
	     kx_cli_jtext(&types, json_object_get(inc, "types"), ", ") ||
	     kx_cli_jtext(&labels, json_object_get(inc, "labels"), ", ") ||
	     kx_out_kv(stdout, 8, "Severity", kx_cli_jstr(inc, "severity")) ||
	     kx_out_kv(stdout, 8, "Status", kx_cli_jstr(inc, "status")) ||
	     kx_out_kv(stdout, 8, "Title", kx_cli_jstr(inc, "title")) ||
	     kx_out_kv(stdout, 8, "Types", kx_buf_str(&types)) ||
	     kx_out_kv(stdout, 8, "Labels", kx_buf_str(&labels));
	kx_buf_release(&types);
	kx_buf_release(&labels);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

static int cmd_declare(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = NULL, *inc = NULL;
	int rc;

	if ((rc = kx_cli_check_time(a, "started-at")) ||
	    (rc = kx_cli_check_time(a, "detected-at")))
		return rc;
	body = json_pack("{s:s, s:s, s:s*, s:s*, s:s*}",
			 "title", kx_args_get(a, "title"),
			 "severity", kx_args_get(a, "severity"),
			 "summary", kx_args_get(a, "summary"),
			 "started_at", kx_args_get(a, "started-at"),
			 "detected_at", kx_args_get(a, "detected-at"));
	if (!body)
		return kx_cli_oom();
	if ((rc = add_types(a, body)) || (rc = add_labels(a, body, 0)))
		goto out;
	rc = kx_cli_exchange(cli, "POST", "/v1/incidents", body, &inc);
	if (rc || cli->json)
		goto out;
	rc = print_summary(inc);
out:
	json_decref(body);
	json_decref(inc);
	return rc;
}

/* ---- list ---------------------------------------------------------------- */

static int list_query(const struct kx_args *a, struct kx_buf *path)
{
	static const char *const plain[] = {"status", "severity", "since", "limit"};
	size_t n;
	const char *const *labels = kx_args_list(a, "label", &n);

	if (kx_buf_adds(path, "/v1/incidents"))
		return KX_ENOMEM;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		const char *v = kx_args_get(a, plain[i]);

		if (v && kx_http_query_add(path, plain[i], v))
			return KX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (kx_http_query_add(path, "label", labels[i]))
			return KX_ENOMEM;
	if (kx_args_has(a, "open") && kx_http_query_add(path, "open", "true"))
		return KX_ENOMEM;
	return 0;
}

static int print_incidents(const json_t *list)
{
	static const char *const head[] = {"ID", "SEV", "STATUS", "DECLARED",
					   "TITLE", "LABELS"};
	struct kx_table *t;
	json_t *inc;
	size_t i;

	if (json_array_size(list) == 0) {
		printf("no incidents\n");
		return KX_CLI_OK;
	}
	t = kx_table_new(6, head);
	if (!t)
		return kx_cli_oom();
	kx_table_set_max(t, 4, KX_OUT_TITLE_MAX);
	json_array_foreach(list, i, inc) {
		kx_table_cell(t, kx_cli_jstr(inc, "id"));
		kx_table_cell(t, kx_cli_jstr(inc, "severity"));
		kx_table_cell(t, kx_cli_jstr(inc, "status"));
		kx_cli_time_cell(t, inc, "declared_at");
		kx_table_cell(t, kx_cli_jstr(inc, "title"));
		kx_cli_jcell(t, inc, "labels", ",");
	}
	return kx_cli_print_table(t);
}

static int cmd_list(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf path;
	json_t *ans = NULL;
	const char *limit = kx_args_get(a, "limit");
	long long n;
	int rc;

	if ((rc = kx_cli_labels(a, "label", NULL)) ||
	    (rc = kx_cli_check_duration(a, "since")))
		return rc;
	if (limit && kx_cli_parse_count(limit, &n))
		return kx_cli_usage(a, "invalid value '%s' for '--limit': expected a number", limit);
	kx_buf_init(&path, 0);
	if (list_query(a, &path)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "GET", kx_buf_str(&path), NULL, &ans);
	if (rc || cli->json)
		goto out;
	rc = print_incidents(json_object_get(ans, "incidents"));
out:
	kx_buf_release(&path);
	json_decref(ans);
	return rc;
}

/* ---- show ---------------------------------------------------------------- */

static int add_impact(struct kx_buf *b, const json_t *impact)
{
	static const char *const fields[] = {"users", "accounts", "actions", "revenue"};
	const char *desc = kx_cli_jstr(impact, "description");
	size_t n = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *v = json_object_get(impact, fields[i]);

		if (!v || json_is_null(v))
			continue;
		if ((n++ && kx_buf_adds(b, ", ")) || kx_buf_addf(b, "%s ", fields[i]) ||
		    kx_cli_jtext(b, v, ", "))
			return KX_ENOMEM;
	}
	if (desc && *desc && ((n && kx_buf_addc(b, '\n')) || kx_buf_adds(b, desc)))
		return KX_ENOMEM;
	return 0;
}

/* "commander alice\nsme bob, carol": one line per role, in first-seen order. */
static int add_roles(struct kx_buf *b, const json_t *roles)
{
	size_t i, j;
	json_t *r, *s;

	json_array_foreach(roles, i, r) {
		const char *role = kx_cli_jstr(r, "role");
		int seen = 0, first = 1;

		if (!role)
			continue;
		for (j = 0; j < i && !seen; j++)
			seen = kx_cli_jstr(json_array_get(roles, j), "role") &&
			       strcmp(kx_cli_jstr(json_array_get(roles, j), "role"), role) == 0;
		if (seen)
			continue;
		if ((b->len && kx_buf_addc(b, '\n')) || kx_buf_addf(b, "%s ", role))
			return KX_ENOMEM;
		for (j = i; j < json_array_size(roles); j++) {
			const char *person;

			s = json_array_get(roles, j);
			person = kx_cli_jstr(s, "person");
			if (!person || !kx_cli_jstr(s, "role") ||
			    strcmp(kx_cli_jstr(s, "role"), role) != 0)
				continue;
			if ((!first && kx_buf_adds(b, ", ")) || kx_buf_adds(b, person))
				return KX_ENOMEM;
			first = 0;
		}
	}
	return 0;
}

/* Prints "Key: value" for member `key` of inc as text (kind 't'), a time
 * ('T'), the impact ('i') or the roles ('r'). */
static int show_field(const json_t *inc, const char *label, const char *key,
		      char kind)
{
	const json_t *v = json_object_get(inc, key);
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	switch (kind) {
	case 'T': rc = kx_cli_add_time(&b, inc, key); break;
	case 'i': rc = add_impact(&b, v); break;
	case 'r': rc = add_roles(&b, v); break;
	default: rc = kx_cli_jtext(&b, v, ", "); break;
	}
	if (!rc)
		rc = kx_out_kv(stdout, SHOW_KEYW, label, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc;
}

static int print_timeline(const json_t *timeline, size_t indent, int kind)
{
	static const char *const head[] = {"TIME", "AUTHOR", "KIND", "TEXT"};
	struct kx_table *t;
	json_t *e;
	size_t i;

	t = kx_table_new(kind ? 4 : 3, indent ? NULL : head);
	if (!t)
		return kx_cli_oom();
	kx_table_set_indent(t, indent);
	json_array_foreach(timeline, i, e) {
		kx_cli_time_cell(t, e, "at");
		kx_table_cell(t, kx_cli_jstr(e, "author"));
		if (kind)
			kx_table_cell(t, kx_cli_jstr(e, "kind"));
		kx_table_cell(t, kx_cli_jstr(e, "text"));
	}
	return kx_cli_print_table(t);
}

/* "[ ] 1 prevent  Fix dedupe query  owner dev  due 2026-12-01" */
static int print_items_brief(const json_t *items)
{
	struct kx_table *t = kx_table_new(4, NULL);
	struct kx_buf extra;
	json_t *it;
	size_t i;

	if (!t)
		return kx_cli_oom();
	kx_buf_init(&extra, 0);
	kx_table_set_indent(t, 2);
	kx_table_set_max(t, 2, KX_OUT_TITLE_MAX);
	json_array_foreach(items, i, it) {
		const char *st = kx_cli_jstr(it, "status");
		const char *owner = kx_cli_jstr(it, "owner");
		const char *due = kx_cli_jstr(it, "due");
		int done = (st && strcmp(st, "done") == 0) ||
			   kx_cli_jstr(it, "done_at") != NULL;

		kx_buf_clear(&extra);
		kx_table_cellf(t, "[%c] %" JSON_INTEGER_FORMAT, done ? 'x' : ' ',
			       json_integer_value(json_object_get(it, "number")));
		kx_table_cell(t, kx_cli_jstr(it, "kind"));
		kx_table_cell(t, kx_cli_jstr(it, "title"));
		if (owner && *owner)
			kx_buf_addf(&extra, "owner %s", owner);
		if (due && *due)
			kx_buf_addf(&extra, "%sdue %s", extra.len ? "  " : "", due);
		/* Out of memory may cut the tail of the line short. */
		kx_table_cell(t, kx_buf_str(&extra));
	}
	kx_buf_release(&extra);
	return kx_cli_print_table(t);
}

static int print_incident(const json_t *inc)
{
	static const struct {
		const char *label, *key;
		char kind;
	} rows[] = {
		{"ID", "id", 't'},
		{"Title", "title", 't'},
		{"Summary", "summary", 't'},
		{"Severity", "severity", 't'},
		{"Status", "status", 't'},
		{"Types", "types", 't'},
		{"Labels", "labels", 't'},
		{"Started", "started_at", 'T'},
		{"Detected", "detected_at", 'T'},
		{"Declared", "declared_at", 'T'},
		{"Acknowledged", "acknowledged_at", 'T'},
		{"Mitigated", "mitigated_at", 'T'},
		{"Resolved", "resolved_at", 'T'},
		{"Impact", "impact", 'i'},
		{"Root cause", "root_cause", 't'},
		{"Resolution", "resolution", 't'},
		{"Roles", "roles", 'r'},
	};
	const json_t *timeline = json_object_get(inc, "timeline");
	const json_t *items = json_object_get(inc, "action_items");
	int rc;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (show_field(inc, rows[i].label, rows[i].key, rows[i].kind))
			return kx_cli_oom();
	printf("\nTimeline\n");
	if (json_array_size(timeline) == 0)
		printf("  none\n");
	else if ((rc = print_timeline(timeline, 2, 0)))
		return rc;
	printf("\nAction items\n");
	if (json_array_size(items) == 0) {
		printf("  none\n");
		return KX_CLI_OK;
	}
	return print_items_brief(items);
}

static int cmd_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *inc = NULL;
	int rc = iexchange(cli, a, "GET", "", NULL, &inc);

	if (!rc && !cli->json)
		rc = print_incident(inc);
	json_decref(inc);
	return rc;
}

/* ---- changes ------------------------------------------------------------- */

/* Fetches the incident (without printing it) to learn a value before a
 * change; the caller json_decref()s *out. */
static int fetch_quiet(struct kx_cli *cli, const struct kx_args *a, json_t **out)
{
	struct kx_cli quiet = *cli;

	quiet.json = 0;
	return iexchange(&quiet, a, "GET", "", NULL, out);
}

/* status and severity: POST {field: value, note}, then "field OLD → NEW". */
static int change_field(struct kx_cli *cli, const struct kx_args *a,
			const char *field)
{
	json_t *before = NULL, *body = NULL, *inc = NULL;
	struct kx_buf suffix;
	const char *old, *now;
	int rc;

	kx_buf_init(&suffix, 0);
	if (!cli->json && (rc = fetch_quiet(cli, a, &before)))
		goto out;
	body = json_pack("{s:s, s:s*}", field, a->pos[1], "note", kx_args_get(a, "note"));
	if (!body || kx_buf_addf(&suffix, "/%s", field)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = iexchange(cli, a, "POST", kx_buf_str(&suffix), body, &inc);
	if (rc || cli->json)
		goto out;
	old = kx_cli_jstr(before, field);
	now = kx_cli_jstr(inc, field);
	rc = confirm(a, inc, "%s %s → %s", field, old ? old : "-", now ? now : a->pos[1]);
out:
	kx_buf_release(&suffix);
	json_decref(before);
	json_decref(body);
	json_decref(inc);
	return rc;
}

static int cmd_status(struct kx_cli *cli, const struct kx_args *a)
{
	return change_field(cli, a, "status");
}

static int cmd_severity(struct kx_cli *cli, const struct kx_args *a)
{
	return change_field(cli, a, "severity");
}

/* "alice, bob": who holds role in inc.roles. */
static int holders(struct kx_buf *b, const json_t *inc, const char *role)
{
	const json_t *roles = json_object_get(inc, "roles");
	json_t *r;
	size_t i;

	json_array_foreach(roles, i, r) {
		const char *rn = kx_cli_jstr(r, "role"), *p = kx_cli_jstr(r, "person");

		if (!rn || !p || strcmp(rn, role) != 0)
			continue;
		if ((b->len && kx_buf_adds(b, ", ")) || kx_buf_adds(b, p))
			return KX_ENOMEM;
	}
	return 0;
}

static int cmd_assign(struct kx_cli *cli, const struct kx_args *a)
{
	const char *role = kx_args_get(a, "role"), *to = kx_args_get(a, "to");
	int remove = kx_args_has(a, "remove");
	json_t *body, *inc = NULL;
	struct kx_buf who;
	int rc;

	kx_buf_init(&who, 0);
	body = json_pack("{s:s, s:s}", "role", role, "person", to);
	if (!body || (remove && json_object_set_new(body, "remove", json_true()))) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = iexchange(cli, a, "POST", "/roles", body, &inc);
	if (rc || cli->json)
		goto out;
	if (remove)
		rc = confirm(a, inc, "%s removed from %s", to, role);
	else if (holders(&who, inc, role))
		rc = kx_cli_oom();
	else
		rc = confirm(a, inc, "%s is %s", role, who.len ? kx_buf_str(&who) : to);
out:
	kx_buf_release(&who);
	json_decref(body);
	json_decref(inc);
	return rc;
}

/* POSTs body (NULL: {}) to suffix and confirms with msg. */
static int simple_change(struct kx_cli *cli, const struct kx_args *a,
			 const char *suffix, json_t *body, const char *msg)
{
	json_t *inc = NULL;
	int rc = iexchange(cli, a, "POST", suffix, body, &inc);

	if (!rc && !cli->json)
		rc = confirm(a, inc, "%s", msg);
	json_decref(inc);
	return rc;
}

static int cmd_ack(struct kx_cli *cli, const struct kx_args *a)
{
	return simple_change(cli, a, "/acknowledge", NULL, "acknowledged");
}

static int cmd_note(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body, *entry = NULL;
	int rc = kx_cli_check_time(a, "at");

	if (rc)
		return rc;
	body = json_pack("{s:s, s:s*}", "text", a->pos[1], "at", kx_args_get(a, "at"));
	if (!body)
		return kx_cli_oom();
	/* The answer is the timeline entry, not the incident: confirm with the
	 * ID as given. */
	rc = iexchange(cli, a, "POST", "/timeline", body, &entry);
	if (!rc && !cli->json)
		rc = confirm(a, NULL, "note added");
	json_decref(body);
	json_decref(entry);
	return rc;
}

static int cmd_impact(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const counts[] = {"users", "accounts", "actions"};
	static const char *const texts[] = {"revenue", "description"};
	json_t *body = json_object();
	int rc;

	if (!body)
		return kx_cli_oom();
	for (size_t i = 0; i < 3; i++) {
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
	for (size_t i = 0; i < 2; i++) {
		const char *v = kx_args_get(a, texts[i]);

		if (v && json_object_set_new(body, texts[i], json_string(v))) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if (json_object_size(body) == 0) {
		rc = kx_cli_usage(a, "nothing to change: give at least one of --users, --accounts, --actions, --revenue, --description");
		goto out;
	}
	rc = simple_change(cli, a, "/impact", body, "impact updated");
out:
	json_decref(body);
	return rc;
}

static int cmd_resolve(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = json_pack("{s:s, s:s*}", "resolution", kx_args_get(a, "resolution"),
				 "root_cause", kx_args_get(a, "root-cause"));
	int rc;

	if (!body)
		return kx_cli_oom();
	rc = simple_change(cli, a, "/resolve", body, "resolved");
	json_decref(body);
	return rc;
}

static int cmd_reopen(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = json_pack("{s:s*}", "note", kx_args_get(a, "note"));
	json_t *inc = NULL;
	const char *st;
	int rc;

	if (!body)
		return kx_cli_oom();
	rc = iexchange(cli, a, "POST", "/reopen", body, &inc);
	if (!rc && !cli->json) {
		st = kx_cli_jstr(inc, "status");
		rc = confirm(a, inc, "reopened, status %s", st ? st : "investigating");
	}
	json_decref(body);
	json_decref(inc);
	return rc;
}

static int cmd_edit(struct kx_cli *cli, const struct kx_args *a)
{
	static const struct {
		const char *flag, *field, *name;
	} texts[] = {
		{"title", "title", "title"},
		{"summary", "summary", "summary"},
		{"root-cause", "root_cause", "root cause"},
	};
	json_t *body = json_object();
	struct kx_buf what;
	int rc;

	kx_buf_init(&what, 0);
	if (!body)
		return kx_cli_oom();
	for (size_t i = 0; i < 3; i++) {
		const char *v = kx_args_get(a, texts[i].flag);

		if (!v)
			continue;
		if (json_object_set_new(body, texts[i].field, json_string(v)) ||
		    kx_buf_addf(&what, "%s%s", what.len ? ", " : "", texts[i].name)) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if ((rc = add_types(a, body)) || (rc = add_labels(a, body, 1)))
		goto out;
	if ((json_object_get(body, "types") && kx_buf_addf(&what, "%stypes", what.len ? ", " : "")) ||
	    (json_object_get(body, "labels") && kx_buf_addf(&what, "%slabels", what.len ? ", " : ""))) {
		rc = kx_cli_oom();
		goto out;
	}
	if (json_object_size(body) == 0) {
		rc = kx_cli_usage(a, "nothing to change: give at least one of --title, --summary, --root-cause, --type, --label, --unlabel");
		goto out;
	}
	{
		json_t *inc = NULL;

		rc = iexchange(cli, a, "PATCH", "", body, &inc);
		if (!rc && !cli->json)
			rc = confirm(a, inc, "updated %s", kx_buf_str(&what));
		json_decref(inc);
	}
out:
	kx_buf_release(&what);
	json_decref(body);
	return rc;
}

static int cmd_timeline(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	const json_t *tl;
	int rc = iexchange(cli, a, "GET", "/timeline", NULL, &ans);

	if (rc || cli->json)
		goto out;
	tl = json_object_get(ans, "timeline");
	if (json_array_size(tl) == 0)
		printf("no timeline entries\n");
	else
		rc = print_timeline(tl, 0, 1);
out:
	json_decref(ans);
	return rc;
}

/* ---- evidence ------------------------------------------------------------ */

/* Attaches the matching audit events to the incident: one timeline entry
 * that lists them. */
static int cmd_evidence(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const texts[] = {"since",  "until",	  "account", "action",
					    "client", "platform", "lane",    "actor"};
	const char *limit = kx_args_get(a, "limit");
	json_t *body = json_object(), *ans = NULL;
	long long n, events, total;
	int rc;

	if (!body)
		return kx_cli_oom();
	if ((rc = kx_cli_check_when(a, "since")) || (rc = kx_cli_check_when(a, "until")))
		goto out;
	if (limit && (kx_cli_parse_count(limit, &n) || n < 1 || n > 1000)) {
		rc = kx_cli_usage(a, "invalid value '%s' for '--limit': expected a number from 1 to 1000",
				  limit);
		goto out;
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const char *v = kx_args_get(a, texts[i]);

		if (v && json_object_set_new(body, texts[i], json_string(v))) {
			rc = kx_cli_oom();
			goto out;
		}
	}
	if (limit && json_object_set_new(body, "limit", json_integer(n))) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = iexchange(cli, a, "POST", "/evidence", body, &ans);
	if (rc || cli->json)
		goto out;
	events = (long long)json_integer_value(json_object_get(ans, "events"));
	total = (long long)json_integer_value(json_object_get(ans, "total"));
	if (total > events)
		rc = confirm(a, NULL, "attached %lld of %lld matching audit events as evidence "
			     "(raise --limit for more)", events, total);
	else
		rc = confirm(a, NULL, "attached %lld audit event%s as evidence", events,
			     events == 1 ? "" : "s");
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* ---- action items -------------------------------------------------------- */

static int cmd_item_add(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body, *item = NULL;
	int rc = kx_cli_check_date(a, "due");

	if (rc)
		return rc;
	body = json_pack("{s:s, s:s, s:s*, s:s*}", "title", kx_args_get(a, "title"),
			 "kind", kx_args_get(a, "kind"), "owner", kx_args_get(a, "owner"),
			 "due", kx_args_get(a, "due"));
	if (!body)
		return kx_cli_oom();
	rc = iexchange(cli, a, "POST", "/action-items", body, &item);
	if (!rc && !cli->json)
		rc = confirm(a, NULL, "action item %" JSON_INTEGER_FORMAT " added",
			     json_integer_value(json_object_get(item, "number")));
	json_decref(body);
	json_decref(item);
	return rc;
}

static int cmd_item_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const head[] = {"#", "KIND", "STATUS", "TITLE", "OWNER", "DUE"};
	json_t *ans = NULL, *it;
	const json_t *items;
	struct kx_table *t;
	size_t i;
	int rc = iexchange(cli, a, "GET", "/action-items", NULL, &ans);

	if (rc || cli->json)
		goto out;
	items = json_object_get(ans, "action_items");
	if (json_array_size(items) == 0) {
		printf("no action items\n");
		goto out;
	}
	t = kx_table_new(6, head);
	if (!t) {
		rc = kx_cli_oom();
		goto out;
	}
	kx_table_set_max(t, 3, KX_OUT_TITLE_MAX);
	json_array_foreach(items, i, it) {
		kx_cli_jcell(t, it, "number", "");
		kx_table_cell(t, kx_cli_jstr(it, "kind"));
		kx_table_cell(t, kx_cli_jstr(it, "status"));
		kx_table_cell(t, kx_cli_jstr(it, "title"));
		kx_table_cell(t, kx_cli_jstr(it, "owner"));
		kx_table_cell(t, kx_cli_jstr(it, "due"));
	}
	rc = kx_cli_print_table(t);
out:
	json_decref(ans);
	return rc;
}

static int cmd_item_done(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf suffix;
	json_t *item = NULL;
	long long n;
	int rc;

	if (kx_cli_parse_count(a->pos[1], &n))
		return kx_cli_usage(a, "invalid ITEM '%s': expected an action item number", a->pos[1]);
	kx_buf_init(&suffix, 0);
	if (kx_buf_addf(&suffix, "/action-items/%lld/done", n)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = iexchange(cli, a, "POST", kx_buf_str(&suffix), NULL, &item);
	if (!rc && !cli->json)
		rc = confirm(a, NULL, "action item %lld done", n);
out:
	kx_buf_release(&suffix);
	json_decref(item);
	return rc;
}

/* ---- export -------------------------------------------------------------- */

/* Writes len bytes to path (replacing it); returns an exit status. */
static int write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f) {
		fprintf(stderr, "klaxon: cannot write '%s': %s\n", path, strerror(errno));
		return KX_CLI_FAIL;
	}
	ok = fwrite(data, 1, len, f) == len;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "klaxon: cannot write '%s': %s\n", path, strerror(errno));
		return KX_CLI_FAIL;
	}
	return KX_CLI_OK;
}

static int dump_cb(const char *p, size_t n, void *ud)
{
	return kx_buf_add(ud, p, n) ? -1 : 0;
}

static int cmd_export(struct kx_cli *cli, const struct kx_args *a)
{
	const char *format = kx_args_get(a, "format");
	const char *output = kx_args_get(a, "output");
	struct kx_buf path, raw;
	struct kx_err err;
	json_t *doc = NULL;
	int rc;

	if (!format)
		format = cli->json ? "json" : "md";
	if (strcmp(format, "md") != 0 && strcmp(format, "json") != 0)
		return kx_cli_usage(a, "invalid value '%s' for '--format': expected md or json", format);
	if (output && !*output)
		return kx_cli_usage(a, "invalid value '' for '--output': expected a file name");
	kx_buf_init(&path, 0);
	kx_buf_init(&raw, KX_HTTP_MAX_BODY);
	kx_err_clear(&err);
	if (ipath(&path, a, "/export") || kx_http_query_add(&path, "format", format)) {
		rc = kx_cli_oom();
		goto out;
	}
	if (strcmp(format, "json") == 0) {
		if (kx_cli_call(cli, "GET", kx_buf_str(&path), NULL, &doc, &err)) {
			rc = kx_cli_fail(&err);
			goto out;
		}
		if (json_dump_callback(doc, dump_cb, &raw, JSON_INDENT(2)) ||
		    kx_buf_addc(&raw, '\n')) {
			rc = kx_cli_oom();
			goto out;
		}
	} else if (kx_cli_request(cli, "GET", kx_buf_str(&path), NULL, &raw, &err)) {
		rc = kx_cli_fail(&err);
		goto out;
	}
	if (!output) {
		fwrite(raw.data ? raw.data : "", 1, raw.len, stdout);
		rc = KX_CLI_OK;
		goto out;
	}
	rc = write_file(output, kx_buf_str(&raw), raw.len);
	if (!rc && !cli->json) {
		struct kx_buf msg;

		kx_buf_init(&msg, 0);
		rc = kx_buf_addf(&msg, "exported to %s", output) ? kx_cli_oom()
			: confirm(a, NULL, "%s", kx_buf_str(&msg));
		kx_buf_release(&msg);
	}
out:
	json_decref(doc);
	kx_buf_release(&path);
	kx_buf_release(&raw);
	return rc;
}

/* ---- the command tree ---------------------------------------------------- */

/* Every incident command checks its ID before anything else. */
#define CHECK_ID(a)                                                         \
	do {                                                                \
		int check_rc_ = kx_cli_check_segment((a), "incident ID", (a)->pos[0]); \
		if (check_rc_)                                              \
			return check_rc_;                                   \
	} while (0)

#define WITH_ID(fn)                                                          \
	static int fn##_checked(struct kx_cli *cli, const struct kx_args *a) \
	{                                                                    \
		CHECK_ID(a);                                                 \
		return fn(cli, a);                                           \
	}

WITH_ID(cmd_show)
WITH_ID(cmd_status)
WITH_ID(cmd_severity)
WITH_ID(cmd_assign)
WITH_ID(cmd_ack)
WITH_ID(cmd_note)
WITH_ID(cmd_impact)
WITH_ID(cmd_resolve)
WITH_ID(cmd_reopen)
WITH_ID(cmd_edit)
WITH_ID(cmd_timeline)
WITH_ID(cmd_item_add)
WITH_ID(cmd_item_list)
WITH_ID(cmd_item_done)
WITH_ID(cmd_export)
WITH_ID(cmd_evidence)

static const char *const args_id[] = {"ID", NULL};
static const char *const args_id_status[] = {"ID", "STATUS", NULL};
static const char *const args_id_level[] = {"ID", "LEVEL", NULL};
static const char *const args_id_text[] = {"ID", "TEXT", NULL};
static const char *const args_id_item[] = {"ID", "ITEM", NULL};

static const struct kx_opt no_opts[] = {{0}};

static const struct kx_opt declare_opts[] = {
	{"severity", KX_OPT_VALUE, "P", 1, "severity level as configured, e.g. P2"},
	{"title", KX_OPT_VALUE, "TEXT", 1, "one-line title, 1-200 characters"},
	{"type", KX_OPT_LIST, "TYPE", 0, "incident type as configured, e.g. ENGAGE"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "label the incident, e.g. client=acme"},
	{"summary", KX_OPT_VALUE, "TEXT", 0, "what is known so far"},
	{"started-at", KX_OPT_VALUE, "TIME", 0, "when the problem began, RFC 3339 (default now)"},
	{"detected-at", KX_OPT_VALUE, "TIME", 0, "when it was noticed, RFC 3339 (default now)"},
	{0},
};

static const struct kx_opt list_opts[] = {
	{"status", KX_OPT_VALUE, "S", 0, "only this status: investigating, identified, monitoring, resolved"},
	{"severity", KX_OPT_VALUE, "P", 0, "only this severity level"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "only incidents carrying this label"},
	{"since", KX_OPT_VALUE, "DURATION", 0, "only incidents declared within it, e.g. 2h, 1d"},
	{"open", KX_OPT_BOOL, NULL, 0, "only incidents not resolved"},
	{"limit", KX_OPT_VALUE, "N", 0, "at most N incidents, 1-1000 (default 100)"},
	{0},
};

static const struct kx_opt note_only_opts[] = {
	{"note", KX_OPT_VALUE, "TEXT", 0, "why, recorded on the timeline"},
	{0},
};

static const struct kx_opt assign_opts[] = {
	{"role", KX_OPT_VALUE, "ROLE", 1, "commander, ops_lead, tech_lead, comms_lead, scribe or sme"},
	{"to", KX_OPT_VALUE, "NAME", 1, "the person taking (or, with --remove, leaving) the role"},
	{"remove", KX_OPT_BOOL, NULL, 0, "take the person off the role instead"},
	{0},
};

static const struct kx_opt note_opts[] = {
	{"at", KX_OPT_VALUE, "TIME", 0, "when it happened, RFC 3339 (default now)"},
	{0},
};

static const struct kx_opt impact_opts[] = {
	{"users", KX_OPT_VALUE, "N", 0, "users affected"},
	{"accounts", KX_OPT_VALUE, "N", 0, "accounts affected"},
	{"actions", KX_OPT_VALUE, "N", 0, "wrong actions taken (messages, comments, orders)"},
	{"revenue", KX_OPT_VALUE, "AMOUNT", 0, "money at stake, as text, e.g. \"EUR 300\""},
	{"description", KX_OPT_VALUE, "TEXT", 0, "the impact in words"},
	{0},
};

static const struct kx_opt resolve_opts[] = {
	{"resolution", KX_OPT_VALUE, "TEXT", 1, "what was done to end it"},
	{"root-cause", KX_OPT_VALUE, "TEXT", 0, "why it happened"},
	{0},
};

static const struct kx_opt edit_opts[] = {
	{"title", KX_OPT_VALUE, "TEXT", 0, "new title"},
	{"summary", KX_OPT_VALUE, "TEXT", 0, "new summary"},
	{"root-cause", KX_OPT_VALUE, "TEXT", 0, "new root cause"},
	{"type", KX_OPT_LIST, "TYPE", 0, "incident type; the types given replace the old ones"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "set a label"},
	{"unlabel", KX_OPT_LIST, "KEY", 0, "remove a label"},
	{0},
};

static const struct kx_opt item_add_opts[] = {
	{"title", KX_OPT_VALUE, "TEXT", 1, "what to do"},
	{"kind", KX_OPT_VALUE, "KIND", 1, "mitigate, prevent or detect"},
	{"owner", KX_OPT_VALUE, "NAME", 0, "who does it"},
	{"due", KX_OPT_VALUE, "YYYY-MM-DD", 0, "by when"},
	{0},
};

static const struct kx_opt export_opts[] = {
	{"format", KX_OPT_VALUE, "md|json", 0, "Markdown record or JSON (default md; json with --json)"},
	{"output", KX_OPT_VALUE, "FILE", 0, "write to FILE instead of standard output"},
	{0},
};

static const struct kx_opt evidence_opts[] = {
	{"audit", KX_OPT_BOOL, NULL, 1, "attach audit events (the only kind of evidence for now)"},
	{"since", KX_OPT_VALUE, "WHEN", 0, "events at or after WHEN: a duration back from now (2h) or an RFC 3339 time"},
	{"until", KX_OPT_VALUE, "WHEN", 0, "events before WHEN"},
	{"account", KX_OPT_VALUE, "ACCOUNT", 0, "only this account"},
	{"action", KX_OPT_VALUE, "ACTION", 0, "only this action"},
	{"client", KX_OPT_VALUE, "CLIENT", 0, "only this client"},
	{"platform", KX_OPT_VALUE, "PLATFORM", 0, "only this platform"},
	{"lane", KX_OPT_VALUE, "LANE", 0, "only this lane (api, browser)"},
	{"actor", KX_OPT_VALUE, "ACTOR", 0, "only this actor (a bot, a runner)"},
	{"limit", KX_OPT_VALUE, "N", 0, "attach at most N events, 1-1000 (default 50)"},
	{0},
};

static const struct kx_cmd item_add = {
	.name = "add",
	.summary = "add an action item",
	.usage = "ID --title T --kind mitigate|prevent|detect [--owner O] [--due YYYY-MM-DD]",
	.description = "Add an action item to an incident and print its number.",
	.args = args_id,
	.opts = item_add_opts,
	.example = "klaxon incident action-item add INC-20261125-001 --title \"Fix dedupe query\" --kind prevent --owner dev --due 2026-12-01",
	.run = cmd_item_add_checked,
};

static const struct kx_cmd item_list = {
	.name = "list",
	.summary = "list an incident's action items",
	.usage = "ID",
	.description = "List the action items of an incident.",
	.args = args_id,
	.opts = no_opts,
	.example = "klaxon incident action-item list INC-20261125-001",
	.run = cmd_item_list_checked,
};

static const struct kx_cmd item_done = {
	.name = "done",
	.summary = "mark an action item done",
	.usage = "ID ITEM",
	.description = "Mark action item number ITEM of an incident done.",
	.args = args_id_item,
	.opts = no_opts,
	.example = "klaxon incident action-item done INC-20261125-001 1",
	.run = cmd_item_done_checked,
};

static const struct kx_cmd *const item_children[] = {&item_add, &item_list, &item_done, NULL};

static const struct kx_cmd action_item = {
	.name = "action-item",
	.summary = "add, list and complete follow-up work",
	.usage = "COMMAND [ARGS]",
	.description = "Follow-up work that comes out of an incident: mitigate, prevent, detect.",
	.children = item_children,
};

static const struct kx_cmd declare = {
	.name = "declare",
	.summary = "declare a new incident",
	.usage = "--severity P --title T [--type T]... [--label k=v]... [--summary TEXT] [--started-at TIME] [--detected-at TIME]",
	.description = "Declare an incident. Prints its ID on the first line, then a summary.",
	.opts = declare_opts,
	.example = "klaxon incident declare --severity P2 --title \"Duplicate comments sent\" --type ENGAGE --label client=acme",
	.run = cmd_declare,
};

static const struct kx_cmd list = {
	.name = "list",
	.summary = "list incidents, newest first",
	.usage = "[--status S] [--severity P] [--label k=v]... [--since 2h] [--open] [--limit N]",
	.description = "List incidents, newest first; filters combine.",
	.opts = list_opts,
	.example = "klaxon incident list --open --label client=acme --since 1d",
	.run = cmd_list,
};

static const struct kx_cmd show = {
	.name = "show",
	.summary = "show an incident with its timeline and action items",
	.usage = "ID",
	.description = "Show an incident: its fields, roles, timeline and action items.",
	.args = args_id,
	.opts = no_opts,
	.example = "klaxon incident show INC-20261125-001",
	.run = cmd_show_checked,
};

static const struct kx_cmd status = {
	.name = "status",
	.summary = "move an incident to another status",
	.usage = "ID investigating|identified|monitoring|resolved [--note TEXT]",
	.description = "Set the status of an incident.",
	.args = args_id_status,
	.opts = note_only_opts,
	.example = "klaxon incident status INC-20261125-001 identified --note \"bad deploy 14:05\"",
	.run = cmd_status_checked,
};

static const struct kx_cmd severity = {
	.name = "severity",
	.summary = "change an incident's severity",
	.usage = "ID LEVEL [--note TEXT]",
	.description = "Set the severity level of an incident.",
	.args = args_id_level,
	.opts = note_only_opts,
	.example = "klaxon incident severity INC-20261125-001 P1 --note \"second client affected\"",
	.run = cmd_severity_checked,
};

static const struct kx_cmd assign = {
	.name = "assign",
	.summary = "give someone a role (or take it away)",
	.usage = "ID --role commander|ops_lead|tech_lead|comms_lead|scribe|sme --to NAME [--remove]",
	.description = "Assign a person to a role of an incident; sme may hold several people, the other roles one.",
	.args = args_id,
	.opts = assign_opts,
	.example = "klaxon incident assign INC-20261125-001 --role commander --to alice",
	.run = cmd_assign_checked,
};

static const struct kx_cmd ack = {
	.name = "ack",
	.summary = "acknowledge an incident",
	.usage = "ID",
	.description = "Record that the incident has been acknowledged (once).",
	.args = args_id,
	.opts = no_opts,
	.example = "klaxon incident ack INC-20261125-001",
	.run = cmd_ack_checked,
};

static const struct kx_cmd note = {
	.name = "note",
	.summary = "add a note to the timeline",
	.usage = "ID TEXT [--at TIME]",
	.description = "Add a note to the incident's timeline.",
	.args = args_id_text,
	.opts = note_opts,
	.example = "klaxon incident note INC-20261125-001 \"rolled back to v41\" --at 2026-11-25T14:40:00Z",
	.run = cmd_note_checked,
};

static const struct kx_cmd impact = {
	.name = "impact",
	.summary = "record the impact",
	.usage = "ID [--users N] [--accounts N] [--actions N] [--revenue AMOUNT] [--description TEXT]",
	.description = "Record the impact of an incident; the fields given replace the stored ones.",
	.args = args_id,
	.opts = impact_opts,
	.example = "klaxon incident impact INC-20261125-001 --users 15 --actions 15 --revenue \"EUR 300\"",
	.run = cmd_impact_checked,
};

static const struct kx_cmd resolve = {
	.name = "resolve",
	.summary = "resolve an incident",
	.usage = "ID --resolution TEXT [--root-cause TEXT]",
	.description = "Resolve an incident, saying how.",
	.args = args_id,
	.opts = resolve_opts,
	.example = "klaxon incident resolve INC-20261125-001 --resolution \"fixed dedupe query, deleted duplicates\"",
	.run = cmd_resolve_checked,
};

static const struct kx_cmd reopen = {
	.name = "reopen",
	.summary = "reopen a resolved incident",
	.usage = "ID [--note TEXT]",
	.description = "Reopen a resolved incident; it goes back to investigating.",
	.args = args_id,
	.opts = note_only_opts,
	.example = "klaxon incident reopen INC-20261125-001 --note \"duplicates again\"",
	.run = cmd_reopen_checked,
};

static const struct kx_cmd edit = {
	.name = "edit",
	.summary = "edit title, summary, root cause, types or labels",
	.usage = "ID [--title T] [--summary S] [--root-cause T] [--type T]... [--label k=v]... [--unlabel k]...",
	.description = "Edit an incident. Each edited field is recorded on the timeline.",
	.args = args_id,
	.opts = edit_opts,
	.example = "klaxon incident edit INC-20261125-001 --title \"Duplicate comments on Instagram\" --label platform=instagram --unlabel team",
	.run = cmd_edit_checked,
};

static const struct kx_cmd timeline = {
	.name = "timeline",
	.summary = "show an incident's timeline",
	.usage = "ID",
	.description = "Show the timeline of an incident, oldest first.",
	.args = args_id,
	.opts = no_opts,
	.example = "klaxon incident timeline INC-20261125-001",
	.run = cmd_timeline_checked,
};

static const struct kx_cmd export_cmd = {
	.name = "export",
	.summary = "export the incident record (Markdown or JSON)",
	.usage = "ID [--format md|json] [--output FILE]",
	.description = "Export the incident record: Markdown as in the runbooks, or JSON with timeline and action items.",
	.args = args_id,
	.opts = export_opts,
	.example = "klaxon incident export INC-20261125-001 --output INC-20261125-001.md",
	.run = cmd_export_checked,
};

static const struct kx_cmd evidence = {
	.name = "evidence",
	.summary = "attach audit events to the incident as evidence",
	.usage = "ID --audit [--since 2h] [--until WHEN] [--account X] [--action A] [--client C] [--platform P] [--lane L] [--actor U] [--limit N]",
	.description = "Attach the matching audit events to the incident: one timeline entry that "
		       "lists them, kept with the record and its export.",
	.args = args_id,
	.opts = evidence_opts,
	.example = "klaxon incident evidence INC-20261125-001 --audit --since 2h --account @brand --action comment",
	.run = cmd_evidence_checked,
};

static const struct kx_cmd *const incident_children[] = {
	&declare, &list, &show, &status, &severity, &assign, &ack, &note,
	&impact, &resolve, &reopen, &edit, &timeline, &action_item, &evidence, &export_cmd,
	NULL,
};

const struct kx_cmd kx_cli_incident = {
	.name = "incident",
	.summary = "declare, follow and resolve incidents",
	.usage = "COMMAND [ARGS]",
	.children = incident_children,
};
