/* h_misc.c — health, readiness and configuration endpoints. */
#include "http/encode.h"
#include "http/server.h"

void kx_h_healthz(struct kx_http_req *req, struct kx_http_resp *resp)
{
	(void)req;
	kx_http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void kx_h_readyz(struct kx_http_req *req, struct kx_http_resp *resp)
{
	struct kx_err err = {0};
	if (kx_store_ping(req->app->store, &err)) {
		kx_http_json(resp, 503,
			     json_pack("{s:s,s:{s:s,s:s}}", "status", "unavailable", "error", "code",
				       "unavailable", "message", err.msg));
		return;
	}
	kx_http_json(resp, 200,
		     json_pack("{s:s,s:s}", "status", "ready", "store",
			       kx_store_backend_name(req->app->store)));
}

void kx_h_severities(struct kx_http_req *req, struct kx_http_resp *resp)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < req->app->cfg->nseverities; i++)
		json_array_append_new(a, kx_enc_severity(&req->app->cfg->severities[i]));
	kx_http_json(resp, 200, json_pack("{s:o}", "severities", a));
}

void kx_h_types(struct kx_http_req *req, struct kx_http_resp *resp)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < req->app->cfg->ntypes; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "name", req->app->cfg->types[i].name,
						   "description",
						   req->app->cfg->types[i].description));
	kx_http_json(resp, 200, json_pack("{s:o}", "types", a));
}
