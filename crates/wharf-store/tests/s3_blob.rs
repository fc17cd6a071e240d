//! `S3BlobStore` against a real Garage node (wharf-testbed), one fresh bucket per test.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use wharf_store::s3_blob::MIN_PART_SIZE;
use wharf_store::{BlobStore, ByteRange, ByteStream, Digest, S3BlobStore, S3Config, StoreError};
use wharf_testbed::garage::{GarageNode, S3Bucket};

const MIB: usize = 1 << 20;

fn config(b: &S3Bucket) -> S3Config {
    let mut c = S3Config::new(Some(b.endpoint.clone()), &b.region, &b.bucket);
    c.access_key_id = Some(b.access_key_id.clone());
    c.secret_access_key = Some(b.secret_access_key.clone());
    c.allow_http = true;
    // The smallest parts S3 allows, so a few MiB of test data spans several parts.
    c.part_size = MIN_PART_SIZE;
    c
}

async fn store(b: &S3Bucket) -> S3BlobStore {
    S3BlobStore::connect(config(b)).await.unwrap()
}

/// The bucket seen directly, to check what the store leaves in it.
async fn keys(b: &S3Bucket, prefix: &str) -> Vec<String> {
    let raw = raw(b);
    let prefix = Path::from(prefix);
    let mut keys: Vec<String> = raw
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// A client of the bucket that bypasses the store.
fn raw(b: &S3Bucket) -> object_store::aws::AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(&b.endpoint)
        .with_region(&b.region)
        .with_bucket_name(&b.bucket)
        .with_access_key_id(&b.access_key_id)
        .with_secret_access_key(&b.secret_access_key)
        .with_allow_http(true)
        .build()
        .unwrap()
}

/// Deterministic bytes that differ at every offset and between seeds.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// One PATCH: a writer at `offset` that writes `chunks` and finishes.
async fn append(store: &S3BlobStore, id: &str, offset: u64, chunks: &[&[u8]]) -> u64 {
    let mut w = store.upload_writer(id, offset).await.unwrap();
    let mut n = offset;
    for c in chunks {
        w.write(Bytes::copy_from_slice(c)).await.unwrap();
        n += c.len() as u64;
    }
    w.finish().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_any_size_commit_byte_for_byte_and_only_on_commit() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    let content = pattern(1 + 3 * MIB + 7 * MIB + 1000, 1);
    let (a, rest) = content.split_at(1);
    let (b, rest) = rest.split_at(3 * MIB);
    let (c, d) = rest.split_at(7 * MIB);
    s.create_upload("u1").await.unwrap();
    let mut offset = 0;
    for chunk in [a, b, c, d] {
        offset = append(&s, "u1", offset, &[chunk]).await;
    }
    assert_eq!(offset, content.len() as u64);
    let digest = Digest::of(&content);
    assert_eq!(s.stat(&digest).await.unwrap(), None, "visible before commit");
    assert!(matches!(s.read(&digest, None).await, Err(StoreError::NotFound)));
    s.commit_upload("u1", &digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), Some(content.len() as u64));
    assert!(collect(s.read(&digest, None).await.unwrap()).await == content);
    assert_eq!(
        keys(&bucket, "uploads").await,
        Vec::<String>::new(),
        "scratch left after commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_resumes_at_the_acknowledged_offset_ignoring_a_crashed_writer() {
    let bucket = GarageNode::shared().fresh_bucket();
    let good = pattern(6 * MIB + 2 * MIB + 17, 2);
    let acknowledged = 6 * MIB;
    {
        let first = store(&bucket).await;
        first.create_upload("u1").await.unwrap();
        append(&first, "u1", 0, &[&good[..acknowledged]]).await;
        // A writer that finished but whose offset was never acknowledged (the replica
        // died before the metadata store moved on): two more parts and a tail.
        append(&first, "u1", acknowledged as u64, &[&pattern(12 * MIB + 5, 9)]).await;
        // And one that died mid-request, without finishing, after a full part.
        let mut w = first.upload_writer("u1", acknowledged as u64).await.unwrap();
        w.write(Bytes::from(pattern(7 * MIB, 8))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(w);
    }
    // A fresh instance, as on another replica: everything it knows comes from S3.
    let second = store(&bucket).await;
    append(&second, "u1", acknowledged as u64, &[&good[acknowledged..]]).await;
    let digest = Digest::of(&good);
    second.commit_upload("u1", &digest).await.unwrap();
    assert!(collect(second.read(&digest, None).await.unwrap()).await == good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_the_bytes_do_not_have_is_refused() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    s.create_upload("u1").await.unwrap();
    append(&s, "u1", 0, &[b"hello world"]).await;
    let wrong = Digest::of(b"something else");
    assert!(matches!(
        s.commit_upload("u1", &wrong).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(s.stat(&wrong).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_under_a_prefix() {
    let bucket = GarageNode::shared().fresh_bucket();
    let mut cfg = config(&bucket);
    cfg.prefix = "/replica-set-1/".into();
    let s = S3BlobStore::connect(cfg).await.unwrap();
    let content = pattern(MIN_PART_SIZE + 3 * MIB, 3);
    s.create_upload("u1").await.unwrap();
    append(&s, "u1", 0, &[&content]).await;
    let digest = Digest::of(&content);
    s.commit_upload("u1", &digest).await.unwrap();
    let last = content.len() as u64 - 1;
    let boundary = MIN_PART_SIZE as u64;
    for (start, end) in [(0, 0), (boundary - 10, boundary + 10), (last, last), (0, last)] {
        let got = collect(s.read(&digest, Some(ByteRange { start, end })).await.unwrap()).await;
        assert!(got == content[start as usize..=end as usize], "{start}-{end}");
    }
    let all = keys(&bucket, "").await;
    assert!(!all.is_empty());
    assert!(all.iter().all(|k| k.starts_with("replica-set-1/")), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_leaves_nothing_behind() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    s.create_upload("u1").await.unwrap();
    let n = append(&s, "u1", 0, &[&pattern(MIN_PART_SIZE + 100, 4)]).await;
    append(&s, "u1", n, &[b"more"]).await;
    s.abort_upload("u1").await.unwrap();
    assert_eq!(keys(&bucket, "").await, Vec::<String>::new());
    assert!(matches!(
        s.upload_writer("u1", 0).await,
        Err(StoreError::NotFound)
    ));
    // Unknown and already aborted uploads are fine.
    s.abort_upload("u1").await.unwrap();
    s.abort_upload("never-started").await.unwrap();
    assert!(matches!(
        s.create_upload("../x").await,
        Err(StoreError::InvalidKey(_))
    ));
}

/// Aborting (a cancelled upload, or the sweep of an idle one) aborts the S3 multipart
/// upload itself, whose parts a bucket listing never shows but S3 keeps (and bills) until
/// then: a part sent to it afterwards is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_aborts_the_multipart_upload() {
    use object_store::multipart::MultipartStore;
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    s.create_upload("u1").await.unwrap();
    let n = append(&s, "u1", 0, &[&pattern(MIN_PART_SIZE + 100, 5)]).await;
    let raw = raw(&bucket);
    let state = raw
        .get(&Path::from(format!("uploads/u1/at-{n:020}")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    let multipart_id = state["multipart_id"].as_str().unwrap().to_owned();
    let data = Path::from("data/u1");
    // Still open: another part is accepted.
    raw.put_part(
        &data,
        &multipart_id,
        5,
        Bytes::from(pattern(MIN_PART_SIZE, 6)).into(),
    )
    .await
    .unwrap();
    s.abort_upload("u1").await.unwrap();
    assert!(
        raw.put_part(
            &data,
            &multipart_id,
            6,
            Bytes::from(pattern(MIN_PART_SIZE, 7)).into()
        )
        .await
        .is_err(),
        "the multipart upload is still open"
    );
    assert_eq!(keys(&bucket, "").await, Vec::<String>::new());
}

/// A blob deletion that stopped after the data object (a crash, a failed request) is
/// finished by deleting again: the pointer, kept until last, still says where the data
/// was. (Garbage collection deletes again: the blob stays a tombstone until it succeeds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_delete_is_finished_by_the_next() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    let digest = Digest::of(b"to be deleted");
    s.create_upload("u1").await.unwrap();
    append(&s, "u1", 0, &[b"to be deleted"]).await;
    s.commit_upload("u1", &digest).await.unwrap();
    let data = s.data_key(&digest).await.unwrap().unwrap();
    raw(&bucket).delete(&Path::from(data)).await.unwrap();
    // The pointer outlived its data: reads say not found, not an error.
    assert!(matches!(s.read(&digest, None).await, Err(StoreError::NotFound)));
    s.delete(&digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), None);
    assert_eq!(keys(&bucket, "").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_content_twice_keeps_one_copy_and_empty_blobs_work() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    let digest = Digest::of(b"same");
    for id in ["u1", "u2"] {
        s.create_upload(id).await.unwrap();
        append(&s, id, 0, &[b"sa", b"me"]).await;
        s.commit_upload(id, &digest).await.unwrap();
    }
    assert_eq!(keys(&bucket, "data").await, vec!["data/u1".to_owned()]);
    assert_eq!(s.data_key(&digest).await.unwrap().as_deref(), Some("data/u1"));
    assert_eq!(keys(&bucket, "uploads").await, Vec::<String>::new());

    let empty = Digest::of(b"");
    s.create_upload("u3").await.unwrap();
    s.commit_upload("u3", &empty).await.unwrap();
    assert_eq!(s.stat(&empty).await.unwrap(), Some(0));
    assert!(collect(s.read(&empty, None).await.unwrap()).await.is_empty());

    s.delete(&digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), None);
    assert_eq!(keys(&bucket, "data/u1").await, Vec::<String>::new());
    s.delete(&digest).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_uploads_are_those_untouched_since() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let started = now();
    s.create_upload("old").await.unwrap();
    s.create_upload("committed").await.unwrap();
    s.commit_upload("committed", &Digest::of(b"")).await.unwrap();
    // S3 times have one-second resolution.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let middle = now();
    s.create_upload("new").await.unwrap();
    append(&s, "new", 0, &[b"x"]).await;
    assert_eq!(s.idle_uploads(started - 1).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.idle_uploads(middle).await.unwrap(), vec!["old".to_owned()]);
    assert_eq!(
        s.idle_uploads(now() + 2).await.unwrap(),
        vec!["new".to_owned(), "old".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_url_serves_the_blob() {
    let bucket = GarageNode::shared().fresh_bucket();
    let s = store(&bucket).await;
    let content = pattern(MIB + 3, 5);
    s.create_upload("u1").await.unwrap();
    append(&s, "u1", 0, &[&content]).await;
    let digest = Digest::of(&content);
    s.commit_upload("u1", &digest).await.unwrap();
    let url = s
        .download_url(&digest, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("S3 offers a URL");
    assert!(!url.contains(&bucket.secret_access_key));
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap() == content);
    assert!(matches!(
        s.download_url(&Digest::of(b"absent"), Duration::from_secs(60))
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn the_filesystem_store_offers_no_url() {
    let dir = tempfile::tempdir().unwrap();
    let fs = wharf_store::FsBlobStore::open(dir.path()).unwrap();
    let url = fs.download_url(&Digest::of(b"x"), Duration::from_secs(60)).await;
    assert!(matches!(url, Ok(None)));
}

/// A closed loopback port.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_names_what_is_wrong_and_never_the_secret() {
    let bucket = GarageNode::shared().fresh_bucket();
    let error = |c: S3Config| async move {
        match S3BlobStore::connect(c).await {
            Ok(_) => panic!("connect succeeded"),
            Err(e) => e.to_string(),
        }
    };

    let mut unreachable = config(&bucket);
    unreachable.endpoint = Some(dead_endpoint());
    let endpoint = unreachable.endpoint.clone().unwrap();
    let msg = error(unreachable).await;
    assert!(msg.contains(&endpoint) && msg.contains(&bucket.bucket), "{msg}");
    assert!(msg.contains("the endpoint did not answer"), "{msg}");
    assert!(!msg.contains(&bucket.secret_access_key), "{msg}");

    let mut missing = config(&bucket);
    missing.bucket = "no-such-bucket-here".into();
    let msg = error(missing).await;
    assert!(
        msg.contains("no-such-bucket-here") && msg.contains(&bucket.endpoint),
        "{msg}"
    );
    assert!(!msg.contains(&bucket.secret_access_key), "{msg}");

    let mut wrong_key = config(&bucket);
    wrong_key.secret_access_key = Some("0".repeat(64));
    let msg = error(wrong_key).await;
    assert!(msg.contains(&bucket.bucket), "{msg}");
    assert!(msg.contains("the credentials were refused"), "{msg}");
    assert!(!msg.contains(&"0".repeat(64)), "{msg}");

    let cfg = config(&bucket);
    assert!(!format!("{cfg:?}").contains(&bucket.secret_access_key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_different_part_sizes_share_an_upload() {
    let bucket = GarageNode::shared().fresh_bucket();
    let mut large = config(&bucket);
    large.part_size = 8 * MIB;
    let large = S3BlobStore::connect(large).await.unwrap();
    let small = store(&bucket).await;
    let content = pattern(7 * MIB + 8 * MIB + 3, 6);
    large.create_upload("u1").await.unwrap();
    // A 7 MiB tail on the 8 MiB replica is already more than the 5 MiB replica's part.
    let n = append(&large, "u1", 0, &[&content[..7 * MIB]]).await;
    let n = append(&small, "u1", n, &[&content[7 * MIB..]]).await;
    assert_eq!(n, content.len() as u64);
    let digest = Digest::of(&content);
    large.commit_upload("u1", &digest).await.unwrap();
    assert!(collect(small.read(&digest, None).await.unwrap()).await == content);
}
