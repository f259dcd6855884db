/* config.h — Klaxon's configuration: daemon settings, the severity scheme
 * and the incident types, with the runbooks' defaults built in.
 *
 * kx_config_parse() reads YAML from memory (no I/O here); every error names
 * the file, line and column: "klaxon.yaml:7:20: 'response_time': cannot
 * parse duration 'soon'". Unknown keys are errors, so typos do not pass
 * silently. A struct kx_config owns all its strings.
 */
#ifndef KX_CONFIG_H
#define KX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"
#include "lib/err.h"
#include "lib/time.h"

enum kx_postmortem { KX_PM_REQUIRED, KX_PM_OPTIONAL, KX_PM_NONE };
const char *kx_postmortem_name(enum kx_postmortem p);

struct kx_severity {
	char *name;        /* "P1" */
	int rank;          /* 0 = most severe, in config order */
	char *description;
	char *examples;    /* may be NULL */
	kx_ms response_time; /* target time to acknowledge */
	kx_ms update_every;  /* status update cadence */
	bool pages;
	enum kx_postmortem postmortem;
	char *escalate_to; /* may be NULL */
};

struct kx_type {
	char *name;        /* "SAFETY": [A-Z0-9_]{1,32} */
	char *description;
};

/* A notification channel (the outbox delivers to it; engine/outbox.h). */
enum kx_channel_kind { KX_CHANNEL_WEBHOOK, KX_CHANNEL_SLACK, KX_CHANNEL_EMAIL };
/* "webhook", "slack", "email" */
const char *kx_channel_kind_name(enum kx_channel_kind k);

struct kx_channel {
	char *name;	 /* [a-z0-9_-]{1,64}, unique */
	enum kx_channel_kind kind;
	char *url;	 /* webhook, slack: http:// or https://; email: the SMTP server,
			  * smtp://host:port or smtps://host:port */
	char *secret;	 /* webhook: HMAC-SHA256 key for X-Klaxon-Signature; NULL: unsigned */
	char **events;	 /* event names this channel takes ("switch.set", "incident.*");
			  * none listed = every event */
	size_t nevents;
	char *selector;	 /* only events whose labels match (core/selector.h); NULL = any */
	char **severities; /* incident events only at these severities ("P0","P1"); none = all */
	size_t nseverities;
	kx_ms timeout;	 /* one delivery attempt, default 5s (email: 30s) */
	/* email only */
	char *from;	 /* envelope and From: address */
	char **to;	 /* recipients, at least one */
	size_t nto;
	char *username, *password; /* SMTP AUTH, NULL: none */
};

/* A service defined in the file (core/alert.h: struct kx_service). */
struct kx_service_config {
	char *name;
	char *description;
	struct kx_labels labels;
};

/* A health check (engine/checks.h): an HTTP(S) GET every `interval`. */
struct kx_check {
	char *name;	    /* [a-z0-9_-]{1,64}, unique: the alert's dedup key is "check:NAME" */
	char *service;	    /* a configured service */
	char *url;	    /* http:// or https:// */
	kx_ms interval;	    /* default 30s */
	kx_ms timeout;	    /* default 5s, at most interval */
	int expect_status;  /* 0: any 2xx */
	char *expect_body;  /* a substring the body must contain, NULL: none */
	uint32_t fail_after;	/* consecutive failures that fire it, default 3 */
	uint32_t resolve_after; /* consecutive successes that resolve it, default 1 */
	int level;	    /* enum kx_alert_level of the alert, default critical */
	char *summary;	    /* NULL: "Health check NAME is failing" */
};

/* A routing rule (core/route.h). The first rule whose matchers hold for
 * an alert routes it; an alert no rule matches takes the defaults. */
enum kx_route_action {
	KX_ROUTE_OPEN = 0, /* attach to the group's open incident, else open one when the
			    * alert's severity is at or above open_at */
	KX_ROUTE_ATTACH,   /* attach to the group's open incident, never open one */
	KX_ROUTE_NONE,	   /* stays an alert */
};
const char *kx_route_action_name(enum kx_route_action a); /* "open", "attach", "none" */
struct kx_routing_rule {
	char *name;		/* [a-z0-9_-]{1,64}; the defaults are named "default" */
	char *match;		/* matchers, canonical text ("" = every alert) */
	char *service;		/* moves the alert to this configured service, NULL: keep */
	char *severity;		/* every alert gets this severity, NULL: by level_severity */
	char *level_severity[4]; /* severity per enum kx_alert_level; defaults P1 P2 P3 P4 */
	char **types;		/* incident types for an incident it opens */
	size_t ntypes;
	struct kx_labels labels; /* added to an incident it opens */
	enum kx_route_action action;
	char *open_at;		/* threshold severity, default "P2" */
	char **group_by;	/* alert fields/labels forming the group, default [service] */
	size_t ngroup_by;
	bool resolve_to_monitoring; /* the last alert resolving moves the incident to monitoring */
};

/* The gate's settings (core/gate.h). */
struct kx_cap_config {
	char *id;
	char *spec; /* "platform=instagram,action=comment: 200/1d" */
};
struct kx_gate_config {
	kx_ms dedupe_window;	/* default 24h; 0 = off */
	kx_ms approval_ttl;	/* a pending approval expires after this, default 1h */
	struct kx_cap_config *caps; /* caps from the file (read-only through the API) */
	size_t ncaps;
	/* `klaxon resume --ramp` defaults: floor..peak actions per window */
	uint32_t ramp_floor, ramp_peak;
	kx_ms ramp_window;
};

/* A detection rule over the audit stream (core/detect.h). */
enum kx_detect_kind {
	KX_DETECT_RATE,	      /* more than `threshold` matching events per `per` value in `window` */
	KX_DETECT_DUPLICATES, /* more than `threshold` events with the same action, target and
			       * content hash in `window` */
};
struct kx_detection {
	char *name;	   /* [a-z0-9_-]{1,64}, unique */
	enum kx_detect_kind kind;
	char *selector;	   /* which events count ("action=dm"); "" = all */
	char *per;	   /* rate: the field or label grouped by ("account"); NULL = one group */
	uint32_t threshold; /* fires when the count exceeds it */
	kx_ms window;
	char *severity;	   /* of the incident it opens (must be a configured severity) */
	char *type;	   /* incident type, NULL: none */
	char *title;	   /* NULL: made from the rule */
	/* auto-containment: a switch over the offending scope */
	bool contain;
	enum { KX_CONTAIN_BLOCK, KX_CONTAIN_APPROVE, KX_CONTAIN_READ_ONLY } contain_mode;
	char **contain_by;  /* fields copied from the offending event into the switch
			     * selector; default: `per` (or client+account for duplicates) */
	size_t ncontain_by;
	kx_ms contain_for;  /* switch expiry; 0 = until cleared */
};

struct kx_config {
	char *listen;      /* "127.0.0.1:8080" */
	char *data_dir;    /* "./var" */
	char *db;          /* NULL: sqlite:DATA_DIR/klaxon.db */
	char *public_url;  /* NULL: http://LISTEN */
	size_t max_body_bytes;
	int threads;       /* HTTP worker threads, 0 = four per core */
	struct kx_severity *severities;
	size_t nseverities;
	struct kx_type *types;
	size_t ntypes;
	struct kx_channel *channels;
	size_t nchannels;
	struct kx_gate_config gate;
	struct kx_detection *detections;
	size_t ndetections;
	struct kx_service_config *services;
	size_t nservices;
	struct kx_check *checks;
	size_t nchecks;
	struct kx_routing_rule *routes;
	size_t nroutes;
	struct kx_routing_rule route_default; /* `routing_default:` or the built-in defaults */
};

/* Fills cfg with the built-in defaults (the runbooks' P0–P4 scheme and the
 * incident type list). */
int kx_config_init(struct kx_config *cfg);
void kx_config_release(struct kx_config *cfg);

/* Applies the YAML document text[0..len) on top of cfg. `file` is used in
 * messages. On error cfg may be partly changed: release it. */
int kx_config_parse(struct kx_config *cfg, const char *text, size_t len, const char *file,
		    struct kx_err *err);

/* Is name an event the outbox sends ("switch.set"), a family of them
 * ("switch.*") or "*"? The list is in service/outbox.h. */
bool kx_config_event_known(const char *name);

const struct kx_channel *kx_config_channel(const struct kx_config *cfg, const char *name);

const struct kx_severity *kx_config_severity(const struct kx_config *cfg, const char *name);
const struct kx_type *kx_config_type(const struct kx_config *cfg, const char *name);

/* "unknown severity 'P9': use P0, P1, P2, P3 or P4" */
int kx_config_severity_error(const struct kx_config *cfg, const char *name,
			     struct kx_err *err);

#endif
