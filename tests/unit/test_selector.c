/* test_selector.c — core/selector: parsing, canonical form, matching and
 * the error messages people see when a selector does not parse. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/labels.h"
#include "core/selector.h"
#include "helpers.h"

static char *format(const struct kx_selector *sel)
{
	struct kx_buf b;
	char *s;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_selector_format(sel, &b), 0);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	return s;
}

/* Parses text, which must succeed, and checks its canonical form. */
#define assert_canonical(text, want)                                                          \
	do {                                                                                   \
		struct kx_selector s_;                                                         \
		struct kx_err e_ = {0};                                                        \
		char *got_;                                                                    \
		kx_selector_init(&s_);                                                         \
		if (kx_selector_parse(&s_, (text), &e_))                                       \
			fail_msg("'%s' did not parse: %s", (text), e_.msg);                    \
		got_ = format(&s_);                                                            \
		if (strcmp(got_, (want)) != 0)                                                 \
			fail_msg("'%s' formats as \"%s\", expected \"%s\"", (text), got_, (want)); \
		free(got_);                                                                    \
		kx_selector_release(&s_);                                                      \
	} while (0)

/* Parses text, which must fail with exactly msg. */
#define assert_parse_error(text, code, want_msg)                                                   \
	do {                                                                                   \
		struct kx_selector s_;                                                         \
		struct kx_err e_ = {0};                                                        \
		int rc_;                                                                       \
		kx_selector_init(&s_);                                                         \
		rc_ = kx_selector_parse(&s_, (text), &e_);                                     \
		if (rc_ != (code))                                                             \
			fail_msg("'%s': expected code %d, got %d (%s)", (text), (code), rc_,   \
				 e_.msg);                                                      \
		if (strcmp(e_.msg, (want_msg)) != 0)                                                \
			fail_msg("'%s': message is\n  \"%s\"\nexpected\n  \"%s\"", (text),     \
				 e_.msg, (want_msg));                                               \
		assert_int_equal(s_.n, 0);                                                     \
		kx_selector_release(&s_);                                                      \
	} while (0)

/* "k=v,k=v" into an initialised label set (values without ','). */
static void labels_from(struct kx_labels *ls, const char *text)
{
	char buf[1024], *p = buf;
	assert_true(strlen(text) < sizeof(buf));
	memcpy(buf, text, strlen(text) + 1);
	while (*p) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (kx_labels_add_pair(ls, p, NULL))
			fail_msg("bad label '%s'", p);
		p = comma ? comma + 1 : p + strlen(p);
	}
}

static bool matches(const char *sel_text, const char *labels)
{
	struct kx_selector sel;
	struct kx_labels ls;
	struct kx_err err = {0};
	bool m;
	kx_selector_init(&sel);
	kx_labels_init(&ls);
	if (kx_selector_parse(&sel, sel_text, &err))
		fail_msg("'%s' did not parse: %s", sel_text, err.msg);
	labels_from(&ls, labels);
	m = kx_selector_matches(&sel, &ls);
	kx_labels_release(&ls);
	kx_selector_release(&sel);
	return m;
}

/* ---- parsing and canonical form ---- */

static void empty_matches_everything(void **state)
{
	(void)state;
	assert_canonical("", "");
	assert_canonical("   \t ", "");
	assert_true(matches("", "client=acme,action=dm"));
	assert_true(matches("  ", ""));
}

static void equality_lists(void **state)
{
	(void)state;
	assert_canonical("client=acme", "client=acme");
	assert_canonical("platform=instagram,action=dm", "action=dm,platform=instagram");
	assert_canonical("  platform = instagram ,\taction = dm  ", "action=dm,platform=instagram");
	assert_canonical("lane=browser", "lane=browser");
	/* a value keeps its inner spaces; only the ends are trimmed */
	assert_canonical("client = Acme Corp , lane=api", "client=Acme Corp,lane=api");
	assert_canonical("client=café", "client=café");
}

static void other_operators(void **state)
{
	(void)state;
	assert_canonical("client!=acme", "client!=acme");
	assert_canonical("client != acme", "client!=acme");
	assert_canonical("action in (dm, comment)", "action in (comment,dm)");
	assert_canonical("action in(dm,comment,dm)", "action in (comment,dm)");
	assert_canonical("action notin ( like , follow )", "action notin (follow,like)");
	/* one-value lists are the plain operators */
	assert_canonical("action in (dm)", "action=dm");
	assert_canonical("action notin (dm, dm)", "action!=dm");
	assert_canonical("z in (b,a),a notin (y,x),m!=n,b=c", "a notin (x,y),b=c,m!=n,z in (a,b)");
	/* "in" is only an operator before a space or '(' */
	assert_canonical("in=x", "in=x");
	assert_canonical("in in (in,notin)", "in in (in,notin)");
}

static void quoted_values(void **state)
{
	(void)state;
	assert_canonical("target=\"post(1),2\"", "target=\"post(1),2\"");
	assert_canonical("target=\"plain\"", "target=plain");
	assert_canonical("t=\"say \\\"hi\\\"\"", "t=\"say \\\"hi\\\"\"");
	/* a backslash alone needs no quotes: bare values take it literally */
	assert_canonical("t=\"back\\\\slash\"", "t=back\\slash");
	assert_canonical("t=back\\slash", "t=back\\slash"); /* bare: literal */
	assert_canonical("t=\" padded \"", "t=\" padded \"");
	assert_canonical("t=\"a=b\"", "t=\"a=b\"");
	assert_canonical("t in (\"a,b\", c)", "t in (\"a,b\",c)");
	assert_true(matches("t=\"a=b\"", "t=a=b"));
}

static void round_trips(void **state)
{
	static const char *const texts[] = {
		"", "a=b", "a!=b", "a in (b,c)", "a notin (b,c)", "t=\" x \"", "t=\"(\"",
		"t=\"\\\\\"", "t=\"\\\"\"", "t=\",\"", "k.a-b_c=v w", "x=日本,y in (é,e)", NULL};
	(void)state;
	for (const char *const *t = texts; *t; t++) {
		struct kx_selector a, b;
		struct kx_err err = {0};
		char *fa, *fb;
		kx_selector_init(&a);
		kx_selector_init(&b);
		if (kx_selector_parse(&a, *t, &err))
			fail_msg("'%s': %s", *t, err.msg);
		fa = format(&a);
		if (kx_selector_parse(&b, fa, &err))
			fail_msg("'%s' formatted as '%s' which does not parse: %s", *t, fa, err.msg);
		fb = format(&b);
		assert_true(kx_selector_equal(&a, &b));
		assert_string_equal(fa, fb);
		free(fa);
		free(fb);
		kx_selector_release(&a);
		kx_selector_release(&b);
	}
}

static void equal_and_get(void **state)
{
	struct kx_selector a, b, c;
	struct kx_err err = {0};
	const struct kx_selector_req *r;
	(void)state;
	kx_selector_init(&a);
	kx_selector_init(&b);
	kx_selector_init(&c);
	assert_int_equal(kx_selector_parse(&a, "b=2,a in (y,x)", &err), 0);
	assert_int_equal(kx_selector_parse(&b, "a in (x,y,x), b=2", &err), 0);
	assert_int_equal(kx_selector_parse(&c, "a in (x,y),b!=2", &err), 0);
	assert_true(kx_selector_equal(&a, &b));
	assert_false(kx_selector_equal(&a, &c));
	r = kx_selector_get(&a, "a");
	assert_non_null(r);
	assert_int_equal(r->op, KX_SELECTOR_IN);
	assert_int_equal(r->n, 2);
	assert_string_equal(r->values[0], "x");
	assert_null(kx_selector_get(&a, "c"));
	/* parsing again replaces what was there */
	assert_int_equal(kx_selector_parse(&a, "z=1", &err), 0);
	assert_int_equal(a.n, 1);
	/* and a failed parse leaves it empty */
	assert_int_equal(kx_selector_parse(&a, "z", &err), KX_EINVAL);
	assert_int_equal(a.n, 0);
	assert_int_equal(kx_selector_copy(&a, &c), 0);
	assert_true(kx_selector_equal(&a, &c));
	kx_selector_release(&a);
	kx_selector_release(&b);
	kx_selector_release(&c);
}

static void from_labels(void **state)
{
	struct kx_selector sel;
	struct kx_labels ls;
	struct kx_err err = {0};
	char *s;
	(void)state;
	kx_selector_init(&sel);
	kx_labels_init(&ls);
	labels_from(&ls, "platform=instagram,client=acme");
	assert_int_equal(kx_labels_set(&ls, "target", "a,b", NULL), 0);
	assert_int_equal(kx_selector_from_labels(&sel, &ls, &err), 0);
	s = format(&sel);
	assert_string_equal(s, "client=acme,platform=instagram,target=\"a,b\"");
	free(s);
	assert_true(kx_selector_matches(&sel, &ls));
	kx_labels_release(&ls);
	kx_labels_init(&ls);
	assert_int_equal(kx_selector_from_labels(&sel, &ls, &err), 0);
	assert_int_equal(sel.n, 0);
	kx_labels_release(&ls);
	kx_selector_release(&sel);
}

/* ---- matching ---- */

static void matching(void **state)
{
	(void)state;
	assert_true(matches("client=acme", "client=acme,action=dm"));
	assert_false(matches("client=acme", "client=globex,action=dm"));
	assert_false(matches("client=acme", "action=dm"));
	assert_true(matches("platform=instagram,action=dm", "platform=instagram,action=dm,client=x"));
	assert_false(matches("platform=instagram,action=dm", "platform=instagram,action=comment"));
	/* != and notin match an absent label */
	assert_true(matches("client!=acme", "client=globex"));
	assert_false(matches("client!=acme", "client=acme"));
	assert_true(matches("client!=acme", "action=dm"));
	assert_true(matches("action in (dm,comment)", "action=comment"));
	assert_false(matches("action in (dm,comment)", "action=like"));
	assert_false(matches("action in (dm,comment)", "client=acme"));
	assert_true(matches("action notin (dm,comment)", "action=like"));
	assert_false(matches("action notin (dm,comment)", "action=dm"));
	assert_true(matches("action notin (dm,comment)", "client=acme"));
	/* values are compared exactly */
	assert_false(matches("client=Acme", "client=acme"));
	assert_false(matches("client=acme", "client=acme2"));
	assert_true(matches("client=Acme Corp", "client=Acme Corp"));
}

/* ---- errors ---- */

static void error_messages(void **state)
{
	(void)state;
	assert_parse_error("platform", KX_EINVAL,
			   "cannot parse selector at column 9: expected '=' after 'platform'");
	assert_parse_error("platform=instagram,action", KX_EINVAL,
			   "cannot parse selector at column 26: expected '=' after 'action'");
	assert_parse_error("platform,action=dm", KX_EINVAL,
			   "cannot parse selector at column 9: expected '=' after 'platform'");
	assert_parse_error("a b=c", KX_EINVAL,
			   "cannot parse selector at column 3: expected '=', '!=', 'in' or 'notin' after 'a'");
	assert_parse_error("client=", KX_EINVAL,
			   "cannot parse selector at column 8: expected a value for 'client'");
	assert_parse_error("client=  ,a=b", KX_EINVAL,
			   "cannot parse selector at column 10: expected a value for 'client'");
	assert_parse_error("client=acme,", KX_EINVAL,
			   "cannot parse selector at column 13: expected a label key after ','");
	assert_parse_error(",client=acme", KX_EINVAL,
			   "cannot parse selector at column 1: expected a label key, found ','");
	assert_parse_error("=acme", KX_EINVAL,
			   "cannot parse selector at column 1: expected a label key, found '='");
	assert_parse_error("Client=acme", KX_EINVAL,
			   "cannot parse selector at column 1: invalid label key 'Client': use "
			   "lowercase letters, digits, '_', '.' and '-'");
	assert_parse_error("client=a,client=b", KX_EINVAL,
			   "cannot parse selector at column 10: 'client' appears twice (use "
			   "'client in (a,b)' to match either value)");
	assert_parse_error("client=acme platform=instagram", KX_EINVAL,
			   "cannot parse selector at column 21: unexpected '=' in the value of "
			   "'client' (a missing ','? put values with '=' in double quotes)");
	assert_parse_error("client==acme", KX_EINVAL,
			   "cannot parse selector at column 8: unexpected '=' in the value of "
			   "'client' (a missing ','? put values with '=' in double quotes)");
	assert_parse_error("client!acme", KX_EINVAL,
			   "cannot parse selector at column 7: expected '=', '!=', 'in' or 'notin' "
			   "after 'client'");
	assert_parse_error("client in acme", KX_EINVAL,
			   "cannot parse selector at column 11: expected '(' after 'client in'");
	assert_parse_error("client in", KX_EINVAL,
			   "cannot parse selector at column 10: expected '(' after 'client in'");
	assert_parse_error("client notin (a,b", KX_EINVAL,
			   "cannot parse selector at column 18: missing ')' after the values of 'client'");
	assert_parse_error("client in ()", KX_EINVAL,
			   "cannot parse selector at column 12: expected a value for 'client'");
	assert_parse_error("client in (a,,b)", KX_EINVAL,
			   "cannot parse selector at column 14: expected a value for 'client'");
	assert_parse_error("client in (a)x", KX_EINVAL,
			   "cannot parse selector at column 14: expected ',' after the requirement on 'client'");
	assert_parse_error("client in (\"a\" b)", KX_EINVAL,
			   "cannot parse selector at column 16: expected ',' or ')' in the values of 'client'");
	assert_parse_error("client=a(b)", KX_EINVAL,
			   "cannot parse selector at column 9: unexpected '(' in the value of 'client' "
			   "(put values with ',', '(', ')' or '\"' in double quotes)");
	assert_parse_error("client=acme)", KX_EINVAL,
			   "cannot parse selector at column 12: unexpected ')' in the value of 'client' "
			   "(put values with ',', '(', ')' or '\"' in double quotes)");
	assert_parse_error("client=\"acme", KX_EINVAL,
			   "cannot parse selector at column 8: unterminated quoted value for 'client'");
	assert_parse_error("client=\"a\\qb\"", KX_EINVAL,
			   "cannot parse selector at column 10: unknown escape in the value of 'client' "
			   "(only \\\" and \\\\)");
	assert_parse_error("client=\"acme\"x", KX_EINVAL,
			   "cannot parse selector at column 14: expected ',' after the requirement on 'client'");
	assert_parse_error("client=\"\"", KX_EINVAL,
			   "cannot parse selector at column 8: label 'client' has an empty value");
	assert_parse_error("client=a\x01" "b", KX_EINVAL,
			   "cannot parse selector at column 8: label 'client' value has control "
			   "characters or invalid UTF-8");
	assert_parse_error("client=\xff", KX_EINVAL,
			   "cannot parse selector at column 8: label 'client' value has control "
			   "characters or invalid UTF-8");
	/* columns count characters, not bytes */
	assert_parse_error("client=café,Bad=1", KX_EINVAL,
			   "cannot parse selector at column 13: invalid label key 'Bad': use "
			   "lowercase letters, digits, '_', '.' and '-'");
}

static void limits(void **state)
{
	struct kx_selector sel;
	struct kx_err err = {0};
	struct kx_buf b;
	char *v256 = repeat("v", 256), *v257 = repeat("v", 257), *k65 = repeat("k", 65), *text;
	(void)state;
	kx_selector_init(&sel);
	kx_buf_init(&b, 0);

	assert_int_equal(kx_buf_addf(&b, "k=%s", v256), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), 0);
	kx_buf_clear(&b);
	assert_int_equal(kx_buf_addf(&b, "k=%s", v257), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), KX_EINVAL);
	assert_string_equal(err.msg, "cannot parse selector at column 3: label 'k' value is "
				     "longer than 256 bytes");
	kx_buf_clear(&b);
	assert_int_equal(kx_buf_addf(&b, "k=\"%s\"", v257), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), KX_EINVAL);
	assert_contains(err.msg, "longer than 256 bytes");
	kx_buf_clear(&b);
	assert_int_equal(kx_buf_addf(&b, "%s=v", k65), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), KX_EINVAL);
	assert_contains(err.msg, "at column 1: label key");
	assert_contains(err.msg, "longer than 64 characters");

	/* 64 requirements are fine, 65 are not */
	kx_buf_clear(&b);
	for (int i = 0; i < KX_SELECTOR_MAX_REQS; i++)
		assert_int_equal(kx_buf_addf(&b, "%sk%02d=v", i ? "," : "", i), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), 0);
	assert_int_equal(sel.n, KX_SELECTOR_MAX_REQS);
	assert_int_equal(kx_buf_adds(&b, ",extra=v"), 0);
	assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), KX_EINVAL);
	assert_contains(err.msg, "too many requirements (at most 64)");

	/* 64 values in a list are fine, 65 are not */
	for (int n = KX_SELECTOR_MAX_VALUES; n <= KX_SELECTOR_MAX_VALUES + 1; n++) {
		kx_buf_clear(&b);
		assert_int_equal(kx_buf_adds(&b, "k in ("), 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(kx_buf_addf(&b, "%sv%02d", i ? "," : "", i), 0);
		assert_int_equal(kx_buf_adds(&b, ")"), 0);
		if (n == KX_SELECTOR_MAX_VALUES) {
			assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), 0);
			assert_int_equal(sel.v[0].n, KX_SELECTOR_MAX_VALUES);
		} else {
			assert_int_equal(kx_selector_parse(&sel, kx_buf_str(&b), &err), KX_EINVAL);
			assert_contains(err.msg, "too many values for 'k' (at most 64)");
		}
	}

	/* the text itself */
	text = repeat(" ", KX_SELECTOR_MAX_LEN + 1);
	assert_int_equal(kx_selector_parse(&sel, text, &err), KX_ETOOBIG);
	assert_string_equal(err.msg, "cannot parse selector: longer than 16384 bytes");
	free(text);
	/* NUL bytes when the length is explicit */
	assert_int_equal(kx_selector_parse_n(&sel, "a=b\0c", 5, NULL, &err), KX_EINVAL);
	assert_string_equal(err.msg, "cannot parse selector at column 4: unexpected NUL byte");
	/* the name of the thing parsed */
	assert_int_equal(kx_selector_parse_n(&sel, "oops", 4, "cap", &err), KX_EINVAL);
	assert_string_equal(err.msg, "cannot parse cap at column 5: expected '=' after 'oops'");
	/* a NULL err is fine */
	assert_int_equal(kx_selector_parse(&sel, "oops", NULL), KX_EINVAL);

	kx_buf_release(&b);
	kx_selector_release(&sel);
	free(v256);
	free(v257);
	free(k65);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_matches_everything),
		cmocka_unit_test(equality_lists),
		cmocka_unit_test(other_operators),
		cmocka_unit_test(quoted_values),
		cmocka_unit_test(round_trips),
		cmocka_unit_test(equal_and_get),
		cmocka_unit_test(from_labels),
		cmocka_unit_test(matching),
		cmocka_unit_test(error_messages),
		cmocka_unit_test(limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
