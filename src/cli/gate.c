/* klaxon gate check, cap …, approval …: asking the gate about an action,
 * the rate caps it enforces, and the approvals that `approve` switches ask
 * people for. */
#include "cli/cli.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/time.h"

#include <string.h>

/* `gate check` exit statuses beyond cli.h's: the answer, not a failure. */
enum {
	EXIT_DENY = 3,
	EXIT_APPROVAL = 4,
};

/* Width of the longest key in `approval show` ("Requested by"). */
#define SHOW_KEYW 12
#define CELL_MAX 60

/* ---- helpers ------------------------------------------------------------- */


/* Prints "<id>: <what>" with the ID the daemon answered, else the one
 * given. */
static int confirm(const char *id, const char *given, const char *what)
{
	struct kx_buf b;
	int rc;

	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b, "%s: %s", id ? id : given, what) || kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

/* ---- gate check ------------------------------------------------------------ */

/* Appends " (retry in 1h2m)" for retry_after seconds, when there is one. */
static int add_retry(struct kx_buf *b, const json_t *retry)
{
	char d[32];
	double s;
	kx_ms ms;

	if (!json_is_number(retry))
		return 0;
	s = json_number_value(retry);
	if (!(s >= 0) || s > 1e12)
		return 0;
	ms = (kx_ms)(s * 1000.0);
	ms = (ms + 999) / 1000 * 1000; /* whole seconds, rounded up */
	return kx_buf_addf(b, " (retry in %s)", kx_duration_format(ms, d));
}

/* Prints the decision for people and sets *status to its exit status:
 * a first line that is the same for every decision of a kind ("allow",
 * "deny: cap ig-comments (retry in 59m)", "approval required: apr_…
 * (switch sw_…)"), then the daemon's reason, indented, on a second line.
 * Returns 0 or KX_ENOMEM. */
static int print_decision(const json_t *ans, int *status)
{
	const char *decision = kx_cli_jstr(ans, "decision");
	const char *by = kx_cli_jstr(ans, "by"), *id = kx_cli_jstr(ans, "id");
	const char *reason = kx_cli_jstr(ans, "reason");
	struct kx_buf b;
	int rc = 0;

	kx_buf_init(&b, 0);
	if (decision && !strcmp(decision, "allow")) {
		*status = KX_CLI_OK;
		rc = kx_buf_adds(&b, "allow");
	} else if (decision && !strcmp(decision, "deny")) {
		*status = EXIT_DENY;
		if (id && by && !strcmp(id, by)) /* {"by":"duplicate","id":"duplicate"} */
			id = NULL;
		rc = kx_buf_addf(&b, "deny: %s%s%s", by ? by : "gate", id ? " " : "", id ? id : "") ||
		     add_retry(&b, json_object_get(ans, "retry_after"));
	} else if (decision && !strcmp(decision, "approval_required")) {
		const char *req = kx_cli_jstr(ans, "request_id");

		*status = EXIT_APPROVAL;
		rc = kx_buf_addf(&b, "approval required: %s", req ? req : "-") ||
		     (id && kx_buf_addf(&b, " (switch %s)", id));
	} else {
		kx_buf_release(&b);
		fprintf(stderr, "klaxon: the answer from klaxond has no known 'decision'\n");
		*status = KX_CLI_FAIL;
		return 0;
	}
	if (!rc)
		rc = kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_clear(&b);
	if (!rc && reason && *reason && *status != KX_CLI_OK)
		rc = kx_buf_addf(&b, "  %s", reason) || kx_out_line(stdout, kx_buf_str(&b));
	kx_buf_release(&b);
	return rc;
}

static int cmd_check(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *labels = json_object(), *body = NULL, *ans = NULL;
	const char *key = kx_args_get(a, "key");
	int rc, status = KX_CLI_FAIL;

	if (!labels)
		return kx_cli_oom();
	if ((rc = kx_cli_labels(a, "label", labels)))
		goto out;
	if (key && !*key) {
		rc = kx_cli_usage(a, "invalid value '' for '--key': expected an idempotency key");
		goto out;
	}
	body = json_pack("{s:O, s:s*, s:b}", "labels", labels, "idempotency_key", key, "read_only",
			 kx_args_has(a, "read"));
	if (!body) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "POST", "/v1/gate/check", body, &ans);
	if (rc)
		goto out;
	if (cli->json) {
		/* The exit status still tells the decision. */
		const char *d = kx_cli_jstr(ans, "decision");

		rc = !d ? KX_CLI_FAIL : !strcmp(d, "allow") ? KX_CLI_OK
			: !strcmp(d, "deny") ? EXIT_DENY
			: !strcmp(d, "approval_required") ? EXIT_APPROVAL : KX_CLI_FAIL;
		goto out;
	}
	rc = print_decision(ans, &status) ? kx_cli_oom() : status;
out:
	json_decref(labels);
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* ---- caps ------------------------------------------------------------------ */

static int cmd_cap_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const head[] = {"ID", "SPEC", "SOURCE", "SET BY", "SET AT"};
	json_t *ans = NULL, *c;
	const json_t *caps;
	struct kx_table *t;
	size_t i;
	int rc;

	(void)a;
	rc = kx_cli_exchange(cli, "GET", "/v1/caps", NULL, &ans);
	if (rc || cli->json)
		goto out;
	caps = json_object_get(ans, "caps");
	if (json_array_size(caps) == 0) {
		printf("no caps\n");
		goto out;
	}
	if (!(t = kx_table_new(5, head))) {
		rc = kx_cli_oom();
		goto out;
	}
	kx_table_set_max(t, 1, CELL_MAX);
	json_array_foreach(caps, i, c) {
		kx_cli_jcell(t, c, "id", ",");
		kx_cli_jcell(t, c, "spec", ",");
		kx_cli_jcell(t, c, "source", ",");
		kx_cli_jcell(t, c, "set_by", ",");
		kx_cli_time_cell(t, c, "set_at");
	}
	rc = kx_cli_print_table(t);
out:
	json_decref(ans);
	return rc;
}

static int cmd_cap_set(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *body = json_pack("{s:s}", "spec", a->pos[1]), *ans = NULL;
	const json_t *cap;
	struct kx_buf what;
	int rc;

	kx_buf_init(&what, 0);
	if (!body)
		return kx_cli_oom();
	rc = kx_cli_exchange_id(cli, a, "cap ID", "caps", "PUT", "", body, &ans);
	if (rc || cli->json)
		goto out;
	cap = json_object_get(ans, "cap");
	if (kx_buf_addf(&what, "set to %s",
			kx_cli_jstr(cap, "spec") ? kx_cli_jstr(cap, "spec") : a->pos[1]))
		rc = kx_cli_oom();
	else
		rc = confirm(kx_cli_jstr(cap, "id"), a->pos[0], kx_buf_str(&what));
out:
	kx_buf_release(&what);
	json_decref(body);
	json_decref(ans);
	return rc;
}

static int cmd_cap_clear(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "cap ID", "caps", "DELETE", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = confirm(kx_cli_jstr(ans, "deleted"), a->pos[0], "cleared");
	json_decref(ans);
	return rc;
}

/* ---- approvals ------------------------------------------------------------- */

static int print_approvals(const json_t *list, int all)
{
	static const char *const head[] = {"ID",	"STATUS",  "ACTION", "REQUESTED BY",
					   "REQUESTED", "EXPIRES", "SWITCH", "DECIDED BY"};
	struct kx_table *t;
	json_t *ap;
	size_t i;

	if (json_array_size(list) == 0) {
		printf(all ? "no approvals\n" : "no pending approvals\n");
		return KX_CLI_OK;
	}
	if (!(t = kx_table_new(all ? 8 : 7, head)))
		return kx_cli_oom();
	kx_table_set_max(t, 2, CELL_MAX);
	json_array_foreach(list, i, ap) {
		kx_cli_jcell(t, ap, "id", ",");
		kx_cli_jcell(t, ap, "status", ",");
		kx_cli_jcell(t, ap, "labels", ",");
		kx_cli_jcell(t, ap, "requested_by", ",");
		kx_cli_time_cell(t, ap, "requested_at");
		kx_cli_time_cell(t, ap, "expires_at");
		kx_cli_jcell(t, ap, "switch", ",");
		if (all)
			kx_cli_jcell(t, ap, "decided_by", ",");
	}
	return kx_cli_print_table(t);
}

static int cmd_approval_list(struct kx_cli *cli, const struct kx_args *a)
{
	const char *limit = kx_args_get(a, "limit");
	int all = kx_args_has(a, "all");
	struct kx_buf path;
	json_t *ans = NULL;
	long long n;
	int rc;

	if (limit && (kx_cli_parse_count(limit, &n) || n < 1))
		return kx_cli_usage(a, "invalid value '%s' for '--limit': expected a positive number",
				    limit);
	kx_buf_init(&path, 0);
	if (kx_buf_adds(&path, "/v1/approvals") ||
	    (all && kx_http_query_add(&path, "status", "all")) ||
	    (limit && kx_http_query_add(&path, "limit", limit))) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange(cli, "GET", kx_buf_str(&path), NULL, &ans);
	if (!rc && !cli->json)
		rc = print_approvals(json_object_get(ans, "approvals"), all);
out:
	kx_buf_release(&path);
	json_decref(ans);
	return rc;
}

static int print_approval(const json_t *ap)
{
	struct kx_buf b;
	int rc = 0;

	kx_buf_init(&b, 0);
#define KV(key, value) (rc = rc || kx_out_kv(stdout, SHOW_KEYW, key, value))
#define KVJ(key, field)                                                   \
	do {                                                              \
		kx_buf_clear(&b);                                         \
		rc = rc || kx_cli_jtext(&b, json_object_get(ap, field), ", "); \
		KV(key, kx_buf_str(&b));                                  \
	} while (0)
#define KVT(key, field)                                                   \
	do {                                                              \
		kx_buf_clear(&b);                                         \
		rc = rc || kx_cli_add_time(&b, ap, field);                       \
		KV(key, kx_buf_str(&b));                                  \
	} while (0)
	KVJ("ID", "id");
	KVJ("Status", "status");
	KVJ("Action", "labels");
	KVJ("Key", "idempotency_key");
	KV("Read only", json_is_true(json_object_get(ap, "read_only")) ? "yes" : "no");
	KVJ("Switch", "switch");
	KVJ("Requested by", "requested_by");
	KVT("Requested", "requested_at");
	KVT("Expires", "expires_at");
	if (kx_cli_jstr(ap, "decided_at")) {
		KVJ("Decided by", "decided_by");
		KVT("Decided", "decided_at");
		KVJ("Note", "note");
	}
#undef KV
#undef KVJ
#undef KVT
	kx_buf_release(&b);
	return rc ? kx_cli_oom() : KX_CLI_OK;
}

static int cmd_approval_show(struct kx_cli *cli, const struct kx_args *a)
{
	json_t *ans = NULL;
	int rc = kx_cli_exchange_id(cli, a, "approval ID", "approvals", "GET", "", NULL, &ans);

	if (!rc && !cli->json)
		rc = print_approval(json_object_get(ans, "approval"));
	json_decref(ans);
	return rc;
}

static int decide(struct kx_cli *cli, const struct kx_args *a, const char *verb)
{
	json_t *body = json_pack("{s:s*}", "note", kx_args_get(a, "note")), *ans = NULL;
	const json_t *ap;
	struct kx_buf suffix;
	int rc;

	kx_buf_init(&suffix, 0);
	if (!body || kx_buf_addf(&suffix, "/%s", verb)) {
		rc = kx_cli_oom();
		goto out;
	}
	rc = kx_cli_exchange_id(cli, a, "approval ID", "approvals", "POST", kx_buf_str(&suffix), body, &ans);
	if (rc || cli->json)
		goto out;
	ap = json_object_get(ans, "approval");
	rc = confirm(kx_cli_jstr(ap, "id"), a->pos[0],
		     kx_cli_jstr(ap, "status") ? kx_cli_jstr(ap, "status") : verb);
out:
	kx_buf_release(&suffix);
	json_decref(body);
	json_decref(ans);
	return rc;
}

static int cmd_approve(struct kx_cli *cli, const struct kx_args *a)
{
	return decide(cli, a, "approve");
}

static int cmd_deny(struct kx_cli *cli, const struct kx_args *a)
{
	return decide(cli, a, "deny");
}

/* ---- the command tree ------------------------------------------------------ */

static const struct kx_opt check_opts[] = {
	{"label", KX_OPT_LIST, "KEY=VALUE", 1, "the action: client, account, platform, lane, action, target…"},
	{"key", KX_OPT_VALUE, "KEY", 0, "the action's idempotency key (a repeat is denied as a duplicate)"},
	{"read", KX_OPT_BOOL, NULL, 0, "the action only reads (no side effect)"},
	{0},
};

static const struct kx_opt approval_list_opts[] = {
	{"all", KX_OPT_BOOL, NULL, 0, "also approvals decided or expired"},
	{"limit", KX_OPT_VALUE, "N", 0, "at most N approvals"},
	{0},
};

static const struct kx_opt note_opts[] = {
	{"note", KX_OPT_VALUE, "TEXT", 0, "why, kept with the decision"},
	{0},
};

static const struct kx_opt no_opts[] = {{0}};
static const char *const args_cap[] = {"CAP_ID", NULL};
static const char *const args_cap_spec[] = {"CAP_ID", "SPEC", NULL};
static const char *const args_approval[] = {"APPROVAL_ID", NULL};

static const struct kx_cmd check = {
	.name = "check",
	.summary = "ask the gate whether an action may go ahead",
	.usage = "--label k=v... [--key K] [--read]",
	.description = "Ask the gate about one action, as automation does before it acts; an allowed "
		       "action counts against the caps. Prints the decision. Exit status: 0 allow, "
		       "3 deny, 4 approval required (1 error, 2 usage), so that "
		       "'klaxon gate check … && act' acts only when allowed.",
	.opts = check_opts,
	.example = "klaxon gate check --label client=acme --label platform=instagram --label action=comment --key run17-post1",
	.run = cmd_check,
};

static const struct kx_cmd *const gate_children[] = {&check, NULL};

const struct kx_cmd kx_cli_gate = {
	.name = "gate",
	.summary = "ask the gate about an action",
	.usage = "COMMAND [ARGS]",
	.description = "The gate: the decision automation asks for before every side effect.",
	.children = gate_children,
};

static const struct kx_cmd cap_list = {
	.name = "list",
	.summary = "list the caps",
	.usage = "",
	.description = "List the rate caps, from the API and from the config file.",
	.opts = no_opts,
	.example = "klaxon cap list",
	.run = cmd_cap_list,
};

static const struct kx_cmd cap_set = {
	.name = "set",
	.summary = "set (create or replace) a cap",
	.usage = "CAP_ID SPEC",
	.description = "Set a rate cap: at most N matching actions in any window W, written "
		       "'SELECTOR: N/W' and optionally 'per LABEL' (a cooldown is N = 1).",
	.args = args_cap_spec,
	.opts = no_opts,
	.example = "klaxon cap set ig-comments 'platform=instagram,action=comment: 200/1d'",
	.run = cmd_cap_set,
};

static const struct kx_cmd cap_clear = {
	.name = "clear",
	.summary = "remove a cap",
	.usage = "CAP_ID",
	.description = "Remove a rate cap set through the API (caps from the config file stay).",
	.args = args_cap,
	.opts = no_opts,
	.example = "klaxon cap clear ig-comments",
	.run = cmd_cap_clear,
};

static const struct kx_cmd *const cap_children[] = {&cap_list, &cap_set, &cap_clear, NULL};

const struct kx_cmd kx_cli_cap = {
	.name = "cap",
	.summary = "list, set and remove rate caps and cooldowns",
	.usage = "COMMAND [ARGS]",
	.description = "Rate caps and cooldowns the gate enforces: 'action=dm: 1/10s per account'.",
	.children = cap_children,
};

static const struct kx_cmd approval_list = {
	.name = "list",
	.summary = "list the approvals waiting for a decision",
	.usage = "[--all] [--limit N]",
	.description = "List the actions waiting for a human because an approve switch covers them "
		       "(with --all: decided and expired ones too), newest first.",
	.opts = approval_list_opts,
	.example = "klaxon approval list",
	.run = cmd_approval_list,
};

static const struct kx_cmd approval_show = {
	.name = "show",
	.summary = "show an approval request",
	.usage = "APPROVAL_ID",
	.description = "Show an approval request: the action, who asked, and the decision.",
	.args = args_approval,
	.opts = no_opts,
	.example = "klaxon approval show apr_8d2e61f0a4c9b371",
	.run = cmd_approval_show,
};

static const struct kx_cmd approval_approve = {
	.name = "approve",
	.summary = "let the action go ahead",
	.usage = "APPROVAL_ID [--note TEXT]",
	.description = "Approve a pending request: the automation may perform the action.",
	.args = args_approval,
	.opts = note_opts,
	.example = "klaxon approval approve apr_8d2e61f0a4c9b371 --note \"reply checked\"",
	.run = cmd_approve,
};

static const struct kx_cmd approval_deny = {
	.name = "deny",
	.summary = "refuse the action",
	.usage = "APPROVAL_ID [--note TEXT]",
	.description = "Deny a pending request: the automation must not perform the action.",
	.args = args_approval,
	.opts = note_opts,
	.example = "klaxon approval deny apr_8d2e61f0a4c9b371 --note \"wrong account\"",
	.run = cmd_deny,
};

static const struct kx_cmd *const approval_children[] = {
	&approval_list, &approval_show, &approval_approve, &approval_deny, NULL,
};

const struct kx_cmd kx_cli_approval = {
	.name = "approval",
	.summary = "list, approve and deny actions waiting for a human",
	.usage = "COMMAND [ARGS]",
	.description = "Approvals: side effects an approve switch holds until a person decides.",
	.children = approval_children,
};
