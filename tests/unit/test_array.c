#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "lib/array.h"
#include "lib/err.h"

static void grows_and_keeps_contents(void **state)
{
	int *v = NULL;
	size_t cap = 0;
	(void)state;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(kx_array_grow(&v, &cap, (size_t)i + 1, sizeof(*v)), 0);
		assert_true(cap >= (size_t)i + 1);
		v[i] = i;
	}
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	assert_int_equal(cap, 1024); /* doubling from 8 */
	free(v);
}

static void enough_room_is_a_no_op(void **state)
{
	int *v = NULL;
	size_t cap = 0;
	int *before;
	(void)state;
	assert_int_equal(kx_array_grow(&v, &cap, 3, sizeof(*v)), 0);
	assert_int_equal(cap, 8);
	before = v;
	assert_int_equal(kx_array_grow(&v, &cap, 8, sizeof(*v)), 0);
	assert_ptr_equal(v, before);
	free(v);
}

static void overflow_is_enomem_and_leaves_the_array(void **state)
{
	int *v = NULL;
	size_t cap = 0;
	(void)state;
	assert_int_equal(kx_array_grow(&v, &cap, 4, sizeof(*v)), 0);
	v[0] = 42;
	assert_int_equal(kx_array_grow(&v, &cap, SIZE_MAX / 2, sizeof(*v)), KX_ENOMEM);
	assert_int_equal(kx_array_grow(&v, &cap, SIZE_MAX, 1), KX_ENOMEM);
	assert_int_equal(cap, 8);
	assert_int_equal(v[0], 42);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_and_keeps_contents),
		cmocka_unit_test(enough_room_is_a_no_op),
		cmocka_unit_test(overflow_is_enomem_and_leaves_the_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
