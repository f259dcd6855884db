/* selector.h — label selectors: which actions a switch or a cap covers.
 *
 * Syntax (what `klaxon stop`, the switch API and cap specs accept):
 *
 *     ""                                    everything
 *     client=acme                           the label is present and equal
 *     platform=instagram,action=dm          every requirement holds (AND)
 *     client!=acme                          absent, or present with another value
 *     action in (dm,comment)                present and one of the values
 *     client notin (acme,globex)            absent, or present with none of them
 *
 * Requirements are separated by ','; spaces and tabs are allowed around
 * keys, operators, commas and parentheses. Keys follow the label key rules
 * (kx_label_key_check: [a-z0-9_.-]{1,64}), values the label value rules
 * (kx_label_value_check). A bare value runs up to the next ',' (or ')' in a
 * list) with surrounding spaces trimmed, so `client=Acme Corp` works; a
 * value that contains ',', '(', ')', '"' or '=', or has leading or
 * trailing spaces, is written in double quotes, with \" and \\ the only
 * escapes: `target="post(1),2"`. A bare '=' is refused because
 * `client=acme platform=x` is a forgotten ',' far more often than a value,
 * and read as a value it would scope a kill switch to nothing.
 *
 * Why '!=' and 'notin' match an absent label (as in Kubernetes): a switch
 * `client!=acme` is read "everything but acme", and an action that does not
 * say its client is not acme's. For a kill switch that errs on the side of
 * stopping more, never less.
 *
 * A key may appear once: `client=a,client=b` can never match and is almost
 * always a mistyped `client in (a,b)`, so it is refused with that hint.
 * Limits: KX_SELECTOR_MAX_REQS requirements, KX_SELECTOR_MAX_VALUES values
 * per list, KX_SELECTOR_MAX_LEN bytes of text.
 *
 * Canonical form: requirements sorted by key, list values sorted and
 * without repeats, a one-value list written as '=' or '!=', no spaces
 * except inside values and around 'in'/'notin': `action in (comment,dm),
 * client=acme` prints as "action in (comment,dm),client=acme". Two
 * selectors that parse to the same requirements print the same, and what
 * kx_selector_format() prints parses back to an equal selector.
 *
 * Errors name the column (1-based, counted in characters) where parsing
 * stopped: "cannot parse selector at column 9: expected '=' after
 * 'platform'".
 *
 * Nothing here allocates while matching; parsing and formatting do.
 */
#ifndef KX_SELECTOR_H
#define KX_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/labels.h"
#include "lib/buf.h"
#include "lib/err.h"

#define KX_SELECTOR_MAX_REQS KX_LABELS_MAX
#define KX_SELECTOR_MAX_VALUES 64
#define KX_SELECTOR_MAX_LEN 16384

enum kx_selector_op {
	KX_SELECTOR_EQ,    /* key=v */
	KX_SELECTOR_NE,    /* key!=v */
	KX_SELECTOR_IN,    /* key in (v1,v2,...), at least two values */
	KX_SELECTOR_NOTIN, /* key notin (v1,v2,...), at least two values */
};

/* One requirement. Invariants: key and values are valid label keys/values;
 * values are sorted (strcmp) and unique; n == 1 for EQ/NE, n >= 2 for
 * IN/NOTIN. Every string is owned by the selector. */
struct kx_selector_req {
	char *key;
	enum kx_selector_op op;
	char **values;
	size_t n;
};

/* Invariants: requirements sorted by key (strcmp), each key once. n == 0
 * matches everything. Read the fields freely; change them only through
 * this module. */
struct kx_selector {
	struct kx_selector_req *v;
	size_t n;
};

void kx_selector_init(struct kx_selector *sel);
/* Frees what sel holds; it is then empty (matches everything) and reusable. */
void kx_selector_release(struct kx_selector *sel);

/* Parses text into sel, which must be initialised; whatever sel held is
 * released first. On failure sel is left empty and err says where and why:
 * KX_EINVAL for bad syntax or bad keys/values, KX_ETOOBIG for text over
 * KX_SELECTOR_MAX_LEN, KX_ENOMEM. */
int kx_selector_parse(struct kx_selector *sel, const char *text, struct kx_err *err);
/* The same over text[0..len) (a NUL byte inside is an error). what names
 * the thing parsed in error messages ("selector", "cap"); NULL means
 * "selector". Used by parsers that embed a selector (cap specs). */
int kx_selector_parse_n(struct kx_selector *sel, const char *text, size_t len,
			const char *what, struct kx_err *err);

/* The equality selector of a label set ("client=acme,platform=x"), as
 * built from `klaxon stop --client acme --platform x`. */
int kx_selector_from_labels(struct kx_selector *sel, const struct kx_labels *ls,
			    struct kx_err *err);
/* Deep copy into an initialised dst (released first). */
int kx_selector_copy(struct kx_selector *dst, const struct kx_selector *src);

/* Appends the canonical text (see above; "" for the empty selector). */
int kx_selector_format(const struct kx_selector *sel, struct kx_buf *out);

/* Same requirements (what the canonical forms comparing equal means). */
bool kx_selector_equal(const struct kx_selector *a, const struct kx_selector *b);

/* True when ls satisfies every requirement. No allocation; O(n log m) for
 * n requirements over m labels. */
bool kx_selector_matches(const struct kx_selector *sel, const struct kx_labels *ls);

/* The requirement on key, or NULL. */
const struct kx_selector_req *kx_selector_get(const struct kx_selector *sel, const char *key);

#endif
