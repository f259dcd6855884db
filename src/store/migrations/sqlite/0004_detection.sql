-- 0004: detection (see core/alert.h, core/notify.h) — services, integration
-- keys, alerts, change events, heartbeats, silences and the delivery log of
-- notifications out.
-- Times are INTEGER milliseconds since the Unix epoch (UTC); NULL = unset.
-- Enumerations are stored as their C values (enum kx_alert_status …).

CREATE TABLE services (
    name        TEXT PRIMARY KEY,
    description TEXT,
    labels      TEXT NOT NULL,              -- JSON object of strings, keys in order
    from_config INTEGER NOT NULL CHECK (from_config IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- An integration key, stored as its hash.
CREATE TABLE integrations (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    service    TEXT NOT NULL,
    source     INTEGER NOT NULL CHECK (source BETWEEN 0 AND 5),
    name       TEXT,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER                      -- NULL while valid
) STRICT, WITHOUT ROWID;
CREATE INDEX integrations_service ON integrations (service, created_at, id);
CREATE INDEX integrations_created ON integrations (created_at, id);

-- AUTOINCREMENT: an alert id, once shown, never names another alert.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT NOT NULL,
    dedup_key   TEXT NOT NULL,
    source      INTEGER NOT NULL CHECK (source BETWEEN 0 AND 5),
    status      INTEGER NOT NULL CHECK (status IN (0, 1)),  -- 0 firing, 1 resolved
    level       INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
    summary     TEXT NOT NULL,
    source_host TEXT,
    component   TEXT,
    grp         TEXT,
    class       TEXT,
    labels      TEXT NOT NULL,              -- JSON object of strings (Prometheus labels)
    details     TEXT NOT NULL,              -- JSON object text
    severity    TEXT,
    route       TEXT,
    incident    TEXT,
    silenced_by TEXT,
    noise       INTEGER NOT NULL CHECK (noise IN (0, 1)),
    count       INTEGER NOT NULL,
    starts_at   INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    ends_at     INTEGER,                    -- NULL: no expected end
    acked_at    INTEGER,
    acked_by    TEXT,
    resolved_at INTEGER,
    resolved_by TEXT
) STRICT;
-- At most one firing alert per dedup key of a service: a second insert is
-- a constraint error (KX_ECONFLICT), resolved ones are not counted.
CREATE UNIQUE INDEX alerts_firing_key ON alerts (service, dedup_key) WHERE status = 0;
CREATE INDEX alerts_service ON alerts (service, id);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_incident ON alerts (incident, id) WHERE incident IS NOT NULL;
CREATE INDEX alerts_incident_firing ON alerts (incident) WHERE status = 0;
CREATE INDEX alerts_expiry ON alerts (ends_at, id) WHERE status = 0 AND ends_at IS NOT NULL;

CREATE TABLE change_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    source_host TEXT,
    details     TEXT,                       -- JSON object text
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX change_events_at ON change_events (at, id);
CREATE INDEX change_events_service ON change_events (service, at, id);

CREATE TABLE heartbeats (
    name        TEXT PRIMARY KEY,
    service     TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,       -- of its ping key
    interval_ms INTEGER NOT NULL,
    grace_ms    INTEGER NOT NULL,
    level       INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
    state       INTEGER NOT NULL CHECK (state BETWEEN 0 AND 2),  -- 2: down
    last_ping   INTEGER,                    -- NULL: never
    due_at      INTEGER,
    created_by  TEXT,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX heartbeats_due ON heartbeats (due_at, name) WHERE state <> 2;

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    kind       INTEGER NOT NULL CHECK (kind IN (0, 1)),
    matchers   TEXT NOT NULL,               -- canonical text
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    comment    TEXT,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    expired_at INTEGER                      -- NULL: not ended early
) STRICT, WITHOUT ROWID;
CREATE INDEX silences_created ON silences (created_at, id);

-- The delivery log. A rowid table: the rowid orders notifications created
-- in the same millisecond (newest first is created_at, rowid descending).
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT,
    status          INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),
    attempts        INTEGER NOT NULL,
    last_code       INTEGER NOT NULL,       -- 0: none
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,
    delivered_at    INTEGER
) STRICT;
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX notifications_channel ON notifications (channel, created_at);
CREATE INDEX notifications_subject ON notifications (subject, created_at)
    WHERE subject IS NOT NULL;

CREATE TABLE notification_attempts (
    notification TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    took         INTEGER NOT NULL,
    code         INTEGER NOT NULL,          -- 0: no answer
    error        TEXT,                      -- NULL on success
    PRIMARY KEY (notification, number)
) STRICT, WITHOUT ROWID;
