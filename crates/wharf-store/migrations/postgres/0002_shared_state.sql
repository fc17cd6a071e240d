-- State every replica must share: portal sign-in sessions, failed-login counters,
-- token revocations, and upload writer leases (same meaning as SQLite's 0004).

-- Only SHA-256 of the cookie is kept. The principal's name and creation time ride along
-- so a session can never pass to a later principal given a reused id.
CREATE TABLE portal_sessions (
    key_hash             BYTEA PRIMARY KEY,
    principal_id         BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    principal_name       TEXT NOT NULL,
    principal_created_at BIGINT NOT NULL,
    csrf                 TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    last_seen            BIGINT NOT NULL
);
CREATE INDEX portal_sessions_principal ON portal_sessions(principal_id, created_at);
CREATE INDEX portal_sessions_seen ON portal_sessions(last_seen);

-- Failed logins per throttle key (`p:<principal>` or `a:<address>`).
CREATE TABLE login_failures (
    key          TEXT COLLATE "C" PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX login_failures_updated ON login_failures(updated_at);

-- Tokens of `principal` issued at or before `revoked_at_ms` are refused. Replicas read
-- the rows after the last id they saw.
CREATE TABLE token_revocations (
    id            BIGSERIAL PRIMARY KEY,
    principal     TEXT NOT NULL,
    revoked_at_ms BIGINT NOT NULL
);

-- One writer per upload session across replicas: a lease, renewed while writing.
ALTER TABLE uploads ADD COLUMN writer TEXT COLLATE "C";
ALTER TABLE uploads ADD COLUMN writer_until BIGINT NOT NULL DEFAULT 0;
