#include "service/ingest.h"
#include "service/hashcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A batch ends at this many jobs or events (but holds at least one job):
 * a longer transaction would only delay its first job's answer, and every
 * other writer (a person changing an incident) waits for it. */
#define BATCH_JOBS 512
#define BATCH_EVENTS 5000

#define KEY_SLOTS 64
#define KEY_TTL_MS 60000

/* A committed batch waiting for its commit to be durable: its jobs,
 * chained through next. */
struct completion {
	struct kx_ingest_job *jobs;
	struct kx_pending *pending;
	struct completion *next;
};

/* Invariants: queued jobs form the list head..tail (tail NULL iff empty),
 * completions chead..ctail likewise. */
struct kx_ingest_rt {
	const struct kx_app *app;
	pthread_t writer, completer;
	bool writer_started, completer_started;
	bool writer_running;	/* started and not yet ended */

	pthread_mutex_t lock;
	pthread_cond_t wake;	/* jobs queued, or stopping */
	pthread_cond_t cwake;	/* completions queued, or the writer ended */
	struct kx_ingest_job *head, *tail;
	struct completion *chead, *ctail;
	int syncing;		/* completions handed over, not yet durable */
	bool stopping;

	struct kx_hash_cache *keys; /* integration keys (service/hashcache.h) */
};

/* A copy of the fields authentication uses (id, service, source). */
static int key_copy(void *dst, const void *src)
{
	struct kx_integration *d = dst;
	const struct kx_integration *in = src;
	kx_integration_init(d);
	memcpy(d->id, in->id, sizeof(d->id));
	memcpy(d->hash, in->hash, sizeof(d->hash));
	d->source = in->source;
	d->created_at = in->created_at;
	d->revoked_at = in->revoked_at;
	if (!(d->service = strdup(in->service))) {
		kx_integration_init(d);
		return -1;
	}
	return 0;
}

static void key_release(void *rec)
{
	kx_integration_release(rec);
}

static const uint8_t *key_hash(const void *rec)
{
	return ((const struct kx_integration *)rec)->hash;
}

static const struct kx_hash_cache_ops key_ops = {sizeof(struct kx_integration), key_copy,
						 key_release, key_hash};

int kx_ingest_key_get(struct kx_ingest_rt *rt, const uint8_t hash[KX_HASH_LEN], kx_ms now,
		      struct kx_integration *out, uint64_t *gen)
{
	return kx_hash_cache_get(rt ? rt->keys : NULL, hash, now, out, gen);
}

void kx_ingest_key_put(struct kx_ingest_rt *rt, const struct kx_integration *in, kx_ms now,
		       uint64_t gen)
{
	if (rt && in->revoked_at == KX_TIME_UNSET)
		kx_hash_cache_put(rt->keys, in, now, gen);
}

/* ---- the queue -------------------------------------------------------------- */

/* Completes a batch: waits for its commit, then answers every job. With
 * rt, the batch was counted in rt->syncing. */
static void complete(struct kx_ingest_rt *rt, struct kx_ingest_job *jobs,
		     struct kx_pending *pending)
{
	struct kx_err err = {0};
	int rc = kx_store_pending_wait(pending, &err);

	if (rt) { /* the writer may commit what it holds */
		pthread_mutex_lock(&rt->lock);
		rt->syncing--;
		pthread_cond_broadcast(&rt->wake);
		pthread_mutex_unlock(&rt->lock);
	}

	while (jobs) {
		struct kx_ingest_job *j = jobs;
		jobs = j->next;
		if (rc && !j->rc) {
			j->rc = rc;
			j->err = err;
		}
		j->done(j); /* done() may free the job */
	}
}

/* Moves queued jobs into batch[*n…] within the batch limits; with
 * rt->lock held. */
static void take(struct kx_ingest_rt *rt, struct kx_ingest_job **batch, size_t *n, size_t *events)
{
	while (rt->head && *n < BATCH_JOBS && (*n == 0 || *events + rt->head->n <= BATCH_EVENTS)) {
		struct kx_ingest_job *j = rt->head;
		if (!(rt->head = j->next))
			rt->tail = NULL;
		*events += j->n;
		batch[(*n)++] = j;
	}
}

/* The writer: takes what is queued into one transaction and, while the
 * last commit is still being synced (it could not become durable sooner
 * anyway), keeps the transaction open and adds what arrives; then commits
 * and hands the batch to the completer. The batch thus grows with the
 * time an fsync takes, and one fsync covers it all. */
static void *ingest_main(void *arg)
{
	struct kx_ingest_rt *rt = arg;
	struct kx_ingest_job *batch[BATCH_JOBS];

	pthread_mutex_lock(&rt->lock);
	for (;;) {
		struct kx_pending *pending = NULL;
		struct kx_ingest_batch *b = NULL;
		struct kx_err err = {0};
		struct completion *c;
		size_t n = 0, events = 0;
		bool failed;
		int rc;

		while (!rt->head && !rt->stopping)
			pthread_cond_wait(&rt->wake, &rt->lock);
		if (!rt->head)
			break; /* stopping, and nothing is left */
		take(rt, batch, &n, &events);
		pthread_mutex_unlock(&rt->lock);
		if ((rc = kx_svc_ingest_batch_begin(rt->app, batch[0]->now, &b, &err))) {
			for (size_t i = 0; i < n; i++) {
				batch[i]->rc = rc;
				batch[i]->err = err;
			}
		} else {
			failed = kx_svc_ingest_batch_add(b, batch, n) != 0;
			pthread_mutex_lock(&rt->lock);
			while (!failed && !rt->stopping && rt->syncing > 0 && n < BATCH_JOBS &&
			       events < BATCH_EVENTS) {
				size_t k = n;
				if (!rt->head) {
					pthread_cond_wait(&rt->wake, &rt->lock);
					continue;
				}
				take(rt, batch, &n, &events);
				if (n == k)
					break; /* the next job does not fit */
				pthread_mutex_unlock(&rt->lock);
				failed = kx_svc_ingest_batch_add(b, batch + k, n - k) != 0;
				pthread_mutex_lock(&rt->lock);
			}
			pthread_mutex_unlock(&rt->lock);
			kx_svc_ingest_batch_end(b, batch, n, &pending);
		}
		for (size_t i = 0; i < n; i++)
			batch[i]->next = i + 1 < n ? batch[i + 1] : NULL;
		if (!(c = malloc(sizeof(*c)))) {
			complete(NULL, batch[0], pending); /* no memory: here, waiting */
			pthread_mutex_lock(&rt->lock);
			continue;
		}
		c->jobs = batch[0];
		c->pending = pending;
		c->next = NULL;
		pthread_mutex_lock(&rt->lock);
		if (rt->ctail)
			rt->ctail->next = c;
		else
			rt->chead = c;
		rt->ctail = c;
		rt->syncing++;
		pthread_cond_signal(&rt->cwake);
	}
	rt->writer_running = false;
	pthread_cond_signal(&rt->cwake);
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

/* The completer: batches in commit order. */
static void *complete_main(void *arg)
{
	struct kx_ingest_rt *rt = arg;

	pthread_mutex_lock(&rt->lock);
	for (;;) {
		struct completion *c;
		while (!rt->chead && rt->writer_running)
			pthread_cond_wait(&rt->cwake, &rt->lock);
		if (!(c = rt->chead))
			break;
		if (!(rt->chead = c->next))
			rt->ctail = NULL;
		pthread_mutex_unlock(&rt->lock);
		complete(rt, c->jobs, c->pending);
		free(c);
		pthread_mutex_lock(&rt->lock);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

int kx_ingest_submit(struct kx_ingest_rt *rt, struct kx_ingest_job *job)
{
	if (!rt)
		return KX_EUNAVAIL;
	job->next = NULL;
	job->rc = 0;
	memset(&job->err, 0, sizeof(job->err));
	pthread_mutex_lock(&rt->lock);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->lock);
		return KX_EUNAVAIL;
	}
	if (rt->tail)
		rt->tail->next = job;
	else
		rt->head = job;
	rt->tail = job;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

int kx_ingest_rt_start(const struct kx_app *app, struct kx_ingest_rt **out, struct kx_err *err)
{
	struct kx_ingest_rt *rt = calloc(1, sizeof(*rt));
	int rc;

	*out = NULL;
	if (!rt)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	rt->app = app;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->wake, NULL);
	pthread_cond_init(&rt->cwake, NULL);
	if (!(rt->keys = kx_hash_cache_new(&key_ops, "integrations", KEY_SLOTS, KEY_TTL_MS))) {
		kx_ingest_rt_free(rt);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	if ((rc = kx_hash_cache_attach(rt->keys, app->store, err))) {
		kx_ingest_rt_free(rt);
		return rc;
	}
	*out = rt; /* subscribed: rt must outlive the store; the caller frees it */
	rt->writer_running = true; /* until it ends, the completer waits */
	rt->completer_started = !pthread_create(&rt->completer, NULL, complete_main, rt);
	rt->writer_started =
		rt->completer_started && !pthread_create(&rt->writer, NULL, ingest_main, rt);
	if (!rt->writer_started) {
		pthread_mutex_lock(&rt->lock);
		rt->writer_running = false;
		rt->stopping = true;
		pthread_cond_signal(&rt->cwake);
		pthread_mutex_unlock(&rt->lock);
		return kx_err_set(err, KX_EIO, "cannot start the ingestion threads");
	}
	return 0;
}

void kx_ingest_rt_stop(struct kx_ingest_rt *rt)
{
	if (!rt)
		return;
	pthread_mutex_lock(&rt->lock);
	rt->stopping = true;
	pthread_cond_broadcast(&rt->wake);
	pthread_cond_broadcast(&rt->cwake);
	pthread_mutex_unlock(&rt->lock);
	if (rt->writer_started)
		pthread_join(rt->writer, NULL);
	if (rt->completer_started)
		pthread_join(rt->completer, NULL);
	rt->writer_started = rt->completer_started = false;
}

void kx_ingest_rt_free(struct kx_ingest_rt *rt)
{
	if (!rt)
		return;
	kx_ingest_rt_stop(rt);
	kx_hash_cache_free(rt->keys);
	pthread_mutex_destroy(&rt->lock);
	pthread_cond_destroy(&rt->wake);
	pthread_cond_destroy(&rt->cwake);
	free(rt);
}
