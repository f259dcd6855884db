#include "core/route.h"

#include <regex.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "lib/secret.h"

/* ---- matchers ------------------------------------------------------------ */

enum op { OP_EQ, OP_NE, OP_RE, OP_NRE };
static const char *const op_text[] = {"=", "!=", "=~", "!~"};

struct matcher {
	char *name;
	enum op op;
	char *value;
	regex_t re; /* OP_RE, OP_NRE */
};

struct kx_matchers {
	struct matcher v[KX_MATCHERS_MAX];
	size_t n;
};

void kx_matchers_free(struct kx_matchers *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].value);
		if (m->v[i].op == OP_RE || m->v[i].op == OP_NRE)
			regfree(&m->v[i].re);
	}
	free(m);
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static int fail(struct kx_err *err, const char *text, const char *p, const char *what)
{
	return kx_err_set(err, KX_EINVAL, "cannot parse matchers at column %zu: %s",
			  (size_t)(p - text) + 1, what);
}

/* A quoted value (p at the opening quote) or a bare one. */
static int parse_value(const char *text, const char **pp, struct kx_buf *b, struct kx_err *err)
{
	const char *p = *pp;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			char c = *p;
			if (c == '\\') {
				p++;
				if (*p == 'n')
					c = '\n';
				else if (*p == '"' || *p == '\\')
					c = *p;
				else /* keep regex escapes such as \. as they are */
				{
					if (kx_buf_addc(b, '\\'))
						return kx_err_set(err, KX_ENOMEM, "out of memory");
					c = *p;
					if (!c)
						break;
				}
			}
			if (kx_buf_addc(b, c))
				return kx_err_set(err, KX_ENOMEM, "out of memory");
		}
		if (*p != '"')
			return fail(err, text, p, "unterminated quoted value");
		p++;
	} else {
		const char *start = p, *end;
		while (*p && *p != ',' && *p != '}')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (kx_buf_add(b, start, (size_t)(end - start)))
			return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	*pp = p;
	return 0;
}

/* The regex is wrapped as ^(RE)$ to anchor it: a ')' that closes nothing
 * would end the group early ("a)|(b" would match any text starting with
 * a), so it is refused. Bracket expressions and escapes are skipped. */
static bool parens_balanced(const char *re)
{
	int depth = 0;
	for (const char *p = re; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				break;
		} else if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					char close = p[1];
					p += 2;
					while (*p && !(p[0] == close && p[1] == ']'))
						p++;
					if (*p)
						p++;
				}
				if (*p)
					p++;
			}
			if (!*p)
				return false;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			if (--depth < 0)
				return false;
		}
	}
	return depth == 0;
}

static int matcher_cmp(const void *a, const void *b)
{
	const struct matcher *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->op != y->op)
		return (int)x->op - (int)y->op;
	return strcmp(x->value, y->value);
}

int kx_matchers_parse(const char *text, struct kx_matchers **out, struct kx_err *err)
{
	struct kx_matchers *m;
	const char *p = text ? text : "";
	bool braced;
	int rc = 0;

	*out = NULL;
	if (text && strlen(text) > 16384)
		return kx_err_set(err, KX_ETOOBIG, "matchers are longer than 16384 bytes");
	/* error messages quote no input, so this keeps them clean text too */
	if (text && kx_text_check(text, strlen(text), 0))
		return kx_err_set(err, KX_EINVAL, "matchers hold control characters or invalid UTF-8");
	if (!(m = calloc(1, sizeof(*m))))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	text = p;
	skip_ws(&p);
	if ((braced = *p == '{')) {
		p++;
		skip_ws(&p);
	}
	while (*p && !(braced && *p == '}')) {
		struct matcher *x;
		const char *start = p;
		struct kx_buf b;
		if (m->n == KX_MATCHERS_MAX) {
			rc = fail(err, text, p, "too many matchers (at most 64)");
			goto out;
		}
		x = &m->v[m->n];
		if (!name_char(*p, true)) {
			rc = fail(err, text, p, "expected a label name");
			goto out;
		}
		while (name_char(*p, false))
			p++;
		if ((size_t)(p - start) > KX_ALERT_LABEL_KEY_MAX) {
			rc = fail(err, text, start, "label name too long");
			goto out;
		}
		if (!(x->name = strndup(start, (size_t)(p - start)))) {
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		skip_ws(&p);
		if (p[0] == '=' && p[1] == '~')
			x->op = OP_RE, p += 2;
		else if (p[0] == '!' && p[1] == '~')
			x->op = OP_NRE, p += 2;
		else if (p[0] == '!' && p[1] == '=')
			x->op = OP_NE, p += 2;
		else if (p[0] == '=')
			x->op = OP_EQ, p += 1;
		else {
			free(x->name);
			rc = fail(err, text, p, "expected =, !=, =~ or !~ after the label name");
			goto out;
		}
		skip_ws(&p);
		kx_buf_init(&b, KX_ALERT_LABEL_VALUE_MAX * 2);
		if ((rc = parse_value(text, &p, &b, err))) {
			kx_buf_release(&b);
			free(x->name);
			goto out;
		}
		x->value = kx_buf_take(&b, NULL);
		if (!x->value && !(x->value = strdup(""))) {
			free(x->name);
			rc = kx_err_set(err, KX_ENOMEM, "out of memory");
			goto out;
		}
		if (x->op == OP_RE || x->op == OP_NRE) {
			size_t n = strlen(x->value) + 6;
			char *anchored = malloc(n);
			int e;
			if (!anchored) {
				free(x->name);
				free(x->value);
				rc = kx_err_set(err, KX_ENOMEM, "out of memory");
				goto out;
			}
			snprintf(anchored, n, "^(%s)$", x->value);
			e = parens_balanced(x->value) ? regcomp(&x->re, anchored, REG_EXTENDED | REG_NOSUB)
						       : REG_EPAREN;
			free(anchored);
			if (e) {
				char msg[128];
				regerror(e, NULL, msg, sizeof(msg));
				rc = kx_err_set(err, KX_EINVAL, "matcher %zu: bad regex for '%s': %s",
						m->n + 1, x->name, msg);
				free(x->name);
				free(x->value);
				goto out;
			}
		}
		m->n++;
		skip_ws(&p);
		if (*p == ',') {
			p++;
			skip_ws(&p);
		} else if (*p && !(braced && *p == '}')) {
			rc = fail(err, text, p, "expected ',' between matchers");
			goto out;
		}
	}
	if (braced) {
		if (*p != '}') {
			rc = fail(err, text, p, "missing '}'");
			goto out;
		}
		p++;
		skip_ws(&p);
	}
	if (*p) {
		rc = fail(err, text, p, "unexpected text after the matchers");
		goto out;
	}
	qsort(m->v, m->n, sizeof(m->v[0]), matcher_cmp);
	*out = m;
	return 0;
out:
	kx_matchers_free(m);
	return rc;
}

int kx_matchers_format(const struct kx_matchers *m, struct kx_buf *out)
{
	int rc = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct matcher *x = &m->v[i];
		rc |= i ? kx_buf_addc(out, ',') : 0;
		rc |= kx_buf_adds(out, x->name);
		rc |= kx_buf_adds(out, op_text[x->op]);
		rc |= kx_buf_addc(out, '"');
		for (const char *p = x->value; *p; p++) {
			/* a backslash the parser would read as an escape is escaped */
			if (*p == '"' ||
			    (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == 'n' || !p[1])))
				rc |= kx_buf_addc(out, '\\');
			if (*p == '\n')
				rc |= kx_buf_adds(out, "\\n");
			else
				rc |= kx_buf_addc(out, *p);
		}
		rc |= kx_buf_addc(out, '"');
	}
	return rc ? KX_ENOMEM : 0;
}

int kx_matchers_canonical(const char *text, char **out, struct kx_err *err)
{
	struct kx_matchers *m;
	struct kx_buf b;
	int rc;

	*out = NULL;
	if ((rc = kx_matchers_parse(text, &m, err)))
		return rc;
	kx_buf_init(&b, 0);
	rc = kx_matchers_format(m, &b);
	kx_matchers_free(m);
	if (!rc && !(*out = b.len ? kx_buf_take(&b, NULL) : strdup("")))
		rc = KX_ENOMEM;
	kx_buf_release(&b);
	return rc ? kx_err_set(err, KX_ENOMEM, "out of memory") : 0;
}

bool kx_matchers_match(const struct kx_matchers *m, const struct kx_labels *fields)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct matcher *x = &m->v[i];
		const char *v = kx_labels_get(fields, x->name);
		bool ok;
		if (!v)
			v = "";
		switch (x->op) {
		case OP_EQ: ok = !strcmp(v, x->value); break;
		case OP_NE: ok = strcmp(v, x->value) != 0; break;
		case OP_RE: ok = regexec(&x->re, v, 0, NULL, 0) == 0; break;
		default: ok = regexec(&x->re, v, 0, NULL, 0) != 0; break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* ---- match fields ---------------------------------------------------------- */

/* Sets a field, cut to the label value limit at a UTF-8 boundary. */
static int set_field(struct kx_labels *out, const char *key, const char *value,
		     struct kx_err *err)
{
	char cut[KX_ALERT_LABEL_VALUE_MAX + 1];
	size_t n;

	if (!value || !*value)
		return 0;
	n = strlen(value);
	if (n > KX_ALERT_LABEL_VALUE_MAX) {
		n = KX_ALERT_LABEL_VALUE_MAX;
		while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
			n--;
		memcpy(cut, value, n);
		cut[n] = '\0';
		value = cut;
	}
	/* fields replace a label of the same name */
	kx_labels_remove(out, key);
	return kx_alert_label_set(out, key, value, err);
}

static int fields_common(struct kx_labels *out, const struct kx_labels *labels,
			 const char *service, enum kx_alert_level level,
			 enum kx_alert_source source, const char *summary, const char *component,
			 const char *group, const char *class, const char *source_host,
			 struct kx_err *err)
{
	int rc;
	if ((rc = kx_labels_copy(out, labels)))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	if ((rc = set_field(out, "service", service, err)) ||
	    (rc = set_field(out, "severity", kx_alert_level_name(level), err)) ||
	    (rc = set_field(out, "source", kx_alert_source_name(source), err)) ||
	    (rc = set_field(out, "summary", summary, err)) ||
	    (rc = set_field(out, "component", component, err)) ||
	    (rc = set_field(out, "group", group, err)) || (rc = set_field(out, "class", class, err)) ||
	    (rc = set_field(out, "source_host", source_host, err))) {
		/* a full label set cannot take the fields: matching on labels alone
		 * would be wrong, so say so */
		kx_labels_release(out);
		return rc;
	}
	return 0;
}

int kx_alert_event_fields(const struct kx_alert_event *e, const char *service,
			  struct kx_labels *out, struct kx_err *err)
{
	return fields_common(out, &e->labels, service, e->level, e->source, e->summary,
			     e->component, e->group, e->class, e->source_host, err);
}

int kx_alert_fields(const struct kx_alert *a, struct kx_labels *out, struct kx_err *err)
{
	return fields_common(out, &a->labels, a->service, a->level, a->source, a->summary,
			     a->component, a->group, a->class, a->source_host, err);
}

/* ---- routing ------------------------------------------------------------- */

struct kx_router {
	const struct kx_config *cfg;
	struct kx_matchers **m; /* per cfg->routes[i] */
	size_t n;
};

void kx_router_free(struct kx_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		kx_matchers_free(r->m[i]);
	free(r->m);
	free(r);
}

int kx_router_new(const struct kx_config *cfg, struct kx_router **out, struct kx_err *err)
{
	struct kx_router *r;
	int rc;

	*out = NULL;
	if (!(r = calloc(1, sizeof(*r))) ||
	    (cfg->nroutes && !(r->m = calloc(cfg->nroutes, sizeof(*r->m))))) {
		free(r);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	r->cfg = cfg;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if ((rc = kx_matchers_parse(cfg->routes[i].match, &r->m[i], err))) {
			kx_router_free(r);
			return rc;
		}
		r->n++;
	}
	*out = r;
	return 0;
}

void kx_route_decision_release(struct kx_route_decision *d)
{
	free(d->group);
	memset(d, 0, sizeof(*d));
}

static int rank_of(const struct kx_config *cfg, const char *sev)
{
	const struct kx_severity *s = sev ? kx_config_severity(cfg, sev) : NULL;
	return s ? s->rank : 1 << 20;
}

static const char *by_rank(const struct kx_config *cfg, size_t rank)
{
	if (!cfg->nseverities)
		return "P4";
	return cfg->severities[rank < cfg->nseverities ? rank : cfg->nseverities - 1].name;
}

int kx_route_decide(const struct kx_router *r, const struct kx_alert_event *e,
		    const char *service, const struct kx_labels *fields,
		    struct kx_route_decision *out, struct kx_err *err)
{
	const struct kx_config *cfg = r->cfg;
	const struct kx_routing_rule *rule = &cfg->route_default;
	static const char *const default_group[] = {"service"};
	const char *const *group_by;
	size_t ngroup;
	struct kx_buf b;
	uint8_t h[KX_HASH_LEN];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < r->n; i++)
		if (kx_matchers_match(r->m[i], fields)) {
			rule = &cfg->routes[i];
			break;
		}
	out->rule = rule;
	out->service = rule->service ? rule->service : service;
	out->action = rule->action;
	if (rule->severity)
		out->severity = rule->severity;
	else if (rule->level_severity[e->level])
		out->severity = rule->level_severity[e->level];
	else
		out->severity = cfg->route_default.level_severity[e->level];
	/* a severity the config lacks (the built-in P1…P4 under a custom
	 * scheme): the one at the same rank — critical the second most severe,
	 * as P1 is — or the least severe there is */
	if (!out->severity || !kx_config_severity(cfg, out->severity))
		out->severity = by_rank(cfg, (size_t)e->level + 1);
	{
		const char *at = rule->open_at ? rule->open_at : "P2";
		int open_rank = kx_config_severity(cfg, at) ? rank_of(cfg, at)
							    : rank_of(cfg, by_rank(cfg, 2));
		out->opens = rule->action == KX_ROUTE_OPEN && rank_of(cfg, out->severity) <= open_rank;
	}

	group_by = rule->ngroup_by ? (const char *const *)rule->group_by : default_group;
	ngroup = rule->ngroup_by ? rule->ngroup_by : 1;
	/* alerts routed by different rules never share an incident */
	kx_buf_init(&b, 0);
	rc = kx_buf_addf(&b, "route=%s", rule->name);
	for (size_t i = 0; i < ngroup && !rc; i++) {
		const char *v = !strcmp(group_by[i], "service") ? out->service
								  : kx_labels_get(fields, group_by[i]);
		rc |= kx_buf_addf(&b, ",%s=%s", group_by[i], v ? v : "");
	}
	if (rc || !(out->group = kx_buf_take(&b, NULL))) {
		kx_buf_release(&b);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	crypto_generichash(h, sizeof(h), (const unsigned char *)out->group, strlen(out->group), NULL,
			   0);
	kx_hex(h, KX_FINGERPRINT_LEN / 2, out->group_hash);
	out->group_hash[KX_FINGERPRINT_LEN] = '\0';
	return 0;
}

/* ---- silences -------------------------------------------------------------- */

struct kx_silencer {
	struct {
		char id[KX_ID_LEN];
		kx_ms starts_at, ends_at;
		struct kx_matchers *m;
	} *v;
	size_t n;
};

void kx_silencer_free(struct kx_silencer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		kx_matchers_free(s->v[i].m);
	free(s->v);
	free(s);
}

int kx_silencer_new(const struct kx_silence *v, size_t n, kx_ms now, struct kx_silencer **out,
		    struct kx_err *err)
{
	struct kx_silencer *s;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))) || (n && !(s->v = calloc(n, sizeof(*s->v))))) {
		free(s);
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct kx_err e = {0};
		if (!kx_silence_active(&v[i], now))
			continue;
		/* stored matchers were checked when the silence was made; one that
		 * no longer parses (a regex engine change) mutes nothing */
		if (kx_matchers_parse(v[i].matchers, &s->v[s->n].m, &e))
			continue;
		memcpy(s->v[s->n].id, v[i].id, KX_ID_LEN);
		s->v[s->n].starts_at = v[i].starts_at;
		s->v[s->n].ends_at = v[i].ends_at;
		s->n++;
	}
	*out = s;
	return 0;
}

const char *kx_silencer_match(const struct kx_silencer *s, const struct kx_labels *fields,
			      kx_ms now)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].starts_at <= now && now < s->v[i].ends_at &&
		    kx_matchers_match(s->v[i].m, fields))
			return s->v[i].id;
	return NULL;
}
