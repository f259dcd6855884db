/* routes.c — the API's route table: method, path pattern, least role. */
#include "http/server.h"

const struct kx_route kx_routes[] = {
	{"GET", "/healthz", KX_ACCESS_NONE, kx_h_healthz},
	{"GET", "/readyz", KX_ACCESS_NONE, kx_h_readyz},

	{"POST", "/v1/incidents", KX_ACCESS_RESPONDER, kx_h_incident_declare},
	{"GET", "/v1/incidents", KX_ACCESS_VIEWER, kx_h_incident_list},
	{"GET", "/v1/incidents/{id}", KX_ACCESS_VIEWER, kx_h_incident_get},
	{"PATCH", "/v1/incidents/{id}", KX_ACCESS_RESPONDER, kx_h_incident_edit},
	{"POST", "/v1/incidents/{id}/status", KX_ACCESS_RESPONDER, kx_h_incident_status},
	{"POST", "/v1/incidents/{id}/severity", KX_ACCESS_RESPONDER, kx_h_incident_severity},
	{"POST", "/v1/incidents/{id}/roles", KX_ACCESS_RESPONDER, kx_h_incident_roles},
	{"POST", "/v1/incidents/{id}/acknowledge", KX_ACCESS_RESPONDER, kx_h_incident_ack},
	{"POST", "/v1/incidents/{id}/impact", KX_ACCESS_RESPONDER, kx_h_incident_impact},
	{"POST", "/v1/incidents/{id}/resolve", KX_ACCESS_RESPONDER, kx_h_incident_resolve},
	{"POST", "/v1/incidents/{id}/reopen", KX_ACCESS_RESPONDER, kx_h_incident_reopen},
	{"GET", "/v1/incidents/{id}/timeline", KX_ACCESS_VIEWER, kx_h_timeline_list},
	{"POST", "/v1/incidents/{id}/timeline", KX_ACCESS_RESPONDER, kx_h_timeline_add},
	{"GET", "/v1/incidents/{id}/action-items", KX_ACCESS_VIEWER, kx_h_action_items_list},
	{"POST", "/v1/incidents/{id}/action-items", KX_ACCESS_RESPONDER, kx_h_action_item_add},
	{"POST", "/v1/incidents/{id}/action-items/{n}/done", KX_ACCESS_RESPONDER,
	 kx_h_action_item_done},
	{"GET", "/v1/incidents/{id}/export", KX_ACCESS_VIEWER, kx_h_incident_export},

	{"POST", "/v1/tokens", KX_ACCESS_ADMIN, kx_h_token_create},
	{"GET", "/v1/tokens", KX_ACCESS_ADMIN, kx_h_token_list},
	{"DELETE", "/v1/tokens/{id}", KX_ACCESS_ADMIN, kx_h_token_revoke},

	{"GET", "/v1/severities", KX_ACCESS_VIEWER, kx_h_severities},
	{"GET", "/v1/types", KX_ACCESS_VIEWER, kx_h_types},

	{"POST", "/v1/audit/events", KX_ACCESS_RESPONDER, kx_h_audit_append},
	{"GET", "/v1/audit/events", KX_ACCESS_VIEWER, kx_h_audit_list},
	{"GET", "/v1/audit/duplicates", KX_ACCESS_VIEWER, kx_h_audit_duplicates},
	{"GET", "/v1/audit/recipients", KX_ACCESS_VIEWER, kx_h_audit_recipients},
	{"GET", "/v1/audit/verify", KX_ACCESS_ADMIN, kx_h_audit_verify},
	{NULL, NULL, KX_ACCESS_NONE, NULL},
};
