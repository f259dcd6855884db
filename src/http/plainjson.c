/* plainjson.c — the plain-JSON reader (plainjson.h). */
#include "http/plainjson.h"
#include "core/labels.h"

#include <string.h>

void kx_rd_ws(struct kx_rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

bool kx_rd_lit(struct kx_rd *r, char c)
{
	kx_rd_ws(r);
	if (r->p < r->end && *r->p == c) {
		r->p++;
		return true;
	}
	return false;
}

bool kx_rd_word(struct kx_rd *r, const char *w)
{
	size_t n = strlen(w);
	kx_rd_ws(r);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return false;
	r->p += n;
	return true;
}

bool kx_rd_span(struct kx_rd *r, const char **s, size_t *n)
{
	const char *q;
	if (!kx_rd_lit(r, '"'))
		return false;
	for (q = r->p; q < r->end && *q != '"'; q++) {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20 || c > 0x7e || c == '\\')
			return false;
	}
	if (q >= r->end)
		return false;
	*s = r->p;
	*n = (size_t)(q - r->p);
	r->p = q + 1;
	return true;
}

bool kx_rd_string(struct kx_rd *r, char *out, size_t cap, size_t *n)
{
	const char *s;
	if (!kx_rd_span(r, &s, n) || *n + 1 > cap)
		return false;
	memcpy(out, s, *n);
	out[*n] = '\0';
	return true;
}

bool kx_rd_done(struct kx_rd *r)
{
	kx_rd_ws(r);
	return r->p == r->end;
}

bool kx_rd_labels(struct kx_rd *r, struct kx_labels *ls)
{
	char k[KX_LABEL_KEY_MAX + 2], v[KX_LABEL_VALUE_MAX + 2];
	size_t kn, vn;
	if (!kx_rd_lit(r, '{'))
		return false;
	if (kx_rd_lit(r, '}'))
		return false; /* no labels: the slow path says why */
	do {
		if (!kx_rd_string(r, k, sizeof(k), &kn) || !kx_rd_lit(r, ':') ||
		    !kx_rd_string(r, v, sizeof(v), &vn) || ls->n >= KX_LABELS_MAX ||
		    kx_labels_get(ls, k) || kx_labels_set(ls, k, v, NULL))
			return false;
	} while (kx_rd_lit(r, ','));
	return kx_rd_lit(r, '}');
}
