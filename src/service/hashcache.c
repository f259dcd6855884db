#include "service/hashcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Invariant: a slot's record is initialised iff used[slot]; `generation`
 * grows on every emptying. */
struct kx_hash_cache {
	const struct kx_hash_cache_ops *ops;
	const char *topic;
	unsigned nslots;
	kx_ms ttl;
	pthread_mutex_t lock;
	uint64_t generation;
	bool *used;
	kx_ms *expires;
	unsigned char *recs; /* nslots records of ops->size */
};

static void *rec_at(struct kx_hash_cache *c, unsigned i)
{
	return c->recs + (size_t)i * c->ops->size;
}

static unsigned slot_of(const struct kx_hash_cache *c, const uint8_t hash[KX_HASH_LEN])
{
	return (hash[0] | (unsigned)hash[1] << 8) % c->nslots;
}

static void clear_locked(struct kx_hash_cache *c)
{
	c->generation++;
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->used[i]) {
			c->ops->release(rec_at(c, i));
			c->used[i] = false;
		}
}

struct kx_hash_cache *kx_hash_cache_new(const struct kx_hash_cache_ops *ops, const char *topic,
					unsigned slots, kx_ms ttl_ms)
{
	struct kx_hash_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ops = ops;
	c->topic = topic;
	c->nslots = slots ? slots : 1;
	c->ttl = ttl_ms;
	c->used = calloc(c->nslots, sizeof(*c->used));
	c->expires = calloc(c->nslots, sizeof(*c->expires));
	c->recs = calloc(c->nslots, ops->size);
	if (!c->used || !c->expires || !c->recs) {
		free(c->used);
		free(c->expires);
		free(c->recs);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void kx_hash_cache_free(struct kx_hash_cache *c)
{
	if (!c)
		return;
	clear_locked(c);
	pthread_mutex_destroy(&c->lock);
	free(c->used);
	free(c->expires);
	free(c->recs);
	free(c);
}

static void on_change(const char *topic, const char *payload, void *arg)
{
	struct kx_hash_cache *c = arg;
	(void)payload;
	if (strcmp(topic, c->topic) != 0 && strcmp(topic, "*") != 0)
		return;
	pthread_mutex_lock(&c->lock);
	clear_locked(c);
	pthread_mutex_unlock(&c->lock);
}

int kx_hash_cache_attach(struct kx_hash_cache *c, struct kx_store *store, struct kx_err *err)
{
	return kx_store_subscribe(store, on_change, c, err);
}

int kx_hash_cache_get(struct kx_hash_cache *c, const uint8_t hash[KX_HASH_LEN], kx_ms now,
		      void *out, uint64_t *gen)
{
	unsigned i;
	int hit = 0;

	*gen = 0;
	if (!c)
		return 0;
	i = slot_of(c, hash);
	pthread_mutex_lock(&c->lock);
	*gen = c->generation;
	if (c->used[i] && c->expires[i] > now &&
	    !memcmp(c->ops->hash(rec_at(c, i)), hash, KX_HASH_LEN))
		hit = c->ops->copy(out, rec_at(c, i)) == 0;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void kx_hash_cache_put(struct kx_hash_cache *c, const void *rec, kx_ms now, uint64_t gen)
{
	unsigned char *copy;
	unsigned i;

	if (!c || !(copy = malloc(c->ops->size)))
		return;
	if (c->ops->copy(copy, rec)) {
		free(copy);
		return;
	}
	i = slot_of(c, c->ops->hash(rec));
	pthread_mutex_lock(&c->lock);
	if (c->generation == gen) {
		if (c->used[i])
			c->ops->release(rec_at(c, i));
		memcpy(rec_at(c, i), copy, c->ops->size);
		c->used[i] = true;
		c->expires[i] = now + c->ttl;
		free(copy);
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (copy) {
		c->ops->release(copy);
		free(copy);
	}
}
