-- Locks on a repository or one of its tags (ACR's `deleteEnabled` / `writeEnabled` set to
-- false), set and cleared by owners. `tag` is '' for the repository itself (tags are never
-- empty). A row exists only while at least one attribute is set; clearing both removes it.
-- Keyed by the repository's id: every lock refuses deletion, so a locked repository (or
-- tag) is never deleted, and the cascade is only a backstop that keeps a lock from ever
-- applying to a later repository of the same name. 0/1 integers rather than BOOLEAN: the
-- SQLite schema's type, so `wharf migrate` copies them like every other column.
CREATE TABLE locks (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    tag           TEXT COLLATE "C" NOT NULL,
    no_delete     BIGINT NOT NULL CHECK (no_delete IN (0, 1)),
    no_write      BIGINT NOT NULL CHECK (no_write IN (0, 1)),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, tag),
    CHECK (no_delete = 1 OR no_write = 1)
);
