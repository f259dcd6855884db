/* klaxond — the Klaxon daemon: HTTP API in front of the incident store. */
#include "core/config.h"
#include "engine/checks.h"
#include "engine/outbox.h"
#include "service/ingest.h"
#include "http/server.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "core/route.h"
#include "service/alerts.h"
#include "service/detect.h"
#include "service/guard.h"
#include "service/tokens.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KX_VERSION "0.1.0"

static const char usage[] =
	"usage: klaxond [--listen ADDR:PORT] [--data-dir DIR] [--db URL] [--config FILE]\n"
	"               [--threads N] [--quiet]\n"
	"\n"
	"Klaxon's daemon: the HTTP API (/v1/...), /healthz and /readyz.\n"
	"\n"
	"  --listen ADDR:PORT  address to serve on (default 127.0.0.1:8080;\n"
	"                      [::1]:8080 for IPv6; port 0 picks a free port)\n"
	"  --data-dir DIR      where the database and admin.token live (default ./var)\n"
	"  --db URL            the store: sqlite:PATH (default sqlite:DIR/klaxon.db),\n"
	"                      or postgres://USER:PASS@HOST:PORT/DB (also postgresql://\n"
	"                      and postgres:KEY=VALUE... libpq keyword strings)\n"
	"  --config FILE       YAML configuration (see examples/klaxon.yaml); flags\n"
	"                      given here override the file\n"
	"  --threads N         HTTP worker threads (default: 4 per core)\n"
	"  --quiet             log warnings and errors only\n"
	"  --help              this text\n"
	"  --version           print the version\n"
	"\n"
	"On first start with an empty store it creates an admin token and writes it\n"
	"to DIR/admin.token (mode 0600). Stop it with SIGINT or SIGTERM.\n";

struct args {
	const char *listen, *data_dir, *db, *config;
	int threads;
	bool quiet;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		const char *const opts[] = {"--listen", "--data-dir", "--db", "--config", "--threads"};
		const char **dst[] = {&a->listen, &a->data_dir, &a->db, &a->config, NULL};
		bool matched = false;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (!strcmp(arg, "--version")) {
			printf("klaxond %s\n", KX_VERSION);
			exit(0);
		}
		if (!strcmp(arg, "--quiet")) {
			a->quiet = true;
			continue;
		}
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
			size_t n = strlen(opts[k]);
			if (strncmp(arg, opts[k], n) != 0 || (arg[n] && arg[n] != '='))
				continue;
			if (arg[n] == '=')
				val = arg + n + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				fprintf(stderr, "klaxond: option '%s' needs a value\n", opts[k]);
				return -1;
			}
			if (dst[k]) {
				*dst[k] = val;
			} else {
				char *end;
				long t = strtol(val, &end, 10);
				if (*end || end == val || t < 0 || t > 256) {
					fprintf(stderr, "klaxond: '--threads' must be 0 to 256, not '%s'\n", val);
					return -1;
				}
				a->threads = (int)t;
			}
			matched = true;
			break;
		}
		if (!matched) {
			fprintf(stderr, "klaxond: unknown option '%s' (see 'klaxond --help')\n", arg);
			return -1;
		}
	}
	return 0;
}

static int read_file(const char *path, char **out, size_t *len, struct kx_err *err)
{
	FILE *f = fopen(path, "rb");
	struct kx_buf b;
	char chunk[8192];
	size_t n;

	if (!f)
		return kx_err_set(err, KX_EIO, "cannot read '%s': %s", path, strerror(errno));
	kx_buf_init(&b, 16 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (kx_buf_add(&b, chunk, n)) {
			fclose(f);
			return kx_err_set(err, KX_ETOOBIG, "'%s' is larger than 16 MiB", path);
		}
	}
	if (ferror(f)) {
		fclose(f);
		kx_buf_release(&b);
		return kx_err_set(err, KX_EIO, "cannot read '%s': %s", path, strerror(errno));
	}
	fclose(f);
	*out = kx_buf_take(&b, len);
	return *out ? 0 : kx_err_set(err, KX_ENOMEM, "out of memory");
}

static int mkdirs(const char *dir, struct kx_err *err)
{
	char path[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(path))
		return kx_err_set(err, KX_EINVAL, "bad data directory '%s'", dir);
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];
		path[i] = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return kx_err_set(err, KX_EIO, "cannot create '%s': %s", path, strerror(errno));
		path[i] = c;
	}
	return 0;
}

/* The store URL as it may be logged: a password in it is masked. */
static void redact_url(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://"), *at, *colon;
	snprintf(out, outlen, "%s", url);
	if (scheme) {
		at = strchr(scheme + 3, '@');
		colon = strchr(scheme + 3, ':');
		if (at && colon && colon < at)
			snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
	} else if (strstr(url, "password=")) {
		snprintf(out, outlen, "%.*s(password hidden)", (int)(strstr(url, "password=") - url),
			 url);
	}
}

static int split_listen(const char *listen, char *host, size_t hostlen, unsigned *port,
			struct kx_err *err)
{
	const char *colon, *h = listen;
	size_t hl;
	char *end;
	long p;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			goto bad;
		h = listen + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - listen);
	}
	if (hl == 0 || hl >= hostlen)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!strcmp(host, "localhost"))
		snprintf(host, hostlen, "127.0.0.1");
	p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		goto bad;
	*port = (unsigned)p;
	return 0;
bad:
	return kx_err_set(err, KX_EINVAL, "cannot parse listen address '%s': use ADDR:PORT", listen);
}

struct persist_arg {
	char path[4200];
};

static int persist_token(const char *secret, void *arg)
{
	struct persist_arg *pa = arg;
	char tmp[4300];
	int fd;
	size_t n = strlen(secret);

	snprintf(tmp, sizeof(tmp), "%s.tmp", pa->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return KX_EIO;
	if (fchmod(fd, 0600) || write(fd, secret, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
	    fsync(fd)) {
		close(fd);
		unlink(tmp);
		return KX_EIO;
	}
	close(fd);
	if (rename(tmp, pa->path)) {
		unlink(tmp);
		return KX_EIO;
	}
	return 0;
}

static void wake_streams(void *arg)
{
	kx_server_wake_streams(arg);
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct kx_config cfg;
	struct kx_err err = {0};
	struct kx_store *store = NULL;
	struct kx_server *srv = NULL;
	struct kx_engine *engine = NULL;
	struct kx_checks *checks = NULL;
	struct kx_app app = {0};
	struct kx_server_opts so;
	struct persist_arg pa;
	char host[256], dburl[4200], shown[4200];
	bool created;
	sigset_t sigs;
	int sig, rc = 1;
	kx_ms t0 = kx_now_ms();

	if (parse_args(argc, argv, &a))
		return 2;
	/* The database holds incidents and token hashes: readable by us only. */
	umask(077);
	kx_log_setup("klaxond", a.quiet ? KX_LOG_WARN : KX_LOG_INFO);
	if (kx_config_init(&cfg) || kx_secret_init()) {
		fprintf(stderr, "klaxond: cannot initialise\n");
		return 1;
	}
	if (a.config) {
		char *text;
		size_t len;
		if (read_file(a.config, &text, &len, &err) ||
		    kx_config_parse(&cfg, text, len, a.config, &err)) {
			fprintf(stderr, "klaxond: %s\n", err.msg);
			if (err.code != KX_EIO && err.code != KX_ETOOBIG)
				free(text);
			goto out;
		}
		free(text);
	}
	if (a.listen) {
		free(cfg.listen);
		cfg.listen = strdup(a.listen);
	}
	if (a.data_dir) {
		free(cfg.data_dir);
		cfg.data_dir = strdup(a.data_dir);
	}
	if (a.db) {
		free(cfg.db);
		cfg.db = strdup(a.db);
	}
	if (a.threads)
		cfg.threads = a.threads;
	if (!cfg.listen || !cfg.data_dir || (a.db && !cfg.db)) {
		fprintf(stderr, "klaxond: out of memory\n");
		goto out;
	}
	if (split_listen(cfg.listen, host, sizeof(host), &so.port, &err) ||
	    mkdirs(cfg.data_dir, &err)) {
		fprintf(stderr, "klaxond: %s\n", err.msg);
		goto out;
	}
	if (cfg.db)
		snprintf(dburl, sizeof(dburl), "%s", cfg.db);
	else
		snprintf(dburl, sizeof(dburl), "sqlite:%s/klaxon.db", cfg.data_dir);
	if (kx_store_open(dburl, &store, &err)) {
		fprintf(stderr, "klaxond: %s\n", err.msg);
		goto out;
	}
	app.store = store;
	app.cfg = &cfg;
	app.started_at = kx_now_ms();
	app.tokens = kx_token_cache_new();
	if (!app.tokens || kx_hash_cache_attach(app.tokens, store, &err)) {
		fprintf(stderr, "klaxond: cannot set up the token cache: %s\n", err.msg);
		goto out;
	}
	if (kx_detect_rt_new(&app, &app.detect, &err)) {
		fprintf(stderr, "klaxond: %s\n", err.msg);
		goto out;
	}

	if (kx_router_new(&cfg, &app.router, &err) ||
	    kx_svc_services_sync(&app, kx_now_ms(), &err)) {
		fprintf(stderr, "klaxond: cannot set up alert routing: %s\n", err.msg);
		goto out;
	}

	if (kx_ingest_rt_start(&app, &app.ingest, &err)) {
		fprintf(stderr, "klaxond: cannot start alert ingestion: %s\n", err.msg);
		goto out;
	}

	if (kx_gate_rt_new(&app, &app.gate, &err)) {
		fprintf(stderr, "klaxond: cannot start the gate: %s\n", err.msg);
		goto out;
	}

	snprintf(pa.path, sizeof(pa.path), "%s/admin.token", cfg.data_dir);
	if (kx_svc_token_bootstrap(&app, kx_now_ms(), persist_token, &pa, &created, &err)) {
		fprintf(stderr, "klaxond: cannot create the admin token in '%s': %s\n", pa.path,
			err.msg);
		goto out;
	}

	/* Signals are taken by sigwait below; block them before any thread starts
	 * so that none of MHD's threads receives them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	so.host = host;
	/* Requests block on the store (a durable commit waits for fsync), so
	 * more threads than cores keep the CPU busy and let commits group. */
	so.threads = cfg.threads ? cfg.threads : 4 * (int)sysconf(_SC_NPROCESSORS_ONLN);
	so.max_body = cfg.max_body_bytes;
	if (kx_server_start(&app, &so, &srv, &err)) {
		fprintf(stderr, "klaxond: %s\n", err.msg);
		goto out;
	}
	if (kx_engine_start(&app, &engine, &err)) {
		fprintf(stderr, "klaxond: %s\n", err.msg);
		goto out;
	}
	if (kx_checks_start(&app, &checks, &err)) {
		fprintf(stderr, "klaxond: cannot start the health checks: %s\n", err.msg);
		goto out;
	}
	/* A new gate snapshot is news for every switch stream. */
	kx_gate_rt_listen(app.gate, wake_streams, srv);
	redact_url(dburl, shown, sizeof(shown));
	kx_log(KX_LOG_INFO, "listening on http://%s%s%s:%u (store %s, started in %lld ms)",
	       strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	       kx_server_port(srv), shown, (long long)(kx_now_ms() - t0));
	if (created)
		kx_log(KX_LOG_INFO, "created the admin token: %s (mode 0600)", pa.path);
	fflush(stderr);

	if (sigwait(&sigs, &sig) == 0)
		kx_log(KX_LOG_INFO, "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rc = 0;
out:
	kx_checks_stop(checks);
	kx_engine_stop(engine);
	/* the gate's listener wakes the server's streams: stop it first */
	kx_gate_rt_stop(app.gate);
	/* parked ingestion requests get their answers while the server stops:
	 * the ingestion queue stops after it */
	kx_server_stop(srv);
	kx_ingest_rt_stop(app.ingest);
	kx_gate_rt_free(app.gate);
	kx_store_free(store);
	kx_ingest_rt_free(app.ingest);
	kx_hash_cache_free(app.tokens);
	kx_detect_rt_free(app.detect);
	kx_router_free(app.router);
	kx_config_release(&cfg);
	return rc;
}
