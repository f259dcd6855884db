/* secret.h — random secrets and their hashes (libsodium).
 *
 * API tokens are "kx_" + 43 base64url characters (256 random bits). Only
 * their BLAKE2b-256 hash is stored; with that much entropy a fast hash is
 * the right one (no password stretching needed), and lookups go by hash.
 */
#ifndef KX_SECRET_H
#define KX_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define KX_TOKEN_LEN 46  /* "kx_" + 43 */
#define KX_HASH_LEN 32
#define KX_ID_LEN 21     /* "tok_" + 16 hex + NUL */

/* Must be called once before anything else here; 0 or KX_EIO. */
int kx_secret_init(void);

/* A new token, NUL-terminated, into out[KX_TOKEN_LEN + 1]. */
void kx_token_generate(char out[KX_TOKEN_LEN + 1]);
/* BLAKE2b-256 of s[0..n). */
void kx_hash(const void *s, size_t n, uint8_t out[KX_HASH_LEN]);
/* BLAKE2b-256 of a[0..na) followed by b[0..nb) (one hash over both parts,
 * as if they were concatenated): the audit chain's step. */
void kx_hash2(const void *a, size_t na, const void *b, size_t nb, uint8_t out[KX_HASH_LEN]);
/* prefix + 16 random hex digits, e.g. "tok_9f3c…"; out holds prefix+17. */
void kx_random_id(const char *prefix, char *out, size_t outlen);
/* Lowercase hex of n bytes into out[2n+1]. */
void kx_hex(const uint8_t *p, size_t n, char *out);
/* Parses exactly 2n hex digits (either case) of s into out[n]; 0 or
 * KX_EINVAL (out is then unspecified). */
int kx_unhex(const char *s, uint8_t *out, size_t n);

#endif
