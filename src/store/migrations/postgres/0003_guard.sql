-- 0003: what the gate persists (see core/guard.h) — kill switches, caps and
-- approval requests — and the automation flag of tokens.
-- The same schema as migrations/sqlite/0003_guard.sql in PostgreSQL types.
-- Times are bigint milliseconds since the Unix epoch (UTC); NULL = unset.

-- A switch is never deleted: clearing it sets cleared_*, the row stays.
CREATE TABLE switches (
    id           text PRIMARY KEY,
    selector     text NOT NULL,             -- canonical; '' = everything
    mode         text NOT NULL CHECK (mode IN ('block','approve','read_only')),
    reason       text NOT NULL,
    set_by       text NOT NULL,
    set_at       bigint NOT NULL,
    expires_at   bigint,                    -- NULL: until cleared
    incident_id  text,
    ramp_start   bigint,                    -- NULL: no ramp (nor the other ramp_*)
    ramp_end     bigint,
    ramp_window  bigint,
    ramp_floor   bigint,
    ramp_peak    bigint,
    cleared_at   bigint,                    -- NULL: not cleared
    cleared_by   text,
    clear_reason text
);
CREATE INDEX switches_set ON switches (set_at, id);
CREATE INDEX switches_uncleared ON switches (set_at, id) WHERE cleared_at IS NULL;

CREATE TABLE caps (
    id     text PRIMARY KEY,
    spec   text NOT NULL,                   -- canonical (kx_gate_cap_parse)
    set_by text NOT NULL,
    set_at bigint NOT NULL
);

CREATE TABLE approvals (
    id              text PRIMARY KEY,
    switch_id       text NOT NULL,
    labels          jsonb NOT NULL,         -- object of strings
    idempotency_key text,
    read_only       boolean NOT NULL,
    requested_by    text NOT NULL,
    requested_at    bigint NOT NULL,
    expires_at      bigint,                 -- NULL: never
    status          text NOT NULL CHECK (status IN ('pending','approved','denied','expired')),
    decided_by      text,
    decided_at      bigint,                 -- NULL while pending
    note            text
);
CREATE INDEX approvals_pending_key ON approvals (switch_id, idempotency_key)
    WHERE status = 'pending';
CREATE INDEX approvals_requested ON approvals (requested_at, id);

ALTER TABLE tokens ADD COLUMN automation boolean NOT NULL DEFAULT false;
