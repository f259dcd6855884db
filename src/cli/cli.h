/* cli.h — what the klaxon command families share: the global settings, the
 * command tree, flag parsing, usage errors and the JSON request helper.
 *
 * A command's handler returns the process exit status: KX_CLI_OK (0),
 * KX_CLI_FAIL (1: the request failed; "klaxon: MESSAGE" is on stderr) or
 * KX_CLI_USAGE (2: bad command line; the message and a hint to run --help
 * are on stderr). Helpers below that can fail return 0 or a negative KX_E…
 * code and fill a struct kx_err, as everywhere else in Klaxon; only the
 * handler turns that into an exit status (kx_cli_fail).
 *
 * Only kx_cli_help and kx_cli_exchange (with --json) print to stdout;
 * errors go to stderr.
 */
#ifndef KX_CLI_H
#define KX_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/buf.h"
#include "lib/err.h"

#ifndef KX_VERSION
#define KX_VERSION "0.1.0"
#endif

#define KX_CLI_DEFAULT_URL "http://127.0.0.1:8080"

enum {
	KX_CLI_OK = 0,
	KX_CLI_FAIL = 1,
	KX_CLI_USAGE = 2,
};

/* Global settings, from flags first, then the environment, then defaults.
 * After main() has finalised them: url is non-NULL, starts with http:// or
 * https:// and has no trailing '/'; token is NULL or a non-empty string
 * without control characters. */
struct kx_cli {
	const char *url;
	const char *token;
	int json;
};

enum kx_opt_kind {
	KX_OPT_BOOL,  /* --open */
	KX_OPT_VALUE, /* --title T or --title=T, at most once */
	KX_OPT_LIST,  /* --label k=v, repeatable; values accumulate in order */
};

/* One flag of a command. The name has no leading dashes. */
struct kx_opt {
	const char *name;
	enum kx_opt_kind kind;
	const char *metavar; /* shown in help after the flag; NULL for BOOL */
	int required;
	const char *help; /* one line */
};

#define KX_CLI_MAX_OPTS 16
#define KX_CLI_MAX_ARGS 4

struct kx_args;

/* A node of the command tree: a family (children set, run NULL) or a
 * command (run set, children NULL). Arrays are NULL-terminated. */
struct kx_cmd {
	const char *name;
	const char *summary; /* one line, lowercase, for the parent's help */
	const char *usage;   /* the arguments after the command's path */
	const char *description; /* a sentence or two for the command's help */
	const char *const *args; /* positional names, all required */
	const struct kx_opt *opts; /* terminated by an entry with name NULL */
	const char *example;
	int (*run)(struct kx_cli *cli, const struct kx_args *a);
	const struct kx_cmd *const *children;
};

struct kx_opt_val {
	int set;
	const char *value;  /* KX_OPT_VALUE */
	const char **list;  /* KX_OPT_LIST: n values, owned by kx_args */
	size_t n;
};

/* A parsed command line. Strings point into argv (they live as long as the
 * process); only the list arrays and path are owned, freed by
 * kx_args_release(). */
struct kx_args {
	const struct kx_cmd *cmd;
	struct kx_buf path; /* "klaxon incident declare", for help and hints */
	const char *pos[KX_CLI_MAX_ARGS];
	size_t npos;
	struct kx_opt_val val[KX_CLI_MAX_OPTS];
	int help;
	int version;
};

void kx_args_init(struct kx_args *a);
void kx_args_release(struct kx_args *a);

/* Consumes argv[*i] (and its value) if it is a global flag: --url, --token,
 * --json, --help/-h, --version. Returns 1 when consumed (*i advanced), 0 when
 * argv[*i] is not a global flag, KX_EINVAL with err set when a global flag is
 * malformed (*i advanced past it). */
int kx_cli_global(struct kx_cli *g, struct kx_args *a, int argc, char **argv,
		  int *i, struct kx_err *err);

/* Parses argv[start..argc) for command a->cmd: its flags, the global flags
 * and the positional arguments ("--" ends the flags). Every positional and
 * flag value except --output's must be UTF-8, since it may end up in JSON.
 * Help wins over errors:
 * when --help is present a->help is set and 0 returned. Otherwise a usage
 * error is printed and KX_CLI_USAGE returned. */
int kx_cli_parse(struct kx_cli *g, struct kx_args *a, int argc, char **argv,
		 int start);

/* The value of a VALUE flag, or NULL when not given. */
const char *kx_args_get(const struct kx_args *a, const char *name);
/* Whether a flag was given. */
int kx_args_has(const struct kx_args *a, const char *name);
/* The values of a LIST flag (NULL and *n = 0 when not given). */
const char *const *kx_args_list(const struct kx_args *a, const char *name,
				size_t *n);

/* Prints "klaxon: MESSAGE" and "(see 'PATH --help')" to stderr, where PATH
 * is the command reached so far ("klaxon incident declare"); returns
 * KX_CLI_USAGE. */
int kx_cli_usage(const struct kx_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints "klaxon: ERR->msg" to stderr; returns KX_CLI_FAIL. */
int kx_cli_fail(const struct kx_err *err);
/* Prints "klaxon: out of memory" to stderr; returns KX_CLI_FAIL. */
int kx_cli_oom(void);

/* Prints the help of cmd (reached through path) to f. */
void kx_cli_help(const struct kx_cmd *cmd, const char *path, FILE *f);

/* Checks that s is a usable path segment for a (flag or positional) named
 * what: not empty, not "." or "..". Returns 0 or prints a usage error and
 * returns KX_CLI_USAGE. */
int kx_cli_check_segment(const struct kx_args *a, const char *what,
			 const char *s);
/* Parses a non-negative decimal integer (digits only, fits in long long).
 * Returns 0 or KX_EINVAL. */
int kx_cli_parse_count(const char *s, long long *out);
/* Checks the k=v values of LIST flag `flag` and adds them to obj unless obj
 * is NULL (later values for the same key win). Returns 0, or prints the
 * error and returns KX_CLI_USAGE (or KX_CLI_FAIL when out of memory). */
int kx_cli_labels(const struct kx_args *a, const char *flag, json_t *obj);
/* Checks the values of flags that must hold an RFC 3339 time, a date or a
 * duration. Return 0, or print a usage error and return KX_CLI_USAGE. */
int kx_cli_check_time(const struct kx_args *a, const char *flag);
int kx_cli_check_date(const struct kx_args *a, const char *flag);
int kx_cli_check_duration(const struct kx_args *a, const char *flag);
/* Checks a flag that takes a duration back from now ("2h") or an RFC 3339
 * time, as the API's `since` and `until` do. */
int kx_cli_check_when(const struct kx_args *a, const char *flag);
/* Checks --limit, when given: a number from 1 to max. */
int kx_cli_check_limit(const struct kx_args *a, long long max);

/* Sends a request to klaxond. body (may be NULL; POST then sends "{}") is
 * encoded compactly. On a 2xx answer the response body is left in *raw
 * (caller-initialised, caller releases) and 0 returned. On any failure err
 * holds the line to print: the daemon's error message, "HTTP <status>" when
 * the body is not Klaxon's error JSON, or the connection error. */
int kx_cli_request(const struct kx_cli *cli, const char *method,
		   const char *path, const json_t *body, struct kx_buf *raw,
		   struct kx_err *err);
/* Sends data[0..len) as content_type (e.g. "application/x-ndjson") and
 * answers like kx_cli_request. */
int kx_cli_send(const struct kx_cli *cli, const char *method, const char *path,
		const char *content_type, const char *data, size_t len,
		struct kx_buf *raw, struct kx_err *err);
/* kx_cli_request, then parses the answer as a JSON object into *out (the
 * caller json_decref()s it). */
int kx_cli_call(const struct kx_cli *cli, const char *method, const char *path,
		const json_t *body, json_t **out, struct kx_err *err);

/* The usual exchange of a command: kx_cli_call, then with --json the answer
 * is printed to stdout. Returns an exit status (a failure is printed);
 * on KX_CLI_OK *out holds the answer, which the caller json_decref()s. */
int kx_cli_exchange(const struct kx_cli *cli, const char *method,
		    const char *path, const json_t *body, json_t **out);

/* kx_cli_exchange on "/v1/<collection>/" + the command's first positional
 * argument (checked as a path segment named `what`, percent-encoded) +
 * suffix. */
int kx_cli_exchange_id(const struct kx_cli *cli, const struct kx_args *a, const char *what,
		       const char *collection, const char *method, const char *suffix,
		       const json_t *body, json_t **out);

/* Appends "/v1/<collection>/" + the percent-encoded id + suffix to b. */
int kx_cli_path(struct kx_buf *b, const char *collection, const char *id,
		const char *suffix);

/* A string member of o, or NULL when absent or not a string. */
const char *kx_cli_jstr(const json_t *o, const char *key);
/* Appends the RFC 3339 time o[key] as people read it ("2026-12-01 19:43
 * UTC"; unparsable: as it is; absent: nothing). */
int kx_cli_add_time(struct kx_buf *b, const json_t *o, const char *key);
struct kx_table;
/* A table cell of that time ("-" when absent). */
void kx_cli_time_cell(struct kx_table *t, const json_t *o, const char *key);
/* A table cell of o[key] as text (kx_cli_jtext; arrays joined by sep; "-"
 * when absent). */
void kx_cli_jcell(struct kx_table *t, const json_t *o, const char *key, const char *sep);
/* Prints t to stdout and frees it: KX_CLI_OK, or the out-of-memory exit. */
int kx_cli_print_table(struct kx_table *t);
/* Appends the text form of a JSON scalar: strings as they are, integers and
 * reals in decimal, booleans as yes/no, null as nothing. Arrays are joined
 * with sep, objects become k=v joined with sep. */
int kx_cli_jtext(struct kx_buf *b, const json_t *v, const char *sep);

/* The command families (incident.c, token.c, config_cmd.c, audit.c,
 * switch.c, gate.c, alert.c); stop and resume are commands at the top
 * level. */
extern const struct kx_cmd kx_cli_incident;
extern const struct kx_cmd kx_cli_stop;
extern const struct kx_cmd kx_cli_resume;
extern const struct kx_cmd kx_cli_switch;
extern const struct kx_cmd kx_cli_cap;
extern const struct kx_cmd kx_cli_gate;
extern const struct kx_cmd kx_cli_approval;
extern const struct kx_cmd kx_cli_audit;
extern const struct kx_cmd kx_cli_token;
extern const struct kx_cmd kx_cli_severity;
extern const struct kx_cmd kx_cli_type;
extern const struct kx_cmd kx_cli_alert;
extern const struct kx_cmd kx_cli_silence;
extern const struct kx_cmd kx_cli_service;
extern const struct kx_cmd kx_cli_integration;
extern const struct kx_cmd kx_cli_heartbeat;
extern const struct kx_cmd kx_cli_notification;

#endif
