/* loadgen — a small open-loop HTTP/1.1 load generator for the gate
 * benchmark (bench/bench_guard.py gate): N keep-alive connections on epoll,
 * requests sent on a fixed schedule (--rate), latency measured from each
 * request's *scheduled* send time, so a slow answer that delays the next
 * requests is counted against them too (no coordinated omission). With
 * --rate 0 it is closed-loop (each connection sends as soon as it has its
 * answer) and latency is measured from the actual send. Run `loadgen --help`.
 *
 * Only what the benchmark needs: POST or GET, answers with Content-Length
 * (no chunked encoding), no pipelining, IPv4.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define INBUF 65536

static const char *host = "127.0.0.1";
static int port = 0;
static const char *method = "POST";
static const char *path_tmpl = "/";
static const char *body_tmpl = NULL;
static const char *headers[MAX_HEADERS];
static int nheaders = 0;
static int nconns = 16;
static int nthreads = 1;
static double rate = 0;      /* requests/s in total; 0: closed loop */
static double duration = 10; /* seconds, measured part */
static double warmup = 1;    /* seconds before it, not recorded */
static long long mod = 1000;
static const char *match = NULL;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --port PORT [--host 127.0.0.1] [--method POST] [--path PATH]\n"
		"               [--body TEMPLATE] [--header 'K: V']... [--connections N]\n"
		"               [--threads T] [--rate R] [--duration S] [--warmup S]\n"
		"               [--mod M] [--match TEXT]\n"
		"\n"
		"Open-loop HTTP/1.1 load on keep-alive connections. With --rate R (requests/s,\n"
		"all threads together) request k is due at start + k/R and its latency runs\n"
		"from that time to the end of its answer, also when every connection was busy\n"
		"and it had to wait (so a stall is charged to every request it delays).\n"
		"--rate 0 is closed loop: latency from the actual send.\n"
		"\n"
		"In PATH and TEMPLATE, {n} becomes the request's number (unique in the run)\n"
		"and {m} that number modulo M (--mod, default 1000).\n"
		"\n"
		"  --connections N  keep-alive connections in total (default 16)\n"
		"  --threads T      threads, each with its share of connections and rate (default 1)\n"
		"  --duration S     measured seconds (default 10), after --warmup S (default 1)\n"
		"  --match TEXT     also count answers whose body contains TEXT\n"
		"\n"
		"Prints one line: RESULT target_rps= rps= requests= errors= non2xx= matched=\n"
		"unsent= p50_us= p90_us= p99_us= p999_us= max_us=  (unsent: requests that fell\n"
		"due but could not be sent before the end; they count in the percentiles with\n"
		"the time they waited).\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct lat {
	uint64_t *v;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 65536;
		uint64_t *p = realloc(l->v, c * sizeof(*p));
		if (!p) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(1);
		}
		l->v = p;
		l->cap = c;
	}
	l->v[l->n++] = ns;
}

struct conn {
	int fd;
	int busy;
	uint64_t sched; /* when the request in flight was due */
	uint64_t reqno;
	char *out;
	size_t outlen, outoff, outcap;
	char in[INBUF];
	size_t inlen;
};

struct worker {
	int id;
	pthread_t th;
	int nc;
	struct conn *c;
	double rate;
	uint64_t t0, t_measure, t_end;
	struct lat lat;
	unsigned long long requests, errors, non2xx, matched, unsent, reconnects;
};

static uint64_t start_ns; /* shared start, so that threads share the schedule origin */

static int connect_one(struct conn *c)
{
	struct sockaddr_in sa;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad host '%s' (an IPv4 address)\n", host);
		exit(2);
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	c->busy = 0;
	c->inlen = 0;
	return 0;
}

/* Appends template t with {n} and {m} replaced to the connection's out. */
static void out_add(struct conn *c, const char *s, size_t n)
{
	if (c->outlen + n + 1 > c->outcap) {
		size_t cap = (c->outlen + n + 1) * 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(1);
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static size_t expand(char *dst, size_t cap, const char *t, unsigned long long n)
{
	size_t len = 0;
	while (*t && len + 32 < cap) {
		if (t[0] == '{' && (t[1] == 'n' || t[1] == 'm') && t[2] == '}') {
			len += (size_t)snprintf(dst + len, cap - len, "%llu",
						t[1] == 'n' ? n : n % (unsigned long long)mod);
			t += 3;
		} else {
			dst[len++] = *t++;
		}
	}
	dst[len] = 0;
	return len;
}

static void build_request(struct conn *c, unsigned long long n)
{
	char path[2048], body[16384], line[256];
	size_t pl = expand(path, sizeof(path), path_tmpl, n);
	size_t bl = body_tmpl ? expand(body, sizeof(body), body_tmpl, n) : 0;
	int ll;

	c->outlen = c->outoff = 0;
	out_add(c, method, strlen(method));
	out_add(c, " ", 1);
	out_add(c, path, pl);
	ll = snprintf(line, sizeof(line), " HTTP/1.1\r\nHost: %s:%d\r\n", host, port);
	out_add(c, line, (size_t)ll);
	for (int i = 0; i < nheaders; i++) {
		out_add(c, headers[i], strlen(headers[i]));
		out_add(c, "\r\n", 2);
	}
	if (body_tmpl) {
		ll = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", bl);
		out_add(c, line, (size_t)ll);
	}
	out_add(c, "\r\n", 2);
	if (bl)
		out_add(c, body, bl);
}

static int flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->outoff += (size_t)w;
	}
	return 0;
}

static void reset_conn(struct worker *w, int epfd, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	w->reconnects++;
	if (connect_one(c) == 0)
		epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static int send_on(struct worker *w, int epfd, struct conn *c, uint64_t sched,
		   unsigned long long n)
{
	build_request(c, n);
	c->busy = 1;
	c->sched = sched;
	c->reqno = n;
	if (flush_out(c)) {
		w->errors++;
		c->busy = 0;
		reset_conn(w, epfd, c);
		return -1;
	}
	if (c->outoff < c->outlen) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return 0;
}

/* Is a whole answer in c->in? Returns its length, 0 if not yet, -1 if it
 * cannot be parsed; *status set. */
static long answer_len(struct conn *c, int *status, size_t *body_off)
{
	char *end, *p;
	size_t hl;
	long cl = -1;

	c->in[c->inlen < INBUF ? c->inlen : INBUF - 1] = 0;
	end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (!end)
		return c->inlen >= INBUF - 1 ? -1 : 0;
	hl = (size_t)(end - c->in) + 4;
	if (strncmp(c->in, "HTTP/1.", 7) || c->inlen < 12)
		return -1;
	*status = atoi(c->in + 9);
	for (p = c->in; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		if (*p == '\n')
			p++;
		if (!strncasecmp(p, "Content-Length:", 15)) {
			cl = strtol(p + 15, NULL, 10);
			break;
		}
	}
	if (cl < 0)
		return -1;
	*body_off = hl;
	if (hl + (size_t)cl >= INBUF)
		return -1;
	return c->inlen >= hl + (size_t)cl ? (long)(hl + (size_t)cl) : 0;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event evs[256];
	unsigned long long k = 0; /* next request of this worker's schedule */
	double interval = w->rate > 0 ? 1e9 / w->rate : 0;
	uint64_t drain_end;

	prctl(PR_SET_TIMERSLACK, 1UL);
	for (int i = 0; i < w->nc; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->c[i]};
		if (connect_one(&w->c[i])) {
			fprintf(stderr, "loadgen: cannot connect to %s:%d: %s\n", host, port,
				strerror(errno));
			exit(1);
		}
		epoll_ctl(epfd, EPOLL_CTL_ADD, w->c[i].fd, &ev);
	}
	w->t0 = start_ns;
	w->t_measure = w->t0 + (uint64_t)(warmup * 1e9);
	w->t_end = w->t_measure + (uint64_t)(duration * 1e9);
	drain_end = w->t_end + 2000000000ULL;
	for (;;) {
		uint64_t now = now_ns();
		int stopping = now >= w->t_end;
		int nready, any_busy = 0;
		struct timespec to;
		uint64_t wait_ns;

		/* send what is due on idle connections */
		if (!stopping) {
			for (int i = 0; i < w->nc; i++) {
				struct conn *c = &w->c[i];
				uint64_t sched;
				if (c->busy || c->fd < 0)
					continue;
				if (interval > 0) {
					sched = w->t0 + (uint64_t)((double)k * interval);
					if (sched > now)
						break;
				} else {
					sched = now;
				}
				send_on(w, epfd, c, sched,
					(unsigned long long)w->id + (unsigned long long)nthreads * k);
				k++;
			}
		}
		for (int i = 0; i < w->nc; i++)
			any_busy |= w->c[i].busy;
		if (stopping && (!any_busy || now >= drain_end))
			break;
		if (interval > 0 && !stopping) {
			uint64_t next = w->t0 + (uint64_t)((double)k * interval);
			wait_ns = next > now ? next - now : 0;
			/* when every connection is busy the next send waits for an answer */
			int idle = 0;
			for (int i = 0; i < w->nc && !idle; i++)
				idle = !w->c[i].busy;
			if (!idle)
				wait_ns = 100000000ULL;
		} else {
			wait_ns = 100000000ULL;
		}
		to.tv_sec = (time_t)(wait_ns / 1000000000ULL);
		to.tv_nsec = (long)(wait_ns % 1000000000ULL);
		nready = epoll_pwait2(epfd, evs, 256, &to, NULL);
		if (nready < 0 && errno != EINTR) {
			perror("loadgen: epoll_pwait2");
			exit(1);
		}
		for (int e = 0; e < nready; e++) {
			struct conn *c = evs[e].data.ptr;
			if (evs[e].events & EPOLLOUT) {
				if (flush_out(c)) {
					w->errors++;
					c->busy = 0;
					reset_conn(w, epfd, c);
					continue;
				}
				if (c->outoff >= c->outlen) {
					struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					ssize_t r = recv(c->fd, c->in + c->inlen, INBUF - 1 - c->inlen, 0);
					int status = 0;
					size_t boff = 0;
					long len;
					if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
						break;
					if (r < 0 && errno == EINTR)
						continue;
					if (r <= 0) {
						if (c->busy)
							w->errors++;
						c->busy = 0;
						reset_conn(w, epfd, c);
						break;
					}
					c->inlen += (size_t)r;
					len = answer_len(c, &status, &boff);
					if (len < 0) {
						fprintf(stderr, "loadgen: cannot parse an answer: %.80s\n",
							c->in);
						w->errors++;
						c->busy = 0;
						reset_conn(w, epfd, c);
						break;
					}
					if (len == 0)
						continue;
					{
						uint64_t t = now_ns();
						if (c->sched >= w->t_measure && c->sched < w->t_end) {
							w->requests++;
							lat_add(&w->lat, t - c->sched);
							if (status < 200 || status > 299)
								w->non2xx++;
							if (match) {
								char save = c->in[len];
								c->in[len] = 0;
								if (strstr(c->in + boff, match))
									w->matched++;
								c->in[len] = save;
							}
						}
					}
					memmove(c->in, c->in + len, c->inlen - (size_t)len);
					c->inlen -= (size_t)len;
					c->busy = 0;
					break;
				}
			}
		}
	}
	/* requests due before the end that never went out: charged with their wait */
	if (interval > 0) {
		uint64_t end = now_ns();
		for (;; k++) {
			uint64_t sched = w->t0 + (uint64_t)((double)k * interval);
			if (sched >= w->t_end)
				break;
			if (sched >= w->t_measure) {
				lat_add(&w->lat, end - sched);
				w->unsent++;
			}
		}
	}
	for (int i = 0; i < w->nc; i++)
		if (w->c[i].fd >= 0)
			close(w->c[i].fd);
	close(epfd);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pctl(const uint64_t *v, size_t n, double p)
{
	size_t k;
	if (!n)
		return 0;
	k = (size_t)(p / 100.0 * (double)n);
	if (k >= n)
		k = n - 1;
	return (double)v[k] / 1000.0;
}

int main(int argc, char **argv)
{
	struct worker *w;
	struct lat all = {0};
	unsigned long long req = 0, err = 0, non2xx = 0, matched = 0, unsent = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			usage(stderr);
			return 2;
		}
		i++;
		if (!strcmp(o, "--host"))
			host = v;
		else if (!strcmp(o, "--port"))
			port = (int)strtol(v, NULL, 10);
		else if (!strcmp(o, "--method"))
			method = v;
		else if (!strcmp(o, "--path"))
			path_tmpl = v;
		else if (!strcmp(o, "--body"))
			body_tmpl = v;
		else if (!strcmp(o, "--header") && nheaders < MAX_HEADERS)
			headers[nheaders++] = v;
		else if (!strcmp(o, "--connections"))
			nconns = (int)strtol(v, NULL, 10);
		else if (!strcmp(o, "--threads"))
			nthreads = (int)strtol(v, NULL, 10);
		else if (!strcmp(o, "--rate"))
			rate = atof(v);
		else if (!strcmp(o, "--duration"))
			duration = atof(v);
		else if (!strcmp(o, "--warmup"))
			warmup = atof(v);
		else if (!strcmp(o, "--mod"))
			mod = atoll(v) > 0 ? atoll(v) : 1;
		else if (!strcmp(o, "--match"))
			match = v;
		else {
			fprintf(stderr, "loadgen: unknown option '%s'\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (port <= 0 || nconns < 1 || nthreads < 1 || nthreads > nconns || rate < 0 ||
	    duration <= 0 || duration > 3600 || warmup < 0) {
		usage(stderr);
		return 2;
	}
	if (!(w = calloc((size_t)nthreads, sizeof(*w)))) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	start_ns = now_ns() + 50000000ULL; /* connections first, then the schedule */
	for (int t = 0; t < nthreads; t++) {
		w[t].id = t;
		w[t].nc = nconns / nthreads + (t < nconns % nthreads);
		w[t].c = calloc((size_t)w[t].nc, sizeof(struct conn));
		w[t].rate = rate / nthreads;
		if (!w[t].c) {
			fprintf(stderr, "loadgen: out of memory\n");
			return 1;
		}
		for (int i = 0; i < w[t].nc; i++)
			w[t].c[i].fd = -1;
		pthread_create(&w[t].th, NULL, run, &w[t]);
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(w[t].th, NULL);
		req += w[t].requests;
		err += w[t].errors;
		non2xx += w[t].non2xx;
		matched += w[t].matched;
		unsent += w[t].unsent;
		for (size_t i = 0; i < w[t].lat.n; i++)
			lat_add(&all, w[t].lat.v[i]);
	}
	qsort(all.v, all.n, sizeof(*all.v), cmp_u64);
	printf("RESULT target_rps=%.0f rps=%.1f requests=%llu errors=%llu non2xx=%llu matched=%llu "
	       "unsent=%llu p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
	       rate, (double)req / duration, req, err, non2xx, matched, unsent,
	       pctl(all.v, all.n, 50), pctl(all.v, all.n, 90), pctl(all.v, all.n, 99),
	       pctl(all.v, all.n, 99.9), all.n ? (double)all.v[all.n - 1] / 1000.0 : 0);
	return 0;
}
