/* test_config.c — core/config: built-in defaults, YAML parsing and the
 * FILE:LINE:COL of every error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/config.h"
#include "helpers.h"

#define S 1000
#define M (60 * S)
#define H (60 * M)

static int setup(void **state)
{
	struct kx_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg || kx_config_init(cfg)) {
		free(cfg);
		return -1;
	}
	*state = cfg;
	return 0;
}

static int teardown(void **state)
{
	struct kx_config *cfg = *state;
	kx_config_release(cfg);
	free(cfg);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int parse(struct kx_config *cfg, const char *yaml, struct kx_err *err)
{
	kx_err_clear(err);
	return kx_config_parse(cfg, yaml, strlen(yaml), "klaxon.yaml", err);
}

/* Parses yaml expecting KX_EINVAL whose message starts with "klaxon.yaml:
 * LINE:COL: " and contains `what`. */
static void expect_error(const char *yaml, int line, int col, const char *what)
{
	struct kx_config cfg;
	struct kx_err err;
	char prefix[64];
	assert_int_equal(kx_config_init(&cfg), 0);
	if (parse(&cfg, yaml, &err) != KX_EINVAL)
		fail_msg("accepted:\n%s", yaml);
	assert_int_equal(err.code, KX_EINVAL);
	snprintf(prefix, sizeof(prefix), "klaxon.yaml:%d:%d: ", line, col);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", err.msg, prefix);
	assert_contains(err.msg, what);
	kx_config_release(&cfg);
}

/* ---- defaults ---- */

static void defaults_daemon(void **state)
{
	struct kx_config *cfg = *state;
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_string_equal(cfg->data_dir, "./var");
	assert_null(cfg->db);
	assert_null(cfg->public_url);
	assert_int_equal(cfg->max_body_bytes, 1 << 20);
	assert_int_equal(cfg->threads, 0);
}

static void defaults_severities(void **state)
{
	struct kx_config *cfg = *state;
	static const char *const names[] = {"P0", "P1", "P2", "P3", "P4"};
	static const kx_ms response[] = {5 * M, 15 * M, 1 * H, 4 * H, 24 * H};
	static const bool pages[] = {true, true, true, false, false};
	static const enum kx_postmortem pm[] = {KX_PM_REQUIRED, KX_PM_REQUIRED, KX_PM_OPTIONAL,
						KX_PM_NONE, KX_PM_NONE};
	assert_int_equal(cfg->nseverities, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct kx_severity *s = &cfg->severities[i];
		assert_string_equal(s->name, names[i]);
		assert_int_equal(s->rank, i);
		if (s->response_time != response[i])
			fail_msg("%s responds in %lld ms", s->name, (long long)s->response_time);
		assert_true(s->update_every > 0);
		assert_int_equal(s->pages, pages[i]);
		assert_int_equal(s->postmortem, pm[i]);
		assert_non_null(s->description);
		assert_true(strlen(s->description) > 0);
		assert_ptr_equal(kx_config_severity(cfg, names[i]), s);
	}
	assert_contains(cfg->severities[0].description, "Critical");
	assert_null(kx_config_severity(cfg, "P5"));
	assert_null(kx_config_severity(cfg, "p1"));
}

static void defaults_types(void **state)
{
	struct kx_config *cfg = *state;
	static const char *const names[] = {"SAFETY", "PUBLISH",  "ENGAGE",   "AUTH",
					    "RATE",   "BROWSER",  "QUEUE",    "TOOLGATE",
					    "PROVIDER", "COST",   "DATA",     "OBS",
					    "OUTAGE", "PERFORMANCE", "SECURITY", "DEPLOY"};
	assert_int_equal(cfg->ntypes, 16);
	for (size_t i = 0; i < 16; i++) {
		assert_string_equal(cfg->types[i].name, names[i]);
		assert_non_null(cfg->types[i].description);
		assert_ptr_equal(kx_config_type(cfg, names[i]), &cfg->types[i]);
	}
	assert_null(kx_config_type(cfg, "PAYMENTS"));
	assert_null(kx_config_type(cfg, "safety"));
}

static void severity_error_lists_levels(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err = {0};
	assert_int_equal(kx_config_severity_error(cfg, "P9", &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown severity 'P9': use P0, P1, P2, P3 or P4");
}

static void postmortem_names(void **state)
{
	(void)state;
	assert_string_equal(kx_postmortem_name(KX_PM_REQUIRED), "required");
	assert_string_equal(kx_postmortem_name(KX_PM_OPTIONAL), "optional");
	assert_string_equal(kx_postmortem_name(KX_PM_NONE), "none");
}

static void release_twice_is_harmless(void **state)
{
	struct kx_config cfg;
	(void)state;
	assert_int_equal(kx_config_init(&cfg), 0);
	kx_config_release(&cfg);
	kx_config_release(&cfg);
}

/* ---- parsing ---- */

static const char example[] = "listen: 127.0.0.1:8080\n"
			      "data_dir: ./var\n"
			      "max_body_bytes: 1048576\n"
			      "severities:\n"
			      "  - name: SEV1\n"
			      "    description: Critical\n"
			      "    response_time: 5m\n"
			      "    update_every: 15m\n"
			      "    pages: true\n"
			      "    postmortem: required\n"
			      "  - name: SEV2\n"
			      "    description: High\n"
			      "    response_time: 15m\n"
			      "    update_every: 30m\n"
			      "    pages: true\n"
			      "    postmortem: optional\n"
			      "types:\n"
			      "  - name: PAYMENTS\n"
			      "    description: payment processing\n";

static void parse_example(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	const struct kx_severity *s;
	if (parse(cfg, example, &err))
		fail_msg("example refused: %s", err.msg);
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_string_equal(cfg->data_dir, "./var");
	assert_int_equal(cfg->max_body_bytes, 1048576);
	/* severities replace the scheme */
	assert_int_equal(cfg->nseverities, 2);
	assert_null(kx_config_severity(cfg, "P0"));
	assert_null(kx_config_severity(cfg, "P1"));
	s = kx_config_severity(cfg, "SEV1");
	assert_non_null(s);
	assert_int_equal(s->rank, 0);
	assert_string_equal(s->description, "Critical");
	assert_true(s->response_time == 5 * M);
	assert_true(s->update_every == 15 * M);
	assert_true(s->pages);
	assert_int_equal(s->postmortem, KX_PM_REQUIRED);
	s = kx_config_severity(cfg, "SEV2");
	assert_non_null(s);
	assert_int_equal(s->rank, 1);
	assert_true(s->response_time == 15 * M);
	assert_true(s->update_every == 30 * M);
	assert_int_equal(s->postmortem, KX_PM_OPTIONAL);
	/* types extend the built-in list */
	assert_int_equal(cfg->ntypes, 17);
	assert_non_null(kx_config_type(cfg, "SAFETY"));
	assert_non_null(kx_config_type(cfg, "PAYMENTS"));
	assert_string_equal(kx_config_type(cfg, "PAYMENTS")->description, "payment processing");
	assert_int_equal(kx_config_severity_error(cfg, "P1", &err), KX_EINVAL);
	assert_string_equal(err.msg, "unknown severity 'P1': use SEV1 or SEV2");
}

static void parse_every_setting(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	static const char yaml[] = "listen: 0.0.0.0:9123\n"
				   "data_dir: /srv/klaxon\n"
				   "db: sqlite:/srv/klaxon/k.db\n"
				   "public_url: https://klaxon.example.com\n"
				   "max_body_bytes: 2048\n"
				   "threads: 8\n"
				   "severities:\n"
				   "  - name: crit-1\n"
				   "    description: \"Critical: all down\"\n"
				   "    examples: db unreachable\n"
				   "    escalate_to: cto\n"
				   "    response_time: 1h30m\n"
				   "    update_every: 90s\n"
				   "    pages: yes\n"
				   "    postmortem: none\n"
				   "  - name: low\n"
				   "    pages: off\n";
	if (parse(cfg, yaml, &err))
		fail_msg("refused: %s", err.msg);
	assert_string_equal(cfg->listen, "0.0.0.0:9123");
	assert_string_equal(cfg->data_dir, "/srv/klaxon");
	assert_string_equal(cfg->db, "sqlite:/srv/klaxon/k.db");
	assert_string_equal(cfg->public_url, "https://klaxon.example.com");
	assert_int_equal(cfg->max_body_bytes, 2048);
	assert_int_equal(cfg->threads, 8);
	assert_int_equal(cfg->nseverities, 2);
	assert_string_equal(cfg->severities[0].name, "crit-1");
	assert_string_equal(cfg->severities[0].description, "Critical: all down");
	assert_string_equal(cfg->severities[0].examples, "db unreachable");
	assert_string_equal(cfg->severities[0].escalate_to, "cto");
	assert_true(cfg->severities[0].response_time == 90 * M);
	assert_true(cfg->severities[0].update_every == 90 * S);
	assert_true(cfg->severities[0].pages);
	assert_int_equal(cfg->severities[0].postmortem, KX_PM_NONE);
	assert_false(cfg->severities[1].pages);
	assert_int_equal(cfg->ntypes, 16);
}

static void parse_severity_defaults(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	if (parse(cfg, "severities:\n  - name: ONLY\n", &err))
		fail_msg("refused: %s", err.msg);
	assert_int_equal(cfg->nseverities, 1);
	assert_string_equal(cfg->severities[0].name, "ONLY");
	/* the description defaults to the name; durations have defaults */
	assert_string_equal(cfg->severities[0].description, "ONLY");
	assert_true(cfg->severities[0].response_time > 0);
	assert_true(cfg->severities[0].update_every > 0);
	assert_null(cfg->severities[0].examples);
}

static void parse_types_override_descriptions(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	static const char yaml[] = "types:\n"
				   "  - name: SAFETY\n"
				   "    description: anything that hurts a customer\n"
				   "  - name: BILLING\n"
				   "  - name: ML_MODEL_2\n"
				   "    description: model regressions\n";
	if (parse(cfg, yaml, &err))
		fail_msg("refused: %s", err.msg);
	assert_int_equal(cfg->ntypes, 18);
	assert_string_equal(cfg->types[0].name, "SAFETY");
	assert_string_equal(kx_config_type(cfg, "SAFETY")->description,
			    "anything that hurts a customer");
	assert_non_null(kx_config_type(cfg, "BILLING"));
	assert_string_equal(kx_config_type(cfg, "BILLING")->description, "");
	assert_string_equal(cfg->types[17].name, "ML_MODEL_2");
	/* severities untouched */
	assert_int_equal(cfg->nseverities, 5);
}

static void parse_applies_on_top(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	assert_int_equal(parse(cfg, "listen: 127.0.0.1:9999\n", &err), 0);
	assert_int_equal(parse(cfg, "threads: 3\n", &err), 0);
	assert_string_equal(cfg->listen, "127.0.0.1:9999");
	assert_int_equal(cfg->threads, 3);
	assert_string_equal(cfg->data_dir, "./var");
}

static void parse_gate_and_channels(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	assert_int_equal(parse(cfg,
			       "gate:\n"
			       "  dedupe_window: 1h\n"
			       "  approval_ttl: 10m\n"
			       "  caps:\n"
			       "    - {id: ig-comments, spec: \"platform=instagram,action=comment: 200/1d\"}\n"
			       "channels:\n"
			       "  - name: ops\n"
			       "    type: webhook\n"
			       "    url: http://127.0.0.1:9/hook\n"
			       "    secret: s3cret\n"
			       "    events: [switch.*, incident.declared]\n"
			       "    selector: client=acme\n",
			       &err),
			 0);
	assert_int_equal(cfg->gate.dedupe_window, 3600000);
	assert_int_equal(cfg->gate.approval_ttl, 600000);
	assert_int_equal(cfg->gate.ncaps, 1);
	assert_string_equal(cfg->gate.caps[0].id, "ig-comments");
	assert_int_equal(cfg->nchannels, 1);
	assert_int_equal(cfg->channels[0].nevents, 2);
	assert_string_equal(cfg->channels[0].selector, "client=acme");
	assert_non_null(kx_config_channel(cfg, "ops"));
}

static void parse_gate_and_channel_errors(void **state)
{
	(void)state;
	expect_error("channels:\n  - {name: ops, url: \"http://x/\", events: [incident.declare]}\n", 2,
		     43, "unknown event 'incident.declare'");
	expect_error("channels:\n  - {name: ops, url: \"ftp://x/\"}\n", 2, 22, "http:// or https://");
	expect_error("gate:\n  caps:\n    - {id: c1, spec: \"action=dm: 1/0s\"}\n", 3, 7,
		     "cap 'c1'");
	expect_error("gate:\n  dedupe_window: -1s\n", 2, 18, "dedupe_window");
	expect_error("detections:\n  - {name: loop, threshold: 5, window: 1m, severity: P9}\n", 1,
		     1, "unknown severity 'P9'");
}

static void parse_empty_document_is_fine(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	static const char *const empty[] = {"", "\n\n", "# nothing here\n", "  \n# a\n\n# b\n", NULL};
	for (const char *const *y = empty; *y; y++) {
		if (parse(cfg, *y, &err))
			fail_msg("'%s' refused: %s", *y, err.msg);
	}
	assert_int_equal(cfg->nseverities, 5);
	assert_int_equal(cfg->ntypes, 16);
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
}

/* Regression (was a bug in core/config.c, kx_config_parse): a document with an explicit
 * start marker and nothing else ("---", often followed by commented-out
 * settings) is an empty document too, but its root is an empty scalar and
 * it is refused with "klaxon.yaml:2:1: the configuration: expected a
 * mapping of key: value". */
static void parse_explicit_empty_document_is_fine(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	static const char *const empty[] = {"---\n", "---\n# listen: 0.0.0.0:80\n", "---\n...\n",
					    NULL};
	for (const char *const *y = empty; *y; y++) {
		if (parse(cfg, *y, &err))
			fail_msg("'%s' refused: %s", *y, err.msg);
	}
	assert_int_equal(cfg->nseverities, 5);
}

static void parse_max_body_bytes_range(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	assert_int_equal(parse(cfg, "max_body_bytes: 1024\n", &err), 0);
	assert_int_equal(cfg->max_body_bytes, 1024);
	assert_int_equal(parse(cfg, "max_body_bytes: 1073741824\n", &err), 0);
	assert_int_equal(cfg->max_body_bytes, 1073741824);
	expect_error("max_body_bytes: 1023\n", 1, 17, "'max_body_bytes'");
	expect_error("max_body_bytes: 1073741825\n", 1, 17, "from 1024 to 1073741824");
	expect_error("max_body_bytes: -1\n", 1, 17, "'max_body_bytes'");
	expect_error("max_body_bytes: 1MB\n", 1, 17, "got '1MB'");
	expect_error("max_body_bytes: 0x1000\n", 1, 17, "'max_body_bytes'");
	expect_error("max_body_bytes: 99999999999999999999999\n", 1, 17, "'max_body_bytes'");
	expect_error("max_body_bytes: \"\"\n", 1, 17, "'max_body_bytes'");
	expect_error("threads: 257\n", 1, 10, "'threads'");
	expect_error("threads: -1\n", 1, 10, "'threads'");
}

/* ---- errors and where they point ---- */

static void error_bad_duration_points_at_value(void **state)
{
	(void)state;
	expect_error("listen: 127.0.0.1:9999\n"
		     "severities:\n"
		     "  - name: P1\n"
		     "    response_time: soon\n",
		     4, 20, "'response_time': cannot parse duration 'soon'");
	expect_error("severities:\n"
		     "  - name: P1\n"
		     "    response_time: 5m\n"
		     "    update_every: -5m\n",
		     4, 19, "'update_every'");
	expect_error("severities:\n"
		     "  - name: P1\n"
		     "    response_time: 5\n",
		     3, 20, "cannot parse duration '5'");
}

static void error_zero_duration(void **state)
{
	(void)state;
	expect_error("severities:\n"
		     "  - name: P1\n"
		     "    response_time: 0s\n",
		     2, 5, "durations must be above zero");
}

static void error_unknown_keys(void **state)
{
	(void)state;
	expect_error("listen: 127.0.0.1:9999\n"
		     "listen_port: 80\n",
		     2, 14, "unknown key 'listen_port' in the configuration");
	expect_error("severities:\n"
		     "  - name: P1\n"
		     "    colour: red\n",
		     3, 13, "unknown key 'colour' in a severity");
	expect_error("types:\n"
		     "  - name: X\n"
		     "    desc: typo\n",
		     3, 11, "unknown key 'desc' in a type");
}

static void error_wrong_node_types(void **state)
{
	(void)state;
	expect_error("listen: [a, b]\n", 1, 9, "'listen': expected a single value");
	expect_error("data_dir:\n  nested: map\n", 2, 3, "'data_dir': expected a single value");
	expect_error("severities: P1\n", 1, 13, "'severities': expected a list");
	expect_error("types: {name: X}\n", 1, 8, "'types': expected a list");
	expect_error("severities:\n  - P1\n", 2, 5, "expected a mapping");
	expect_error("- listen\n", 1, 1, "expected a mapping");
	expect_error("just a string\n", 1, 1, "expected a mapping");
	expect_error("severities:\n  - name: [a]\n", 2, 11, "'name': expected a single value");
	expect_error("? [a, b]\n: c\n", 1, 3, "keys must be plain names");
}

static void error_duplicate_severity(void **state)
{
	(void)state;
	expect_error("severities:\n"
		     "  - name: A\n"
		     "  - name: B\n"
		     "  - name: A\n",
		     4, 5, "severity 'A' is defined twice");
}

static void error_severity_fields(void **state)
{
	(void)state;
	expect_error("severities:\n"
		     "  - name: A\n"
		     "    pages: maybe\n",
		     3, 12, "'pages': expected true or false, got 'maybe'");
	expect_error("severities:\n"
		     "  - name: A\n"
		     "    postmortem: sometimes\n",
		     3, 17, "'postmortem': expected required, optional or none");
	expect_error("severities:\n"
		     "  - description: no name\n",
		     2, 5, "severity 1 has no 'name'");
	expect_error("severities: []\n", 1, 13, "1 to 16 levels");
	expect_error("severities:\n"
		     "  - name: P 1\n",
		     2, 11, "severity name 'P 1'");
	expect_error("severities:\n"
		     "  - name: \"\"\n",
		     2, 11, "severity name must be 1 to 16 characters");
	expect_error("severities:\n"
		     "  - name: ABCDEFGHIJKLMNOPQ\n",
		     2, 11, "1 to 16 characters");
}

static void error_too_many_severities(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_buf_adds(&b, "severities:\n"), 0);
	for (int i = 0; i < 17; i++)
		assert_int_equal(kx_buf_addf(&b, "  - name: L%d\n", i), 0);
	expect_error(kx_buf_str(&b), 2, 3, "1 to 16 levels");
	kx_buf_release(&b);
}

static void error_type_fields(void **state)
{
	(void)state;
	expect_error("types:\n"
		     "  - name: payments\n",
		     2, 11, "type name 'payments' may only use A-Z, 0-9 and '_'");
	expect_error("types:\n"
		     "  - description: nameless\n",
		     2, 5, "type has no 'name'");
	expect_error("types:\n"
		     "  - name: ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\n",
		     2, 11, "1 to 32 characters");
}

static void error_invalid_yaml(void **state)
{
	struct kx_config cfg;
	struct kx_err err;
	(void)state;
	/* a mapping value where none may be */
	expect_error("listen: a\n  data_dir: b\n", 2, 11, "mapping values are not allowed");
	/* an unclosed flow sequence: the position is where the parser gave up */
	assert_int_equal(kx_config_init(&cfg), 0);
	assert_int_equal(parse(&cfg, "listen: [a, b\n", &err), KX_EINVAL);
	assert_prefix(err.msg, "klaxon.yaml:2:");
	kx_config_release(&cfg);
	/* a tab for indentation */
	assert_int_equal(kx_config_init(&cfg), 0);
	assert_int_equal(parse(&cfg, "severities:\n\t- name: P1\n", &err), KX_EINVAL);
	assert_prefix(err.msg, "klaxon.yaml:2:");
	kx_config_release(&cfg);
}

static void error_control_characters(void **state)
{
	(void)state;
	expect_error("listen: \"a\\u0007b\"\n", 1, 9, "'listen': control characters");
	expect_error("listen: \"a\\0b\"\n", 1, 9, "'listen'");
}

static void error_names_the_file(void **state)
{
	struct kx_config cfg;
	struct kx_err err;
	(void)state;
	assert_int_equal(kx_config_init(&cfg), 0);
	assert_int_equal(kx_config_parse(&cfg, "nope: 1\n", 8, "/etc/klaxon/klaxon.yaml", &err),
			 KX_EINVAL);
	assert_prefix(err.msg, "/etc/klaxon/klaxon.yaml:1:7: ");
	kx_config_release(&cfg);
}

static void parse_uses_length_not_nul(void **state)
{
	struct kx_config *cfg = *state;
	struct kx_err err;
	static const char yaml[] = "threads: 4\nthreads: garbage\n";
	/* only the first line is inside len */
	assert_int_equal(kx_config_parse(cfg, yaml, 11, "klaxon.yaml", &err), 0);
	assert_int_equal(cfg->threads, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(defaults_daemon),
		TEST(defaults_severities),
		TEST(defaults_types),
		TEST(severity_error_lists_levels),
		cmocka_unit_test(postmortem_names),
		cmocka_unit_test(release_twice_is_harmless),
		TEST(parse_example),
		TEST(parse_every_setting),
		TEST(parse_severity_defaults),
		TEST(parse_types_override_descriptions),
		TEST(parse_applies_on_top),
		TEST(parse_empty_document_is_fine),
		TEST(parse_explicit_empty_document_is_fine),
		TEST(parse_max_body_bytes_range),
		cmocka_unit_test(error_bad_duration_points_at_value),
		cmocka_unit_test(error_zero_duration),
		cmocka_unit_test(error_unknown_keys),
		cmocka_unit_test(error_wrong_node_types),
		cmocka_unit_test(error_duplicate_severity),
		cmocka_unit_test(error_severity_fields),
		cmocka_unit_test(error_too_many_severities),
		cmocka_unit_test(error_type_fields),
		cmocka_unit_test_setup_teardown(parse_gate_and_channels, setup, teardown),
		cmocka_unit_test(parse_gate_and_channel_errors),
		cmocka_unit_test(error_invalid_yaml),
		cmocka_unit_test(error_control_characters),
		cmocka_unit_test(error_names_the_file),
		TEST(parse_uses_length_not_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
