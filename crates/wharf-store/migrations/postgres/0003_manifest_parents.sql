-- Which manifests list a given child: the signature policy accepts a platform manifest
-- through a signed index that lists it, and garbage collection walks the same edge.
CREATE INDEX manifest_references_child ON manifest_references(repository_id, child_digest);
