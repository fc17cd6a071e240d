-- The whole schema of SQLite's 0001_registry, 0002_trust and 0003_access, for PostgreSQL.
-- Times are unix seconds. Names, digests, roles and scopes sort by bytes (COLLATE "C"), so
-- catalog and tag pages come in the Distribution spec's lexical order whatever the
-- database's locale, and the indexes that serve keyset pagination use that same order.
-- The UNIQUE constraints and cascades are what make concurrent writers lose cleanly.
-- (0003's back-fill of the pre-roles admin's Owner role has nothing to fill here.)

CREATE TABLE repositories (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A blob is visible in a repository only through a link.
CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest),
    linked_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE TABLE manifests (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT COLLATE "C" NOT NULL,
    media_type    TEXT NOT NULL,
    content       BYTEA NOT NULL,
    subject       TEXT COLLATE "C",
    artifact_type TEXT,
    annotations   TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repository_id, subject) WHERE subject IS NOT NULL;

-- What each manifest points at (layers, config, child manifests), for integrity and GC.
CREATE TABLE manifest_references (
    repository_id   BIGINT NOT NULL,
    manifest_digest TEXT COLLATE "C" NOT NULL,
    child_digest    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, child_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);

CREATE TABLE tags (
    repository_id   BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name            TEXT COLLATE "C" NOT NULL,
    manifest_digest TEXT COLLATE "C" NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
-- PostgreSQL does not index foreign keys itself: without this, deleting a manifest would
-- scan the repository's tags for the cascade.
CREATE INDEX tags_manifest ON tags(repository_id, manifest_digest);

-- `offset` is a reserved word in PostgreSQL.
CREATE TABLE uploads (
    id            TEXT COLLATE "C" PRIMARY KEY,
    repository    TEXT NOT NULL,
    upload_offset BIGINT NOT NULL,
    hash_state    BYTEA NOT NULL,
    started_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Service principals log in with a generated client id (or their name); other kinds
-- leave it NULL. A disabled credential is a NULL password_hash (nobody can log in).
CREATE TABLE principals (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    client_id     TEXT COLLATE "C"
);
CREATE UNIQUE INDEX principals_client_id ON principals(client_id) WHERE client_id IS NOT NULL;

-- Only SHA-256 of a refresh token is kept; the token itself is shown to its owner once.
CREATE TABLE refresh_tokens (
    token_hash    BYTEA PRIMARY KEY,
    principal_id  BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX refresh_tokens_principal ON refresh_tokens(principal_id);

CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Content trust (Notary v1): every version of every role, byte for byte as uploaded or
-- generated, keyed by repository (the GUN's repository part; the GUN a client used is
-- kept for the changefeed). The content-trust policy itself lives in `settings`.
CREATE TABLE trust_files (
    id          BIGSERIAL PRIMARY KEY,
    repository  TEXT COLLATE "C" NOT NULL,
    gun         TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,
    content     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    -- One (role, version) per repository: a concurrent publish loses here, nothing forks.
    UNIQUE (repository, role, version)
);
CREATE INDEX trust_files_sha ON trust_files(repository, role, sha256);

-- Server-held private keys (timestamp, snapshot), sealed with the key-encryption key.
-- Every key ever handed out is kept until the repository's trust data is wiped, because
-- a root uploaded later may reference it.
CREATE TABLE trust_keys (
    id          BIGSERIAL PRIMARY KEY,
    repository  TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
    key_id      TEXT COLLATE "C" NOT NULL,
    keytype     TEXT NOT NULL,
    sealed_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (repository, key_id)
);
CREATE INDEX trust_keys_role ON trust_keys(repository, role);

-- Notary changefeed: one `update` row per stored timestamp, one `deletion` row per wipe.
CREATE TABLE trust_changes (
    id          BIGSERIAL PRIMARY KEY,
    repository  TEXT COLLATE "C" NOT NULL,
    gun         TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,
    category    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX trust_changes_repo ON trust_changes(repository, id);

-- Who did what, when (policy changes, resets, accepted trust updates).
CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL
);

-- A built-in role (names are data the server knows) granted on a scope:
-- `registry`, `repository:<name>` or `repository:<prefix>/*`.
CREATE TABLE role_assignments (
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    role         TEXT COLLATE "C" NOT NULL,
    scope        TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (principal_id, role, scope)
);

-- A repository token's scope map: ACR scope-map actions per repository (or prefix/*).
CREATE TABLE token_scopes (
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    repository   TEXT COLLATE "C" NOT NULL,
    action       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (principal_id, repository, action)
);
