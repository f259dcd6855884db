/* buf.h — the one growable byte buffer every built string goes through.
 *
 * Invariants: `data` is NUL-terminated whenever `len > 0` or data != NULL;
 * `len < cap`; `len <= max`. An append that would pass `max` or fails to
 * allocate frees the buffer (like curl's dynbuf) and returns KX_ENOMEM, so a
 * half-built string never escapes. Ownership leaves only through
 * kx_buf_take().
 */
#ifndef KX_BUF_H
#define KX_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kx_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* hard ceiling on len */
};

#define KX_BUF_DEFAULT_MAX ((size_t)64 << 20)

/* Sets up an empty buffer whose content may not exceed max bytes. */
void kx_buf_init(struct kx_buf *b, size_t max);
/* Frees what the buffer holds; it is then empty and reusable. */
void kx_buf_release(struct kx_buf *b);
/* Empties the buffer, keeping its memory. */
void kx_buf_clear(struct kx_buf *b);

int kx_buf_add(struct kx_buf *b, const void *p, size_t n);
int kx_buf_adds(struct kx_buf *b, const char *s);
int kx_buf_addc(struct kx_buf *b, char c);
int kx_buf_addf(struct kx_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int kx_buf_addvf(struct kx_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Returns the NUL-terminated content ("" when empty); stays owned by b. */
const char *kx_buf_str(const struct kx_buf *b);
/* Hands the content (never NULL on success, "" when empty) to the caller,
 * who frees it; the buffer is left empty. Returns NULL on allocation failure. */
char *kx_buf_take(struct kx_buf *b, size_t *len);

#endif
