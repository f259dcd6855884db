/* fuzz_guard.c — the guardrail request decoders (http/decode_guard.h), and
 * what the gate does with what they accept.
 *
 * Input: one selector byte, then the body. selector % 6 picks the decoder:
 *   0 gate check (single or batch), 1 switch, 2 resume, 3 cap spec body,
 *   4 evidence, 5 approval note.
 * Accepted gate checks are decided against a small fixed snapshot (a
 * block, an approve and a read_only switch, a cap with a per key) with one
 * state that lives across inputs; accepted switches and caps are added to
 * a fresh snapshot and sealed. Oracles: error messages are never empty,
 * decoded values keep the decoder's promises (1..KX_GATE_BATCH_MAX actions
 * with labels, expiry after now, floor within limits), and a decision is
 * always one of the three verdicts with a reason unless it allows.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/gate.h"
#include "core/guard.h"
#include "http/decode_guard.h"

#define T0 INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */

static void check(bool ok)
{
	if (!ok)
		abort();
}

static struct kx_gate_snapshot *fixed_snapshot(void)
{
	static struct kx_gate_snapshot *snap;
	if (!snap) {
		struct kx_gate_switch sw = {0};
		snap = kx_gate_snapshot_new();
		check(snap != NULL);
		sw.ramp.start = KX_TIME_UNSET;
		sw.expires_at = KX_TIME_UNSET;
		sw.set_at = T0;
		sw.id = "sw_block";
		sw.selector = "client=acme,platform=instagram";
		sw.mode = KX_GATE_BLOCK;
		check(kx_gate_snapshot_add_switch(snap, &sw, NULL) == 0);
		sw.id = "sw_approve";
		sw.selector = "action in (dm,comment),client!=acme";
		sw.mode = KX_GATE_APPROVE;
		check(kx_gate_snapshot_add_switch(snap, &sw, NULL) == 0);
		sw.id = "sw_ro";
		sw.selector = "lane=browser";
		sw.mode = KX_GATE_READ_ONLY;
		check(kx_gate_snapshot_add_switch(snap, &sw, NULL) == 0);
		check(kx_gate_snapshot_add_cap(snap, "c1", "action=like: 2/10s per account", NULL) == 0);
		check(kx_gate_snapshot_seal(snap, NULL) == 0);
	}
	return snap;
}

static struct kx_gate_state *state(void)
{
	static struct kx_gate_state *st;
	if (!st) {
		struct kx_gate_limits lim = {1024, 4096, 1024, false};
		st = kx_gate_state_new(&lim);
		check(st != NULL);
	}
	return st;
}

static bool same_labels(const struct kx_labels *a, const struct kx_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *v = kx_labels_get(b, a->v[i].key);
		if (!v || strcmp(v, a->v[i].value) != 0)
			return false;
	}
	return true;
}

/* The tree-less fast path and the jansson path agree on every body: the
 * same verdict, and on success the same actions. */
static void compare_paths(const char *body, size_t len)
{
	struct kx_gate_req *a, *b;
	struct kx_err ea = {0}, eb = {0};
	json_t *ja = NULL, *jb = NULL;
	size_t na, nb;
	bool ba, bb;
	int ra = kx_decode_gate(body, len, &a, &na, &ba, &ja, &ea);
	int rb = kx_decode_gate_json(body, len, &b, &nb, &bb, &jb, &eb);
	check(ra == rb);
	if (ra == 0) {
		check(na == nb && ba == bb);
		for (size_t i = 0; i < na; i++) {
			check(same_labels(&a[i].labels, &b[i].labels));
			check(a[i].read_only == b[i].read_only);
			check(!a[i].idempotency_key == !b[i].idempotency_key);
			check(!a[i].idempotency_key ||
			      strcmp(a[i].idempotency_key, b[i].idempotency_key) == 0);
		}
		kx_gate_reqs_free(a, na);
		kx_gate_reqs_free(b, nb);
	} else {
		check(strcmp(ea.msg, eb.msg) == 0);
	}
	json_decref(ja);
	json_decref(jb);
}

static void fuzz_gate(const char *body, size_t len)
{
	struct kx_gate_req *reqs;
	struct kx_gate_action acts[KX_GATE_BATCH_MAX];
	static struct kx_gate_decision decs[KX_GATE_BATCH_MAX];
	struct kx_err err = {0};
	json_t *json = NULL;
	size_t n;
	bool batch;
	int rc = kx_decode_gate(body, len, &reqs, &n, &batch, &json, &err);

	if (rc) {
		check(err.msg[0] != '\0' && reqs == NULL && n == 0 && json == NULL);
		return;
	}
	check(n >= 1 && n <= KX_GATE_BATCH_MAX && (batch || n == 1));
	for (size_t i = 0; i < n; i++) {
		check(reqs[i].labels.n > 0);
		acts[i].labels = &reqs[i].labels;
		acts[i].idempotency_key = reqs[i].idempotency_key;
		acts[i].read_only = reqs[i].read_only;
	}
	memset(&err, 0, sizeof(err));
	rc = kx_gate_check_batch(fixed_snapshot(), state(), acts, n, T0, decs, &err);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			check(decs[i].verdict == KX_GATE_ALLOW || decs[i].verdict == KX_GATE_DENY ||
			      decs[i].verdict == KX_GATE_APPROVAL_REQUIRED);
			check(decs[i].verdict == KX_GATE_ALLOW || decs[i].reason[0] != '\0');
		}
	} else {
		check(err.msg[0] != '\0'); /* e.g. a bad idempotency key */
	}
	kx_gate_reqs_free(reqs, n);
	json_decref(json);
}

static void fuzz_switch(const char *body, size_t len)
{
	struct kx_switch_req r;
	struct kx_err err = {0};
	json_t *json = NULL;
	int rc = kx_decode_switch(body, len, T0, &r, &json, &err);
	struct kx_gate_snapshot *snap;
	struct kx_gate_switch sw = {0};

	if (rc) {
		check(err.msg[0] != '\0' && json == NULL);
		return;
	}
	check(r.reason != NULL && r.selector != NULL);
	check(r.expires_at == KX_TIME_UNSET || r.expires_at > T0 ||
	      /* an explicit expires_at is checked by the service, not here */
	      json_object_get(json, "expires_at") != NULL);
	snap = kx_gate_snapshot_new();
	check(snap != NULL);
	sw.id = "sw_fuzz";
	sw.selector = r.selector;
	sw.mode = r.mode;
	sw.reason = r.reason;
	sw.set_at = T0;
	sw.expires_at = r.expires_at;
	sw.ramp.start = KX_TIME_UNSET;
	memset(&err, 0, sizeof(err));
	if (kx_gate_snapshot_add_switch(snap, &sw, &err) == 0)
		check(kx_gate_snapshot_seal(snap, NULL) == 0);
	else
		check(err.msg[0] != '\0');
	kx_gate_snapshot_free(snap);
	json_decref(json);
}

static void fuzz_resume(const char *body, size_t len)
{
	struct kx_resume_req r;
	struct kx_err err = {0};
	json_t *json = NULL;
	if (kx_decode_resume(body, len, &r, &json, &err)) {
		check(err.msg[0] != '\0' && json == NULL);
		return;
	}
	check(r.ramp >= 0 && r.ramp <= KX_GATE_WINDOW_MAX);
	check(r.window >= 0 && r.window <= KX_GATE_WINDOW_MAX);
	check((r.floor == KX_RAMP_DEFAULT || r.floor <= KX_GATE_LIMIT_MAX) &&
	      r.peak <= KX_GATE_LIMIT_MAX);
	check(r.ramp > 0 || (r.floor == KX_RAMP_DEFAULT && r.peak == 0 && r.window == 0));
	json_decref(json);
}

static void fuzz_one(const char *body, size_t len, const char *key, bool cap)
{
	const char *s;
	struct kx_err err = {0};
	json_t *json = NULL;
	if (kx_decode_one_string(body, len, key, cap, &s, &json, &err)) {
		check(err.msg[0] != '\0' && json == NULL);
		return;
	}
	check(!cap || s != NULL);
	if (cap) {
		struct kx_gate_snapshot *snap = kx_gate_snapshot_new();
		check(snap != NULL);
		memset(&err, 0, sizeof(err));
		if (kx_gate_snapshot_add_cap(snap, "fuzz", s, &err) == 0)
			check(kx_gate_snapshot_seal(snap, NULL) == 0);
		else
			check(err.msg[0] != '\0');
		kx_gate_snapshot_free(snap);
	}
	json_decref(json);
}

static void fuzz_evidence(const char *body, size_t len)
{
	struct kx_evidence_req r;
	struct kx_err err = {0};
	json_t *json = NULL;
	if (kx_decode_evidence(body, len, T0, &r, &json, &err)) {
		check(err.msg[0] != '\0' && json == NULL);
		return;
	}
	check(r.limit >= 0 && r.limit <= 1000);
	check(r.since == KX_TIME_UNSET || r.until == KX_TIME_UNSET || r.until > r.since);
	json_decref(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	size_t len = size ? size - 1 : 0;
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		compare_paths(body, len);
		fuzz_gate(body, len);
		break;
	case 1: fuzz_switch(body, len); break;
	case 2: fuzz_resume(body, len); break;
	case 3: fuzz_one(body, len, "spec", true); break;
	case 4: fuzz_evidence(body, len); break;
	default: fuzz_one(body, len, "note", false); break;
	}
	return 0;
}
