#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsed arguments --------------------------------------------------- */

void kx_args_init(struct kx_args *a)
{
	memset(a, 0, sizeof(*a));
	kx_buf_init(&a->path, 0);
}

void kx_args_release(struct kx_args *a)
{
	for (size_t i = 0; i < KX_CLI_MAX_OPTS; i++) {
		free(a->val[i].list);
		a->val[i].list = NULL;
		a->val[i].n = 0;
	}
	kx_buf_release(&a->path);
}

static int opt_index(const struct kx_cmd *cmd, const char *name, size_t len)
{
	if (!cmd || !cmd->opts)
		return -1;
	for (int i = 0; cmd->opts[i].name && i < KX_CLI_MAX_OPTS; i++)
		if (strlen(cmd->opts[i].name) == len &&
		    memcmp(cmd->opts[i].name, name, len) == 0)
			return i;
	return -1;
}

const char *kx_args_get(const struct kx_args *a, const char *name)
{
	int i = opt_index(a->cmd, name, strlen(name));

	return i < 0 ? NULL : a->val[i].value;
}

int kx_args_has(const struct kx_args *a, const char *name)
{
	int i = opt_index(a->cmd, name, strlen(name));

	return i >= 0 && a->val[i].set;
}

const char *const *kx_args_list(const struct kx_args *a, const char *name,
				size_t *n)
{
	int i = opt_index(a->cmd, name, strlen(name));

	*n = i < 0 ? 0 : a->val[i].n;
	return i < 0 ? NULL : (const char *const *)a->val[i].list;
}

/* ---- usage errors and failures ----------------------------------------- */

static void usagev(const char *path, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void usagev(const char *path, const char *fmt, va_list ap)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	if (kx_buf_addvf(&b, fmt, ap) == 0) {
		struct kx_buf clean;

		kx_buf_init(&clean, 0);
		if (kx_out_clean(&clean, kx_buf_str(&b), 0) == 0)
			fprintf(stderr, "klaxon: %s\n", kx_buf_str(&clean));
		kx_buf_release(&clean);
	}
	fprintf(stderr, "(see '%s --help')\n", path);
	kx_buf_release(&b);
}

int kx_cli_usage(const struct kx_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	usagev(kx_buf_str(&a->path), fmt, ap);
	va_end(ap);
	return KX_CLI_USAGE;
}

int kx_cli_fail(const struct kx_err *err)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	if (kx_out_clean(&b, err->msg[0] ? err->msg : "request failed", 0))
		fprintf(stderr, "klaxon: out of memory\n");
	else
		fprintf(stderr, "klaxon: %s\n", kx_buf_str(&b));
	kx_buf_release(&b);
	return KX_CLI_FAIL;
}

int kx_cli_oom(void)
{
	fprintf(stderr, "klaxon: out of memory\n");
	return KX_CLI_FAIL;
}

/* ---- flags --------------------------------------------------------------- */

/* Splits "--name=value" / "--name": sets *name, *nlen and *value (NULL when
 * there is no '='). Returns 0 when arg is not a long flag. */
static int split_flag(const char *arg, const char **name, size_t *nlen,
		      const char **value)
{
	const char *eq;

	if (strncmp(arg, "--", 2) != 0 || !arg[2])
		return 0;
	*name = arg + 2;
	eq = strchr(*name, '=');
	*nlen = eq ? (size_t)(eq - *name) : strlen(*name);
	*value = eq ? eq + 1 : NULL;
	return 1;
}

static int is_flag(const char *arg, const char *name, size_t nlen)
{
	return strlen(arg) == nlen && memcmp(arg, name, nlen) == 0;
}

int kx_cli_global(struct kx_cli *g, struct kx_args *a, int argc, char **argv,
		  int *i, struct kx_err *err)
{
	const char *arg = argv[*i], *name, *value;
	const char **dest;
	size_t nlen;

	if (strcmp(arg, "-h") == 0) {
		a->help = 1;
		(*i)++;
		return 1;
	}
	if (!split_flag(arg, &name, &nlen, &value))
		return 0;
	if (is_flag("help", name, nlen) || is_flag("json", name, nlen) ||
	    is_flag("version", name, nlen)) {
		(*i)++;
		if (value)
			return kx_err_set(err, KX_EINVAL,
					  "flag '--%.*s' takes no value", (int)nlen, name);
		if (name[0] == 'h')
			a->help = 1;
		else if (name[0] == 'j')
			g->json = 1;
		else
			a->version = 1;
		return 1;
	}
	if (is_flag("url", name, nlen))
		dest = &g->url;
	else if (is_flag("token", name, nlen))
		dest = &g->token;
	else
		return 0;
	(*i)++;
	if (!value) {
		if (*i >= argc)
			return kx_err_set(err, KX_EINVAL, "flag '--%.*s' needs a value",
					  (int)nlen, name);
		value = argv[(*i)++];
	}
	*dest = value;
	return 1;
}

/* Whether s is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF), as JSON strings must be. */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned char c = *p;
		size_t n;
		unsigned long cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t k = 1; k <= n; k++) {
			if ((p[k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* Stores value for flag k of a->cmd. Returns 0 or KX_EINVAL/KX_ENOMEM. */
static int store_opt(struct kx_args *a, int k, const char *value,
		     size_t max_values, struct kx_err *err)
{
	const struct kx_opt *o = &a->cmd->opts[k];
	struct kx_opt_val *v = &a->val[k];

	if (value && strcmp(o->name, "output") != 0 && !utf8_ok(value))
		return kx_err_set(err, KX_EINVAL, "invalid value for '--%s': not UTF-8 text",
				  o->name);
	if (o->kind == KX_OPT_LIST) {
		if (!v->list) {
			v->list = calloc(max_values, sizeof(*v->list));
			if (!v->list)
				return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
		v->list[v->n++] = value;
	} else if (v->set && o->kind == KX_OPT_VALUE) {
		return kx_err_set(err, KX_EINVAL, "flag '--%s' given more than once",
				  o->name);
	}
	v->set = 1;
	if (o->kind == KX_OPT_VALUE)
		v->value = value;
	return 0;
}

/* Parses one command flag at argv[*i]. Returns 0 or a negative code. */
static int parse_flag(struct kx_args *a, int argc, char **argv, int *i,
		      struct kx_err *err)
{
	const char *arg = argv[*i], *name, *value;
	size_t nlen;
	int k;

	(*i)++;
	if (!split_flag(arg, &name, &nlen, &value))
		return kx_err_set(err, KX_EINVAL, "unknown flag '%s'", arg);
	k = opt_index(a->cmd, name, nlen);
	if (k < 0)
		return kx_err_set(err, KX_EINVAL, "unknown flag '--%.*s'", (int)nlen, name);
	if (a->cmd->opts[k].kind == KX_OPT_BOOL) {
		if (value)
			return kx_err_set(err, KX_EINVAL, "flag '--%s' takes no value",
					  a->cmd->opts[k].name);
	} else if (!value) {
		if (*i >= argc)
			return kx_err_set(err, KX_EINVAL, "flag '--%s' needs a value",
					  a->cmd->opts[k].name);
		value = argv[(*i)++];
	}
	return store_opt(a, k, value, (size_t)argc, err);
}

static size_t count_args(const struct kx_cmd *cmd)
{
	size_t n = 0;

	while (cmd->args && cmd->args[n])
		n++;
	return n;
}

/* What is missing after a clean parse: a positional or a required flag. */
static int check_complete(const struct kx_args *a, struct kx_err *err)
{
	const struct kx_cmd *cmd = a->cmd;

	if (a->npos < count_args(cmd))
		return kx_err_set(err, KX_EINVAL, "missing %s", cmd->args[a->npos]);
	for (int k = 0; cmd->opts && cmd->opts[k].name; k++)
		if (cmd->opts[k].required && !a->val[k].set)
			return kx_err_set(err, KX_EINVAL, "missing required flag '--%s'",
					  cmd->opts[k].name);
	return 0;
}

int kx_cli_parse(struct kx_cli *g, struct kx_args *a, int argc, char **argv,
		 int start)
{
	struct kx_err err, first;
	size_t nargs = count_args(a->cmd);
	int only_pos = 0;
	int i = start;

	kx_err_clear(&first);
	while (i < argc) {
		const char *arg = argv[i];
		int rc;

		kx_err_clear(&err);
		if (!only_pos && strcmp(arg, "--") == 0) {
			only_pos = 1;
			i++;
			continue;
		}
		if (!only_pos && arg[0] == '-' && arg[1]) {
			rc = kx_cli_global(g, a, argc, argv, &i, &err);
			if (rc == 0)
				rc = parse_flag(a, argc, argv, &i, &err);
			else if (rc > 0)
				rc = 0;
		} else {
			i++;
			rc = 0;
			if (a->npos < nargs && !utf8_ok(arg))
				rc = kx_err_set(&err, KX_EINVAL, "invalid %s: not UTF-8 text",
						a->cmd->args[a->npos]);
			else if (a->npos < nargs && a->npos < KX_CLI_MAX_ARGS)
				a->pos[a->npos++] = arg;
			else
				rc = kx_err_set(&err, KX_EINVAL, "unexpected argument '%s'", arg);
		}
		if (rc == KX_ENOMEM) {
			fprintf(stderr, "klaxon: out of memory\n");
			return KX_CLI_FAIL;
		}
		if (rc && !first.code)
			first = err;
	}
	if (a->help || a->version)
		return 0;
	if (!first.code)
		check_complete(a, &first);
	if (first.code)
		return kx_cli_usage(a, "%s", first.msg);
	return 0;
}

/* ---- help ---------------------------------------------------------------- */

static void opt_label(struct kx_buf *b, const struct kx_opt *o)
{
	kx_buf_clear(b);
	if (o->metavar)
		kx_buf_addf(b, "--%s %s", o->name, o->metavar);
	else
		kx_buf_addf(b, "--%s", o->name);
}

static void help_family(const struct kx_cmd *cmd, const char *path, FILE *f)
{
	size_t w = 0;

	fprintf(f, "usage: %s %s\n\n", path, cmd->usage);
	if (cmd->description)
		fprintf(f, "%s\n\n", cmd->description);
	fprintf(f, "commands:\n");
	for (size_t i = 0; cmd->children[i]; i++)
		if (strlen(cmd->children[i]->name) > w)
			w = strlen(cmd->children[i]->name);
	for (size_t i = 0; cmd->children[i]; i++)
		fprintf(f, "  %-*s  %s\n", (int)w, cmd->children[i]->name,
			cmd->children[i]->summary);
}

static void help_command(const struct kx_cmd *cmd, const char *path, FILE *f)
{
	struct kx_buf b;
	size_t w = 0;

	kx_buf_init(&b, 0);
	fprintf(f, "usage: %s%s%s\n\n", path, cmd->usage[0] ? " " : "", cmd->usage);
	fprintf(f, "%s\n", cmd->description);
	if (cmd->opts && cmd->opts[0].name) {
		for (size_t k = 0; cmd->opts[k].name; k++) {
			opt_label(&b, &cmd->opts[k]);
			if (b.len > w)
				w = b.len;
		}
		fprintf(f, "\nflags:\n");
		for (size_t k = 0; cmd->opts[k].name; k++) {
			const struct kx_opt *o = &cmd->opts[k];

			opt_label(&b, o);
			fprintf(f, "  %-*s  %s%s%s\n", (int)w, kx_buf_str(&b), o->help,
				o->required ? " (required)" : "",
				o->kind == KX_OPT_LIST ? " (repeatable)" : "");
		}
	}
	fprintf(f, "\nexample:\n  %s\n", cmd->example);
	fprintf(f, "\nglobal flags --url URL, --token TOKEN and --json work here too "
		   "(see 'klaxon --help')\n");
	kx_buf_release(&b);
}

void kx_cli_help(const struct kx_cmd *cmd, const char *path, FILE *f)
{
	if (cmd->children)
		help_family(cmd, path, f);
	else
		help_command(cmd, path, f);
}

/* ---- value checks -------------------------------------------------------- */

int kx_cli_check_segment(const struct kx_args *a, const char *what,
			 const char *s)
{
	if (!*s)
		return kx_cli_usage(a, "%s must not be empty", what);
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return kx_cli_usage(a, "invalid %s '%s'", what, s);
	return 0;
}

int kx_cli_parse_count(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!s[0] || strspn(s, "0123456789") != strlen(s))
		return KX_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return KX_EINVAL;
	*out = v;
	return 0;
}

int kx_cli_labels(const struct kx_args *a, const char *flag, json_t *obj)
{
	size_t n;
	const char *const *list = kx_args_list(a, flag, &n);

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(list[i], '=');
		struct kx_buf key;
		int rc;

		if (!eq || eq == list[i] || !eq[1])
			return kx_cli_usage(a, "invalid value '%s' for '--%s': expected KEY=VALUE",
					    list[i], flag);
		if (!obj)
			continue;
		kx_buf_init(&key, 0);
		rc = kx_buf_add(&key, list[i], (size_t)(eq - list[i]));
		if (!rc)
			rc = json_object_set_new(obj, kx_buf_str(&key), json_string(eq + 1));
		kx_buf_release(&key);
		if (rc) /* the text was checked for UTF-8 when parsed */
			return kx_cli_oom();
	}
	return 0;
}

int kx_cli_check_time(const struct kx_args *a, const char *flag)
{
	const char *v = kx_args_get(a, flag);
	kx_ms t;

	if (v && kx_time_parse(v, &t))
		return kx_cli_usage(a, "invalid value '%s' for '--%s': expected an RFC 3339 time such as 2026-11-25T14:00:00Z",
				    v, flag);
	return 0;
}

int kx_cli_check_date(const struct kx_args *a, const char *flag)
{
	const char *v = kx_args_get(a, flag);
	int y, m, d;

	if (v && kx_date_parse(v, &y, &m, &d))
		return kx_cli_usage(a, "invalid value '%s' for '--%s': expected a date YYYY-MM-DD",
				    v, flag);
	return 0;
}

int kx_cli_check_when(const struct kx_args *a, const char *flag)
{
	const char *v = kx_args_get(a, flag);
	kx_ms t;

	if (v && kx_duration_parse(v, &t) && kx_time_parse(v, &t))
		return kx_cli_usage(a, "invalid value '%s' for '--%s': expected a duration such as 2h "
				    "or an RFC 3339 time such as 2026-11-25T14:00:00Z",
				    v, flag);
	return 0;
}

int kx_cli_check_limit(const struct kx_args *a, long long max)
{
	const char *v = kx_args_get(a, "limit");
	long long n;

	if (v && (kx_cli_parse_count(v, &n) || n < 1 || n > max))
		return kx_cli_usage(a, "invalid value '%s' for '--limit': expected a number from 1 to %lld",
				    v, max);
	return 0;
}

int kx_cli_check_duration(const struct kx_args *a, const char *flag)
{
	const char *v = kx_args_get(a, flag);
	kx_ms d;

	if (v && kx_duration_parse(v, &d))
		return kx_cli_usage(a, "invalid value '%s' for '--%s': expected a duration such as 90s, 2h or 1h30m",
				    v, flag);
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

static int dump_cb(const char *p, size_t n, void *ud)
{
	return kx_buf_add(ud, p, n) ? -1 : 0;
}

/* Fills err from a non-2xx answer: Klaxon's error message when the body is
 * {"error":{"message":…}}, else "HTTP <status>". */
static int answer_error(long status, const struct kx_buf *body,
			struct kx_err *err)
{
	int code = status == 401 ? KX_EAUTH : status == 403 ? KX_EFORBIDDEN
		 : status == 404 ? KX_ENOTFOUND : status == 409 ? KX_ECONFLICT
		 : status == 413 ? KX_ETOOBIG : status == 503 ? KX_EUNAVAIL
		 : status >= 500 ? KX_EIO : KX_EINVAL;
	json_t *root = json_loadb(kx_buf_str(body), body->len, 0, NULL);
	const char *msg = kx_cli_jstr(json_object_get(root, "error"), "message");

	if (msg && *msg)
		kx_err_set(err, code, "%s", msg);
	else
		kx_err_set(err, code, "HTTP %ld", status);
	json_decref(root);
	return code;
}

int kx_cli_request(const struct kx_cli *cli, const char *method,
		   const char *path, const json_t *body, struct kx_buf *raw,
		   struct kx_err *err)
{
	struct kx_buf req;
	int has_body = body || strcmp(method, "POST") == 0;
	int rc;

	kx_buf_init(&req, 0);
	if (body && json_dump_callback(body, dump_cb, &req, JSON_COMPACT)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	if (!body && has_body && kx_buf_adds(&req, "{}")) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	rc = kx_cli_send(cli, method, path, has_body ? "application/json" : NULL,
			 has_body ? kx_buf_str(&req) : NULL, req.len, raw, err);
out:
	kx_buf_release(&req);
	return rc;
}

int kx_cli_send(const struct kx_cli *cli, const char *method, const char *path,
		const char *content_type, const char *data, size_t len,
		struct kx_buf *raw, struct kx_err *err)
{
	struct kx_http_resp resp;
	int rc;

	kx_http_resp_init(&resp);
	rc = kx_http_request_as(cli->url, cli->token, method, path, content_type, data, len,
				&resp, err);
	if (rc)
		goto out;
	if (resp.status < 200 || resp.status > 299) {
		rc = answer_error(resp.status, &resp.body, err);
		goto out;
	}
	kx_buf_release(raw);
	*raw = resp.body;
	kx_buf_init(&resp.body, KX_HTTP_MAX_BODY);
out:
	kx_http_resp_release(&resp);
	return rc;
}

int kx_cli_call(const struct kx_cli *cli, const char *method, const char *path,
		const json_t *body, json_t **out, struct kx_err *err)
{
	struct kx_buf raw;
	json_error_t jerr;
	json_t *root;
	int rc;

	*out = NULL;
	kx_buf_init(&raw, KX_HTTP_MAX_BODY);
	rc = kx_cli_request(cli, method, path, body, &raw, err);
	if (rc)
		goto out;
	root = json_loadb(kx_buf_str(&raw), raw.len, 0, &jerr);
	if (!root) {
		rc = kx_err_set(err, KX_EJSON,
				"cannot parse the answer from klaxond: %s at line %d column %d",
				jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		rc = kx_err_set(err, KX_EJSON, "cannot parse the answer from klaxond: not a JSON object");
		goto out;
	}
	*out = root;
out:
	kx_buf_release(&raw);
	return rc;
}

int kx_cli_exchange(const struct kx_cli *cli, const char *method,
		    const char *path, const json_t *body, json_t **out)
{
	struct kx_err err;

	kx_err_clear(&err);
	if (kx_cli_call(cli, method, path, body, out, &err))
		return kx_cli_fail(&err);
	if (cli->json && kx_out_json(stdout, *out)) {
		json_decref(*out);
		*out = NULL;
		fprintf(stderr, "klaxon: cannot write to standard output\n");
		return KX_CLI_FAIL;
	}
	return KX_CLI_OK;
}

int kx_cli_path(struct kx_buf *b, const char *collection, const char *id,
		const char *suffix)
{
	if (kx_buf_addf(b, "/v1/%s/", collection) || kx_http_escape(b, id) ||
	    kx_buf_adds(b, suffix))
		return KX_ENOMEM;
	return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

const char *kx_cli_jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int kx_cli_jtext(struct kx_buf *b, const json_t *v, const char *sep)
{
	const char *key;
	json_t *item;
	size_t i;
	int rc = 0;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return kx_buf_adds(b, json_string_value(v));
	case JSON_INTEGER:
		return kx_buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return kx_buf_addf(b, "%g", json_real_value(v));
	case JSON_TRUE:
		return kx_buf_adds(b, "yes");
	case JSON_FALSE:
		return kx_buf_adds(b, "no");
	case JSON_ARRAY:
		json_array_foreach(v, i, item) {
			if ((i && kx_buf_adds(b, sep)) || kx_cli_jtext(b, item, sep))
				return KX_ENOMEM;
		}
		return 0;
	case JSON_OBJECT:
		i = 0;
		json_object_foreach((json_t *)v, key, item) {
			if ((i++ && kx_buf_adds(b, sep)) || kx_buf_addf(b, "%s=", key) ||
			    kx_cli_jtext(b, item, sep))
				return KX_ENOMEM;
		}
		return rc;
	default:
		return 0;
	}
}

int kx_cli_add_time(struct kx_buf *b, const json_t *o, const char *key)
{
	const char *s = kx_cli_jstr(o, key);
	char out[KX_TIME_STRLEN];
	kx_ms t;

	if (!s)
		return 0;
	if (kx_time_parse(s, &t))
		return kx_buf_adds(b, s);
	return kx_buf_adds(b, kx_time_format_human(t, out));
}

void kx_cli_time_cell(struct kx_table *t, const json_t *o, const char *key)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	kx_cli_add_time(&b, o, key); /* ENOMEM: "-" */
	kx_table_cell(t, b.len ? kx_buf_str(&b) : NULL);
	kx_buf_release(&b);
}

void kx_cli_jcell(struct kx_table *t, const json_t *o, const char *key, const char *sep)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	kx_cli_jtext(&b, json_object_get(o, key), sep); /* ENOMEM: "-" */
	kx_table_cell(t, b.len ? kx_buf_str(&b) : NULL);
	kx_buf_release(&b);
}

int kx_cli_print_table(struct kx_table *t)
{
	int rc = kx_table_print(t, stdout) ? kx_cli_oom() : KX_CLI_OK;

	kx_table_free(t);
	return rc;
}

int kx_cli_exchange_id(const struct kx_cli *cli, const struct kx_args *a, const char *what,
		       const char *collection, const char *method, const char *suffix,
		       const json_t *body, json_t **out)
{
	struct kx_buf path;
	int rc;

	*out = NULL;
	if ((rc = kx_cli_check_segment(a, what, a->pos[0])))
		return rc;
	kx_buf_init(&path, 0);
	if (kx_cli_path(&path, collection, a->pos[0], suffix))
		rc = kx_cli_oom();
	else
		rc = kx_cli_exchange(cli, method, kx_buf_str(&path), body, out);
	kx_buf_release(&path);
	return rc;
}
