#include "service/audit.h"
#include "service/detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events read per page while verifying. */
#define VERIFY_PAGE 1000

/* Prefixes err's message with "event N: " (batches only). */
static int name_event(struct kx_err *err, size_t i, size_t n, int rc)
{
	char msg[sizeof(err->msg)];
	if (n <= 1 || !err)
		return rc;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	return kx_err_set(err, rc, "event %zu: %s", i + 1, msg);
}

int kx_svc_audit_append(const struct kx_app *app, const struct kx_token *who,
			struct kx_audit_event *ev, size_t n, kx_ms now, struct kx_err *err)
{
	struct kx_tx *tx = NULL;
	int rc;

	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "no events to append");
	if (n > KX_AUDIT_BATCH_MAX)
		return kx_err_set(err, KX_EINVAL, "too many events in one request (at most %d)",
				  KX_AUDIT_BATCH_MAX);
	/* Every event is checked before anything is written: a batch is
	 * stored whole or not at all. */
	for (size_t i = 0; i < n; i++) {
		if (ev[i].at == KX_TIME_UNSET)
			ev[i].at = now;
		if ((rc = kx_audit_apply_scope(&ev[i], &who->scope, err)) ||
		    (rc = kx_audit_event_check(&ev[i], now, err)))
			return name_event(err, i, n, rc);
	}
	if ((rc = kx_store_begin(app->store, true, &tx, err)) ||
	    (rc = kx_store_audit_append(tx, ev, n, err)))
		goto out;
	rc = kx_store_commit(tx, err);
	tx = NULL;
	/* committed: the detections see the events (their side effects never
	 * fail this append) */
	if (!rc && app->detect)
		kx_svc_detect_feed(app, ev, n, now);
out:
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_audit_record(const struct kx_app *app, struct kx_tx *tx, const struct kx_token *who,
			const char *action, const char *target, const struct kx_labels *labels,
			kx_ms now, struct kx_err *err)
{
	struct kx_audit_event e;
	int rc = KX_ENOMEM;

	(void)app;
	kx_audit_event_init(&e);
	e.at = now;
	if (!(e.actor = strdup(who && who->name ? who->name : "klaxon")) ||
	    !(e.action = strdup(action)) || (target && !(e.target = strdup(target))) ||
	    !(e.outcome = strdup("success"))) {
		kx_err_set(err, rc, "out of memory");
		goto out;
	}
	/* The object's labels, split as a scope sees them: this is what makes
	 * the event visible to exactly the tokens that see the object. A label
	 * named like a field the event already has (an incident labelled
	 * action=comment) cannot be carried and is left out. */
	for (size_t i = 0; labels && i < labels->n; i++) {
		const char *key = labels->v[i].key, *val = labels->v[i].value;
		if (!kx_audit_scope_key(key)) {
			if ((rc = kx_labels_set(&e.labels, key, val, err)))
				goto out;
		} else if (!kx_audit_scope_value(&e, key)) {
			struct kx_labels one;
			kx_labels_init(&one);
			rc = kx_labels_set(&one, key, val, err);
			if (!rc)
				rc = kx_audit_apply_scope(&e, &one, err);
			kx_labels_release(&one);
			if (rc)
				goto out;
		}
	}
	if ((rc = kx_audit_event_check(&e, now, err)) ||
	    (rc = kx_store_audit_append(tx, &e, 1, err)))
		goto out;
out:
	kx_audit_event_release(&e);
	return rc;
}

/* The filter field a scope key selects, or NULL for a free label. */
static const char **scope_slot(struct kx_audit_filter *f, const char *key)
{
	if (!strcmp(key, "client"))
		return &f->client;
	if (!strcmp(key, "account"))
		return &f->account;
	if (!strcmp(key, "platform"))
		return &f->platform;
	if (!strcmp(key, "lane"))
		return &f->lane;
	if (!strcmp(key, "action"))
		return &f->action;
	return NULL;
}

/* Narrows f to who's scope. Returns 1 when f asks for something outside
 * the scope (then nothing is visible), 0, or a KX_E… code. The filter
 * borrows the scope's strings: who outlives the call. */
static int apply_scope(const struct kx_token *who, struct kx_audit_filter *f,
		       struct kx_err *err)
{
	for (size_t i = 0; i < who->scope.n; i++) {
		const char *key = who->scope.v[i].key, *val = who->scope.v[i].value, *have;
		const char **slot = scope_slot(f, key);
		int rc;
		if (slot) {
			if (*slot && strcmp(*slot, val) != 0)
				return 1;
			*slot = val;
			continue;
		}
		have = kx_labels_get(&f->labels, key);
		if (have && strcmp(have, val) != 0)
			return 1;
		if ((rc = kx_labels_set(&f->labels, key, val, err)))
			return rc;
	}
	return 0;
}

static int check_limit(const struct kx_audit_filter *f, struct kx_err *err)
{
	if (f->limit < 0 || f->limit > KX_AUDIT_LIMIT_MAX)
		return kx_err_set(err, KX_EINVAL, "'limit' must be a number from 1 to %d",
				  KX_AUDIT_LIMIT_MAX);
	return 0;
}

int kx_svc_audit_query(const struct kx_app *app, const struct kx_token *who,
		       struct kx_audit_filter *f, struct kx_audit_events *out, struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	out->v = NULL;
	out->n = 0;
	if ((rc = check_limit(f, err)) || (rc = apply_scope(who, f, err)))
		return rc < 0 ? rc : 0;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = kx_store_audit_query(tx, f, out, err);
	kx_store_rollback(tx);
	return rc;
}

static int groups(const struct kx_app *app, const struct kx_token *who,
		  struct kx_audit_filter *f, bool duplicates, struct kx_audit_groups *out,
		  struct kx_err *err)
{
	struct kx_tx *tx;
	int rc;

	out->v = NULL;
	out->n = 0;
	if ((rc = check_limit(f, err)) || (rc = apply_scope(who, f, err)))
		return rc < 0 ? rc : 0;
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	rc = duplicates ? kx_store_audit_duplicates(tx, f, out, err)
			: kx_store_audit_recipients(tx, f, out, err);
	kx_store_rollback(tx);
	return rc;
}

int kx_svc_audit_duplicates(const struct kx_app *app, const struct kx_token *who,
			    struct kx_audit_filter *f, struct kx_audit_groups *out,
			    struct kx_err *err)
{
	return groups(app, who, f, true, out, err);
}

int kx_svc_audit_recipients(const struct kx_app *app, const struct kx_token *who,
			    struct kx_audit_filter *f, struct kx_audit_groups *out,
			    struct kx_err *err)
{
	return groups(app, who, f, false, out, err);
}

/* Checks one page against the chain so far; stops out->intact at the
 * first bad event. Returns 0 or KX_ENOMEM. */
static int verify_page(const struct kx_audit_events *page, struct kx_audit_verify *out)
{
	for (size_t i = 0; i < page->n; i++) {
		const struct kx_audit_event *e = &page->v[i];
		struct kx_err why = {0};
		int rc = kx_audit_verify_step(e, out->head_seq, out->head_seq ? out->head_hash : NULL,
					      &why);
		if (rc == KX_ENOMEM)
			return rc;
		if (rc) {
			out->intact = false;
			out->broken_seq = e->seq;
			snprintf(out->reason, sizeof(out->reason), "%s", why.msg);
			return 0;
		}
		out->events++;
		out->head_seq = e->seq;
		memcpy(out->head_hash, e->hash, KX_HASH_LEN);
	}
	return 0;
}

int kx_svc_audit_verify(const struct kx_app *app, const struct kx_token *who,
			struct kx_audit_verify *out, struct kx_err *err)
{
	struct kx_audit_events page = {0};
	struct kx_tx *tx;
	int rc;

	memset(out, 0, sizeof(*out));
	out->intact = true;
	if (who->scope.n)
		return kx_err_set(err, KX_EFORBIDDEN,
				  "verify reads every event: it needs a token without a label scope");
	/* One read transaction: one consistent snapshot of the whole chain,
	 * whatever is appended meanwhile. */
	if ((rc = kx_store_begin(app->store, false, &tx, err)))
		return rc;
	for (;;) {
		if ((rc = kx_store_audit_page(tx, out->head_seq, VERIFY_PAGE, &page, err)))
			break;
		if (page.n == 0)
			break;
		rc = verify_page(&page, out);
		kx_audit_events_release(&page);
		if (rc) {
			rc = kx_err_set(err, rc, "out of memory");
			break;
		}
		if (!out->intact)
			break;
	}
	kx_store_rollback(tx);
	return rc;
}
