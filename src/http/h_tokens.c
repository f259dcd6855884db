/* h_tokens.c — /v1/tokens handlers (admin). */
#include "http/decode.h"
#include "http/encode.h"
#include "http/server.h"
#include "service/tokens.h"

#include <sodium.h>
#include <stdio.h>

void kx_h_token_create(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_decoded hold;
	struct kx_token tok;
	struct kx_err err = {0};
	enum kx_access role;
	const char *name;
	char secret[KX_TOKEN_LEN + 1];
	json_t *j;

	if (kx_decode_token(req->body, req->body_len, &role, &name, &hold, &err) ||
	    kx_svc_token_create(req->app, req->who, role, name, &hold.labels, req->now, &tok, secret,
				&err)) {
		kx_http_error(resp, err.code, err.msg);
		kx_decoded_release(&hold);
		return;
	}
	j = kx_enc_token(&tok);
	if (j)
		json_object_set_new(j, "token", json_string(secret));
	snprintf(resp->location, sizeof(resp->location), "/v1/tokens/%s", tok.id);
	kx_http_json(resp, 201, j);
	sodium_memzero(secret, sizeof(secret));
	kx_token_release(&tok);
	kx_decoded_release(&hold);
}

void kx_h_token_list(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_tokens list;
	struct kx_err err = {0};
	json_t *a;

	if (kx_svc_token_list(req->app, req->who, &list, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < list.n; i++)
		json_array_append_new(a, kx_enc_token(&list.v[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "tokens", a));
	kx_tokens_release(&list);
}

void kx_h_token_revoke(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_token tok;
	struct kx_err err = {0};

	if (kx_svc_token_revoke(req->app, req->who, req->params[0], req->now, &tok, &err)) {
		kx_http_error(resp, err.code, err.msg);
		return;
	}
	kx_http_json(resp, 200, kx_enc_token(&tok));
	kx_token_release(&tok);
}
