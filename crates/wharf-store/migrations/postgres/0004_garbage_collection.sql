-- Online garbage collection: the same as SQLite's 0006 (see ARCHITECTURE.md, "Garbage
-- collection").
--
-- `last_linked_at`: when the blob was last reserved by an upload or linked to a
-- repository (the "touch"). A blob with no link is garbage only once this is older than
-- the grace period. Being a column of the blob's own row matters here: a collection's
-- conditional UPDATE that waited for a linking transaction re-reads this row (and only
-- this row) before deciding.
-- `tombstoned_at`: set (once, never cleared) when a collection decided to delete the
-- blob; its object is then deleted, then the row. Nothing links to a tombstoned blob.
ALTER TABLE blobs ADD COLUMN last_linked_at BIGINT;
ALTER TABLE blobs ADD COLUMN tombstoned_at BIGINT;
UPDATE blobs SET last_linked_at = GREATEST(created_at,
    COALESCE((SELECT MAX(linked_at) FROM repository_blobs rb WHERE rb.digest = blobs.digest), 0));
ALTER TABLE blobs ALTER COLUMN last_linked_at SET NOT NULL;
CREATE INDEX blobs_tombstoned ON blobs(digest) WHERE tombstoned_at IS NOT NULL;

-- "Does any repository still link this blob?" and the foreign key's check when a blob
-- row is deleted (PostgreSQL does not index foreign keys itself).
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

-- Jobs that must run once across replicas (garbage collection): who holds it, until when.
CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
