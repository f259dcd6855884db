#include "core/selector.h"
#include "core/text.h"

#include <stdlib.h>
#include <string.h>

void kx_selector_init(struct kx_selector *sel)
{
	sel->v = NULL;
	sel->n = 0;
}

static void req_release(struct kx_selector_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->values[i]);
	free(r->values);
	free(r->key);
}

void kx_selector_release(struct kx_selector *sel)
{
	for (size_t i = 0; i < sel->n; i++)
		req_release(&sel->v[i]);
	free(sel->v);
	kx_selector_init(sel);
}

/* ---- parsing ------------------------------------------------------------ */

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

/* A requirement being parsed: values live in a fixed array until the
 * requirement is complete, then move into the selector. */
struct pending {
	char *key;
	size_t key_col;
	enum kx_selector_op op;
	char *values[KX_SELECTOR_MAX_VALUES];
	size_t n;
};

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	const char *what;
	struct kx_err *err;
	struct kx_selector_req reqs[KX_SELECTOR_MAX_REQS];
	size_t n;
};

/* 1-based column of byte offset at, counting UTF-8 lead bytes only. */
static size_t column(const struct parser *p, size_t at)
{
	size_t col = 1;
	for (size_t i = 0; i < at && i < p->len; i++)
		if (((unsigned char)p->s[i] & 0xc0) != 0x80)
			col++;
	return col;
}

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t at,
						      const char *fmt, ...)
{
	char msg[sizeof(p->err->msg)];
	va_list ap;
	if (!p->err)
		return KX_EINVAL;
	va_start(ap, fmt);
	kx_err_setv(p->err, KX_EINVAL, fmt, ap);
	va_end(ap);
	memcpy(msg, p->err->msg, sizeof(msg));
	kx_err_set(p->err, KX_EINVAL, "cannot parse %s at column %zu: %s", p->what,
		   column(p, at), msg);
	scrub(p->err->msg);
	return KX_EINVAL;
}

static bool at_end(const struct parser *p)
{
	return p->pos >= p->len;
}

static char peek(const struct parser *p)
{
	return at_end(p) ? '\0' : p->s[p->pos];
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_ws(struct parser *p)
{
	while (!at_end(p) && is_space(p->s[p->pos]))
		p->pos++;
}

/* Characters that end a key or a bare word. */
static bool is_delim(char c)
{
	return is_space(c) || c == '=' || c == '!' || c == ',' || c == '(' || c == ')' ||
	       c == '"';
}

/* The word at pos ("in", "notin") followed by a space, a tab, '(' or the end. */
static bool at_word(const struct parser *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return false;
	return p->pos + n == p->len || is_space(p->s[p->pos + n]) || p->s[p->pos + n] == '(';
}

static int parse_key(struct parser *p, struct pending *r)
{
	size_t start = p->pos;
	char key[KX_LABEL_KEY_MAX + 2];
	struct kx_err kerr;
	size_t n;

	while (!at_end(p) && !is_delim(p->s[p->pos]))
		p->pos++;
	n = p->pos - start;
	if (n == 0) {
		if (at_end(p) && p->n > 0)
			return fail(p, start, "expected a label key after ','");
		if (at_end(p))
			return fail(p, start, "expected a label key");
		return fail(p, start, "expected a label key, found '%c'", p->s[start]);
	}
	if (n > KX_LABEL_KEY_MAX)
		n = KX_LABEL_KEY_MAX + 1; /* refused by the key check below */
	memcpy(key, p->s + start, n);
	key[n] = '\0';
	if (kx_label_key_check(key, &kerr))
		return fail(p, start, "%s", kerr.msg);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->reqs[i].key, key) == 0)
			return fail(p, start,
				    "'%s' appears twice (use '%s in (a,b)' to match either value)",
				    key, key);
	r->key = strdup(key);
	if (!r->key)
		return kx_err_set(p->err, KX_ENOMEM, "out of memory");
	r->key_col = start;
	return 0;
}

static int parse_op(struct parser *p, struct pending *r)
{
	char c = peek(p);
	if (c == '=') {
		r->op = KX_SELECTOR_EQ;
		p->pos++;
	} else if (c == '!' && p->pos + 1 < p->len && p->s[p->pos + 1] == '=') {
		r->op = KX_SELECTOR_NE;
		p->pos += 2;
	} else if (at_word(p, "in")) {
		r->op = KX_SELECTOR_IN;
		p->pos += 2;
	} else if (at_word(p, "notin")) {
		r->op = KX_SELECTOR_NOTIN;
		p->pos += 5;
	} else if (c == '\0' || c == ',') {
		return fail(p, p->pos, "expected '=' after '%s'", r->key);
	} else {
		return fail(p, p->pos, "expected '=', '!=', 'in' or 'notin' after '%s'", r->key);
	}
	return 0;
}

/* Reads a double-quoted value into out (at most cap-1 bytes kept; *len
 * counts them all). pos is at the opening quote. */
static int parse_quoted(struct parser *p, const struct pending *r, char *out, size_t cap,
			size_t *len)
{
	size_t open = p->pos++;
	*len = 0;
	for (;;) {
		char c;
		if (at_end(p))
			return fail(p, open, "unterminated quoted value for '%s'", r->key);
		c = p->s[p->pos++];
		if (c == '"')
			break;
		if (c == '\\') {
			if (at_end(p))
				return fail(p, open, "unterminated quoted value for '%s'", r->key);
			c = p->s[p->pos];
			if (c != '"' && c != '\\')
				return fail(p, p->pos - 1,
					    "unknown escape in the value of '%s' (only \\\" and \\\\)",
					    r->key);
			p->pos++;
		}
		if (*len + 1 < cap)
			out[*len] = c;
		(*len)++;
	}
	return 0;
}

/* Reads a bare value: up to ',' (or ')' in a list), trailing spaces
 * trimmed. */
static int parse_bare(struct parser *p, const struct pending *r, bool in_list, char *out,
		      size_t cap, size_t *len)
{
	size_t start = p->pos, end;
	while (!at_end(p)) {
		char c = p->s[p->pos];
		if (c == ',' || (in_list && c == ')'))
			break;
		if (c == '(' || c == ')' || c == '"')
			return fail(p, p->pos,
				    "unexpected '%c' in the value of '%s' (put values with ',', "
				    "'(', ')' or '\"' in double quotes)",
				    c, r->key);
		p->pos++;
	}
	end = p->pos;
	while (end > start && is_space(p->s[end - 1]))
		end--;
	if (end == start)
		return fail(p, start, "expected a value for '%s'", r->key);
	/* "client=acme platform=x" is a missing ',' far more often than a
	 * value with '=' in it: refuse it rather than silently scope a switch
	 * to a client that does not exist */
	for (size_t i = start; i < end; i++)
		if (p->s[i] == '=')
			return fail(p, i,
				    "unexpected '=' in the value of '%s' (a missing ','? put values "
				    "with '=' in double quotes)",
				    r->key);
	*len = end - start;
	memcpy(out, p->s + start, *len < cap ? *len : cap - 1);
	return 0;
}

static int parse_value(struct parser *p, struct pending *r, bool in_list)
{
	char v[KX_LABEL_VALUE_MAX + 2];
	size_t start, len = 0;
	struct kx_err verr;
	int rc;

	skip_ws(p);
	start = p->pos;
	if (r->n == KX_SELECTOR_MAX_VALUES)
		return fail(p, start, "too many values for '%s' (at most %d)", r->key,
			    KX_SELECTOR_MAX_VALUES);
	if (peek(p) == '"')
		rc = parse_quoted(p, r, v, sizeof(v), &len);
	else
		rc = parse_bare(p, r, in_list, v, sizeof(v), &len);
	if (rc)
		return rc;
	if (len > KX_LABEL_VALUE_MAX)
		len = KX_LABEL_VALUE_MAX + 1; /* refused by the value check below */
	v[len] = '\0'; /* no NUL inside: the whole text was checked for one */
	if (kx_label_value_check(r->key, v, &verr))
		return fail(p, start, "%s", verr.msg);
	r->values[r->n] = strdup(v);
	if (!r->values[r->n])
		return kx_err_set(p->err, KX_ENOMEM, "out of memory");
	r->n++;
	skip_ws(p);
	return 0;
}

static int parse_list(struct parser *p, struct pending *r)
{
	int rc;
	skip_ws(p);
	if (peek(p) != '(')
		return fail(p, p->pos, "expected '(' after '%s %s'", r->key,
			    r->op == KX_SELECTOR_IN ? "in" : "notin");
	p->pos++;
	for (;;) {
		if ((rc = parse_value(p, r, true)))
			return rc;
		if (peek(p) == ')') {
			p->pos++;
			return 0;
		}
		if (peek(p) != ',')
			return at_end(p) ? fail(p, p->pos, "missing ')' after the values of '%s'",
						r->key)
					 : fail(p, p->pos, "expected ',' or ')' in the values of '%s'",
						r->key);
		p->pos++;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Moves a completed requirement into the parser, in canonical form. */
static int finish(struct parser *p, struct pending *r)
{
	struct kx_selector_req *q = &p->reqs[p->n];
	size_t n = 0;

	qsort(r->values, r->n, sizeof(r->values[0]), cmp_str);
	for (size_t i = 0; i < r->n; i++) {
		if (n && strcmp(r->values[n - 1], r->values[i]) == 0)
			free(r->values[i]);
		else
			r->values[n++] = r->values[i];
	}
	r->n = n;
	if (n == 1 && r->op == KX_SELECTOR_IN)
		r->op = KX_SELECTOR_EQ;
	if (n == 1 && r->op == KX_SELECTOR_NOTIN)
		r->op = KX_SELECTOR_NE;
	q->values = malloc(n * sizeof(*q->values));
	if (!q->values)
		return kx_err_set(p->err, KX_ENOMEM, "out of memory");
	memcpy(q->values, r->values, n * sizeof(*q->values));
	q->n = n;
	q->key = r->key;
	q->op = r->op;
	r->key = NULL;
	r->n = 0;
	p->n++;
	return 0;
}

static int parse_req(struct parser *p)
{
	struct pending r = {0};
	int rc;

	if (p->n == KX_SELECTOR_MAX_REQS)
		return fail(p, p->pos, "too many requirements (at most %d)", KX_SELECTOR_MAX_REQS);
	if ((rc = parse_key(p, &r)))
		goto out;
	skip_ws(p);
	if ((rc = parse_op(p, &r)))
		goto out;
	if (r.op == KX_SELECTOR_IN || r.op == KX_SELECTOR_NOTIN)
		rc = parse_list(p, &r);
	else
		rc = parse_value(p, &r, false);
	if (rc)
		goto out;
	rc = finish(p, &r);
out:
	for (size_t i = 0; i < r.n; i++)
		free(r.values[i]);
	free(r.key);
	return rc;
}

static int cmp_req(const void *a, const void *b)
{
	return strcmp(((const struct kx_selector_req *)a)->key,
		      ((const struct kx_selector_req *)b)->key);
}

static int parse_all(struct parser *p)
{
	int rc;
	skip_ws(p);
	if (at_end(p))
		return 0;
	for (;;) {
		if ((rc = parse_req(p)))
			return rc;
		skip_ws(p);
		if (at_end(p))
			return 0;
		if (peek(p) != ',')
			return fail(p, p->pos, "expected ',' after the requirement on '%s'",
				    p->reqs[p->n - 1].key);
		p->pos++;
		skip_ws(p);
	}
}

int kx_selector_parse_n(struct kx_selector *sel, const char *text, size_t len,
			const char *what, struct kx_err *err)
{
	struct parser *p;
	const char *nul;
	int rc;

	kx_selector_release(sel);
	if (!what)
		what = "selector";
	if (len > KX_SELECTOR_MAX_LEN)
		return kx_err_set(err, KX_ETOOBIG, "cannot parse %s: longer than %d bytes", what,
				  KX_SELECTOR_MAX_LEN);
	/* the parser holds every requirement before they move into sel: keep
	 * that (a few KB) off the stack */
	p = calloc(1, sizeof(*p));
	if (!p)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	p->s = text;
	p->len = len;
	p->what = what;
	p->err = err;
	nul = memchr(text, '\0', len);
	if (nul) {
		rc = fail(p, (size_t)(nul - text), "unexpected NUL byte");
		goto out;
	}
	if ((rc = parse_all(p)))
		goto out;
	if (p->n) {
		sel->v = malloc(p->n * sizeof(*sel->v));
		if (!sel->v) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(sel->v, p->reqs, p->n * sizeof(*sel->v));
		sel->n = p->n;
		p->n = 0;
		qsort(sel->v, sel->n, sizeof(*sel->v), cmp_req);
	}
out:
	for (size_t i = 0; i < p->n; i++)
		req_release(&p->reqs[i]);
	free(p);
	return rc;
}

int kx_selector_parse(struct kx_selector *sel, const char *text, struct kx_err *err)
{
	return kx_selector_parse_n(sel, text, strlen(text), NULL, err);
}

/* ---- building, formatting, comparing ------------------------------------ */

static int req_set(struct kx_selector_req *q, const char *key, enum kx_selector_op op,
		   char *const *values, size_t n)
{
	q->key = strdup(key);
	q->values = calloc(n, sizeof(*q->values));
	q->op = op;
	q->n = 0;
	if (!q->key || !q->values)
		return KX_ENOMEM;
	for (; q->n < n; q->n++)
		if (!(q->values[q->n] = strdup(values[q->n])))
			return KX_ENOMEM;
	return 0;
}

/* Fills sel (released first) with copies of n requirements: src[i], or
 * when src is NULL the equality requirement of label ls->v[i]. */
static int build(struct kx_selector *sel, size_t n, const struct kx_selector_req *src,
		 const struct kx_labels *ls, struct kx_err *err)
{
	kx_selector_release(sel);
	if (!n)
		return 0;
	sel->v = calloc(n, sizeof(*sel->v));
	if (!sel->v)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc;
		if (src)
			rc = req_set(&sel->v[i], src[i].key, src[i].op, src[i].values, src[i].n);
		else
			rc = req_set(&sel->v[i], ls->v[i].key, KX_SELECTOR_EQ, &ls->v[i].value, 1);
		sel->n = i + 1;
		if (rc) {
			kx_selector_release(sel);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
	}
	return 0;
}

int kx_selector_from_labels(struct kx_selector *sel, const struct kx_labels *ls,
			    struct kx_err *err)
{
	/* a label set is already sorted by key with one value per key and
	 * valid keys and values: exactly a canonical equality selector */
	return build(sel, ls->n, NULL, ls, err);
}

int kx_selector_copy(struct kx_selector *dst, const struct kx_selector *src)
{
	return build(dst, src->n, src->v, NULL, NULL);
}

static bool needs_quotes(const char *v)
{
	size_t n = strlen(v);
	return n == 0 || is_space(v[0]) || is_space(v[n - 1]) || strpbrk(v, ",()\"=") != NULL;
}

static int add_value(struct kx_buf *out, const char *v)
{
	if (!needs_quotes(v))
		return kx_buf_adds(out, v);
	if (kx_buf_addc(out, '"'))
		return KX_ENOMEM;
	for (; *v; v++)
		if ((*v == '"' || *v == '\\') ? kx_buf_addc(out, '\\') || kx_buf_addc(out, *v)
					      : kx_buf_addc(out, *v))
			return KX_ENOMEM;
	return kx_buf_addc(out, '"');
}

int kx_selector_format(const struct kx_selector *sel, struct kx_buf *out)
{
	static const char *const ops[] = {
		[KX_SELECTOR_EQ] = "=",
		[KX_SELECTOR_NE] = "!=",
		[KX_SELECTOR_IN] = " in (",
		[KX_SELECTOR_NOTIN] = " notin (",
	};
	for (size_t i = 0; i < sel->n; i++) {
		const struct kx_selector_req *r = &sel->v[i];
		bool list = r->op == KX_SELECTOR_IN || r->op == KX_SELECTOR_NOTIN;
		if ((i && kx_buf_addc(out, ',')) || kx_buf_adds(out, r->key) ||
		    kx_buf_adds(out, ops[r->op]))
			return KX_ENOMEM;
		for (size_t j = 0; j < r->n; j++)
			if ((j && kx_buf_addc(out, ',')) || add_value(out, r->values[j]))
				return KX_ENOMEM;
		if (list && kx_buf_addc(out, ')'))
			return KX_ENOMEM;
	}
	return 0;
}

bool kx_selector_equal(const struct kx_selector *a, const struct kx_selector *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct kx_selector_req *x = &a->v[i], *y = &b->v[i];
		if (x->op != y->op || x->n != y->n || strcmp(x->key, y->key) != 0)
			return false;
		for (size_t j = 0; j < x->n; j++)
			if (strcmp(x->values[j], y->values[j]) != 0)
				return false;
	}
	return true;
}

static bool has_value(const struct kx_selector_req *r, const char *v)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->values[mid], v);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool kx_selector_matches(const struct kx_selector *sel, const struct kx_labels *ls)
{
	for (size_t i = 0; i < sel->n; i++) {
		const struct kx_selector_req *r = &sel->v[i];
		const char *v = kx_labels_get(ls, r->key);
		bool ok;
		switch (r->op) {
		case KX_SELECTOR_EQ: ok = v && strcmp(v, r->values[0]) == 0; break;
		case KX_SELECTOR_NE: ok = !v || strcmp(v, r->values[0]) != 0; break;
		case KX_SELECTOR_IN: ok = v && has_value(r, v); break;
		default: ok = !v || !has_value(r, v); break;
		}
		if (!ok)
			return false;
	}
	return true;
}

const struct kx_selector_req *kx_selector_get(const struct kx_selector *sel, const char *key)
{
	size_t lo = 0, hi = sel->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sel->v[mid].key, key);
		if (c == 0)
			return &sel->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
