/* output.h — how klaxon shows things to people (tables, key: value blocks)
 * and to programs (pretty-printed JSON).
 *
 * Text that came from the daemon is untrusted: everything printed through
 * the table and key/value functions has its control characters (C0, DEL,
 * C1) replaced, so a title cannot move the cursor or rewrite the terminal.
 * Widths count UTF-8 code points.
 */
#ifndef KX_CLI_OUTPUT_H
#define KX_CLI_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/buf.h"

/* Titles in tables are cut to this many code points (ending in "…"). */
#define KX_OUT_TITLE_MAX 60

/* A table: an optional header row and cells added left to right, row by
 * row. Invariants: every stored cell is a cleaned, owned string (a NULL
 * cell is stored as "-"); an allocation failure is sticky and reported by
 * kx_table_print(). */
struct kx_table;

/* Returns a table with ncols columns named by headers (NULL: no header
 * row), or NULL when out of memory. */
struct kx_table *kx_table_new(size_t ncols, const char *const *headers);
/* Every printed line starts with n spaces. */
void kx_table_set_indent(struct kx_table *t, size_t n);
/* Frees the table and its cells; t may be NULL. */
void kx_table_free(struct kx_table *t);
/* Cells of column col wider than max code points are cut (0: no limit). */
void kx_table_set_max(struct kx_table *t, size_t col, size_t max);
/* Appends the next cell; NULL shows as "-". */
void kx_table_cell(struct kx_table *t, const char *s);
void kx_table_cellf(struct kx_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints the header and the rows with columns as wide as their content,
 * two spaces apart, no trailing blanks. Returns 0 or KX_ENOMEM. */
int kx_table_print(const struct kx_table *t, FILE *f);

/* Appends s with control characters replaced: '\n' kept when keep_nl,
 * otherwise '\n' and '\t' become a space and the rest '?'. */
int kx_out_clean(struct kx_buf *b, const char *s, int keep_nl);
/* The number of UTF-8 code points in s. */
size_t kx_out_width(const char *s);

/* Prints the cleaned s and a newline. Returns 0 or KX_ENOMEM. */
int kx_out_line(FILE *f, const char *s);

/* Prints "KEY:" padded to keyw + 2 columns, then the cleaned value; lines
 * after the first of a multi-line value are indented to the same column.
 * NULL or "" prints "-". Returns 0 or KX_ENOMEM. */
int kx_out_kv(FILE *f, size_t keyw, const char *key, const char *value);

/* Prints j indented by 2, with a final newline. Returns 0 or KX_EIO. */
int kx_out_json(FILE *f, const json_t *j);

#endif
