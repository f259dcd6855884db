/* klaxon token …: create, list and revoke API tokens (admin). */
#include "cli/cli.h"
#include "cli/output.h"
#include "lib/time.h"

#include <string.h>

/* "client=acme,team=ops", or "all" for a token without a label scope. */
static int scope_text(struct kx_buf *b, const json_t *labels, const char *sep)
{
	if (json_object_size(labels) == 0)
		return kx_buf_adds(b, "all");
	return kx_cli_jtext(b, labels, sep);
}

static int human_time(struct kx_buf *b, const char *s)
{
	char out[KX_TIME_STRLEN];
	kx_ms t;

	if (!s)
		return 0;
	if (kx_time_parse(s, &t))
		return kx_buf_adds(b, s);
	return kx_buf_adds(b, kx_time_format_human(t, out));
}

static int cmd_create(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body, *labels = NULL, *tok = NULL;
	struct kx_buf scope;
	const char *secret;
	int rc;

	kx_buf_init(&scope, 0);
	body = json_pack("{s:s, s:s}", "role", kx_args_get(a, "role"), "name",
			 kx_args_get(a, "name"));
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
	rc = kx_cli_exchange(cli, "POST", "/v1/tokens", body, &tok);
	if (rc || cli->json)
		goto out;
	secret = kx_cli_jstr(tok, "token");
	if (!secret) {
		fprintf(stderr, "klaxon: the answer from klaxond has no 'token'\n");
		rc = KX_CLI_FAIL;
		goto out;
	}
	if (scope_text(&scope, json_object_get(tok, "labels"), ", ") ||
	    kx_out_line(stdout, secret) ||
	    kx_out_kv(stdout, 5, "ID", kx_cli_jstr(tok, "id")) ||
	    kx_out_kv(stdout, 5, "Role", kx_cli_jstr(tok, "role")) ||
	    kx_out_kv(stdout, 5, "Name", kx_cli_jstr(tok, "name")) ||
	    kx_out_kv(stdout, 5, "Scope", kx_buf_str(&scope)))
		rc = kx_cli_oom();
out:
	kx_buf_release(&scope);
	json_decref(body);
	json_decref(tok);
	return rc;
}

/* Whether any token of the list has been revoked (then a column shows it). */
static int any_revoked(const json_t *tokens)
{
	json_t *t;
	size_t i;

	json_array_foreach(tokens, i, t)
		if (kx_cli_jstr(t, "revoked_at"))
			return 1;
	return 0;
}

static int cmd_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const head[] = {"ID", "ROLE", "NAME", "SCOPE", "CREATED", "REVOKED"};
	json_t *ans = NULL, *tok;
	const json_t *tokens;
	struct kx_table *t;
	struct kx_buf b;
	int revoked, rc;
	size_t i;

	kx_buf_init(&b, 0);
	rc = kx_cli_exchange(cli, "GET", "/v1/tokens", NULL, &ans);
	if (rc || cli->json)
		goto out;
	tokens = json_object_get(ans, "tokens");
	if (json_array_size(tokens) == 0) {
		printf("no tokens\n");
		goto out;
	}
	revoked = any_revoked(tokens);
	t = kx_table_new(revoked ? 6 : 5, head);
	if (!t) {
		rc = kx_cli_oom();
		goto out;
	}
	json_array_foreach(tokens, i, tok) {
		kx_table_cell(t, kx_cli_jstr(tok, "id"));
		kx_table_cell(t, kx_cli_jstr(tok, "role"));
		kx_table_cell(t, kx_cli_jstr(tok, "name"));
		kx_buf_clear(&b);
		scope_text(&b, json_object_get(tok, "labels"), ",");
		kx_table_cell(t, kx_buf_str(&b));
		kx_buf_clear(&b);
		human_time(&b, kx_cli_jstr(tok, "created_at"));
		kx_table_cell(t, b.len ? kx_buf_str(&b) : NULL);
		if (revoked) {
			kx_buf_clear(&b);
			human_time(&b, kx_cli_jstr(tok, "revoked_at"));
			kx_table_cell(t, b.len ? kx_buf_str(&b) : NULL);
		}
	}
	rc = kx_table_print(t, stdout) ? kx_cli_oom() : KX_CLI_OK;
	kx_table_free(t);
out:
	kx_buf_release(&b);
	json_decref(ans);
	return rc;
}

static int cmd_revoke(struct kx_cli *cli, const struct kx_args *a)
{
	struct kx_buf path, line;
	json_t *tok = NULL;
	const char *id;
	int rc = kx_cli_check_segment(a, "token ID", a->pos[0]);

	if (rc)
		return rc;
	kx_buf_init(&path, 0);
	kx_buf_init(&line, 0);
	if (kx_cli_path(&path, "tokens", a->pos[0], "")) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "DELETE", kx_buf_str(&path), NULL, &tok);
	if (rc || cli->json)
		goto out;
	id = kx_cli_jstr(tok, "id");
	if (kx_buf_addf(&line, "%s: revoked", id ? id : a->pos[0]) ||
	    kx_out_line(stdout, kx_buf_str(&line)))
		rc = kx_cli_oom();
out:
	kx_buf_release(&path);
	kx_buf_release(&line);
	json_decref(tok);
	return rc;
}

static const struct kx_opt create_opts[] = {
	{"role", KX_OPT_VALUE, "ROLE", 1,
	 "viewer, responder, admin, or automation (may only check the gate and append audit events)"},
	{"name", KX_OPT_VALUE, "NAME", 1, "who or what uses it; the author of its changes"},
	{"label", KX_OPT_LIST, "KEY=VALUE", 0, "limit the token to incidents carrying this label"},
	{0},
};

static const struct kx_opt no_opts[] = {{0}};
static const char *const args_token[] = {"TOKEN_ID", NULL};

static const struct kx_cmd create = {
	.name = "create",
	.summary = "create a token and print its secret once",
	.usage = "--role viewer|responder|admin|automation --name NAME [--label k=v]...",
	.description = "Create an API token. The secret (kx_...) is printed once, on the first line; "
		       "only its hash is stored.",
	.opts = create_opts,
	.example = "klaxon token create --role responder --name alice --label client=acme",
	.run = cmd_create,
};

static const struct kx_cmd list = {
	.name = "list",
	.summary = "list tokens (without secrets)",
	.usage = "",
	.description = "List the API tokens, without their secrets.",
	.opts = no_opts,
	.example = "klaxon token list",
	.run = cmd_list,
};

static const struct kx_cmd revoke = {
	.name = "revoke",
	.summary = "revoke a token",
	.usage = "TOKEN_ID",
	.description = "Revoke a token; requests made with it are refused from then on.",
	.args = args_token,
	.opts = no_opts,
	.example = "klaxon token revoke tok_3f9a1c",
	.run = cmd_revoke,
};

static const struct kx_cmd *const token_children[] = {&create, &list, &revoke, NULL};

const struct kx_cmd kx_cli_token = {
	.name = "token",
	.summary = "create, list and revoke API tokens (admin)",
	.usage = "COMMAND [ARGS]",
	.children = token_children,
};
