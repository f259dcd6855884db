#include "service/tokens.h"
#include "core/incident.h"
#include "service/audit.h"
#include "lib/secret.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 256
#define CACHE_TTL_MS 60000

static int token_copy(void *dst, const void *src)
{
	struct kx_token *d = dst;
	const struct kx_token *t = src;
	*d = *t;
	d->name = strdup(t->name);
	d->created_by = t->created_by ? strdup(t->created_by) : NULL;
	kx_labels_init(&d->scope);
	if (!d->name || (t->created_by && !d->created_by) || kx_labels_copy(&d->scope, &t->scope)) {
		kx_token_release(d);
		kx_token_init(d);
		return -1;
	}
	return 0;
}

static void token_release(void *rec)
{
	kx_token_release(rec);
}

static const uint8_t *token_hash(const void *rec)
{
	return ((const struct kx_token *)rec)->hash;
}

static const struct kx_hash_cache_ops token_ops = {sizeof(struct kx_token), token_copy,
						   token_release, token_hash};

struct kx_hash_cache *kx_token_cache_new(void)
{
	return kx_hash_cache_new(&token_ops, "tokens", CACHE_SLOTS, CACHE_TTL_MS);
}

int kx_svc_token_valid(const struct kx_app *app, const uint8_t hash[KX_HASH_LEN],
		       struct kx_err *err)
{
	struct kx_token tok;
	struct kx_tx *tx;
	int rc;
	kx_token_init(&tok);
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_token_by_hash(tx, hash, &tok, err);
	kx_store_rollback(tx);
	if (rc == KX_ENOTFOUND || (!rc && tok.revoked_at != KX_TIME_UNSET))
		rc = kx_err_set(err, KX_EAUTH, "token has been revoked");
	kx_token_release(&tok);
	return rc;
}

int kx_svc_authenticate(const struct kx_app *app, const char *secret, struct kx_token *out,
			struct kx_err *err)
{
	uint8_t hash[KX_HASH_LEN];
	struct kx_tx *tx;
	uint64_t gen = 0;
	kx_ms now = kx_now_ms();
	int rc;

	if (strlen(secret) != KX_TOKEN_LEN || strncmp(secret, "kx_", 3) != 0)
		return kx_err_set(err, KX_EAUTH, "invalid token");
	kx_hash(secret, KX_TOKEN_LEN, hash);
	if (kx_hash_cache_get(app->tokens, hash, now, out, &gen))
		return 0;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_token_by_hash(tx, hash, out, err);
	kx_store_rollback(tx);
	if (rc == KX_ENOTFOUND)
		return kx_err_set(err, KX_EAUTH, "invalid token");
	if (rc)
		return rc;
	if (out->revoked_at != KX_TIME_UNSET) {
		kx_token_release(out);
		return kx_err_set(err, KX_EAUTH, "token has been revoked");
	}
	kx_hash_cache_put(app->tokens, out, now, gen);
	return 0;
}

static int insert(struct kx_tx *tx, enum kx_access role, const char *name,
		  const struct kx_labels *scope, const char *creator, kx_ms now,
		  struct kx_token *tok, char *secret, struct kx_err *err)
{
	kx_token_init(tok);
	kx_token_generate(secret);
	kx_hash(secret, KX_TOKEN_LEN, tok->hash);
	kx_random_id("tok_", tok->id, sizeof(tok->id));
	tok->role = role == KX_ACCESS_AUTOMATION ? KX_ACCESS_RESPONDER : role;
	tok->automation = role == KX_ACCESS_AUTOMATION;
	tok->created_at = now;
	if (!(tok->name = strdup(name)) || (creator && !(tok->created_by = strdup(creator))) ||
	    (scope && kx_labels_copy(&tok->scope, scope)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	return kx_store_token_insert(tx, tok, err);
}

int kx_svc_token_bootstrap(const struct kx_app *app, kx_ms now,
			   int (*persist)(const char *secret, void *arg), void *arg,
			   bool *created, struct kx_err *err)
{
	struct kx_tx *tx;
	struct kx_token tok;
	char secret[KX_TOKEN_LEN + 1];
	int64_t n;
	int rc;

	*created = false;
	kx_token_init(&tok);
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_token_count(tx, &n, err)) || n > 0)
		goto out;
	if ((rc = insert(tx, KX_ACCESS_ADMIN, "admin", NULL, NULL, now, &tok, secret, err)))
		goto out;
	if ((rc = persist(secret, arg))) {
		kx_err_set(err, rc, "cannot save the admin token");
		goto out;
	}
	rc = kx_store_commit(tx, err);
	tx = NULL;
	*created = rc == 0;
out:
	kx_store_rollback(tx);
	kx_token_release(&tok);
	memset(secret, 0, sizeof(secret));
	return rc;
}

int kx_svc_token_create(const struct kx_app *app, const struct kx_token *who,
			enum kx_access role, const char *name, const struct kx_labels *scope,
			kx_ms now, struct kx_token *out, char *secret, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	if (!name)
		return kx_err_set(err, KX_EINVAL, "'name' is required");
	if ((rc = kx_check_name("name", name, err)) ||
	    (rc = kx_token_may_create(who, role, scope, err)))
		return rc;
	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = insert(tx, role, name, scope, who->name, now, out, secret, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "token.create", out->id, &out->scope, now,
				      err))) {
		kx_store_rollback(tx);
		kx_token_release(out);
		return rc;
	}
	if ((rc = kx_store_commit(tx, err)))
		kx_token_release(out);
	return rc;
}

int kx_svc_token_list(const struct kx_app *app, const struct kx_token *who,
		      struct kx_tokens *out, struct kx_err *err)
{
	struct kx_tx *tx;
	size_t keep = 0;
	int rc;

	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_token_list(tx, out, err);
	kx_store_rollback(tx);
	if (rc)
		return rc;
	for (size_t i = 0; i < out->n; i++) {
		if (kx_labels_match(&out->v[i].scope, &who->scope))
			out->v[keep++] = out->v[i];
		else
			kx_token_release(&out->v[i]);
	}
	out->n = keep;
	return 0;
}

int kx_svc_token_revoke(const struct kx_app *app, const struct kx_token *who, const char *id,
			kx_ms now, struct kx_token *out, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	if ((rc = kx_store_begin(app->store, true, &tx, err)))
		return rc;
	if ((rc = kx_store_token_get(tx, id, out, err)))
		goto fail;
	if (!kx_labels_match(&out->scope, &who->scope)) {
		kx_token_release(out);
		rc = kx_err_set(err, KX_ENOTFOUND, "token '%.64s' not found", id);
		goto fail;
	}
	if ((rc = kx_store_token_revoke(tx, id, now, err)) ||
	    (rc = kx_store_notify(tx, "tokens", id, err)) ||
	    (rc = kx_svc_audit_record(app, tx, who, "token.revoke", id, &out->scope, now, err))) {
		kx_token_release(out);
		goto fail;
	}
	out->revoked_at = now;
	if ((rc = kx_store_commit(tx, err)))
		kx_token_release(out);
	return rc;
fail:
	kx_store_rollback(tx);
	return rc;
}
