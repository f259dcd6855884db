/* route.h — which alerts become incidents: matchers, routing rules and
 * silences, as pure functions of an alert and the configuration.
 *
 * Matchers (Alertmanager's syntax, as routing rules and silences write
 * them):
 *
 *     alertname="DatabaseDown"          equal
 *     severity!="info"                  not equal (an absent label is "")
 *     alertname=~"Database.*"           matches the regex, anchored at both ends
 *     instance!~"10\\.0\\..*"           does not match it
 *
 * separated by ',' and optionally wrapped in '{…}'; values in double
 * quotes (\" \\ \n escapes) or bare up to the next ',' or '}'. Names are
 * alert label names or fields. Regexes are POSIX extended (regcomp), so
 * Prometheus' RE2 classes such as \d are not available; `[0-9]` is. An
 * empty text matches everything. Canonical text: matchers sorted by name,
 * then operator and value, values always quoted:
 * `alertname=~"Database.*",service="payments"`.
 *
 * What an alert is matched on: its labels, and these fields, which win
 * over a label of the same name: service (the Klaxon service), severity
 * (the source's level: critical, error, warning, info), source
 * (alertmanager, events-v2, …), summary, component, group, class,
 * source_host (only those present). So `severity="critical"` matches an
 * Alertmanager alert labelled severity=critical and a PagerDuty event of
 * severity critical alike.
 */
#ifndef KX_ROUTE_H
#define KX_ROUTE_H

#include <stdbool.h>

#include "core/alert.h"
#include "core/config.h"
#include "core/labels.h"
#include "lib/buf.h"
#include "lib/err.h"

#define KX_MATCHERS_MAX 64

struct kx_matchers;

/* Parses text; NULL text is "". KX_EINVAL naming the column or the bad
 * regex ("matcher 2: bad regex 'a(': parentheses not balanced"). */
int kx_matchers_parse(const char *text, struct kx_matchers **out, struct kx_err *err);
void kx_matchers_free(struct kx_matchers *m);
/* The canonical text, appended. */
int kx_matchers_format(const struct kx_matchers *m, struct kx_buf *out);
bool kx_matchers_match(const struct kx_matchers *m, const struct kx_labels *fields);
/* Parses and prints canonically into *out (owned). */
int kx_matchers_canonical(const char *text, char **out, struct kx_err *err);

/* The match fields of an event that belongs to `service` (see above),
 * into an initialised, empty out. Values longer than
 * KX_ALERT_LABEL_VALUE_MAX are cut. */
int kx_alert_event_fields(const struct kx_alert_event *e, const char *service,
			  struct kx_labels *out, struct kx_err *err);
/* The same for a stored alert (for silences over stored alerts). */
int kx_alert_fields(const struct kx_alert *a, struct kx_labels *out, struct kx_err *err);

/* The routing table: the config's rules, their matchers parsed once. */
struct kx_router;
int kx_router_new(const struct kx_config *cfg, struct kx_router **out, struct kx_err *err);
void kx_router_free(struct kx_router *r);

/* What routing decided for one alert. Pointers are borrowed from the
 * config the router was built from. */
struct kx_route_decision {
	const struct kx_routing_rule *rule;	/* the matching rule, or &cfg->route_default */
	const char *service;		/* rule->service, or the alert's own */
	const char *severity;		/* the Klaxon severity ("P1"); one the config
					 * lacks (the built-in P1…P4 under a custom
					 * scheme) becomes the one at the same rank */
	enum kx_route_action action;
	bool opens;			/* action OPEN and severity at or above open_at */
	/* The group: "route=RULE,service=payments" (the rule's name, then
	 * its group_by fields as k=v, an absent one as k=) — alerts of one
	 * group share an incident — and its short form, 16 hex digits of its
	 * hash, which an incident carries as label alert_group. */
	char *group;			/* owned */
	char group_hash[KX_FINGERPRINT_LEN + 1];
};
void kx_route_decision_release(struct kx_route_decision *d);

/* Routes e (which arrived for `service`); fields are its match fields
 * (kx_alert_event_fields). 0 or KX_ENOMEM. */
int kx_route_decide(const struct kx_router *r, const struct kx_alert_event *e,
		    const char *service, const struct kx_labels *fields,
		    struct kx_route_decision *out, struct kx_err *err);

/* Silences in force, matchers parsed: built per request from the store's
 * active silences. */
struct kx_silencer;
int kx_silencer_new(const struct kx_silence *v, size_t n, kx_ms now, struct kx_silencer **out,
		    struct kx_err *err);
void kx_silencer_free(struct kx_silencer *s);
/* The id of the first silence in force at now that matches fields, or NULL. */
const char *kx_silencer_match(const struct kx_silencer *s, const struct kx_labels *fields,
			      kx_ms now);

#endif
