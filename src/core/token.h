/* token.h — API credentials: roles and label scopes.
 *
 * Roles are ordered viewer < responder < admin. A token with a non-empty
 * scope sees only objects whose labels match it (kx_labels_match), and what
 * it creates carries the scope's labels.
 */
#ifndef KX_TOKEN_H
#define KX_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"

/* KX_ACCESS_AUTOMATION is only ever a requested role ("automation" in the
 * API): such a token is stored as a responder with `automation` set, and
 * never compares above or below the others. */
enum kx_access { KX_ACCESS_NONE = 0, KX_ACCESS_VIEWER = 1, KX_ACCESS_RESPONDER = 2,
		 KX_ACCESS_ADMIN = 3, KX_ACCESS_AUTOMATION = 4 };

const char *kx_access_name(enum kx_access a);
int kx_access_parse(const char *s, enum kx_access *out, struct kx_err *err);

struct kx_token {
	char id[KX_ID_LEN];
	uint8_t hash[KX_HASH_LEN];
	char *name;
	enum kx_access role;
	/* An automation credential: it may only ask the gate, append audit
	 * events, follow the switch stream and poll its own approval requests
	 * (role is then KX_ACCESS_RESPONDER, scope its tenant). */
	bool automation;
	struct kx_labels scope;
	char *created_by; /* may be NULL (the bootstrap token) */
	kx_ms created_at;
	kx_ms revoked_at; /* KX_TIME_UNSET while valid */
};

void kx_token_init(struct kx_token *t);
/* "viewer", "responder", "admin" or "automation". */
const char *kx_token_role_name(const struct kx_token *t);
void kx_token_release(struct kx_token *t);

/* May `creator` mint a token with this role and scope? A token cannot grant
 * more than it has: role at most its own, scope at least as narrow. */
int kx_token_may_create(const struct kx_token *creator, enum kx_access role,
			const struct kx_labels *scope, struct kx_err *err);

#endif
