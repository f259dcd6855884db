-- 0003: what the gate persists (see core/guard.h) — kill switches, caps and
-- approval requests — and the automation flag of tokens.
-- Times are INTEGER milliseconds since the Unix epoch (UTC); NULL = unset.

-- A switch is never deleted: clearing it sets cleared_*, the row stays.
CREATE TABLE switches (
    id           TEXT PRIMARY KEY,
    selector     TEXT NOT NULL,             -- canonical; '' = everything
    mode         TEXT NOT NULL CHECK (mode IN ('block','approve','read_only')),
    reason       TEXT NOT NULL,
    set_by       TEXT NOT NULL,
    set_at       INTEGER NOT NULL,
    expires_at   INTEGER,                   -- NULL: until cleared
    incident_id  TEXT,
    ramp_start   INTEGER,                   -- NULL: no ramp (nor the other ramp_*)
    ramp_end     INTEGER,
    ramp_window  INTEGER,
    ramp_floor   INTEGER,
    ramp_peak    INTEGER,
    cleared_at   INTEGER,                   -- NULL: not cleared
    cleared_by   TEXT,
    clear_reason TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX switches_set ON switches (set_at, id);
CREATE INDEX switches_uncleared ON switches (set_at, id) WHERE cleared_at IS NULL;

CREATE TABLE caps (
    id     TEXT PRIMARY KEY,
    spec   TEXT NOT NULL,                   -- canonical (kx_gate_cap_parse)
    set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    switch_id       TEXT NOT NULL,
    labels          TEXT NOT NULL,          -- JSON object of strings, keys in order
    idempotency_key TEXT,
    read_only       INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    requested_by    TEXT NOT NULL,
    requested_at    INTEGER NOT NULL,
    expires_at      INTEGER,                -- NULL: never
    status          TEXT NOT NULL CHECK (status IN ('pending','approved','denied','expired')),
    decided_by      TEXT,
    decided_at      INTEGER,                -- NULL while pending
    note            TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX approvals_pending_key ON approvals (switch_id, idempotency_key)
    WHERE status = 'pending';
CREATE INDEX approvals_requested ON approvals (requested_at, id);

ALTER TABLE tokens ADD COLUMN automation INTEGER NOT NULL DEFAULT 0 CHECK (automation IN (0, 1));
