/* klaxon audit …: read, export, question and verify the audit log, and
 * append events to it from a file. */
#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events per request while exporting. */
#define EXPORT_PAGE 1000
/* The largest file `append` reads (the daemon takes at most
 * max_body_bytes, 1 MiB by default, in one request). */
#define APPEND_MAX ((size_t)64 << 20)

/* ---- helpers ------------------------------------------------------------- */

/* Checks the filter flags the command has; 0 or an exit status. */
static int check_filters(const struct kx_args *a)
{
	size_t n;
	const char *const *labels = kx_args_list(a, "label", &n);
	int rc;

	if ((rc = kx_cli_check_when(a, "since")) || (rc = kx_cli_check_when(a, "until")) ||
	    (rc = kx_cli_check_limit(a, 10000)) || (rc = kx_cli_labels(a, "label", NULL)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		size_t kn = strcspn(labels[i], "=");
		static const char *const fields[] = {"client", "account", "platform", "lane",
						     "action"};
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			if (strlen(fields[f]) == kn && !strncmp(labels[i], fields[f], kn))
				return kx_cli_usage(a, "'%s' is a field, not a label: use --%s",
						    fields[f], fields[f]);
	}
	return 0;
}

/* Appends "path?…" with every filter flag the command has. */
static int filter_path(const struct kx_args *a, const char *path, struct kx_buf *b)
{
	static const char *const plain[] = {"since",  "until",	  "actor", "client", "account",
					    "platform", "action", "target", "limit"};
	size_t n;
	const char *const *labels = kx_args_list(a, "label", &n);

	if (kx_buf_adds(b, path))
		return KX_ENOMEM;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		const char *v = kx_args_get(a, plain[i]);
		if (v && kx_http_query_add(b, plain[i], v))
			return KX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (kx_http_query_add(b, "label", labels[i]))
			return KX_ENOMEM;
	return 0;
}

/* Appends "2026-11-25 14:31:02" for the RFC 3339 time in member key of o
 * (the text as it is when it does not parse). */
static void time_cell(struct kx_table *t, const json_t *o, const char *key)
{
	const char *s = kx_cli_jstr(o, key);
	struct kx_civil c;
	kx_ms ms;

	if (!s || kx_time_parse(s, &ms)) {
		kx_table_cell(t, s);
		return;
	}
	kx_civil_from_ms(ms, &c);
	kx_table_cellf(t, "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour, c.min,
		       c.sec);
}

static int print_events(const json_t *events)
{
	static const char *const head[] = {"SEQ",	"TIME",	  "ACTOR",  "CLIENT", "ACCOUNT",
					   "PLATFORM", "ACTION", "TARGET", "OUTCOME"};
	static const char *const keys[] = {"actor",  "client", "account", "platform",
					   "action", "target", "outcome"};
	struct kx_table *t;
	json_t *e;
	size_t i;

	if (json_array_size(events) == 0) {
		printf("no events\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(9, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 7, KX_OUT_TITLE_MAX);
	json_array_foreach(events, i, e) {
		kx_cli_jcell(t, e, "seq", ",");
		time_cell(t, e, "at");
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			kx_cli_jcell(t, e, keys[k], ",");
	}
	return kx_cli_print_table(t);
}

/* GETs path and prints its events. */
static int show_events(struct kx_cli *cli, const char *path)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange(cli, "GET", path, NULL, &ans);

	if (!rc && !cli->json)
		rc = print_events(json_object_get(ans, "events"));
	json_decref(ans);
	return rc;
}

/* ---- recent, list -------------------------------------------------------- */

static int cmd_recent(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf path;
	int rc;

	if ((rc = kx_cli_check_limit(a, 10000)))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_buf_adds(&path, "/v1/audit/events") ||
	    kx_http_query_add(&path, "limit", kx_args_get(a, "limit") ? kx_args_get(a, "limit")
								      : "100"))
		rc = kx_cli_oom();
	else
		rc = show_events(cli, kx_buf_str(&path));
	kx_buf_release(&path);
	return rc;
}

static int cmd_list(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf path;
	int rc;

	if ((rc = check_filters(a)))
		return rc;
	kx_buf_init(&path, 0);
	if (filter_path(a, "/v1/audit/events", &path))
		rc = kx_cli_oom();
	else
		rc = show_events(cli, kx_buf_str(&path));
	kx_buf_release(&path);
	return rc;
}

/* ---- export -------------------------------------------------------------- */

/* Where an export goes: stdout, or FILE written as FILE.part and renamed
 * when complete, so that a failed export never leaves a truncated FILE. */
struct sink {
	FILE *f;
	const char *output;
	struct kx_buf part;
	size_t events;
	int wrote_event; /* json: an event was written (a comma goes first) */
};

static int sink_open(struct sink *s, const char *output)
{
	memset(s, 0, sizeof(*s));
	kx_buf_init(&s->part, 0);
	s->output = output;
	if (!output) {
		s->f = stdout;
		return 0;
	}
	if (kx_buf_addf(&s->part, "%s.part", output))
		return kx_cli_oom();
	if (!(s->f = fopen(kx_buf_str(&s->part), "w"))) {
		fprintf(stderr, "klaxon: cannot write '%s': %s\n", kx_buf_str(&s->part),
			strerror(errno));
		kx_buf_release(&s->part);
		return KX_CLI_FAIL;
	}
	return 0;
}

static int sink_write(struct sink *s, const char *p, size_t n)
{
	if (n && fwrite(p, 1, n, s->f) != n)
		return KX_EIO;
	return 0;
}

/* Closes the sink; on success renames FILE.part to FILE, else removes it.
 * Returns the exit status. */
static int sink_close(struct sink *s, int rc)
{
	int failed = 0;

	if (s->output) {
		failed = fclose(s->f) != 0;
		if (!rc && failed)
			fprintf(stderr, "klaxon: cannot write '%s': %s\n", kx_buf_str(&s->part),
				strerror(errno));
		if (!rc && !failed && rename(kx_buf_str(&s->part), s->output)) {
			fprintf(stderr, "klaxon: cannot write '%s': %s\n", s->output, strerror(errno));
			failed = 1;
		}
		if (rc || failed)
			remove(kx_buf_str(&s->part));
	}
	kx_buf_release(&s->part);
	return rc ? rc : failed ? KX_CLI_FAIL : KX_CLI_OK;
}

/* One page of an export as JSON: events are written one per line inside
 * {"events":[…]}. *rows and *last tell how many and the last seq. */
static int page_json(struct sink *s, const struct kx_buf *raw, size_t *rows, long long *last)
{
	json_t *ans = json_loadb(kx_buf_str(raw), raw->len, 0, NULL), *e;
	const json_t *events = json_object_get(ans, "events");
	size_t i;
	int rc = 0;

	if (!json_is_array(events)) {
		json_decref(ans);
		return KX_EJSON;
	}
	json_array_foreach(events, i, e) {
		char *text = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!text) {
			rc = KX_ENOMEM;
			break;
		}
		if (sink_write(s, s->wrote_event ? ",\n" : "\n", s->wrote_event ? 2 : 1) ||
		    sink_write(s, text, strlen(text)))
			rc = KX_EIO;
		free(text);
		if (rc)
			break;
		s->wrote_event = 1;
		*last = (long long)json_integer_value(json_object_get(e, "seq"));
	}
	*rows = json_array_size(events);
	json_decref(ans);
	return rc;
}

/* The seq at the start of the last line of text (CSV) or in the JSON of
 * the last line (NDJSON); 0 when there is none. */
static long long last_seq(const struct kx_buf *raw, int csv)
{
	const char *s = kx_buf_str(raw), *end = s + raw->len, *line;
	long long seq = 0;

	while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	for (line = end; line > s && line[-1] != '\n'; line--)
		;
	if (csv) {
		char *stop;
		seq = strtoll(line, &stop, 10);
		return stop > line && *stop == ',' ? seq : 0;
	} else {
		json_t *e = json_loadb(line, (size_t)(end - line), 0, NULL);
		seq = (long long)json_integer_value(json_object_get(e, "seq"));
		json_decref(e);
	}
	return seq;
}

/* One page of an export as NDJSON or CSV (the CSV header only once). */
static int page_lines(struct sink *s, const struct kx_buf *raw, int csv, int first,
		      size_t *rows, long long *last)
{
	const char *p = kx_buf_str(raw);
	size_t n = raw->len;

	if (csv && !first) { /* the header again: drop it */
		const char *nl = memchr(p, '\n', n);
		n -= nl ? (size_t)(nl + 1 - p) : n;
		p = nl ? nl + 1 : p + raw->len;
	}
	*rows = 0;
	for (size_t i = 0; i < raw->len; i++)
		*rows += raw->data[i] == '\n';
	if (csv && *rows)
		(*rows)--; /* the header */
	*last = last_seq(raw, csv);
	return sink_write(s, p, n);
}

static int cmd_export(struct kx_cli *cli, const struct kx_args *a)
{
	const char *format = kx_args_get(a, "format");
	const char *output = kx_args_get(a, "output");
	struct kx_buf base, path, raw;
	struct kx_err err;
	struct sink s;
	long long after = 0;
	int json, csv, rc;
	char num[24];

	if (!format)
		format = "json";
	json = !strcmp(format, "json");
	csv = !strcmp(format, "csv");
	if (!json && !csv && strcmp(format, "ndjson"))
		return kx_cli_usage(a, "invalid value '%s' for '--format': expected json, ndjson or csv",
				    format);
	if (output && !*output)
		return kx_cli_usage(a, "invalid value '' for '--output': expected a file name");
	if ((rc = check_filters(a)))
		return rc;
	if ((rc = sink_open(&s, output)))
		return rc;
	kx_buf_init(&base, 0);
	kx_buf_init(&path, 0);
	kx_buf_init(&raw, KX_HTTP_MAX_BODY);
	kx_err_clear(&err);
	snprintf(num, sizeof(num), "%d", EXPORT_PAGE);
	if (filter_path(a, "/v1/audit/events", &base) || kx_http_query_add(&base, "order", "asc") ||
	    kx_http_query_add(&base, "limit", num) || kx_http_query_add(&base, "format", format)) {
		rc = kx_cli_oom();
		goto out;
	}
	if (json && sink_write(&s, "{\"events\":[", 11)) {
		rc = KX_CLI_FAIL;
		goto out;
	}
	/* Page through in seq order, each page after the last seq seen. */
	for (int first = 1;; first = 0) {
		size_t rows = 0;
		long long last = 0;

		kx_buf_clear(&path);
		snprintf(num, sizeof(num), "%lld", after);
		if (kx_buf_adds(&path, kx_buf_str(&base)) ||
		    (after && kx_http_query_add(&path, "after_seq", num))) {
			rc = kx_cli_oom();
			goto out;
		}
		if (kx_cli_request(cli, "GET", kx_buf_str(&path), NULL, &raw, &err)) {
			rc = kx_cli_fail(&err);
			goto out;
		}
		rc = json ? page_json(&s, &raw, &rows, &last)
			  : page_lines(&s, &raw, csv, first, &rows, &last);
		if (rc == KX_EJSON) {
			fprintf(stderr, "klaxon: cannot parse the answer from klaxond\n");
			rc = KX_CLI_FAIL;
			goto out;
		}
		if (rc) {
			rc = rc == KX_ENOMEM ? kx_cli_oom() : KX_CLI_FAIL;
			goto out;
		}
		s.events += rows;
		if (rows < EXPORT_PAGE || last <= after)
			break;
		after = last;
	}
	if (json && sink_write(&s, "\n]}\n", 4)) {
		rc = KX_CLI_FAIL;
		goto out;
	}
	rc = KX_CLI_OK;
out:
	if (rc == KX_CLI_FAIL && ferror(s.f))
		fprintf(stderr, "klaxon: cannot write the export: %s\n", strerror(errno));
	rc = sink_close(&s, rc);
	if (!rc && output && !cli->json)
		printf("exported %zu events to %s\n", s.events, output);
	kx_buf_release(&base);
	kx_buf_release(&path);
	kx_buf_release(&raw);
	return rc;
}

/* ---- duplicates, recipients ---------------------------------------------- */

static int cmd_duplicates(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const head[] = {"COUNT",   "ACCOUNTS", "ACTION", "TARGET",
					   "CONTENT", "FIRST",	  "LAST"};
	struct kx_buf path;
	struct kx_table *t;
	json_t *ans = NULL, *g;
	const json_t *list;
	size_t i;
	int rc;

	if ((rc = check_filters(a)))
		return rc;
	kx_buf_init(&path, 0);
	if (filter_path(a, "/v1/audit/duplicates", &path)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "GET", kx_buf_str(&path), NULL, &ans);
	if (rc || cli->json)
		goto out;
	list = json_object_get(ans, "duplicates");
	if (json_array_size(list) == 0) {
		printf("no duplicates\n");
		goto out;
	}
	if (!(t = kx_table_new(7, head))) {
		rc = kx_cli_oom();
		goto out;
	}
	kx_table_set_max(t, 3, KX_OUT_TITLE_MAX);
	json_array_foreach(list, i, g) {
		kx_cli_jcell(t, g, "count", ",");
		kx_cli_jcell(t, g, "accounts", ",");
		kx_cli_jcell(t, g, "action", ",");
		kx_cli_jcell(t, g, "target", ",");
		kx_cli_jcell(t, g, "content_hash", ",");
		time_cell(t, g, "first_at");
		time_cell(t, g, "last_at");
	}
	rc = kx_cli_print_table(t);
out:
	kx_buf_release(&path);
	json_decref(ans);
	return rc;
}

static int cmd_recipients(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const head[] = {"TARGET", "COUNT", "ACCOUNTS", "FIRST", "LAST"};
	struct kx_buf path;
	struct kx_table *t;
	json_t *ans = NULL, *g;
	const json_t *list;
	size_t i;
	int rc;

	if ((rc = check_filters(a)))
		return rc;
	kx_buf_init(&path, 0);
	if (filter_path(a, "/v1/audit/recipients", &path)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "GET", kx_buf_str(&path), NULL, &ans);
	if (rc || cli->json)
		goto out;
	list = json_object_get(ans, "recipients");
	if (json_array_size(list) == 0) {
		printf("no recipients\n");
		goto out;
	}
	if (!(t = kx_table_new(5, head))) {
		rc = kx_cli_oom();
		goto out;
	}
	kx_table_set_max(t, 0, KX_OUT_TITLE_MAX);
	json_array_foreach(list, i, g) {
		kx_cli_jcell(t, g, "target", ",");
		kx_cli_jcell(t, g, "count", ",");
		kx_cli_jcell(t, g, "accounts", ",");
		time_cell(t, g, "first_at");
		time_cell(t, g, "last_at");
	}
	rc = kx_cli_print_table(t);
out:
	kx_buf_release(&path);
	json_decref(ans);
	return rc;
}

/* ---- verify -------------------------------------------------------------- */

/* Prints the verdict of GET /v1/audit/verify for people. */
static int print_verdict(const json_t *ans, int intact)
{
	const json_t *head = json_object_get(ans, "head");
	const char *reason = kx_cli_jstr(ans, "reason");
	long long events = (long long)json_integer_value(json_object_get(ans, "events"));
	struct kx_buf line;
	int rc;

	kx_buf_init(&line, 0);
	if (intact) {
		rc = kx_buf_addf(&line, "chain intact: %lld events", events) ||
		     kx_out_line(stdout, kx_buf_str(&line));
		kx_buf_clear(&line);
		if (!rc && json_is_object(head))
			rc = kx_buf_addf(&line, "head: event %lld, hash %s",
					 (long long)json_integer_value(json_object_get(head, "seq")),
					 kx_cli_jstr(head, "hash") ? kx_cli_jstr(head, "hash") : "-") ||
			     kx_out_line(stdout, kx_buf_str(&line));
	} else {
		rc = kx_buf_addf(&line, "chain broken at event %lld: %s",
				 (long long)json_integer_value(json_object_get(ans, "broken_at")),
				 reason ? reason : "unknown") ||
		     kx_out_line(stdout, kx_buf_str(&line));
		kx_buf_clear(&line);
		if (!rc)
			rc = kx_buf_addf(&line, "the %lld events before it are intact", events) ||
			     kx_out_line(stdout, kx_buf_str(&line));
	}
	kx_buf_release(&line);
	return rc ? KX_ENOMEM : 0;
}

static int cmd_verify(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange(cli, "GET", "/v1/audit/verify", NULL, &ans), intact;

	(void)a;
	if (rc)
		return rc;
	intact = json_is_true(json_object_get(ans, "intact"));
	if (!cli->json && print_verdict(ans, intact))
		rc = kx_cli_oom();
	/* A broken chain is the answer, not a failed request: it is printed
	 * on stdout, and the exit status says it. */
	else if (!intact)
		rc = KX_CLI_FAIL;
	json_decref(ans);
	return rc;
}

/* ---- append -------------------------------------------------------------- */

/* Reads all of f into b; 0 or an exit status (the message printed). */
static int read_all(FILE *f, const char *name, struct kx_buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (kx_buf_add(b, chunk, n)) {
			fprintf(stderr, "klaxon: '%s' is larger than %zu bytes\n", name, APPEND_MAX);
			return KX_CLI_FAIL;
		}
	if (ferror(f)) {
		fprintf(stderr, "klaxon: cannot read '%s': %s\n", name, strerror(errno));
		return KX_CLI_FAIL;
	}
	return 0;
}

static int cmd_append(struct kx_cli *cli, const struct kx_args *a)
{
	const char *file = kx_args_get(a, "file");
	struct kx_buf data, raw, line;
	struct kx_err err;
	json_t *ans = NULL;
	int rc;
	FILE *f;

	if (!*file)
		return kx_cli_usage(a, "invalid value '' for '--file': expected a file name or -");
	kx_buf_init(&data, APPEND_MAX);
	kx_buf_init(&raw, KX_HTTP_MAX_BODY);
	kx_buf_init(&line, 0);
	kx_err_clear(&err);
	if (!strcmp(file, "-")) {
		rc = read_all(stdin, "standard input", &data);
	} else if (!(f = fopen(file, "r"))) {
		fprintf(stderr, "klaxon: cannot read '%s': %s\n", file, strerror(errno));
		rc = KX_CLI_FAIL;
	} else {
		rc = read_all(f, file, &data);
		fclose(f);
	}
	if (rc)
		goto out;
	/* One request, so the daemon stores all of the file or none of it. */
	if (kx_cli_send(cli, "POST", "/v1/audit/events", "application/x-ndjson", kx_buf_str(&data),
			data.len, &raw, &err)) {
		rc = kx_cli_fail(&err);
		goto out;
	}
	if (cli->json) {
		fwrite(raw.data ? raw.data : "", 1, raw.len, stdout);
		fputc('\n', stdout);
		goto out;
	}
	ans = json_loadb(kx_buf_str(&raw), raw.len, 0, NULL);
	if (kx_buf_addf(&line, "appended %lld events (seq %lld-%lld)",
			(long long)json_integer_value(json_object_get(ans, "appended")),
			(long long)json_integer_value(json_object_get(ans, "first_seq")),
			(long long)json_integer_value(json_object_get(ans, "last_seq"))) ||
	    kx_out_line(stdout, kx_buf_str(&line)))
		rc = kx_cli_oom();
out:
	json_decref(ans);
	kx_buf_release(&data);
	kx_buf_release(&raw);
	kx_buf_release(&line);
	return rc;
}

/* ---- the command tree ---------------------------------------------------- */

#define WHEN_HELP "a duration back from now (1h) or an RFC 3339 time"

static const struct kx_opt recent_opts[] = {
	{"limit", KX_OPT_VALUE, "N", 0, "how many events (1-10000, default 100)"},
	{0},
};

static const struct kx_opt list_opts[] = {
	{"since", KX_OPT_VALUE, "WHEN", 0, "events at or after WHEN: " WHEN_HELP},
	{"until", KX_OPT_VALUE, "WHEN", 0, "events before WHEN: " WHEN_HELP},
	{"account", KX_OPT_VALUE, "ACCOUNT", 0, "only this account"},
	{"action", KX_OPT_VALUE, "ACTION", 0, "only this action (comment, dm, incident.declare…)"},
	{"actor", KX_OPT_VALUE, "ACTOR", 0, "only this actor"},
	{"client", KX_OPT_VALUE, "CLIENT", 0, "only this client"},
	{"platform", KX_OPT_VALUE, "PLATFORM", 0, "only this platform"},
	{"target", KX_OPT_VALUE, "TARGET", 0, "only this target"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "only events with this label"},
	{"limit", KX_OPT_VALUE, "N", 0, "how many events (1-10000, default 100)"},
	{0},
};

static const struct kx_opt export_opts[] = {
	{"since", KX_OPT_VALUE, "WHEN", 0, "events at or after WHEN: " WHEN_HELP},
	{"until", KX_OPT_VALUE, "WHEN", 0, "events before WHEN: " WHEN_HELP},
	{"account", KX_OPT_VALUE, "ACCOUNT", 0, "only this account"},
	{"action", KX_OPT_VALUE, "ACTION", 0, "only this action"},
	{"actor", KX_OPT_VALUE, "ACTOR", 0, "only this actor"},
	{"client", KX_OPT_VALUE, "CLIENT", 0, "only this client"},
	{"platform", KX_OPT_VALUE, "PLATFORM", 0, "only this platform"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "only events with this label"},
	{"format", KX_OPT_VALUE, "json|ndjson|csv", 0, "output format (default json)"},
	{"output", KX_OPT_VALUE, "FILE", 0, "write to FILE instead of standard output"},
	{0},
};

static const struct kx_opt group_opts[] = {
	{"action", KX_OPT_VALUE, "ACTION", 0, "only this action (comment, dm…)"},
	{"since", KX_OPT_VALUE, "WHEN", 0, "events at or after WHEN: " WHEN_HELP},
	{"until", KX_OPT_VALUE, "WHEN", 0, "events before WHEN: " WHEN_HELP},
	{"account", KX_OPT_VALUE, "ACCOUNT", 0, "only this account"},
	{"client", KX_OPT_VALUE, "CLIENT", 0, "only this client"},
	{"platform", KX_OPT_VALUE, "PLATFORM", 0, "only this platform"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "only events with this label"},
	{"limit", KX_OPT_VALUE, "N", 0, "how many rows (1-10000, default 100)"},
	{0},
};

static const struct kx_opt append_opts[] = {
	{"file", KX_OPT_VALUE, "FILE", 1, "NDJSON events, one object per line; - for standard input"},
	{0},
};

static const struct kx_opt no_opts[] = {{0}};

static const struct kx_cmd recent = {
	.name = "recent",
	.summary = "show the latest events",
	.usage = "[--limit N]",
	.description = "Show the latest audit events, newest first.",
	.opts = recent_opts,
	.example = "klaxon audit recent --limit 100",
	.run = cmd_recent,
};

static const struct kx_cmd list = {
	.name = "list",
	.summary = "list events by account, action, actor, time…",
	.usage = "[--account X] [--action A] [--actor U] [--since 1h] [--until WHEN] [--limit N] …",
	.description = "List audit events, newest first; filters combine.",
	.opts = list_opts,
	.example = "klaxon audit list --account @brand --since 1h",
	.run = cmd_list,
};

static const struct kx_cmd export_cmd = {
	.name = "export",
	.summary = "export events as JSON, NDJSON or CSV",
	.usage = "[--since 2h] [--until WHEN] [--format json|ndjson|csv] [--output FILE] …",
	.description = "Export every matching audit event, oldest first, with its hashes: JSON "
		       "({\"events\":[…]}), NDJSON (one event per line) or CSV (a header row, "
		       "RFC 4180 quoting). With --output the file appears only once complete.",
	.opts = export_opts,
	.example = "klaxon audit export --since 2h --format json --output incident_audit.json",
	.run = cmd_export,
};

static const struct kx_cmd duplicates = {
	.name = "duplicates",
	.summary = "find the same action on the same target with the same content",
	.usage = "[--action A] [--since 24h] …",
	.description = "Find groups of events with the same action, target and content hash "
		       "(more than one each), most repeated first: duplicate comments, repeated DMs.",
	.opts = group_opts,
	.example = "klaxon audit duplicates --action comment --since 24h",
	.run = cmd_duplicates,
};

static const struct kx_cmd recipients = {
	.name = "recipients",
	.summary = "list who an action reached, with counts",
	.usage = "[--action A] [--since 1h] …",
	.description = "List the distinct targets of matching events with how many events each "
		       "got and from how many accounts, most first: who received DMs.",
	.opts = group_opts,
	.example = "klaxon audit recipients --action dm --since 1h",
	.run = cmd_recipients,
};

static const struct kx_cmd verify = {
	.name = "verify",
	.summary = "check the hash chain (admin)",
	.usage = "",
	.description = "Walk the whole hash chain and recompute every hash. Prints 'chain intact: "
		       "N events' (exit 0) or 'chain broken at event SEQ: …' (exit 1).",
	.opts = no_opts,
	.example = "klaxon audit verify",
	.run = cmd_verify,
};

static const struct kx_cmd append = {
	.name = "append",
	.summary = "append events from an NDJSON file",
	.usage = "--file FILE|-",
	.description = "Append the events of an NDJSON file (one JSON object per line) in one "
		       "request: all of them or, when a line is bad, none (the message names the "
		       "line).",
	.opts = append_opts,
	.example = "klaxon audit append --file events.ndjson",
	.run = cmd_append,
};

static const struct kx_cmd *const audit_children[] = {
	&recent, &list, &export_cmd, &duplicates, &recipients, &verify, &append, NULL,
};

const struct kx_cmd kx_cli_audit = {
	.name = "audit",
	.summary = "read, export and verify the audit log",
	.usage = "COMMAND [ARGS]",
	.description = "The audit log: every action automation reports and every change people make "
		       "in Klaxon, append-only and hash-chained.",
	.children = audit_children,
};
