/* test_store_sqlite.c — store/ with the SQLite backend, each test on a
 * fresh database in its own temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "lib/secret.h"
#include "store/store.h"

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */
#define MIN 60000
#define DAY 86400000

struct fixture {
	char dir[64];
	char url[128];
	struct kx_store *store;
	struct kx_err err;
};

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/kx-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->url, sizeof(f->url), "sqlite:%s/klaxon.db", f->dir);
	if (kx_store_open(f->url, &f->store, &f->err)) {
		fprintf(stderr, "cannot open %s: %s\n", f->url, f->err.msg);
		remove_tree(f->dir);
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
	remove_tree(f->dir);
	free(f);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

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

/* ---- opening ---- */

static void open_applies_migrations_idempotently(void **state)
{
	struct fixture *f = *state;
	struct kx_store *again = NULL;
	struct kx_incident inc, back;
	assert_string_equal(kx_store_backend_name(f->store), "sqlite");
	OK(kx_store_ping(f->store, &f->err));
	make_incident(&inc, T0, 1, "P1", KX_STATUS_INVESTIGATING);
	insert(f, &inc);
	/* a second open of the same file (migrations already applied) */
	OK(kx_store_open(f->url, &again, &f->err));
	OK(kx_store_ping(again, &f->err));
	kx_store_free(f->store);
	f->store = again;
	get(f, inc.id, &back);
	assert_string_equal(back.title, "Checkout is down");
	kx_incident_release(&back);
	kx_incident_release(&inc);
}

static void open_refuses_bad_urls(void **state)
{
	struct kx_store *s = NULL;
	struct kx_err err = {0};
	(void)state;
	assert_int_equal(kx_store_open("mysql://localhost/klaxon", &s, &err), KX_EINVAL);
	assert_contains(err.msg, "unsupported database URL");
	assert_int_equal(kx_store_open("sqlite:", &s, &err), KX_EINVAL);
	assert_contains(err.msg, "has no path");
	assert_int_equal(kx_store_open("sqlite:/nonexistent-dir-kx/sub/klaxon.db", &s, &err), KX_EIO);
	assert_contains(err.msg, "cannot open database");
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

/* Regression (was a bug in store/sqlite/sqlite.c, sq_token_revoke): store.h promises
 * KX_ENOTFOUND for a missing row, but revoking an ID that does not exist
 * answers KX_ECONFLICT "token '…' is already revoked". (The service looks
 * the token up first, so the HTTP API is not affected.) */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(open_applies_migrations_idempotently),
		cmocka_unit_test(open_refuses_bad_urls),
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
