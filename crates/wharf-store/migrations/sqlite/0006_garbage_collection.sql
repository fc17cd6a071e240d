-- Online garbage collection (see ARCHITECTURE.md, "Garbage collection").
--
-- `last_linked_at`: when the blob was last reserved by an upload or linked to a
-- repository (the "touch"). A blob with no link is garbage only once this is older than
-- the grace period, so an upload or mount in flight keeps it.
-- `tombstoned_at`: set (once, never cleared) when a collection decided to delete the
-- blob; its object is then deleted, then the row. Nothing links to a tombstoned blob.
ALTER TABLE blobs ADD COLUMN last_linked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN tombstoned_at INTEGER;
UPDATE blobs SET last_linked_at = MAX(created_at,
    COALESCE((SELECT MAX(linked_at) FROM repository_blobs rb WHERE rb.digest = blobs.digest), 0));
CREATE INDEX blobs_tombstoned ON blobs(digest) WHERE tombstoned_at IS NOT NULL;

-- "Does any repository still link this blob?" and the foreign key's check when a blob
-- row is deleted; the primary key starts with the repository.
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

-- Jobs that must run once across replicas (garbage collection): who holds it, until when.
-- A holder that dies loses it when it expires.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
