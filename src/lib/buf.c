#include "lib/buf.h"
#include "lib/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kx_buf_init(struct kx_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : KX_BUF_DEFAULT_MAX;
}

void kx_buf_release(struct kx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void kx_buf_clear(struct kx_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int grow(struct kx_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max - b->len) {
		kx_buf_release(b);
		return KX_ENOMEM;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p) {
		kx_buf_release(b);
		return KX_ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int kx_buf_add(struct kx_buf *b, const void *p, size_t n)
{
	if (grow(b, n))
		return KX_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kx_buf_adds(struct kx_buf *b, const char *s)
{
	return kx_buf_add(b, s, strlen(s));
}

int kx_buf_addc(struct kx_buf *b, char c)
{
	return kx_buf_add(b, &c, 1);
}

int kx_buf_addvf(struct kx_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		kx_buf_release(b);
		return KX_ENOMEM;
	}
	if (grow(b, (size_t)n))
		return KX_ENOMEM;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int kx_buf_addf(struct kx_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = kx_buf_addvf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *kx_buf_str(const struct kx_buf *b)
{
	return b->data ? b->data : "";
}

char *kx_buf_take(struct kx_buf *b, size_t *len)
{
	char *p = b->data;
	if (!p) {
		p = calloc(1, 1);
		if (!p)
			return NULL;
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
