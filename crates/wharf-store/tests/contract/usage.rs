//! Storage usage: shared blobs counted once for the registry and per repository as
//! "would free", unlinked and tombstoned blobs, pages.

use bytes::Bytes;
use wharf_store::{
    BlobReservation, DeleteOutcome, Digest, ManifestPutOutcome, ManifestRecord, MetadataStore, NewManifest,
    RegistryUsage, RepositoryUsage, ScopeUsage, TrustCheck, UsageScope,
};

use crate::{Db, link, rec};

const OLD: i64 = 100;
const CUTOFF: i64 = 1_000;
const NEW: i64 = 2_000;

fn d(name: &str) -> Digest {
    Digest::of(name.as_bytes())
}

/// Store a manifest naming `blobs` in `repository`, tagged `tag`; returns its length.
async fn push(s: &dyn MetadataStore, repository: &str, body: &str, blobs: &[&Digest], tag: &str) -> u64 {
    let manifest = NewManifest {
        record: ManifestRecord {
            digest: Digest::of(body.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::copy_from_slice(body.as_bytes()),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: NEW,
        },
        blobs: blobs.iter().map(|b| (*b).clone()).collect(),
        manifests: Vec::new(),
        tag: Some(tag.into()),
        audit: None,
    };
    assert_eq!(
        s.put_manifest(repository, &manifest).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    body.len() as u64
}

async fn usage(s: &dyn MetadataStore, repository: &str) -> RepositoryUsage {
    s.repository_usage(repository).await.unwrap().unwrap()
}

pub async fn usage_counts_shared_blobs_once_and_exclusive_per_repository(db: Db) {
    let s = db.store().await;
    let (shared, only_a, only_b, unlinked, doomed) =
        (d("shared"), d("only-a"), d("only-b"), d("unlinked"), d("doomed"));
    assert_eq!(s.registry_usage().await.unwrap(), RegistryUsage::default());
    assert_eq!(s.repository_usage("a").await.unwrap(), None);

    link(&*s, "a", &shared, 1_000, NEW).await.unwrap();
    link(&*s, "b", &shared, 1_000, NEW).await.unwrap();
    link(&*s, "a", &only_a, 10, NEW).await.unwrap();
    link(&*s, "b", &only_b, 20, NEW).await.unwrap();
    let manifest_a = push(&*s, "a", "manifest of a", &[&shared, &only_a], "v1").await;
    let manifest_b = push(&*s, "b", "the manifest of b", &[&shared, &only_b], "v1").await;
    // A second tag on the same manifest: one more tag, no more bytes.
    push(&*s, "b", "the manifest of b", &[&shared, &only_b], "latest").await;
    // An upload that reserved its blob but never linked it, and one that garbage
    // collection is deleting (a tombstone): neither belongs to a repository.
    assert_eq!(
        s.reserve_blob(&unlinked, 100_000, NEW).await.unwrap(),
        BlobReservation::Reserved
    );
    assert_eq!(
        s.reserve_blob(&doomed, 1_000_000, OLD).await.unwrap(),
        BlobReservation::Reserved
    );
    assert!(s.take_gc_lease("gc-test", NEW + 100, NEW).await.unwrap());
    let tombstoned = s
        .tombstone_garbage_blobs("gc-test", NEW, CUTOFF, None, 100)
        .await
        .unwrap();
    assert_eq!(
        tombstoned.blobs.len(),
        1,
        "only the old unlinked blob is tombstoned"
    );

    assert_eq!(
        usage(&*s, "a").await,
        RepositoryUsage {
            repository: "a".into(),
            linked_bytes: 1_010 + manifest_a,
            exclusive_bytes: 10 + manifest_a,
            manifest_bytes: manifest_a,
            manifests: 1,
            tags: 1,
            blobs: 2,
        }
    );
    assert_eq!(
        usage(&*s, "b").await,
        RepositoryUsage {
            repository: "b".into(),
            linked_bytes: 1_020 + manifest_b,
            exclusive_bytes: 20 + manifest_b,
            manifest_bytes: manifest_b,
            manifests: 1,
            tags: 2,
            blobs: 2,
        }
    );
    assert_eq!(
        s.registry_usage().await.unwrap(),
        RegistryUsage {
            stored_bytes: 1_030 + manifest_a + manifest_b,
            repositories_bytes: 2_030 + manifest_a + manifest_b,
            blobs: 3,
            manifest_bytes: manifest_a + manifest_b,
            manifests: 2,
            tags: 3,
            repositories: 2,
            unlinked_bytes: 100_000,
            unlinked_blobs: 1,
        }
    );

    // Once b lets go of the shared blob, a alone would free it.
    assert_eq!(
        s.unlink_blob("b", &shared, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let a = usage(&*s, "a").await;
    assert_eq!(
        (a.linked_bytes, a.exclusive_bytes),
        (1_010 + manifest_a, 1_010 + manifest_a)
    );
    let b = usage(&*s, "b").await;
    assert_eq!(
        (b.linked_bytes, b.exclusive_bytes, b.blobs),
        (20 + manifest_b, 20 + manifest_b, 1)
    );

    // A deleted repository has no usage; its exclusive blob is now unlinked.
    assert_eq!(
        s.delete_repository("b", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(s.repository_usage("b").await.unwrap(), None);
    let registry = s.registry_usage().await.unwrap();
    assert_eq!(
        (
            registry.stored_bytes,
            registry.repositories_bytes,
            registry.repositories
        ),
        (1_010 + manifest_a, 1_010 + manifest_a, 1)
    );
    assert_eq!((registry.unlinked_bytes, registry.unlinked_blobs), (100_020, 2));
}

pub async fn usage_pages_come_in_name_order_after_last(db: Db) {
    let s = db.store().await;
    // Byte order: upper case before lower case, `-` before `/`.
    let names = ["Zeta", "team-x", "team/a", "team/b", "zz"];
    for (i, name) in names.iter().enumerate() {
        let blob = d(name);
        link(&*s, name, &blob, (i as u64 + 1) * 100, NEW).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.repository_usage_page(after.as_deref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.repository.clone());
        seen.extend(page);
    }
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort();
    assert_eq!(
        seen.iter().map(|u| u.repository.as_str()).collect::<Vec<_>>(),
        expected
    );
    for usage in &seen {
        let i = names.iter().position(|n| *n == usage.repository).unwrap() as u64;
        assert_eq!(
            (usage.linked_bytes, usage.exclusive_bytes),
            ((i + 1) * 100, (i + 1) * 100)
        );
        assert_eq!((usage.blobs, usage.manifests, usage.tags), (1, 0, 0));
        assert_eq!(
            &s.repository_usage(&usage.repository).await.unwrap().unwrap(),
            usage
        );
    }
    assert!(s.repository_usage_page(Some("zz"), 10).await.unwrap().is_empty());
}

pub async fn scope_usage_counts_shared_blobs_once_within_a_prefix(db: Db) {
    let s = db.store().await;
    let (shared, only_a, outside, reserved) = (d("shared"), d("only-a"), d("outside"), d("reserved"));
    let prefix = UsageScope::Prefix("team/");
    assert_eq!(
        s.scope_usage(prefix, Some(&shared)).await.unwrap(),
        ScopeUsage::default()
    );
    assert_eq!(
        s.scope_usage(UsageScope::Registry, None).await.unwrap(),
        ScopeUsage::default()
    );

    link(&*s, "team/a", &shared, 1_000, NEW).await.unwrap();
    link(&*s, "team/b/deep", &shared, 1_000, NEW).await.unwrap();
    link(&*s, "team/a", &only_a, 10, NEW).await.unwrap();
    let manifest = push(&*s, "team/a", "manifest of team/a", &[&shared, &only_a], "v1").await;
    // Names next to the prefix in byte order, none of them under `team/`: `team` itself,
    // `team-x` and `team0` (the range's upper bound) and `team_x` (`_` is a LIKE wildcard).
    for (i, name) in ["team", "team-x", "team0", "team_x"].iter().enumerate() {
        link(&*s, name, &outside, 7, NEW + i as i64).await.unwrap();
    }
    // Reserved by an upload but linked nowhere: no scope holds it.
    assert_eq!(
        s.reserve_blob(&reserved, 100_000, NEW).await.unwrap(),
        BlobReservation::Reserved
    );

    assert_eq!(
        s.scope_usage(prefix, Some(&shared)).await.unwrap(),
        ScopeUsage {
            linked_bytes: 1_010 + manifest,
            holds_blob: true
        }
    );
    assert_eq!(
        s.scope_usage(prefix, Some(&outside)).await.unwrap(),
        ScopeUsage {
            linked_bytes: 1_010 + manifest,
            holds_blob: false
        }
    );
    assert_eq!(
        s.scope_usage(UsageScope::Prefix("team/b/"), None).await.unwrap(),
        ScopeUsage {
            linked_bytes: 1_000,
            holds_blob: false
        }
    );
    assert_eq!(
        s.scope_usage(UsageScope::Repository("team/a"), Some(&only_a))
            .await
            .unwrap(),
        ScopeUsage {
            linked_bytes: usage(&*s, "team/a").await.linked_bytes,
            holds_blob: true
        }
    );
    assert_eq!(
        s.scope_usage(UsageScope::Repository("team"), Some(&shared))
            .await
            .unwrap(),
        ScopeUsage {
            linked_bytes: 7,
            holds_blob: false
        }
    );
    let registry = s
        .scope_usage(UsageScope::Registry, Some(&reserved))
        .await
        .unwrap();
    assert_eq!(
        registry,
        ScopeUsage {
            linked_bytes: s.registry_usage().await.unwrap().stored_bytes,
            holds_blob: false
        }
    );
    assert_eq!(registry.linked_bytes, 1_017 + manifest);
}
