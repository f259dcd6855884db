-- 0002: the audit log — append-only and hash-chained (see core/audit.h).
-- seq is the position in the chain; hash = BLAKE2b-256(prev_hash ||
-- canonical encoding of the row), prev_hash of seq 1 is 32 zero bytes.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    client          TEXT,
    account         TEXT,
    platform        TEXT,
    lane            TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    content_hash    TEXT,
    outcome         TEXT,
    trace_id        TEXT,
    artifact_url    TEXT,
    idempotency_key TEXT,
    labels          TEXT,                  -- JSON object, keys in order; NULL: none
    prev_hash       BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash            BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_events_account ON audit_events (account, at);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_action ON audit_events (action, at);

-- Append-only: Klaxon never changes or removes an event. These stop it from
-- happening by accident; someone with write access to the file can drop
-- them, which is what the hash chain is for (klaxon audit verify).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
