/* ingest.h — the ingestion runtime: a queue that folds the alert batches of
 * many requests into shared write transactions, and a cache of integration
 * keys.
 *
 * Why: every ingestion endpoint answers only after its alerts are on disk.
 * With one transaction per request, a request's thread sits idle through
 * its commit and the number of commits that can share one fsync is bounded
 * by the number of threads. Instead the HTTP layer parks the request
 * (http/server.h, deferred answers), hands its decoded events to this queue
 * and goes on to the next request; a writer thread takes everything
 * queued into one write transaction; another thread waits for the last
 * commit to be durable and completes its jobs, and while that fsync runs
 * the writer keeps its transaction open and adds what arrives (it could
 * not become durable sooner anyway), committing when the fsync is done.
 * So the batch grows with the load and with the time an fsync takes, and
 * the per-request cost of a commit shrinks with it. One writer, for
 * PostgreSQL too: batches written at once there folded the same alerts
 * in different orders and deadlocked on their rows.
 *
 * A job never shares another's failure: when any job of a batch fails (or
 * the commit does), the batch is rolled back and each of its jobs is run
 * again in a transaction of its own (kx_svc_alert_ingest), so each gets its
 * own outcome and nothing is stored half-way.
 *
 * Integration keys: kx_svc_integration_auth (service/alerts.h) looks keys
 * up here first. Entries live for a minute and the whole cache is emptied
 * whenever the change feed says integrations changed (a revoke, here or in
 * another daemon on the same PostgreSQL).
 */
#ifndef KX_SVC_INGEST_H
#define KX_SVC_INGEST_H

#include "core/alert.h"
#include "service/alerts.h"
#include "service/app.h"

/* One request's events. The submitter owns every pointer and keeps it
 * valid until done() has been called. */
struct kx_ingest_job {
	const char *service;
	const char *actor;
	struct kx_alert_event *events;
	size_t n;
	kx_ms now;
	struct kx_ingest_outcome *outcomes; /* room for n */
	/* filled before done() */
	int rc;
	struct kx_err err;
	/* runs on the ingestion thread after the job's commit or failure */
	void (*done)(struct kx_ingest_job *job);
	void *arg;
	struct kx_ingest_job *next; /* the queue's */
};

struct kx_ingest_rt;

/* Starts the ingestion thread and subscribes the key cache to the change
 * feed of app->store. */
int kx_ingest_rt_start(const struct kx_app *app, struct kx_ingest_rt **out, struct kx_err *err);
/* Finishes every queued job, then stops the thread; later submits fail.
 * free: after the store is closed (the change feed may still call in). */
void kx_ingest_rt_stop(struct kx_ingest_rt *rt);
void kx_ingest_rt_free(struct kx_ingest_rt *rt);

/* Queues job; its done() is called exactly once, on the ingestion thread.
 * KX_EUNAVAIL (done not called) when rt is NULL or stopping. */
int kx_ingest_submit(struct kx_ingest_rt *rt, struct kx_ingest_job *job);

/* The key cache. get fills out (a copy) on a hit and returns 1; 0 on a
 * miss, with *gen the cache's generation, to pass to put: a result read
 * while the cache was emptied is not kept. */
int kx_ingest_key_get(struct kx_ingest_rt *rt, const uint8_t hash[KX_HASH_LEN], kx_ms now,
		      struct kx_integration *out, uint64_t *gen);
void kx_ingest_key_put(struct kx_ingest_rt *rt, const struct kx_integration *in, kx_ms now,
		       uint64_t gen);

/* A write transaction that jobs are added to while it is open (the
 * writer keeps it open while the last commit's fsync runs: it could not
 * become durable sooner anyway). add ingests jobs[0..n) into it and
 * returns non-zero once the batch failed (add nothing more then). end
 * commits or — after a failure — rolls back and runs every job added, all
 * of them passed again as jobs[0..n), in a transaction of its own; it sets
 * each job's rc and err (done() is not called) and frees b. *pending: the
 * commit, still on its way to the disk (kx_store_commit_async), or NULL
 * when nothing is left to wait for. service/alerts.c. */
struct kx_ingest_batch;
int kx_svc_ingest_batch_begin(const struct kx_app *app, kx_ms now, struct kx_ingest_batch **b,
			      struct kx_err *err);
int kx_svc_ingest_batch_add(struct kx_ingest_batch *b, struct kx_ingest_job *const *jobs,
			    size_t n);
void kx_svc_ingest_batch_end(struct kx_ingest_batch *b, struct kx_ingest_job *const *jobs,
			     size_t n, struct kx_pending **pending);

#endif
