#include "cli/http.h"
#include "cli/cli.h"

#include <curl/curl.h>
#include <string.h>

int kx_http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : KX_EIO;
}

void kx_http_global_cleanup(void)
{
	curl_global_cleanup();
}

void kx_http_resp_init(struct kx_http_resp *r)
{
	r->status = 0;
	kx_buf_init(&r->body, KX_HTTP_MAX_BODY);
}

void kx_http_resp_release(struct kx_http_resp *r)
{
	r->status = 0;
	kx_buf_release(&r->body);
}

int kx_http_escape(struct kx_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			    c == '~' || c == '-';
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (plain ? kx_buf_addc(b, (char)c) : kx_buf_add(b, esc, 3))
			return KX_ENOMEM;
	}
	return 0;
}

int kx_http_query_add(struct kx_buf *b, const char *key, const char *value)
{
	char sep = strchr(kx_buf_str(b), '?') ? '&' : '?';

	if (kx_buf_addc(b, sep) || kx_http_escape(b, key) || kx_buf_addc(b, '=') ||
	    kx_http_escape(b, value))
		return KX_ENOMEM;
	return 0;
}

struct sink {
	struct kx_buf *b;
	int overflow;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = size * n;

	if (kx_buf_add(s->b, p, len)) {
		s->overflow = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return len;
}

/* Appends one header line to *list; returns 0 or KX_ENOMEM. */
static int add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (!l)
		return KX_ENOMEM;
	*list = l;
	return 0;
}

static int build_headers(struct curl_slist **list, const char *token,
			 const char *content_type)
{
	struct kx_buf auth, ct;
	int rc = 0;

	kx_buf_init(&auth, 0);
	kx_buf_init(&ct, 0);
	if (add_header(list, "Accept: application/json") ||
	    add_header(list, "Expect:")) { /* no 100-continue round trip */
		rc = KX_ENOMEM;
		goto out;
	}
	if (content_type && (kx_buf_addf(&ct, "Content-Type: %s", content_type) ||
			     add_header(list, kx_buf_str(&ct)))) {
		rc = KX_ENOMEM;
		goto out;
	}
	if (token) {
		if (kx_buf_addf(&auth, "Authorization: Bearer %s", token) ||
		    add_header(list, kx_buf_str(&auth))) {
			rc = KX_ENOMEM;
			goto out;
		}
	}
out:
	kx_buf_release(&auth);
	kx_buf_release(&ct);
	return rc;
}

static void set_method(CURL *h, const char *method, const char *body,
		       size_t len)
{
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(body ? len : 0));
	}
}

/* Drops the trailing newline curl sometimes leaves in its error buffer. */
static const char *curl_reason(char *ebuf, CURLcode cc)
{
	size_t n = strlen(ebuf);

	while (n && (ebuf[n - 1] == '\n' || ebuf[n - 1] == '\r'))
		ebuf[--n] = '\0';
	return n ? ebuf : curl_easy_strerror(cc);
}

int kx_http_request(const char *base, const char *token, const char *method,
		    const char *path, const char *body, size_t len,
		    struct kx_http_resp *resp, struct kx_err *err)
{
	return kx_http_request_as(base, token, method, path, NULL, body, len, resp, err);
}

int kx_http_request_as(const char *base, const char *token, const char *method,
		       const char *path, const char *content_type, const char *body,
		       size_t len, struct kx_http_resp *resp, struct kx_err *err)
{
	CURL *h = NULL;
	struct curl_slist *headers = NULL;
	struct kx_buf url;
	struct sink sink = {&resp->body, 0};
	char ebuf[CURL_ERROR_SIZE];
	CURLcode cc;
	int rc = 0;

	kx_buf_init(&url, 0);
	kx_buf_clear(&resp->body);
	resp->status = 0;
	ebuf[0] = '\0';

	if (kx_buf_adds(&url, base) || kx_buf_adds(&url, path) ||
	    build_headers(&headers, token,
			  body ? (content_type ? content_type : "application/json") : NULL)) {
		rc = kx_err_set(err, KX_ENOMEM, "out of memory");
		goto out;
	}
	h = curl_easy_init();
	if (!h) {
		rc = kx_err_set(err, KX_ENOMEM, "cannot start libcurl");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, kx_buf_str(&url));
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, KX_HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "klaxon/" KX_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	set_method(h, method, body, len);

	cc = curl_easy_perform(h);
	if (sink.overflow) {
		rc = kx_err_set(err, KX_ETOOBIG,
				"response from klaxond at %s is over %zu bytes",
				base, (size_t)KX_HTTP_MAX_BODY);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = kx_err_set(err, KX_EIO, "cannot reach klaxond at %s: %s", base,
				curl_reason(ebuf, cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	kx_buf_release(&url);
	if (rc)
		kx_buf_release(&resp->body);
	return rc;
}
