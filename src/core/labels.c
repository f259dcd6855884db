#include "core/labels.h"
#include "core/text.h"

#include <stdlib.h>
#include <string.h>

void kx_labels_init(struct kx_labels *ls)
{
	ls->v = NULL;
	ls->n = 0;
	ls->cap = 0;
}

void kx_labels_release(struct kx_labels *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->v[i].key);
		free(ls->v[i].value);
	}
	free(ls->v);
	kx_labels_init(ls);
}

int kx_labels_copy(struct kx_labels *dst, const struct kx_labels *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (kx_labels_set(dst, src->v[i].key, src->v[i].value, NULL))
			return KX_ENOMEM;
	return 0;
}

int kx_label_key_check(const char *key, struct kx_err *err)
{
	size_t n = strlen(key);
	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "label key is empty");
	if (n > KX_LABEL_KEY_MAX)
		return kx_err_set(err, KX_EINVAL, "label key '%.64s…' is longer than %d characters",
				  key, KX_LABEL_KEY_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return kx_err_set(err, KX_EINVAL,
					  "invalid label key '%.64s': use lowercase letters, digits, '_', '.' and '-'",
					  key);
	}
	return 0;
}

int kx_label_value_check(const char *key, const char *value, struct kx_err *err)
{
	size_t n = strlen(value);
	if (n == 0)
		return kx_err_set(err, KX_EINVAL, "label '%s' has an empty value", key);
	if (n > KX_LABEL_VALUE_MAX)
		return kx_err_set(err, KX_EINVAL, "label '%s' value is longer than %d bytes", key,
				  KX_LABEL_VALUE_MAX);
	if (kx_text_check(value, n, 0))
		return kx_err_set(err, KX_EINVAL,
				  "label '%s' value has control characters or invalid UTF-8", key);
	return 0;
}

static size_t find(const struct kx_labels *ls, const char *key, bool *found)
{
	size_t lo = 0, hi = ls->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(ls->v[mid].key, key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

int kx_labels_set(struct kx_labels *ls, const char *key, const char *value,
		  struct kx_err *err)
{
	bool found;
	size_t at;
	char *v;
	int rc;

	if ((rc = kx_label_key_check(key, err)) || (rc = kx_label_value_check(key, value, err)))
		return rc;
	at = find(ls, key, &found);
	v = strdup(value);
	if (!v)
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if (found) {
		free(ls->v[at].value);
		ls->v[at].value = v;
		return 0;
	}
	if (ls->n >= KX_LABELS_MAX) {
		free(v);
		return kx_err_set(err, KX_EINVAL, "too many labels (at most %d)", KX_LABELS_MAX);
	}
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 4;
		struct kx_label *p = realloc(ls->v, cap * sizeof(*p));
		if (!p) {
			free(v);
			return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
		ls->v = p;
		ls->cap = cap;
	}
	memmove(ls->v + at + 1, ls->v + at, (ls->n - at) * sizeof(*ls->v));
	ls->v[at].value = v;
	ls->v[at].key = strdup(key);
	if (!ls->v[at].key) {
		free(v);
		memmove(ls->v + at, ls->v + at + 1, (ls->n - at) * sizeof(*ls->v));
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	ls->n++;
	return 0;
}

int kx_labels_remove(struct kx_labels *ls, const char *key)
{
	bool found;
	size_t at = find(ls, key, &found);
	if (!found)
		return 0;
	free(ls->v[at].key);
	free(ls->v[at].value);
	memmove(ls->v + at, ls->v + at + 1, (ls->n - at - 1) * sizeof(*ls->v));
	ls->n--;
	return 0;
}

const char *kx_labels_get(const struct kx_labels *ls, const char *key)
{
	bool found;
	size_t at = find(ls, key, &found);
	return found ? ls->v[at].value : NULL;
}

int kx_labels_add_pair(struct kx_labels *ls, const char *pair, struct kx_err *err)
{
	const char *eq = strchr(pair, '=');
	char key[KX_LABEL_KEY_MAX + 2];
	size_t kn;

	if (!eq)
		return kx_err_set(err, KX_EINVAL, "invalid label '%.80s': expected key=value", pair);
	kn = (size_t)(eq - pair);
	if (kn > KX_LABEL_KEY_MAX)
		kn = KX_LABEL_KEY_MAX + 1; /* rejected by the key check */
	memcpy(key, pair, kn);
	key[kn] = '\0';
	return kx_labels_set(ls, key, eq + 1, err);
}

bool kx_labels_match(const struct kx_labels *ls, const struct kx_labels *sel)
{
	for (size_t i = 0; i < sel->n; i++) {
		const char *v = kx_labels_get(ls, sel->v[i].key);
		if (!v || strcmp(v, sel->v[i].value) != 0)
			return false;
	}
	return true;
}

int kx_labels_apply_scope(struct kx_labels *ls, const struct kx_labels *scope,
			  struct kx_err *err)
{
	for (size_t i = 0; i < scope->n; i++) {
		const char *v = kx_labels_get(ls, scope->v[i].key);
		if (v && strcmp(v, scope->v[i].value) != 0)
			return kx_err_set(err, KX_EFORBIDDEN,
					  "label '%s=%.64s' is outside this token's scope",
					  scope->v[i].key, v);
	}
	for (size_t i = 0; i < scope->n; i++) {
		int rc = kx_labels_set(ls, scope->v[i].key, scope->v[i].value, err);
		if (rc)
			return rc;
	}
	return 0;
}

int kx_labels_format(const struct kx_labels *ls, struct kx_buf *out)
{
	for (size_t i = 0; i < ls->n; i++)
		if (kx_buf_addf(out, "%s%s=%s", i ? "," : "", ls->v[i].key, ls->v[i].value))
			return KX_ENOMEM;
	return 0;
}
