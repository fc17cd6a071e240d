-- When a manifest last lost a tag (a tag moved to another manifest, or was deleted): the
-- clock of retention's "untagged for N days". NULL = it never had a tag taken away, so it
-- has been untagged since it was pushed (`created_at`). Existing manifests get the time of
-- this upgrade: which of them lost a tag before, and when, was never recorded, and
-- counting from the upgrade gives each a whole period instead of removing an image that
-- was untagged this morning because it was pushed a month ago.
ALTER TABLE manifests ADD COLUMN untagged_at INTEGER;
UPDATE manifests SET untagged_at = CAST(strftime('%s', 'now') AS INTEGER);
