/* test_labels.c — core/labels (scope labels) and core/text (UTF-8 checks). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/labels.h"
#include "core/text.h"
#include "helpers.h"

static char *format(const struct kx_labels *ls)
{
	struct kx_buf b;
	char *s;
	kx_buf_init(&b, 0);
	assert_int_equal(kx_labels_format(ls, &b), 0);
	s = kx_buf_take(&b, NULL);
	assert_non_null(s);
	return s;
}

#define assert_labels(ls, want)                                                               \
	do {                                                                                   \
		char *got_ = format(ls);                                                       \
		if (strcmp(got_, (want)) != 0) {                                               \
			fail_msg("labels are \"%s\", expected \"%s\"", got_, (want));          \
		}                                                                              \
		free(got_);                                                                    \
	} while (0)

static void set_pairs(struct kx_labels *ls, const char *const *pairs)
{
	for (; *pairs; pairs++)
		if (kx_labels_add_pair(ls, *pairs, NULL))
			fail_msg("cannot add '%s'", *pairs);
}

/* ---- keys and values ---- */

static void key_check(void **state)
{
	static const char *const good[] = {"client", "a", "platform.name", "x-y_z.0", "0", NULL};
	static const char *const bad[] = {"", "Client", "a b", "a=b", "ümlaut", "a/b", "a:b",
					  "A", "tab\t", NULL};
	struct kx_err err = {0};
	char *k64 = repeat("k", 64), *k65 = repeat("k", 65);
	(void)state;
	for (const char *const *k = good; *k; k++)
		if (kx_label_key_check(*k, &err))
			fail_msg("key '%s' refused: %s", *k, err.msg);
	for (const char *const *k = bad; *k; k++)
		if (kx_label_key_check(*k, &err) != KX_EINVAL)
			fail_msg("key '%s' accepted", *k);
	assert_int_equal(kx_label_key_check(k64, &err), 0);
	assert_int_equal(kx_label_key_check(k65, &err), KX_EINVAL);
	assert_contains(err.msg, "longer than 64");
	assert_int_equal(kx_label_key_check("Bad", &err), KX_EINVAL);
	assert_contains(err.msg, "'Bad'");
	assert_int_equal(kx_label_key_check("", &err), KX_EINVAL);
	assert_contains(err.msg, "empty");
	free(k64);
	free(k65);
}

static void value_check(void **state)
{
	static const char *const good[] = {"acme", "Acme Corp", "café", "a=b", "x,y", "日本",
					   "with spaces and: punctuation!", NULL};
	static const char *const bad[] = {"", "a\nb", "tab\there", "\x01", "\x7f", "\xff",
					  "\xc3",  /* truncated */
					  "\xc2\x85", /* C1 NEL */
					  NULL};
	struct kx_err err = {0};
	char *v256 = repeat("v", 256), *v257 = repeat("v", 257);
	(void)state;
	for (const char *const *v = good; *v; v++)
		if (kx_label_value_check("k", *v, &err))
			fail_msg("value '%s' refused: %s", *v, err.msg);
	for (const char *const *v = bad; *v; v++)
		if (kx_label_value_check("k", *v, &err) != KX_EINVAL)
			fail_msg("value '%s' accepted", *v);
	assert_int_equal(kx_label_value_check("k", v256, &err), 0);
	assert_int_equal(kx_label_value_check("client", v257, &err), KX_EINVAL);
	assert_contains(err.msg, "'client'");
	assert_int_equal(kx_label_value_check("client", "", &err), KX_EINVAL);
	assert_contains(err.msg, "'client' has an empty value");
	free(v256);
	free(v257);
}

/* ---- the set ---- */

static void set_keeps_keys_sorted(void **state)
{
	struct kx_labels ls;
	(void)state;
	kx_labels_init(&ls);
	assert_int_equal(kx_labels_set(&ls, "zeta", "3", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "alpha", "1", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "mid", "2", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "beta", "x", NULL), 0);
	assert_int_equal(ls.n, 4);
	assert_labels(&ls, "alpha=1,beta=x,mid=2,zeta=3");
	assert_string_equal(ls.v[0].key, "alpha");
	assert_string_equal(ls.v[3].key, "zeta");
	kx_labels_release(&ls);
	assert_int_equal(ls.n, 0);
}

static void equal_sets_print_the_same(void **state)
{
	static const char *const a[] = {"platform=instagram", "client=acme", "env=prod", NULL};
	static const char *const b[] = {"env=prod", "platform=instagram", "client=acme", NULL};
	struct kx_labels la, lb;
	char *sa, *sb;
	(void)state;
	kx_labels_init(&la);
	kx_labels_init(&lb);
	set_pairs(&la, a);
	set_pairs(&lb, b);
	sa = format(&la);
	sb = format(&lb);
	assert_string_equal(sa, sb);
	assert_string_equal(sa, "client=acme,env=prod,platform=instagram");
	free(sa);
	free(sb);
	kx_labels_release(&la);
	kx_labels_release(&lb);
}

static void set_replaces_value(void **state)
{
	struct kx_labels ls;
	(void)state;
	kx_labels_init(&ls);
	assert_int_equal(kx_labels_set(&ls, "client", "acme", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "client", "globex", NULL), 0);
	assert_int_equal(ls.n, 1);
	assert_string_equal(kx_labels_get(&ls, "client"), "globex");
	kx_labels_release(&ls);
}

static void set_refuses_invalid_and_keeps_set(void **state)
{
	struct kx_labels ls;
	struct kx_err err = {0};
	(void)state;
	kx_labels_init(&ls);
	assert_int_equal(kx_labels_set(&ls, "client", "acme", NULL), 0);
	assert_int_equal(kx_labels_set(&ls, "Client", "x", &err), KX_EINVAL);
	assert_int_equal(kx_labels_set(&ls, "client", "", &err), KX_EINVAL);
	assert_int_equal(kx_labels_set(&ls, "client", "bad\nvalue", &err), KX_EINVAL);
	assert_int_equal(ls.n, 1);
	assert_string_equal(kx_labels_get(&ls, "client"), "acme");
	kx_labels_release(&ls);
}

static void set_has_a_maximum(void **state)
{
	struct kx_labels ls;
	struct kx_err err = {0};
	char key[16];
	(void)state;
	kx_labels_init(&ls);
	for (int i = 0; i < KX_LABELS_MAX; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		assert_int_equal(kx_labels_set(&ls, key, "v", &err), 0);
	}
	assert_int_equal(ls.n, KX_LABELS_MAX);
	assert_int_equal(kx_labels_set(&ls, "one-more", "v", &err), KX_EINVAL);
	assert_contains(err.msg, "too many labels");
	assert_int_equal(ls.n, KX_LABELS_MAX);
	/* replacing a value is still fine when full */
	assert_int_equal(kx_labels_set(&ls, "k07", "changed", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "k07"), "changed");
	kx_labels_release(&ls);
}

static void remove_and_get(void **state)
{
	static const char *const pairs[] = {"a=1", "b=2", "c=3", NULL};
	struct kx_labels ls;
	(void)state;
	kx_labels_init(&ls);
	set_pairs(&ls, pairs);
	assert_int_equal(kx_labels_remove(&ls, "b"), 0);
	assert_labels(&ls, "a=1,c=3");
	assert_null(kx_labels_get(&ls, "b"));
	assert_int_equal(kx_labels_remove(&ls, "missing"), 0);
	assert_int_equal(ls.n, 2);
	assert_int_equal(kx_labels_remove(&ls, "c"), 0);
	assert_int_equal(kx_labels_remove(&ls, "a"), 0);
	assert_int_equal(ls.n, 0);
	assert_labels(&ls, "");
	assert_null(kx_labels_get(&ls, "a"));
	/* the set stays usable after being emptied */
	assert_int_equal(kx_labels_set(&ls, "d", "4", NULL), 0);
	assert_labels(&ls, "d=4");
	kx_labels_release(&ls);
}

static void copy_is_deep(void **state)
{
	static const char *const pairs[] = {"client=acme", "env=prod", NULL};
	struct kx_labels src, dst;
	(void)state;
	kx_labels_init(&src);
	kx_labels_init(&dst);
	set_pairs(&src, pairs);
	assert_int_equal(kx_labels_copy(&dst, &src), 0);
	assert_int_equal(kx_labels_set(&src, "client", "other", NULL), 0);
	kx_labels_remove(&src, "env");
	assert_labels(&dst, "client=acme,env=prod");
	kx_labels_release(&src);
	assert_labels(&dst, "client=acme,env=prod");
	kx_labels_release(&dst);
}

/* ---- "k=v" ---- */

static void add_pair_parses(void **state)
{
	struct kx_labels ls;
	struct kx_err err = {0};
	(void)state;
	kx_labels_init(&ls);
	assert_int_equal(kx_labels_add_pair(&ls, "client=acme", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "client"), "acme");
	/* the first '=' splits: the value may hold more */
	assert_int_equal(kx_labels_add_pair(&ls, "a=b=c", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "a"), "b=c");
	assert_null(kx_labels_get(&ls, "a=b"));
	assert_int_equal(kx_labels_add_pair(&ls, "note=x y", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "note"), "x y");
	assert_int_equal(kx_labels_add_pair(&ls, "client=globex", &err), 0);
	assert_string_equal(kx_labels_get(&ls, "client"), "globex");
	assert_int_equal(ls.n, 3);
	kx_labels_release(&ls);
}

static void add_pair_refuses(void **state)
{
	struct kx_labels ls;
	struct kx_err err = {0};
	char *long_key = repeat("k", 65), *huge_key = repeat("k", 5000), *pair;
	(void)state;
	kx_labels_init(&ls);
	assert_int_equal(kx_labels_add_pair(&ls, "k=", &err), KX_EINVAL);
	assert_contains(err.msg, "empty value");
	assert_int_equal(kx_labels_add_pair(&ls, "=v", &err), KX_EINVAL);
	assert_contains(err.msg, "key is empty");
	assert_int_equal(kx_labels_add_pair(&ls, "kv", &err), KX_EINVAL);
	assert_contains(err.msg, "expected key=value");
	assert_int_equal(kx_labels_add_pair(&ls, "", &err), KX_EINVAL);
	assert_int_equal(kx_labels_add_pair(&ls, "=", &err), KX_EINVAL);
	assert_int_equal(kx_labels_add_pair(&ls, "Key=v", &err), KX_EINVAL);
	pair = malloc(strlen(long_key) + 3);
	snprintf(pair, strlen(long_key) + 3, "%s=v", long_key);
	assert_int_equal(kx_labels_add_pair(&ls, pair, &err), KX_EINVAL);
	free(pair);
	pair = malloc(strlen(huge_key) + 3);
	snprintf(pair, strlen(huge_key) + 3, "%s=v", huge_key);
	assert_int_equal(kx_labels_add_pair(&ls, pair, &err), KX_EINVAL);
	free(pair);
	/* a 64-character key is the longest allowed */
	long_key[64] = '\0';
	pair = malloc(strlen(long_key) + 3);
	snprintf(pair, strlen(long_key) + 3, "%s=v", long_key);
	assert_int_equal(kx_labels_add_pair(&ls, pair, &err), 0);
	free(pair);
	assert_int_equal(ls.n, 1);
	free(long_key);
	free(huge_key);
	kx_labels_release(&ls);
}

/* ---- match and scope ---- */

static void match_semantics(void **state)
{
	static const char *const inc[] = {"client=acme", "platform=instagram", "env=prod", NULL};
	struct kx_labels ls, sel;
	(void)state;
	kx_labels_init(&ls);
	kx_labels_init(&sel);
	set_pairs(&ls, inc);
	/* an empty selector matches everything, even an empty set */
	assert_true(kx_labels_match(&ls, &sel));
	{
		struct kx_labels empty;
		kx_labels_init(&empty);
		assert_true(kx_labels_match(&empty, &sel));
		assert_int_equal(kx_labels_add_pair(&sel, "client=acme", NULL), 0);
		assert_false(kx_labels_match(&empty, &sel));
	}
	assert_true(kx_labels_match(&ls, &sel));
	assert_int_equal(kx_labels_add_pair(&sel, "platform=instagram", NULL), 0);
	assert_true(kx_labels_match(&ls, &sel));
	/* same key, other value */
	assert_int_equal(kx_labels_add_pair(&sel, "client=globex", NULL), 0);
	assert_false(kx_labels_match(&ls, &sel));
	/* key absent from the object */
	kx_labels_release(&sel);
	assert_int_equal(kx_labels_add_pair(&sel, "region=eu", NULL), 0);
	assert_false(kx_labels_match(&ls, &sel));
	/* values compare exactly */
	kx_labels_release(&sel);
	assert_int_equal(kx_labels_add_pair(&sel, "client=Acme", NULL), 0);
	assert_false(kx_labels_match(&ls, &sel));
	kx_labels_release(&sel);
	assert_int_equal(kx_labels_add_pair(&sel, "client=acm", NULL), 0);
	assert_false(kx_labels_match(&ls, &sel));
	kx_labels_release(&sel);
	kx_labels_release(&ls);
}

static void apply_scope_adds_labels(void **state)
{
	static const char *const have[] = {"env=prod", NULL};
	static const char *const scope[] = {"client=acme", "platform=instagram", NULL};
	struct kx_labels ls, sc;
	struct kx_err err = {0};
	(void)state;
	kx_labels_init(&ls);
	kx_labels_init(&sc);
	set_pairs(&ls, have);
	set_pairs(&sc, scope);
	assert_int_equal(kx_labels_apply_scope(&ls, &sc, &err), 0);
	assert_labels(&ls, "client=acme,env=prod,platform=instagram");
	assert_true(kx_labels_match(&ls, &sc));
	/* applying again, or with the same values already there, is fine */
	assert_int_equal(kx_labels_apply_scope(&ls, &sc, &err), 0);
	assert_int_equal(ls.n, 3);
	kx_labels_release(&ls);
	kx_labels_release(&sc);
}

static void apply_scope_conflict_is_forbidden(void **state)
{
	static const char *const have[] = {"client=globex", "env=prod", NULL};
	static const char *const scope[] = {"client=acme", "zone=a", NULL};
	struct kx_labels ls, sc;
	struct kx_err err = {0};
	(void)state;
	kx_labels_init(&ls);
	kx_labels_init(&sc);
	set_pairs(&ls, have);
	set_pairs(&sc, scope);
	assert_int_equal(kx_labels_apply_scope(&ls, &sc, &err), KX_EFORBIDDEN);
	assert_int_equal(err.code, KX_EFORBIDDEN);
	assert_contains(err.msg, "'client=globex'");
	assert_contains(err.msg, "scope");
	/* nothing was added */
	assert_labels(&ls, "client=globex,env=prod");
	kx_labels_release(&ls);
	kx_labels_release(&sc);
}

static void apply_empty_scope(void **state)
{
	static const char *const have[] = {"client=globex", NULL};
	struct kx_labels ls, sc;
	(void)state;
	kx_labels_init(&ls);
	kx_labels_init(&sc);
	set_pairs(&ls, have);
	assert_int_equal(kx_labels_apply_scope(&ls, &sc, NULL), 0);
	assert_labels(&ls, "client=globex");
	kx_labels_release(&ls);
}

static void format_fails_when_buffer_is_too_small(void **state)
{
	static const char *const have[] = {"client=acme", "env=production", NULL};
	struct kx_labels ls;
	struct kx_buf b;
	(void)state;
	kx_labels_init(&ls);
	set_pairs(&ls, have);
	kx_buf_init(&b, 12);
	assert_int_equal(kx_labels_format(&ls, &b), KX_ENOMEM);
	assert_string_equal(kx_buf_str(&b), "");
	kx_buf_release(&b);
	kx_labels_release(&ls);
}

/* ---- text ---- */

static int check(const char *s, int flags)
{
	return kx_text_check(s, strlen(s), flags);
}

static void text_valid_utf8(void **state)
{
	static const char *const good[] = {
		"",
		"plain ASCII ~!@#$%^&*()",
		"caf\xc3\xa9",                  /* é */
		"\xc2\xa0",                     /* U+00A0, first after C1 */
		"\xe2\x82\xac",                 /* € */
		"\xef\xbf\xbd",                 /* U+FFFD */
		"\xed\x9f\xbf",                 /* U+D7FF, just below surrogates */
		"\xee\x80\x80",                 /* U+E000, just above */
		"\xf0\x9f\x98\x80",             /* 😀 */
		"\xf4\x8f\xbf\xbf",             /* U+10FFFF */
		"\xe0\xa0\x80",                 /* U+0800, shortest 3-byte */
		"\xf0\x90\x80\x80",             /* U+10000, shortest 4-byte */
		NULL};
	(void)state;
	for (const char *const *s = good; *s; s++)
		if (check(*s, 0))
			fail_msg("valid text refused: %s", *s);
}

static void text_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",                 /* lone continuation */
		"\xbf",
		"\xc0\xaf",             /* overlong '/' */
		"\xc1\xbf",             /* overlong */
		"\xe0\x80\xaf",         /* overlong 3-byte */
		"\xe0\x9f\xbf",         /* overlong U+07FF */
		"\xf0\x80\x80\xaf",     /* overlong 4-byte */
		"\xf0\x8f\xbf\xbf",     /* overlong U+FFFF */
		"\xed\xa0\x80",         /* U+D800 surrogate */
		"\xed\xbf\xbf",         /* U+DFFF surrogate */
		"\xf4\x90\x80\x80",     /* U+110000 */
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80", /* 5-byte form */
		"\xfe",
		"\xff",
		"\xc3",                 /* truncated */
		"\xe2\x82",
		"\xf0\x9f\x98",
		"a\xc3(b",              /* bad continuation */
		"\xe2\x28\xa1",
		"\xc2\x80",             /* U+0080 C1 */
		"\xc2\x85",             /* NEL */
		"\xc2\x9f",             /* U+009F C1 */
		NULL};
	(void)state;
	for (const char *const *s = bad; *s; s++)
		if (check(*s, KX_TEXT_MULTILINE) != -1)
			fail_msg("invalid text accepted (%zu bytes)", strlen(*s));
}

static void text_controls_and_multiline(void **state)
{
	(void)state;
	assert_int_equal(check("a\nb", 0), -1);
	assert_int_equal(check("a\rb", 0), -1);
	assert_int_equal(check("a\tb", 0), -1);
	assert_int_equal(check("a\nb", KX_TEXT_MULTILINE), 0);
	assert_int_equal(check("a\r\nb", KX_TEXT_MULTILINE), 0);
	assert_int_equal(check("a\tb", KX_TEXT_MULTILINE), 0);
	/* other controls stay refused even in multiline text */
	assert_int_equal(check("a\x01", KX_TEXT_MULTILINE), -1);
	assert_int_equal(check("\x1b[31mred", KX_TEXT_MULTILINE), -1);
	assert_int_equal(check("a\x7f", KX_TEXT_MULTILINE), -1);
	assert_int_equal(check("\x0b", KX_TEXT_MULTILINE), -1);
	assert_int_equal(check("\x0c", KX_TEXT_MULTILINE), -1);
	/* an embedded NUL counts when it is inside n */
	assert_int_equal(kx_text_check("a\0b", 3, KX_TEXT_MULTILINE), -1);
	assert_int_equal(kx_text_check("a\0b", 1, 0), 0);
	/* n bounds the check: a truncated sequence past n is not read */
	assert_int_equal(kx_text_check("ab\xe2\x82\xac", 2, 0), 0);
	assert_int_equal(kx_text_check("ab\xe2\x82\xac", 4, 0), -1);
}

static void text_chars_counts_code_points(void **state)
{
	(void)state;
	assert_int_equal(kx_text_chars("", 0), 0);
	assert_int_equal(kx_text_chars("hello", 5), 5);
	assert_int_equal(kx_text_chars("h\xc3\xa9llo", 6), 5);
	assert_int_equal(kx_text_chars("\xe2\x82\xac\xe2\x82\xac", 6), 2);
	assert_int_equal(kx_text_chars("\xf0\x9f\x98\x80!", 5), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_check),
		cmocka_unit_test(value_check),
		cmocka_unit_test(set_keeps_keys_sorted),
		cmocka_unit_test(equal_sets_print_the_same),
		cmocka_unit_test(set_replaces_value),
		cmocka_unit_test(set_refuses_invalid_and_keeps_set),
		cmocka_unit_test(set_has_a_maximum),
		cmocka_unit_test(remove_and_get),
		cmocka_unit_test(copy_is_deep),
		cmocka_unit_test(add_pair_parses),
		cmocka_unit_test(add_pair_refuses),
		cmocka_unit_test(match_semantics),
		cmocka_unit_test(apply_scope_adds_labels),
		cmocka_unit_test(apply_scope_conflict_is_forbidden),
		cmocka_unit_test(apply_empty_scope),
		cmocka_unit_test(format_fails_when_buffer_is_too_small),
		cmocka_unit_test(text_valid_utf8),
		cmocka_unit_test(text_invalid_utf8),
		cmocka_unit_test(text_controls_and_multiline),
		cmocka_unit_test(text_chars_counts_code_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
