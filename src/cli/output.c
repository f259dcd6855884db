#include "cli/output.h"
#include "lib/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct kx_table {
	size_t ncols;
	char **cells; /* header row first, then the rows, row-major */
	size_t ncells;
	size_t cap;
	size_t *max; /* per column, 0 = no limit */
	size_t hdr;  /* 1 when cells[0..ncols) is the header row, else 0 */
	size_t indent;
	int failed;
};

int kx_out_clean(struct kx_buf *b, const char *s, int keep_nl)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		const unsigned char *run = p;

		while (*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			p++;
		if (p > run && kx_buf_add(b, run, (size_t)(p - run)))
			return KX_ENOMEM;
		if (!*p)
			break;
		if (*p == '\n' && keep_nl) {
			if (kx_buf_addc(b, '\n'))
				return KX_ENOMEM;
		} else if (kx_buf_addc(b, *p == '\n' || *p == '\t' ? ' ' : '?')) {
			return KX_ENOMEM;
		}
		p += *p == 0xc2 ? 2 : 1; /* a C1 control is two bytes in UTF-8 */
	}
	return 0;
}

size_t kx_out_width(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

/* The byte length of the first `width` code points of s. */
static size_t prefix_bytes(const char *s, size_t width)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (; *p; p++) {
		if ((*p & 0xc0) != 0x80) {
			if (n == width)
				break;
			n++;
		}
	}
	return (size_t)((const char *)p - s);
}

struct kx_table *kx_table_new(size_t ncols, const char *const *headers)
{
	struct kx_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->max = calloc(ncols, sizeof(*t->max));
	if (!t->max) {
		free(t);
		return NULL;
	}
	t->hdr = headers ? 1 : 0;
	for (size_t i = 0; headers && i < ncols; i++)
		kx_table_cell(t, headers[i]);
	if (t->failed) {
		kx_table_free(t);
		return NULL;
	}
	return t;
}

void kx_table_free(struct kx_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->max);
	free(t);
}

void kx_table_set_indent(struct kx_table *t, size_t n)
{
	t->indent = n;
}

void kx_table_set_max(struct kx_table *t, size_t col, size_t max)
{
	if (col < t->ncols)
		t->max[col] = max;
}

static void store_cell(struct kx_table *t, const char *s)
{
	struct kx_buf b;
	size_t max;
	char *cell;

	if (t->failed)
		return;
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **p = realloc(t->cells, cap * sizeof(*p));

		if (!p) {
			t->failed = 1;
			return;
		}
		t->cells = p;
		t->cap = cap;
	}
	kx_buf_init(&b, 0);
	if (kx_out_clean(&b, s ? s : "-", 0)) {
		t->failed = 1;
		return;
	}
	max = t->ncells >= t->hdr * t->ncols ? t->max[t->ncells % t->ncols] : 0;
	if (max > 1 && kx_out_width(kx_buf_str(&b)) > max) {
		b.len = prefix_bytes(b.data, max - 1);
		b.data[b.len] = '\0';
		if (kx_buf_adds(&b, "…")) {
			t->failed = 1;
			return;
		}
	}
	cell = kx_buf_take(&b, NULL);
	if (!cell) {
		kx_buf_release(&b);
		t->failed = 1;
		return;
	}
	t->cells[t->ncells++] = cell;
}

void kx_table_cell(struct kx_table *t, const char *s)
{
	store_cell(t, s);
}

void kx_table_cellf(struct kx_table *t, const char *fmt, ...)
{
	struct kx_buf b;
	va_list ap;
	int rc;

	kx_buf_init(&b, 0);
	va_start(ap, fmt);
	rc = kx_buf_addvf(&b, fmt, ap);
	va_end(ap);
	if (rc)
		t->failed = 1;
	else
		store_cell(t, kx_buf_str(&b));
	kx_buf_release(&b);
}

int kx_table_print(const struct kx_table *t, FILE *f)
{
	struct kx_buf line;
	size_t *w;
	size_t nrows;
	int rc = 0;

	if (t->failed)
		return KX_ENOMEM;
	w = calloc(t->ncols, sizeof(*w));
	if (!w)
		return KX_ENOMEM;
	kx_buf_init(&line, 0);
	nrows = (t->ncells + t->ncols - 1) / t->ncols;
	for (size_t i = 0; i < t->ncells; i++) {
		size_t cw = kx_out_width(t->cells[i]);

		if (cw > w[i % t->ncols])
			w[i % t->ncols] = cw;
	}
	for (size_t r = 0; r < nrows; r++) {
		kx_buf_clear(&line);
		if (kx_buf_addf(&line, "%*s", (int)t->indent, "")) {
			rc = KX_ENOMEM;
			goto out;
		}
		for (size_t c = 0; c < t->ncols; c++) {
			size_t i = r * t->ncols + c;
			const char *s = i < t->ncells ? t->cells[i] : "-";
			size_t pad = c + 1 < t->ncols ? w[c] - kx_out_width(s) + 2 : 0;

			if (kx_buf_adds(&line, s) ||
			    kx_buf_addf(&line, "%*s", (int)pad, "")) {
				rc = KX_ENOMEM;
				goto out;
			}
		}
		while (line.len && line.data[line.len - 1] == ' ')
			line.data[--line.len] = '\0';
		fprintf(f, "%s\n", kx_buf_str(&line));
	}
out:
	kx_buf_release(&line);
	free(w);
	return rc;
}

int kx_out_line(FILE *f, const char *s)
{
	struct kx_buf b;

	kx_buf_init(&b, 0);
	if (kx_out_clean(&b, s, 0))
		return KX_ENOMEM;
	fprintf(f, "%s\n", kx_buf_str(&b));
	kx_buf_release(&b);
	return 0;
}

int kx_out_kv(FILE *f, size_t keyw, const char *key, const char *value)
{
	struct kx_buf b;
	const char *p, *nl;
	size_t klen = strlen(key);
	int first = 1;

	if (keyw < klen)
		keyw = klen;
	kx_buf_init(&b, 0);
	if (kx_out_clean(&b, value && *value ? value : "-", 1))
		return KX_ENOMEM;
	for (p = kx_buf_str(&b);; p = nl + 1) {
		nl = strchr(p, '\n');
		if (first)
			fprintf(f, "%s:%*s", key, (int)(keyw + 1 - klen), "");
		else
			fprintf(f, "%*s", (int)(keyw + 2), "");
		fprintf(f, "%.*s\n", (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
		first = 0;
		if (!nl)
			break;
	}
	kx_buf_release(&b);
	return 0;
}

int kx_out_json(FILE *f, const json_t *j)
{
	if (json_dumpf(j, f, JSON_INDENT(2)) || fputc('\n', f) == EOF)
		return KX_EIO;
	return 0;
}
