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
enum kx_channel_kind { KX_CHANNEL_WEBHOOK, KX_CHANNEL_SLACK };
const char *kx_channel_kind_name(enum kx_channel_kind k); /* "webhook", "slack" */

struct kx_channel {
	char *name;	 /* [a-z0-9_-]{1,64}, unique */
	enum kx_channel_kind kind;
	char *url;	 /* http:// or https:// */
	char *secret;	 /* webhook: HMAC-SHA256 key for X-Klaxon-Signature; NULL: unsigned */
	char **events;	 /* event names this channel takes ("switch.set", "incident.*");
			  * none listed = every event */
	size_t nevents;
	char *selector;	 /* only events whose labels match (core/selector.h); NULL = any */
	kx_ms timeout;	 /* one delivery attempt, default 5s */
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
