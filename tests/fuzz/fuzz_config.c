/* fuzz_config.c — kx_config_parse on arbitrary YAML.
 *
 * Oracles: a refusal is KX_EINVAL whose message starts with "FILE:LINE:COL: "
 * (or KX_ENOMEM); an accepted document leaves a usable configuration: 1 to
 * 16 uniquely named severities ranked in order with positive durations,
 * uniquely named types, every string non-NULL. Nothing leaks either way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/text.h"

#define FILE_NAME "fuzz.yaml"

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* "FILE:LINE:COL: " with LINE, COL >= 1. */
static bool positioned(const char *msg)
{
	const char *p = msg;
	size_t n = strlen(FILE_NAME);
	if (strncmp(p, FILE_NAME ":", n + 1) != 0)
		return false;
	p += n + 1;
	for (int field = 0; field < 2; field++) {
		if (*p < '1' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p++ != ':')
			return false;
	}
	return *p == ' ';
}

static void check_config(const struct kx_config *cfg)
{
	check(cfg->listen && cfg->data_dir);
	check(cfg->max_body_bytes >= 1024 && cfg->max_body_bytes <= ((size_t)1 << 30));
	check(cfg->threads >= 0 && cfg->threads <= 256);
	check(cfg->nseverities >= 1 && cfg->nseverities <= 16);
	for (size_t i = 0; i < cfg->nseverities; i++) {
		const struct kx_severity *s = &cfg->severities[i];
		check(s->name && *s->name && s->description);
		check(s->rank == (int)i);
		check(s->response_time > 0 && s->update_every > 0);
		check(kx_config_severity(cfg, s->name) == s);
		check(kx_postmortem_name(s->postmortem) != NULL);
	}
	check(cfg->ntypes >= 16 && cfg->ntypes <= 256);
	for (size_t i = 0; i < cfg->ntypes; i++) {
		const struct kx_type *t = &cfg->types[i];
		check(t->name && *t->name && t->description);
		check(kx_config_type(cfg, t->name) == t);
		for (const char *p = t->name; *p; p++)
			check((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_');
	}
	check(kx_text_check(cfg->listen, strlen(cfg->listen), KX_TEXT_MULTILINE) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kx_config cfg;
	struct kx_err err = {0};
	int rc;

	if (kx_config_init(&cfg))
		return 0;
	rc = kx_config_parse(&cfg, (const char *)data, size, FILE_NAME, &err);
	if (rc == 0) {
		check_config(&cfg);
		kx_config_severity_error(&cfg, "P9", &err);
		check(strncmp(err.msg, "unknown severity 'P9': use ", 27) == 0);
	} else {
		check(rc == KX_EINVAL || rc == KX_ENOMEM);
		check(err.code == rc);
		if (rc == KX_EINVAL)
			check(positioned(err.msg));
	}
	kx_config_release(&cfg);
	return 0;
}
