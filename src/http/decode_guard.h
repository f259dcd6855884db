/* decode_guard.h — request bodies of the guardrail API: gate checks,
 * switches, resumes, caps, approval decisions and evidence. Strict like
 * decode.h (unknown keys and wrong types are KX_EINVAL naming the field);
 * driven by tests/fuzz/fuzz_guard.c. */
#ifndef KX_DECODE_GUARD_H
#define KX_DECODE_GUARD_H

#include <jansson.h>

#include "service/guard.h"

/* A gate check body: one action {"labels":{…},"idempotency_key":…,
 * "read_only":…} or a batch {"actions":[action, …]} (1 to
 * KX_GATE_BATCH_MAX). *reqs is allocated (free with kx_gate_reqs_free);
 * its strings point into *json or into the request (key_buf); json_decref
 * *json after use. *batch says
 * which form it was. A bad action names its place, counted from 1 as audit
 * batches do: "action 3: …". */
int kx_decode_gate(const char *body, size_t len, struct kx_gate_req **reqs, size_t *n,
		   bool *batch, json_t **json, struct kx_err *err);
/* The same through jansson only. kx_decode_gate takes the common single
 * action without building a tree (then *json is NULL: json_decref(NULL)
 * is fine) and hands everything else to this; both give the same result
 * for every body (fuzz_guard compares them). */
int kx_decode_gate_json(const char *body, size_t len, struct kx_gate_req **reqs, size_t *n,
			bool *batch, json_t **json, struct kx_err *err);
void kx_gate_reqs_free(struct kx_gate_req *reqs, size_t n);

/* {"selector","mode","reason","expires_in"|"expires_at","incident"}:
 * mode defaults to block, selector to "" (everything). */
int kx_decode_switch(const char *body, size_t len, kx_ms now, struct kx_switch_req *out,
		     json_t **json, struct kx_err *err);

struct kx_resume_req {
	kx_ms ramp; /* 0: lift at once */
	uint32_t floor; /* KX_RAMP_DEFAULT when not given */
	uint32_t peak;  /* 0 when not given */
	kx_ms window;
	const char *reason;
};
/* {"ramp":"30m","floor":N,"peak":N,"window":"1m","reason":…}, all optional. */
int kx_decode_resume(const char *body, size_t len, struct kx_resume_req *out, json_t **json,
		     struct kx_err *err);

/* A body with at most the one optional string field `key` ("reason",
 * "note", "spec" — required when `required`). */
int kx_decode_one_string(const char *body, size_t len, const char *key, bool required,
			 const char **out, json_t **json, struct kx_err *err);

struct kx_evidence_req {
	kx_ms since, until; /* KX_TIME_UNSET: not given */
	const char *account, *action, *client, *platform, *lane, *actor;
	int limit; /* 0: default */
};
/* {"since":"2h"|time,"until":…,"account",…,"limit":N} */
int kx_decode_evidence(const char *body, size_t len, kx_ms now, struct kx_evidence_req *out,
		       json_t **json, struct kx_err *err);

#endif
