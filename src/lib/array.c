#include "lib/array.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int kx_array_grow(void *vp, size_t *cap, size_t need, size_t elem)
{
	void *old, *np;
	size_t nc = *cap ? *cap : 8;

	if (need <= *cap)
		return 0;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return KX_ENOMEM;
		nc *= 2;
	}
	if (elem && nc > SIZE_MAX / elem)
		return KX_ENOMEM;
	memcpy(&old, vp, sizeof(old)); /* the caller's T *, read without aliasing it */
	if (!(np = realloc(old, nc * elem)))
		return KX_ENOMEM;
	memcpy(vp, &np, sizeof(np));
	*cap = nc;
	return 0;
}
