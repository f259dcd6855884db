/* tokens.h — API tokens: authentication, bootstrap, create, list, revoke.
 *
 * Secrets leave the daemon exactly once, when the token is created; the
 * store keeps only their hash. A scoped admin sees and manages only tokens
 * whose scope includes its own.
 */
#ifndef KX_SVC_TOKENS_H
#define KX_SVC_TOKENS_H

#include "core/token.h"
#include "service/app.h"
#include "service/hashcache.h"

/* The authentication cache (service/hashcache.h): tokens already looked
 * up, by hash, so a request does not read the store to authenticate. Any
 * token change anywhere (the change feed's topic "tokens") empties it;
 * entries also expire after a minute. Created by the daemon, which calls
 * kx_hash_cache_attach() once the store is open. */
struct kx_hash_cache *kx_token_cache_new(void);

/* Resolves a bearer secret to its token. KX_EAUTH for an unknown or revoked
 * one. */
int kx_svc_authenticate(const struct kx_app *app, const char *secret, struct kx_token *out,
			struct kx_err *err);

/* Is the token with this hash still valid (present, not revoked)? 0 or
 * KX_EAUTH; another code when the store cannot say. For long-lived
 * requests (the switch stream) that authenticated once. */
int kx_svc_token_valid(const struct kx_app *app, const uint8_t hash[KX_HASH_LEN],
		       struct kx_err *err);

/* When the store has no token at all, creates the admin token, hands the
 * secret to persist() (which must store it, e.g. write admin.token) and
 * commits only if persist() returned 0. *created says whether it did. */
int kx_svc_token_bootstrap(const struct kx_app *app, kx_ms now,
			   int (*persist)(const char *secret, void *arg), void *arg,
			   bool *created, struct kx_err *err);

/* Creates a token; secret receives it (KX_TOKEN_LEN + 1 bytes). */
int kx_svc_token_create(const struct kx_app *app, const struct kx_token *who,
			enum kx_access role, const char *name, const struct kx_labels *scope,
			kx_ms now, struct kx_token *out, char *secret, struct kx_err *err);
int kx_svc_token_list(const struct kx_app *app, const struct kx_token *who,
		      struct kx_tokens *out, struct kx_err *err);
int kx_svc_token_revoke(const struct kx_app *app, const struct kx_token *who, const char *id,
			kx_ms now, struct kx_token *out, struct kx_err *err);

#endif
