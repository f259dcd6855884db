#include "core/config.h"
#include "core/alert.h"
#include "core/gate.h"
#include "core/guard.h"
#include "core/route.h"
#include "core/selector.h"
#include "core/text.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *kx_postmortem_name(enum kx_postmortem p)
{
	switch (p) {
	case KX_PM_REQUIRED: return "required";
	case KX_PM_OPTIONAL: return "optional";
	case KX_PM_NONE: return "none";
	}
	return "none";
}

struct sev_default {
	const char *name, *description, *examples, *response, *update;
	bool pages;
	enum kx_postmortem pm;
	const char *escalate;
};

/* From the runbooks: 001 (P0 safety freeze, P1–P3), 002 (P0 outage and
 * response times), 000 (P4), cadences from 001/003. */
static const struct sev_default default_severities[] = {
	{"P0", "Critical: safety, wrong account, data exposure or complete outage",
	 "wrong-account action, cross-tenant access, credential leak, uncontrolled spam loop, "
	 "entire system unavailable, database unreachable",
	 "5m", "15m", true, KX_PM_REQUIRED, "primary and secondary on-call, engineering lead"},
	{"P1", "Critical: major production outage or immediate harm",
	 "publishing or engagement broadly failing, queue stalled, account banned, wrong DMs sent",
	 "15m", "15m", true, KX_PM_REQUIRED, "primary on-call, secondary if no answer"},
	{"P2", "High: partial degradation, significant impact",
	 "single platform down, elevated error rates, account restricted, many duplicate comments",
	 "1h", "30m", true, KX_PM_OPTIONAL, "primary on-call"},
	{"P3", "Medium: minor or cosmetic issue",
	 "UI glitches, non-blocking failures, wrong engagement targets, single client edge case",
	 "4h", "4h", false, KX_PM_NONE, NULL},
	{"P4", "Low: minor issue", "single failed action, minor data issue", "24h", "24h", false,
	 KX_PM_NONE, NULL},
};

static const char *const default_types[][2] = {
	{"SAFETY", "wrong-account, cross-tenant or unauthorized action"},
	{"PUBLISH", "failed publish, verify or schedule"},
	{"ENGAGE", "DM, comment reply or like behaviour issues"},
	{"AUTH", "token refresh or OAuth issues"},
	{"RATE", "rate limiting, spam detection or restrictions"},
	{"BROWSER", "selector drift, UI change or captcha"},
	{"QUEUE", "backlog, stuck jobs or latency breach"},
	{"TOOLGATE", "tool gateway or tool routing failures"},
	{"PROVIDER", "LLM, image or video provider outage"},
	{"COST", "runaway token usage or runaway generation"},
	{"DATA", "ingestion issues, corruption or wrong sources"},
	{"OBS", "missing telemetry or audit"},
	{"OUTAGE", "service unavailable"},
	{"PERFORMANCE", "slow responses or degraded throughput"},
	{"SECURITY", "security breach or credential exposure"},
	{"DEPLOY", "bad deployment or rollback"},
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void severity_release(struct kx_severity *s)
{
	free(s->name);
	free(s->description);
	free(s->examples);
	free(s->escalate_to);
	memset(s, 0, sizeof(*s));
}

static void type_release(struct kx_type *t)
{
	free(t->name);
	free(t->description);
}

static void severities_release(struct kx_config *cfg)
{
	for (size_t i = 0; i < cfg->nseverities; i++)
		severity_release(&cfg->severities[i]);
	free(cfg->severities);
	cfg->severities = NULL;
	cfg->nseverities = 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void channel_release(struct kx_channel *ch)
{
	free(ch->name);
	free(ch->url);
	free(ch->secret);
	strv_free(ch->events, ch->nevents);
	free(ch->selector);
	strv_free(ch->severities, ch->nseverities);
	free(ch->from);
	strv_free(ch->to, ch->nto);
	free(ch->username);
	free(ch->password);
	memset(ch, 0, sizeof(*ch));
}

static void detection_release(struct kx_detection *d)
{
	free(d->name);
	free(d->selector);
	free(d->per);
	free(d->severity);
	free(d->type);
	free(d->title);
	strv_free(d->contain_by, d->ncontain_by);
	memset(d, 0, sizeof(*d));
}

static void service_config_release(struct kx_service_config *s)
{
	free(s->name);
	free(s->description);
	kx_labels_release(&s->labels);
	memset(s, 0, sizeof(*s));
}

static void check_release(struct kx_check *k)
{
	free(k->name);
	free(k->service);
	free(k->url);
	free(k->expect_body);
	free(k->summary);
	memset(k, 0, sizeof(*k));
}

static void route_release(struct kx_routing_rule *r)
{
	free(r->name);
	free(r->match);
	free(r->service);
	free(r->severity);
	for (int i = 0; i < 4; i++)
		free(r->level_severity[i]);
	strv_free(r->types, r->ntypes);
	kx_labels_release(&r->labels);
	free(r->open_at);
	strv_free(r->group_by, r->ngroup_by);
	memset(r, 0, sizeof(*r));
}

const char *kx_route_action_name(enum kx_route_action a)
{
	return a == KX_ROUTE_ATTACH ? "attach" : a == KX_ROUTE_NONE ? "none" : "open";
}

/* The built-in routing: critical P1, error P2, warning P3, info P4; an
 * alert at P2 or above opens an incident per service. */
static int route_defaults(struct kx_routing_rule *r, const char *name)
{
	static const char *const sev[4] = {"P1", "P2", "P3", "P4"};
	memset(r, 0, sizeof(*r));
	kx_labels_init(&r->labels);
	r->action = KX_ROUTE_OPEN;
	if (!(r->name = strdup(name)) || !(r->match = strdup("")) || !(r->open_at = strdup("P2")))
		return KX_ENOMEM;
	for (int i = 0; i < 4; i++)
		if (!(r->level_severity[i] = strdup(sev[i])))
			return KX_ENOMEM;
	return 0;
}

static const char *const known_events[] = {
	"incident.declared", "incident.status_changed", "incident.severity_changed",
	"incident.resolved", "switch.set",	   "switch.cleared",   "switch.resumed",
	"cap.set",	     "cap.cleared",	   "approval.requested", "approval.decided",
	"detection.fired",   NULL,
};

bool kx_config_event_known(const char *name)
{
	size_t n = strlen(name);
	if (!strcmp(name, "*"))
		return true;
	for (const char *const *e = known_events; *e; e++) {
		if (!strcmp(*e, name))
			return true;
		/* "switch.*": a known family */
		if (n >= 3 && name[n - 1] == '*' && name[n - 2] == '.' && !strncmp(*e, name, n - 1))
			return true;
	}
	return false;
}

const char *kx_channel_kind_name(enum kx_channel_kind k)
{
	return k == KX_CHANNEL_SLACK ? "slack" : k == KX_CHANNEL_EMAIL ? "email" : "webhook";
}

const struct kx_channel *kx_config_channel(const struct kx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nchannels; i++)
		if (!strcmp(cfg->channels[i].name, name))
			return &cfg->channels[i];
	return NULL;
}

void kx_config_release(struct kx_config *cfg)
{
	for (size_t i = 0; i < cfg->nchannels; i++)
		channel_release(&cfg->channels[i]);
	free(cfg->channels);
	for (size_t i = 0; i < cfg->gate.ncaps; i++) {
		free(cfg->gate.caps[i].id);
		free(cfg->gate.caps[i].spec);
	}
	free(cfg->gate.caps);
	for (size_t i = 0; i < cfg->ndetections; i++)
		detection_release(&cfg->detections[i]);
	free(cfg->detections);
	for (size_t i = 0; i < cfg->nservices; i++)
		service_config_release(&cfg->services[i]);
	free(cfg->services);
	for (size_t i = 0; i < cfg->nchecks; i++)
		check_release(&cfg->checks[i]);
	free(cfg->checks);
	for (size_t i = 0; i < cfg->nroutes; i++)
		route_release(&cfg->routes[i]);
	free(cfg->routes);
	route_release(&cfg->route_default);
	free(cfg->listen);
	free(cfg->data_dir);
	free(cfg->db);
	free(cfg->public_url);
	severities_release(cfg);
	for (size_t i = 0; i < cfg->ntypes; i++)
		type_release(&cfg->types[i]);
	free(cfg->types);
	memset(cfg, 0, sizeof(*cfg));
}

int kx_config_init(struct kx_config *cfg)
{
	size_t ns = sizeof(default_severities) / sizeof(default_severities[0]);
	size_t nt = sizeof(default_types) / sizeof(default_types[0]);

	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = strdup("127.0.0.1:8080");
	cfg->data_dir = strdup("./var");
	cfg->max_body_bytes = 1 << 20;
	cfg->gate.dedupe_window = KX_GATE_DEDUPE_DEFAULT;
	cfg->gate.approval_ttl = 3600000;
	cfg->gate.ramp_floor = 1;
	cfg->gate.ramp_peak = 60;
	cfg->gate.ramp_window = 60000;
	cfg->severities = calloc(ns, sizeof(*cfg->severities));
	cfg->types = calloc(nt, sizeof(*cfg->types));
	if (!cfg->listen || !cfg->data_dir || !cfg->severities || !cfg->types ||
	    route_defaults(&cfg->route_default, "default"))
		goto nomem;
	for (size_t i = 0; i < ns; i++) {
		const struct sev_default *d = &default_severities[i];
		struct kx_severity *s = &cfg->severities[i];
		cfg->nseverities++;
		s->name = strdup(d->name);
		s->rank = (int)i;
		s->description = strdup(d->description);
		s->examples = dup_or_null(d->examples);
		s->escalate_to = dup_or_null(d->escalate);
		kx_duration_parse(d->response, &s->response_time);
		kx_duration_parse(d->update, &s->update_every);
		s->pages = d->pages;
		s->postmortem = d->pm;
		if (!s->name || !s->description)
			goto nomem;
	}
	for (size_t i = 0; i < nt; i++) {
		cfg->ntypes++;
		cfg->types[i].name = strdup(default_types[i][0]);
		cfg->types[i].description = strdup(default_types[i][1]);
		if (!cfg->types[i].name || !cfg->types[i].description)
			goto nomem;
	}
	return 0;
nomem:
	kx_config_release(cfg);
	return KX_ENOMEM;
}

const struct kx_severity *kx_config_severity(const struct kx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nseverities; i++)
		if (strcmp(cfg->severities[i].name, name) == 0)
			return &cfg->severities[i];
	return NULL;
}

const struct kx_type *kx_config_type(const struct kx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ntypes; i++)
		if (strcmp(cfg->types[i].name, name) == 0)
			return &cfg->types[i];
	return NULL;
}

int kx_config_severity_error(const struct kx_config *cfg, const char *name,
			     struct kx_err *err)
{
	struct kx_buf b;
	kx_buf_init(&b, 4096);
	for (size_t i = 0; i < cfg->nseverities; i++)
		kx_buf_addf(&b, "%s%s", i == 0 ? "" : i + 1 == cfg->nseverities ? " or " : ", ",
			    cfg->severities[i].name);
	kx_err_set(err, KX_EINVAL, "unknown severity '%.64s': use %s", name, kx_buf_str(&b));
	kx_buf_release(&b);
	return KX_EINVAL;
}

/* ---- YAML walking ---- */

struct ctx {
	yaml_document_t *doc;
	const char *file;
	struct kx_err *err;
	const struct kx_config *cfg;
	bool routing_default; /* the file has a routing_default section */
};

static int at(struct ctx *c, yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int at(struct ctx *c, yaml_node_t *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kx_err_set(c->err, KX_EINVAL, "%s:%zu:%zu: %s", c->file, n->start_mark.line + 1,
			  n->start_mark.column + 1, msg);
}

static int scalar(struct ctx *c, yaml_node_t *n, const char *key, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return at(c, n, "'%s': expected a single value", key);
	*out = (const char *)n->data.scalar.value;
	if (kx_text_check(*out, n->data.scalar.length, KX_TEXT_MULTILINE))
		return at(c, n, "'%s': control characters or invalid UTF-8", key);
	if (strlen(*out) != n->data.scalar.length)
		return at(c, n, "'%s': contains a NUL byte", key);
	return 0;
}

static int get_string(struct ctx *c, yaml_node_t *n, const char *key, char **dst)
{
	const char *s;
	char *p;
	int rc = scalar(c, n, key, &s);
	if (rc)
		return rc;
	if (!(p = strdup(s)))
		return kx_err_set(c->err, KX_ENOMEM, "out of memory");
	free(*dst);
	*dst = p;
	return 0;
}

static int get_bool(struct ctx *c, yaml_node_t *n, const char *key, bool *out)
{
	const char *s;
	int rc = scalar(c, n, key, &s);
	if (rc)
		return rc;
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*out = true;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
		*out = false;
	else
		return at(c, n, "'%s': expected true or false, got '%.64s'", key, s);
	return 0;
}

static int get_duration(struct ctx *c, yaml_node_t *n, const char *key, kx_ms *out)
{
	const char *s;
	int rc = scalar(c, n, key, &s);
	if (rc)
		return rc;
	if (kx_duration_parse(s, out))
		return at(c, n, "'%s': cannot parse duration '%.64s' (use e.g. 90s, 15m, 4h, 1d)", key,
			  s);
	return 0;
}

static int get_uint(struct ctx *c, yaml_node_t *n, const char *key, long long lo, long long hi,
		    long long *out)
{
	const char *s;
	char *end;
	long long v;
	int rc = scalar(c, n, key, &s);
	if (rc)
		return rc;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return at(c, n, "'%s': expected a whole number from %lld to %lld, got '%.64s'", key, lo,
			  hi, s);
	*out = v;
	return 0;
}

typedef int (*pair_fn)(struct ctx *c, const char *key, yaml_node_t *value, void *arg);

/* Calls fn for each key of a mapping node; keys must be scalars. */
static int each_pair(struct ctx *c, yaml_node_t *map, const char *what, pair_fn fn, void *arg)
{
	if (map->type != YAML_MAPPING_NODE)
		return at(c, map, "%s: expected a mapping of key: value", what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		int rc;
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return at(c, k ? k : map, "%s: keys must be plain names", what);
		if ((rc = fn(c, (const char *)k->data.scalar.value, v, arg)))
			return rc;
	}
	return 0;
}

static int unknown_key(struct ctx *c, yaml_node_t *v, const char *key, const char *where)
{
	/* Point at the value: its key is on the same line. */
	return at(c, v, "unknown key '%.64s' in %s", key, where);
}

static int name_check(struct ctx *c, yaml_node_t *n, const char *what, const char *s,
		      size_t max, bool upper_only)
{
	size_t len = strlen(s);
	if (len == 0 || len > max)
		return at(c, n, "%s name must be 1 to %zu characters", what, max);
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
			  (!upper_only && ((ch >= 'a' && ch <= 'z') || ch == '-'));
		if (!ok)
			return at(c, n, "%s name '%.64s' may only use %s", what, s,
				  upper_only ? "A-Z, 0-9 and '_'" : "letters, digits, '_' and '-'");
	}
	return 0;
}

static int severity_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_severity *s = arg;
	long long dummy;
	(void)dummy;

	if (!strcmp(key, "name")) {
		int rc = get_string(c, v, key, &s->name);
		return rc ? rc : name_check(c, v, "severity", s->name, 16, false);
	}
	if (!strcmp(key, "description"))
		return get_string(c, v, key, &s->description);
	if (!strcmp(key, "examples"))
		return get_string(c, v, key, &s->examples);
	if (!strcmp(key, "escalate_to"))
		return get_string(c, v, key, &s->escalate_to);
	if (!strcmp(key, "response_time"))
		return get_duration(c, v, key, &s->response_time);
	if (!strcmp(key, "update_every"))
		return get_duration(c, v, key, &s->update_every);
	if (!strcmp(key, "pages"))
		return get_bool(c, v, key, &s->pages);
	if (!strcmp(key, "postmortem")) {
		const char *p;
		int rc = scalar(c, v, key, &p);
		if (rc)
			return rc;
		if (!strcmp(p, "required"))
			s->postmortem = KX_PM_REQUIRED;
		else if (!strcmp(p, "optional"))
			s->postmortem = KX_PM_OPTIONAL;
		else if (!strcmp(p, "none"))
			s->postmortem = KX_PM_NONE;
		else
			return at(c, v, "'postmortem': expected required, optional or none, got '%.64s'",
				  p);
		return 0;
	}
	return unknown_key(c, v, key, "a severity");
}

static int parse_severities(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	size_t n;
	struct kx_severity *list;

	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'severities': expected a list of levels, most severe first");
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n == 0 || n > 16)
		return at(c, seq, "'severities': expected 1 to 16 levels");
	list = calloc(n, sizeof(*list));
	if (!list)
		return kx_err_set(c->err, KX_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
		struct kx_severity *s = &list[i];
		int rc;
		s->rank = (int)i;
		s->response_time = 3600000;
		s->update_every = 1800000;
		s->postmortem = KX_PM_OPTIONAL;
		if ((rc = each_pair(c, item, "a severity", severity_pair, s)))
			goto fail;
		if (!s->name) {
			rc = at(c, item, "severity %zu has no 'name'", i + 1);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(list[j].name, s->name)) {
				rc = at(c, item, "severity '%s' is defined twice", s->name);
				goto fail;
			}
		}
		if (s->update_every <= 0 || s->response_time <= 0) {
			rc = at(c, item, "severity '%s': durations must be above zero", s->name);
			goto fail;
		}
		if (!s->description && !(s->description = strdup(s->name))) {
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
			goto fail;
		}
		continue;
	fail:
		for (size_t j = 0; j < n; j++)
			severity_release(&list[j]);
		free(list);
		return rc;
	}
	severities_release(cfg);
	cfg->severities = list;
	cfg->nseverities = n;
	return 0;
}

static int type_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_type *t = arg;
	if (!strcmp(key, "name")) {
		int rc = get_string(c, v, key, &t->name);
		return rc ? rc : name_check(c, v, "type", t->name, 32, true);
	}
	if (!strcmp(key, "description"))
		return get_string(c, v, key, &t->description);
	return unknown_key(c, v, key, "a type");
}

/* Types in the config are added to the built-in list; one with a built-in
 * name replaces its description. */
static int parse_types(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'types': expected a list of types");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_type t = {0};
		struct kx_type *existing, *p;
		int rc = each_pair(c, item, "a type", type_pair, &t);
		if (!rc && !t.name)
			rc = at(c, item, "type has no 'name'");
		if (rc) {
			type_release(&t);
			return rc;
		}
		if (!t.description && !(t.description = strdup(""))) {
			type_release(&t);
			return kx_err_set(c->err, KX_ENOMEM, "out of memory");
		}
		existing = (struct kx_type *)kx_config_type(cfg, t.name);
		if (existing) {
			free(existing->description);
			existing->description = t.description;
			free(t.name);
			continue;
		}
		if (cfg->ntypes >= 256) {
			type_release(&t);
			return at(c, item, "too many types (at most 256)");
		}
		p = realloc(cfg->types, (cfg->ntypes + 1) * sizeof(*p));
		if (!p) {
			type_release(&t);
			return kx_err_set(c->err, KX_ENOMEM, "out of memory");
		}
		cfg->types = p;
		cfg->types[cfg->ntypes++] = t;
	}
	return 0;
}

/* ---- channels, gate, detections ---- */

/* A list of names: a sequence of scalars, or one scalar. */
static int get_strv(struct ctx *c, yaml_node_t *n, const char *key, char ***out, size_t *nout)
{
	size_t cnt = 0;
	char **v;

	if (n->type == YAML_SCALAR_NODE) {
		char *one = NULL;
		int rc = get_string(c, n, key, &one);
		if (rc)
			return rc;
		if (!(v = calloc(1, sizeof(*v)))) {
			free(one);
			return kx_err_set(c->err, KX_ENOMEM, "out of memory");
		}
		v[0] = one;
		strv_free(*out, *nout);
		*out = v;
		*nout = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return at(c, n, "'%s': expected a list", key);
	cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (cnt > 64)
		return at(c, n, "'%s': at most 64 entries", key);
	if (!(v = calloc(cnt ? cnt : 1, sizeof(*v))))
		return kx_err_set(c->err, KX_ENOMEM, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *it = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
		int rc = it ? get_string(c, it, key, &v[i]) : at(c, n, "'%s': bad entry", key);
		if (rc) {
			strv_free(v, cnt);
			return rc;
		}
	}
	strv_free(*out, *nout);
	*out = v;
	*nout = cnt;
	return 0;
}

static int lower_name_check(struct ctx *c, yaml_node_t *n, const char *what, const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 64)
		return at(c, n, "%s name must be 1 to 64 characters", what);
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return at(c, n, "%s name '%.64s' may only use a-z, 0-9, '_' and '-'", what, s);
	}
	return 0;
}

static int get_selector(struct ctx *c, yaml_node_t *n, const char *key, char **dst)
{
	struct kx_selector sel;
	struct kx_err e = {0};
	struct kx_buf b;
	int rc = get_string(c, n, key, dst);
	if (rc)
		return rc;
	kx_selector_init(&sel);
	if (kx_selector_parse(&sel, *dst, &e)) {
		kx_selector_release(&sel);
		return at(c, n, "'%s': %s", key, e.msg);
	}
	/* keep the canonical form */
	kx_buf_init(&b, 0);
	rc = kx_selector_format(&sel, &b);
	kx_selector_release(&sel);
	if (rc)
		return kx_err_set(c->err, KX_ENOMEM, "out of memory");
	free(*dst);
	*dst = kx_buf_take(&b, NULL);
	return *dst ? 0 : kx_err_set(c->err, KX_ENOMEM, "out of memory");
}

static int channel_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_channel *ch = arg;
	int rc;
	if (!strcmp(key, "name")) {
		rc = get_string(c, v, key, &ch->name);
		return rc ? rc : lower_name_check(c, v, "channel", ch->name);
	}
	if (!strcmp(key, "type")) {
		const char *t;
		if ((rc = scalar(c, v, key, &t)))
			return rc;
		if (!strcmp(t, "webhook"))
			ch->kind = KX_CHANNEL_WEBHOOK;
		else if (!strcmp(t, "slack") || !strcmp(t, "mattermost"))
			ch->kind = KX_CHANNEL_SLACK;
		else if (!strcmp(t, "email"))
			ch->kind = KX_CHANNEL_EMAIL;
		else
			return at(c, v, "'type': expected webhook, slack, mattermost or email, got '%.64s'",
				  t);
		return 0;
	}
	if (!strcmp(key, "url")) {
		/* which scheme fits which type is checked with the whole channel */
		if ((rc = get_string(c, v, key, &ch->url)))
			return rc;
		if (strncmp(ch->url, "http://", 7) && strncmp(ch->url, "https://", 8) &&
		    strncmp(ch->url, "smtp://", 7) && strncmp(ch->url, "smtps://", 8))
			return at(c, v, "'url': must start with http:// or https:// (smtp:// or "
				  "smtps:// for an email channel)");
		return 0;
	}
	if (!strcmp(key, "from"))
		return get_string(c, v, key, &ch->from);
	if (!strcmp(key, "to"))
		return get_strv(c, v, key, &ch->to, &ch->nto);
	if (!strcmp(key, "username"))
		return get_string(c, v, key, &ch->username);
	if (!strcmp(key, "password"))
		return get_string(c, v, key, &ch->password);
	if (!strcmp(key, "severities"))
		return get_strv(c, v, key, &ch->severities, &ch->nseverities);
	if (!strcmp(key, "secret"))
		return get_string(c, v, key, &ch->secret);
	if (!strcmp(key, "events")) {
		if ((rc = get_strv(c, v, key, &ch->events, &ch->nevents)))
			return rc;
		for (size_t i = 0; i < ch->nevents; i++)
			if (!kx_config_event_known(ch->events[i]))
				return at(c, v,
					  "'events': unknown event '%.64s' (use e.g. incident.declared, "
					  "switch.*, or * for all)",
					  ch->events[i]);
		return 0;
	}
	if (!strcmp(key, "selector"))
		return get_selector(c, v, key, &ch->selector);
	if (!strcmp(key, "timeout")) {
		if ((rc = get_duration(c, v, key, &ch->timeout)))
			return rc;
		if (ch->timeout <= 0 || ch->timeout > 300000)
			return at(c, v, "'timeout': must be above zero and at most 5m");
		return 0;
	}
	return unknown_key(c, v, key, "a channel");
}

static int parse_channels(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'channels': expected a list of channels");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_channel ch = {0}, *p;
		int rc;
		ch.timeout = 0;
		rc = each_pair(c, item, "a channel", channel_pair, &ch);
		if (!rc && !ch.name)
			rc = at(c, item, "channel has no 'name'");
		if (!rc && !ch.url)
			rc = at(c, item, "channel '%s' has no 'url'", ch.name);
		if (!rc && ch.kind == KX_CHANNEL_EMAIL) {
			if (strncmp(ch.url, "smtp://", 7) && strncmp(ch.url, "smtps://", 8))
				rc = at(c, item, "channel '%s': an email channel's 'url' is its SMTP server, "
					"smtp://host:port or smtps://host:port", ch.name);
			else if (!ch.from || !ch.nto)
				rc = at(c, item, "channel '%s': an email channel needs 'from' and 'to'",
					ch.name);
			for (size_t i = 0; !rc && i < ch.nto; i++)
				if (!strchr(ch.to[i], '@') || strpbrk(ch.to[i], "<>\r\n ,"))
					rc = at(c, item, "channel '%s': '%.64s' is not an e-mail address",
						ch.name, ch.to[i]);
			if (!rc && (!strchr(ch.from, '@') || strpbrk(ch.from, "<>\r\n ,")))
				rc = at(c, item, "channel '%s': '%.64s' is not an e-mail address", ch.name,
					ch.from);
		} else if (!rc) {
			if (strncmp(ch.url, "http://", 7) && strncmp(ch.url, "https://", 8))
				rc = at(c, item, "channel '%s': 'url' must start with http:// or https://",
					ch.name);
			else if (ch.from || ch.nto || ch.username || ch.password)
				rc = at(c, item, "channel '%s': 'from', 'to', 'username' and 'password' are "
					"for email channels", ch.name);
		}
		if (!rc && !ch.timeout)
			ch.timeout = ch.kind == KX_CHANNEL_EMAIL ? 30000 : 5000;
		if (!rc && kx_config_channel(cfg, ch.name))
			rc = at(c, item, "channel '%s' is defined twice", ch.name);
		if (!rc && cfg->nchannels >= 64)
			rc = at(c, item, "too many channels (at most 64)");
		if (!rc && !(p = realloc(cfg->channels, (cfg->nchannels + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			channel_release(&ch);
			return rc;
		}
		cfg->channels = p;
		cfg->channels[cfg->nchannels++] = ch;
	}
	return 0;
}

static int cap_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_cap_config *cap = arg;
	if (!strcmp(key, "id"))
		return get_string(c, v, key, &cap->id);
	if (!strcmp(key, "spec"))
		return get_string(c, v, key, &cap->spec);
	return unknown_key(c, v, key, "a cap");
}

static int parse_caps(struct ctx *c, struct kx_gate_config *g, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'caps': expected a list of {id, spec}");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_cap_config cap = {0}, *p = NULL;
		struct kx_gate_cap parsed;
		struct kx_err e = {0};
		int rc = each_pair(c, item, "a cap", cap_pair, &cap);
		if (!rc && (!cap.id || !cap.spec))
			rc = at(c, item, "a cap needs 'id' and 'spec'");
		if (!rc && kx_cap_id_check(cap.id, &e))
			rc = at(c, item, "%s", e.msg);
		for (size_t i = 0; !rc && i < g->ncaps; i++)
			if (!strcmp(g->caps[i].id, cap.id))
				rc = at(c, item, "cap '%s' is defined twice", cap.id);
		if (!rc) {
			kx_gate_cap_init(&parsed);
			if (kx_gate_cap_parse(&parsed, cap.spec, &e))
				rc = at(c, item, "cap '%s': %s", cap.id, e.msg);
			kx_gate_cap_release(&parsed);
		}
		if (!rc && g->ncaps >= 10000)
			rc = at(c, item, "too many caps (at most 10000)");
		if (!rc && !(p = realloc(g->caps, (g->ncaps + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			free(cap.id);
			free(cap.spec);
			return rc;
		}
		g->caps = p;
		g->caps[g->ncaps++] = cap;
	}
	return 0;
}

static int gate_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_gate_config *g = arg;
	long long n;
	int rc;
	if (!strcmp(key, "dedupe_window")) {
		if ((rc = get_duration(c, v, key, &g->dedupe_window)))
			return rc;
		if (g->dedupe_window < 0 || g->dedupe_window > KX_GATE_WINDOW_MAX)
			return at(c, v, "'dedupe_window': must be 0 (off) to 366d");
		return 0;
	}
	if (!strcmp(key, "approval_ttl")) {
		if ((rc = get_duration(c, v, key, &g->approval_ttl)))
			return rc;
		if (g->approval_ttl <= 0 || g->approval_ttl > KX_GATE_WINDOW_MAX)
			return at(c, v, "'approval_ttl': must be above zero and at most 366d");
		return 0;
	}
	if (!strcmp(key, "ramp_floor") || !strcmp(key, "ramp_peak")) {
		if ((rc = get_uint(c, v, key, key[5] == 'f' ? 0 : 1, KX_GATE_LIMIT_MAX, &n)))
			return rc;
		*(key[5] == 'f' ? &g->ramp_floor : &g->ramp_peak) = (uint32_t)n;
		return 0;
	}
	if (!strcmp(key, "ramp_window")) {
		if ((rc = get_duration(c, v, key, &g->ramp_window)))
			return rc;
		if (g->ramp_window <= 0 || g->ramp_window > KX_GATE_WINDOW_MAX)
			return at(c, v, "'ramp_window': must be above zero and at most 366d");
		return 0;
	}
	if (!strcmp(key, "caps"))
		return parse_caps(c, g, v);
	return unknown_key(c, v, key, "'gate'");
}

static int detection_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_detection *d = arg;
	long long n;
	int rc;
	if (!strcmp(key, "name")) {
		rc = get_string(c, v, key, &d->name);
		return rc ? rc : lower_name_check(c, v, "detection", d->name);
	}
	if (!strcmp(key, "kind")) {
		const char *t;
		if ((rc = scalar(c, v, key, &t)))
			return rc;
		if (!strcmp(t, "rate"))
			d->kind = KX_DETECT_RATE;
		else if (!strcmp(t, "duplicates"))
			d->kind = KX_DETECT_DUPLICATES;
		else
			return at(c, v, "'kind': expected rate or duplicates, got '%.64s'", t);
		return 0;
	}
	if (!strcmp(key, "selector"))
		return get_selector(c, v, key, &d->selector);
	if (!strcmp(key, "per")) {
		struct kx_err e = {0};
		if ((rc = get_string(c, v, key, &d->per)))
			return rc;
		if (kx_label_key_check(d->per, &e))
			return at(c, v, "'per': %s", e.msg);
		return 0;
	}
	if (!strcmp(key, "threshold")) {
		if ((rc = get_uint(c, v, key, 1, KX_GATE_LIMIT_MAX, &n)))
			return rc;
		d->threshold = (uint32_t)n;
		return 0;
	}
	if (!strcmp(key, "window")) {
		if ((rc = get_duration(c, v, key, &d->window)))
			return rc;
		if (d->window <= 0 || d->window > 86400000LL)
			return at(c, v, "'window': must be above zero and at most 1d");
		return 0;
	}
	if (!strcmp(key, "severity"))
		return get_string(c, v, key, &d->severity);
	if (!strcmp(key, "type"))
		return get_string(c, v, key, &d->type);
	if (!strcmp(key, "title"))
		return get_string(c, v, key, &d->title);
	if (!strcmp(key, "contain")) {
		const char *t;
		if ((rc = scalar(c, v, key, &t)))
			return rc;
		d->contain = true;
		if (!strcmp(t, "block"))
			d->contain_mode = KX_CONTAIN_BLOCK;
		else if (!strcmp(t, "approve"))
			d->contain_mode = KX_CONTAIN_APPROVE;
		else if (!strcmp(t, "read_only"))
			d->contain_mode = KX_CONTAIN_READ_ONLY;
		else if (!strcmp(t, "none") || !strcmp(t, "false") || !strcmp(t, "no"))
			d->contain = false;
		else
			return at(c, v, "'contain': expected block, approve, read_only or none, got '%.64s'",
				  t);
		return 0;
	}
	if (!strcmp(key, "contain_by")) {
		struct kx_err e = {0};
		if ((rc = get_strv(c, v, key, &d->contain_by, &d->ncontain_by)))
			return rc;
		for (size_t i = 0; i < d->ncontain_by; i++)
			if (kx_label_key_check(d->contain_by[i], &e))
				return at(c, v, "'contain_by': %s", e.msg);
		return 0;
	}
	if (!strcmp(key, "contain_for")) {
		if ((rc = get_duration(c, v, key, &d->contain_for)))
			return rc;
		if (d->contain_for < 0 || d->contain_for > KX_GATE_WINDOW_MAX)
			return at(c, v, "'contain_for': must be 0 (until cleared) to 366d");
		return 0;
	}
	return unknown_key(c, v, key, "a detection");
}

static int parse_detections(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'detections': expected a list of rules");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_detection d = {0}, *p = NULL;
		int rc = each_pair(c, item, "a detection", detection_pair, &d);
		if (!rc && !d.name)
			rc = at(c, item, "detection has no 'name'");
		if (!rc && (!d.threshold || !d.window))
			rc = at(c, item, "detection '%s' needs 'threshold' and 'window'", d.name);
		if (!rc && !d.severity)
			rc = at(c, item, "detection '%s' needs 'severity'", d.name);
		for (size_t i = 0; !rc && i < cfg->ndetections; i++)
			if (!strcmp(cfg->detections[i].name, d.name))
				rc = at(c, item, "detection '%s' is defined twice", d.name);
		if (!rc && !d.selector && !(d.selector = strdup("")))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (!rc && cfg->ndetections >= 256)
			rc = at(c, item, "too many detections (at most 256)");
		if (!rc && !(p = realloc(cfg->detections, (cfg->ndetections + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			detection_release(&d);
			return rc;
		}
		d.contain_mode = d.contain ? d.contain_mode : KX_CONTAIN_BLOCK;
		cfg->detections = p;
		cfg->detections[cfg->ndetections++] = d;
	}
	return 0;
}

/* Checks that need the whole file: a detection's severity and type must be
 * configured, whichever order the sections came in. */
static int check_detections(struct ctx *c, struct kx_config *cfg, yaml_node_t *root)
{
	for (size_t i = 0; i < cfg->ndetections; i++) {
		struct kx_detection *d = &cfg->detections[i];
		if (!kx_config_severity(cfg, d->severity))
			return at(c, root, "detection '%s': unknown severity '%.32s'", d->name,
				  d->severity);
		if (d->type && !kx_config_type(cfg, d->type))
			return at(c, root, "detection '%s': unknown type '%.32s'", d->name, d->type);
	}
	return 0;
}

/* ---- services, checks, routing ---- */

/* A mapping of Klaxon labels ({team: payments}). */
static int get_labels(struct ctx *c, yaml_node_t *n, const char *key, struct kx_labels *ls)
{
	if (n->type != YAML_MAPPING_NODE)
		return at(c, n, "'%s': expected a mapping of label: value", key);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		struct kx_err e = {0};
		const char *ks, *vs;
		int rc;
		if (!k || !v)
			return at(c, n, "'%s': bad entry", key);
		if ((rc = scalar(c, k, key, &ks)) || (rc = scalar(c, v, key, &vs)))
			return rc;
		if (kx_labels_set(ls, ks, vs, &e))
			return at(c, v, "'%s': %s", key, e.msg);
	}
	return 0;
}

static int service_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_service_config *s = arg;
	int rc;
	if (!strcmp(key, "name")) {
		rc = get_string(c, v, key, &s->name);
		return rc ? rc : lower_name_check(c, v, "service", s->name);
	}
	if (!strcmp(key, "description"))
		return get_string(c, v, key, &s->description);
	if (!strcmp(key, "labels"))
		return get_labels(c, v, key, &s->labels);
	return unknown_key(c, v, key, "a service");
}

static bool config_has_service(const struct kx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, name))
			return true;
	return false;
}

static int parse_services(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'services': expected a list of services");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_service_config s = {0}, *p = NULL;
		int rc;
		kx_labels_init(&s.labels);
		rc = each_pair(c, item, "a service", service_pair, &s);
		if (!rc && !s.name)
			rc = at(c, item, "service has no 'name'");
		if (!rc && config_has_service(cfg, s.name))
			rc = at(c, item, "service '%s' is defined twice", s.name);
		if (!rc && cfg->nservices >= 10000)
			rc = at(c, item, "too many services (at most 10000)");
		if (!rc && !(p = realloc(cfg->services, (cfg->nservices + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			service_config_release(&s);
			return rc;
		}
		cfg->services = p;
		cfg->services[cfg->nservices++] = s;
	}
	return 0;
}

static int get_level(struct ctx *c, yaml_node_t *v, const char *key, int *out)
{
	enum kx_alert_level l;
	struct kx_err e = {0};
	const char *t;
	int rc;
	if ((rc = scalar(c, v, key, &t)))
		return rc;
	if (kx_alert_level_parse(t, &l, &e))
		return at(c, v, "'%s': %s", key, e.msg);
	*out = (int)l;
	return 0;
}

static int check_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_check *k = arg;
	long long n;
	int rc;
	if (!strcmp(key, "name")) {
		rc = get_string(c, v, key, &k->name);
		return rc ? rc : lower_name_check(c, v, "check", k->name);
	}
	if (!strcmp(key, "service")) {
		rc = get_string(c, v, key, &k->service);
		return rc ? rc : lower_name_check(c, v, "service", k->service);
	}
	if (!strcmp(key, "url")) {
		if ((rc = get_string(c, v, key, &k->url)))
			return rc;
		if (strncmp(k->url, "http://", 7) && strncmp(k->url, "https://", 8))
			return at(c, v, "'url': must start with http:// or https://");
		return 0;
	}
	if (!strcmp(key, "interval") || !strcmp(key, "timeout")) {
		kx_ms *d = key[0] == 'i' ? &k->interval : &k->timeout;
		if ((rc = get_duration(c, v, key, d)))
			return rc;
		if (*d < 100 || *d > 86400000LL)
			return at(c, v, "'%s': must be at least 100ms and at most 1d", key);
		return 0;
	}
	if (!strcmp(key, "expect_status")) {
		if ((rc = get_uint(c, v, key, 100, 599, &n)))
			return rc;
		k->expect_status = (int)n;
		return 0;
	}
	if (!strcmp(key, "expect_body"))
		return get_string(c, v, key, &k->expect_body);
	if (!strcmp(key, "fail_after") || !strcmp(key, "resolve_after")) {
		if ((rc = get_uint(c, v, key, 1, 1000, &n)))
			return rc;
		*(key[0] == 'f' ? &k->fail_after : &k->resolve_after) = (uint32_t)n;
		return 0;
	}
	if (!strcmp(key, "severity"))
		return get_level(c, v, key, &k->level);
	if (!strcmp(key, "summary"))
		return get_string(c, v, key, &k->summary);
	return unknown_key(c, v, key, "a check");
}

static int parse_checks(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'checks': expected a list of health checks");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_check k = {0}, *p = NULL;
		int rc;
		k.interval = 30000;
		k.timeout = 5000;
		k.fail_after = 3;
		k.resolve_after = 1;
		k.level = KX_LEVEL_CRITICAL;
		rc = each_pair(c, item, "a check", check_pair, &k);
		if (!rc && (!k.name || !k.service || !k.url))
			rc = at(c, item, "a check needs 'name', 'service' and 'url'");
		if (!rc && k.timeout > k.interval)
			rc = at(c, item, "check '%s': 'timeout' is longer than 'interval'", k.name);
		for (size_t i = 0; !rc && i < cfg->nchecks; i++)
			if (!strcmp(cfg->checks[i].name, k.name))
				rc = at(c, item, "check '%s' is defined twice", k.name);
		if (!rc && cfg->nchecks >= 1000)
			rc = at(c, item, "too many checks (at most 1000)");
		if (!rc && !(p = realloc(cfg->checks, (cfg->nchecks + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			check_release(&k);
			return rc;
		}
		cfg->checks = p;
		cfg->checks[cfg->nchecks++] = k;
	}
	return 0;
}

/* `match`: one matcher text, or a list of them (all must hold). */
static int get_matchers(struct ctx *c, yaml_node_t *n, const char *key, char **dst)
{
	char **v = NULL, *canon = NULL;
	size_t nv = 0;
	struct kx_buf b;
	struct kx_err e = {0};
	int rc;

	if ((rc = get_strv(c, n, key, &v, &nv)))
		return rc;
	kx_buf_init(&b, 0);
	for (size_t i = 0; i < nv; i++) {
		const char *s = v[i];
		size_t len = strlen(s);
		/* a list entry may be wrapped in {} too: strip it before joining */
		if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
			s++;
			len -= 2;
		}
		if ((b.len && kx_buf_adds(&b, ",")) || kx_buf_add(&b, s, len)) {
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (kx_matchers_canonical(b.len ? kx_buf_str(&b) : "", &canon, &e)) {
		rc = at(c, n, "'%s': %s", key, e.msg);
		goto out;
	}
	free(*dst);
	*dst = canon;
out:
	strv_free(v, nv);
	kx_buf_release(&b);
	return rc;
}

static int level_map_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_routing_rule *r = arg;
	enum kx_alert_level l;
	struct kx_err e = {0};
	if (kx_alert_level_parse(key, &l, &e))
		return at(c, v, "'severity': %s", e.msg);
	return get_string(c, v, "severity", &r->level_severity[l]);
}

static int route_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_routing_rule *r = arg;
	struct kx_err e = {0};
	int rc;
	/* `name`, `match` and `service` belong to rules, not to the defaults */
	bool is_default = r->name && !strcmp(r->name, "default") && !r->match;
	if (!is_default && !strcmp(key, "name")) {
		rc = get_string(c, v, key, &r->name);
		return rc ? rc : lower_name_check(c, v, "route", r->name);
	}
	if (!is_default && !strcmp(key, "match"))
		return get_matchers(c, v, key, &r->match);
	if (!is_default && !strcmp(key, "service")) {
		rc = get_string(c, v, key, &r->service);
		return rc ? rc : lower_name_check(c, v, "service", r->service);
	}
	if (!strcmp(key, "severity")) {
		if (v->type == YAML_MAPPING_NODE)
			return each_pair(c, v, "'severity'", level_map_pair, r);
		return get_string(c, v, key, &r->severity);
	}
	if (!strcmp(key, "types"))
		return get_strv(c, v, key, &r->types, &r->ntypes);
	if (!strcmp(key, "labels"))
		return get_labels(c, v, key, &r->labels);
	if (!strcmp(key, "action")) {
		const char *t;
		if ((rc = scalar(c, v, key, &t)))
			return rc;
		if (!strcmp(t, "open"))
			r->action = KX_ROUTE_OPEN;
		else if (!strcmp(t, "attach"))
			r->action = KX_ROUTE_ATTACH;
		else if (!strcmp(t, "none"))
			r->action = KX_ROUTE_NONE;
		else
			return at(c, v, "'action': expected open, attach or none, got '%.64s'", t);
		return 0;
	}
	if (!strcmp(key, "open_at"))
		return get_string(c, v, key, &r->open_at);
	if (!strcmp(key, "group_by")) {
		if ((rc = get_strv(c, v, key, &r->group_by, &r->ngroup_by)))
			return rc;
		for (size_t i = 0; i < r->ngroup_by; i++)
			if (kx_alert_label_set(&(struct kx_labels){0}, r->group_by[i], "", &e))
				return at(c, v, "'group_by': %s", e.msg);
		return 0;
	}
	if (!strcmp(key, "resolve_to_monitoring"))
		return get_bool(c, v, key, &r->resolve_to_monitoring);
	return unknown_key(c, v, key, is_default ? "'routing_default'" : "a route");
}

static int parse_routes(struct ctx *c, struct kx_config *cfg, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return at(c, seq, "'routes': expected a list of routing rules");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		struct kx_routing_rule r, *p = NULL;
		int rc = route_defaults(&r, "") ? kx_err_set(c->err, KX_ENOMEM, "out of memory") : 0;
		free(r.name);
		free(r.match);
		r.name = r.match = NULL;
		if (!rc)
			rc = each_pair(c, item, "a route", route_pair, &r);
		if (!rc && !r.name)
			rc = at(c, item, "route has no 'name'");
		if (!rc && !strcmp(r.name, "default"))
			rc = at(c, item, "'default' names the defaults: give the route another name");
		for (size_t i = 0; !rc && i < cfg->nroutes; i++)
			if (!strcmp(cfg->routes[i].name, r.name))
				rc = at(c, item, "route '%s' is defined twice", r.name);
		if (!rc && !r.match && !(r.match = strdup("")))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (!rc && cfg->nroutes >= 1000)
			rc = at(c, item, "too many routes (at most 1000)");
		if (!rc && !(p = realloc(cfg->routes, (cfg->nroutes + 1) * sizeof(*p))))
			rc = kx_err_set(c->err, KX_ENOMEM, "out of memory");
		if (rc) {
			route_release(&r);
			return rc;
		}
		cfg->routes = p;
		cfg->routes[cfg->nroutes++] = r;
	}
	return 0;
}

static int parse_routing_default(struct ctx *c, struct kx_config *cfg, yaml_node_t *map)
{
	struct kx_routing_rule *r = &cfg->route_default;
	c->routing_default = true;
	/* marks it as the defaults for route_pair: name "default", no match */
	free(r->match);
	r->match = NULL;
	int rc = each_pair(c, map, "'routing_default'", route_pair, r);
	if (!r->match && !(r->match = strdup("")))
		return kx_err_set(c->err, KX_ENOMEM, "out of memory");
	return rc;
}

static int check_severity_ref(struct ctx *c, yaml_node_t *root, const char *what,
			      const char *name, const char *sev)
{
	if (sev && !kx_config_severity(c->cfg, sev))
		return at(c, root, "%s '%s': unknown severity '%.32s'", what, name, sev);
	return 0;
}

static int check_route(struct ctx *c, yaml_node_t *root, const struct kx_routing_rule *r)
{
	int rc;
	if ((rc = check_severity_ref(c, root, "route", r->name, r->severity)) ||
	    (rc = check_severity_ref(c, root, "route", r->name, r->open_at)))
		return rc;
	for (int i = 0; i < 4; i++)
		if ((rc = check_severity_ref(c, root, "route", r->name, r->level_severity[i])))
			return rc;
	for (size_t i = 0; i < r->ntypes; i++)
		if (!kx_config_type(c->cfg, r->types[i]))
			return at(c, root, "route '%s': unknown type '%.32s'", r->name, r->types[i]);
	return 0;
}

/* Checks that need the whole file: severities, types and services named
 * by channels, routes and checks must exist, whichever order the sections
 * came in. */
static int check_detection_refs(struct ctx *c, struct kx_config *cfg, yaml_node_t *root)
{
	int rc;
	for (size_t i = 0; i < cfg->nchannels; i++)
		for (size_t j = 0; j < cfg->channels[i].nseverities; j++)
			if ((rc = check_severity_ref(c, root, "channel", cfg->channels[i].name,
						     cfg->channels[i].severities[j])))
				return rc;
	for (size_t i = 0; i < cfg->nroutes; i++)
		if ((rc = check_route(c, root, &cfg->routes[i])))
			return rc;
	/* the built-in defaults name P1…P4; with a custom severity scheme they
	 * map by rank instead (core/route.h), so only a routing_default from
	 * the file is held to the configured names */
	if (c->routing_default && (rc = check_route(c, root, &cfg->route_default)))
		return rc;
	for (size_t i = 0; i < cfg->nchecks; i++)
		if (!config_has_service(cfg, cfg->checks[i].service))
			return at(c, root, "check '%s': unknown service '%.64s' (define it under 'services')",
				  cfg->checks[i].name, cfg->checks[i].service);
	return 0;
}

static int top_pair(struct ctx *c, const char *key, yaml_node_t *v, void *arg)
{
	struct kx_config *cfg = arg;
	long long n;
	int rc;

	if (!strcmp(key, "listen"))
		return get_string(c, v, key, &cfg->listen);
	if (!strcmp(key, "data_dir"))
		return get_string(c, v, key, &cfg->data_dir);
	if (!strcmp(key, "db"))
		return get_string(c, v, key, &cfg->db);
	if (!strcmp(key, "public_url"))
		return get_string(c, v, key, &cfg->public_url);
	if (!strcmp(key, "max_body_bytes")) {
		if ((rc = get_uint(c, v, key, 1024, 1LL << 30, &n)))
			return rc;
		cfg->max_body_bytes = (size_t)n;
		return 0;
	}
	if (!strcmp(key, "threads")) {
		if ((rc = get_uint(c, v, key, 0, 256, &n)))
			return rc;
		cfg->threads = (int)n;
		return 0;
	}
	if (!strcmp(key, "severities"))
		return parse_severities(c, cfg, v);
	if (!strcmp(key, "types"))
		return parse_types(c, cfg, v);
	if (!strcmp(key, "channels"))
		return parse_channels(c, cfg, v);
	if (!strcmp(key, "gate"))
		return each_pair(c, v, "'gate'", gate_pair, &cfg->gate);
	if (!strcmp(key, "detections"))
		return parse_detections(c, cfg, v);
	if (!strcmp(key, "services"))
		return parse_services(c, cfg, v);
	if (!strcmp(key, "checks"))
		return parse_checks(c, cfg, v);
	if (!strcmp(key, "routes"))
		return parse_routes(c, cfg, v);
	if (!strcmp(key, "routing_default"))
		return parse_routing_default(c, cfg, v);
	return unknown_key(c, v, key, "the configuration");
}

int kx_config_parse(struct kx_config *cfg, const char *text, size_t len, const char *file,
		    struct kx_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct ctx c = {&doc, file, err, cfg, false};
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return kx_err_set(err, KX_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = kx_err_set(err, KX_EINVAL, "%s:%zu:%zu: %s", file,
				parser.problem_mark.line + 1, parser.problem_mark.column + 1,
				parser.problem ? parser.problem : "cannot parse YAML");
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	/* An empty file, or a document holding nothing ("---", "~"), is an
	 * empty configuration. */
	if (root && !(root->type == YAML_SCALAR_NODE &&
		      (root->data.scalar.length == 0 ||
		       !strcmp((const char *)root->data.scalar.value, "~") ||
		       !strcmp((const char *)root->data.scalar.value, "null"))))
		rc = each_pair(&c, root, "the configuration", top_pair, cfg);
	if (!rc && root)
		rc = check_detections(&c, cfg, root);
	if (!rc && root)
		rc = check_detection_refs(&c, cfg, root);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}
