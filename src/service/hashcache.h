/* hashcache.h — a small cache of records found by a secret's hash: API
 * tokens (service/tokens.h) and integration keys (service/ingest.h), so
 * that a request need not read the store to authenticate.
 *
 * Direct-mapped by the hash's first bytes; an entry lives for `ttl_ms` and
 * the whole cache is emptied when the store's change feed carries `topic`
 * (or "*": changes may have been missed), in this daemon or another on the
 * same PostgreSQL — which is how a revoke takes effect at once. A result
 * read from the store while the cache was emptied is not kept: get returns
 * the cache's generation and put keeps the record only if it is unchanged.
 *
 * Records are copied in and out through the caller's ops, so a caller
 * never holds a pointer into the cache. Thread-safe.
 */
#ifndef KX_SVC_HASHCACHE_H
#define KX_SVC_HASHCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/secret.h"
#include "lib/time.h"
#include "store/store.h"

struct kx_hash_cache_ops {
	size_t size; /* of a record */
	/* copy: dst is uninitialised; 0, or -1 (out of memory: dst left empty) */
	int (*copy)(void *dst, const void *src);
	void (*release)(void *rec);
	const uint8_t *(*hash)(const void *rec); /* KX_HASH_LEN bytes */
};

struct kx_hash_cache;

/* NULL when out of memory. ops and topic must outlive the cache. */
struct kx_hash_cache *kx_hash_cache_new(const struct kx_hash_cache_ops *ops, const char *topic,
					unsigned slots, kx_ms ttl_ms);
/* Subscribes to the change feed: the cache must then outlive the store. */
int kx_hash_cache_attach(struct kx_hash_cache *c, struct kx_store *store, struct kx_err *err);
void kx_hash_cache_free(struct kx_hash_cache *c);

/* 1 with a copy in out on a hit, 0 on a miss; *gen for put. c may be NULL. */
int kx_hash_cache_get(struct kx_hash_cache *c, const uint8_t hash[KX_HASH_LEN], kx_ms now,
		      void *out, uint64_t *gen);
void kx_hash_cache_put(struct kx_hash_cache *c, const void *rec, kx_ms now, uint64_t gen);

#endif
