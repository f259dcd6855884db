#include "core/token.h"
#include "core/incident.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"none", "viewer", "responder", "admin", "automation"};

const char *kx_access_name(enum kx_access a)
{
	return (unsigned)a < 5 ? names[a] : "none";
}

const char *kx_token_role_name(const struct kx_token *t)
{
	return t->automation ? "automation" : kx_access_name(t->role);
}

int kx_access_parse(const char *s, enum kx_access *out, struct kx_err *err)
{
	for (int i = 1; i < 5; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum kx_access)i;
			return 0;
		}
	}
	return kx_err_set(err, KX_EINVAL, "unknown role '%.64s': use viewer, responder, admin or automation", s);
}

void kx_token_init(struct kx_token *t)
{
	memset(t, 0, sizeof(*t));
	kx_labels_init(&t->scope);
	t->revoked_at = KX_TIME_UNSET;
}

void kx_token_release(struct kx_token *t)
{
	free(t->name);
	free(t->created_by);
	kx_labels_release(&t->scope);
	kx_token_init(t);
}

int kx_token_may_create(const struct kx_token *creator, enum kx_access role,
			const struct kx_labels *scope, struct kx_err *err)
{
	if (creator->role < KX_ACCESS_ADMIN)
		return kx_err_set(err, KX_EFORBIDDEN, "creating tokens needs the admin role");
	if (creator->automation)
		return kx_err_set(err, KX_EFORBIDDEN, "an automation token cannot create tokens");
	if ((role == KX_ACCESS_AUTOMATION ? KX_ACCESS_RESPONDER : role) > creator->role)
		return kx_err_set(err, KX_EFORBIDDEN, "cannot grant role '%s' above your own",
				  kx_access_name(role));
	if (!kx_labels_match(scope, &creator->scope))
		return kx_err_set(err, KX_EFORBIDDEN,
				  "the new token's scope must include this token's scope");
	return 0;
}
