#define KX_CURL_NO_MACROS
#include "engine/curl.h"

#include "lib/dynload.h"

struct kx_curl_api kx_curl;

static const char *const sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4", NULL};
static const struct kx_dl_sym syms[] = {
	KX_DL_SYM(kx_curl, curl_global_init),
	KX_DL_SYM(kx_curl, curl_global_cleanup),
	KX_DL_SYM(kx_curl, curl_slist_append),
	KX_DL_SYM(kx_curl, curl_slist_free_all),
	KX_DL_SYM(kx_curl, curl_easy_init),
	KX_DL_SYM(kx_curl, curl_easy_setopt),
	KX_DL_SYM(kx_curl, curl_easy_getinfo),
	KX_DL_SYM(kx_curl, curl_easy_strerror),
	KX_DL_SYM(kx_curl, curl_easy_cleanup),
	KX_DL_SYM(kx_curl, curl_multi_init),
	KX_DL_SYM(kx_curl, curl_multi_add_handle),
	KX_DL_SYM(kx_curl, curl_multi_remove_handle),
	KX_DL_SYM(kx_curl, curl_multi_perform),
	KX_DL_SYM(kx_curl, curl_multi_poll),
	KX_DL_SYM(kx_curl, curl_multi_wakeup),
	KX_DL_SYM(kx_curl, curl_multi_info_read),
	KX_DL_SYM(kx_curl, curl_multi_cleanup),
};
static struct kx_dl_lib lib = KX_DL_LIB(
	sonames, "notification channels and health checks need libcurl (Debian package libcurl4)",
	"libcurl", "older than 7.68?", syms);

int kx_curl_load(struct kx_err *err)
{
	return kx_dl_load(&lib, err);
}
