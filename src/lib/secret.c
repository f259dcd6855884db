#include "lib/secret.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int kx_secret_init(void)
{
	return sodium_init() < 0 ? KX_EIO : 0;
}

void kx_token_generate(char out[KX_TOKEN_LEN + 1])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, "kx_", 3);
	sodium_bin2base64(out + 3, KX_TOKEN_LEN + 1 - 3, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

void kx_hash(const void *s, size_t n, uint8_t out[KX_HASH_LEN])
{
	crypto_generichash(out, KX_HASH_LEN, s, n, NULL, 0);
}

void kx_hash2(const void *a, size_t na, const void *b, size_t nb, uint8_t out[KX_HASH_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, KX_HASH_LEN);
	crypto_generichash_update(&st, a, na);
	crypto_generichash_update(&st, b, nb);
	crypto_generichash_final(&st, out, KX_HASH_LEN);
}

void kx_hex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kx_unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return KX_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return KX_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void kx_random_id(const char *prefix, char *out, size_t outlen)
{
	uint8_t raw[8];
	char hex[17];
	randombytes_buf(raw, sizeof(raw));
	kx_hex(raw, sizeof(raw), hex);
	snprintf(out, outlen, "%s%s", prefix, hex);
}
