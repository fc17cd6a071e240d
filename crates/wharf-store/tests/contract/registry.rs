//! Repositories, blob links, manifests, tags and referrers.

use bytes::Bytes;
use wharf_store::{
    DeleteOutcome, Digest, ManifestPutOutcome, ManifestRecord, NewManifest, ReferrerRecord, TagDetail,
    TrustCheck,
};

use crate::{Db, audit_actions, rec};

fn manifest(body: &[u8], tag: Option<&str>) -> NewManifest {
    NewManifest {
        record: ManifestRecord {
            digest: Digest::of(body),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::copy_from_slice(body),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: 1,
        },
        blobs: Vec::new(),
        manifests: Vec::new(),
        tag: tag.map(str::to_owned),
        audit: None,
    }
}

fn tagged_manifest(body: &[u8], tag: &str) -> NewManifest {
    manifest(body, Some(tag))
}

/// What a pull by tag reads (`manifest_by_tag`): the tagged manifest's digest and bytes.
async fn pulled(
    store: &dyn wharf_store::MetadataStore,
    repository: &str,
    tag: &str,
) -> Option<(Digest, Bytes)> {
    store
        .manifest_by_tag(repository, tag)
        .await
        .unwrap()
        .map(|m| (m.digest, m.content))
}

/// Tag and manifest lookups see every write at once (SQLite serves them from its read
/// cache, which every write must invalidate; PostgreSQL has none), and a pull by tag
/// reads what resolving the tag and then the digest would.
pub async fn tag_lookups_follow_every_write(db: Db) {
    let store = db.store().await;
    let (a, b) = (tagged_manifest(b"a", "latest"), tagged_manifest(b"b", "latest"));
    assert_eq!(pulled(store.as_ref(), "r", "latest").await, None);
    store.put_manifest("r", &a).await.unwrap();
    assert_eq!(
        pulled(store.as_ref(), "r", "latest").await,
        Some((Digest::of(b"a"), Bytes::from_static(b"a")))
    );
    assert_eq!(pulled(store.as_ref(), "other", "latest").await, None);
    assert_eq!(
        store.resolve_tag("r", "latest").await.unwrap(),
        Some(Digest::of(b"a"))
    );
    assert!(
        store
            .get_manifest("r", &Digest::of(b"a"))
            .await
            .unwrap()
            .is_some()
    );
    store.put_manifest("r", &b).await.unwrap();
    assert_eq!(
        store.resolve_tag("r", "latest").await.unwrap(),
        Some(Digest::of(b"b"))
    );
    assert_eq!(
        pulled(store.as_ref(), "r", "latest").await,
        Some((Digest::of(b"b"), Bytes::from_static(b"b")))
    );
    store
        .delete_manifest("r", &Digest::of(b"b"), TrustCheck::Skip, &rec("manifest.delete"))
        .await
        .unwrap();
    assert_eq!(store.resolve_tag("r", "latest").await.unwrap(), None);
    assert_eq!(pulled(store.as_ref(), "r", "latest").await, None);
    store
        .put_manifest("r", &tagged_manifest(b"a", "v1"))
        .await
        .unwrap();
    assert_eq!(
        store.resolve_tag("r", "v1").await.unwrap(),
        Some(Digest::of(b"a"))
    );
    store
        .delete_tag("r", "v1", TrustCheck::Skip, &rec("tag.delete"))
        .await
        .unwrap();
    assert_eq!(store.resolve_tag("r", "v1").await.unwrap(), None);
    assert_eq!(pulled(store.as_ref(), "r", "v1").await, None);
    store
        .delete_manifest("r", &Digest::of(b"a"), TrustCheck::Skip, &rec("manifest.delete"))
        .await
        .unwrap();
    assert!(
        store
            .get_manifest("r", &Digest::of(b"a"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Walk a listing `limit` at a time, as a client follows `Link: …?last=` headers.
async fn pages<F, Fut>(limit: u32, mut page: F) -> Vec<Vec<String>>
where
    F: FnMut(Option<String>, u32) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut last = None;
    loop {
        let p = page(last.clone(), limit).await;
        if p.is_empty() {
            return out;
        }
        assert!(p.len() <= limit as usize);
        last = p.last().cloned();
        out.push(p);
    }
}

/// Catalog and tag lists come in byte order (the Distribution spec's lexical order, not
/// the database locale's: `-` `.` `/` `0` `_` sort as bytes), each page strictly after
/// `last`, and a repository with no manifest (only blob links) is not in the catalog.
pub async fn catalog_and_tag_pages_come_in_byte_order_after_last(db: Db) {
    let s = db.store().await;
    let names = ["ab", "a_z", "a0", "a/b", "a.b", "a-c", "b"];
    for (i, name) in names.iter().enumerate() {
        s.put_manifest(name, &manifest(format!("m{i}").as_bytes(), None))
            .await
            .unwrap();
    }
    crate::link(&*s, "a-blob-only", &Digest::of(b"x"), 1, 1)
        .await
        .unwrap();
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort(); // Rust's String order is byte order.
    assert_eq!(sorted, ["a-c", "a.b", "a/b", "a0", "a_z", "ab", "b"]);
    assert_eq!(s.list_repositories("", None, 100).await.unwrap(), sorted);
    let paged = pages(2, |last, limit| {
        let s = s.clone();
        async move { s.list_repositories("", last.as_deref(), limit).await.unwrap() }
    })
    .await;
    assert_eq!(paged.len(), 4);
    assert_eq!(paged.concat(), sorted);
    assert_eq!(
        s.list_repositories("", Some("a/"), 3).await.unwrap(),
        ["a/b", "a0", "a_z"]
    );
    assert!(s.list_repositories("", Some("b"), 3).await.unwrap().is_empty());
    assert!(s.repository_exists("a-blob-only").await.unwrap());

    let tags = ["v1.0", "v1-0", "latest", "_x", "V2", "Latest", "v10", "v9"];
    for (i, tag) in tags.iter().enumerate() {
        s.put_manifest("t", &tagged_manifest(format!("t{i}").as_bytes(), tag))
            .await
            .unwrap();
    }
    let mut sorted: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        ["Latest", "V2", "_x", "latest", "v1-0", "v1.0", "v10", "v9"]
    );
    assert_eq!(s.list_tags("t", None, 100).await.unwrap(), sorted);
    let paged = pages(3, |last, limit| {
        let s = s.clone();
        async move { s.list_tags("t", last.as_deref(), limit).await.unwrap() }
    })
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged.concat(), sorted);
    assert_eq!(s.list_tags("t", Some("V"), 2).await.unwrap(), ["V2", "_x"]);
    assert!(s.list_tags("nope", None, 10).await.unwrap().is_empty());
    let detail: Vec<String> = s
        .tag_details("t")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.tag)
        .collect();
    assert_eq!(detail, sorted);
}

/// `contains` is a plain substring: `%` and `_` match only themselves.
pub async fn catalog_filter_is_a_plain_substring(db: Db) {
    let s = db.store().await;
    for (i, name) in ["team/app", "team/db", "other/app", "a_b", "axb"]
        .iter()
        .enumerate()
    {
        s.put_manifest(name, &manifest(format!("m{i}").as_bytes(), None))
            .await
            .unwrap();
    }
    assert_eq!(
        s.list_repositories("app", None, 10).await.unwrap(),
        ["other/app", "team/app"]
    );
    assert_eq!(
        s.list_repositories("team/", Some("team/app"), 10).await.unwrap(),
        ["team/db"]
    );
    assert_eq!(s.list_repositories("a_b", None, 10).await.unwrap(), ["a_b"]);
    assert!(s.list_repositories("%", None, 10).await.unwrap().is_empty());
    assert_eq!(s.list_repositories("", None, 2).await.unwrap(), ["a_b", "axb"]);
}

/// A manifest is stored only when every blob is linked and every child manifest present;
/// tag details add up what a pull fetches; referrers filter by subject and artifact type.
pub async fn manifests_need_their_references_and_report_sizes_and_referrers(db: Db) {
    let s = db.store().await;
    let (config, layer) = (Digest::of(b"config"), Digest::of(b"layer"));
    let mut image = manifest(b"image-manifest", Some("v1"));
    image.blobs = vec![config.clone(), layer.clone()];
    crate::link(&*s, "r", &config, 100, 1).await.unwrap();
    assert_eq!(
        s.put_manifest("r", &image).await.unwrap(),
        ManifestPutOutcome::MissingBlob(layer.clone())
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), None);
    // Linked in another repository is not linked here.
    crate::link(&*s, "elsewhere", &layer, 1000, 1).await.unwrap();
    assert_eq!(s.known_blob(&layer).await.unwrap(), Some(1000));
    assert_eq!(s.linked_blob("r", &layer).await.unwrap(), None);
    assert_eq!(
        s.put_manifest("r", &image).await.unwrap(),
        ManifestPutOutcome::MissingBlob(layer.clone())
    );
    crate::link(&*s, "r", &layer, 1000, 1).await.unwrap();
    let mut pushed = image.clone();
    pushed.audit = Some(rec("manifest.push"));
    assert_eq!(
        s.put_manifest("r", &pushed).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    assert_eq!(audit_actions(&*s).await, ["manifest.push"]);

    let mut index = manifest(b"index-manifest", Some("multi"));
    let other_child = Digest::of(b"other-child");
    index.manifests = vec![image.record.digest.clone(), other_child.clone()];
    assert_eq!(
        s.put_manifest("r", &index).await.unwrap(),
        ManifestPutOutcome::MissingManifest(other_child)
    );
    index.manifests.pop();
    assert_eq!(
        s.put_manifest("r", &index).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    // Parents: the manifests listing a child, in this repository only.
    assert_eq!(
        s.manifest_parents("r", &image.record.digest).await.unwrap(),
        [index.record.digest.clone()]
    );
    assert!(
        s.manifest_parents("elsewhere", &image.record.digest)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.manifest_parents("r", &index.record.digest)
            .await
            .unwrap()
            .is_empty()
    );
    let image_size = b"image-manifest".len() as u64 + 1100;
    assert_eq!(
        s.tag_details("r").await.unwrap(),
        [
            TagDetail {
                tag: "multi".into(),
                digest: index.record.digest.as_str().into(),
                media_type: index.record.media_type.clone(),
                pushed_at: 1,
                size: b"index-manifest".len() as u64 + image_size,
            },
            TagDetail {
                tag: "v1".into(),
                digest: image.record.digest.as_str().into(),
                media_type: image.record.media_type.clone(),
                pushed_at: 1,
                size: image_size,
            },
        ]
    );
    // A re-push of the same digest keeps the stored row (and its time).
    let mut again = image.clone();
    again.record.created_at = 99;
    again.tag = None;
    assert_eq!(
        s.put_manifest("r", &again).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    let got = s.get_manifest("r", &image.record.digest).await.unwrap().unwrap();
    assert_eq!((got.created_at, &got.content[..]), (1, &b"image-manifest"[..]));
    assert!(
        s.get_manifest("elsewhere", &image.record.digest)
            .await
            .unwrap()
            .is_none()
    );

    let subject = image.record.digest.clone();
    let referrer = |body: &[u8], artifact: &str, at: i64| {
        let mut m = manifest(body, None);
        m.record.subject = Some(subject.clone());
        m.record.artifact_type = Some(artifact.into());
        m.record.annotations = Some(r#"{"k":"v"}"#.into());
        m.record.created_at = at;
        m
    };
    let (sig, sbom) = (
        referrer(b"sig", "application/sig", 5),
        referrer(b"sbom", "application/sbom", 4),
    );
    s.put_manifest("r", &sig).await.unwrap();
    s.put_manifest("r", &sbom).await.unwrap();
    let all = s.referrers("r", &subject, None).await.unwrap();
    assert_eq!(
        all,
        [
            ReferrerRecord {
                digest: sbom.record.digest.clone(),
                media_type: sbom.record.media_type.clone(),
                size: 4,
                artifact_type: Some("application/sbom".into()),
                annotations: Some(r#"{"k":"v"}"#.into()),
            },
            ReferrerRecord {
                digest: sig.record.digest.clone(),
                media_type: sig.record.media_type.clone(),
                size: 3,
                artifact_type: Some("application/sig".into()),
                annotations: Some(r#"{"k":"v"}"#.into()),
            },
        ]
    );
    let only = s.referrers("r", &subject, Some("application/sig")).await.unwrap();
    assert_eq!(only, all[1..]);
    assert!(s.referrers("elsewhere", &subject, None).await.unwrap().is_empty());
    let stored = s.get_manifest("r", &sig.record.digest).await.unwrap().unwrap();
    assert_eq!(stored.subject, Some(subject));
}

/// Linking twice changes nothing; unlinking audits exactly when a link went away.
pub async fn blob_links_are_idempotent_and_unlinks_audited_once(db: Db) {
    let s = db.store().await;
    let d = Digest::of(b"blob");
    assert_eq!(s.known_blob(&d).await.unwrap(), None);
    assert!(!s.repository_exists("r").await.unwrap());
    crate::link(&*s, "r", &d, 4, 1).await.unwrap();
    crate::link(&*s, "r", &d, 4, 2).await.unwrap();
    assert!(s.repository_exists("r").await.unwrap());
    assert_eq!(s.linked_blob("r", &d).await.unwrap(), Some(4));
    assert_eq!(
        s.unlink_blob("r", &d, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.unlink_blob("r", &d, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(
        s.unlink_blob("nope", &d, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(s.linked_blob("r", &d).await.unwrap(), None);
    // The bytes stay known (garbage collection removes them, not an unlink).
    assert_eq!(s.known_blob(&d).await.unwrap(), Some(4));
    assert_eq!(
        s.delete_tag("r", "none", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(
        s.delete_manifest(
            "r",
            &Digest::of(b"none"),
            TrustCheck::Skip,
            &rec("manifest.delete")
        )
        .await
        .unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(audit_actions(&*s).await, ["blob.delete"]);
}

/// Deleting a repository takes its manifests, tags and blob links (not the blob rows, not
/// its trust data, not other repositories), audited once; a second delete finds nothing.
pub async fn delete_repository_takes_manifests_tags_and_links(db: Db) {
    let s = db.store().await;
    let layer = Digest::of(b"layer");
    for repo in ["r", "keep"] {
        crate::link(&*s, repo, &layer, 10, 1).await.unwrap();
        let mut m = tagged_manifest(b"m", "v1");
        m.blobs = vec![layer.clone()];
        s.put_manifest(repo, &m).await.unwrap();
    }
    s.trust_commit(
        "r",
        "h/r",
        &[wharf_store::NewTrustFile {
            role: "root".into(),
            version: 1,
            sha256: "x".into(),
            content: b"root".to_vec(),
        }],
        None,
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(!s.repository_exists("r").await.unwrap());
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), None);
    assert!(s.get_manifest("r", &Digest::of(b"m")).await.unwrap().is_none());
    assert_eq!(s.linked_blob("r", &layer).await.unwrap(), None);
    assert!(s.list_tags("r", None, 10).await.unwrap().is_empty());
    assert!(s.tag_details("r").await.unwrap().is_empty());
    assert_eq!(s.list_repositories("", None, 10).await.unwrap(), ["keep"]);
    assert_eq!(s.known_blob(&layer).await.unwrap(), Some(10));
    assert_eq!(s.resolve_tag("keep", "v1").await.unwrap(), Some(Digest::of(b"m")));
    assert_eq!(s.trust_current("r").await.unwrap().len(), 1);
    assert_eq!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(audit_actions(&*s).await, ["repository.delete"]);
    // The name can be used again from scratch.
    s.put_manifest("r", &tagged_manifest(b"m2", "v2")).await.unwrap();
    assert_eq!(s.list_tags("r", None, 10).await.unwrap(), ["v2"]);
}

/// Pushes racing a repository deletion never fail on a half-deleted repository: each step
/// lands before the deletion (and is deleted with it) or after it (and stands whole).
pub async fn concurrent_pushes_and_repository_deletion_stay_consistent(db: Db) {
    let s = db.store().await;
    let layer = Digest::of(b"layer");
    for round in 0..10 {
        let repo = format!("r{round}");
        crate::link(&*s, &repo, &layer, 10, 1).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let mut tasks = Vec::new();
        for i in 0..2 {
            let (s, repo, layer, barrier) = (s.clone(), repo.clone(), layer.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                crate::link(&*s, &repo, &layer, 10, 2).await?;
                let mut m = tagged_manifest(format!("m{i}").as_bytes(), &format!("t{i}"));
                m.blobs = vec![layer.clone()];
                s.put_manifest(&repo, &m).await
            }));
        }
        let (s2, repo2) = (s.clone(), repo.clone());
        let deleter = tokio::spawn(async move {
            barrier.wait().await;
            s2.delete_repository(&repo2, TrustCheck::Skip, &rec("repository.delete"))
                .await
        });
        for t in tasks {
            // Missing blob: the deletion came between this push's link and its manifest.
            let outcome = t.await.unwrap().unwrap();
            assert!(
                matches!(
                    outcome,
                    ManifestPutOutcome::Stored | ManifestPutOutcome::MissingBlob(_)
                ),
                "{outcome:?}"
            );
        }
        assert_eq!(deleter.await.unwrap().unwrap(), DeleteOutcome::Deleted);
        // Whatever survived is whole: every listed tag resolves to a manifest whose blob is
        // linked.
        for tag in s.list_tags(&repo, None, 10).await.unwrap() {
            let d = s.resolve_tag(&repo, &tag).await.unwrap().unwrap();
            assert!(s.get_manifest(&repo, &d).await.unwrap().is_some());
            assert_eq!(s.linked_blob(&repo, &layer).await.unwrap(), Some(10));
        }
    }
}

/// `rec` at time `at` (the time a tag deletion starts the manifest's untagged clock).
fn rec_at(action: &str, at: i64) -> wharf_store::AuditRecord {
    wharf_store::AuditRecord { at, ..rec(action) }
}

fn pushed_at(body: &[u8], tag: Option<&str>, at: i64) -> NewManifest {
    let mut m = manifest(body, tag);
    m.record.created_at = at;
    m
}

/// Retention's clock and deletions: a manifest is untagged since it last lost a tag (a
/// push moving the tag away, or a tag deletion), or since its push if it never had one;
/// the conditional deletions refuse a tag that moved or was pushed again, and a manifest
/// that is tagged, listed by an index or untagged too recently; only what they delete is
/// audited.
pub async fn untagged_clock_and_retention_deletions_check_again(db: Db) {
    let store = db.store().await;
    let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
    store
        .put_manifest("r", &pushed_at(b"a", Some("latest"), 1))
        .await
        .unwrap();
    store
        .put_manifest("r", &pushed_at(b"b", Some("latest"), 100))
        .await
        .unwrap();
    store.put_manifest("r", &pushed_at(b"c", None, 5)).await.unwrap();
    let since = |list: Vec<wharf_store::UntaggedManifest>| {
        let mut v: Vec<(Digest, i64)> = list.into_iter().map(|m| (m.digest, m.untagged_since)).collect();
        v.sort();
        v
    };
    let mut expected = vec![(a.clone(), 100), (c.clone(), 5)];
    expected.sort();
    assert_eq!(
        since(store.untagged_manifests("r", i64::MAX, None, 10).await.unwrap()),
        expected,
        "a lost its tag at b's push (100), c was never tagged (its push, 5)"
    );
    assert_eq!(
        since(store.untagged_manifests("r", 50, None, 10).await.unwrap()),
        vec![(c.clone(), 5)]
    );
    let first = store.untagged_manifests("r", i64::MAX, None, 1).await.unwrap();
    let rest = store
        .untagged_manifests("r", i64::MAX, Some(&first[0].digest), 10)
        .await
        .unwrap();
    assert_eq!(
        first.len() + rest.len(),
        2,
        "pages continue after the last digest"
    );

    assert_eq!(
        store
            .delete_tag("r", "latest", TrustCheck::Skip, &rec_at("tag.delete", 200))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(
        since(store.untagged_manifests("r", i64::MAX, None, 10).await.unwrap()).contains(&(b.clone(), 200))
    );
    assert!(
        !store
            .delete_untagged_manifest("r", &b, 200, &rec("retention.manifest"))
            .await
            .unwrap(),
        "untagged since 200, not before"
    );
    assert!(
        store
            .delete_untagged_manifest("r", &b, 201, &rec("retention.manifest"))
            .await
            .unwrap()
    );
    assert!(store.get_manifest("r", &b).await.unwrap().is_none());

    // Tags: only while unchanged.
    store
        .put_manifest("r", &pushed_at(b"d", Some("v1"), 300))
        .await
        .unwrap();
    let d = Digest::of(b"d");
    for (digest, at) in [(&d, 299), (&a, 300)] {
        assert!(
            !store
                .delete_tag_if_unchanged("r", "v1", digest, at, &rec("retention.tag"))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .delete_tag_if_unchanged("r", "v1", &d, 300, &rec_at("retention.tag", 400))
            .await
            .unwrap()
    );
    assert_eq!(store.resolve_tag("r", "v1").await.unwrap(), None);
    assert!(
        since(store.untagged_manifests("r", i64::MAX, None, 10).await.unwrap()).contains(&(d.clone(), 400))
    );

    // A tagged manifest, or one an index lists, stays whatever its clock says.
    store
        .put_manifest("r", &pushed_at(b"e", Some("t"), 1))
        .await
        .unwrap();
    let mut index = pushed_at(b"index", None, 1);
    index.manifests = vec![c.clone()];
    store.put_manifest("r", &index).await.unwrap();
    for kept in [Digest::of(b"e"), c.clone()] {
        assert!(
            !store
                .delete_untagged_manifest("r", &kept, i64::MAX, &rec("retention.manifest"))
                .await
                .unwrap(),
            "{kept}"
        );
        assert!(store.get_manifest("r", &kept).await.unwrap().is_some());
    }
    assert_eq!(
        audit_actions(store.as_ref())
            .await
            .into_iter()
            .filter(|a| a.starts_with("retention.") || a == "tag.delete")
            .count(),
        3,
        "one tag deletion, one manifest and one tag removed by retention"
    );
}
