/* fuzz_audit.c — the audit event decoder (POST /v1/audit/events) and what
 * the core does with what it accepts.
 *
 * Input: one selector byte, then the body. selector % 2 picks the body's
 * form: 0 JSON (one event object or {"events":[…]}), 1 NDJSON (one object
 * per line). (selector / 2) % 2 says whether a label scope (client=acme,
 * team=ops) is applied to the decoded events, as the service does for a
 * scoped token.
 *
 * Oracles: a refused body has a message; an accepted one holds 1 to
 * KX_AUDIT_BATCH_MAX events that pass kx_audit_event_check; the events
 * chain and verify (every link); an event encoded as the API answers it
 * and decoded again has the same canonical bytes (nothing lost or changed
 * on the way out and in); a scope that applies leaves the event matching
 * it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/decode.h"
#include "http/encode.h"

#define NOW INT64_C(1795638600000) /* 2026-11-25T20:30:00Z */

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* Encodes e as the API does, drops what the server adds (seq, hashes),
 * decodes it again and compares the canonical bytes. */
static void round_trip(const struct kx_audit_event *e)
{
	struct kx_audit_event back;
	struct kx_buf a, b;
	struct kx_err err = {0};
	json_t *j = kx_enc_audit_event(e);
	int rc;

	if (!j)
		return; /* out of memory */
	json_object_del(j, "seq");
	json_object_del(j, "prev_hash");
	json_object_del(j, "hash");
	rc = kx_decode_audit_event(j, NOW, &back, &err);
	json_decref(j);
	check(rc == 0 || rc == KX_ENOMEM);
	if (rc)
		return;
	back.seq = e->seq;
	kx_buf_init(&a, 0);
	kx_buf_init(&b, 0);
	if (!kx_audit_canonical(e, &a) && !kx_audit_canonical(&back, &b))
		check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	kx_buf_release(&a);
	kx_buf_release(&b);
	kx_audit_event_release(&back);
}

static void scope(struct kx_audit_event *e)
{
	struct kx_labels sc;
	struct kx_err err = {0};
	int rc;

	kx_labels_init(&sc);
	kx_labels_add_pair(&sc, "client=acme", NULL);
	kx_labels_add_pair(&sc, "team=ops", NULL);
	rc = kx_audit_apply_scope(e, &sc, &err);
	check(rc == 0 || rc == KX_EFORBIDDEN || rc == KX_EINVAL || rc == KX_ENOMEM);
	check(rc == 0 || err.msg[0] != '\0');
	if (rc == 0)
		check(kx_audit_match_scope(e, &sc));
	kx_labels_release(&sc);
}

/* Where the tree-less line reader accepts a line, the full decoder
 * accepts it too and gives the same event (same canonical bytes). */
static void compare_line(const char *p, size_t n)
{
	struct kx_audit_event fast, full;
	struct kx_buf a, b;
	json_error_t je;
	json_t *j;

	if (!kx_decode_audit_line_fast(p, n, NOW, &fast))
		return;
	j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	check(j != NULL);
	check(kx_decode_audit_event(j, NOW, &full, NULL) == 0);
	json_decref(j);
	kx_buf_init(&a, 0);
	kx_buf_init(&b, 0);
	check(kx_audit_canonical(&fast, &a) == 0 && kx_audit_canonical(&full, &b) == 0);
	check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	kx_buf_release(&a);
	kx_buf_release(&b);
	kx_audit_event_release(&fast);
	kx_audit_event_release(&full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kx_audit_events ev;
	struct kx_err err = {0};
	const uint8_t *prev = NULL;
	unsigned sel;
	int rc;

	if (size < 1)
		return 0;
	sel = data[0];
	compare_line((const char *)data + 1, size - 1);
	rc = kx_decode_audit((const char *)data + 1, size - 1, sel % 2 == 1, NOW, &ev, &err);
	if (rc) {
		check(err.msg[0] != '\0');
		check(ev.n == 0 && ev.v == NULL);
		return 0;
	}
	check(ev.n >= 1 && ev.n <= KX_AUDIT_BATCH_MAX);
	for (size_t i = 0; i < ev.n; i++) {
		struct kx_audit_event *e = &ev.v[i];
		check(kx_audit_event_check(e, NOW, NULL) == 0);
		check(e->seq == 0);
		if ((sel / 2) % 2)
			scope(e);
		e->seq = (int64_t)i + 1;
		if (kx_audit_chain(e, prev))
			break; /* out of memory */
		check(kx_audit_verify_step(e, e->seq - 1, prev, NULL) == 0);
		prev = e->hash;
		if (i < 8)
			round_trip(e);
	}
	kx_audit_events_release(&ev);
	return 0;
}
