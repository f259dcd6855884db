-- 0001: incidents, their timeline, roles, labels, types, action items; API tokens.
-- Times are INTEGER milliseconds since the Unix epoch (UTC); NULL = unknown.

CREATE TABLE incidents (
    id                 TEXT PRIMARY KEY,
    day                TEXT NOT NULL,           -- YYYYMMDD (UTC) of declaration
    seq                INTEGER NOT NULL,        -- per-day sequence
    title              TEXT NOT NULL,
    summary            TEXT,
    severity           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('investigating','identified','monitoring','resolved')),
    root_cause         TEXT,
    resolution         TEXT,
    impact_users       INTEGER,
    impact_accounts    INTEGER,
    impact_actions     INTEGER,
    impact_revenue     TEXT,
    impact_description TEXT,
    started_at         INTEGER,
    detected_at        INTEGER,
    declared_at        INTEGER NOT NULL,
    acknowledged_at    INTEGER,
    mitigated_at       INTEGER,
    resolved_at        INTEGER,
    created_by         TEXT NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- (day, seq) is unique by construction: the id is made of both.
CREATE INDEX incidents_declared ON incidents (declared_at);

CREATE TABLE incident_counters (
    day  TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE incident_labels (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (incident_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX incident_labels_kv ON incident_labels (key, value);

CREATE TABLE incident_types (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    type        TEXT NOT NULL,
    PRIMARY KEY (incident_id, type)
) STRICT, WITHOUT ROWID;

CREATE TABLE incident_roles (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    role        TEXT NOT NULL,
    person      TEXT NOT NULL,
    PRIMARY KEY (incident_id, role, person)
) STRICT, WITHOUT ROWID;

CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    author      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
) STRICT;
CREATE INDEX timeline_incident ON timeline (incident_id, at, id);

CREATE TABLE action_items (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    title       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('mitigate','prevent','detect')),
    owner       TEXT,
    due         TEXT,
    status      TEXT NOT NULL CHECK (status IN ('open','done')),
    created_at  INTEGER NOT NULL,
    done_at     INTEGER,
    PRIMARY KEY (incident_id, number)
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('viewer','responder','admin')),
    created_by TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE token_labels (
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (token_id, key)
) STRICT, WITHOUT ROWID;

-- Background work shared by every daemon (see store.h: jobs).
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    run_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    leased_by   TEXT,
    lease_until INTEGER
) STRICT;
CREATE INDEX jobs_due ON jobs (run_at);
