/* klaxon — the command-line client of klaxond (docs/cli.md).
 *
 * main() walks the command tree with the leading words of the command line
 * (global flags may come anywhere), hands the rest to the command's parser,
 * settles the daemon URL and token, and runs the command.
 */
#include "cli/cli.h"
#include "cli/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct kx_cmd *const root_children[] = {
	&kx_cli_incident,
	&kx_cli_alert,
	&kx_cli_silence,
	&kx_cli_service,
	&kx_cli_integration,
	&kx_cli_heartbeat,
	&kx_cli_notification,
	&kx_cli_stop,
	&kx_cli_resume,
	&kx_cli_switch,
	&kx_cli_cap,
	&kx_cli_gate,
	&kx_cli_approval,
	&kx_cli_token,
	&kx_cli_severity,
	&kx_cli_type,
	&kx_cli_audit,
	NULL,
};

static const struct kx_cmd root = {
	.name = "klaxon",
	.usage = "[--url URL] [--token TOKEN] [--json] COMMAND [ARGS]",
	.children = root_children,
};

/* Help lines stay within this many columns: a summary that would pass it
 * goes on, at word breaks, in the summary column of the next lines. */
#define HELP_WIDTH 79

/* "  NAME  summary" with NAME padded to w. */
static void help_command_line(FILE *f, const char *name, int w, const char *summary)
{
	size_t room = HELP_WIDTH - 4 - (size_t)w;

	fprintf(f, "  %-*s  ", w, name);
	while (strlen(summary) > room) {
		size_t cut = room;

		while (cut > 0 && summary[cut] != ' ')
			cut--;
		if (!cut)
			break;
		fprintf(f, "%.*s\n%*s", (int)cut, summary, w + 4, "");
		summary += cut + 1;
	}
	fprintf(f, "%s\n", summary);
}

static void help_root(FILE *f)
{
	size_t w = 0;

	for (size_t i = 0; root_children[i]; i++)
		if (strlen(root_children[i]->name) > w)
			w = strlen(root_children[i]->name);
	fprintf(f,
		"usage: klaxon %s\n"
		"\n"
		"Talk to a running klaxond over its HTTP API.\n"
		"\n"
		"commands:\n",
		root.usage);
	for (size_t i = 0; root_children[i]; i++)
		help_command_line(f, root_children[i]->name, (int)w,
				  root_children[i]->summary);
	fprintf(f,
		"\n"
		"global flags (anywhere on the line):\n"
		"  --url URL      daemon URL (env KLAXON_URL, default %s)\n"
		"  --token TOKEN  API token (env KLAXON_TOKEN)\n"
		"  --json         print the daemon's JSON instead of tables\n"
		"  -h, --help     show help for klaxon, a command family or a command\n"
		"  --version      print the version\n"
		"\n"
		"Exit status: 0 on success, 1 when the request fails, 2 on a usage error;\n"
		"'klaxon gate check' also exits 3 when the action is denied and 4 when it\n"
		"needs approval.\n"
		"Run 'klaxon COMMAND --help' for the commands of a family.\n",
		KX_CLI_DEFAULT_URL);
}

static const struct kx_cmd *find_child(const struct kx_cmd *node,
				       const char *name)
{
	for (size_t i = 0; node->children[i]; i++)
		if (strcmp(node->children[i]->name, name) == 0)
			return node->children[i];
	return NULL;
}

static int has_control(const char *s, int space_too)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (space_too && *p == ' '))
			return 1;
	return 0;
}

/* Settles URL and token from flags, environment and defaults (see struct
 * kx_cli). url receives the normalised URL. Returns 0 or KX_CLI_USAGE. */
static int settle_globals(struct kx_cli *g, struct kx_buf *url,
			  const struct kx_args *a)
{
	const char *u = g->url, *env, *host;

	if (!u) {
		env = getenv("KLAXON_URL");
		u = env && *env ? env : KX_CLI_DEFAULT_URL;
	}
	if (!g->token)
		g->token = getenv("KLAXON_TOKEN");
	if (g->token && !*g->token)
		g->token = NULL;

	if (strncasecmp(u, "http://", 7) == 0)
		host = u + 7;
	else if (strncasecmp(u, "https://", 8) == 0)
		host = u + 8;
	else
		host = NULL;
	if (!host || !*host || *host == '/' || has_control(u, 1) ||
	    strpbrk(u, "?#"))
		return kx_cli_usage(a, "invalid URL '%s': expected http://HOST[:PORT]", u);
	if (g->token && has_control(g->token, 0))
		return kx_cli_usage(a, "invalid token: it contains control characters");

	if (kx_buf_adds(url, u)) {
		fprintf(stderr, "klaxon: out of memory\n");
		return KX_CLI_FAIL;
	}
	while (url->len && url->data[url->len - 1] == '/')
		url->data[--url->len] = '\0';
	g->url = kx_buf_str(url);
	return 0;
}

/* Runs the command the parsed arguments name. */
static int run(struct kx_cli *g, struct kx_args *a)
{
	struct kx_buf url;
	int rc;

	kx_buf_init(&url, 0);
	rc = settle_globals(g, &url, a);
	if (rc)
		goto out;
	if (kx_http_global_init()) {
		fprintf(stderr, "klaxon: cannot initialise libcurl\n");
		rc = KX_CLI_FAIL;
		goto out;
	}
	rc = a->cmd->run(g, a);
	kx_http_global_cleanup();
out:
	kx_buf_release(&url);
	return rc;
}

int main(int argc, char **argv)
{
	struct kx_cli g = {0};
	struct kx_args a;
	struct kx_err err, e;
	const struct kx_cmd *node = &root;
	int i = 1, rc;

	kx_args_init(&a);
	kx_err_clear(&err);
	if (kx_buf_adds(&a.path, "klaxon")) {
		fprintf(stderr, "klaxon: out of memory\n");
		return KX_CLI_FAIL;
	}

	/* Global flags and command words up to the command itself. */
	while (i < argc && node->children) {
		const char *arg = argv[i];
		int r;

		kx_err_clear(&e);
		r = kx_cli_global(&g, &a, argc, argv, &i, &e);
		if (r == 0 && arg[0] == '-' && arg[1]) {
			kx_err_set(&e, KX_EINVAL, "unknown flag '%s'", arg);
			i++;
		} else if (r == 0) {
			const struct kx_cmd *child = find_child(node, arg);

			if (!child) {
				rc = kx_cli_usage(&a, "unknown command '%s'", arg);
				goto out;
			}
			node = child;
			i++;
			if (kx_buf_addf(&a.path, " %s", node->name)) {
				fprintf(stderr, "klaxon: out of memory\n");
				rc = KX_CLI_FAIL;
				goto out;
			}
		}
		if (e.code && !err.code)
			err = e;
	}

	if (!node->children) {
		a.cmd = node;
		rc = kx_cli_parse(&g, &a, argc, argv, i);
		if (rc)
			goto out;
	}
	if (a.help) {
		if (node == &root)
			help_root(stdout);
		else
			kx_cli_help(node, kx_buf_str(&a.path), stdout);
		rc = KX_CLI_OK;
	} else if (a.version) {
		printf("klaxon %s\n", KX_VERSION);
		rc = KX_CLI_OK;
	} else if (err.code) {
		rc = kx_cli_usage(&a, "%s", err.msg);
	} else if (node->children) {
		rc = kx_cli_usage(&a, "missing command");
	} else {
		rc = run(&g, &a);
	}
out:
	kx_args_release(&a);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "klaxon: cannot write to standard output\n");
		if (rc == KX_CLI_OK)
			rc = KX_CLI_FAIL;
	}
	return rc;
}
