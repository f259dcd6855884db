/* audit_seed — fills a Klaxon store with synthetic audit events for the
 * audit query benchmark (bench/bench_guard.py query).
 *
 * Events go through kx_store_audit_append (the daemon's own append: hash
 * chain, every index) in big transactions, in time order, evenly spread over
 * [end - span, end] and over ACCOUNTS accounts. Run `audit_seed --help`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit.h"
#include "lib/time.h"
#include "store/store.h"

static const char *const platforms[] = {"instagram", "x", "tiktok", "facebook", "linkedin"};
static const char *const actions[] = {"comment", "dm", "like", "publish", "follow"};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: audit_seed --db URL [--events N] [--accounts N] [--days D]\n"
		"                  [--from-ms T] [--end-ms T] [--batch N] [--seed S]\n"
		"\n"
		"Appends N synthetic audit events to the store at URL (sqlite:PATH or\n"
		"postgres://...), through kx_store_audit_append in transactions of\n"
		"--batch events, so the hash chain and every index are the daemon's.\n"
		"\n"
		"  --events N     events to append (default 10000000)\n"
		"  --accounts N   distinct accounts '@acctNNNNN', drawn uniformly (default 10000)\n"
		"  --days D       the events' times span the D days before --end-ms (default 30)\n"
		"  --from-ms T    start of the span instead (ms since the epoch); with --days\n"
		"                 only the density is kept: N events per D days over [T, end]\n"
		"  --end-ms T     end of the span, ms since the epoch (default: now)\n"
		"  --batch N      events per transaction (default 10000)\n"
		"  --seed S       random seed (default 1)\n"
		"\n"
		"Prints progress every million events and a last line\n"
		"'SEEDED events=N seconds=S rate=R first_at=MS last_at=MS'.\n");
}

static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, "audit_seed: out of memory\n");
		exit(1);
	}
	return p;
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...)
{
	va_list ap;
	char b[128];
	va_start(ap, f);
	vsnprintf(b, sizeof(b), f, ap);
	va_end(ap);
	return xstrdup(b);
}

static int parse_ll(const char *s, long long *out)
{
	char *end;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	long long events = 10000000, accounts = 10000, days = 30, batch = 10000, seed = 1;
	long long end_ms = -1, from_ms = -1;
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	struct kx_audit_event *ev;
	double t0;
	kx_ms first_at = 0, last_at = 0, now;

	for (int i = 1; i < argc; i++) {
		long long *dst = NULL;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (!strcmp(argv[i], "--db")) {
			url = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--events"))
			dst = &events;
		else if (!strcmp(argv[i], "--accounts"))
			dst = &accounts;
		else if (!strcmp(argv[i], "--days"))
			dst = &days;
		else if (!strcmp(argv[i], "--batch"))
			dst = &batch;
		else if (!strcmp(argv[i], "--seed"))
			dst = &seed;
		else if (!strcmp(argv[i], "--end-ms"))
			dst = &end_ms;
		else if (!strcmp(argv[i], "--from-ms"))
			dst = &from_ms;
		if (!dst || parse_ll(argv[++i], dst)) {
			fprintf(stderr, "audit_seed: bad option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!url || events < 1 || accounts < 1 || days < 1 || batch < 1 || batch > 1000000) {
		usage(stderr);
		return 2;
	}
	rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
	now = kx_now_ms();
	if (end_ms < 0)
		end_ms = now;
	if (from_ms < 0)
		from_ms = end_ms - days * 86400000LL;
	if (from_ms >= end_ms) {
		fprintf(stderr, "audit_seed: --from-ms is not before --end-ms\n");
		return 2;
	}
	if (kx_store_open(url, &s, &err)) {
		fprintf(stderr, "audit_seed: cannot open %s: %s\n", url, err.msg);
		return 1;
	}
	if (!(ev = calloc((size_t)batch, sizeof(*ev)))) {
		fprintf(stderr, "audit_seed: out of memory\n");
		return 1;
	}
	t0 = now_s();
	for (long long done = 0; done < events;) {
		long long n = events - done < batch ? events - done : batch;
		struct kx_tx *tx = NULL;

		for (long long i = 0; i < n; i++) {
			long long k = done + i;
			struct kx_audit_event *e = &ev[i];
			unsigned long long acct = rnd() % (unsigned long long)accounts;
			/* evenly in time, in append order, the last one at end_ms */
			kx_ms at = from_ms + (kx_ms)((double)(end_ms - from_ms) * (double)(k + 1) /
						     (double)events);
			kx_audit_event_init(e);
			e->at = at;
			e->actor = fmt("seed-bot-%llu", acct % 7);
			e->client = fmt("c%llu", acct % 100);
			e->account = fmt("@acct%05llu", acct);
			e->platform = xstrdup(platforms[acct % 5]);
			e->lane = xstrdup(k % 4 ? "api" : "browser");
			e->action = xstrdup(actions[rnd() % 5]);
			e->target = fmt("post/%llu", (unsigned long long)(rnd() % 100000000ULL));
			e->content_hash = fmt("sha256:%016llx", (unsigned long long)rnd());
			e->outcome = xstrdup(k % 50 ? "success" : "failure");
			e->idempotency_key = fmt("seed-%llu", (unsigned long long)rnd());
			if (kx_audit_event_check(e, now, &err)) {
				fprintf(stderr, "audit_seed: event %lld: %s\n", k, err.msg);
				return 1;
			}
			if (k == 0)
				first_at = at;
			last_at = at;
		}
		if (kx_store_begin(s, true, &tx, &err) ||
		    kx_store_audit_append(tx, ev, (size_t)n, &err) || kx_store_commit(tx, &err)) {
			fprintf(stderr, "audit_seed: append at event %lld: %s\n", done, err.msg);
			return 1;
		}
		for (long long i = 0; i < n; i++)
			kx_audit_event_release(&ev[i]);
		if ((done + n) / 1000000 != done / 1000000) {
			double el = now_s() - t0;
			fprintf(stderr, "audit_seed: %lld events, %.0f s, %.0f events/s\n", done + n,
				el, (double)(done + n) / el);
		}
		done += n;
	}
	{
		double el = now_s() - t0;
		free(ev);
		kx_store_free(s);
		printf("SEEDED events=%lld seconds=%.1f rate=%.0f first_at=%lld last_at=%lld\n",
		       events, el, (double)events / el, (long long)first_at, (long long)last_at);
	}
	return 0;
}
