-- Content trust (Notary v1): every version of every role, byte for byte as uploaded or
-- generated, keyed by repository (the GUN's repository part; the GUN a client used is
-- kept for the changefeed). The content-trust policy itself lives in `settings`.
CREATE TABLE trust_files (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    gun         TEXT NOT NULL,
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    content     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    -- One (role, version) per repository: a concurrent publish loses here, nothing forks.
    UNIQUE (repository, role, version)
);
CREATE INDEX trust_files_sha ON trust_files(repository, role, sha256);

-- Server-held private keys (timestamp, snapshot), sealed with the key-encryption key.
-- Every key ever handed out is kept until the repository's trust data is wiped, because
-- a root uploaded later may reference it.
CREATE TABLE trust_keys (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
    key_id      TEXT NOT NULL,
    keytype     TEXT NOT NULL,
    sealed_key  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (repository, key_id)
);
CREATE INDEX trust_keys_role ON trust_keys(repository, role);

-- Notary changefeed: one `update` row per stored timestamp, one `deletion` row per wipe.
CREATE TABLE trust_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repository  TEXT NOT NULL,
    gun         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    category    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX trust_changes_repo ON trust_changes(repository, id);

-- Who did what, when (policy changes, resets, accepted trust updates).
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
