-- 0002: the audit log — append-only and hash-chained (see core/audit.h).
-- The same schema as migrations/sqlite/0002_audit.sql in PostgreSQL types.
-- seq is the position in the chain, assigned under an advisory lock by the
-- appending transaction (never a sequence: a rolled-back append must leave
-- no gap).

CREATE TABLE audit_events (
    seq             bigint PRIMARY KEY,
    at              bigint NOT NULL,
    actor           text NOT NULL,
    client          text,
    account         text,
    platform        text,
    lane            text,
    action          text NOT NULL,
    target          text,
    content_hash    text,
    outcome         text,
    trace_id        text,
    artifact_url    text,
    idempotency_key text,
    labels          jsonb,                 -- object of strings; NULL: none
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_events_account ON audit_events (account, at);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_action ON audit_events (action, at);

-- Append-only: Klaxon never changes or removes an event. The triggers stop
-- it from happening by accident; a superuser can drop them, which is what
-- the hash chain is for (klaxon audit verify).
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
