/* routes.c — the API's route table: method, path pattern, least role. */
#include "http/server.h"

/* First match wins. The gate check comes first: automation calls it before
 * every action, so it should not be compared against every other route. */
const struct kx_route kx_routes[] = {
	{"POST", "/v1/gate/check", KX_ACCESS_RESPONDER, kx_h_gate_check, true},
	{"GET", "/healthz", KX_ACCESS_NONE, kx_h_healthz, false},
	{"GET", "/readyz", KX_ACCESS_NONE, kx_h_readyz, false},

	/* Ingestion: public routes; each authenticates the source's
	 * integration (or heartbeat) key itself. */
	{"POST", "/v1/alerts/alertmanager", KX_ACCESS_NONE, kx_h_ingest_alertmanager, false},
	{"POST", "/api/v2/alerts", KX_ACCESS_NONE, kx_h_am_v2_post, false},
	{"GET", "/api/v2/alerts", KX_ACCESS_NONE, kx_h_am_v2_get, false},
	{"GET", "/api/v2/status", KX_ACCESS_NONE, kx_h_am_v2_status, false},
	{"POST", "/v2/enqueue", KX_ACCESS_NONE, kx_h_ev2_enqueue, false},
	{"POST", "/v2/change/enqueue", KX_ACCESS_NONE, kx_h_ev2_change, false},
	{"POST", "/v1/heartbeats/{key}", KX_ACCESS_NONE, kx_h_heartbeat_ping, false},
	{"GET", "/v1/heartbeats/{key}", KX_ACCESS_NONE, kx_h_heartbeat_ping, false},

	{"POST", "/v1/incidents", KX_ACCESS_RESPONDER, kx_h_incident_declare, false},
	{"GET", "/v1/incidents", KX_ACCESS_VIEWER, kx_h_incident_list, false},
	{"GET", "/v1/incidents/{id}", KX_ACCESS_VIEWER, kx_h_incident_get, false},
	{"PATCH", "/v1/incidents/{id}", KX_ACCESS_RESPONDER, kx_h_incident_edit, false},
	{"POST", "/v1/incidents/{id}/status", KX_ACCESS_RESPONDER, kx_h_incident_status, false},
	{"POST", "/v1/incidents/{id}/severity", KX_ACCESS_RESPONDER, kx_h_incident_severity, false},
	{"POST", "/v1/incidents/{id}/roles", KX_ACCESS_RESPONDER, kx_h_incident_roles, false},
	{"POST", "/v1/incidents/{id}/acknowledge", KX_ACCESS_RESPONDER, kx_h_incident_ack, false},
	{"POST", "/v1/incidents/{id}/impact", KX_ACCESS_RESPONDER, kx_h_incident_impact, false},
	{"POST", "/v1/incidents/{id}/resolve", KX_ACCESS_RESPONDER, kx_h_incident_resolve, false},
	{"POST", "/v1/incidents/{id}/reopen", KX_ACCESS_RESPONDER, kx_h_incident_reopen, false},
	{"GET", "/v1/incidents/{id}/timeline", KX_ACCESS_VIEWER, kx_h_timeline_list, false},
	{"POST", "/v1/incidents/{id}/timeline", KX_ACCESS_RESPONDER, kx_h_timeline_add, false},
	{"GET", "/v1/incidents/{id}/action-items", KX_ACCESS_VIEWER, kx_h_action_items_list, false},
	{"POST", "/v1/incidents/{id}/action-items", KX_ACCESS_RESPONDER, kx_h_action_item_add, false},
	{"POST", "/v1/incidents/{id}/action-items/{n}/done", KX_ACCESS_RESPONDER,
	 kx_h_action_item_done, false},
	{"GET", "/v1/incidents/{id}/export", KX_ACCESS_VIEWER, kx_h_incident_export, false},
	{"POST", "/v1/incidents/{id}/evidence", KX_ACCESS_RESPONDER, kx_h_incident_evidence, false},

	{"POST", "/v1/tokens", KX_ACCESS_ADMIN, kx_h_token_create, false},
	{"GET", "/v1/tokens", KX_ACCESS_ADMIN, kx_h_token_list, false},
	{"DELETE", "/v1/tokens/{id}", KX_ACCESS_ADMIN, kx_h_token_revoke, false},

	{"GET", "/v1/severities", KX_ACCESS_VIEWER, kx_h_severities, false},
	{"GET", "/v1/types", KX_ACCESS_VIEWER, kx_h_types, false},

	{"POST", "/v1/audit/events", KX_ACCESS_RESPONDER, kx_h_audit_append, true},
	{"GET", "/v1/audit/events", KX_ACCESS_VIEWER, kx_h_audit_list, false},
	{"GET", "/v1/audit/duplicates", KX_ACCESS_VIEWER, kx_h_audit_duplicates, false},
	{"GET", "/v1/audit/recipients", KX_ACCESS_VIEWER, kx_h_audit_recipients, false},
	{"GET", "/v1/audit/verify", KX_ACCESS_ADMIN, kx_h_audit_verify, false},

	{"POST", "/v1/switches", KX_ACCESS_RESPONDER, kx_h_switch_create, false},
	{"GET", "/v1/switches", KX_ACCESS_VIEWER, kx_h_switch_list, true},
	{"GET", "/v1/switches/stream", KX_ACCESS_VIEWER, kx_h_switch_stream, true},
	{"GET", "/v1/switches/{id}", KX_ACCESS_VIEWER, kx_h_switch_get, true},
	{"POST", "/v1/switches/{id}/clear", KX_ACCESS_RESPONDER, kx_h_switch_clear, false},
	{"POST", "/v1/switches/{id}/resume", KX_ACCESS_RESPONDER, kx_h_switch_resume, false},
	{"GET", "/v1/caps", KX_ACCESS_VIEWER, kx_h_cap_list, true},
	{"PUT", "/v1/caps/{id}", KX_ACCESS_RESPONDER, kx_h_cap_put, false},
	{"DELETE", "/v1/caps/{id}", KX_ACCESS_RESPONDER, kx_h_cap_delete, false},
	{"GET", "/v1/approvals", KX_ACCESS_VIEWER, kx_h_approval_list, false},
	{"GET", "/v1/approvals/{id}", KX_ACCESS_VIEWER, kx_h_approval_get, true},
	{"POST", "/v1/approvals/{id}/approve", KX_ACCESS_RESPONDER, kx_h_approval_approve, false},
	{"POST", "/v1/approvals/{id}/deny", KX_ACCESS_RESPONDER, kx_h_approval_deny, false},

	/* POST /v1/alerts takes a bearer integration key, not a token: its
	 * handler authenticates (see the ingestion routes above). */
	{"POST", "/v1/alerts", KX_ACCESS_NONE, kx_h_ingest_generic, false},
	{"GET", "/v1/alerts", KX_ACCESS_VIEWER, kx_h_alert_list, false},
	{"GET", "/v1/alerts/{id}", KX_ACCESS_VIEWER, kx_h_alert_get, false},
	{"POST", "/v1/alerts/{id}/acknowledge", KX_ACCESS_RESPONDER, kx_h_alert_ack, false},
	{"POST", "/v1/alerts/{id}/resolve", KX_ACCESS_RESPONDER, kx_h_alert_resolve, false},
	{"POST", "/v1/alerts/{id}/noise", KX_ACCESS_RESPONDER, kx_h_alert_noise, false},
	{"POST", "/v1/services", KX_ACCESS_ADMIN, kx_h_service_create, false},
	{"GET", "/v1/services", KX_ACCESS_VIEWER, kx_h_service_list, false},
	{"GET", "/v1/services/{name}", KX_ACCESS_VIEWER, kx_h_service_get, false},
	{"POST", "/v1/integrations", KX_ACCESS_ADMIN, kx_h_integration_create, false},
	{"GET", "/v1/integrations", KX_ACCESS_ADMIN, kx_h_integration_list, false},
	{"DELETE", "/v1/integrations/{id}", KX_ACCESS_ADMIN, kx_h_integration_revoke, false},
	{"POST", "/v1/heartbeats", KX_ACCESS_ADMIN, kx_h_heartbeat_create, false},
	{"GET", "/v1/heartbeats", KX_ACCESS_VIEWER, kx_h_heartbeat_list, false},
	{"DELETE", "/v1/heartbeats/{name}", KX_ACCESS_ADMIN, kx_h_heartbeat_delete, false},
	{"POST", "/v1/silences", KX_ACCESS_RESPONDER, kx_h_silence_create, false},
	{"GET", "/v1/silences", KX_ACCESS_VIEWER, kx_h_silence_list, false},
	{"POST", "/v1/silences/{id}/expire", KX_ACCESS_RESPONDER, kx_h_silence_expire, false},
	{"GET", "/v1/notifications", KX_ACCESS_VIEWER, kx_h_notification_list, false},
	{"GET", "/v1/notifications/{id}", KX_ACCESS_VIEWER, kx_h_notification_get, false},
	{NULL, NULL, KX_ACCESS_NONE, NULL, false},
};
