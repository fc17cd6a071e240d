//! Numbers for issue 12, not pass/fail checks: 1 GiB through `S3BlobStore` on Garage,
//! commit by completing the multipart upload in place versus a server-side copy, and the
//! peak RSS of this process while streaming. Run with
//! `cargo test -p wharf-store --test s3_bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use sha2::{Digest as _, Sha256};
use wharf_store::{BlobStore, Digest, S3BlobStore, S3Config};
use wharf_testbed::garage::GarageNode;

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// Peak resident set since the last reset, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn fill(buf: &mut BytesMut, n: usize) {
    buf.clear();
    let word = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    while buf.len() < MIB {
        buf.extend_from_slice(&word.to_le_bytes());
    }
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: 1 GiB through Garage, run by hand"]
async fn one_gib_through_garage() {
    let bucket = GarageNode::shared().fresh_bucket();
    let mut cfg = S3Config::new(Some(bucket.endpoint.clone()), &bucket.region, &bucket.bucket);
    cfg.access_key_id = Some(bucket.access_key_id.clone());
    cfg.secret_access_key = Some(bucket.secret_access_key.clone());
    cfg.allow_http = true;
    let store = S3BlobStore::connect(cfg).await.unwrap();

    // Upload: one writer (one PATCH), 1 MiB chunks, buffers recycled as the server does.
    store.create_upload("big").await.unwrap();
    reset_peak_rss();
    let start_rss = peak_rss_mib();
    let t = Instant::now();
    let mut hasher = Sha256::new();
    let mut w = store.upload_writer("big", 0).await.unwrap();
    for n in 0..GIB / MIB {
        let mut buf = w.spare_buffer().unwrap_or_else(|| BytesMut::with_capacity(MIB));
        fill(&mut buf, n);
        hasher.update(&buf);
        w.write(buf.freeze()).await.unwrap();
    }
    w.finish().await.unwrap();
    let upload = t.elapsed();
    let upload_peak = peak_rss_mib();
    let digest = Digest::from_sha256(hasher.finalize().as_slice());

    let t = Instant::now();
    store.commit_upload("big", &digest).await.unwrap();
    let commit = t.elapsed();

    // Download, hashing to check the bytes.
    reset_peak_rss();
    let t = Instant::now();
    let mut stream = store.read(&digest, None).await.unwrap();
    let mut check = Sha256::new();
    let mut frames = 0u64;
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        frames += 1;
        total += chunk.len();
        check.update(&chunk);
    }
    let download = t.elapsed();
    let download_peak = peak_rss_mib();
    assert_eq!(total, GIB);
    assert_eq!(Digest::from_sha256(check.finalize().as_slice()), digest);

    // The alternative commit: a server-side copy of the completed object.
    let raw = AmazonS3Builder::new()
        .with_endpoint(&bucket.endpoint)
        .with_region(&bucket.region)
        .with_bucket_name(&bucket.bucket)
        .with_access_key_id(&bucket.access_key_id)
        .with_secret_access_key(&bucket.secret_access_key)
        .with_allow_http(true)
        .with_client_options(
            object_store::ClientOptions::new()
                .with_timeout_disabled()
                .with_allow_http(true),
        )
        .build()
        .unwrap();
    let data = Path::from(store.data_key(&digest).await.unwrap().unwrap());
    let t = Instant::now();
    raw.copy(&data, &Path::from("copied/big")).await.unwrap();
    let copy = t.elapsed();

    // What the store's own SHA-256 pass costs per GiB on this CPU.
    let mut buf = BytesMut::with_capacity(MIB);
    fill(&mut buf, 7);
    let t = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..GIB / MIB {
        h.update(&buf);
    }
    let _ = h.finalize();
    let sha = t.elapsed();

    println!("1 GiB via S3BlobStore on Garage (loopback, part size 8 MiB):");
    println!(
        "  upload   {:>7.2} s  {:>6.0} MB/s  peak RSS {} MiB (started at {start_rss} MiB)",
        upload.as_secs_f64(),
        mb_per_s(GIB, upload),
        upload_peak
    );
    println!(
        "  commit   {:>7.3} s  (complete multipart in place + pointer)",
        commit.as_secs_f64()
    );
    println!(
        "  download {:>7.2} s  {:>6.0} MB/s  peak RSS {} MiB, {frames} frames (avg {} KiB)",
        download.as_secs_f64(),
        mb_per_s(GIB, download),
        download_peak,
        GIB as u64 / frames / 1024
    );
    println!("  CopyObject of the 1 GiB object: {:.3} s", copy.as_secs_f64());
    println!("  SHA-256 of 1 GiB in memory: {:.3} s", sha.as_secs_f64());
}
