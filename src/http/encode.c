#include "http/encode.h"

#include <string.h>

json_t *kx_enc_time(kx_ms t)
{
	char ts[KX_TIME_STRLEN];
	if (t == KX_TIME_UNSET)
		return json_null();
	return json_string(kx_time_format(t, ts));
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *count_or_null(int64_t v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

json_t *kx_enc_labels(const struct kx_labels *ls)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < ls->n; i++)
		json_object_set_new(o, ls->v[i].key, json_string(ls->v[i].value));
	return o;
}

json_t *kx_enc_incident(const struct kx_incident *inc)
{
	json_t *types = json_array(), *roles = json_array(), *o;
	for (size_t i = 0; types && i < inc->ntypes; i++)
		json_array_append_new(types, json_string(inc->types[i]));
	for (size_t i = 0; roles && i < inc->nroles; i++)
		json_array_append_new(roles, json_pack("{s:s,s:s}", "role", inc->roles[i].role,
						       "person", inc->roles[i].person));
	o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o,s:o},s:o,s:o,"
		      "s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:I}",
		      "id", inc->id, "title", inc->title, "summary", str_or_null(inc->summary),
		      "severity", inc->severity, "status", kx_status_name(inc->status), "types",
		      types ? types : json_null(), "labels", kx_enc_labels(&inc->labels), "roles",
		      roles ? roles : json_null(), "impact", "users",
		      count_or_null(inc->impact.users), "accounts",
		      count_or_null(inc->impact.accounts), "actions",
		      count_or_null(inc->impact.actions), "revenue", str_or_null(inc->impact.revenue),
		      "description", str_or_null(inc->impact.description), "root_cause",
		      str_or_null(inc->root_cause), "resolution", str_or_null(inc->resolution),
		      "started_at", kx_enc_time(inc->started_at), "detected_at",
		      kx_enc_time(inc->detected_at), "declared_at", kx_enc_time(inc->declared_at),
		      "acknowledged_at", kx_enc_time(inc->acknowledged_at), "mitigated_at",
		      kx_enc_time(inc->mitigated_at), "resolved_at", kx_enc_time(inc->resolved_at),
		      "created_by", inc->created_by, "updated_at", kx_enc_time(inc->updated_at),
		      "version", (json_int_t)inc->version);
	return o;
}

json_t *kx_enc_timeline_entry(const struct kx_timeline_entry *e)
{
	return json_pack("{s:I,s:o,s:s,s:s,s:s}", "id", (json_int_t)e->id, "at",
			 kx_enc_time(e->at), "author", e->author, "kind", e->kind, "text", e->text);
}

json_t *kx_enc_action_item(const struct kx_action_item *a)
{
	return json_pack("{s:I,s:s,s:s,s:o,s:o,s:s,s:o,s:o}", "number", (json_int_t)a->number,
			 "title", a->title, "kind", kx_item_kind_name(a->kind), "owner",
			 str_or_null(a->owner), "due", a->due[0] ? json_string(a->due) : json_null(),
			 "status", a->done ? "done" : "open", "created_at", kx_enc_time(a->created_at),
			 "done_at", kx_enc_time(a->done_at));
}

json_t *kx_enc_token(const struct kx_token *t)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o}", "id", t->id, "name", t->name, "role",
			 kx_token_role_name(t), "labels", kx_enc_labels(&t->scope), "created_by",
			 str_or_null(t->created_by), "created_at", kx_enc_time(t->created_at),
			 "revoked_at", kx_enc_time(t->revoked_at));
}

json_t *kx_enc_severity(const struct kx_severity *s)
{
	char rt[32], ue[32];
	return json_pack("{s:s,s:i,s:s,s:o,s:s,s:s,s:b,s:s,s:o}", "name", s->name, "rank", s->rank,
			 "description", s->description, "examples", str_or_null(s->examples),
			 "response_time", kx_duration_format(s->response_time, rt), "update_every",
			 kx_duration_format(s->update_every, ue), "pages", s->pages, "postmortem",
			 kx_postmortem_name(s->postmortem), "escalate_to",
			 str_or_null(s->escalate_to));
}

static int dump_cb(const char *p, size_t n, void *arg)
{
	return kx_buf_add(arg, p, n) ? -1 : 0;
}

int kx_enc_dump(const json_t *j, struct kx_buf *out, bool pretty)
{
	size_t flags = JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
	if (!j || json_dump_callback(j, dump_cb, out, flags))
		return KX_ENOMEM;
	return 0;
}

/* ---- audit ---- */

json_t *kx_enc_audit_event(const struct kx_audit_event *e)
{
	char prev[2 * KX_HASH_LEN + 1], hash[2 * KX_HASH_LEN + 1];
	json_t *o = json_object();

	if (!o)
		return NULL;
	kx_hex(e->prev_hash, KX_HASH_LEN, prev);
	kx_hex(e->hash, KX_HASH_LEN, hash);
	if (json_object_set_new(o, "seq", json_integer((json_int_t)e->seq)) ||
	    json_object_set_new(o, "at", kx_enc_time(e->at)))
		goto fail;
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++)
		if (json_object_set_new(o, kx_audit_field_names[i],
					str_or_null(kx_audit_field_value(e, i))))
			goto fail;
	if (json_object_set_new(o, "labels", kx_enc_labels(&e->labels)) ||
	    json_object_set_new(o, "prev_hash", json_string(prev)) ||
	    json_object_set_new(o, "hash", json_string(hash)))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

json_t *kx_enc_audit_group(const struct kx_audit_group *g, bool duplicates)
{
	if (duplicates)
		return json_pack("{s:o,s:s,s:o,s:I,s:I,s:o,s:o}", "action", str_or_null(g->action),
				 "target", g->target, "content_hash", str_or_null(g->content_hash),
				 "count", (json_int_t)g->count, "accounts", (json_int_t)g->accounts,
				 "first_at", kx_enc_time(g->first_at), "last_at",
				 kx_enc_time(g->last_at));
	return json_pack("{s:s,s:I,s:I,s:o,s:o}", "target", g->target, "count",
			 (json_int_t)g->count, "accounts", (json_int_t)g->accounts, "first_at",
			 kx_enc_time(g->first_at), "last_at", kx_enc_time(g->last_at));
}

int kx_enc_csv_field(struct kx_buf *out, const char *s)
{
	if (!s)
		return 0;
	if (!strpbrk(s, ",\"\r\n"))
		return kx_buf_adds(out, s);
	if (kx_buf_addc(out, '"'))
		return KX_ENOMEM;
	for (; *s; s++)
		if ((*s == '"' && kx_buf_addc(out, '"')) || kx_buf_addc(out, *s))
			return KX_ENOMEM;
	return kx_buf_addc(out, '"');
}

int kx_enc_audit_csv_header(struct kx_buf *out)
{
	if (kx_buf_adds(out, "seq,at"))
		return KX_ENOMEM;
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++)
		if (kx_buf_addf(out, ",%s", kx_audit_field_names[i]))
			return KX_ENOMEM;
	return kx_buf_adds(out, ",labels,prev_hash,hash\r\n");
}

int kx_enc_audit_csv_row(struct kx_buf *out, const struct kx_audit_event *e)
{
	char ts[KX_TIME_STRLEN], hex[2 * KX_HASH_LEN + 1];
	struct kx_buf labels;
	int rc;

	if (kx_buf_addf(out, "%lld,%s", (long long)e->seq, kx_time_format(e->at, ts)))
		return KX_ENOMEM;
	for (size_t i = 0; i < KX_AUDIT_NFIELDS; i++)
		if (kx_buf_addc(out, ',') || kx_enc_csv_field(out, kx_audit_field_value(e, i)))
			return KX_ENOMEM;
	kx_buf_init(&labels, 0);
	rc = kx_buf_addc(out, ',') ||
	     (e->labels.n && (kx_audit_labels_json(&e->labels, &labels) ||
			      kx_enc_csv_field(out, kx_buf_str(&labels))));
	kx_buf_release(&labels);
	if (rc)
		return KX_ENOMEM;
	kx_hex(e->prev_hash, KX_HASH_LEN, hex);
	if (kx_buf_addf(out, ",%s", hex))
		return KX_ENOMEM;
	kx_hex(e->hash, KX_HASH_LEN, hex);
	return kx_buf_addf(out, ",%s\r\n", hex);
}
