#include "core/gate.h"
#include "core/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Instants the gate accepts: the epoch to the end of year 9999. Keeping
 * `now` and every stored time in this range keeps t + W and now - W far
 * from overflow. */
#define NOW_MAX 253402300799999LL

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
	/* splitmix64 finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return mix(h);
}

/* The hash of an optional string: NULL is distinct from every string. */
static uint64_t hash_opt(const char *s)
{
	return s ? hash_str(s) : 0x6a09e667f3bcc908ULL;
}

static bool streq_opt(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Makes s valid one-line UTF-8 in place (messages end up in JSON bodies
 * and logs, and may echo input or cut a character with "%.64s"): control
 * characters become ' ', bytes that do not start a valid character '?'. */
static void scrub(char *s)
{
	for (size_t i = 0; s[i];) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
						: (c & 0xf8) == 0xf0	 ? 4
									 : 0;
		size_t k = 0;
		while (k < n && s[i + k])
			k++;
		if (n && k == n && kx_text_check(s + i, n, 0) == 0) {
			i += n;
			continue;
		}
		s[i++] = (c < 0x20 || c == 0x7f) ? ' ' : '?';
	}
}

/* ---- modes -------------------------------------------------------------- */

static const char *const mode_names[] = {
	[KX_GATE_BLOCK] = "block",
	[KX_GATE_APPROVE] = "approve",
	[KX_GATE_READ_ONLY] = "read_only",
};

int kx_gate_mode_parse(const char *s, enum kx_gate_mode *out, struct kx_err *err)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum kx_gate_mode)i;
			return 0;
		}
	kx_err_set(err, KX_EINVAL, "unknown switch mode '%.64s' (use block, approve or read_only)",
		   s);
	if (err)
		scrub(err->msg);
	return KX_EINVAL;
}

const char *kx_gate_mode_name(enum kx_gate_mode mode)
{
	return (unsigned)mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode]
									   : "unknown";
}

const char *kx_gate_verdict_name(enum kx_gate_verdict v)
{
	switch (v) {
	case KX_GATE_ALLOW: return "allow";
	case KX_GATE_DENY: return "deny";
	case KX_GATE_APPROVAL_REQUIRED: return "approval_required";
	}
	return "unknown";
}

const char *kx_gate_by_name(enum kx_gate_by by)
{
	switch (by) {
	case KX_GATE_BY_NONE: return "";
	case KX_GATE_BY_SWITCH: return "switch";
	case KX_GATE_BY_RAMP: return "ramp";
	case KX_GATE_BY_CAP: return "cap";
	case KX_GATE_BY_DUPLICATE: return "duplicate";
	case KX_GATE_BY_STATE: return "state";
	}
	return "unknown";
}

/* ---- cap specs ---------------------------------------------------------- */

void kx_gate_cap_init(struct kx_gate_cap *cap)
{
	kx_selector_init(&cap->sel);
	cap->limit = 0;
	cap->window = 0;
	cap->per[0] = '\0';
}

void kx_gate_cap_release(struct kx_gate_cap *cap)
{
	kx_selector_release(&cap->sel);
	kx_gate_cap_init(cap);
}

/* 1-based column of byte offset at in s, in characters. */
static size_t column_of(const char *s, size_t at)
{
	size_t col = 1;
	for (size_t i = 0; i < at && s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			col++;
	return col;
}

__attribute__((format(printf, 4, 5))) static int cap_fail(struct kx_err *err, const char *spec,
							  size_t at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kx_err_set(err, KX_EINVAL, "cannot parse cap at column %zu: %s", column_of(spec, at), msg);
	if (err)
		scrub(err->msg);
	return KX_EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_blank(const char *s, size_t i)
{
	while (is_blank(s[i]))
		i++;
	return i;
}

/* End of the word starting at i (up to a blank or the end). */
static size_t word_end(const char *s, size_t i)
{
	while (s[i] && !is_blank(s[i]))
		i++;
	return i;
}

static int parse_limit(const char *spec, size_t *i, uint32_t *out, struct kx_err *err)
{
	size_t start = *i, j = start;
	uint64_t v = 0;

	if (spec[j] == '-')
		return cap_fail(err, spec, j, "the limit must not be negative");
	if (spec[j] < '0' || spec[j] > '9')
		return cap_fail(err, spec, j, "expected a number after ':' (like '200/1d')");
	while (spec[j] >= '0' && spec[j] <= '9') {
		if (v <= KX_GATE_LIMIT_MAX)
			v = v * 10 + (uint64_t)(spec[j] - '0');
		j++;
	}
	if (spec[j] != '/' && spec[j] && !is_blank(spec[j])) {
		size_t end = j;
		while (spec[end] && spec[end] != '/' && !is_blank(spec[end]))
			end++;
		return cap_fail(err, spec, start, "limit '%.*s' is not a whole number",
				(int)(end - start > 40 ? 40 : end - start), spec + start);
	}
	if (v > KX_GATE_LIMIT_MAX)
		return cap_fail(err, spec, start, "limit %.*s is over %d",
				(int)(j - start > 40 ? 40 : j - start), spec + start, KX_GATE_LIMIT_MAX);
	j = skip_blank(spec, j);
	if (spec[j] != '/')
		return cap_fail(err, spec, j, "expected '/' and a window after the limit %u",
				(unsigned)v);
	*out = (uint32_t)v;
	*i = skip_blank(spec, j + 1);
	return 0;
}

static int parse_window(const char *spec, size_t *i, kx_ms *out, struct kx_err *err)
{
	static const struct {
		const char *word;
		kx_ms ms;
	} words[] = {
		{"second", 1000},      {"minute", 60000},     {"hour", 3600000},
		{"day", 86400000},     {"week", 604800000},
	};
	size_t start = *i, end = word_end(spec, start), n = end - start;
	char tok[48];
	int shown = (int)(n > 40 ? 40 : n);
	kx_ms w = -1;

	if (n == 0)
		return cap_fail(err, spec, start, "expected a window after '/' (like 10s, 1h or day)");
	if (n < sizeof(tok)) {
		memcpy(tok, spec + start, n);
		tok[n] = '\0';
		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strcmp(tok, words[k].word) == 0)
				w = words[k].ms;
		if (w < 0 && kx_duration_parse(tok, &w))
			w = -1;
	}
	if (w < 0 && spec[start] == '-')
		return cap_fail(err, spec, start, "window '%.*s' is negative", shown, spec + start);
	if (w < 0)
		return cap_fail(err, spec, start,
				"window '%.*s' is not a duration (like 10s, 1h30m, 1d or day)", shown,
				spec + start);
	if (w == 0)
		return cap_fail(err, spec, start, "window '%.*s' must be longer than zero", shown,
				spec + start);
	if (w > KX_GATE_WINDOW_MAX)
		return cap_fail(err, spec, start, "window '%.*s' is longer than 366 days", shown,
				spec + start);
	*out = w;
	*i = end;
	return 0;
}

static int parse_per(const char *spec, size_t *i, char per[KX_LABEL_KEY_MAX + 1],
		     struct kx_err *err)
{
	size_t start = skip_blank(spec, *i), end = word_end(spec, start), j;
	struct kx_err kerr;

	if (end - start != 3 || memcmp(spec + start, "per", 3) != 0)
		return cap_fail(err, spec, start,
				"unknown word '%.*s' after the window (expected 'per' and a label key)",
				(int)(end - start > 40 ? 40 : end - start), spec + start);
	start = skip_blank(spec, end);
	end = word_end(spec, start);
	if (end == start)
		return cap_fail(err, spec, start, "expected a label key after 'per'");
	if (end - start > KX_LABEL_KEY_MAX)
		return cap_fail(err, spec, start, "label key after 'per' is longer than %d characters",
				KX_LABEL_KEY_MAX);
	memcpy(per, spec + start, end - start);
	per[end - start] = '\0';
	if (kx_label_key_check(per, &kerr))
		return cap_fail(err, spec, start, "%s", kerr.msg);
	j = skip_blank(spec, end);
	if (spec[j])
		return cap_fail(err, spec, j, "unexpected '%.40s' after 'per %s'", spec + j, per);
	*i = j;
	return 0;
}

int kx_gate_cap_parse(struct kx_gate_cap *cap, const char *spec, struct kx_err *err)
{
	size_t len = strlen(spec), i;
	const char *colon;
	int rc;

	kx_gate_cap_release(cap);
	if (len > KX_SELECTOR_MAX_LEN + 128)
		return kx_err_set(err, KX_ETOOBIG, "cannot parse cap: longer than %d bytes",
				  KX_SELECTOR_MAX_LEN + 128);
	/* the limit never holds a ':', a selector may (inside values) */
	colon = strrchr(spec, ':');
	if (!colon)
		return cap_fail(err, spec, len,
				"expected ':' between the selector and the limit (like 'action=dm: 1/10s')");
	if ((rc = kx_selector_parse_n(&cap->sel, spec, (size_t)(colon - spec), "cap", err)))
		goto fail;
	i = skip_blank(spec, (size_t)(colon - spec) + 1);
	if ((rc = parse_limit(spec, &i, &cap->limit, err)) ||
	    (rc = parse_window(spec, &i, &cap->window, err)))
		goto fail;
	i = skip_blank(spec, i);
	if (spec[i] && (rc = parse_per(spec, &i, cap->per, err)))
		goto fail;
	return 0;
fail:
	kx_gate_cap_release(cap);
	return rc;
}

int kx_gate_cap_format(const struct kx_gate_cap *cap, struct kx_buf *out)
{
	char w[32];
	if (kx_selector_format(&cap->sel, out) ||
	    kx_buf_addf(out, ": %u/%s", (unsigned)cap->limit, kx_duration_format(cap->window, w)))
		return KX_ENOMEM;
	if (cap->per[0] && kx_buf_addf(out, " per %s", cap->per))
		return KX_ENOMEM;
	return 0;
}

/* ---- the rule index -------------------------------------------------------
 *
 * Primary filing: rules (switches, caps) are filed under the (action,
 * client) values their selector requires: a rule with `action=dm,
 * client=acme` under (dm, acme), one with `action in (dm,like)` under
 * (dm, *) and (like, *). An action with action=a and client=c can only
 * match rules filed under (a,c), (a,*), (*,c) and (*,*).
 *
 * Secondary filing: a rule that requires neither action nor client (say
 * `platform=x,target=t1`) is filed under one other key it requires a value
 * of — the one whose values the fewest such rules share — and a check
 * probes each such key the action has. Only rules that require no value at
 * all (the empty selector, only != / notin) end up under (*,*), checked
 * every time.
 *
 * Each rule sits under exactly one key choice, once per required value,
 * and an action has one value per key, so a check meets each rule at most
 * once. Buckets live in an open-addressing table; their rule ids,
 * ascending, in one flat array.
 */

static const char KEY_A[] = "action";
static const char KEY_C[] = "client";

/* Primary buckets: a = action value, c = client value (NULL = any).
 * Secondary buckets: a = the key, c = its value. */
struct bucket {
	const char *a, *c; /* borrowed from the rules' selectors */
	uint64_t hash;
	uint32_t first, n; /* ids[first .. first+n) */
	bool used, secondary;
};

struct index {
	struct bucket *slots;
	size_t mask;
	uint32_t *ids;
	const char **sec_keys; /* the keys secondary buckets are filed under */
	uint64_t *sec_hash;    /* hash of each */
	size_t nsec;
};

struct filing {
	const char *a, *c;
	uint64_t hash;
	uint32_t rule;
	bool secondary;
};

static uint64_t bucket_hash(bool secondary, uint64_t ha, uint64_t hc)
{
	return mix((ha * 0x9e3779b97f4a7c15ULL ^ (hc + 0x632be59bd9b4e019ULL)) + secondary);
}

static int cmp_opt(const char *a, const char *b)
{
	if (a == b)
		return 0;
	if (!a || !b)
		return a ? 1 : -1;
	return strcmp(a, b);
}

static int cmp_place(const struct filing *a, const struct filing *b)
{
	int c;
	if (a->secondary != b->secondary)
		return a->secondary ? 1 : -1;
	if ((c = cmp_opt(a->a, b->a)))
		return c;
	return cmp_opt(a->c, b->c);
}

static int cmp_filing(const void *x, const void *y)
{
	const struct filing *a = x, *b = y;
	int c;
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if ((c = cmp_place(a, b)))
		return c;
	return a->rule < b->rule ? -1 : a->rule > b->rule;
}

static bool positive(const struct kx_selector_req *r)
{
	return r && (r->op == KX_SELECTOR_EQ || r->op == KX_SELECTOR_IN);
}

/* The values under which sel files in one primary dimension: a positive
 * requirement's values, else the single "any". */
static size_t filed_values(const struct kx_selector *sel, const char *key,
			   char *const **values)
{
	static char *const any[] = {NULL};
	const struct kx_selector_req *r = kx_selector_get(sel, key);
	if (positive(r)) {
		*values = r->values;
		return r->n;
	}
	*values = any;
	return 1;
}

static void index_release(struct index *ix)
{
	free(ix->slots);
	free(ix->ids);
	free(ix->sec_keys);
	free(ix->sec_hash);
	memset(ix, 0, sizeof(*ix));
}

/* A growable array of filings. */
struct filings {
	struct filing *v;
	size_t n, cap;
};

static int file_under(struct filings *f, bool secondary, const char *a, const char *c,
		      uint32_t rule)
{
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 64;
		struct filing *p = realloc(f->v, ncap * sizeof(*p));
		if (!p)
			return KX_ENOMEM;
		f->v = p;
		f->cap = ncap;
	}
	f->v[f->n].a = a;
	f->v[f->n].c = c;
	f->v[f->n].secondary = secondary;
	f->v[f->n].rule = rule;
	f->v[f->n].hash = bucket_hash(secondary, hash_opt(a), hash_opt(c));
	f->n++;
	return 0;
}

#define SEL_AT(rules, i, stride, off)                                                       \
	((const struct kx_selector *)(const void *)((const char *)(rules) + (i) * (stride) + (off)))

/* How many secondary candidates share (key, value): counted over the
 * sorted array of every such pair. */
static size_t shared(const struct filings *pairs, const char *key, const char *value)
{
	size_t lo = 0, hi = pairs->n, first;
	struct filing probe = {.a = key, .c = value, .secondary = true};
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cmp_place(&pairs->v[mid], &probe) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < pairs->n && cmp_place(&pairs->v[lo], &probe) == 0)
		lo++;
	return lo - first;
}

static int cmp_place_q(const void *x, const void *y)
{
	return cmp_place(x, y);
}

/* Files every rule that requires no action or client value under its
 * least shared other requirement. */
static int file_secondary(struct filings *f, const void *rules, size_t n, size_t stride,
			  size_t off)
{
	struct filings pairs = {0};
	int rc = 0;

	/* every (key, value) a secondary rule could be filed under */
	for (size_t i = 0; i < n && !rc; i++) {
		const struct kx_selector *sel = SEL_AT(rules, i, stride, off);
		if (positive(kx_selector_get(sel, KEY_A)) || positive(kx_selector_get(sel, KEY_C)))
			continue;
		for (size_t k = 0; k < sel->n && !rc; k++)
			if (positive(&sel->v[k]))
				for (size_t j = 0; j < sel->v[k].n && !rc; j++)
					rc = file_under(&pairs, true, sel->v[k].key,
							sel->v[k].values[j], (uint32_t)i);
	}
	if (pairs.n)
		qsort(pairs.v, pairs.n, sizeof(*pairs.v), cmp_place_q);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct kx_selector *sel = SEL_AT(rules, i, stride, off);
		const struct kx_selector_req *best = NULL;
		size_t best_cost = SIZE_MAX;
		if (positive(kx_selector_get(sel, KEY_A)) || positive(kx_selector_get(sel, KEY_C)))
			continue;
		for (size_t k = 0; k < sel->n; k++) {
			size_t cost = 0;
			if (!positive(&sel->v[k]))
				continue;
			for (size_t j = 0; j < sel->v[k].n; j++)
				cost += shared(&pairs, sel->v[k].key, sel->v[k].values[j]);
			if (cost < best_cost) {
				best = &sel->v[k];
				best_cost = cost;
			}
		}
		for (size_t j = 0; best && j < best->n && !rc; j++)
			rc = file_under(f, true, best->key, best->values[j], (uint32_t)i);
	}
	free(pairs.v);
	return rc;
}

/* Notes the distinct keys secondary buckets use. */
static int collect_sec_keys(struct index *ix, const struct filings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		bool seen = false;
		if (!f->v[i].secondary)
			continue;
		for (size_t k = 0; k < ix->nsec && !seen; k++)
			seen = strcmp(ix->sec_keys[k], f->v[i].a) == 0;
		if (seen)
			continue;
		if (!(ix->nsec & (ix->nsec + 1))) { /* 0, 1, 3, 7, …: grow */
			size_t cap = (ix->nsec + 1) * 2;
			const char **k = realloc(ix->sec_keys, cap * sizeof(*k));
			uint64_t *h;
			if (!k)
				return KX_ENOMEM;
			ix->sec_keys = k;
			h = realloc(ix->sec_hash, cap * sizeof(*h));
			if (!h)
				return KX_ENOMEM;
			ix->sec_hash = h;
		}
		ix->sec_keys[ix->nsec] = f->v[i].a;
		ix->sec_hash[ix->nsec] = hash_opt(f->v[i].a);
		ix->nsec++;
	}
	return 0;
}

/* Builds ix over the selectors at rules + i * stride + off, i < n (the
 * selector embedded in each rule struct). */
static int index_build(struct index *ix, const void *rules, size_t n, size_t stride,
		       size_t off)
{
	struct filings f = {0};
	size_t nb = 0, slots = 16;
	int rc = KX_ENOMEM;

	for (size_t i = 0; i < n; i++) {
		const struct kx_selector *sel = SEL_AT(rules, i, stride, off);
		char *const *av, *const *cv;
		size_t na = filed_values(sel, KEY_A, &av), nc = filed_values(sel, KEY_C, &cv);
		bool has_other = false;
		for (size_t k = 0; k < sel->n; k++)
			has_other |= positive(&sel->v[k]);
		if (!av[0] && !cv[0] && has_other)
			continue; /* secondary */
		for (size_t x = 0; x < na; x++)
			for (size_t y = 0; y < nc; y++)
				if (file_under(&f, false, av[x], cv[y], (uint32_t)i))
					goto out;
	}
	if (file_secondary(&f, rules, n, stride, off) || collect_sec_keys(ix, &f))
		goto out;
	if (f.n)
		qsort(f.v, f.n, sizeof(*f.v), cmp_filing);
	for (size_t i = 0; i < f.n; i++)
		if (i == 0 || cmp_place(&f.v[i], &f.v[i - 1]))
			nb++;
	while (slots < nb * 2)
		slots *= 2;
	ix->slots = calloc(slots, sizeof(*ix->slots));
	ix->ids = malloc((f.n ? f.n : 1) * sizeof(*ix->ids));
	if (!ix->slots || !ix->ids)
		goto out;
	ix->mask = slots - 1;
	for (size_t i = 0; i < f.n;) {
		size_t j = i, at;
		while (j < f.n && !cmp_place(&f.v[j], &f.v[i])) {
			ix->ids[j] = f.v[j].rule;
			j++;
		}
		for (at = f.v[i].hash & ix->mask; ix->slots[at].used; at = (at + 1) & ix->mask)
			;
		ix->slots[at] = (struct bucket){f.v[i].a, f.v[i].c, f.v[i].hash, (uint32_t)i,
						(uint32_t)(j - i), true, f.v[i].secondary};
		i = j;
	}
	rc = 0;
out:
	free(f.v);
	if (rc)
		index_release(ix);
	return rc;
}

static const struct bucket *index_find(const struct index *ix, bool secondary, const char *a,
				       uint64_t ha, const char *c, uint64_t hc)
{
	uint64_t h = bucket_hash(secondary, ha, hc);
	for (size_t at = h & ix->mask; ix->slots[at].used; at = (at + 1) & ix->mask) {
		const struct bucket *b = &ix->slots[at];
		if (b->hash == h && b->secondary == secondary && streq_opt(b->a, a) &&
		    streq_opt(b->c, c))
			return b;
	}
	return NULL;
}

/* The action, with what the index lookups need computed once. */
struct view {
	const struct kx_gate_action *act;
	const char *a, *c;
	uint64_t ha, hc;
	const char *key; /* NULL when none */
	size_t key_len;
};

/* Walks the rules that may match an action: the four primary buckets,
 * then the secondary bucket of each of the action's labels that secondary
 * rules are filed under — probed by walking the index's secondary keys or
 * the action's labels, whichever list is shorter. */
struct cand_iter {
	const struct index *ix;
	const struct view *v;
	size_t probe, probes;
	bool by_labels;
	const uint32_t *ids;
	uint32_t n, i;
};

static void cand_start(struct cand_iter *it, const struct index *ix, const struct view *v)
{
	size_t nl = v->act->labels->n;
	it->ix = ix;
	it->v = v;
	it->probe = 0;
	it->by_labels = ix->nsec > nl;
	it->probes = 4 + (it->by_labels ? nl : ix->nsec);
	it->n = it->i = 0;
	it->ids = NULL;
}

static const struct bucket *probe(const struct cand_iter *it, size_t k)
{
	const struct index *ix = it->ix;
	const struct view *v = it->v;
	const uint64_t hany = hash_opt(NULL);
	const struct kx_label *l;
	const char *val;

	switch (k) {
	case 0: return v->a && v->c ? index_find(ix, false, v->a, v->ha, v->c, v->hc) : NULL;
	case 1: return v->a ? index_find(ix, false, v->a, v->ha, NULL, hany) : NULL;
	case 2: return v->c ? index_find(ix, false, NULL, hany, v->c, v->hc) : NULL;
	case 3: return index_find(ix, false, NULL, hany, NULL, hany);
	}
	if (!ix->nsec)
		return NULL;
	if (it->by_labels) {
		l = &v->act->labels->v[k - 4];
		return index_find(ix, true, l->key, hash_str(l->key), l->value, hash_str(l->value));
	}
	val = kx_labels_get(v->act->labels, ix->sec_keys[k - 4]);
	return val ? index_find(ix, true, ix->sec_keys[k - 4], ix->sec_hash[k - 4], val,
				hash_str(val))
		   : NULL;
}

static bool cand_next(struct cand_iter *it, uint32_t *rule)
{
	while (it->i >= it->n) {
		const struct bucket *b;
		if (it->probe >= it->probes)
			return false;
		b = probe(it, it->probe++);
		if (b) {
			it->ids = it->ix->ids + b->first;
			it->n = b->n;
			it->i = 0;
		}
	}
	*rule = it->ids[it->i++];
	return true;
}

/* ---- snapshots ----------------------------------------------------------- */

enum { KIND_CAP = 1, KIND_RAMP = 2 };

struct sw_rule {
	struct kx_gate_switch pub; /* its strings are the owned copies below */
	struct kx_selector sel;
	char *id, *sel_text, *reason, *set_by, *incident;
	uint64_t id_hash; /* of the ramp counter's identity */
};

struct cap_rule {
	struct kx_gate_cap cap;
	char *id, *spec, *sel_text;
	uint64_t id_hash;
};

/* Invariants: once sealed nothing changes; sw and caps are in the order
 * added; each index holds every rule of its kind. */
struct kx_gate_snapshot {
	struct sw_rule *sw;
	size_t nsw, sw_alloc;
	struct cap_rule *caps;
	size_t ncap, cap_alloc;
	kx_ms dedupe_window;
	bool sealed;
	struct index sw_ix, cap_ix;
};

struct kx_gate_snapshot *kx_gate_snapshot_new(void)
{
	struct kx_gate_snapshot *s = calloc(1, sizeof(*s));
	if (s)
		s->dedupe_window = KX_GATE_DEDUPE_DEFAULT;
	return s;
}

static void sw_rule_release(struct sw_rule *r)
{
	kx_selector_release(&r->sel);
	free(r->id);
	free(r->sel_text);
	free(r->reason);
	free(r->set_by);
	free(r->incident);
}

static void cap_rule_release(struct cap_rule *r)
{
	kx_gate_cap_release(&r->cap);
	free(r->id);
	free(r->spec);
	free(r->sel_text);
}

void kx_gate_snapshot_free(struct kx_gate_snapshot *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->nsw; i++)
		sw_rule_release(&snap->sw[i]);
	for (size_t i = 0; i < snap->ncap; i++)
		cap_rule_release(&snap->caps[i]);
	free(snap->sw);
	free(snap->caps);
	index_release(&snap->sw_ix);
	index_release(&snap->cap_ix);
	free(snap);
}

static int check_id(const char *what, const char *id, struct kx_err *err)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "%s id is empty", what);
	if (n > KX_GATE_ID_MAX) {
		kx_err_set(err, KX_EINVAL, "%s id '%.64s…' is longer than %d bytes", what, id,
			   KX_GATE_ID_MAX);
		if (err)
			scrub(err->msg);
		return KX_EINVAL;
	}
	if (kx_text_check(id, n, 0))
		return kx_err_set(err, KX_EINVAL,
				  "%s id has control characters or invalid UTF-8", what);
	return 0;
}

static int check_ramp(const struct kx_gate_switch *sw, struct kx_err *err)
{
	const struct kx_gate_ramp *r = &sw->ramp;
	if (r->start == KX_TIME_UNSET)
		return 0;
	if (r->start < 0 || r->end > NOW_MAX || r->end <= r->start)
		return kx_err_set(err, KX_EINVAL, "switch '%s': ramp must end after it starts",
				  sw->id);
	if (r->end - r->start > KX_GATE_WINDOW_MAX)
		return kx_err_set(err, KX_EINVAL, "switch '%s': ramp lasts longer than 366 days",
				  sw->id);
	if (r->window <= 0 || r->window > KX_GATE_WINDOW_MAX)
		return kx_err_set(err, KX_EINVAL,
				  "switch '%s': ramp window must be longer than zero and at most 366 days",
				  sw->id);
	if (r->peak < 1 || r->peak > KX_GATE_LIMIT_MAX)
		return kx_err_set(err, KX_EINVAL, "switch '%s': ramp peak must be 1 to %d",
				  sw->id, KX_GATE_LIMIT_MAX);
	if (r->floor > r->peak)
		return kx_err_set(err, KX_EINVAL, "switch '%s': ramp floor %u is above its peak %u",
				  sw->id, (unsigned)r->floor, (unsigned)r->peak);
	return 0;
}

/* strdup of an optional string; *ok turns false when out of memory. */
static char *dup_opt(const char *s, bool *ok)
{
	char *d;
	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static char *format_selector(const struct kx_selector *sel)
{
	struct kx_buf b;
	kx_buf_init(&b, 0);
	if (kx_selector_format(sel, &b))
		return NULL;
	return kx_buf_take(&b, NULL);
}

static uint64_t rule_hash(int kind, const char *id)
{
	return mix(hash_str(id) + (uint64_t)kind);
}

int kx_gate_snapshot_add_switch(struct kx_gate_snapshot *snap, const struct kx_gate_switch *sw,
				struct kx_err *err)
{
	struct sw_rule r = {0};
	struct kx_err serr;
	bool ok = true;
	int rc;

	if (snap->sealed)
		return kx_err_set(err, KX_ECONFLICT, "the snapshot is sealed");
	if ((rc = check_id("switch", sw->id, err)))
		return rc;
	if ((unsigned)sw->mode > KX_GATE_READ_ONLY)
		return kx_err_set(err, KX_EINVAL, "switch '%s': unknown mode %d", sw->id,
				  (int)sw->mode);
	if ((rc = check_ramp(sw, err)))
		return rc;
	kx_selector_init(&r.sel);
	if ((rc = kx_selector_parse(&r.sel, sw->selector ? sw->selector : "", &serr))) {
		kx_err_set(err, rc, "switch '%s': %s", sw->id, serr.msg);
		goto fail;
	}
	r.id = dup_opt(sw->id, &ok);
	r.reason = dup_opt(sw->reason, &ok);
	r.set_by = dup_opt(sw->set_by, &ok);
	r.incident = dup_opt(sw->incident, &ok);
	r.sel_text = format_selector(&r.sel);
	if (!ok || !r.sel_text)
		goto nomem;
	if (snap->nsw == snap->sw_alloc) {
		size_t n = snap->sw_alloc ? snap->sw_alloc * 2 : 16;
		struct sw_rule *p = realloc(snap->sw, n * sizeof(*p));
		if (!p)
			goto nomem;
		snap->sw = p;
		snap->sw_alloc = n;
	}
	r.pub = *sw;
	r.pub.id = r.id;
	r.pub.selector = r.sel_text;
	r.pub.reason = r.reason;
	r.pub.set_by = r.set_by;
	r.pub.incident = r.incident;
	r.id_hash = rule_hash(KIND_RAMP, r.id);
	snap->sw[snap->nsw++] = r;
	return 0;
nomem:
	rc = kx_err_set(err, KX_ENOMEM, "out of memory");
fail:
	sw_rule_release(&r);
	return rc;
}

int kx_gate_snapshot_add_cap(struct kx_gate_snapshot *snap, const char *id, const char *spec,
			     struct kx_err *err)
{
	struct cap_rule r = {0};
	struct kx_buf b;
	struct kx_err cerr;
	int rc;

	if (snap->sealed)
		return kx_err_set(err, KX_ECONFLICT, "the snapshot is sealed");
	if ((rc = check_id("cap", id, err)))
		return rc;
	kx_gate_cap_init(&r.cap);
	if ((rc = kx_gate_cap_parse(&r.cap, spec, &cerr))) {
		kx_err_set(err, rc, "cap '%s': %s", id, cerr.msg);
		goto fail;
	}
	kx_buf_init(&b, 0);
	if (kx_gate_cap_format(&r.cap, &b))
		goto nomem;
	r.spec = kx_buf_take(&b, NULL);
	r.id = strdup(id);
	r.sel_text = format_selector(&r.cap.sel);
	if (!r.spec || !r.id || !r.sel_text)
		goto nomem;
	if (snap->ncap == snap->cap_alloc) {
		size_t n = snap->cap_alloc ? snap->cap_alloc * 2 : 16;
		struct cap_rule *p = realloc(snap->caps, n * sizeof(*p));
		if (!p)
			goto nomem;
		snap->caps = p;
		snap->cap_alloc = n;
	}
	r.id_hash = rule_hash(KIND_CAP, r.id);
	snap->caps[snap->ncap++] = r;
	return 0;
nomem:
	rc = kx_err_set(err, KX_ENOMEM, "out of memory");
fail:
	cap_rule_release(&r);
	return rc;
}

int kx_gate_snapshot_set_dedupe_window(struct kx_gate_snapshot *snap, kx_ms window,
				       struct kx_err *err)
{
	if (snap->sealed)
		return kx_err_set(err, KX_ECONFLICT, "the snapshot is sealed");
	if (window < 0 || window > KX_GATE_WINDOW_MAX)
		return kx_err_set(err, KX_EINVAL,
				  "dedupe window must be 0 (off) to 366 days");
	snap->dedupe_window = window;
	return 0;
}

static int cmp_id_ptr(const void *a, const void *b)
{
	return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* KX_EINVAL naming the first id that appears twice among n ids found at
 * base + i * stride. */
static int check_unique(const char *what, const void *base, size_t n, size_t stride,
			struct kx_err *err)
{
	char *const **v;
	int rc = 0;
	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = (char *const *)(const void *)((const char *)base + i * stride);
	qsort(v, n, sizeof(*v), cmp_id_ptr);
	for (size_t i = 1; i < n && !rc; i++)
		if (strcmp(*v[i], *v[i - 1]) == 0)
			rc = kx_err_set(err, KX_EINVAL, "%s id '%s' is used twice", what, *v[i]);
	free(v);
	return rc;
}

int kx_gate_snapshot_seal(struct kx_gate_snapshot *snap, struct kx_err *err)
{
	int rc;
	if (snap->sealed)
		return 0;
	if (snap->nsw > UINT32_MAX || snap->ncap > UINT32_MAX)
		return kx_err_set(err, KX_ETOOBIG, "too many rules");
	/* (no arithmetic on the arrays when they are empty: they may be NULL) */
	if ((snap->nsw &&
	     (rc = check_unique("switch", (const char *)snap->sw + offsetof(struct sw_rule, id),
				snap->nsw, sizeof(struct sw_rule), err))) ||
	    (snap->ncap &&
	     (rc = check_unique("cap", (const char *)snap->caps + offsetof(struct cap_rule, id),
				snap->ncap, sizeof(struct cap_rule), err))))
		return rc;
	if (index_build(&snap->sw_ix, snap->sw, snap->nsw, sizeof(struct sw_rule),
			offsetof(struct sw_rule, sel)) ||
	    index_build(&snap->cap_ix, snap->caps, snap->ncap, sizeof(struct cap_rule),
			offsetof(struct cap_rule, cap.sel))) {
		index_release(&snap->sw_ix);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	snap->sealed = true;
	return 0;
}

size_t kx_gate_snapshot_switch_count(const struct kx_gate_snapshot *snap)
{
	return snap->nsw;
}

const struct kx_gate_switch *kx_gate_snapshot_switch(const struct kx_gate_snapshot *snap,
						     size_t i)
{
	return i < snap->nsw ? &snap->sw[i].pub : NULL;
}

size_t kx_gate_snapshot_cap_count(const struct kx_gate_snapshot *snap)
{
	return snap->ncap;
}

const struct kx_gate_cap *kx_gate_snapshot_cap(const struct kx_gate_snapshot *snap, size_t i,
					       const char **id, const char **spec)
{
	if (i >= snap->ncap)
		return NULL;
	if (id)
		*id = snap->caps[i].id;
	if (spec)
		*spec = snap->caps[i].spec;
	return &snap->caps[i].cap;
}

/* ---- state: hash tables with a least-recently-used list -------------------
 *
 * Both tables (counters, idempotency keys) chain their entries in buckets
 * and thread them on a doubly linked LRU list whose head is the entry
 * touched longest ago. The bucket array doubles when entries outnumber
 * buckets; if that allocation fails the table keeps working with longer
 * chains.
 */

struct lnode {
	struct lnode *hnext;
	struct lnode *prev, *next;
	uint64_t hash;
};

struct table {
	struct lnode **b;
	size_t nb, n;
	struct lnode lru; /* sentinel: lru.next is the oldest */
};

/* A counter: the sliding log of one cap (per value) or one ramp.
 * Invariants: ring holds len timestamps in non-decreasing order starting
 * at head; len <= rcap; the entry is on its table's LRU list. */
struct counter {
	struct lnode node;
	kx_ms *ring;
	uint32_t rcap, head, len;
	kx_ms window; /* of the last event recorded, for expiry */
	uint64_t pin; /* == state epoch while a record holds it */
	uint8_t kind;
	const char *per; /* NULL = no per value; points into name */
	char name[];	 /* id NUL [per NUL] */
};

struct key_entry {
	struct lnode node;
	kx_ms at; /* when the key was allowed */
	char key[];
};

struct kx_gate_state {
	struct kx_gate_limits lim;
	struct table counters, keys;
	size_t events; /* sum of rcap over counters */
	size_t bytes;
	uint64_t evicted_counters, evicted_keys;
	uint64_t epoch;
};

#define TABLE_MIN_BUCKETS 64

/* nb: a power of two, at least TABLE_MIN_BUCKETS. */
static int table_init(struct kx_gate_state *st, struct table *t, size_t nb)
{
	t->b = calloc(nb, sizeof(*t->b));
	if (!t->b)
		return KX_ENOMEM;
	t->nb = nb;
	t->n = 0;
	t->lru.next = t->lru.prev = &t->lru;
	st->bytes += t->nb * sizeof(*t->b);
	return 0;
}

static void lru_unlink(struct lnode *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

static void lru_append(struct table *t, struct lnode *n)
{
	n->prev = t->lru.prev;
	n->next = &t->lru;
	t->lru.prev->next = n;
	t->lru.prev = n;
}

static void lru_touch(struct table *t, struct lnode *n)
{
	lru_unlink(n);
	lru_append(t, n);
}

static void table_grow(struct kx_gate_state *st, struct table *t, size_t max)
{
	size_t nb = t->nb * 2;
	struct lnode **b;
	if (t->n <= t->nb || t->nb >= max)
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nb; i++)
		for (struct lnode *n = t->b[i], *next; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	st->bytes += (nb - t->nb) * sizeof(*b);
	free(t->b);
	t->b = b;
	t->nb = nb;
}

static void table_link(struct kx_gate_state *st, struct table *t, struct lnode *n, size_t max)
{
	struct lnode **head = &t->b[n->hash & (t->nb - 1)];
	n->hnext = *head;
	*head = n;
	lru_append(t, n);
	t->n++;
	table_grow(st, t, max);
}

static void table_unlink(struct table *t, struct lnode *n)
{
	struct lnode **p = &t->b[n->hash & (t->nb - 1)];
	while (*p != n)
		p = &(*p)->hnext;
	*p = n->hnext;
	lru_unlink(n);
	t->n--;
}

static struct lnode *lru_oldest(const struct table *t)
{
	return t->lru.next == &t->lru ? NULL : t->lru.next;
}

/* ---- state: counters ------------------------------------------------------ */

static kx_ms ring_at(const struct counter *c, uint32_t i)
{
	uint32_t at = c->head + i;
	if (at >= c->rcap)
		at -= c->rcap;
	return c->ring[at];
}

static kx_ms ring_newest(const struct counter *c)
{
	return ring_at(c, c->len - 1);
}

/* Index of the first event still in the window at now (t > now - w). */
static uint32_t ring_first_in(const struct counter *c, kx_ms now, kx_ms w)
{
	uint32_t lo = 0, hi = c->len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ring_at(c, mid) > now - w)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static bool counter_live(const struct counter *c, kx_ms now)
{
	return c->len && ring_newest(c) + c->window > now;
}

static size_t counter_size(const struct counter *c)
{
	size_t n = strlen(c->name) + 1;
	if (c->per)
		n += strlen(c->per) + 1;
	return sizeof(*c) + n;
}

static void counter_free(struct kx_gate_state *st, struct counter *c)
{
	table_unlink(&st->counters, &c->node);
	st->events -= c->rcap;
	st->bytes -= counter_size(c) + c->rcap * sizeof(kx_ms);
	free(c->ring);
	free(c);
}

/* Evicts the least recently used counter not pinned by the record in
 * progress. False when every counter is pinned. */
static bool evict_counter(struct kx_gate_state *st, kx_ms now)
{
	for (struct lnode *n = lru_oldest(&st->counters); n && n != &st->counters.lru;
	     n = n->next) {
		struct counter *c = (struct counter *)n;
		if (c->pin == st->epoch)
			continue;
		if (counter_live(c, now))
			st->evicted_counters++;
		counter_free(st, c);
		return true;
	}
	return false;
}

/* What one counter is, for one action: filled in by for_each_counter(). */
struct cref {
	int kind;
	const char *id;
	uint64_t hash; /* of (kind, id, per) */
	const char *per;
	uint32_t limit;	   /* allowed in the window now */
	uint32_t ring_max; /* timestamps worth keeping: N, or a ramp's peak */
	kx_ms window;
	uint64_t order; /* caps in definition order, then ramps */
	const struct cap_rule *cap;
	const struct sw_rule *sw;
};

static struct counter *counter_find(const struct table *t, const struct cref *r)
{
	for (struct lnode *n = t->b[r->hash & (t->nb - 1)]; n; n = n->hnext) {
		const struct counter *c = (const struct counter *)n;
		if (n->hash == r->hash && c->kind == r->kind && strcmp(c->name, r->id) == 0 &&
		    streq_opt(c->per, r->per))
			return (struct counter *)c;
	}
	return NULL;
}

static struct counter *counter_new(struct kx_gate_state *st, const struct cref *r, kx_ms now)
{
	size_t idn = strlen(r->id) + 1, pn = r->per ? strlen(r->per) + 1 : 0;
	struct counter *c;

	while (st->counters.n >= st->lim.max_counters && evict_counter(st, now))
		;
	c = calloc(1, sizeof(*c) + idn + pn);
	if (!c)
		return NULL;
	c->node.hash = r->hash;
	c->kind = (uint8_t)r->kind;
	memcpy(c->name, r->id, idn);
	if (r->per) {
		memcpy(c->name + idn, r->per, pn);
		c->per = c->name + idn;
	}
	c->window = r->window;
	table_link(st, &st->counters, &c->node, st->lim.max_counters);
	st->bytes += counter_size(c);
	return c;
}

/* Makes room in c's ring for one more timestamp, up to ring_max. */
static int ring_reserve(struct kx_gate_state *st, struct counter *c, uint32_t ring_max,
			kx_ms now)
{
	uint32_t need = c->len + 1 < ring_max ? c->len + 1 : ring_max, ncap;
	kx_ms *ring;

	if (need <= c->rcap)
		return 0;
	/* start at one slot (most counters are cooldowns or see few events)
	 * and double: amortised O(1) per event, at most 2x the events held */
	ncap = c->rcap ? (c->rcap > ring_max / 2 ? ring_max : c->rcap * 2) : 1;
	if (ncap < need)
		ncap = need;
	if (ncap > ring_max)
		ncap = ring_max;
	while (st->events + (ncap - c->rcap) > st->lim.max_events && evict_counter(st, now))
		;
	ring = malloc(ncap * sizeof(*ring));
	if (!ring)
		return KX_ENOMEM;
	for (uint32_t i = 0; i < c->len; i++)
		ring[i] = ring_at(c, i);
	free(c->ring);
	st->events += ncap - c->rcap;
	st->bytes += (ncap - c->rcap) * sizeof(*ring);
	c->ring = ring;
	c->rcap = ncap;
	c->head = 0;
	return 0;
}

/* Appends t, keeping at most ring_max timestamps (the newest). */
static void ring_push(struct counter *c, kx_ms t, uint32_t ring_max, kx_ms window)
{
	if (ring_max == 0 || c->rcap == 0)
		return;
	if (c->len && t < ring_newest(c))
		t = ring_newest(c);
	while (c->len && (c->len >= ring_max || c->len >= c->rcap)) {
		c->head = c->head + 1 == c->rcap ? 0 : c->head + 1;
		c->len--;
	}
	c->ring[(c->head + c->len) % c->rcap] = t;
	c->len++;
	c->window = window;
}

/* ---- state: idempotency keys ---------------------------------------------- */

static struct key_entry *key_find(const struct table *t, uint64_t h, const char *key)
{
	for (struct lnode *n = t->b[h & (t->nb - 1)]; n; n = n->hnext)
		if (n->hash == h && strcmp(((struct key_entry *)n)->key, key) == 0)
			return (struct key_entry *)n;
	return NULL;
}

static void key_free(struct kx_gate_state *st, struct key_entry *e)
{
	table_unlink(&st->keys, &e->node);
	st->bytes -= sizeof(*e) + strlen(e->key) + 1;
	free(e);
}

/* ---- state: lifecycle ------------------------------------------------------ */

/* Buckets for n entries: the power of two table_grow would reach. */
static size_t buckets_for(size_t n)
{
	size_t nb = TABLE_MIN_BUCKETS;
	while (nb < n && nb < ((size_t)1 << 30))
		nb *= 2;
	return nb;
}

struct kx_gate_state *kx_gate_state_new(const struct kx_gate_limits *limits)
{
	struct kx_gate_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->lim.max_counters = limits && limits->max_counters ? limits->max_counters : 1 << 18;
	st->lim.max_events = limits && limits->max_events ? limits->max_events : 1 << 22;
	st->lim.max_keys = limits && limits->max_keys ? limits->max_keys : 1 << 20;
	st->bytes = sizeof(*st);
	if (table_init(st, &st->counters,
		       limits && limits->presize ? buckets_for(st->lim.max_counters) : TABLE_MIN_BUCKETS) ||
	    table_init(st, &st->keys,
		       limits && limits->presize ? buckets_for(st->lim.max_keys) : TABLE_MIN_BUCKETS)) {
		free(st->counters.b);
		free(st);
		return NULL;
	}
	return st;
}

void kx_gate_state_clear(struct kx_gate_state *st)
{
	struct lnode *n;
	while ((n = lru_oldest(&st->counters)))
		counter_free(st, (struct counter *)n);
	while ((n = lru_oldest(&st->keys)))
		key_free(st, (struct key_entry *)n);
}

void kx_gate_state_free(struct kx_gate_state *st)
{
	if (!st)
		return;
	kx_gate_state_clear(st);
	free(st->counters.b);
	free(st->keys.b);
	free(st);
}

void kx_gate_state_stats(const struct kx_gate_state *st, struct kx_gate_stats *out)
{
	out->counters = st->counters.n;
	out->events = st->events;
	out->keys = st->keys.n;
	out->bytes = st->bytes;
	out->evicted_counters = st->evicted_counters;
	out->evicted_keys = st->evicted_keys;
}

/* ---- matching ---------------------------------------------------------------- */

static bool sw_live(const struct sw_rule *r, kx_ms now)
{
	const struct kx_gate_switch *s = &r->pub;
	if (s->expires_at != KX_TIME_UNSET && now >= s->expires_at)
		return false;
	return s->ramp.start == KX_TIME_UNSET || now < s->ramp.end;
}

static bool sw_ramping(const struct sw_rule *r, kx_ms now)
{
	return r->pub.ramp.start != KX_TIME_UNSET && now >= r->pub.ramp.start;
}

/* block covers every action; approve and read_only only side effects. */
static bool sw_covers(const struct sw_rule *r, const struct view *v)
{
	return r->pub.mode == KX_GATE_BLOCK || !v->act->read_only;
}

static uint32_t ramp_limit(const struct kx_gate_ramp *rp, kx_ms now)
{
	int64_t span = rp->end - rp->start, into = now - rp->start;
	if (into <= 0)
		return rp->floor;
	if (into >= span)
		return rp->peak;
	return rp->floor + (uint32_t)((int64_t)(rp->peak - rp->floor) * into / span);
}

typedef int (*visit_fn)(void *ctx, const struct cref *r);

/* Calls fn for every counter act counts in at now: the caps it matches
 * and the ramping switches that cover it. Stops at fn's first non-zero
 * return. */
static int for_each_counter(const struct kx_gate_snapshot *snap, const struct view *v,
			    kx_ms now, visit_fn fn, void *ctx)
{
	struct cand_iter it;
	uint32_t id;
	int rc;

	for (cand_start(&it, &snap->cap_ix, v); cand_next(&it, &id);) {
		const struct cap_rule *cr = &snap->caps[id];
		struct cref r;
		if (!kx_selector_matches(&cr->cap.sel, v->act->labels))
			continue;
		r.kind = KIND_CAP;
		r.id = cr->id;
		r.per = cr->cap.per[0] ? kx_labels_get(v->act->labels, cr->cap.per) : NULL;
		r.hash = r.per ? mix(cr->id_hash ^ hash_str(r.per)) : cr->id_hash;
		r.limit = r.ring_max = cr->cap.limit;
		r.window = cr->cap.window;
		r.order = id;
		r.cap = cr;
		r.sw = NULL;
		if ((rc = fn(ctx, &r)))
			return rc;
	}
	for (cand_start(&it, &snap->sw_ix, v); cand_next(&it, &id);) {
		const struct sw_rule *sr = &snap->sw[id];
		struct cref r;
		if (!sw_live(sr, now) || !sw_ramping(sr, now) || !sw_covers(sr, v) ||
		    !kx_selector_matches(&sr->sel, v->act->labels))
			continue;
		r.kind = KIND_RAMP;
		r.id = sr->id;
		r.per = NULL;
		r.hash = sr->id_hash;
		r.limit = ramp_limit(&sr->pub.ramp, now);
		r.ring_max = sr->pub.ramp.peak;
		r.window = sr->pub.ramp.window;
		r.order = (uint64_t)snap->ncap + id;
		r.cap = NULL;
		r.sw = sr;
		if ((rc = fn(ctx, &r)))
			return rc;
	}
	return 0;
}

/* ---- retry_after ------------------------------------------------------------ */

/* The first instant at which the ramp allows at least n actions per window
 * (KX_GATE_NEVER if only after it ends). */
static kx_ms ramp_reaches(const struct kx_gate_ramp *rp, uint64_t n)
{
	int64_t span = rp->end - rp->start, num, den;
	if (n <= rp->floor)
		return rp->start;
	if (n > rp->peak)
		return KX_GATE_NEVER;
	num = (int64_t)(n - rp->floor) * span;
	den = (int64_t)(rp->peak - rp->floor);
	return rp->start + (num + den - 1) / den;
}

/* When a ramp with `count` events in its window (the in-window ones at
 * ring positions first..first+count) allows one more: the earliest t at
 * which, for some j, the j oldest have left (x_j) and the limit has grown
 * to count - j + 1 (y_j). x_j rises with j and y_j falls, so the best j is
 * where they cross: found by binary search. At the latest, the ramp ends. */
static kx_ms ramp_retry_at(const struct counter *c, const struct kx_gate_ramp *rp,
			   uint32_t first, uint32_t count, kx_ms now)
{
#define X(j) ((j) == 0 ? now : ring_at(c, first + (j) - 1) + rp->window)
#define Y(j) ramp_reaches(rp, (uint64_t)count - (j) + 1)
	uint32_t lo = 0, hi = count + 1;
	kx_ms best = rp->end, t;
	while (lo < hi) { /* smallest j with x_j >= y_j */
		uint32_t mid = lo + (hi - lo) / 2;
		if (X(mid) >= Y(mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo <= count && (t = X(lo)) < best)
		best = t;
	if (lo >= 1 && (t = Y(lo - 1)) < best)
		best = t;
#undef X
#undef Y
	return best > now ? best : now + 1;
}

/* ---- check ---------------------------------------------------------------- */

static int view_init(struct view *v, const struct kx_gate_snapshot *snap,
		     const struct kx_gate_action *act, kx_ms now, struct kx_err *err)
{
	if (!snap->sealed)
		return kx_err_set(err, KX_EINVAL, "the snapshot is not sealed");
	if (!act || !act->labels)
		return kx_err_set(err, KX_EINVAL, "the action has no labels");
	if (now < 0 || now > NOW_MAX)
		return kx_err_set(err, KX_EINVAL, "time %lld is out of range", (long long)now);
	v->act = act;
	v->key = act->idempotency_key && act->idempotency_key[0] ? act->idempotency_key : NULL;
	v->key_len = v->key ? strlen(v->key) : 0;
	if (v->key_len > KX_GATE_KEY_MAX)
		return kx_err_set(err, KX_EINVAL, "idempotency key is longer than %d bytes",
				  KX_GATE_KEY_MAX);
	if (v->key && kx_text_check(v->key, v->key_len, 0))
		return kx_err_set(err, KX_EINVAL,
				  "idempotency key has control characters or invalid UTF-8");
	v->a = kx_labels_get(act->labels, KEY_A);
	v->c = kx_labels_get(act->labels, KEY_C);
	v->ha = hash_opt(v->a);
	v->hc = hash_opt(v->c);
	return 0;
}

static int mode_rank(enum kx_gate_mode m)
{
	return m == KX_GATE_BLOCK ? 3 : m == KX_GATE_READ_ONLY ? 2 : 1;
}

/* True when switch a takes precedence over b (see gate.h). */
static bool sw_before(const struct sw_rule *a, const struct sw_rule *b)
{
	int c;
	if (!b)
		return true;
	if (mode_rank(a->pub.mode) != mode_rank(b->pub.mode))
		return mode_rank(a->pub.mode) > mode_rank(b->pub.mode);
	if (a->sel.n != b->sel.n)
		return a->sel.n > b->sel.n;
	if (a->pub.set_at != b->pub.set_at)
		return a->pub.set_at < b->pub.set_at;
	c = strcmp(a->id, b->id);
	return c < 0;
}

static const char *scope_phrase(const char *sel_text, char *buf, size_t n)
{
	if (!sel_text[0])
		return "all actions";
	snprintf(buf, n, "actions matching '%.120s'", sel_text);
	return buf;
}

static void decide_switch(struct kx_gate_decision *d, const struct sw_rule *r)
{
	static const char *const verbs[] = {
		[KX_GATE_BLOCK] = "blocks",
		[KX_GATE_APPROVE] = "requires approval for",
		[KX_GATE_READ_ONLY] = "allows only reads for",
	};
	char scope[144];
	d->verdict = r->pub.mode == KX_GATE_APPROVE ? KX_GATE_APPROVAL_REQUIRED : KX_GATE_DENY;
	d->by = KX_GATE_BY_SWITCH;
	d->id = r->id;
	d->sw = &r->pub;
	snprintf(d->reason, sizeof(d->reason), "switch '%.64s' %s %s%s%.120s", r->id,
		 verbs[r->pub.mode], scope_phrase(r->sel_text, scope, sizeof(scope)),
		 r->reason && r->reason[0] ? ": " : "", r->reason ? r->reason : "");
	scrub(d->reason); /* the switch's reason is free text */
}

/* The worst counter denial found so far. */
struct limit_check {
	const struct kx_gate_state *st;
	kx_ms now;
	bool denied;
	struct cref worst;
	kx_ms retry;
	uint32_t count;
};

static int visit_check(void *ctx, const struct cref *r)
{
	struct limit_check *lc = ctx;
	const struct counter *c = counter_find(&lc->st->counters, r);
	uint32_t first = 0, count = 0;
	kx_ms retry;

	if (c) {
		first = ring_first_in(c, lc->now, r->window);
		count = c->len - first;
	}
	if (count < r->limit)
		return 0;
	if (r->kind == KIND_RAMP)
		retry = ramp_retry_at(c, &r->sw->pub.ramp, first, count, lc->now) - lc->now;
	else if (r->limit == 0)
		retry = KX_GATE_NEVER;
	else /* the oldest of the newest `limit` events leaves */
		retry = ring_at(c, c->len - r->limit) + r->window - lc->now;
	if (!lc->denied || retry > lc->retry ||
	    (retry == lc->retry && r->order < lc->worst.order)) {
		lc->denied = true;
		lc->worst = *r;
		lc->retry = retry;
		lc->count = count;
	}
	return 0;
}

static void decide_limit(struct kx_gate_decision *d, const struct limit_check *lc)
{
	const struct cref *r = &lc->worst;
	char scope[144], win[32], wait[48], per[160] = "";
	const char *sel_text = r->cap ? r->cap->sel_text : r->sw->sel_text;

	d->verdict = KX_GATE_DENY;
	d->retry_after = lc->retry;
	d->id = r->id;
	kx_duration_format(r->window, win);
	if (lc->retry == KX_GATE_NEVER) {
		snprintf(wait, sizeof(wait), "waiting will not help");
	} else {
		char dur[32];
		snprintf(wait, sizeof(wait), "retry in %s",
			 kx_duration_format(lc->retry, dur));
	}
	scope_phrase(sel_text, scope, sizeof(scope));
	if (r->cap) {
		d->by = KX_GATE_BY_CAP;
		d->cap = &r->cap->cap;
		if (r->cap->cap.per[0])
			snprintf(per, sizeof(per), " (per %s '%.64s')", r->cap->cap.per,
				 r->per ? r->per : "(none)");
		snprintf(d->reason, sizeof(d->reason), "cap '%.64s' allows %u per %s for %s%s; %s",
			 r->id, (unsigned)r->limit, win,
			 sel_text[0] ? scope : "all actions", per, wait);
	} else {
		d->by = KX_GATE_BY_RAMP;
		d->sw = &r->sw->pub;
		snprintf(d->reason, sizeof(d->reason),
			 "switch '%.64s' is resuming gradually: %u per %s allowed now for %s; %s",
			 r->id, (unsigned)r->limit, win, sel_text[0] ? scope : "all actions", wait);
	}
	scrub(d->reason);
}

int kx_gate_check(const struct kx_gate_snapshot *snap, const struct kx_gate_state *st,
		  const struct kx_gate_action *act, kx_ms now, struct kx_gate_decision *out,
		  struct kx_err *err)
{
	const struct sw_rule *deny = NULL, *approve = NULL;
	struct limit_check lc = {.st = st, .now = now};
	struct view v;
	struct cand_iter it;
	uint32_t id;
	int rc;

	out->verdict = KX_GATE_ALLOW;
	out->by = KX_GATE_BY_NONE;
	out->id = NULL;
	out->sw = NULL;
	out->cap = NULL;
	out->retry_after = KX_GATE_NEVER;
	out->reason[0] = '\0';
	if ((rc = view_init(&v, snap, act, now, err)))
		return rc;

	/* 1. switches in full mode */
	for (cand_start(&it, &snap->sw_ix, &v); cand_next(&it, &id);) {
		const struct sw_rule *r = &snap->sw[id];
		if (!sw_live(r, now) || sw_ramping(r, now) || !sw_covers(r, &v) ||
		    !kx_selector_matches(&r->sel, act->labels))
			continue;
		if (r->pub.mode == KX_GATE_APPROVE) {
			if (sw_before(r, approve))
				approve = r;
		} else if (sw_before(r, deny)) {
			deny = r;
		}
	}
	if (deny) {
		decide_switch(out, deny);
		return 0;
	}

	/* 2. duplicates */
	if (v.key && snap->dedupe_window > 0) {
		const struct key_entry *e = key_find(&st->keys, hash_str(v.key), v.key);
		if (e && now - e->at < snap->dedupe_window) {
			char ago[32], win[32];
			out->verdict = KX_GATE_DENY;
			out->by = KX_GATE_BY_DUPLICATE;
			out->id = "duplicate";
			snprintf(out->reason, sizeof(out->reason),
				 "idempotency key '%.64s' was already allowed %s ago (duplicate window %s)",
				 v.key, kx_duration_format(now - e->at, ago),
				 kx_duration_format(snap->dedupe_window, win));
			scrub(out->reason);
			return 0;
		}
	}

	/* 3. caps and ramps */
	for_each_counter(snap, &v, now, visit_check, &lc);
	if (lc.denied) {
		decide_limit(out, &lc);
		return 0;
	}

	/* 4. approval */
	if (approve)
		decide_switch(out, approve);
	return 0;
}

/* ---- record ---------------------------------------------------------------- */

struct record {
	struct kx_gate_state *st;
	kx_ms now;
};

static int visit_reserve(void *ctx, const struct cref *r)
{
	struct record *rec = ctx;
	struct counter *c = counter_find(&rec->st->counters, r);
	if (r->ring_max == 0)
		return 0; /* N = 0: nothing worth keeping */
	if (!c && !(c = counter_new(rec->st, r, rec->now)))
		return KX_ENOMEM;
	c->pin = rec->st->epoch;
	lru_touch(&rec->st->counters, &c->node);
	return ring_reserve(rec->st, c, r->ring_max, rec->now);
}

static int visit_commit(void *ctx, const struct cref *r)
{
	struct record *rec = ctx;
	struct counter *c = counter_find(&rec->st->counters, r);
	if (c)
		ring_push(c, rec->now, r->ring_max, r->window);
	return 0;
}

/* Drops a few expired entries from the old ends of the LRU lists, so that
 * memory follows the load rather than its peak. */
static void collect(struct kx_gate_state *st, const struct kx_gate_snapshot *snap, kx_ms now)
{
	for (int i = 0; i < 2; i++) {
		struct counter *c = (struct counter *)lru_oldest(&st->counters);
		if (!c || c->pin == st->epoch || counter_live(c, now))
			break;
		counter_free(st, c);
	}
	for (int i = 0; i < 2; i++) {
		struct key_entry *e = (struct key_entry *)lru_oldest(&st->keys);
		if (!e || now - e->at < snap->dedupe_window)
			break;
		key_free(st, e);
	}
}

static int remember_key(struct kx_gate_state *st, const struct kx_gate_snapshot *snap,
			const struct view *v, kx_ms now)
{
	uint64_t h;
	struct key_entry *e;

	if (!v->key || snap->dedupe_window <= 0)
		return 0;
	h = hash_str(v->key);
	e = key_find(&st->keys, h, v->key);
	if (e) {
		if (now - e->at >= snap->dedupe_window) { /* expired: allowed anew */
			e->at = now;
			lru_touch(&st->keys, &e->node);
		}
		return 0;
	}
	while (st->keys.n >= st->lim.max_keys) {
		struct key_entry *old = (struct key_entry *)lru_oldest(&st->keys);
		if (now - old->at < snap->dedupe_window)
			st->evicted_keys++;
		key_free(st, old);
	}
	e = malloc(sizeof(*e) + v->key_len + 1);
	if (!e)
		return KX_ENOMEM;
	e->node.hash = h;
	e->at = now;
	memcpy(e->key, v->key, v->key_len + 1);
	table_link(st, &st->keys, &e->node, st->lim.max_keys);
	st->bytes += sizeof(*e) + v->key_len + 1;
	return 0;
}

static int record(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
		  const struct view *v, kx_ms now, struct kx_err *err)
{
	struct record rec = {st, now};
	st->epoch++;
	collect(st, snap, now);
	/* reserve everything first so that a failure leaves nothing counted */
	if (for_each_counter(snap, v, now, visit_reserve, &rec) || remember_key(st, snap, v, now))
		return kx_err_set(err, KX_ENOMEM, "out of memory recording an allowed action");
	for_each_counter(snap, v, now, visit_commit, &rec);
	return 0;
}

int kx_gate_record(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
		   const struct kx_gate_action *act, kx_ms now, struct kx_err *err)
{
	struct view v;
	int rc;
	if ((rc = view_init(&v, snap, act, now, err)))
		return rc;
	return record(snap, st, &v, now, err);
}

int kx_gate_decide(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
		   const struct kx_gate_action *act, kx_ms now, struct kx_gate_decision *out,
		   struct kx_err *err)
{
	struct view v;
	int rc;
	if ((rc = kx_gate_check(snap, st, act, now, out, err)))
		return rc;
	if (out->verdict != KX_GATE_ALLOW)
		return 0;
	view_init(&v, snap, act, now, NULL); /* cannot fail: check accepted it */
	if ((rc = record(snap, st, &v, now, err))) {
		out->verdict = KX_GATE_DENY;
		out->by = KX_GATE_BY_STATE;
		out->id = "state";
		snprintf(out->reason, sizeof(out->reason),
			 "the gate is out of memory and refuses what it cannot count");
	}
	return rc;
}

int kx_gate_check_batch(const struct kx_gate_snapshot *snap, struct kx_gate_state *st,
			const struct kx_gate_action *acts, size_t n, kx_ms now,
			struct kx_gate_decision *out, struct kx_err *err)
{
	struct view v;
	struct kx_err verr;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (view_init(&v, snap, &acts[i], now, &verr))
			return kx_err_set(err, KX_EINVAL, "action %zu: %s", i + 1, verr.msg);
	for (size_t i = 0; i < n; i++)
		if (kx_gate_decide(snap, st, &acts[i], now, &out[i], NULL))
			rc = kx_err_set(err, KX_ENOMEM, "out of memory recording action %zu", i);
	return rc;
}
