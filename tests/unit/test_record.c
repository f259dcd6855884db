/* test_record.c — core/record: the incident record in Markdown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/record.h"
#include "helpers.h"

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */
#define MIN 60000

struct fixture {
	struct kx_incident inc;
	struct kx_config cfg;
	struct kx_buf out;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || kx_config_init(&f->cfg))
		return -1;
	kx_incident_init(&f->inc);
	snprintf(f->inc.id, sizeof(f->inc.id), "INC-20261125-001");
	f->inc.title = strdup("Checkout is down");
	f->inc.severity = strdup("P1");
	f->inc.created_by = strdup("alice");
	f->inc.status = KX_STATUS_INVESTIGATING;
	f->inc.detected_at = T0 - 5 * MIN;
	f->inc.declared_at = T0;
	f->inc.updated_at = T0;
	f->inc.version = 1;
	kx_buf_init(&f->out, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kx_incident_release(&f->inc);
	kx_config_release(&f->cfg);
	kx_buf_release(&f->out);
	free(f);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const char *render(struct fixture *f, const struct kx_timeline_entry *t, size_t nt,
			  const struct kx_action_item *a, size_t na, const struct kx_config *cfg)
{
	kx_buf_clear(&f->out);
	assert_int_equal(kx_record_markdown(&f->out, &f->inc, t, nt, a, na, cfg), 0);
	return kx_buf_str(&f->out);
}

/* The body of section `heading` (from after its line to the next "\n## "
 * or the end), malloc'd. */
static char *section(const char *md, const char *heading)
{
	char want[64];
	const char *p, *end;
	char *s;
	snprintf(want, sizeof(want), "\n%s\n", heading);
	p = strstr(md, want);
	if (!p)
		fail_msg("no '%s' in:\n%s", heading, md);
	p += strlen(want);
	end = strstr(p, "\n## ");
	if (!end)
		end = p + strlen(p);
	s = strndup(p, (size_t)(end - p));
	assert_non_null(s);
	return s;
}

/* Counts the lines of md that start with prefix. */
static int lines_starting(const char *md, const char *prefix)
{
	int n = 0;
	for (const char *p = md; p && *p;) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

static void sections_in_order(void **state)
{
	struct fixture *f = *state;
	static const char *const order[] = {"# Incident INC-20261125-001: Checkout is down\n",
					    "\n## Summary\n",
					    "\n## Roles\n",
					    "\n## Timeline\n",
					    "\n## Impact\n",
					    "\n## Root Cause\n",
					    "\n## Resolution\n",
					    "\n## Action Items\n"};
	const char *md = render(f, NULL, 0, NULL, 0, &f->cfg);
	const char *last = md;
	assert_prefix(md, order[0]);
	for (size_t i = 1; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *p = strstr(md, order[i]);
		if (!p || p < last)
			fail_msg("'%s' missing or out of order in:\n%s", order[i] + 1, md);
		last = p;
	}
	/* exactly one top-level heading and seven sections */
	assert_int_equal(lines_starting(md, "# "), 1);
	assert_int_equal(lines_starting(md, "## "), 7);
}

static void placeholders_for_a_new_incident(void **state)
{
	struct fixture *f = *state;
	const char *md = render(f, NULL, 0, NULL, 0, &f->cfg);
	char *s;
	assert_contains(md, "- **Acknowledged**: [pending]\n");
	assert_contains(md, "- **Mitigated**: [pending]\n");
	assert_contains(md, "- **Resolved**: [pending]\n");
	assert_contains(md, "- **Started**: unknown\n");
	assert_contains(md, "- **Detected**: 2026-11-25 20:25 UTC\n");
	assert_contains(md, "- **Declared**: 2026-11-25 20:30 UTC\n");
	assert_contains(md, "- **Status**: Investigating\n");
	s = section(md, "## Root Cause");
	assert_string_equal(s, "[To be determined]\n");
	free(s);
	s = section(md, "## Resolution");
	assert_string_equal(s, "[To be documented]\n");
	free(s);
	s = section(md, "## Roles");
	assert_string_equal(s, "[none assigned]\n");
	free(s);
	s = section(md, "## Impact");
	assert_string_equal(s, "[To be assessed]\n");
	free(s);
	s = section(md, "## Action Items");
	assert_string_equal(s, "[none yet]\n");
	free(s);
}

static void severity_description_from_config(void **state)
{
	struct fixture *f = *state;
	const char *md = render(f, NULL, 0, NULL, 0, &f->cfg);
	assert_contains(md, "- **Severity**: P1 (Critical: major production outage or immediate "
			    "harm)\n");
	md = render(f, NULL, 0, NULL, 0, NULL);
	assert_contains(md, "- **Severity**: P1\n");
}

static void full_record(void **state)
{
	struct fixture *f = *state;
	struct kx_timeline_entry tl[2] = {
		{1, T0, "alice", "declared", "declared P1: Checkout is down"},
		{2, T0 + 12 * MIN, "bob", "status", "status investigating → identified"},
	};
	struct kx_action_item items[2];
	const char *md;
	char *s;

	memset(items, 0, sizeof(items));
	items[0].number = 1;
	items[0].title = "Add an alert on 5xx rate";
	items[0].kind = KX_ITEM_DETECT;
	items[0].owner = "carol";
	snprintf(items[0].due, sizeof(items[0].due), "2026-12-01");
	items[1].number = 2;
	items[1].title = "Roll back bad config";
	items[1].kind = KX_ITEM_MITIGATE;
	items[1].done = true;

	f->inc.status = KX_STATUS_RESOLVED;
	f->inc.started_at = T0 - 20 * MIN;
	f->inc.acknowledged_at = T0 + 2 * MIN;
	f->inc.mitigated_at = T0 + 30 * MIN;
	f->inc.resolved_at = T0 + 60 * MIN;
	f->inc.summary = strdup("Payments API failed for EU cards.");
	f->inc.root_cause = strdup("An expired certificate.\nNobody was paged.");
	f->inc.resolution = strdup("Rotated the certificate.");
	f->inc.impact.users = 1200;
	f->inc.impact.accounts = 3;
	f->inc.impact.revenue = strdup("$5k");
	f->inc.impact.description = strdup("EU checkout failed");
	assert_int_equal(kx_incident_add_type(&f->inc, "OUTAGE"), 0);
	assert_int_equal(kx_incident_add_type(&f->inc, "DEPLOY"), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "env=prod", NULL), 0);
	/* added out of order: the record lists roles in the canonical order */
	assert_int_equal(kx_incident_add_role(&f->inc, "sme", "erin"), 0);
	assert_int_equal(kx_incident_add_role(&f->inc, "commander", "alice"), 0);
	assert_int_equal(kx_incident_add_role(&f->inc, "sme", "frank"), 0);
	assert_int_equal(kx_incident_add_role(&f->inc, "scribe", "dave"), 0);

	md = render(f, tl, 2, items, 2, &f->cfg);

	assert_contains(md, "- **Status**: Resolved\n");
	assert_contains(md, "- **Types**: OUTAGE, DEPLOY\n");
	assert_contains(md, "- **Scope**: client=acme, env=prod\n");
	assert_contains(md, "- **Started**: 2026-11-25 20:10 UTC\n");
	assert_contains(md, "- **Acknowledged**: 2026-11-25 20:32 UTC\n");
	assert_contains(md, "- **Mitigated**: 2026-11-25 21:00 UTC\n");
	assert_contains(md, "- **Resolved**: 2026-11-25 21:30 UTC\n");
	assert_not_contains(md, "[pending]");
	assert_contains(md, "\nPayments API failed for EU cards.\n");

	s = section(md, "## Roles");
	assert_string_equal(s, "- **Incident commander**: alice\n"
			       "- **Scribe**: dave\n"
			       "- **Subject-matter expert**: erin\n"
			       "- **Subject-matter expert**: frank\n");
	free(s);

	s = section(md, "## Timeline");
	assert_string_equal(s, "- 2026-11-25 20:10 UTC — impact started\n"
			       "- 2026-11-25 20:25 UTC — detected\n"
			       "- 2026-11-25 20:30 UTC — declared P1: Checkout is down (alice)\n"
			       "- 2026-11-25 20:42 UTC — status investigating → identified (bob)\n");
	free(s);

	s = section(md, "## Impact");
	assert_string_equal(s, "- 1200 users affected\n"
			       "- 3 accounts affected\n"
			       "- Revenue impact: $5k\n"
			       "- EU checkout failed\n");
	free(s);

	s = section(md, "## Root Cause");
	assert_string_equal(s, "An expired certificate.\nNobody was paged.\n");
	free(s);
	s = section(md, "## Resolution");
	assert_string_equal(s, "Rotated the certificate.\n");
	free(s);

	s = section(md, "## Action Items");
	assert_string_equal(s, "- [ ] Add an alert on 5xx rate (detect, owner: carol, due 2026-12-01)\n"
			       "- [x] Roll back bad config (mitigate)\n");
	free(s);
}

static void title_cannot_inject_a_heading(void **state)
{
	struct fixture *f = *state;
	const char *md;
	free(f->inc.title);
	f->inc.title = strdup("Checkout\n# Evil\n- [x] fake");
	md = render(f, NULL, 0, NULL, 0, &f->cfg);
	assert_prefix(md, "# Incident INC-20261125-001: Checkout \\# Evil - \\[x\\] fake\n\n");
	assert_int_equal(lines_starting(md, "# "), 1);
	assert_int_equal(lines_starting(md, "# Evil"), 0);
}

static void inline_specials_are_escaped(void **state)
{
	struct fixture *f = *state;
	const char *md;
	struct kx_timeline_entry tl = {1, T0, "m*a_l[l]o<r>y", "note", "see [here](http://x) `rm -rf` |a|b| \\o/"};
	struct kx_action_item item;
	memset(&item, 0, sizeof(item));
	item.title = "**bold** _it_";
	item.owner = "<script>";
	free(f->inc.title);
	f->inc.title = strdup("a*b_c`d[e](f)<g>|h\\i#j");
	md = render(f, &tl, 1, &item, 1, &f->cfg);
	assert_contains(md, "# Incident INC-20261125-001: a\\*b\\_c\\`d\\[e\\](f)\\<g\\>\\|h\\\\i\\#j\n");
	assert_contains(md, "— see \\[here\\](http://x) \\`rm -rf\\` \\|a\\|b\\| \\\\o/ "
			    "(m\\*a\\_l\\[l\\]o\\<r\\>y)\n");
	assert_contains(md, "- [ ] \\*\\*bold\\*\\* \\_it\\_ (mitigate, owner: \\<script\\>)\n");
	assert_not_contains(md, "<script>");
}

static void timeline_text_folds_line_breaks(void **state)
{
	struct fixture *f = *state;
	struct kx_timeline_entry tl = {1, T0, "bob", "note", "first line\n## Fake section\r\n\tmore"};
	const char *md = render(f, &tl, 1, NULL, 0, &f->cfg);
	assert_contains(md, "- 2026-11-25 20:30 UTC — first line \\#\\# Fake section   more (bob)\n");
	assert_int_equal(lines_starting(md, "## "), 7);
}

static void block_text_keeps_lines_but_escapes_headings(void **state)
{
	struct fixture *f = *state;
	const char *md;
	char *s;
	f->inc.root_cause = strdup("line one\n# Not a heading\n## Nor this");
	md = render(f, NULL, 0, NULL, 0, &f->cfg);
	s = section(md, "## Root Cause");
	assert_string_equal(s, "line one\n\\# Not a heading\n\\#\\# Nor this\n");
	free(s);
	assert_int_equal(lines_starting(md, "# "), 1);
	assert_int_equal(lines_starting(md, "## "), 7);
}

/* Regression (was a bug in core/record.c, md_block): multi-line user text (summary, root
 * cause, resolution) is escaped line by line with the inline escapes only,
 * so a line that starts with "- ", "+ " or "1. " becomes a list item (here a
 * forged, ticked checkbox). kx_md_inline's contract is that user text cannot
 * forge headings or lists. */
static void block_text_cannot_forge_lists(void **state)
{
	struct fixture *f = *state;
	const char *md;
	char *s;
	int forged;
	f->inc.root_cause = strdup("unknown\n- [x] Root cause fixed\n+ another\n1. numbered");
	md = render(f, NULL, 0, NULL, 0, &f->cfg);
	s = section(md, "## Root Cause");
	forged = lines_starting(s, "- ") + lines_starting(s, "+ ") + lines_starting(s, "1. ");
	free(s);
	if (forged)
		fail_msg("root cause renders %d list item(s):\n%s", forged, md);
}

/* Regression (was a bug in core/record.c, md_block): same cause; a line of "===" or "---"
 * under a line of user text makes that line a (setext) heading, so a
 * summary "All good\n===" renders as an <h1>. */
static void block_text_cannot_forge_setext_headings(void **state)
{
	struct fixture *f = *state;
	const char *md;
	f->inc.summary = strdup("All good\n===");
	f->inc.resolution = strdup("Done\n---");
	md = render(f, NULL, 0, NULL, 0, &f->cfg);
	if (lines_starting(md, "===") || lines_starting(md, "---"))
		fail_msg("user text renders a setext heading underline:\n%s", md);
}

static void long_block_lines_survive(void **state)
{
	struct fixture *f = *state;
	char *big = repeat("ab#", 1000); /* 3000 bytes, longer than the internal chunk */
	char *want = repeat("ab\\#", 1000);
	const char *md;
	char *s;
	f->inc.resolution = big;
	md = render(f, NULL, 0, NULL, 0, &f->cfg);
	s = section(md, "## Resolution");
	assert_int_equal(strlen(s), strlen(want) + 1);
	assert_memory_equal(s, want, strlen(want));
	free(s);
	free(want);
}

static void md_inline_directly(void **state)
{
	struct kx_buf b;
	(void)state;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_md_inline(&b, "a\nb\tc\rd"), 0);
	assert_string_equal(kx_buf_str(&b), "a b c d");
	kx_buf_clear(&b);
	assert_int_equal(kx_md_inline(&b, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac"), 0);
	assert_string_equal(kx_buf_str(&b), "\xc3\xa9t\xc3\xa9 \xe2\x82\xac");
	kx_buf_release(&b);
	kx_buf_init(&b, 4);
	assert_int_equal(kx_md_inline(&b, "###"), KX_ENOMEM);
	kx_buf_release(&b);
}

static void too_small_buffer_is_enomem(void **state)
{
	struct fixture *f = *state;
	struct kx_buf small;
	kx_buf_init(&small, 100);
	assert_int_equal(kx_record_markdown(&small, &f->inc, NULL, 0, NULL, 0, &f->cfg), KX_ENOMEM);
	kx_buf_release(&small);
}

static void appends_to_existing_content(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_buf_adds(&f->out, "preamble\n"), 0);
	assert_int_equal(kx_record_markdown(&f->out, &f->inc, NULL, 0, NULL, 0, NULL), 0);
	assert_prefix(kx_buf_str(&f->out), "preamble\n# Incident INC-20261125-001: ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(sections_in_order),
		TEST(placeholders_for_a_new_incident),
		TEST(severity_description_from_config),
		TEST(full_record),
		TEST(title_cannot_inject_a_heading),
		TEST(inline_specials_are_escaped),
		TEST(timeline_text_folds_line_breaks),
		TEST(block_text_keeps_lines_but_escapes_headings),
		TEST(block_text_cannot_forge_lists),
		TEST(block_text_cannot_forge_setext_headings),
		TEST(long_block_lines_survive),
		cmocka_unit_test(md_inline_directly),
		TEST(too_small_buffer_is_enomem),
		TEST(appends_to_existing_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
