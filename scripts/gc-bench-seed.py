#!/usr/bin/env python3
"""Seed the same synthetic registry into Wharf's embedded store and into the reference
docker-registry's filesystem layout, for scripts/bench-gc.sh.

    gc-bench-seed.py WHARF_DATA_DIR REFERENCE_ROOT MANIFESTS REPOSITORIES GARBAGE_PERCENT

Manifest i (0 <= i < MANIFESTS) lives in repository gc/rNNN (i mod REPOSITORIES), names a
config blob and two layer blobs of its own (so 3 * MANIFESTS blobs), and is tagged t<i>.
GARBAGE_PERCENT of the manifests (spread evenly) were "deleted": their blobs are still
stored and linked to the repository, but no manifest names them any more, which is what a
delete by digest leaves behind on both registries. Everything is dated two days back, past
any grace period.

Wharf: rows go straight into WHARF_DATA_DIR/metadata.db (the schema a first `wharf serve` made,
with the columns the store writes on a push) and blob files into WHARF_DATA_DIR/storage;
through the API this would take hours. Reference: the files distribution 2.8 writes for a
push under REFERENCE_ROOT/docker/registry/v2 (blob data, layer links, manifest revision and
tag links, the manifest itself as a blob). Standard library only.
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

data_dir, ref_root = sys.argv[1], sys.argv[2]
manifests, repositories, garbage_percent = (int(a) for a in sys.argv[3:6])
MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
then = int(time.time()) - 2 * 86400
v2 = os.path.join(ref_root, "docker/registry/v2")


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def wharf_blob(hexd, content):
    write(os.path.join(data_dir, "storage/blobs/sha256", hexd[:2], hexd), content)


def ref_blob(hexd, content):
    write(os.path.join(v2, "blobs/sha256", hexd[:2], hexd, "data"), content)


def ref_link(repo, *parts, digest):
    write(os.path.join(v2, "repositories", repo, *parts, "link"), digest.encode())


def is_garbage(i):
    # Evenly spread: manifest i is garbage when its bucket of 100 falls under the percentage.
    return (i * 37) % 100 < garbage_percent


db = sqlite3.connect(os.path.join(data_dir, "metadata.db"))
db.execute("PRAGMA foreign_keys = ON")
cur = db.cursor()
repo_ids = {}
for r in range(repositories):
    name = f"gc/r{r:03d}"
    cur.execute("INSERT INTO repositories (name, created_at) VALUES (?, ?)", (name, then))
    repo_ids[name] = cur.lastrowid

started = time.time()
counts = {"manifests": 0, "garbage_manifests": 0, "blobs": 0, "bytes": 0}
for i in range(manifests):
    repo = f"gc/r{i % repositories:03d}"
    rid = repo_ids[repo]
    config = json.dumps({"architecture": "amd64", "os": "linux", "bench": i}).encode()
    layers = [f"layer {i} a".encode() * 8, f"layer {i} b".encode() * 8]
    blobs = [config] + layers
    digests = []
    for content in blobs:
        hexd = hashlib.sha256(content).hexdigest()
        digests.append(("sha256:" + hexd, len(content)))
        wharf_blob(hexd, content)
        ref_blob(hexd, content)
        ref_link(repo, "_layers/sha256", hexd, digest="sha256:" + hexd)
        cur.execute(
            "INSERT INTO blobs (digest, size, created_at, last_linked_at) VALUES (?, ?, ?, ?)",
            ("sha256:" + hexd, len(content), then, then),
        )
        cur.execute(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES (?, ?, ?)",
            (rid, "sha256:" + hexd, then),
        )
        counts["blobs"] += 1
        counts["bytes"] += len(content)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": digests[0][0],
                "size": digests[0][1],
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d, "size": s}
                for d, s in digests[1:]
            ],
        },
        indent=3,
    ).encode()
    mhex = hashlib.sha256(manifest).hexdigest()
    mdigest = "sha256:" + mhex
    # distribution keeps a manifest as a blob; a deleted one loses its revision and tag links.
    ref_blob(mhex, manifest)
    if is_garbage(i):
        counts["garbage_manifests"] += 1
        continue
    counts["manifests"] += 1
    ref_link(repo, "_manifests/revisions/sha256", mhex, digest=mdigest)
    ref_link(repo, "_manifests/tags", f"t{i}", "current", digest=mdigest)
    ref_link(repo, "_manifests/tags", f"t{i}", "index/sha256", mhex, digest=mdigest)
    cur.execute(
        "INSERT INTO manifests (repository_id, digest, media_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
        (rid, mdigest, MEDIA, manifest, then),
    )
    cur.executemany(
        "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest) VALUES (?, ?, ?)",
        [(rid, mdigest, d) for d, _ in digests],
    )
    cur.execute(
        "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)",
        (rid, f"t{i}", mdigest, then),
    )
    if i % 10000 == 9999:
        db.commit()
        print(f"seeded {i + 1} manifests in {time.time() - started:.0f} s", file=sys.stderr)
db.commit()
db.execute("ANALYZE")
db.close()
print(json.dumps(counts))
