/* plainjson.h — a reader for the plain subset of JSON that hot requests
 * use (objects, printable-ASCII strings without escapes, true/false), so
 * that their usual shape is decoded without building a jansson tree.
 *
 * Every function returns false for anything outside the subset; the
 * caller then hands the whole body to the jansson decoder, which accepts
 * or refuses it and words the error. A fast path built on this therefore
 * never accepts a body the full decoder would refuse, and never refuses
 * one itself (fuzz_guard and fuzz_audit check the two agree).
 */
#ifndef KX_PLAINJSON_H
#define KX_PLAINJSON_H

#include <stdbool.h>
#include <stddef.h>

struct kx_rd {
	const char *p, *end;
};

/* Skips JSON whitespace. */
void kx_rd_ws(struct kx_rd *r);
/* After whitespace, the character c (consumed). */
bool kx_rd_lit(struct kx_rd *r, char c);
/* After whitespace, the literal word w ("true"). */
bool kx_rd_word(struct kx_rd *r, const char *w);
/* After whitespace, a plain string: *s and *n are its contents (not
 * NUL-terminated, inside the body). */
bool kx_rd_span(struct kx_rd *r, const char **s, size_t *n);
/* The same into out[0..cap), NUL-terminated; false when longer. */
bool kx_rd_string(struct kx_rd *r, char *out, size_t cap, size_t *n);
struct kx_labels;
/* After whitespace, a non-empty object of plain string values, each key
 * once, added to ls with kx_labels_set (a bad key or value: false). */
bool kx_rd_labels(struct kx_rd *r, struct kx_labels *ls);
/* Only whitespace is left. */
bool kx_rd_done(struct kx_rd *r);

#endif
