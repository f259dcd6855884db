/* dynload.c — run-time loading of a shared library (dynload.h). */
#include "lib/dynload.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void load(struct kx_dl_lib *lib)
{
	void *h = NULL;
	char first[300] = "";

	for (const char *const *so = lib->sonames; *so && !h; so++) {
		if (!(h = dlopen(*so, RTLD_NOW | RTLD_LOCAL)) && !first[0])
			snprintf(first, sizeof(first), "%s", dlerror());
	}
	if (!h) {
		snprintf(lib->error, sizeof(lib->error), "%s: %s", lib->need, first);
		return;
	}
	for (size_t i = 0; i < lib->nsyms; i++) {
		void *sym = dlsym(h, lib->syms[i].name);
		if (!sym) {
			snprintf(lib->error, sizeof(lib->error), "%s has no symbol '%s' (%s)",
				 lib->name, lib->syms[i].name, lib->hint);
			return;
		}
		/* an object pointer into a function pointer, without the cast ISO
		 * C leaves undefined */
		memcpy(lib->syms[i].slot, &sym, sizeof(sym));
	}
	lib->loaded = true;
}

int kx_dl_load(struct kx_dl_lib *lib, struct kx_err *err)
{
	bool ok;
	pthread_mutex_lock(&lib->lock);
	if (!lib->tried) {
		lib->tried = true;
		load(lib);
	}
	ok = lib->loaded;
	pthread_mutex_unlock(&lib->lock);
	if (!ok)
		return kx_err_set(err, KX_EIO, "%s",
				  lib->error[0] ? lib->error : "cannot load a shared library");
	return 0;
}
