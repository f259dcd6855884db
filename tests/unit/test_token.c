/* test_token.c — core/token: access roles and who may mint which token. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/token.h"
#include "helpers.h"

static void access_names(void **state)
{
	(void)state;
	assert_string_equal(kx_access_name(KX_ACCESS_NONE), "none");
	assert_string_equal(kx_access_name(KX_ACCESS_VIEWER), "viewer");
	assert_string_equal(kx_access_name(KX_ACCESS_RESPONDER), "responder");
	assert_string_equal(kx_access_name(KX_ACCESS_ADMIN), "admin");
	assert_string_equal(kx_access_name((enum kx_access)42), "none");
	assert_true(KX_ACCESS_VIEWER < KX_ACCESS_RESPONDER);
	assert_true(KX_ACCESS_RESPONDER < KX_ACCESS_ADMIN);
}

static void access_parse(void **state)
{
	struct kx_err err = {0};
	enum kx_access a = KX_ACCESS_NONE;
	(void)state;
	assert_int_equal(kx_access_parse("viewer", &a, &err), 0);
	assert_int_equal(a, KX_ACCESS_VIEWER);
	assert_int_equal(kx_access_parse("responder", &a, &err), 0);
	assert_int_equal(a, KX_ACCESS_RESPONDER);
	assert_int_equal(kx_access_parse("admin", &a, &err), 0);
	assert_int_equal(a, KX_ACCESS_ADMIN);
	assert_int_equal(kx_access_parse("automation", &a, &err), 0);
	assert_int_equal(a, KX_ACCESS_AUTOMATION);
	assert_int_equal(kx_access_parse("admin", &a, &err), 0);
	assert_int_equal(a, KX_ACCESS_ADMIN);
	/* "none" is not a role anyone can be given */
	assert_int_equal(kx_access_parse("none", &a, &err), KX_EINVAL);
	assert_int_equal(kx_access_parse("Admin", &a, &err), KX_EINVAL);
	assert_int_equal(kx_access_parse("", &a, &err), KX_EINVAL);
	assert_int_equal(kx_access_parse("root", &a, &err), KX_EINVAL);
	assert_contains(err.msg, "unknown role 'root'");
}

static void token_init_release(void **state)
{
	struct kx_token t;
	(void)state;
	kx_token_init(&t);
	assert_true(t.revoked_at == KX_TIME_UNSET);
	assert_null(t.name);
	assert_int_equal(t.scope.n, 0);
	t.name = strdup("x");
	t.created_by = strdup("y");
	assert_int_equal(kx_labels_add_pair(&t.scope, "client=acme", NULL), 0);
	kx_token_release(&t);
	assert_null(t.name);
	assert_int_equal(t.scope.n, 0);
	assert_true(t.revoked_at == KX_TIME_UNSET);
}

static void creator(struct kx_token *t, enum kx_access role, const char *scope_pair)
{
	kx_token_init(t);
	t->name = strdup("creator");
	t->role = role;
	if (scope_pair)
		assert_int_equal(kx_labels_add_pair(&t->scope, scope_pair, NULL), 0);
}

static void only_admins_create_tokens(void **state)
{
	struct kx_token c;
	struct kx_labels scope;
	struct kx_err err = {0};
	(void)state;
	kx_labels_init(&scope);
	for (int r = KX_ACCESS_NONE; r < KX_ACCESS_ADMIN; r++) {
		creator(&c, (enum kx_access)r, NULL);
		assert_int_equal(kx_token_may_create(&c, KX_ACCESS_VIEWER, &scope, &err),
				 KX_EFORBIDDEN);
		assert_contains(err.msg, "admin role");
		kx_token_release(&c);
	}
}

static void unscoped_admin_may_create_anything(void **state)
{
	struct kx_token c;
	struct kx_labels scope;
	struct kx_err err = {0};
	(void)state;
	creator(&c, KX_ACCESS_ADMIN, NULL);
	kx_labels_init(&scope);
	for (int r = KX_ACCESS_VIEWER; r <= KX_ACCESS_ADMIN; r++)
		assert_int_equal(kx_token_may_create(&c, (enum kx_access)r, &scope, &err), 0);
	assert_int_equal(kx_labels_add_pair(&scope, "client=acme", NULL), 0);
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_RESPONDER, &scope, &err), 0);
	kx_labels_release(&scope);
	kx_token_release(&c);
}

static void role_cannot_exceed_creator(void **state)
{
	struct kx_token c;
	struct kx_labels scope;
	struct kx_err err = {0};
	(void)state;
	creator(&c, KX_ACCESS_ADMIN, NULL);
	kx_labels_init(&scope);
	/* an admin is the top; anything above it is refused */
	assert_int_equal(kx_token_may_create(&c, (enum kx_access)(KX_ACCESS_AUTOMATION + 1), &scope,
					     &err),
			 KX_EFORBIDDEN);
	assert_contains(err.msg, "above your own");
	/* an automation token is a responder underneath: an admin may mint one */
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_AUTOMATION, &scope, &err), 0);
	/* and an automation token mints nothing, whatever its role */
	c.automation = true;
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_VIEWER, &scope, &err), KX_EFORBIDDEN);
	assert_contains(err.msg, "automation token cannot create");
	kx_token_release(&c);
}

static void scope_must_be_at_least_as_narrow(void **state)
{
	struct kx_token c;
	struct kx_labels scope;
	struct kx_err err = {0};
	(void)state;
	creator(&c, KX_ACCESS_ADMIN, "client=acme");
	kx_labels_init(&scope);
	/* no scope would be wider than the creator's */
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_VIEWER, &scope, &err), KX_EFORBIDDEN);
	assert_contains(err.msg, "scope");
	/* the same scope is fine */
	assert_int_equal(kx_labels_add_pair(&scope, "client=acme", NULL), 0);
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_ADMIN, &scope, &err), 0);
	/* narrower is fine */
	assert_int_equal(kx_labels_add_pair(&scope, "env=prod", NULL), 0);
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_RESPONDER, &scope, &err), 0);
	kx_labels_release(&scope);
	/* a different value is not inside the scope */
	assert_int_equal(kx_labels_add_pair(&scope, "client=globex", NULL), 0);
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_VIEWER, &scope, &err), KX_EFORBIDDEN);
	kx_labels_release(&scope);
	/* an unrelated label alone is wider */
	assert_int_equal(kx_labels_add_pair(&scope, "env=prod", NULL), 0);
	assert_int_equal(kx_token_may_create(&c, KX_ACCESS_VIEWER, &scope, &err), KX_EFORBIDDEN);
	kx_labels_release(&scope);
	kx_token_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(access_names),
		cmocka_unit_test(access_parse),
		cmocka_unit_test(token_init_release),
		cmocka_unit_test(only_admins_create_tokens),
		cmocka_unit_test(unscoped_admin_may_create_anything),
		cmocka_unit_test(role_cannot_exceed_creator),
		cmocka_unit_test(scope_must_be_at_least_as_narrow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
