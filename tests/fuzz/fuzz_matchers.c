/* fuzz_matchers.c — the matcher parser of routing rules and silences
 * (core/route.h).
 *
 * The input is copied and NUL-terminated. Oracles:
 * - an accepted text's canonical form parses again and prints the same
 *   (canonical is a fixed point), and matching a label set gives the same
 *   answer for the text and its canonical form;
 * - a refused text leaves no object and a message that is valid UTF-8
 *   without control characters (it ends up in JSON and logs).
 * Leaks are caught by the sanitizer run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alert.h"
#include "core/route.h"
#include "core/text.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kx_matchers *m = NULL, *m2 = NULL;
	struct kx_err err = {0};
	struct kx_labels ls;
	char *text, *c1 = NULL, *c2 = NULL;

	if (size > 4096)
		return 0;
	if (!(text = malloc(size + 1)))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (kx_matchers_parse(text, &m, &err)) {
		check(m == NULL);
		check(kx_text_check(err.msg, strlen(err.msg), 0) == 0);
		free(text);
		return 0;
	}
	check(kx_matchers_canonical(text, &c1, &err) == 0);
	check(kx_matchers_canonical(c1, &c2, &err) == 0);
	check(!strcmp(c1, c2));
	check(kx_matchers_parse(c1, &m2, &err) == 0);
	/* the same verdicts on a few label sets */
	kx_labels_init(&ls);
	check(kx_matchers_match(m, &ls) == kx_matchers_match(m2, &ls));
	kx_alert_label_set(&ls, "alertname", "DatabaseDown", NULL);
	kx_alert_label_set(&ls, "severity", "critical", NULL);
	check(kx_matchers_match(m, &ls) == kx_matchers_match(m2, &ls));
	kx_labels_release(&ls);
	kx_matchers_free(m);
	kx_matchers_free(m2);
	free(c1);
	free(c2);
	free(text);
	return 0;
}
