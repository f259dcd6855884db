#include "core/detect.h"

#include <stdlib.h>
#include <string.h>

#include "core/incident.h"
#include "core/selector.h"
#include "lib/buf.h"

#define KEY_MAX 4096	 /* bytes of a group key (three fields of at most 1024 + 256 + 256) */
#define SHOW_MAX 80	 /* characters of a value quoted in a title or a group name */
#define RING_MIN 8	 /* first timestamp allocation */

/* ---- an event as labels --------------------------------------------------- */

#define VIEW_FIELDS 8

/* The event's fields and free labels as one sorted label set whose strings
 * are borrowed from the event (kx_selector_matches only reads them). */
struct view {
	struct kx_label v[KX_LABELS_MAX + VIEW_FIELDS];
	struct kx_labels ls;
};

static void view_build(struct view *w, const struct kx_audit_event *ev)
{
	/* in strcmp order, as a label set is */
	const char *const names[VIEW_FIELDS] = {"account", "action", "actor",	 "client",
						"lane",	   "outcome", "platform", "target"};
	const char *const vals[VIEW_FIELDS] = {ev->account, ev->action, ev->actor,    ev->client,
					       ev->lane,    ev->outcome, ev->platform, ev->target};
	const struct kx_labels *ls = &ev->labels;
	size_t i = 0, j = 0, n = 0, max = sizeof(w->v) / sizeof(w->v[0]);

	while ((i < VIEW_FIELDS || j < ls->n) && n < max) {
		int c;
		if (i < VIEW_FIELDS && !vals[i]) {
			i++;
			continue;
		}
		c = i >= VIEW_FIELDS ? 1 : j >= ls->n ? -1 : strcmp(names[i], ls->v[j].key);
		if (c <= 0) {
			/* a field wins over a free label of its name */
			w->v[n].key = (char *)names[i];
			w->v[n++].value = (char *)vals[i++];
			if (c == 0)
				j++;
		} else {
			w->v[n++] = ls->v[j++];
		}
	}
	w->ls.v = w->v;
	w->ls.n = w->ls.cap = n;
}

static const char *view_get(const struct view *w, const char *key)
{
	return kx_labels_get(&w->ls, key);
}

/* ---- state ------------------------------------------------------------------ */

struct slice {
	int64_t id; /* at / slice width */
	uint32_t count;
};

/* One group's window. Invariants: ts holds `n` timestamps in ascending
 * order starting at ts[head] (a ring of `cap`), all within the window at
 * the last feed, n <= threshold (a group that reaches threshold + 1 fires
 * and frees them); a fired group has n == 0 and no slices. last_at is the
 * newest event counted (INT64_MIN: none yet). */
struct group {
	struct group *hnext;	   /* hash chain */
	struct group *prev, *next; /* LRU list: rule->lru is the most recent */
	uint64_t hash;
	char *key;
	size_t keylen;
	bool fired;
	kx_ms last_at, since;	   /* newest event; oldest since the group was quiet */
	kx_ms *ts;
	uint32_t head, n, cap;
	struct slice *slices;	   /* KX_DETECT_SLICES of them, or NULL */
};

struct rule_state {
	const struct kx_detection *rule;
	struct kx_selector sel;
	bool exact;		  /* timestamps (threshold < KX_DETECT_EXACT_MAX) or slices */
	kx_ms slice_w;		  /* slice width, slices only */
	struct group **buckets;	  /* nbuckets, a power of two */
	size_t nbuckets;
	struct group *lru, *lru_tail;
	size_t ngroups;
	uint64_t evicted;
};

struct kx_detector {
	struct rule_state *rules;
	size_t nrules;
	size_t max_groups;
};

/* ---- fired results ------------------------------------------------------------ */

void kx_detect_firings_init(struct kx_detect_firings *l)
{
	memset(l, 0, sizeof(*l));
}

static void fired_release(struct kx_detect_fired *f)
{
	free(f->group);
	free(f->title);
	free(f->evidence);
	free(f->contain_selector);
	kx_labels_release(&f->labels);
}

void kx_detect_firings_release(struct kx_detect_firings *l)
{
	for (size_t i = 0; i < l->n; i++)
		fired_release(&l->v[i]);
	free(l->v);
	kx_detect_firings_init(l);
}

/* ---- lifecycle --------------------------------------------------------------- */

static void group_free(struct group *g)
{
	free(g->key);
	free(g->ts);
	free(g->slices);
	free(g);
}

void kx_detector_free(struct kx_detector *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nrules; i++) {
		struct rule_state *rs = &d->rules[i];
		for (struct group *g = rs->lru, *next; g; g = next) {
			next = g->next;
			group_free(g);
		}
		free(rs->buckets);
		kx_selector_release(&rs->sel);
	}
	free(d->rules);
	free(d);
}

int kx_detector_new(const struct kx_detection *rules, size_t n, size_t max_groups,
		    struct kx_detector **out, struct kx_err *err)
{
	struct kx_detector *d = calloc(1, sizeof(*d));
	size_t nb = 16;

	*out = NULL;
	if (!d || (n && !(d->rules = calloc(n, sizeof(*d->rules))))) {
		free(d);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	d->max_groups = max_groups ? max_groups : KX_DETECT_GROUPS_DEFAULT;
	while (nb < d->max_groups && nb < ((size_t)1 << 20))
		nb <<= 1;
	for (size_t i = 0; i < n; i++) {
		struct rule_state *rs = &d->rules[i];
		struct kx_err e = {0};
		kx_selector_init(&rs->sel);
		d->nrules = i + 1;
		rs->rule = &rules[i];
		rs->exact = rules[i].threshold < KX_DETECT_EXACT_MAX;
		rs->slice_w = (rules[i].window + KX_DETECT_SLICES - 1) / KX_DETECT_SLICES;
		if (rs->slice_w < 1)
			rs->slice_w = 1;
		if (rules[i].threshold < 1 || rules[i].window < 1) {
			kx_detector_free(d);
			return kx_err_set(err, KX_EINVAL,
					  "detection '%s': 'threshold' and 'window' must be above zero",
					  rules[i].name);
		}
		if (kx_selector_parse(&rs->sel, rules[i].selector ? rules[i].selector : "", &e)) {
			kx_detector_free(d);
			return kx_err_set(err, e.code, "detection '%s': %s", rules[i].name, e.msg);
		}
		if (!(rs->buckets = calloc(nb, sizeof(*rs->buckets)))) {
			kx_detector_free(d);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
		rs->nbuckets = nb;
	}
	*out = d;
	return 0;
}

size_t kx_detector_groups(const struct kx_detector *d, size_t rule)
{
	return d && rule < d->nrules ? d->rules[rule].ngroups : 0;
}

uint64_t kx_detector_evicted(const struct kx_detector *d, size_t rule)
{
	return d && rule < d->nrules ? d->rules[rule].evicted : 0;
}

/* ---- groups -------------------------------------------------------------------- */

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void lru_unlink(struct rule_state *rs, struct group *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		rs->lru = g->next;
	if (g->next)
		g->next->prev = g->prev;
	else
		rs->lru_tail = g->prev;
	g->prev = g->next = NULL;
}

static void lru_push(struct rule_state *rs, struct group *g)
{
	g->prev = NULL;
	g->next = rs->lru;
	if (rs->lru)
		rs->lru->prev = g;
	rs->lru = g;
	if (!rs->lru_tail)
		rs->lru_tail = g;
}

static void group_drop(struct rule_state *rs, struct group *g)
{
	struct group **pp = &rs->buckets[g->hash & (rs->nbuckets - 1)];
	while (*pp != g)
		pp = &(*pp)->hnext;
	*pp = g->hnext;
	lru_unlink(rs, g);
	rs->ngroups--;
	group_free(g);
}

/* A group with no event in the window is the same as no group: drop those
 * at the cold end of the list. */
static void prune(struct rule_state *rs, kx_ms cutoff)
{
	while (rs->lru_tail && rs->lru_tail->last_at <= cutoff)
		group_drop(rs, rs->lru_tail);
}

/* The group of key, made (and the bound kept) if new, moved to the front.
 * NULL on allocation failure. */
static struct group *group_get(struct rule_state *rs, size_t max_groups, const char *key,
			       size_t keylen)
{
	uint64_t h = fnv1a(key, keylen);
	struct group **bucket = &rs->buckets[h & (rs->nbuckets - 1)], *g;

	for (g = *bucket; g; g = g->hnext)
		if (g->hash == h && g->keylen == keylen && !memcmp(g->key, key, keylen)) {
			lru_unlink(rs, g);
			lru_push(rs, g);
			return g;
		}
	if (rs->ngroups >= max_groups && rs->lru_tail) {
		group_drop(rs, rs->lru_tail);
		rs->evicted++;
	}
	if (!(g = calloc(1, sizeof(*g))) || !(g->key = malloc(keylen ? keylen : 1))) {
		free(g);
		return NULL;
	}
	memcpy(g->key, key, keylen);
	g->keylen = keylen;
	g->hash = h;
	g->last_at = g->since = INT64_MIN;
	g->hnext = *bucket;
	*bucket = g;
	lru_push(rs, g);
	rs->ngroups++;
	return g;
}

/* ---- counting -------------------------------------------------------------------- */

static kx_ms *ring_slot(struct group *g, uint32_t i)
{
	return &g->ts[(g->head + i) % g->cap];
}

static void ring_expire(struct group *g, kx_ms cutoff)
{
	while (g->n && *ring_slot(g, 0) <= cutoff) {
		g->head = (g->head + 1) % g->cap;
		g->n--;
	}
}

/* Inserts t in order (events mostly arrive in order: from the tail). The
 * ring never needs more than limit = threshold + 1 slots. */
static int ring_insert(struct group *g, kx_ms t, uint32_t limit)
{
	uint32_t pos;
	if (g->n == g->cap) {
		uint32_t cap = g->cap ? g->cap * 2 : RING_MIN;
		kx_ms *v;
		if (cap > limit)
			cap = limit;
		if (cap <= g->cap || !(v = malloc(cap * sizeof(*v))))
			return KX_ENOMEM;
		for (uint32_t i = 0; i < g->n; i++)
			v[i] = *ring_slot(g, i);
		free(g->ts);
		g->ts = v;
		g->cap = cap;
		g->head = 0;
	}
	for (pos = g->n; pos > 0 && *ring_slot(g, pos - 1) > t; pos--)
		*ring_slot(g, pos) = *ring_slot(g, pos - 1);
	*ring_slot(g, pos) = t;
	g->n++;
	return 0;
}

/* Counts t in the slices; sets *count and *first (the oldest slice's start). */
static int slices_add(const struct rule_state *rs, struct group *g, kx_ms t, kx_ms now,
		      uint32_t *count, kx_ms *first)
{
	int64_t cur = now / rs->slice_w, id = t / rs->slice_w, oldest = id;
	uint64_t total = 0;
	struct slice *s;

	if (!g->slices && !(g->slices = calloc(KX_DETECT_SLICES, sizeof(*g->slices))))
		return KX_ENOMEM;
	s = &g->slices[id % KX_DETECT_SLICES];
	if (s->id != id) {
		s->id = id;
		s->count = 0;
	}
	s->count++;
	for (size_t i = 0; i < KX_DETECT_SLICES; i++) {
		const struct slice *x = &g->slices[i];
		if (x->count && x->id > cur - KX_DETECT_SLICES && x->id <= cur) {
			total += x->count;
			if (x->id < oldest)
				oldest = x->id;
		}
	}
	*count = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
	*first = oldest * rs->slice_w;
	if (*first < g->since)
		*first = g->since;
	return 0;
}

static void group_reset(struct group *g, kx_ms t)
{
	g->fired = false;
	g->n = g->head = 0;
	if (g->slices)
		memset(g->slices, 0, KX_DETECT_SLICES * sizeof(*g->slices));
	g->since = t;
}

static void group_latch(struct group *g)
{
	g->fired = true;
	free(g->ts);
	free(g->slices);
	g->ts = NULL;
	g->slices = NULL;
	g->n = g->head = g->cap = 0;
}

/* ---- text ------------------------------------------------------------------------ */

/* Appends s cut to at most max characters (an ellipsis marks a cut),
 * never inside a UTF-8 sequence. */
static int add_cut(struct kx_buf *b, const char *s, size_t max)
{
	size_t chars = 0, i = 0, cut = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) == 0x80)
			continue;
		if (chars == max - 1)
			cut = i;
		if (++chars > max)
			break;
	}
	if (!s[i])
		return kx_buf_adds(b, s);
	return kx_buf_add(b, s, cut) || kx_buf_adds(b, "\xe2\x80\xa6") ? KX_ENOMEM : 0;
}

static int add_quoted(struct kx_buf *b, const char *s)
{
	return kx_buf_addc(b, '\'') || add_cut(b, s, SHOW_MAX) || kx_buf_addc(b, '\'') ? KX_ENOMEM
										       : 0;
}

/* The value of `per` for the event, or NULL. */
static const char *per_value(const struct rule_state *rs, const struct view *w)
{
	return rs->rule->per ? view_get(w, rs->rule->per) : NULL;
}

/* "account '@brand'", "no account", "all events", "target 'x' (action 'comment',
 * content hash 'h')". */
static int group_text(const struct rule_state *rs, const struct view *w,
		      const struct kx_audit_event *ev, struct kx_buf *b)
{
	const char *per = rs->rule->per, *v;
	int rc = 0;
	if (rs->rule->kind == KX_DETECT_RATE) {
		if (!per)
			return kx_buf_adds(b, "all events");
		if (!(v = per_value(rs, w)))
			return kx_buf_addf(b, "no %s", per);
		return kx_buf_addf(b, "%s ", per) || add_quoted(b, v) ? KX_ENOMEM : 0;
	}
	if (ev->target)
		rc = kx_buf_adds(b, "target ") || add_quoted(b, ev->target);
	else
		rc = kx_buf_adds(b, "no target");
	rc = rc || kx_buf_adds(b, " (action ") || add_quoted(b, ev->action ? ev->action : "");
	if (ev->content_hash)
		rc = rc || kx_buf_adds(b, ", content hash ") || add_quoted(b, ev->content_hash);
	else
		rc = rc || kx_buf_adds(b, ", no content hash");
	return rc || kx_buf_addc(b, ')') ? KX_ENOMEM : 0;
}

/* What a rate rule counts, for a title: the selector's action when it names
 * one ("dm"), else "matching". */
static const char *rate_what(const struct rule_state *rs)
{
	const struct kx_selector_req *r = kx_selector_get(&rs->sel, "action");
	return r && r->op == KX_SELECTOR_EQ ? r->values[0] : "matching";
}

static int make_title(const struct rule_state *rs, const struct view *w,
		      const struct kx_audit_event *ev, uint32_t count, struct kx_buf *out)
{
	const struct kx_detection *r = rs->rule;
	struct kx_buf b;
	char dur[32];
	int rc;

	if (r->title)
		return add_cut(out, r->title, KX_TITLE_MAX);
	kx_buf_init(&b, KX_TEXT_MAX);
	kx_duration_format(r->window, dur);
	rc = kx_buf_addf(&b, "Detection '%s': %u ", r->name, count);
	if (!rc && r->kind == KX_DETECT_RATE) {
		const char *v = per_value(rs, w);
		rc = kx_buf_addf(&b, "%s events", rate_what(rs));
		if (!rc && r->per && v)
			rc = kx_buf_addf(&b, " for %s ", r->per) || add_quoted(&b, v);
		else if (!rc && r->per)
			rc = kx_buf_addf(&b, " with no %s", r->per);
	} else if (!rc) {
		rc = kx_buf_adds(&b, "duplicate ") || add_cut(&b, ev->action ? ev->action : "", SHOW_MAX) ||
		     kx_buf_adds(&b, " events");
		if (!rc && ev->target)
			rc = kx_buf_adds(&b, " to ") || add_quoted(&b, ev->target);
	}
	rc = rc || kx_buf_addf(&b, " in %s", dur) || add_cut(out, kx_buf_str(&b), KX_TITLE_MAX);
	kx_buf_release(&b);
	return rc ? KX_ENOMEM : 0;
}

static int make_evidence(const struct rule_state *rs, const struct view *w,
			 const struct kx_audit_event *ev, uint32_t count, kx_ms first, kx_ms last,
			 struct kx_buf *b)
{
	const struct kx_detection *r = rs->rule;
	char dur[32], t1[KX_TIME_STRLEN], t2[KX_TIME_STRLEN];
	int rc;

	kx_duration_format(r->window, dur);
	rc = kx_buf_addf(b, "Detection '%s' (%s) fired: %u events ", r->name,
			 r->kind == KX_DETECT_RATE ? "rate" : "duplicates", count);
	if (r->kind == KX_DETECT_RATE) {
		const char *v = per_value(rs, w);
		if (*r->selector)
			rc = rc || kx_buf_adds(b, "matching ") || add_quoted(b, r->selector);
		else
			rc = rc || kx_buf_adds(b, "of any kind");
		if (r->per && v)
			rc = rc || kx_buf_addf(b, " for %s ", r->per) || add_quoted(b, v);
		else if (r->per)
			rc = rc || kx_buf_addf(b, " with no %s", r->per);
	} else {
		rc = rc || kx_buf_adds(b, "with the same action ") ||
		     add_quoted(b, ev->action ? ev->action : "");
		rc = rc || (ev->target ? kx_buf_adds(b, ", target ") || add_quoted(b, ev->target)
				       : kx_buf_adds(b, ", no target"));
		rc = rc || (ev->content_hash
				    ? kx_buf_adds(b, " and content hash ") || add_quoted(b, ev->content_hash)
				    : kx_buf_adds(b, " and no content hash"));
		if (*r->selector)
			rc = rc || kx_buf_adds(b, ", among events matching ") || add_quoted(b, r->selector);
	}
	rc = rc || kx_buf_addf(b, " within %s, over the threshold of %u.\n", dur, r->threshold);
	rc = rc || kx_buf_addf(b, "First at %s, last at %s.\n", kx_time_format(first, t1),
			       kx_time_format(last, t2));
	rc = rc || kx_buf_addf(b, "Triggering event: seq %lld", (long long)ev->seq);
	if (ev->actor)
		rc = rc || kx_buf_adds(b, ", actor ") || add_quoted(b, ev->actor);
	if (ev->client)
		rc = rc || kx_buf_adds(b, ", client ") || add_quoted(b, ev->client);
	if (ev->account)
		rc = rc || kx_buf_adds(b, ", account ") || add_quoted(b, ev->account);
	if (ev->platform)
		rc = rc || kx_buf_adds(b, ", platform ") || add_quoted(b, ev->platform);
	if (ev->lane)
		rc = rc || kx_buf_adds(b, ", lane ") || add_quoted(b, ev->lane);
	rc = rc || kx_buf_adds(b, ".");
	return rc ? KX_ENOMEM : 0;
}

/* The incident's labels: the group's scope fields as the event has them.
 * A value that cannot be a label ("") is left out. */
static int make_labels(const struct kx_detection *r, const struct kx_audit_event *ev,
		       struct kx_labels *ls)
{
	const char *const keys[] = {"client", "account", "platform", "lane"};
	const char *const vals[] = {ev->client, ev->account, ev->platform, ev->lane};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct kx_err e = {0};
		if (vals[i] && kx_labels_set(ls, keys[i], vals[i], &e) == KX_ENOMEM)
			return KX_ENOMEM;
	}
	return kx_labels_set(ls, "detection", r->name, NULL) == KX_ENOMEM ? KX_ENOMEM : 0;
}

/* The switch selector, or *out NULL when there is nothing to contain by. */
static int make_contain(const struct kx_detection *r, const struct view *w, char **out)
{
	const char *const dflt[] = {"client", "account"};
	const char *const *keys = (const char *const *)r->contain_by;
	size_t n = r->ncontain_by;
	struct kx_labels ls;
	struct kx_selector sel;
	struct kx_buf b;
	int rc = 0;

	*out = NULL;
	if (!r->contain)
		return 0;
	if (!n && r->kind == KX_DETECT_RATE && r->per) {
		keys = (const char *const *)&r->per;
		n = 1;
	} else if (!n) {
		keys = dflt;
		n = 2;
	}
	kx_labels_init(&ls);
	kx_selector_init(&sel);
	kx_buf_init(&b, KX_SELECTOR_MAX_LEN);
	for (size_t i = 0; i < n && !rc; i++) {
		const char *v = view_get(w, keys[i]);
		if (v && kx_labels_set(&ls, keys[i], v, NULL) == KX_ENOMEM)
			rc = KX_ENOMEM;
	}
	if (!rc && ls.n) {
		rc = kx_selector_from_labels(&sel, &ls, NULL) || kx_selector_format(&sel, &b) ||
				     !(*out = kx_buf_take(&b, NULL))
			     ? KX_ENOMEM
			     : 0;
	}
	kx_buf_release(&b);
	kx_selector_release(&sel);
	kx_labels_release(&ls);
	return rc;
}

static int fire(const struct kx_detector *d, const struct rule_state *rs, const struct view *w,
		const struct kx_audit_event *ev, uint32_t count, kx_ms first, kx_ms last,
		struct kx_detect_firings *out)
{
	struct kx_detect_fired f = {0};
	struct kx_buf b;
	int rc;

	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 4;
		struct kx_detect_fired *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return KX_ENOMEM;
		out->v = v;
		out->cap = cap;
	}
	f.rule = rs->rule;
	f.rule_index = (size_t)(rs - d->rules);
	f.count = count;
	f.first_at = first;
	f.last_at = last;
	f.seq = ev->seq;
	kx_labels_init(&f.labels);
	kx_buf_init(&b, KX_TEXT_MAX);
	rc = group_text(rs, w, ev, &b) || !(f.group = kx_buf_take(&b, NULL));
	rc = rc || make_title(rs, w, ev, count, &b) || !(f.title = kx_buf_take(&b, NULL));
	rc = rc || make_evidence(rs, w, ev, count, first, last, &b) ||
	     !(f.evidence = kx_buf_take(&b, NULL));
	rc = rc || make_labels(rs->rule, ev, &f.labels) ||
	     make_contain(rs->rule, w, &f.contain_selector);
	kx_buf_release(&b);
	if (rc) {
		fired_release(&f);
		return KX_ENOMEM;
	}
	out->v[out->n++] = f;
	return 0;
}

/* ---- feeding ----------------------------------------------------------------------- */

static int group_key(const struct rule_state *rs, const struct view *w,
		     const struct kx_audit_event *ev, struct kx_buf *b)
{
	if (rs->rule->kind == KX_DETECT_RATE) {
		const char *v = per_value(rs, w);
		if (!rs->rule->per)
			return 0;
		return v ? kx_buf_addc(b, '1') || kx_buf_adds(b, v) ? KX_ENOMEM : 0
			 : kx_buf_addc(b, '0');
	}
	/* each field: presence, value, NUL (values contain no NUL) */
	const char *const f[] = {ev->action, ev->target, ev->content_hash};
	for (size_t i = 0; i < 3; i++)
		if (kx_buf_addc(b, f[i] ? '1' : '0') || (f[i] && kx_buf_adds(b, f[i])) ||
		    kx_buf_add(b, "", 1))
			return KX_ENOMEM;
	return 0;
}

static int feed_rule(struct kx_detector *d, struct rule_state *rs, const struct view *w,
		     const struct kx_audit_event *ev, kx_ms now, struct kx_detect_firings *out)
{
	const struct kx_detection *r = rs->rule;
	kx_ms cutoff = now - r->window, t = ev->at, first, last;
	uint32_t count;
	struct kx_buf key;
	struct group *g;
	int rc;

	if (t == KX_TIME_UNSET || t > now)
		t = now;
	if (t <= cutoff || !kx_selector_matches(&rs->sel, &w->ls))
		return 0;
	prune(rs, cutoff);
	kx_buf_init(&key, KEY_MAX);
	if ((rc = group_key(rs, w, ev, &key))) {
		kx_buf_release(&key);
		return rc;
	}
	g = group_get(rs, d->max_groups, key.data ? key.data : "", key.len);
	kx_buf_release(&key);
	if (!g)
		return KX_ENOMEM;
	if (g->last_at <= cutoff)
		group_reset(g, t); /* quiet for a whole window: re-armed */
	if (t > g->last_at)
		g->last_at = t;
	if (t < g->since)
		g->since = t;
	if (g->fired)
		return 0;
	if (rs->exact) {
		ring_expire(g, cutoff);
		if ((rc = ring_insert(g, t, r->threshold + 1)))
			return rc;
		count = g->n;
		first = *ring_slot(g, 0);
		last = *ring_slot(g, g->n - 1);
	} else {
		if ((rc = slices_add(rs, g, t, now, &count, &first)))
			return rc;
		last = g->last_at;
	}
	if (count <= r->threshold)
		return 0;
	if ((rc = fire(d, rs, w, ev, count, first, last, out)))
		return rc;
	group_latch(g);
	return 0;
}

int kx_detector_feed(struct kx_detector *d, const struct kx_audit_event *ev, kx_ms now,
		     struct kx_detect_firings *out, struct kx_err *err)
{
	struct view w;
	int rc = 0;

	if (!d)
		return 0;
	view_build(&w, ev);
	/* every rule sees the event, even when an earlier one ran out of memory */
	for (size_t i = 0; i < d->nrules; i++)
		if (feed_rule(d, &d->rules[i], &w, ev, now, out))
			rc = KX_ENOMEM;
	return rc ? kx_err_set(err, rc, "out of memory") : 0;
}
