/* klaxon severity list, klaxon type list: the daemon's configuration. */
#include "cli/cli.h"
#include "cli/output.h"

/* Adds the text of member key of o as a cell ("-" when absent or null). */
/* GETs path and prints member `member` (an array of objects) as a table of
 * the given keys under the given headers. */
static int list_table(struct kx_cli *cli, const char *path, const char *member,
		      size_t ncols, const char *const *keys,
		      const char *const *head, const char *empty)
{
	json_t *ans = NULL, *row;
	const json_t *rows;
	struct kx_table *t;
	size_t i;
	int rc = kx_cli_exchange(cli, "GET", path, NULL, &ans);

	if (rc || cli->json)
		goto out;
	rows = json_object_get(ans, member);
	if (json_array_size(rows) == 0) {
		printf("%s\n", empty);
		goto out;
	}
	t = kx_table_new(ncols, head);
	if (!t) {
		rc = kx_cli_oom();
		goto out;
	}
	json_array_foreach(rows, i, row)
		for (size_t c = 0; c < ncols; c++)
			kx_cli_jcell(t, row, keys[c], ", ");
	rc = kx_table_print(t, stdout) ? kx_cli_oom() : KX_CLI_OK;
	kx_table_free(t);
out:
	json_decref(ans);
	return rc;
}

static int cmd_severity_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const keys[] = {"name", "rank", "response_time", "update_every",
					   "pages", "postmortem", "description"};
	static const char *const head[] = {"NAME", "RANK", "RESPOND", "UPDATE", "PAGES",
					   "POSTMORTEM", "DESCRIPTION"};

	return list_table(cli, "/v1/severities", "severities", 7, keys, head,
			  "no severity levels");
}

static int cmd_type_list(struct kx_cli *cli, const struct kx_args *a)
{
	static const char *const keys[] = {"name", "description"};
	static const char *const head[] = {"NAME", "DESCRIPTION"};

	return list_table(cli, "/v1/types", "types", 2, keys, head, "no incident types");
}

static const struct kx_opt no_opts[] = {{0}};

static const struct kx_cmd severity_list = {
	.name = "list",
	.summary = "list the severity levels",
	.usage = "",
	.description = "List the configured severity levels, most severe first: how fast to respond, "
		       "how often to update, whether they page and whether a postmortem is needed.",
	.opts = no_opts,
	.example = "klaxon severity list",
	.run = cmd_severity_list,
};

static const struct kx_cmd type_list = {
	.name = "list",
	.summary = "list the incident types",
	.usage = "",
	.description = "List the configured incident types.",
	.opts = no_opts,
	.example = "klaxon type list",
	.run = cmd_type_list,
};

static const struct kx_cmd *const severity_children[] = {&severity_list, NULL};
static const struct kx_cmd *const type_children[] = {&type_list, NULL};

const struct kx_cmd kx_cli_severity = {
	.name = "severity",
	.summary = "list the configured severity levels",
	.usage = "COMMAND",
	.children = severity_children,
};

const struct kx_cmd kx_cli_type = {
	.name = "type",
	.summary = "list the configured incident types",
	.usage = "COMMAND",
	.children = type_children,
};
