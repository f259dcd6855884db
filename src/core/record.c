#include "core/record.h"

#include <string.h>

int kx_md_inline(struct kx_buf *out, const char *s)
{
	for (const char *p = s; *p; p++) {
		char ch = *p;
		int rc;
		if (ch == '\n' || ch == '\r' || ch == '\t')
			rc = kx_buf_addc(out, ' ');
		else if (strchr("\\`*_[]<>#|", ch))
			rc = kx_buf_addc(out, '\\') || kx_buf_addc(out, ch);
		else
			rc = kx_buf_addc(out, ch);
		if (rc)
			return KX_ENOMEM;
	}
	return 0;
}

/* Escapes what would make a line start a block: list markers ("-", "+",
 * "1."), headings, quotes and setext underlines ("===", "---"). Leading
 * blanks are dropped (four would open a code block). Returns where the
 * rest of the line starts. */
static const char *md_line_start(struct kx_buf *out, const char *p, const char *end, int *rc)
{
	const char *q;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && strchr("-+=~", *p)) { /* "#", ">" are escaped inline */
		*rc |= kx_buf_addc(out, '\\');
		return p;
	}
	for (q = p; q < end && *q >= '0' && *q <= '9'; q++)
		;
	if (q > p && q < end && (*q == '.' || *q == ')')) {
		*rc |= kx_buf_add(out, p, (size_t)(q - p));
		*rc |= kx_buf_addc(out, '\\');
		return q;
	}
	return p;
}

/* A block of user text: each line escaped, kept as its own line. */
static int md_block(struct kx_buf *out, const char *s)
{
	const char *p = s;
	while (*p) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		int rc = 0;
		p = md_line_start(out, p, end, &rc);
		if (rc)
			return KX_ENOMEM;
		while (p < end) {
			char line[1024];
			size_t take = (size_t)(end - p) < sizeof(line) - 1 ? (size_t)(end - p)
									: sizeof(line) - 1;
			memcpy(line, p, take);
			line[take] = '\0';
			if (kx_md_inline(out, line))
				return KX_ENOMEM;
			p += take;
		}
		if (kx_buf_addc(out, '\n'))
			return KX_ENOMEM;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

static int field_time(struct kx_buf *out, const char *name, kx_ms t, const char *unset)
{
	char ts[KX_TIME_STRLEN];
	if (t == KX_TIME_UNSET)
		return kx_buf_addf(out, "- **%s**: %s\n", name, unset);
	return kx_buf_addf(out, "- **%s**: %s\n", name, kx_time_format_human(t, ts));
}

static const char *status_title(enum kx_status s)
{
	switch (s) {
	case KX_STATUS_INVESTIGATING: return "Investigating";
	case KX_STATUS_IDENTIFIED: return "Identified";
	case KX_STATUS_MONITORING: return "Monitoring";
	case KX_STATUS_RESOLVED: return "Resolved";
	}
	return "Unknown";
}

static int summary(struct kx_buf *out, const struct kx_incident *inc,
		   const struct kx_config *cfg)
{
	const struct kx_severity *sev = cfg ? kx_config_severity(cfg, inc->severity) : NULL;
	int rc = 0;

	rc |= kx_buf_adds(out, "## Summary\n");
	rc |= kx_buf_addf(out, "- **Severity**: %s", inc->severity);
	if (sev && sev->description) {
		rc |= kx_buf_adds(out, " (");
		rc |= kx_md_inline(out, sev->description);
		rc |= kx_buf_adds(out, ")");
	}
	rc |= kx_buf_addf(out, "\n- **Status**: %s\n", status_title(inc->status));
	if (inc->ntypes) {
		rc |= kx_buf_adds(out, "- **Types**: ");
		for (size_t i = 0; i < inc->ntypes; i++)
			rc |= kx_buf_addf(out, "%s%s", i ? ", " : "", inc->types[i]);
		rc |= kx_buf_addc(out, '\n');
	}
	if (inc->labels.n) {
		rc |= kx_buf_adds(out, "- **Scope**: ");
		for (size_t i = 0; i < inc->labels.n; i++) {
			rc |= kx_buf_adds(out, i ? ", " : "");
			rc |= kx_md_inline(out, inc->labels.v[i].key);
			rc |= kx_buf_addc(out, '=');
			rc |= kx_md_inline(out, inc->labels.v[i].value);
		}
		rc |= kx_buf_addc(out, '\n');
	}
	rc |= field_time(out, "Started", inc->started_at, "unknown");
	rc |= field_time(out, "Detected", inc->detected_at, "unknown");
	rc |= field_time(out, "Declared", inc->declared_at, "unknown");
	rc |= field_time(out, "Acknowledged", inc->acknowledged_at, "[pending]");
	rc |= field_time(out, "Mitigated", inc->mitigated_at, "[pending]");
	rc |= field_time(out, "Resolved", inc->resolved_at, "[pending]");
	if (inc->summary && *inc->summary) {
		rc |= kx_buf_addc(out, '\n');
		rc |= md_block(out, inc->summary);
	}
	return rc ? KX_ENOMEM : 0;
}

static int roles(struct kx_buf *out, const struct kx_incident *inc)
{
	int rc = kx_buf_adds(out, "\n## Roles\n");
	if (!inc->nroles)
		return rc | kx_buf_adds(out, "[none assigned]\n") ? KX_ENOMEM : 0;
	for (size_t r = 0; kx_roles[r]; r++) {
		for (size_t i = 0; i < inc->nroles; i++) {
			if (strcmp(inc->roles[i].role, kx_roles[r]) != 0)
				continue;
			rc |= kx_buf_addf(out, "- **%s**: ", kx_role_title(kx_roles[r]));
			rc |= kx_md_inline(out, inc->roles[i].person);
			rc |= kx_buf_addc(out, '\n');
		}
	}
	return rc ? KX_ENOMEM : 0;
}

static int timeline(struct kx_buf *out, const struct kx_incident *inc,
		    const struct kx_timeline_entry *t, size_t n)
{
	int rc = kx_buf_adds(out, "\n## Timeline\n");
	char ts[KX_TIME_STRLEN];

	if (inc->started_at != KX_TIME_UNSET)
		rc |= kx_buf_addf(out, "- %s — impact started\n",
				  kx_time_format_human(inc->started_at, ts));
	if (inc->detected_at != KX_TIME_UNSET)
		rc |= kx_buf_addf(out, "- %s — detected\n", kx_time_format_human(inc->detected_at, ts));
	for (size_t i = 0; i < n; i++) {
		rc |= kx_buf_addf(out, "- %s — ", kx_time_format_human(t[i].at, ts));
		rc |= kx_md_inline(out, t[i].text);
		rc |= kx_buf_adds(out, " (");
		rc |= kx_md_inline(out, t[i].author);
		rc |= kx_buf_adds(out, ")\n");
	}
	return rc ? KX_ENOMEM : 0;
}

static int impact(struct kx_buf *out, const struct kx_incident *inc)
{
	const struct kx_impact *im = &inc->impact;
	int rc = kx_buf_adds(out, "\n## Impact\n");
	bool any = false;

	if (im->users >= 0) {
		rc |= kx_buf_addf(out, "- %lld user%s affected\n", (long long)im->users,
				  im->users == 1 ? "" : "s");
		any = true;
	}
	if (im->accounts >= 0) {
		rc |= kx_buf_addf(out, "- %lld account%s affected\n", (long long)im->accounts,
				  im->accounts == 1 ? "" : "s");
		any = true;
	}
	if (im->actions >= 0) {
		rc |= kx_buf_addf(out, "- %lld action%s affected\n", (long long)im->actions,
				  im->actions == 1 ? "" : "s");
		any = true;
	}
	if (im->revenue) {
		rc |= kx_buf_adds(out, "- Revenue impact: ");
		rc |= kx_md_inline(out, im->revenue);
		rc |= kx_buf_addc(out, '\n');
		any = true;
	}
	if (im->description) {
		rc |= kx_buf_adds(out, "- ");
		rc |= kx_md_inline(out, im->description);
		rc |= kx_buf_addc(out, '\n');
		any = true;
	}
	if (!any)
		rc |= kx_buf_adds(out, "[To be assessed]\n");
	return rc ? KX_ENOMEM : 0;
}

static int section_text(struct kx_buf *out, const char *title, const char *text,
			const char *unset)
{
	int rc = kx_buf_addf(out, "\n## %s\n", title);
	if (text && *text)
		rc |= md_block(out, text);
	else
		rc |= kx_buf_addf(out, "%s\n", unset);
	return rc ? KX_ENOMEM : 0;
}

static int items(struct kx_buf *out, const struct kx_action_item *a, size_t n)
{
	int rc = kx_buf_adds(out, "\n## Action Items\n");
	if (!n)
		rc |= kx_buf_adds(out, "[none yet]\n");
	for (size_t i = 0; i < n; i++) {
		rc |= kx_buf_addf(out, "- [%c] ", a[i].done ? 'x' : ' ');
		rc |= kx_md_inline(out, a[i].title);
		rc |= kx_buf_addf(out, " (%s", kx_item_kind_name(a[i].kind));
		if (a[i].owner) {
			rc |= kx_buf_adds(out, ", owner: ");
			rc |= kx_md_inline(out, a[i].owner);
		}
		if (a[i].due[0])
			rc |= kx_buf_addf(out, ", due %s", a[i].due);
		rc |= kx_buf_adds(out, ")\n");
	}
	return rc ? KX_ENOMEM : 0;
}

int kx_record_markdown(struct kx_buf *out, const struct kx_incident *inc,
		       const struct kx_timeline_entry *t, size_t nt,
		       const struct kx_action_item *a, size_t na, const struct kx_config *cfg)
{
	if (kx_buf_addf(out, "# Incident %s: ", inc->id) || kx_md_inline(out, inc->title) ||
	    kx_buf_adds(out, "\n\n"))
		return KX_ENOMEM;
	if (summary(out, inc, cfg) || roles(out, inc) || timeline(out, inc, t, nt) ||
	    impact(out, inc) ||
	    section_text(out, "Root Cause", inc->root_cause, "[To be determined]") ||
	    section_text(out, "Resolution", inc->resolution, "[To be documented]") ||
	    items(out, a, na))
		return KX_ENOMEM;
	return 0;
}
