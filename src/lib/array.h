/* array.h — growing the plain C arrays that list results are built in. */
#ifndef KX_ARRAY_H
#define KX_ARRAY_H

#include <stddef.h>

/* vp points to an array pointer (a `T **`) whose allocation holds *cap
 * elements of elem bytes. Makes room for at least `need` elements, doubling
 * from 8. Returns 0, or KX_ENOMEM (allocation failure or size overflow) with
 * the array and *cap untouched. */
int kx_array_grow(void *vp, size_t *cap, size_t need, size_t elem);

#endif
