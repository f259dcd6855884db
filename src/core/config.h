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
};

/* Fills cfg with the built-in defaults (the runbooks' P0–P4 scheme and the
 * incident type list). */
int kx_config_init(struct kx_config *cfg);
void kx_config_release(struct kx_config *cfg);

/* Applies the YAML document text[0..len) on top of cfg. `file` is used in
 * messages. On error cfg may be partly changed: release it. */
int kx_config_parse(struct kx_config *cfg, const char *text, size_t len, const char *file,
		    struct kx_err *err);

const struct kx_severity *kx_config_severity(const struct kx_config *cfg, const char *name);
const struct kx_type *kx_config_type(const struct kx_config *cfg, const char *name);

/* "unknown severity 'P9': use P0, P1, P2, P3 or P4" */
int kx_config_severity_error(const struct kx_config *cfg, const char *name,
			     struct kx_err *err);

#endif
