/* test_store_postgres.c — store/ with the PostgreSQL backend.
 *
 * The server: $KX_TEST_PG_URL when set (its user needs CREATEDB), else a
 * private one started here with scripts/pg-test-server in a temporary
 * directory and stopped at the end (the script comes from $KX_SOURCE_DIR or
 * the source tree this test was built from).
 *
 * Each test gets a fresh database (CREATE DATABASE … / DROP DATABASE …
 * WITH (FORCE)), opened through a "postgres:KEY=VALUE …" URL, so the
 * contract tests are those of test_store_sqlite.c, unchanged. Then what
 * only a shared server has: several stores (daemons) at once on one
 * database, row locks, the change feed across daemons, and the server going
 * away and coming back under an open store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "lib/secret.h"
#include "store/migrate.h"
#include "store/store.h"

#ifndef KX_SOURCE_DIR
#define KX_SOURCE_DIR "."
#endif

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */
#define MIN 60000
#define DAY 86400000

/* The server, for the whole run. */
static char server_dir[256];   /* "" when the server is not ours ($KX_TEST_PG_URL) */
static char server_url[1024];  /* as given: postgres://… */
static char server_info[1024]; /* the same as a libpq conninfo (URI or keywords) */
static char script[1024];

struct fixture {
	char db[64];
	char url[2048];
	struct kx_store *store;
	struct kx_err err;
};

static kx_ms mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (kx_ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs `script VERB server_dir`; for start, reads the URL it prints. */
static int server(const char *verb, char *url, size_t n)
{
	char cmd[2048], line[1024];
	FILE *p;
	int rc;
	snprintf(cmd, sizeof(cmd), "'%s' %s '%s'", script, verb, server_dir);
	if (!(p = popen(cmd, "r")))
		return -1;
	line[0] = '\0';
	while (fgets(line, sizeof(line), p))
		if (url)
			snprintf(url, n, "%s", line);
	rc = pclose(p);
	if (url)
		url[strcspn(url, "\n")] = '\0';
	return rc;
}

/* Runs one SQL command on the server's own database (CREATE/DROP DATABASE). */
static int admin(const char *sql)
{
	PGconn *c = PQconnectdb(server_info);
	PGresult *r;
	int rc = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, sql);
		rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
			     ? 0
			     : -1;
		if (rc)
			fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
	} else {
		fprintf(stderr, "cannot connect to %s: %s", server_url, PQerrorMessage(c));
	}
	PQfinish(c);
	return rc;
}

/* One integer from a query on database db (for looking behind the store). */
static long long query_int(const char *url, const char *sql)
{
	const char *info = strncmp(url, "postgres:", 9) == 0 && strncmp(url, "postgres://", 11) != 0
				   ? url + 9
				   : url;
	PGconn *c = PQconnectdb(info);
	PGresult *r = PQexec(c, sql);
	long long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* "postgres:KEY='VALUE' …" for database db on the server. */
static void url_for(const char *db, char *out, size_t n)
{
	PQconninfoOption *opts = PQconninfoParse(server_info, NULL);
	struct kx_buf b;
	assert_non_null(opts);
	kx_buf_init(&b, 0);
	kx_buf_adds(&b, "postgres:");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = strcmp(o->keyword, "dbname") == 0 ? db : o->val;
		if (!v)
			continue;
		kx_buf_addf(&b, "%s=", o->keyword);
		kx_buf_addc(&b, '\'');
		for (const char *s = v; *s; s++) {
			if (*s == '\'' || *s == '\\')
				kx_buf_addc(&b, '\\');
			kx_buf_addc(&b, *s);
		}
		kx_buf_adds(&b, "' ");
	}
	PQconninfoFree(opts);
	assert_true(b.len < n);
	snprintf(out, n, "%s", kx_buf_str(&b));
	kx_buf_release(&b);
}

/* A fresh, empty database; its store URL into url. */
static void new_db(char db[64], char *url, size_t n)
{
	static int counter;
	char sql[128];
	snprintf(db, 64, "kx_test_%d_%d", (int)getpid(), ++counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	assert_int_equal(admin(sql), 0);
	url_for(db, url, n);
}

static void drop_db(const char *db)
{
	char sql[128];
	if (server_dir[0])
		return; /* the whole cluster goes at the end, faster than one by one */
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	admin(sql);
}

static int group_setup(void **state)
{
	const char *env = getenv("KX_TEST_PG_URL"), *src = getenv("KX_SOURCE_DIR");
	const char *tmp = getenv("TMPDIR");
	char owner[32];
	(void)state;
	if (kx_secret_init())
		return -1;
	snprintf(script, sizeof(script), "%s/scripts/pg-test-server",
		 src && *src ? src : KX_SOURCE_DIR);
	if (env && *env) {
		snprintf(server_url, sizeof(server_url), "%s", env);
	} else {
		snprintf(server_dir, sizeof(server_dir), "%s/kx-pg-XXXXXX",
			 tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
		if (!mkdtemp(server_dir) || strchr(server_dir, '\'') || strchr(script, '\''))
			return -1;
		/* the server goes when this process does, even on a crash */
		snprintf(owner, sizeof(owner), "%d", (int)getpid());
		setenv("PG_TEST_SERVER_OWNER", owner, 1);
		if (server("start", server_url, sizeof(server_url)) || !*server_url) {
			fprintf(stderr, "cannot start a PostgreSQL server with %s\n", script);
			return -1;
		}
	}
	/* postgres://… is a libpq URI as is; postgres:KEYWORDS loses its prefix */
	snprintf(server_info, sizeof(server_info), "%s",
		 strncmp(server_url, "postgres:", 9) == 0 && server_url[9] != '/' ? server_url + 9
										 : server_url);
	fprintf(stderr, "testing against %s\n", server_url);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[600];
	(void)state;
	if (!server_dir[0])
		return 0;
	server("stop", NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", server_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	new_db(f->db, f->url, sizeof(f->url));
	if (kx_store_open(f->url, &f->store, &f->err)) {
		fprintf(stderr, "cannot open %s: %s\n", f->url, f->err.msg);
		drop_db(f->db);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kx_store_free(f->store);
	drop_db(f->db);
	free(f);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- the contract (as in test_store_sqlite.c) ---- */

static struct kx_tx *begin(struct fixture *f, bool write)
{
	struct kx_tx *tx = NULL;
	if (kx_store_begin(f->store, write, &tx, &f->err))
		fail_msg("begin: %s", f->err.msg);
	return tx;
}

static void commit(struct fixture *f, struct kx_tx *tx)
{
	if (kx_store_commit(tx, &f->err))
		fail_msg("commit: %s", f->err.msg);
}

#define OK(call)                                                                               \
	do {                                                                                   \
		if ((call) != 0)                                                               \
			fail_msg("%s: %s", #call, f->err.msg);                                 \
	} while (0)

/* A fully populated incident declared at `at` with sequence seq. */
static void make_incident(struct kx_incident *inc, kx_ms at, int64_t seq, const char *severity,
			  enum kx_status status)
{
	kx_incident_init(inc);
	kx_incident_id_format(inc->id, at, seq);
	inc->title = strdup("Checkout is down");
	inc->severity = strdup(severity);
	inc->created_by = strdup("alice");
	inc->status = status;
	inc->declared_at = at;
	inc->detected_at = at - 5 * MIN;
	inc->updated_at = at;
	inc->version = 1;
	if (status == KX_STATUS_RESOLVED)
		inc->resolved_at = at + 30 * MIN;
}

/* Inserts inc in its own transaction. */
static void insert(struct fixture *f, const struct kx_incident *inc)
{
	struct kx_tx *tx = begin(f, true);
	if (kx_store_incident_insert(tx, inc, &f->err)) {
		kx_store_rollback(tx);
		fail_msg("insert %s: %s", inc->id, f->err.msg);
	}
	commit(f, tx);
}

static void get(struct fixture *f, const char *id, struct kx_incident *out)
{
	struct kx_tx *tx = begin(f, false);
	int rc = kx_store_incident_get(tx, id, out, &f->err);
	kx_store_rollback(tx);
	if (rc)
		fail_msg("get %s: %s", id, f->err.msg);
}

/* ---- sequence numbers ---- */

static void next_seq_counts_per_day(void **state)
{
	struct fixture *f = *state;
	struct kx_tx *tx = begin(f, true);
	int64_t seq = 0;
	OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
	assert_true(seq == 1);
	OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
	assert_true(seq == 2);
	OK(kx_store_incident_next_seq(tx, "20261126", &seq, &f->err));
	assert_true(seq == 1);
	OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
	assert_true(seq == 3);
	commit(f, tx);
	/* committed counters survive; rolled-back ones do not */
	tx = begin(f, true);
	OK(kx_store_incident_next_seq(tx, "20261126", &seq, &f->err));
	assert_true(seq == 2);
	kx_store_rollback(tx);
	tx = begin(f, true);
	OK(kx_store_incident_next_seq(tx, "20261126", &seq, &f->err));
	assert_true(seq == 2);
	commit(f, tx);
}

static void next_seq_goes_past_999(void **state)
{
	struct fixture *f = *state;
	struct kx_tx *tx = begin(f, true);
	int64_t seq = 0;
	struct kx_incident inc, back;
	for (int i = 0; i < 1000; i++)
		OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
	assert_true(seq == 1000);
	commit(f, tx);
	make_incident(&inc, T0, seq, "P1", KX_STATUS_INVESTIGATING);
	assert_string_equal(inc.id, "INC-20261125-1000");
	insert(f, &inc);
	get(f, "INC-20261125-1000", &back);
	assert_string_equal(back.id, "INC-20261125-1000");
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

/* ---- incidents ---- */

static void full_incident(struct kx_incident *inc)
{
	make_incident(inc, T0, 7, "P1", KX_STATUS_MONITORING);
	inc->summary = strdup("EU cards fail at checkout.\nSecond line, with ünïcødé.");
	inc->root_cause = strdup("expired certificate");
	inc->resolution = strdup("rotated it");
	inc->impact.users = 1200;
	inc->impact.accounts = 0;
	inc->impact.actions = INT64_C(9007199254740992);
	inc->impact.revenue = strdup("$5k");
	inc->impact.description = strdup("EU checkout failed");
	inc->started_at = T0 - 20 * MIN;
	inc->acknowledged_at = T0 + 2 * MIN;
	inc->mitigated_at = T0 + 30 * MIN;
	inc->updated_at = T0 + 31 * MIN;
	inc->version = 6;
	assert_int_equal(kx_incident_add_type(inc, "OUTAGE"), 0);
	assert_int_equal(kx_incident_add_type(inc, "DEPLOY"), 0);
	assert_int_equal(kx_incident_add_type(inc, "AUTH"), 0);
	assert_int_equal(kx_labels_add_pair(&inc->labels, "env=prod", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&inc->labels, "client=acme", NULL), 0);
	assert_int_equal(kx_incident_add_role(inc, "sme", "erin"), 0);
	assert_int_equal(kx_incident_add_role(inc, "commander", "alice"), 0);
	assert_int_equal(kx_incident_add_role(inc, "sme", "frank"), 0);
}

static void assert_same_incident(const struct kx_incident *a, const struct kx_incident *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->title, b->title);
	if (a->summary || b->summary)
		assert_string_equal(a->summary, b->summary);
	assert_string_equal(a->severity, b->severity);
	assert_int_equal(a->status, b->status);
	if (a->root_cause || b->root_cause)
		assert_string_equal(a->root_cause, b->root_cause);
	if (a->resolution || b->resolution)
		assert_string_equal(a->resolution, b->resolution);
	assert_true(a->impact.users == b->impact.users);
	assert_true(a->impact.accounts == b->impact.accounts);
	assert_true(a->impact.actions == b->impact.actions);
	if (a->impact.revenue || b->impact.revenue)
		assert_string_equal(a->impact.revenue, b->impact.revenue);
	if (a->impact.description || b->impact.description)
		assert_string_equal(a->impact.description, b->impact.description);
	assert_string_equal(a->created_by, b->created_by);
	assert_true(a->started_at == b->started_at);
	assert_true(a->detected_at == b->detected_at);
	assert_true(a->declared_at == b->declared_at);
	assert_true(a->acknowledged_at == b->acknowledged_at);
	assert_true(a->mitigated_at == b->mitigated_at);
	assert_true(a->resolved_at == b->resolved_at);
	assert_true(a->updated_at == b->updated_at);
	assert_true(a->version == b->version);
	assert_int_equal(a->ntypes, b->ntypes);
	for (size_t i = 0; i < a->ntypes; i++)
		assert_string_equal(a->types[i], b->types[i]);
	assert_int_equal(a->labels.n, b->labels.n);
	for (size_t i = 0; i < a->labels.n; i++) {
		assert_string_equal(a->labels.v[i].key, b->labels.v[i].key);
		assert_string_equal(a->labels.v[i].value, b->labels.v[i].value);
	}
	assert_int_equal(a->nroles, b->nroles);
	for (size_t i = 0; i < a->nroles; i++) {
		assert_string_equal(a->roles[i].role, b->roles[i].role);
		assert_string_equal(a->roles[i].person, b->roles[i].person);
	}
}

static void incident_round_trip_full(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	full_incident(&inc);
	insert(f, &inc);
	get(f, inc.id, &back);
	assert_same_incident(&inc, &back);
	/* types and roles keep their order */
	assert_string_equal(back.types[2], "AUTH");
	assert_string_equal(back.roles[0].role, "sme");
	assert_string_equal(back.roles[0].person, "erin");
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

static void incident_round_trip_minimal(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	make_incident(&inc, T0, 1, "P3", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	get(f, inc.id, &back);
	assert_same_incident(&inc, &back);
	assert_null(back.summary);
	assert_null(back.root_cause);
	assert_null(back.impact.revenue);
	assert_true(back.impact.users == -1);
	assert_true(back.started_at == KX_TIME_UNSET);
	assert_true(back.acknowledged_at == KX_TIME_UNSET);
	assert_int_equal(back.ntypes, 0);
	assert_int_equal(back.labels.n, 0);
	assert_int_equal(back.nroles, 0);
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

static void incident_get_missing(void **state)
{
	struct fixture *f = *state;
	struct kx_incident back;
	struct kx_tx *tx = begin(f, false);
	kx_incident_init(&back);
	assert_int_equal(kx_store_incident_get(tx, "INC-20261125-001", &back, &f->err),
			 KX_ENOTFOUND);
	assert_contains(f->err.msg, "'INC-20261125-001' not found");
	kx_store_rollback(tx);
	kx_incident_release(&back);
}

static void incident_insert_duplicate_is_conflict(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc;
	struct kx_tx *tx;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	tx = begin(f, true);
	assert_int_equal(kx_store_incident_insert(tx, &inc, &f->err), KX_ECONFLICT);
	kx_store_rollback(tx);
	kx_incident_release(&inc);
}

static void incident_update_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	struct kx_tx *tx;
	full_incident(&inc);
	insert(f, &inc);
	/* change every kind of field, children included */
	free(inc.title);
	inc.title = strdup("Checkout fails in EU");
	free(inc.summary);
	inc.summary = NULL;
	inc.status = KX_STATUS_RESOLVED;
	inc.resolved_at = T0 + 60 * MIN;
	inc.impact.users = -1;
	inc.impact.accounts = 42;
	kx_incident_clear_types(&inc);
	assert_int_equal(kx_incident_add_type(&inc, "SECURITY"), 0);
	kx_labels_remove(&inc.labels, "env");
	assert_int_equal(kx_labels_add_pair(&inc.labels, "platform=instagram", NULL), 0);
	for (size_t i = 0; i < inc.nroles; i++) {
		free(inc.roles[i].role);
		free(inc.roles[i].person);
	}
	inc.nroles = 0;
	assert_int_equal(kx_incident_add_role(&inc, "scribe", "dave"), 0);
	inc.updated_at = T0 + 60 * MIN;
	inc.version = 7;
	tx = begin(f, true);
	OK(kx_store_incident_update(tx, &inc, 6, &f->err));
	commit(f, tx);
	get(f, inc.id, &back);
	assert_same_incident(&inc, &back);
	assert_null(back.summary);
	assert_true(back.impact.users == -1);
	assert_null(kx_labels_get(&back.labels, "env"));
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

static void incident_update_stale_version_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, changed, back;
	struct kx_tx *tx;
	full_incident(&inc); /* version 6 */
	insert(f, &inc);
	full_incident(&changed);
	free(changed.title);
	changed.title = strdup("Someone else's edit");
	kx_incident_clear_types(&changed);
	kx_labels_release(&changed.labels);
	changed.version = 8;
	tx = begin(f, true);
	assert_int_equal(kx_store_incident_update(tx, &changed, 5, &f->err), KX_ECONFLICT);
	assert_contains(f->err.msg, "expected version 5");
	kx_store_rollback(tx);
	get(f, inc.id, &back);
	assert_same_incident(&inc, &back);
	kx_incident_release(&back);
	kx_incident_release(&changed);
	kx_incident_release(&inc);
}

static void incident_update_missing_is_conflict(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc;
	struct kx_tx *tx = begin(f, true);
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	assert_int_equal(kx_store_incident_update(tx, &inc, 1, &f->err), KX_ECONFLICT);
	kx_store_rollback(tx);
	kx_incident_release(&inc);
}

static void rollback_discards(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	struct kx_tx *tx = begin(f, true);
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	OK(kx_store_incident_insert(tx, &inc, &f->err));
	kx_store_rollback(tx);
	tx = begin(f, false);
	kx_incident_init(&back);
	assert_int_equal(kx_store_incident_get(tx, inc.id, &back, &f->err), KX_ENOTFOUND);
	kx_store_rollback(tx);
	kx_store_rollback(NULL);
	kx_incident_release(&inc);
}

/* ---- listing ---- */

/* Five incidents over three days (newest last):
 *   D0 #1 P1 investigating {client=acme, env=prod}
 *   D0 #2 P2 resolved      {client=acme}
 *   D1 #1 P1 monitoring    {client=globex, env=prod}
 *   D1 #2 P3 identified    {}
 *   D2 #1 P1 resolved      {client=acme, env=prod}
 */
static void seed_list(struct fixture *f)
{
	static const struct {
		int day, seq;
		const char *sev;
		enum kx_status status;
		const char *labels[3];
	} rows[] = {
		{0, 1, "P1", KX_STATUS_INVESTIGATING, {"client=acme", "env=prod", NULL}},
		{0, 2, "P2", KX_STATUS_RESOLVED, {"client=acme", NULL, NULL}},
		{1, 1, "P1", KX_STATUS_MONITORING, {"client=globex", "env=prod", NULL}},
		{1, 2, "P3", KX_STATUS_IDENTIFIED, {NULL, NULL, NULL}},
		{2, 1, "P1", KX_STATUS_RESOLVED, {"client=acme", "env=prod", NULL}},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct kx_incident inc;
		make_incident(&inc, T0 + rows[i].day * DAY + rows[i].seq * MIN, rows[i].seq,
			      rows[i].sev, rows[i].status);
		for (int k = 0; k < 3 && rows[i].labels[k]; k++)
			assert_int_equal(kx_labels_add_pair(&inc.labels, rows[i].labels[k], NULL), 0);
		insert(f, &inc);
		kx_incident_release(&inc);
	}
}

static void filter_init(struct kx_incident_filter *flt)
{
	memset(flt, 0, sizeof(*flt));
	kx_labels_init(&flt->labels);
	flt->declared_since = KX_TIME_UNSET;
}

/* Lists with flt and compares the IDs (comma-separated, in order). */
static void expect_list(struct fixture *f, struct kx_incident_filter *flt, const char *want)
{
	struct kx_incident_list l;
	struct kx_tx *tx = begin(f, false);
	struct kx_buf got;
	int rc = kx_store_incident_list(tx, flt, &l, &f->err);
	kx_store_rollback(tx);
	if (rc)
		fail_msg("list: %s", f->err.msg);
	kx_buf_init(&got, 0);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(kx_buf_addf(&got, "%s%s", i ? "," : "", l.v[i].id), 0);
	if (strcmp(kx_buf_str(&got), want) != 0)
		fail_msg("listed \"%s\", expected \"%s\"", kx_buf_str(&got), want);
	/* listed incidents are complete */
	for (size_t i = 0; i < l.n; i++) {
		assert_non_null(l.v[i].title);
		assert_non_null(l.v[i].severity);
	}
	kx_buf_release(&got);
	kx_incident_list_release(&l);
	kx_labels_release(&flt->labels);
	filter_init(flt);
}

#define D0_1 "INC-20261125-001"
#define D0_2 "INC-20261125-002"
#define D1_1 "INC-20261126-001"
#define D1_2 "INC-20261126-002"
#define D2_1 "INC-20261127-001"

static void list_newest_first(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_filter flt;
	seed_list(f);
	filter_init(&flt);
	expect_list(f, &flt, D2_1 "," D1_2 "," D1_1 "," D0_2 "," D0_1);
}

static void list_filters(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_filter flt;
	seed_list(f);
	filter_init(&flt);
	flt.status = "resolved";
	expect_list(f, &flt, D2_1 "," D0_2);
	flt.severity = "P1";
	expect_list(f, &flt, D2_1 "," D1_1 "," D0_1);
	flt.severity = "P1";
	flt.status = "resolved";
	expect_list(f, &flt, D2_1);
	flt.open_only = true;
	expect_list(f, &flt, D1_2 "," D1_1 "," D0_1);
	flt.open_only = true;
	flt.severity = "P1";
	expect_list(f, &flt, D1_1 "," D0_1);
	flt.declared_since = T0 + DAY; /* from day 1 on, inclusive */
	expect_list(f, &flt, D2_1 "," D1_2 "," D1_1);
	flt.declared_since = T0 + DAY + 2 * MIN; /* exactly D1 #2 */
	expect_list(f, &flt, D2_1 "," D1_2);
	flt.limit = 2;
	expect_list(f, &flt, D2_1 "," D1_2);
	flt.limit = 1;
	flt.status = "investigating";
	expect_list(f, &flt, D0_1);
	flt.severity = "P4";
	expect_list(f, &flt, "");
}

static void list_label_filters(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_filter flt;
	seed_list(f);
	filter_init(&flt);
	assert_int_equal(kx_labels_add_pair(&flt.labels, "client=acme", NULL), 0);
	expect_list(f, &flt, D2_1 "," D0_2 "," D0_1);
	assert_int_equal(kx_labels_add_pair(&flt.labels, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&flt.labels, "env=prod", NULL), 0);
	expect_list(f, &flt, D2_1 "," D0_1);
	assert_int_equal(kx_labels_add_pair(&flt.labels, "env=prod", NULL), 0);
	expect_list(f, &flt, D2_1 "," D1_1 "," D0_1);
	assert_int_equal(kx_labels_add_pair(&flt.labels, "client=initech", NULL), 0);
	expect_list(f, &flt, "");
	assert_int_equal(kx_labels_add_pair(&flt.labels, "client=acme", NULL), 0);
	flt.open_only = true;
	expect_list(f, &flt, D0_1);
}

static void list_empty_store(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_filter flt;
	filter_init(&flt);
	expect_list(f, &flt, "");
}

static void list_default_limit(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_filter flt;
	struct kx_incident_list l;
	struct kx_tx *tx = begin(f, true);
	for (int i = 1; i <= 105; i++) {
		struct kx_incident inc;
		make_incident(&inc, T0 + i * 1000, i, "P4", KX_STATUS_INVESTIGATING);
		OK(kx_store_incident_insert(tx, &inc, &f->err));
		kx_incident_release(&inc);
	}
	commit(f, tx);
	filter_init(&flt);
	tx = begin(f, false);
	OK(kx_store_incident_list(tx, &flt, &l, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(l.n, 100);
	assert_string_equal(l.v[0].id, "INC-20261125-105");
	kx_incident_list_release(&l);
}

/* ---- timeline ---- */

static void timeline_add_and_list(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, other;
	struct kx_timeline_entry e[3] = {
		{0, T0, "alice", "declared", "declared P1: Checkout is down"},
		{0, T0 + 10 * MIN, "bob", "status", "status investigating → identified"},
		/* backdated note: listed by time, not by insertion */
		{0, T0 + 5 * MIN, "carol", "note", "saw errors earlier\nsecond line"},
	};
	struct kx_timeline_entry stray = {0, T0, "x", "note", "other incident"};
	struct kx_timeline tl;
	struct kx_tx *tx;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	make_incident(&other, T0, 2, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	insert(f, &other);
	tx = begin(f, true);
	for (int i = 0; i < 3; i++) {
		OK(kx_store_timeline_add(tx, inc.id, &e[i], &f->err));
		assert_true(e[i].id > 0);
		if (i)
			assert_true(e[i].id > e[i - 1].id);
	}
	OK(kx_store_timeline_add(tx, other.id, &stray, &f->err));
	commit(f, tx);
	tx = begin(f, false);
	OK(kx_store_timeline_list(tx, inc.id, &tl, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(tl.n, 3);
	assert_string_equal(tl.v[0].text, "declared P1: Checkout is down");
	assert_string_equal(tl.v[1].author, "carol");
	assert_string_equal(tl.v[1].kind, "note");
	assert_string_equal(tl.v[1].text, "saw errors earlier\nsecond line");
	assert_true(tl.v[1].at == T0 + 5 * MIN);
	assert_true(tl.v[1].id == e[2].id);
	assert_string_equal(tl.v[2].text, "status investigating → identified");
	kx_timeline_release(&tl);
	assert_int_equal(tl.n, 0);
	/* same instant: insertion order */
	tx = begin(f, true);
	{
		struct kx_timeline_entry a = {0, T0 + 20 * MIN, "a", "note", "first"};
		struct kx_timeline_entry b = {0, T0 + 20 * MIN, "b", "note", "second"};
		OK(kx_store_timeline_add(tx, inc.id, &a, &f->err));
		OK(kx_store_timeline_add(tx, inc.id, &b, &f->err));
	}
	commit(f, tx);
	tx = begin(f, false);
	OK(kx_store_timeline_list(tx, inc.id, &tl, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(tl.n, 5);
	assert_string_equal(tl.v[3].text, "first");
	assert_string_equal(tl.v[4].text, "second");
	kx_timeline_release(&tl);
	kx_incident_release(&inc);
	kx_incident_release(&other);
}

static void timeline_of_unknown_incident_is_empty(void **state)
{
	struct fixture *f = *state;
	struct kx_timeline tl;
	struct kx_tx *tx = begin(f, false);
	OK(kx_store_timeline_list(tx, "INC-20261125-001", &tl, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(tl.n, 0);
	kx_timeline_release(&tl);
}

/* ---- action items ---- */

static void action_items_numbered_per_incident(void **state)
{
	struct fixture *f = *state;
	struct kx_incident a, b;
	struct kx_action_item item, back;
	struct kx_action_items list;
	struct kx_tx *tx;
	static const char *const titles[] = {"Add 5xx alert", "Rotate certs", "Write runbook"};
	make_incident(&a, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	make_incident(&b, T0, 2, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &a);
	insert(f, &b);
	tx = begin(f, true);
	for (int i = 0; i < 3; i++) {
		memset(&item, 0, sizeof(item));
		item.title = (char *)titles[i];
		item.kind = (enum kx_item_kind)i;
		item.owner = i == 0 ? "carol" : NULL;
		if (i == 1)
			snprintf(item.due, sizeof(item.due), "2026-12-01");
		item.created_at = T0 + i * MIN;
		item.done_at = KX_TIME_UNSET;
		OK(kx_store_action_item_add(tx, a.id, &item, &f->err));
		assert_true(item.number == i + 1);
	}
	memset(&item, 0, sizeof(item));
	item.title = "Other incident's item";
	item.created_at = T0;
	item.done_at = KX_TIME_UNSET;
	OK(kx_store_action_item_add(tx, b.id, &item, &f->err));
	assert_true(item.number == 1);
	commit(f, tx);

	tx = begin(f, false);
	OK(kx_store_action_item_list(tx, a.id, &list, &f->err));
	assert_int_equal(list.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(list.v[i].number == i + 1);
		assert_string_equal(list.v[i].title, titles[i]);
		assert_int_equal(list.v[i].kind, i);
		assert_false(list.v[i].done);
		assert_true(list.v[i].created_at == T0 + i * MIN);
		assert_true(list.v[i].done_at == KX_TIME_UNSET);
	}
	assert_string_equal(list.v[0].owner, "carol");
	assert_null(list.v[1].owner);
	assert_string_equal(list.v[1].due, "2026-12-01");
	assert_string_equal(list.v[0].due, "");
	kx_action_items_release(&list);
	OK(kx_store_action_item_get(tx, a.id, 2, &back, &f->err));
	assert_string_equal(back.title, "Rotate certs");
	kx_action_item_release(&back);
	assert_int_equal(kx_store_action_item_get(tx, a.id, 4, &back, &f->err), KX_ENOTFOUND);
	assert_int_equal(kx_store_action_item_get(tx, "INC-20261125-009", 1, &back, &f->err),
			 KX_ENOTFOUND);
	kx_store_rollback(tx);
	kx_incident_release(&a);
	kx_incident_release(&b);
}

static void action_item_update(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc;
	struct kx_action_item item, back;
	struct kx_tx *tx;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	memset(&item, 0, sizeof(item));
	item.title = "Add alert";
	item.kind = KX_ITEM_DETECT;
	item.created_at = T0;
	item.done_at = KX_TIME_UNSET;
	tx = begin(f, true);
	OK(kx_store_action_item_add(tx, inc.id, &item, &f->err));
	item.done = true;
	item.done_at = T0 + DAY;
	item.owner = "dave";
	OK(kx_store_action_item_update(tx, inc.id, &item, &f->err));
	commit(f, tx);
	tx = begin(f, false);
	OK(kx_store_action_item_get(tx, inc.id, item.number, &back, &f->err));
	kx_store_rollback(tx);
	assert_true(back.done);
	assert_true(back.done_at == T0 + DAY);
	assert_string_equal(back.owner, "dave");
	assert_int_equal(back.kind, KX_ITEM_DETECT);
	kx_action_item_release(&back);
	kx_incident_release(&inc);
}

/* ---- tokens ---- */

static void make_token(struct kx_token *t, const char *secret, const char *name,
		       enum kx_access role, kx_ms at)
{
	kx_token_init(t);
	kx_random_id("tok_", t->id, sizeof(t->id));
	kx_hash(secret, strlen(secret), t->hash);
	t->name = strdup(name);
	t->role = role;
	t->created_at = at;
}

static void tokens_insert_lookup_list(void **state)
{
	struct fixture *f = *state;
	struct kx_token admin, scoped, back;
	struct kx_tokens list;
	struct kx_tx *tx;
	uint8_t h[KX_HASH_LEN];
	int64_t n = -1;
	assert_int_equal(kx_secret_init(), 0);
	make_token(&admin, "kx_admin-secret", "bootstrap", KX_ACCESS_ADMIN, T0);
	make_token(&scoped, "kx_scoped-secret", "acme-bot", KX_ACCESS_RESPONDER, T0 + MIN);
	scoped.created_by = strdup(admin.id);
	assert_int_equal(kx_labels_add_pair(&scoped.scope, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&scoped.scope, "env=prod", NULL), 0);
	tx = begin(f, true);
	OK(kx_store_token_count(tx, &n, &f->err));
	assert_true(n == 0);
	OK(kx_store_token_insert(tx, &admin, &f->err));
	OK(kx_store_token_insert(tx, &scoped, &f->err));
	OK(kx_store_token_count(tx, &n, &f->err));
	assert_true(n == 2);
	commit(f, tx);

	tx = begin(f, false);
	kx_hash("kx_scoped-secret", strlen("kx_scoped-secret"), h);
	OK(kx_store_token_by_hash(tx, h, &back, &f->err));
	assert_string_equal(back.id, scoped.id);
	assert_string_equal(back.name, "acme-bot");
	assert_int_equal(back.role, KX_ACCESS_RESPONDER);
	assert_string_equal(back.created_by, admin.id);
	assert_true(back.created_at == T0 + MIN);
	assert_true(back.revoked_at == KX_TIME_UNSET);
	assert_memory_equal(back.hash, scoped.hash, KX_HASH_LEN);
	assert_int_equal(back.scope.n, 2);
	assert_string_equal(kx_labels_get(&back.scope, "client"), "acme");
	kx_token_release(&back);

	kx_hash("kx_wrong", 8, h);
	assert_int_equal(kx_store_token_by_hash(tx, h, &back, &f->err), KX_ENOTFOUND);

	OK(kx_store_token_get(tx, admin.id, &back, &f->err));
	assert_string_equal(back.name, "bootstrap");
	assert_null(back.created_by);
	assert_int_equal(back.scope.n, 0);
	kx_token_release(&back);
	assert_int_equal(kx_store_token_get(tx, "tok_0000000000000000", &back, &f->err),
			 KX_ENOTFOUND);

	OK(kx_store_token_list(tx, &list, &f->err));
	assert_int_equal(list.n, 2);
	assert_string_equal(list.v[0].name, "bootstrap"); /* oldest first */
	assert_string_equal(list.v[1].name, "acme-bot");
	assert_int_equal(list.v[1].scope.n, 2);
	kx_tokens_release(&list);
	kx_store_rollback(tx);

	/* a second token with the same hash clashes */
	tx = begin(f, true);
	kx_token_release(&admin);
	make_token(&admin, "kx_scoped-secret", "dup", KX_ACCESS_VIEWER, T0);
	assert_int_equal(kx_store_token_insert(tx, &admin, &f->err), KX_ECONFLICT);
	kx_store_rollback(tx);

	kx_token_release(&admin);
	kx_token_release(&scoped);
}

static void tokens_revoke_twice_is_conflict(void **state)
{
	struct fixture *f = *state;
	struct kx_token t, back;
	struct kx_tx *tx;
	assert_int_equal(kx_secret_init(), 0);
	make_token(&t, "kx_secret", "ci", KX_ACCESS_VIEWER, T0);
	tx = begin(f, true);
	OK(kx_store_token_insert(tx, &t, &f->err));
	commit(f, tx);
	tx = begin(f, true);
	OK(kx_store_token_revoke(tx, t.id, T0 + DAY, &f->err));
	commit(f, tx);
	tx = begin(f, true);
	assert_int_equal(kx_store_token_revoke(tx, t.id, T0 + 2 * DAY, &f->err), KX_ECONFLICT);
	assert_contains(f->err.msg, "already revoked");
	kx_store_rollback(tx);
	tx = begin(f, false);
	OK(kx_store_token_get(tx, t.id, &back, &f->err));
	kx_store_rollback(tx);
	assert_true(back.revoked_at == T0 + DAY); /* the first revocation stands */
	kx_token_release(&back);
	kx_token_release(&t);
}

/* store.h: a missing row is KX_ENOTFOUND. */
static void tokens_revoke_missing_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct kx_tx *tx = begin(f, true);
	int rc = kx_store_token_revoke(tx, "tok_0123456789abcdef", T0, &f->err);
	kx_store_rollback(tx);
	if (rc != KX_ENOTFOUND)
		fail_msg("revoking a missing token gave %d (%s), expected KX_ENOTFOUND", rc,
			 f->err.msg);
}

/* ---- concurrency basics ---- */

static void readers_and_writer_together(void **state)
{
	struct fixture *f = *state;
	struct kx_tx *r[4], *w;
	struct kx_incident inc, back;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	/* every reader connection in use while a write commits */
	for (int i = 0; i < 4; i++)
		r[i] = begin(f, false);
	w = begin(f, true);
	OK(kx_store_incident_insert(w, &inc, &f->err));
	commit(f, w);
	for (int i = 0; i < 4; i++)
		kx_store_rollback(r[i]);
	get(f, inc.id, &back);
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

/* ---- PostgreSQL: opening ---- */

static void open_applies_migrations_once(void **state)
{
	struct fixture *f = *state;
	struct kx_store *again = NULL;
	struct kx_incident inc, back;
	char uri[2048];
	size_t n = 0;
	assert_string_equal(kx_store_backend_name(f->store), "postgres");
	OK(kx_store_ping(f->store, &f->err));
	while (kx_postgres_migrations[n].sql)
		n++;
	assert_true(n >= 1);
	assert_int_equal(query_int(f->url, "SELECT count(*) FROM schema_migrations"), (long long)n);
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	/* a second open (nothing left to apply), through the URI form */
	snprintf(uri, sizeof(uri), "%s", server_url);
	if (strncmp(server_url, "postgres://", 11) == 0) {
		char *slash = strrchr(uri, '/'), *q = strchr(server_url + 11, '?');
		if (slash > uri + 11)
			snprintf(slash, sizeof(uri) - (size_t)(slash - uri), "/%s%s", f->db, q ? q : "");
	} else {
		snprintf(uri, sizeof(uri), "%s", f->url);
	}
	OK(kx_store_open(uri, &again, &f->err));
	OK(kx_store_ping(again, &f->err));
	kx_store_free(f->store);
	f->store = again;
	assert_int_equal(query_int(f->url, "SELECT count(*) FROM schema_migrations"), (long long)n);
	get(f, inc.id, &back);
	assert_string_equal(back.title, "Checkout is down");
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

struct opener {
	const char *url;
	int rc;
	char msg[512];
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	o->rc = kx_store_open(o->url, &s, &err);
	snprintf(o->msg, sizeof(o->msg), "%s", err.msg);
	kx_store_free(s);
	return NULL;
}

/* Daemons starting together on an empty database: one migrates, the others
 * wait for it, none fails. */
static void open_concurrently_on_empty_database(void **state)
{
	char db[64], url[2048];
	struct opener o[4];
	pthread_t th[4];
	(void)state;
	new_db(db, url, sizeof(url));
	for (int i = 0; i < 4; i++) {
		o[i].url = url;
		assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (o[i].rc)
			fail_msg("open %d: %s", i, o[i].msg);
	}
	assert_true(query_int(url, "SELECT count(*) FROM schema_migrations") >= 1);
	assert_int_equal(query_int(url, "SELECT count(DISTINCT version) - count(*) "
					"FROM schema_migrations"),
			 0);
	drop_db(db);
}

static void open_urls(void **state)
{
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	const struct kx_store_backend *pg = &kx_store_postgres;
	kx_ms t0;
	(void)state;
	assert_true(pg->accepts("postgres://u@h/db"));
	assert_true(pg->accepts("postgresql://u@h/db"));
	assert_true(pg->accepts("postgres:host=/tmp dbname=x"));
	assert_true(pg->accepts("postgresql:dbname=x"));
	assert_false(pg->accepts("sqlite:/tmp/x.db"));
	assert_false(pg->accepts("postgresx://h/db"));
	assert_false(pg->accepts("mysql://h/db"));
	/* the generic message names both kinds */
	assert_int_equal(kx_store_open("mysql://h/db", &s, &err), KX_EINVAL);
	assert_contains(err.msg, "postgres://");
	/* a malformed keyword string, and the password stays out of messages */
	assert_int_equal(kx_store_open("postgres:host=x password=hunter2 'oops", &s, &err),
			 KX_EINVAL);
	assert_prefix(err.msg, "invalid database URL: ");
	assert_not_contains(err.msg, "hunter2");
	assert_int_equal(kx_store_open("postgres://u:hunter2@[::1/db", &s, &err), KX_EINVAL);
	assert_not_contains(err.msg, "hunter2");
	/* nobody listening: unavailable, quickly */
	t0 = mono_ms();
	assert_int_equal(kx_store_open("postgres://u:hunter2@127.0.0.1:1/klaxon", &s, &err),
			 KX_EUNAVAIL);
	assert_prefix(err.msg, "database unavailable: ");
	assert_not_contains(err.msg, "hunter2");
	assert_true(mono_ms() - t0 < 5000);
}

/* ---- PostgreSQL: statements and transactions ---- */

/* A failed statement aborts the transaction: later calls and the commit
 * fail, and nothing of it is stored. */
static void failed_statement_leaves_only_rollback(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, other, back;
	struct kx_tx *tx;
	int64_t seq;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	make_incident(&other, T0, 2, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	tx = begin(f, true);
	OK(kx_store_incident_insert(tx, &other, &f->err));
	assert_int_equal(kx_store_incident_insert(tx, &inc, &f->err), KX_ECONFLICT);
	assert_contains(f->err.msg, "conflicting change");
	assert_int_equal(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err), KX_ESTORE);
	assert_int_not_equal(kx_store_commit(tx, &f->err), 0);
	tx = begin(f, false);
	kx_incident_init(&back);
	assert_int_equal(kx_store_incident_get(tx, other.id, &back, &f->err), KX_ENOTFOUND);
	kx_store_rollback(tx);
	kx_incident_release(&inc);
	kx_incident_release(&other);
}

/* Statements are prepared once per connection; a rollback (or a failed
 * statement) must not lose them for the next transaction on it. */
static void prepared_statements_outlive_rollbacks(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc;
	struct kx_tx *tx;
	int64_t seq = 0;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	for (int i = 0; i < 3; i++) {
		tx = begin(f, true);
		OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
		OK(kx_store_incident_insert(tx, &inc, &f->err));
		if (i == 1) /* a duplicate: the statement fails, the transaction aborts */
			assert_int_equal(kx_store_incident_insert(tx, &inc, &f->err), KX_ECONFLICT);
		kx_store_rollback(tx);
	}
	tx = begin(f, true);
	OK(kx_store_incident_next_seq(tx, "20261125", &seq, &f->err));
	assert_true(seq == 1);
	OK(kx_store_incident_insert(tx, &inc, &f->err));
	commit(f, tx);
	kx_incident_release(&inc);
}

/* Values that must survive the trip as they are: quotes, backslashes,
 * braces and commas (lists travel as text[] parameters), SQL. */
static void awkward_values_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	struct kx_incident_filter flt;
	struct kx_incident_list l;
	struct kx_tx *tx;
	static const char *const odd[] = {"a\"b", "c\\d", "{e,f}", "'); DROP TABLE incidents; --",
					  "NULL", " spaced ", "ünï"};
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	free(inc.title);
	inc.title = strdup("'; DROP TABLE incidents; -- \\x00 \"quoted\"");
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%zu", i);
		assert_int_equal(kx_labels_set(&inc.labels, key, odd[i], NULL), 0);
		assert_int_equal(kx_incident_add_type(&inc, odd[i]), 0);
		assert_int_equal(kx_incident_add_role(&inc, "sme", odd[i]), 0);
	}
	insert(f, &inc);
	get(f, inc.id, &back);
	assert_same_incident(&inc, &back);
	kx_incident_release(&back);
	/* and as filter values */
	memset(&flt, 0, sizeof(flt));
	kx_labels_init(&flt.labels);
	flt.declared_since = KX_TIME_UNSET;
	assert_int_equal(kx_labels_set(&flt.labels, "k0", "a\"b", NULL), 0);
	assert_int_equal(kx_labels_set(&flt.labels, "k3", odd[3], NULL), 0);
	tx = begin(f, false);
	OK(kx_store_incident_list(tx, &flt, &l, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(l.n, 1);
	assert_same_incident(&inc, &l.v[0]);
	kx_incident_list_release(&l);
	kx_labels_release(&flt.labels);
	kx_incident_release(&inc);
}

/* A read transaction sees one snapshot, whatever commits meanwhile. */
static void read_transaction_is_a_snapshot(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	struct kx_tx *r, *w;
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	r = begin(f, false);
	OK(kx_store_incident_get(r, inc.id, &back, &f->err));
	kx_incident_release(&back);
	w = begin(f, true);
	inc.version = 2;
	free(inc.title);
	inc.title = strdup("changed");
	assert_int_equal(kx_labels_add_pair(&inc.labels, "env=prod", NULL), 0);
	OK(kx_store_incident_update(w, &inc, 1, &f->err));
	commit(f, w);
	OK(kx_store_incident_get(r, inc.id, &back, &f->err));
	assert_true(back.version == 1);
	assert_string_equal(back.title, "Checkout is down");
	assert_int_equal(back.labels.n, 0);
	kx_incident_release(&back);
	kx_store_rollback(r);
	get(f, inc.id, &back);
	assert_true(back.version == 2);
	assert_int_equal(back.labels.n, 1);
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

/* ---- PostgreSQL: several daemons on one database ---- */

struct worker {
	const char *url;
	const char *id; /* the incident, for the change workers */
	int n;
	int64_t got[200];
	int errors;
	char msg[512];
};

static void worker_fail(struct worker *w, const struct kx_err *err)
{
	if (!w->errors++)
		snprintf(w->msg, sizeof(w->msg), "%s", err->msg);
}

static void *seq_thread(void *arg)
{
	struct worker *w = arg;
	struct kx_store *s;
	struct kx_err err = {0};
	if (kx_store_open(w->url, &s, &err)) {
		worker_fail(w, &err);
		return NULL;
	}
	for (int i = 0; i < w->n; i++) {
		struct kx_tx *tx;
		if (kx_store_begin(s, true, &tx, &err)) {
			worker_fail(w, &err);
			continue;
		}
		if (kx_store_incident_next_seq(tx, "20261125", &w->got[i], &err)) {
			worker_fail(w, &err);
			kx_store_rollback(tx);
			continue;
		}
		if (kx_store_commit(tx, &err))
			worker_fail(w, &err);
	}
	kx_store_free(s);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Two daemons numbering incidents of the same day at once: 1..200, each once. */
static void next_seq_from_two_daemons(void **state)
{
	struct fixture *f = *state;
	struct worker w[2];
	pthread_t th[2];
	int64_t all[200];
	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].url = f->url;
		w[i].n = 100;
		assert_int_equal(pthread_create(&th[i], NULL, seq_thread, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors)
			fail_msg("worker %d: %d errors, first: %s", i, w[i].errors, w[i].msg);
		memcpy(all + 100 * i, w[i].got, 100 * sizeof(*all));
	}
	qsort(all, 200, sizeof(*all), cmp_i64);
	for (int i = 0; i < 200; i++)
		assert_true(all[i] == i + 1);
}

/* A change as the service makes it: read (locking), change, write, log. */
static void *change_thread(void *arg)
{
	struct worker *w = arg;
	struct kx_store *s;
	struct kx_err err = {0};
	if (kx_store_open(w->url, &s, &err)) {
		worker_fail(w, &err);
		return NULL;
	}
	for (int i = 0; i < w->n; i++) {
		struct kx_incident inc;
		struct kx_timeline_entry e = {0, T0 + i, "bot", "note", "changed"};
		struct kx_action_item a = {0};
		struct kx_tx *tx;
		int64_t version;
		if (kx_store_begin(s, true, &tx, &err)) {
			worker_fail(w, &err);
			continue;
		}
		if (kx_store_incident_get(tx, w->id, &inc, &err)) {
			worker_fail(w, &err);
			kx_store_rollback(tx);
			continue;
		}
		version = inc.version++;
		inc.updated_at++;
		a.title = "item";
		a.created_at = T0;
		a.done_at = KX_TIME_UNSET;
		if (kx_store_incident_update(tx, &inc, version, &err) ||
		    kx_store_timeline_add(tx, w->id, &e, &err) ||
		    kx_store_action_item_add(tx, w->id, &a, &err)) {
			worker_fail(w, &err);
			kx_store_rollback(tx);
		} else if (kx_store_commit(tx, &err)) { /* frees tx either way */
			worker_fail(w, &err);
		} else {
			w->got[i] = a.number;
		}
		kx_incident_release(&inc);
	}
	kx_store_free(s);
	return NULL;
}

/* Two daemons changing one incident at the same time: every change waits
 * for the one before (the row lock) instead of failing on its version. */
static void concurrent_changes_serialize(void **state)
{
	struct fixture *f = *state;
	struct kx_incident inc, back;
	struct kx_action_items items;
	struct kx_timeline tl;
	struct kx_tx *tx;
	struct worker w[2];
	pthread_t th[2];
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].url = f->url;
		w[i].id = inc.id;
		w[i].n = 50;
		assert_int_equal(pthread_create(&th[i], NULL, change_thread, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors)
			fail_msg("worker %d: %d errors, first: %s", i, w[i].errors, w[i].msg);
	}
	get(f, inc.id, &back);
	assert_true(back.version == 101);
	kx_incident_release(&back);
	tx = begin(f, false);
	OK(kx_store_timeline_list(tx, inc.id, &tl, &f->err));
	OK(kx_store_action_item_list(tx, inc.id, &items, &f->err));
	kx_store_rollback(tx);
	assert_int_equal(tl.n, 100);
	assert_int_equal(items.n, 100);
	for (size_t i = 0; i < items.n; i++)
		assert_true(items.v[i].number == (int64_t)i + 1);
	kx_timeline_release(&tl);
	kx_action_items_release(&items);
	kx_incident_release(&inc);
}

struct bootstrapper {
	const char *url;
	bool created;
	int rc;
	char msg[512];
};

static void *bootstrap_thread(void *arg)
{
	struct bootstrapper *b = arg;
	struct kx_store *s;
	struct kx_err err = {0};
	struct kx_tx *tx;
	struct kx_token t;
	int64_t n = 0;
	char secret[64];
	kx_token_init(&t);
	if ((b->rc = kx_store_open(b->url, &s, &err)))
		goto out;
	if (!(b->rc = kx_store_begin(s, true, &tx, &err))) {
		if (!(b->rc = kx_store_token_count(tx, &n, &err)) && n == 0) {
			sleep_ms(100); /* widen the window */
			snprintf(secret, sizeof(secret), "kx_boot_%p", (void *)b);
			kx_random_id("tok_", t.id, sizeof(t.id));
			kx_hash(secret, strlen(secret), t.hash);
			t.name = strdup("admin");
			t.role = KX_ACCESS_ADMIN;
			t.created_at = T0;
			b->rc = kx_store_token_insert(tx, &t, &err);
			b->created = !b->rc;
		}
		if (b->rc)
			kx_store_rollback(tx);
		else
			b->rc = kx_store_commit(tx, &err);
	}
	kx_store_free(s);
out:
	snprintf(b->msg, sizeof(b->msg), "%s", err.msg);
	kx_token_release(&t);
	return NULL;
}

/* Two daemons bootstrapping on an empty store make one admin token. */
static void token_bootstrap_happens_once(void **state)
{
	struct fixture *f = *state;
	struct bootstrapper b[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		b[i].url = f->url;
		assert_int_equal(pthread_create(&th[i], NULL, bootstrap_thread, &b[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (b[i].rc)
			fail_msg("bootstrap %d: %s", i, b[i].msg);
	}
	assert_true(b[0].created != b[1].created);
	assert_int_equal(query_int(f->url, "SELECT count(*) FROM tokens"), 1);
}

/* ---- PostgreSQL: jobs, singletons, the change feed ---- */

static void jobs_lease_and_finish(void **state)
{
	struct fixture *f = *state;
	struct kx_store *other;
	struct kx_jobs a, b;
	struct kx_tx *tx;
	int64_t id = 0;
	OK(kx_store_open(f->url, &other, &f->err));
	tx = begin(f, true);
	OK(kx_store_job_enqueue(tx, "webhook", "{\"n\":1}", T0, &id, &f->err));
	OK(kx_store_job_enqueue(tx, "webhook", "{\"n\":2}", T0 + 1, NULL, &f->err));
	OK(kx_store_job_enqueue(tx, "later", "{}", T0 + DAY, NULL, &f->err));
	commit(f, tx);
	assert_true(id > 0);
	OK(kx_store_job_claim(f->store, "one", T0 + 10, 1000, 1, &a, &f->err));
	assert_int_equal(a.n, 1);
	assert_true(a.v[0].id == id);
	assert_string_equal(a.v[0].payload, "{\"n\":1}");
	assert_int_equal(a.v[0].attempts, 1);
	assert_true(a.v[0].lease_until == T0 + 1010);
	/* the other daemon gets the next due one, not the leased one */
	OK(kx_store_job_claim(other, "two", T0 + 10, 1000, 10, &b, &f->err));
	assert_int_equal(b.n, 1);
	assert_string_equal(b.v[0].payload, "{\"n\":2}");
	assert_int_equal(kx_store_job_finish(other, a.v[0].id, "two", &f->err), KX_ECONFLICT);
	OK(kx_store_job_finish(f->store, a.v[0].id, "one", &f->err));
	OK(kx_store_job_retry(other, b.v[0].id, "two", T0 + 5000, &f->err));
	kx_jobs_release(&a);
	kx_jobs_release(&b);
	OK(kx_store_job_claim(f->store, "one", T0 + 4999, 1000, 10, &a, &f->err));
	assert_int_equal(a.n, 0);
	kx_jobs_release(&a);
	OK(kx_store_job_claim(f->store, "one", T0 + 5000, 1000, 10, &a, &f->err));
	assert_int_equal(a.n, 1);
	assert_int_equal(a.v[0].attempts, 2);
	kx_jobs_release(&a);
	kx_store_free(other);
}

static void singleton_held_by_one_daemon(void **state)
{
	struct fixture *f = *state;
	struct kx_store *other;
	bool got = false;
	OK(kx_store_open(f->url, &other, &f->err));
	OK(kx_store_singleton_try(f->store, "escalations", &got, &f->err));
	assert_true(got);
	OK(kx_store_singleton_try(f->store, "escalations", &got, &f->err));
	assert_true(got); /* still ours */
	OK(kx_store_singleton_try(other, "escalations", &got, &f->err));
	assert_false(got);
	OK(kx_store_singleton_try(other, "heartbeats", &got, &f->err));
	assert_true(got);
	kx_store_free(f->store); /* releases it */
	f->store = other;
	OK(kx_store_singleton_try(other, "escalations", &got, &f->err));
	assert_true(got);
}

struct feed {
	pthread_mutex_t lock;
	int notes, resets;
	char last[128];
};

static void on_change(const char *topic, const char *payload, void *arg)
{
	struct feed *fd = arg;
	pthread_mutex_lock(&fd->lock);
	if (strcmp(topic, "*") == 0) {
		fd->resets++;
	} else {
		fd->notes++;
		snprintf(fd->last, sizeof(fd->last), "%s/%s", topic, payload);
	}
	pthread_mutex_unlock(&fd->lock);
}

static int feed_count(struct feed *fd, bool resets)
{
	int n;
	pthread_mutex_lock(&fd->lock);
	n = resets ? fd->resets : fd->notes;
	pthread_mutex_unlock(&fd->lock);
	return n;
}

/* Waits up to ms for the count to reach want; returns the count. */
static int feed_wait(struct feed *fd, bool resets, int want, int ms)
{
	kx_ms end = mono_ms() + ms;
	while (feed_count(fd, resets) < want && mono_ms() < end)
		sleep_ms(5);
	return feed_count(fd, resets);
}

static void notify(struct fixture *f, struct kx_store *s, const char *topic, const char *payload,
		   bool keep)
{
	struct kx_tx *tx;
	OK(kx_store_begin(s, true, &tx, &f->err));
	OK(kx_store_notify(tx, topic, payload, &f->err));
	if (keep)
		commit(f, tx);
	else
		kx_store_rollback(tx);
}

/* Committed notifications reach this daemon's subscribers once, at commit,
 * and the other daemon's soon after; rolled-back ones reach nobody. */
static void change_feed_across_daemons(void **state)
{
	struct fixture *f = *state;
	struct kx_store *other;
	struct feed mine = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};
	struct feed theirs = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};
	OK(kx_store_open(f->url, &other, &f->err));
	OK(kx_store_subscribe(f->store, on_change, &mine, &f->err));
	OK(kx_store_subscribe(other, on_change, &theirs, &f->err));
	notify(f, f->store, "tokens", "rolled-back", false);
	notify(f, f->store, "tokens", "tok_1", true);
	assert_int_equal(feed_count(&mine, false), 1); /* delivered by the commit itself */
	assert_int_equal(feed_wait(&theirs, false, 1, 2000), 1);
	assert_string_equal(theirs.last, "tokens/tok_1");
	notify(f, other, "switch:deploys", "off", true);
	assert_int_equal(feed_wait(&mine, false, 2, 2000), 2);
	assert_string_equal(mine.last, "switch:deploys/off");
	sleep_ms(200); /* nothing more comes: no echo of our own, no rollback */
	assert_int_equal(feed_count(&mine, false), 2);
	assert_int_equal(feed_count(&theirs, false), 2);
	assert_int_equal(feed_count(&mine, true), 0);
	kx_store_free(other);
}

/* ---- PostgreSQL: the server goes away and comes back ---- */

static void server_restart_under_an_open_store(void **state)
{
	struct fixture *f = *state;
	struct kx_store *other;
	struct feed fd = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};
	struct kx_tx *tx[3];
	struct kx_incident inc, back;
	bool got = false;
	char url[1024];
	kx_ms t0;
	int rc;

	if (!server_dir[0])
		skip(); /* not our server to stop */
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	OK(kx_store_subscribe(f->store, on_change, &fd, &f->err));
	OK(kx_store_singleton_try(f->store, "escalations", &got, &f->err));
	assert_true(got);
	/* three pooled connections, idle when the server goes */
	for (int i = 0; i < 3; i++)
		tx[i] = begin(f, false);
	for (int i = 0; i < 3; i++)
		kx_store_rollback(tx[i]);

	assert_int_equal(server("stop", NULL, 0), 0);
	t0 = mono_ms();
	rc = kx_store_ping(f->store, &f->err);
	assert_int_equal(rc, KX_EUNAVAIL);
	assert_prefix(f->err.msg, "database unavailable: ");
	assert_true(mono_ms() - t0 < 5000);
	assert_int_equal(kx_store_begin(f->store, true, &tx[0], &f->err), KX_EUNAVAIL);
	assert_prefix(f->err.msg, "database unavailable: ");
	assert_int_equal(kx_store_singleton_try(f->store, "escalations", &got, &f->err),
			 KX_EUNAVAIL);

	assert_int_equal(server("start", url, sizeof(url)), 0);
	assert_string_equal(url, server_url); /* same place */
	/* no reopening: the store finds the server again by itself */
	OK(kx_store_ping(f->store, &f->err));
	for (int i = 0; i < 3; i++)
		tx[i] = begin(f, false);
	for (int i = 0; i < 3; i++) {
		OK(kx_store_incident_get(tx[i], inc.id, &back, &f->err));
		kx_incident_release(&back);
		kx_store_rollback(tx[i]);
	}
	tx[0] = begin(f, true);
	OK(kx_store_incident_get(tx[0], inc.id, &back, &f->err));
	back.version++;
	OK(kx_store_incident_update(tx[0], &back, inc.version, &f->err));
	commit(f, tx[0]);
	kx_incident_release(&back);
	/* singletons are taken again (nobody else wanted them) */
	OK(kx_store_singleton_try(f->store, "escalations", &got, &f->err));
	assert_true(got);
	/* the feed reconnected, said so, and hears other daemons again */
	assert_true(feed_wait(&fd, true, 1, 5000) >= 1);
	OK(kx_store_open(f->url, &other, &f->err));
	notify(f, other, "tokens", "after-restart", true);
	assert_int_equal(feed_wait(&fd, false, 1, 2000), 1);
	assert_string_equal(fd.last, "tokens/after-restart");
	kx_store_free(other);
	kx_incident_release(&inc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(open_applies_migrations_once),
		cmocka_unit_test(open_concurrently_on_empty_database),
		cmocka_unit_test(open_urls),
		TEST(next_seq_counts_per_day),
		TEST(next_seq_goes_past_999),
		TEST(incident_round_trip_full),
		TEST(incident_round_trip_minimal),
		TEST(incident_get_missing),
		TEST(incident_insert_duplicate_is_conflict),
		TEST(incident_update_round_trip),
		TEST(incident_update_stale_version_changes_nothing),
		TEST(incident_update_missing_is_conflict),
		TEST(rollback_discards),
		TEST(list_newest_first),
		TEST(list_filters),
		TEST(list_label_filters),
		TEST(list_empty_store),
		TEST(list_default_limit),
		TEST(timeline_add_and_list),
		TEST(timeline_of_unknown_incident_is_empty),
		TEST(action_items_numbered_per_incident),
		TEST(action_item_update),
		TEST(tokens_insert_lookup_list),
		TEST(tokens_revoke_twice_is_conflict),
		TEST(tokens_revoke_missing_is_not_found),
		TEST(readers_and_writer_together),
		TEST(failed_statement_leaves_only_rollback),
		TEST(prepared_statements_outlive_rollbacks),
		TEST(awkward_values_round_trip),
		TEST(read_transaction_is_a_snapshot),
		TEST(next_seq_from_two_daemons),
		TEST(concurrent_changes_serialize),
		TEST(token_bootstrap_happens_once),
		TEST(jobs_lease_and_finish),
		TEST(singleton_held_by_one_daemon),
		TEST(change_feed_across_daemons),
		TEST(server_restart_under_an_open_store),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
