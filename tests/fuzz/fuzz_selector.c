/* fuzz_selector.c — the selector parser and the cap-spec parser, and the
 * gate's index over whatever selector comes out.
 *
 * The input is copied and NUL-terminated (the parsers take C strings).
 * Oracles:
 * - an accepted selector keeps its invariants (keys sorted and unique,
 *   keys and values valid as labels, list values sorted and unique, one
 *   value for = and !=, two or more for in/notin); its canonical text parses
 *   back to an equal selector that prints the same;
 * - the label set built to satisfy it (the first value of each = / in,
 *   nothing for != / notin) matches it, and setting a != / notin key to an
 *   excluded value does not;
 * - a gate snapshot with an approve switch on that selector and a cap of
 *   1/1m on it asks for approval for that label set (so the index finds the
 *   switch), and once the action is recorded the cap denies it;
 * - a refused selector or cap leaves the object empty, with a message that
 *   starts "cannot parse" and is valid UTF-8 without control characters
 *   (it ends up in JSON and logs), as is a decision's reason;
 * - an accepted cap has its limit and window in range and survives
 *   format -> parse.
 * Leaks are caught by the sanitizer run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/gate.h"
#include "core/labels.h"
#include "core/selector.h"
#include "core/text.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static char *format_sel(const struct kx_selector *sel)
{
	struct kx_buf b;
	char *s;
	kx_buf_init(&b, 0);
	check(kx_selector_format(sel, &b) == 0);
	s = kx_buf_take(&b, NULL);
	check(s != NULL);
	return s;
}

static void check_invariants(const struct kx_selector *sel)
{
	check(sel->n <= KX_SELECTOR_MAX_REQS);
	for (size_t i = 0; i < sel->n; i++) {
		const struct kx_selector_req *r = &sel->v[i];
		bool list = r->op == KX_SELECTOR_IN || r->op == KX_SELECTOR_NOTIN;
		check(kx_label_key_check(r->key, NULL) == 0);
		if (i)
			check(strcmp(sel->v[i - 1].key, r->key) < 0);
		check(list ? r->n >= 2 : r->n == 1);
		check(r->n <= KX_SELECTOR_MAX_VALUES);
		for (size_t j = 0; j < r->n; j++) {
			check(kx_label_value_check(r->key, r->values[j], NULL) == 0);
			if (j)
				check(strcmp(r->values[j - 1], r->values[j]) < 0);
		}
		check(kx_selector_get(sel, r->key) == r);
	}
}

/* The gate must find a switch and a cap on sel for labels that satisfy it. */
static void check_gate(const char *canonical, const struct kx_labels *ls)
{
	struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
	struct kx_gate_state *st = kx_gate_state_new(NULL);
	struct kx_gate_switch sw = {.id = "sw", .selector = canonical, .mode = KX_GATE_APPROVE,
				    .set_at = 0, .expires_at = KX_TIME_UNSET,
				    .ramp = {.start = KX_TIME_UNSET}};
	struct kx_gate_action act = {.labels = ls, .idempotency_key = NULL, .read_only = false};
	struct kx_gate_decision d;
	struct kx_buf spec;
	char *cap;

	check(snap && st);
	kx_buf_init(&spec, 0);
	check(kx_buf_addf(&spec, "%s: 1/1m", canonical) == 0);
	cap = kx_buf_take(&spec, NULL);
	check(cap != NULL);
	check(kx_gate_snapshot_add_switch(snap, &sw, NULL) == 0);
	check(kx_gate_snapshot_add_cap(snap, "cap", cap, NULL) == 0);
	check(kx_gate_snapshot_seal(snap, NULL) == 0);
	check(kx_gate_check(snap, st, &act, 1000, &d, NULL) == 0);
	check(d.verdict == KX_GATE_APPROVAL_REQUIRED && d.by == KX_GATE_BY_SWITCH);
	check(kx_gate_record(snap, st, &act, 1000, NULL) == 0);
	check(kx_gate_check(snap, st, &act, 2000, &d, NULL) == 0);
	check(d.verdict == KX_GATE_DENY && d.by == KX_GATE_BY_CAP && d.retry_after == 59000);
	check(kx_text_check(d.reason, strlen(d.reason), 0) == 0);
	check(kx_gate_check(snap, st, &act, 61000, &d, NULL) == 0);
	check(d.verdict == KX_GATE_APPROVAL_REQUIRED);
	free(cap);
	kx_gate_snapshot_free(snap);
	kx_gate_state_free(st);
}

static void check_matching(const struct kx_selector *sel, const char *canonical)
{
	struct kx_labels ls;
	kx_labels_init(&ls);
	for (size_t i = 0; i < sel->n; i++) {
		const struct kx_selector_req *r = &sel->v[i];
		if (r->op == KX_SELECTOR_EQ || r->op == KX_SELECTOR_IN)
			check(kx_labels_set(&ls, r->key, r->values[0], NULL) == 0);
	}
	check(kx_selector_matches(sel, &ls));
	check_gate(canonical, &ls);
	for (size_t i = 0; i < sel->n; i++) {
		const struct kx_selector_req *r = &sel->v[i];
		if (r->op == KX_SELECTOR_NE || r->op == KX_SELECTOR_NOTIN) {
			check(kx_labels_set(&ls, r->key, r->values[r->n - 1], NULL) == 0);
			check(!kx_selector_matches(sel, &ls));
			kx_labels_remove(&ls, r->key);
		}
	}
	kx_labels_release(&ls);
}

static void fuzz_selector(const char *s)
{
	struct kx_selector sel, back;
	struct kx_err err = {0};
	char *text, *text2;
	int rc;

	kx_selector_init(&sel);
	kx_selector_init(&back);
	rc = kx_selector_parse(&sel, s, &err);
	if (rc) {
		check(rc == KX_EINVAL || rc == KX_ETOOBIG);
		check(strncmp(err.msg, "cannot parse selector", 21) == 0);
		check(kx_text_check(err.msg, strlen(err.msg), 0) == 0);
		check(sel.n == 0 && sel.v == NULL);
		return;
	}
	check_invariants(&sel);
	text = format_sel(&sel);
	check(kx_selector_parse(&back, text, &err) == 0);
	check(kx_selector_equal(&sel, &back));
	text2 = format_sel(&back);
	check(strcmp(text, text2) == 0);
	check_matching(&sel, text);
	free(text);
	free(text2);
	kx_selector_release(&sel);
	kx_selector_release(&back);
}

static void fuzz_cap(const char *s)
{
	struct kx_gate_cap cap, back;
	struct kx_err err = {0};
	struct kx_buf b;
	int rc;

	kx_gate_cap_init(&cap);
	kx_gate_cap_init(&back);
	rc = kx_gate_cap_parse(&cap, s, &err);
	if (rc) {
		check(rc == KX_EINVAL || rc == KX_ETOOBIG);
		check(strncmp(err.msg, "cannot parse cap", 16) == 0);
		check(kx_text_check(err.msg, strlen(err.msg), 0) == 0);
		check(cap.sel.n == 0 && cap.limit == 0 && cap.window == 0 && !cap.per[0]);
		return;
	}
	check(cap.limit <= KX_GATE_LIMIT_MAX);
	check(cap.window > 0 && cap.window <= KX_GATE_WINDOW_MAX);
	check(!cap.per[0] || kx_label_key_check(cap.per, NULL) == 0);
	check_invariants(&cap.sel);
	kx_buf_init(&b, 0);
	check(kx_gate_cap_format(&cap, &b) == 0);
	check(kx_gate_cap_parse(&back, kx_buf_str(&b), &err) == 0);
	check(kx_selector_equal(&cap.sel, &back.sel));
	check(cap.limit == back.limit && cap.window == back.window);
	check(strcmp(cap.per, back.per) == 0);
	kx_buf_release(&b);
	kx_gate_cap_release(&cap);
	kx_gate_cap_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_selector(s);
	fuzz_cap(s);
	free(s);
	return 0;
}
