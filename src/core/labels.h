/* labels.h — key=value scope labels ("client=acme", "platform=instagram").
 *
 * A label set holds at most one value per key, kept sorted by key so that
 * two equal sets print the same. Keys match [a-z0-9_.-]{1,64}; values are
 * 1..256 bytes of valid UTF-8 without control characters. Every string in
 * a set is owned by the set.
 */
#ifndef KX_LABELS_H
#define KX_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

#define KX_LABEL_KEY_MAX 64
#define KX_LABEL_VALUE_MAX 256
#define KX_LABELS_MAX 64 /* labels per object */

struct kx_label {
	char *key;
	char *value;
};

struct kx_labels {
	struct kx_label *v;
	size_t n;
	size_t cap;
};

void kx_labels_init(struct kx_labels *ls);
void kx_labels_release(struct kx_labels *ls);
/* Deep copy into an initialised, empty dst. */
int kx_labels_copy(struct kx_labels *dst, const struct kx_labels *src);

/* Validation: 0 or KX_EINVAL with a message naming the key or value. */
int kx_label_key_check(const char *key, struct kx_err *err);
int kx_label_value_check(const char *key, const char *value, struct kx_err *err);

/* Sets key to value (validated, copied), replacing an existing value. */
int kx_labels_set(struct kx_labels *ls, const char *key, const char *value,
		  struct kx_err *err);
/* Removes key; returns 0 whether or not it was there. */
int kx_labels_remove(struct kx_labels *ls, const char *key);
/* The value of key, or NULL. */
const char *kx_labels_get(const struct kx_labels *ls, const char *key);

/* Parses "key=value" and sets it. */
int kx_labels_add_pair(struct kx_labels *ls, const char *pair, struct kx_err *err);

/* True when every label of sel is in ls with the same value (an empty
 * selector matches everything). This is the scope check. */
bool kx_labels_match(const struct kx_labels *ls, const struct kx_labels *sel);

/* Adds each label of scope to ls; a key already present with another value
 * is a KX_EFORBIDDEN naming it. */
int kx_labels_apply_scope(struct kx_labels *ls, const struct kx_labels *scope,
			  struct kx_err *err);

/* "k=v,k=v" (empty string for an empty set). */
int kx_labels_format(const struct kx_labels *ls, struct kx_buf *out);

#endif
