/* test_incident.c — core/incident: statuses, IDs, roles, field checks and
 * every kx_incident_apply_* change with its timestamps and timeline text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/incident.h"
#include "helpers.h"

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */
#define MIN 60000

/* A freshly declared incident as the service builds it. */
struct fixture {
	struct kx_incident inc;
	struct kx_buf text;
	struct kx_err err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	kx_incident_init(&f->inc);
	kx_incident_id_format(f->inc.id, T0, 1);
	f->inc.title = strdup("Checkout is down");
	f->inc.severity = strdup("P2");
	f->inc.created_by = strdup("alice");
	f->inc.status = KX_STATUS_INVESTIGATING;
	f->inc.detected_at = T0 - 5 * MIN;
	f->inc.declared_at = T0;
	f->inc.updated_at = T0;
	f->inc.version = 1;
	kx_buf_init(&f->text, 64 * 1024);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kx_incident_release(&f->inc);
	kx_buf_release(&f->text);
	free(f);
	return 0;
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const char *text(struct fixture *f)
{
	return kx_buf_str(&f->text);
}

/* Moves to status `to` (expecting success) and returns the text. */
static const char *move(struct fixture *f, enum kx_status to, kx_ms now)
{
	kx_buf_clear(&f->text);
	if (kx_incident_apply_status(&f->inc, to, NULL, now, &f->text, &f->err))
		fail_msg("move to %s refused: %s", kx_status_name(to), f->err.msg);
	return text(f);
}

/* ---- statuses ---- */

static void status_names_round_trip(void **state)
{
	static const char *const names[] = {"investigating", "identified", "monitoring",
					    "resolved"};
	struct kx_err err = {0};
	(void)state;
	for (int i = 0; i < 4; i++) {
		enum kx_status s = KX_STATUS_RESOLVED;
		assert_string_equal(kx_status_name((enum kx_status)i), names[i]);
		assert_int_equal(kx_status_parse(names[i], &s, &err), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(KX_STATUS_INVESTIGATING, 0);
	assert_string_equal(kx_status_name((enum kx_status)17), "unknown");
}

static void status_parse_refuses_unknown(void **state)
{
	static const char *const bad[] = {"closed", "Resolved", "", "resolved ", "open", NULL};
	struct kx_err err = {0};
	enum kx_status s;
	(void)state;
	for (const char *const *b = bad; *b; b++)
		if (kx_status_parse(*b, &s, &err) != KX_EINVAL)
			fail_msg("status '%s' accepted", *b);
	kx_status_parse("closed", &s, &err);
	assert_contains(err.msg, "'closed'");
}

static void status_check_matrix(void **state)
{
	/* allowed[from][to] */
	static const bool allowed[4][4] = {
		/*                 inv    ident  mon    res  */
		/* investigating */ {false, true, true, true},
		/* identified    */ {true, false, true, true},
		/* monitoring    */ {true, true, false, true},
		/* resolved      */ {true, false, false, false},
	};
	(void)state;
	for (int from = 0; from < 4; from++) {
		for (int to = 0; to < 4; to++) {
			struct kx_err err = {0};
			int rc = kx_status_check((enum kx_status)from, (enum kx_status)to, &err);
			if (allowed[from][to] && rc != 0)
				fail_msg("%s → %s refused: %s", kx_status_name((enum kx_status)from),
					 kx_status_name((enum kx_status)to), err.msg);
			if (!allowed[from][to] && rc != KX_ECONFLICT)
				fail_msg("%s → %s gave %d, expected a conflict",
					 kx_status_name((enum kx_status)from),
					 kx_status_name((enum kx_status)to), rc);
			if (rc)
				assert_true(strlen(err.msg) > 0);
		}
	}
}

static void status_check_messages(void **state)
{
	struct kx_err err = {0};
	(void)state;
	kx_status_check(KX_STATUS_MONITORING, KX_STATUS_MONITORING, &err);
	assert_string_equal(err.msg, "incident is already monitoring");
	kx_status_check(KX_STATUS_RESOLVED, KX_STATUS_IDENTIFIED, &err);
	assert_contains(err.msg, "reopen");
}

/* ---- IDs ---- */

static void id_format(void **state)
{
	char id[KX_INCIDENT_ID_MAX], day[9];
	(void)state;
	kx_incident_id_format(id, T0, 7);
	assert_string_equal(id, "INC-20261125-007");
	kx_incident_id_format(id, T0, 1);
	assert_string_equal(id, "INC-20261125-001");
	kx_incident_id_format(id, T0, 999);
	assert_string_equal(id, "INC-20261125-999");
	kx_incident_id_format(id, T0, 1000);
	assert_string_equal(id, "INC-20261125-1000");
	kx_incident_id_format(id, T0, 123456);
	assert_string_equal(id, "INC-20261125-123456");
	kx_incident_day_key(day, T0);
	assert_string_equal(day, "20261125");
}

static void id_day_boundaries_are_utc(void **state)
{
	char id[KX_INCIDENT_ID_MAX], day[9];
	(void)state;
	kx_incident_day_key(day, T("2026-11-25T23:59:59.999Z"));
	assert_string_equal(day, "20261125");
	kx_incident_day_key(day, T("2026-11-26T00:00:00Z"));
	assert_string_equal(day, "20261126");
	/* 01:00 in Paris is still the 25th in UTC */
	kx_incident_day_key(day, T("2026-11-26T00:30:00+01:00"));
	assert_string_equal(day, "20261125");
	kx_incident_id_format(id, T("2024-02-29T12:00:00Z"), 42);
	assert_string_equal(id, "INC-20240229-042");
	kx_incident_day_key(day, T("2026-01-01T00:00:00Z"));
	assert_string_equal(day, "20260101");
}

static void id_valid(void **state)
{
	static const char *const good[] = {"INC-20261125-001", "INC-20261125-007",
					   "INC-20261125-999", "INC-20261125-1000",
					   "INC-20240229-001", "INC-20261125-123456789", NULL};
	static const char *const bad[] = {
		"",
		"INC-20261125-01",    /* too short */
		"INC-20261125-0001",  /* padded beyond three digits */
		"INC-20261125-01000",
		"INC-20260230-001",   /* no such date */
		"INC-20261325-001",
		"INC-20261100-001",
		"INC-20250229-001",
		"inc-20261125-001",
		"INC_20261125-001",
		"INC-20261125_001",
		"INC-2026112-0001",
		"INC-20261125-00a",
		"INC-2026-11-25-001",
		"INC-20261125-001 ",
		" INC-20261125-001",
		"INC-20261125-1234567890", /* too long */
		"INC-20261125--01",
		"INC-20261125-+01",
		"XYZ-20261125-001",
		NULL};
	(void)state;
	for (const char *const *s = good; *s; s++)
		if (!kx_incident_id_valid(*s))
			fail_msg("'%s' should be valid", *s);
	for (const char *const *s = bad; *s; s++)
		if (kx_incident_id_valid(*s))
			fail_msg("'%s' should be invalid", *s);
}

static void id_format_output_is_valid(void **state)
{
	static const int64_t seqs[] = {1, 9, 10, 99, 100, 999, 1000, 1001, 99999};
	char id[KX_INCIDENT_ID_MAX];
	(void)state;
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		kx_incident_id_format(id, T0, seqs[i]);
		if (!kx_incident_id_valid(id))
			fail_msg("formatted id '%s' is not valid", id);
	}
}

/* ---- roles ---- */

static void roles_table(void **state)
{
	size_t n = 0;
	(void)state;
	for (; kx_roles[n]; n++)
		assert_true(kx_role_valid(kx_roles[n]));
	assert_int_equal(n, 6);
	assert_true(kx_role_valid("commander"));
	assert_true(kx_role_valid("sme"));
	assert_false(kx_role_valid("Commander"));
	assert_false(kx_role_valid("ceo"));
	assert_false(kx_role_valid(""));
	assert_true(kx_role_multi("sme"));
	assert_false(kx_role_multi("commander"));
	assert_false(kx_role_multi("scribe"));
	assert_string_equal(kx_role_title("commander"), "Incident commander");
	assert_string_equal(kx_role_title("ops_lead"), "Ops lead");
	assert_string_equal(kx_role_title("tech_lead"), "Tech lead");
	assert_string_equal(kx_role_title("comms_lead"), "Comms lead");
	assert_string_equal(kx_role_title("scribe"), "Scribe");
	assert_string_equal(kx_role_title("sme"), "Subject-matter expert");
	assert_string_equal(kx_role_title("other"), "other");
}

static void item_kinds(void **state)
{
	struct kx_err err = {0};
	enum kx_item_kind k = KX_ITEM_MITIGATE;
	(void)state;
	assert_string_equal(kx_item_kind_name(KX_ITEM_MITIGATE), "mitigate");
	assert_string_equal(kx_item_kind_name(KX_ITEM_PREVENT), "prevent");
	assert_string_equal(kx_item_kind_name(KX_ITEM_DETECT), "detect");
	assert_string_equal(kx_item_kind_name((enum kx_item_kind)9), "unknown");
	assert_int_equal(kx_item_kind_parse("detect", &k, &err), 0);
	assert_int_equal(k, KX_ITEM_DETECT);
	assert_int_equal(kx_item_kind_parse("prevent", &k, &err), 0);
	assert_int_equal(k, KX_ITEM_PREVENT);
	assert_int_equal(kx_item_kind_parse("fix", &k, &err), KX_EINVAL);
	assert_contains(err.msg, "'fix'");
}

/* ---- field checks ---- */

static void title_length_counts_characters(void **state)
{
	struct kx_err err = {0};
	char *a200 = repeat("a", 200), *a201 = repeat("a", 201);
	char *e200 = repeat("\xc3\xa9", 200), *e201 = repeat("\xc3\xa9", 201);
	char *emoji200 = repeat("\xf0\x9f\x94\xa5", 200);
	(void)state;
	assert_int_equal(kx_check_title(a200, &err), 0);
	assert_int_equal(kx_check_title(a201, &err), KX_EINVAL);
	assert_contains(err.msg, "201 characters");
	/* 400 bytes but 200 characters */
	assert_int_equal(kx_check_title(e200, &err), 0);
	assert_int_equal(kx_check_title(e201, &err), KX_EINVAL);
	assert_int_equal(kx_check_title(emoji200, &err), 0);
	free(a200);
	free(a201);
	free(e200);
	free(e201);
	free(emoji200);
}

static void title_content(void **state)
{
	struct kx_err err = {0};
	(void)state;
	assert_int_equal(kx_check_title("Checkout is down", &err), 0);
	assert_int_equal(kx_check_title("", &err), KX_EINVAL);
	assert_contains(err.msg, "'title' is empty");
	assert_int_equal(kx_check_title("two\nlines", &err), KX_EINVAL);
	assert_int_equal(kx_check_title("tab\there", &err), KX_EINVAL);
	assert_int_equal(kx_check_title("bad \xff byte", &err), KX_EINVAL);
	assert_contains(err.msg, "invalid UTF-8");
}

static void text_and_name_checks(void **state)
{
	struct kx_err err = {0};
	char *t16k = repeat("x", KX_TEXT_MAX), *t16k1 = repeat("x", KX_TEXT_MAX + 1);
	char *n128 = repeat("n", KX_NAME_MAX), *n129 = repeat("n", KX_NAME_MAX + 1);
	(void)state;
	assert_int_equal(kx_check_text("summary", t16k, &err), 0);
	assert_int_equal(kx_check_text("summary", t16k1, &err), KX_EINVAL);
	assert_contains(err.msg, "'summary'");
	assert_int_equal(kx_check_text("summary", "", &err), 0);
	assert_int_equal(kx_check_text("summary", "line 1\nline 2\r\n\tindented", &err), 0);
	assert_int_equal(kx_check_text("note", "bell\x07", &err), KX_EINVAL);
	assert_contains(err.msg, "'note'");
	assert_int_equal(kx_check_name("person", n128, &err), 0);
	assert_int_equal(kx_check_name("person", n129, &err), KX_EINVAL);
	assert_int_equal(kx_check_name("person", "", &err), KX_EINVAL);
	assert_contains(err.msg, "'person' is empty");
	assert_int_equal(kx_check_name("owner", "bob\nsmith", &err), KX_EINVAL);
	assert_int_equal(kx_check_name("owner", "Zo\xc3\xab", &err), 0);
	free(t16k);
	free(t16k1);
	free(n128);
	free(n129);
}

/* ---- types and role holders ---- */

static void types_list(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_add_type(&f->inc, "OUTAGE"), 0);
	assert_int_equal(kx_incident_add_type(&f->inc, "DEPLOY"), 0);
	assert_int_equal(kx_incident_add_type(&f->inc, "OUTAGE"), 0); /* no duplicate */
	assert_int_equal(f->inc.ntypes, 2);
	assert_string_equal(f->inc.types[0], "OUTAGE");
	assert_string_equal(f->inc.types[1], "DEPLOY");
	assert_true(kx_incident_has_type(&f->inc, "DEPLOY"));
	assert_false(kx_incident_has_type(&f->inc, "deploy"));
	kx_incident_clear_types(&f->inc);
	assert_int_equal(f->inc.ntypes, 0);
	assert_false(kx_incident_has_type(&f->inc, "OUTAGE"));
}

static void role_holders(void **state)
{
	struct fixture *f = *state;
	assert_null(kx_incident_role_person(&f->inc, "commander"));
	assert_int_equal(kx_incident_add_role(&f->inc, "commander", "alice"), 0);
	assert_string_equal(kx_incident_role_person(&f->inc, "commander"), "alice");
	assert_null(kx_incident_role_person(&f->inc, "scribe"));
}

static void init_state(void **state)
{
	struct kx_incident inc;
	(void)state;
	kx_incident_init(&inc);
	assert_true(inc.started_at == KX_TIME_UNSET);
	assert_true(inc.detected_at == KX_TIME_UNSET);
	assert_true(inc.declared_at == KX_TIME_UNSET);
	assert_true(inc.acknowledged_at == KX_TIME_UNSET);
	assert_true(inc.mitigated_at == KX_TIME_UNSET);
	assert_true(inc.resolved_at == KX_TIME_UNSET);
	assert_true(inc.updated_at == KX_TIME_UNSET);
	assert_true(inc.impact.users == -1);
	assert_true(inc.impact.accounts == -1);
	assert_true(inc.impact.actions == -1);
	assert_null(inc.impact.revenue);
	assert_int_equal(inc.labels.n, 0);
	kx_incident_release(&inc);
	kx_incident_release(&inc); /* release leaves it initialised */
}

/* ---- status changes ---- */

static void apply_status_moves_and_describes(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_status(&f->inc, KX_STATUS_IDENTIFIED, NULL, T0 + MIN,
						  &f->text, &f->err),
			 0);
	assert_int_equal(f->inc.status, KX_STATUS_IDENTIFIED);
	assert_string_equal(text(f), "status investigating → identified");
	assert_true(f->inc.version == 2);
	assert_true(f->inc.updated_at == T0 + MIN);
	assert_true(f->inc.mitigated_at == KX_TIME_UNSET);
	assert_true(f->inc.resolved_at == KX_TIME_UNSET);
	assert_true(f->inc.acknowledged_at == KX_TIME_UNSET);
}

static void apply_status_with_note(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_status(&f->inc, KX_STATUS_IDENTIFIED,
						  "bad deploy of payments-api", T0 + MIN, &f->text,
						  &f->err),
			 0);
	assert_string_equal(text(f), "status investigating → identified: bad deploy of payments-api");
	kx_buf_clear(&f->text);
	/* an empty note adds nothing */
	assert_int_equal(kx_incident_apply_status(&f->inc, KX_STATUS_INVESTIGATING, "", T0 + 2 * MIN,
						  &f->text, &f->err),
			 0);
	assert_string_equal(text(f), "status identified → investigating");
}

static void apply_status_monitoring_sets_mitigated_once(void **state)
{
	struct fixture *f = *state;
	move(f, KX_STATUS_MONITORING, T0 + 10 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 10 * MIN);
	move(f, KX_STATUS_IDENTIFIED, T0 + 20 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 10 * MIN);
	move(f, KX_STATUS_MONITORING, T0 + 30 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 10 * MIN);
	move(f, KX_STATUS_RESOLVED, T0 + 40 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 10 * MIN);
	assert_true(f->inc.version == 5);
}

static void apply_status_resolved_sets_resolved_and_mitigated(void **state)
{
	struct fixture *f = *state;
	const char *t = move(f, KX_STATUS_RESOLVED, T0 + 30 * MIN);
	assert_string_equal(t, "status investigating → resolved");
	assert_int_equal(f->inc.status, KX_STATUS_RESOLVED);
	assert_true(f->inc.resolved_at == T0 + 30 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 30 * MIN);
	assert_true(f->inc.updated_at == T0 + 30 * MIN);
}

static void apply_status_reopen_clears_resolved(void **state)
{
	struct fixture *f = *state;
	const char *t;
	move(f, KX_STATUS_RESOLVED, T0 + 30 * MIN);
	t = move(f, KX_STATUS_INVESTIGATING, T0 + 40 * MIN);
	assert_string_equal(t, "reopened: status resolved → investigating");
	assert_int_equal(f->inc.status, KX_STATUS_INVESTIGATING);
	assert_true(f->inc.resolved_at == KX_TIME_UNSET);
	/* mitigation happened; reopening does not undo the record of it */
	assert_true(f->inc.mitigated_at == T0 + 30 * MIN);
	assert_true(f->inc.version == 3);
}

static void apply_status_refusals_change_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_status(&f->inc, KX_STATUS_INVESTIGATING, NULL, T0 + MIN,
						  &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "already investigating");
	assert_true(f->inc.version == 1);
	assert_true(f->inc.updated_at == T0);
	move(f, KX_STATUS_RESOLVED, T0 + 2 * MIN);
	kx_buf_clear(&f->text);
	for (int to = KX_STATUS_IDENTIFIED; to <= KX_STATUS_RESOLVED; to++) {
		assert_int_equal(kx_incident_apply_status(&f->inc, (enum kx_status)to, NULL, T0 + 3 * MIN,
							  &f->text, &f->err),
				 KX_ECONFLICT);
		assert_int_equal(f->inc.status, KX_STATUS_RESOLVED);
		assert_true(f->inc.resolved_at == T0 + 2 * MIN);
		assert_true(f->inc.version == 2);
	}
	/* a note with control characters is refused before anything moves */
	assert_int_equal(kx_incident_apply_status(&f->inc, KX_STATUS_INVESTIGATING, "bad\x01note",
						  T0 + 4 * MIN, &f->text, &f->err),
			 KX_EINVAL);
	assert_int_equal(f->inc.status, KX_STATUS_RESOLVED);
	assert_string_equal(text(f), "");
}

/* ---- severity ---- */

static void apply_severity(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_severity(&f->inc, "P1", NULL, T0 + MIN, &f->text, &f->err),
			 0);
	assert_string_equal(f->inc.severity, "P1");
	assert_string_equal(text(f), "severity P2 → P1");
	assert_true(f->inc.version == 2);
	assert_true(f->inc.updated_at == T0 + MIN);
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_severity(&f->inc, "P0", "customer data exposed",
						    T0 + 2 * MIN, &f->text, &f->err),
			 0);
	assert_string_equal(text(f), "severity P1 → P0: customer data exposed");
}

static void apply_severity_same_is_refused(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_severity(&f->inc, "P2", NULL, T0 + MIN, &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "already P2");
	assert_true(f->inc.version == 1);
	assert_string_equal(text(f), "");
}

/* ---- roles ---- */

static void apply_role_commander_acknowledges_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "alice", false, T0 + MIN,
						&f->text, &f->err),
			 0);
	assert_string_equal(text(f), "alice is Incident commander");
	assert_string_equal(kx_incident_role_person(&f->inc, "commander"), "alice");
	assert_true(f->inc.acknowledged_at == T0 + MIN);
	assert_true(f->inc.version == 2);
	/* a new commander replaces the old one; acknowledgement stays */
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "bob", false, T0 + 5 * MIN,
						&f->text, &f->err),
			 0);
	assert_string_equal(text(f), "bob is Incident commander");
	assert_string_equal(kx_incident_role_person(&f->inc, "commander"), "bob");
	assert_int_equal(f->inc.nroles, 1);
	assert_true(f->inc.acknowledged_at == T0 + MIN);
	assert_true(f->inc.updated_at == T0 + 5 * MIN);
	assert_true(f->inc.version == 3);
}

static void apply_role_other_roles_do_not_acknowledge(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_role(&f->inc, "scribe", "carol", false, T0 + MIN,
						&f->text, &f->err),
			 0);
	assert_string_equal(text(f), "carol is Scribe");
	assert_true(f->inc.acknowledged_at == KX_TIME_UNSET);
}

static void apply_role_commander_after_ack(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_ack(&f->inc, "dave", T0 + MIN, &f->text, &f->err), 0);
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "alice", false, T0 + 9 * MIN,
						&f->text, &f->err),
			 0);
	assert_true(f->inc.acknowledged_at == T0 + MIN);
}

static void apply_role_single_holder_replaced(void **state)
{
	struct fixture *f = *state;
	static const char *const single[] = {"ops_lead", "tech_lead", "comms_lead", "scribe"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(kx_incident_apply_role(&f->inc, single[i], "first", false, T0,
							&f->text, &f->err),
				 0);
		assert_int_equal(kx_incident_apply_role(&f->inc, single[i], "second", false, T0,
							&f->text, &f->err),
				 0);
		assert_string_equal(kx_incident_role_person(&f->inc, single[i]), "second");
	}
	assert_int_equal(f->inc.nroles, 4);
}

static void apply_role_sme_holds_many(void **state)
{
	struct fixture *f = *state;
	size_t n = 0;
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "erin", false, T0 + MIN, &f->text,
						&f->err),
			 0);
	assert_string_equal(text(f), "erin is Subject-matter expert");
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "frank", false, T0 + MIN, &f->text,
						&f->err),
			 0);
	for (size_t i = 0; i < f->inc.nroles; i++)
		if (strcmp(f->inc.roles[i].role, "sme") == 0)
			n++;
	assert_int_equal(n, 2);
	/* the same person twice is a conflict */
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "erin", false, T0 + MIN, &f->text,
						&f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "'erin' is already sme");
	assert_true(f->inc.version == 3);
}

static void apply_role_same_single_holder_is_conflict(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "alice", false, T0, &f->text,
						&f->err),
			 0);
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "alice", false, T0 + MIN,
						&f->text, &f->err),
			 KX_ECONFLICT);
	assert_true(f->inc.version == 2);
}

static void apply_role_remove(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "erin", false, T0, &f->text,
						&f->err),
			 0);
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "frank", false, T0, &f->text,
						&f->err),
			 0);
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "erin", true, T0 + MIN, &f->text,
						&f->err),
			 0);
	assert_string_equal(text(f), "erin removed as Subject-matter expert");
	assert_int_equal(f->inc.nroles, 1);
	assert_string_equal(kx_incident_role_person(&f->inc, "sme"), "frank");
	assert_true(f->inc.version == 4);
	assert_true(f->inc.updated_at == T0 + MIN);
	/* removing someone who does not hold the role */
	assert_int_equal(kx_incident_apply_role(&f->inc, "sme", "erin", true, T0 + 2 * MIN,
						&f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "'erin' is not sme");
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "frank", true, T0 + 2 * MIN,
						&f->text, &f->err),
			 KX_ECONFLICT);
	assert_true(f->inc.version == 4);
}

static void apply_role_refusals(void **state)
{
	struct fixture *f = *state;
	char *long_name = repeat("z", KX_NAME_MAX + 1);
	assert_int_equal(kx_incident_apply_role(&f->inc, "ceo", "alice", false, T0, &f->text,
						&f->err),
			 KX_EINVAL);
	assert_contains(f->err.msg, "unknown role 'ceo'");
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "", false, T0, &f->text,
						&f->err),
			 KX_EINVAL);
	assert_contains(f->err.msg, "'person' is empty");
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", long_name, false, T0,
						&f->text, &f->err),
			 KX_EINVAL);
	assert_int_equal(kx_incident_apply_role(&f->inc, "commander", "al\nice", false, T0,
						&f->text, &f->err),
			 KX_EINVAL);
	assert_int_equal(f->inc.nroles, 0);
	assert_true(f->inc.version == 1);
	assert_true(f->inc.acknowledged_at == KX_TIME_UNSET);
	assert_string_equal(text(f), "");
	free(long_name);
}

/* ---- ack ---- */

static void apply_ack(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_ack(&f->inc, "dave", T0 + 3 * MIN, &f->text, &f->err), 0);
	assert_string_equal(text(f), "acknowledged by dave");
	assert_true(f->inc.acknowledged_at == T0 + 3 * MIN);
	assert_true(f->inc.version == 2);
	assert_int_equal(kx_incident_apply_ack(&f->inc, "erin", T0 + 4 * MIN, &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "already acknowledged");
	assert_true(f->inc.acknowledged_at == T0 + 3 * MIN);
	assert_true(f->inc.version == 2);
}

/* ---- impact ---- */

static struct kx_impact no_impact(void)
{
	struct kx_impact in = {-1, -1, -1, NULL, NULL};
	return in;
}

static void apply_impact_all_fields(void **state)
{
	struct fixture *f = *state;
	struct kx_impact in = {10, 20, 30, "$5k", "checkout failed for EU users"};
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0 + MIN, &f->text, &f->err), 0);
	assert_string_equal(text(f),
			    "impact: 10 users, 20 accounts, 30 actions, revenue $5k, checkout failed "
			    "for EU users");
	assert_true(f->inc.impact.users == 10);
	assert_true(f->inc.impact.accounts == 20);
	assert_true(f->inc.impact.actions == 30);
	assert_string_equal(f->inc.impact.revenue, "$5k");
	assert_string_equal(f->inc.impact.description, "checkout failed for EU users");
	assert_true(f->inc.version == 2);
	assert_true(f->inc.updated_at == T0 + MIN);
}

static void apply_impact_partial_keeps_the_rest(void **state)
{
	struct fixture *f = *state;
	struct kx_impact in = {10, 20, 30, "$5k", "first"};
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0 + MIN, &f->text, &f->err), 0);
	in = no_impact();
	in.accounts = 0;
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0 + 2 * MIN, &f->text, &f->err), 0);
	assert_string_equal(text(f), "impact: 0 accounts");
	assert_true(f->inc.impact.users == 10);
	assert_true(f->inc.impact.accounts == 0);
	assert_true(f->inc.impact.actions == 30);
	assert_string_equal(f->inc.impact.revenue, "$5k");
	assert_string_equal(f->inc.impact.description, "first");
	in = no_impact();
	in.revenue = "about $12k";
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0 + 3 * MIN, &f->text, &f->err), 0);
	assert_string_equal(text(f), "impact: revenue about $12k");
	assert_string_equal(f->inc.impact.revenue, "about $12k");
	assert_true(f->inc.version == 4);
}

static void apply_impact_refusals(void **state)
{
	struct fixture *f = *state;
	struct kx_impact in = no_impact();
	char *r64 = repeat("$", KX_REVENUE_MAX), *r65 = repeat("$", KX_REVENUE_MAX + 1);
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), KX_EINVAL);
	assert_contains(f->err.msg, "no impact given");
	in.revenue = r65;
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), KX_EINVAL);
	assert_contains(f->err.msg, "'revenue'");
	in.revenue = "";
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), KX_EINVAL);
	in.revenue = "a\nb";
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), KX_EINVAL);
	in = no_impact();
	in.users = 5;
	in.description = "bad\x02";
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), KX_EINVAL);
	/* refusals happen before anything is stored */
	assert_true(f->inc.impact.users == -1);
	assert_null(f->inc.impact.revenue);
	assert_true(f->inc.version == 1);
	assert_string_equal(text(f), "");
	in = no_impact();
	in.revenue = r64;
	assert_int_equal(kx_incident_apply_impact(&f->inc, &in, T0, &f->text, &f->err), 0);
	free(r64);
	free(r65);
}

/* ---- resolve and reopen ---- */

static void apply_resolve(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "rolled back payments-api",
						   "a bad config push", T0 + 45 * MIN, &f->text,
						   &f->err),
			 0);
	assert_string_equal(text(f), "resolved: rolled back payments-api");
	assert_int_equal(f->inc.status, KX_STATUS_RESOLVED);
	assert_true(f->inc.resolved_at == T0 + 45 * MIN);
	assert_true(f->inc.mitigated_at == T0 + 45 * MIN);
	assert_string_equal(f->inc.resolution, "rolled back payments-api");
	assert_string_equal(f->inc.root_cause, "a bad config push");
	assert_true(f->inc.version == 2);
	assert_true(f->inc.updated_at == T0 + 45 * MIN);
}

static void apply_resolve_keeps_earlier_mitigation(void **state)
{
	struct fixture *f = *state;
	move(f, KX_STATUS_MONITORING, T0 + 20 * MIN);
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "fixed", NULL, T0 + 45 * MIN, &f->text,
						   &f->err),
			 0);
	assert_true(f->inc.mitigated_at == T0 + 20 * MIN);
	assert_true(f->inc.resolved_at == T0 + 45 * MIN);
	assert_null(f->inc.root_cause); /* not given, not invented */
}

static void apply_resolve_refusals(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_resolve(&f->inc, NULL, NULL, T0, &f->text, &f->err),
			 KX_EINVAL);
	assert_contains(f->err.msg, "'resolution' is required");
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "", NULL, T0, &f->text, &f->err),
			 KX_EINVAL);
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "ok", "bad\x01", T0, &f->text, &f->err),
			 KX_EINVAL);
	assert_int_equal(f->inc.status, KX_STATUS_INVESTIGATING);
	assert_true(f->inc.version == 1);
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "fixed", NULL, T0 + MIN, &f->text,
						   &f->err),
			 0);
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "fixed again", NULL, T0 + 2 * MIN,
						   &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "already resolved");
	assert_string_equal(f->inc.resolution, "fixed");
	assert_true(f->inc.resolved_at == T0 + MIN);
	assert_true(f->inc.version == 2);
}

static void apply_reopen(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "fixed", NULL, T0 + MIN, &f->text,
						   &f->err),
			 0);
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_reopen(&f->inc, "errors are back", T0 + 9 * MIN, &f->text,
						  &f->err),
			 0);
	assert_string_equal(text(f), "reopened: status resolved → investigating: errors are back");
	assert_int_equal(f->inc.status, KX_STATUS_INVESTIGATING);
	assert_true(f->inc.resolved_at == KX_TIME_UNSET);
	assert_true(f->inc.updated_at == T0 + 9 * MIN);
	assert_true(f->inc.version == 3);
	/* and it can be resolved again */
	assert_int_equal(kx_incident_apply_resolve(&f->inc, "fixed for real", NULL, T0 + 20 * MIN,
						   &f->text, &f->err),
			 0);
	assert_true(f->inc.resolved_at == T0 + 20 * MIN);
}

static void apply_reopen_without_note(void **state)
{
	struct fixture *f = *state;
	move(f, KX_STATUS_RESOLVED, T0 + MIN);
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_reopen(&f->inc, NULL, T0 + 2 * MIN, &f->text, &f->err), 0);
	assert_string_equal(text(f), "reopened: status resolved → investigating");
}

static void apply_reopen_refused_when_not_resolved(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kx_incident_apply_reopen(&f->inc, NULL, T0 + MIN, &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "not resolved (it is investigating)");
	move(f, KX_STATUS_MONITORING, T0 + MIN);
	assert_int_equal(kx_incident_apply_reopen(&f->inc, NULL, T0 + 2 * MIN, &f->text, &f->err),
			 KX_ECONFLICT);
	assert_contains(f->err.msg, "it is monitoring");
	assert_true(f->inc.version == 2);
}

/* ---- edits ---- */

static struct kx_incident_edit no_edit(void)
{
	struct kx_incident_edit e;
	memset(&e, 0, sizeof(e));
	return e;
}

static void apply_edit_nothing_is_refused(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0 + MIN, &f->text, &f->err),
			 KX_EINVAL);
	assert_contains(f->err.msg, "nothing to change");
	assert_true(f->inc.version == 1);
}

static void apply_edit_fields(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	e.title = "Checkout fails in EU";
	e.summary = "Payments API returned 500s\nfor EU cards.";
	e.root_cause = "expired certificate";
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0 + MIN, &f->text, &f->err), 0);
	assert_string_equal(f->inc.title, "Checkout fails in EU");
	assert_string_equal(f->inc.summary, "Payments API returned 500s\nfor EU cards.");
	assert_string_equal(f->inc.root_cause, "expired certificate");
	assert_string_equal(text(f), "edited title: Checkout fails in EU; summary; root cause: "
				     "expired certificate");
	assert_true(f->inc.version == 2);
	assert_true(f->inc.updated_at == T0 + MIN);
}

static void apply_edit_types(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	static const char *const types[] = {"OUTAGE", "DEPLOY", "OUTAGE"};
	assert_int_equal(kx_incident_add_type(&f->inc, "SAFETY"), 0);
	e.set_types = true;
	e.types = types;
	e.ntypes = 3;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0 + MIN, &f->text, &f->err), 0);
	assert_int_equal(f->inc.ntypes, 2);
	assert_string_equal(f->inc.types[0], "OUTAGE");
	assert_string_equal(f->inc.types[1], "DEPLOY");
	assert_false(kx_incident_has_type(&f->inc, "SAFETY"));
	assert_contains(text(f), "edited types: OUTAGE DEPLOY");
	/* an empty list clears the types */
	e.ntypes = 0;
	kx_buf_clear(&f->text);
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0 + 2 * MIN, &f->text, &f->err),
			 0);
	assert_int_equal(f->inc.ntypes, 0);
	assert_string_equal(text(f), "edited types: none");
}

static void apply_edit_labels(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	struct kx_labels set;
	static const char *const unset[] = {"env"};
	kx_labels_init(&set);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "env=prod", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&set, "platform=instagram", NULL), 0);
	e.labels_set = &set;
	e.labels_unset = unset;
	e.nunset = 1;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0 + MIN, &f->text, &f->err), 0);
	assert_null(kx_labels_get(&f->inc.labels, "env"));
	assert_string_equal(kx_labels_get(&f->inc.labels, "platform"), "instagram");
	assert_string_equal(kx_labels_get(&f->inc.labels, "client"), "acme");
	assert_string_equal(text(f), "edited label -env; label platform=instagram");
	assert_true(f->inc.version == 2);
	kx_labels_release(&set);
}

static void apply_edit_within_scope(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	struct kx_labels scope;
	kx_labels_init(&scope);
	assert_int_equal(kx_labels_add_pair(&scope, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "client=acme", NULL), 0);
	e.title = "Renamed";
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, &scope, T0 + MIN, &f->text, &f->err), 0);
	assert_string_equal(f->inc.title, "Renamed");
	kx_labels_release(&scope);
}

static void apply_edit_removing_scope_label_is_forbidden(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	struct kx_labels scope;
	static const char *const unset[] = {"client"};
	kx_labels_init(&scope);
	assert_int_equal(kx_labels_add_pair(&scope, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "client=acme", NULL), 0);
	e.labels_unset = unset;
	e.nunset = 1;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, &scope, T0 + MIN, &f->text, &f->err),
			 KX_EFORBIDDEN);
	assert_int_equal(f->err.code, KX_EFORBIDDEN);
	assert_contains(f->err.msg, "scope");
	assert_true(f->inc.version == 1);
	assert_true(f->inc.updated_at == T0);
	kx_labels_release(&scope);
}

static void apply_edit_changing_scope_label_is_forbidden(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	struct kx_labels scope, set;
	kx_labels_init(&scope);
	kx_labels_init(&set);
	assert_int_equal(kx_labels_add_pair(&scope, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&f->inc.labels, "client=acme", NULL), 0);
	assert_int_equal(kx_labels_add_pair(&set, "client=globex", NULL), 0);
	e.labels_set = &set;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, &scope, T0 + MIN, &f->text, &f->err),
			 KX_EFORBIDDEN);
	assert_true(f->inc.version == 1);
	kx_labels_release(&scope);
	kx_labels_release(&set);
}

static void apply_edit_refusals(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	char *t201 = repeat("\xc3\xa9", 201);
	static const char *const bad_unset[] = {"Bad Key"};
	e.title = t201;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), KX_EINVAL);
	e.title = "";
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), KX_EINVAL);
	e = no_edit();
	e.summary = "nul-free but \x1b escape";
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), KX_EINVAL);
	assert_contains(f->err.msg, "'summary'");
	e = no_edit();
	e.root_cause = "\xff";
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), KX_EINVAL);
	assert_contains(f->err.msg, "'root_cause'");
	e = no_edit();
	e.labels_unset = bad_unset;
	e.nunset = 1;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), KX_EINVAL);
	assert_string_equal(f->inc.title, "Checkout is down");
	assert_true(f->inc.version == 1);
	free(t201);
}

static void apply_edit_title_of_200_characters(void **state)
{
	struct fixture *f = *state;
	struct kx_incident_edit e = no_edit();
	char *t200 = repeat("\xe2\x82\xac", 200);
	e.title = t200;
	assert_int_equal(kx_incident_apply_edit(&f->inc, &e, NULL, T0, &f->text, &f->err), 0);
	assert_string_equal(f->inc.title, t200);
	free(t200);
}

/* ---- timeline entries and items ---- */

static void entry_and_item_release(void **state)
{
	struct kx_timeline_entry e = {0};
	struct kx_action_item a = {0};
	(void)state;
	e.author = strdup("alice");
	e.kind = strdup("note");
	e.text = strdup("hello");
	kx_timeline_entry_release(&e);
	assert_null(e.text);
	a.title = strdup("add an alert");
	a.owner = strdup("bob");
	kx_action_item_release(&a);
	assert_null(a.title);
	assert_null(a.owner);
	kx_action_item_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_names_round_trip),
		cmocka_unit_test(status_parse_refuses_unknown),
		cmocka_unit_test(status_check_matrix),
		cmocka_unit_test(status_check_messages),
		cmocka_unit_test(id_format),
		cmocka_unit_test(id_day_boundaries_are_utc),
		cmocka_unit_test(id_valid),
		cmocka_unit_test(id_format_output_is_valid),
		cmocka_unit_test(roles_table),
		cmocka_unit_test(item_kinds),
		cmocka_unit_test(title_length_counts_characters),
		cmocka_unit_test(title_content),
		cmocka_unit_test(text_and_name_checks),
		cmocka_unit_test(init_state),
		TEST(types_list),
		TEST(role_holders),
		TEST(apply_status_moves_and_describes),
		TEST(apply_status_with_note),
		TEST(apply_status_monitoring_sets_mitigated_once),
		TEST(apply_status_resolved_sets_resolved_and_mitigated),
		TEST(apply_status_reopen_clears_resolved),
		TEST(apply_status_refusals_change_nothing),
		TEST(apply_severity),
		TEST(apply_severity_same_is_refused),
		TEST(apply_role_commander_acknowledges_once),
		TEST(apply_role_other_roles_do_not_acknowledge),
		TEST(apply_role_commander_after_ack),
		TEST(apply_role_single_holder_replaced),
		TEST(apply_role_sme_holds_many),
		TEST(apply_role_same_single_holder_is_conflict),
		TEST(apply_role_remove),
		TEST(apply_role_refusals),
		TEST(apply_ack),
		TEST(apply_impact_all_fields),
		TEST(apply_impact_partial_keeps_the_rest),
		TEST(apply_impact_refusals),
		TEST(apply_resolve),
		TEST(apply_resolve_keeps_earlier_mitigation),
		TEST(apply_resolve_refusals),
		TEST(apply_reopen),
		TEST(apply_reopen_without_note),
		TEST(apply_reopen_refused_when_not_resolved),
		TEST(apply_edit_nothing_is_refused),
		TEST(apply_edit_fields),
		TEST(apply_edit_types),
		TEST(apply_edit_labels),
		TEST(apply_edit_within_scope),
		TEST(apply_edit_removing_scope_label_is_forbidden),
		TEST(apply_edit_changing_scope_label_is_forbidden),
		TEST(apply_edit_refusals),
		TEST(apply_edit_title_of_200_characters),
		cmocka_unit_test(entry_and_item_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
