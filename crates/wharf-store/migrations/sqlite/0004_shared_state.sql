-- State every replica must share, held in the database even for one SQLite process so
-- there is one code path (and a restart no longer signs everyone out): portal sign-in
-- sessions, failed-login counters, token revocations, and upload writer leases.

-- Only SHA-256 of the cookie is kept. The principal's name and creation time ride along
-- so a session can never pass to a later principal given a reused id.
CREATE TABLE portal_sessions (
    key_hash             BLOB PRIMARY KEY,
    principal_id         INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    principal_name       TEXT NOT NULL,
    principal_created_at INTEGER NOT NULL,
    csrf                 TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    last_seen            INTEGER NOT NULL
);
CREATE INDEX portal_sessions_principal ON portal_sessions(principal_id, created_at);
CREATE INDEX portal_sessions_seen ON portal_sessions(last_seen);

-- Failed logins per throttle key (`p:<principal>` or `a:<address>`).
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX login_failures_updated ON login_failures(updated_at);

-- Tokens of `principal` issued at or before `revoked_at_ms` are refused. Replicas read
-- the rows after the last id they saw.
CREATE TABLE token_revocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    principal     TEXT NOT NULL,
    revoked_at_ms INTEGER NOT NULL
);

-- One writer per upload session across replicas: a lease, renewed while writing.
ALTER TABLE uploads ADD COLUMN writer TEXT;
ALTER TABLE uploads ADD COLUMN writer_until INTEGER NOT NULL DEFAULT 0;
