//! Numbers for issue 12, not pass/fail checks: 1 GiB through `S3BlobStore` on Garage,
//! commit by completing the multipart upload in place versus a server-side copy, and the
//! peak RSS of this process while streaming. Run with
//! `cargo test -p wharf-store --test s3_bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
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

/// CPU seconds this process (not Garage) has used so far.
fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct it is given and nothing else.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// 16 MiB of incompressible bytes (registry layers are gzip'd already, so compressible
/// test data would flatter Garage's zstd).
fn pool() -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut out = Vec::with_capacity(16 * MIB);
    while out.len() < 16 * MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Chunk `n` of the test blob: a slice of the pool, stamped with `n` so chunks differ.
fn fill(buf: &mut BytesMut, pool: &[u8], n: usize) {
    buf.clear();
    let start = (n * 4099 * 64) % (pool.len() - MIB);
    buf.extend_from_slice(&pool[start..start + MIB]);
    buf[..8].copy_from_slice(&(n as u64).to_le_bytes());
}

/// What Garage takes in through object_store alone: 8 MiB parts one after another, no
/// hashing of our own. Distinct bytes per `seed` (Garage deduplicates identical blocks).
async fn baseline_upload(raw: &AmazonS3, pool: &[u8], key: &str, seed: usize) -> (Duration, f64) {
    let key = Path::from(key);
    let t = Instant::now();
    let cpu = cpu_s();
    let mp = raw.create_multipart(&key).await.unwrap();
    let mut parts = Vec::new();
    let mut chunk = BytesMut::with_capacity(MIB);
    for i in 0..GIB / (8 * MIB) {
        let mut part = BytesMut::with_capacity(8 * MIB);
        for j in 0..8 {
            fill(&mut chunk, pool, (seed << 40) + i * 8 + j);
            part.extend_from_slice(&chunk);
        }
        parts.push(raw.put_part(&key, &mp, i, part.freeze().into()).await.unwrap());
    }
    raw.complete_multipart(&key, &mp, parts).await.unwrap();
    (t.elapsed(), cpu_s() - cpu)
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

    let pool = pool();
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

    let (baseline, baseline_cpu) = baseline_upload(&raw, &pool, "baseline/1", 1).await;

    // Upload: one writer (one PATCH), 1 MiB chunks, buffers recycled as the server does.
    store.create_upload("big").await.unwrap();
    reset_peak_rss();
    let start_rss = peak_rss_mib();
    let t = Instant::now();
    let cpu = cpu_s();
    let mut hasher = Sha256::new();
    let mut w = store.upload_writer("big", 0).await.unwrap();
    for n in 0..GIB / MIB {
        let mut buf = w.spare_buffer().unwrap_or_else(|| BytesMut::with_capacity(MIB));
        fill(&mut buf, &pool, n);
        hasher.update(&buf);
        w.write(buf.freeze()).await.unwrap();
    }
    w.finish().await.unwrap();
    let upload = t.elapsed();
    let upload_cpu = cpu_s() - cpu;
    let upload_peak = peak_rss_mib();
    let digest = Digest::from_sha256(hasher.finalize().as_slice());

    let t = Instant::now();
    store.commit_upload("big", &digest).await.unwrap();
    let commit = t.elapsed();

    // Download, hashing to check the bytes.
    reset_peak_rss();
    let t = Instant::now();
    let cpu = cpu_s();
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
    let download_cpu = cpu_s() - cpu;
    let download_peak = peak_rss_mib();
    assert_eq!(total, GIB);
    assert_eq!(Digest::from_sha256(check.finalize().as_slice()), digest);

    // Again, to see how much Garage's own state (writeback of the earlier GiBs) moves it.
    let (baseline2, baseline2_cpu) = baseline_upload(&raw, &pool, "baseline/2", 2).await;

    // The alternative commit: a server-side copy of the completed object.
    let data = Path::from(store.data_key(&digest).await.unwrap().unwrap());
    let t = Instant::now();
    raw.copy(&data, &Path::from("copied/big")).await.unwrap();
    let copy = t.elapsed();

    // What the store's own SHA-256 pass costs per GiB on this CPU.
    let mut buf = BytesMut::with_capacity(MIB);
    fill(&mut buf, &pool, 7);
    let t = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..GIB / MIB {
        h.update(&buf);
    }
    let _ = h.finalize();
    let sha = t.elapsed();

    // What the pointer costs: one small GET per stat (and per read, before the data).
    let t = Instant::now();
    for _ in 0..100 {
        store.stat(&digest).await.unwrap().unwrap();
    }
    let stat = t.elapsed() / 100;

    // Conformance-test style: many one-byte PATCHes, each a writer opened at the
    // acknowledged offset and finished.
    store.create_upload("tiny").await.unwrap();
    let t = Instant::now();
    for offset in 0..50u64 {
        let mut w = store.upload_writer("tiny", offset).await.unwrap();
        w.write(bytes::Bytes::from_static(b"x")).await.unwrap();
        w.finish().await.unwrap();
    }
    let tiny = t.elapsed() / 50;
    store
        .commit_upload("tiny", &Digest::of(&[b'x'; 50]))
        .await
        .unwrap();

    println!("1 GiB via S3BlobStore on Garage (loopback, part size 8 MiB, incompressible data):");
    println!(
        "  baseline {:>7.2} s  {:>6.0} MB/s  client CPU {baseline_cpu:.2} s  (object_store put_part alone, sequential 8 MiB parts)",
        baseline.as_secs_f64(),
        mb_per_s(GIB, baseline)
    );
    println!(
        "  baseline {:>7.2} s  {:>6.0} MB/s  client CPU {baseline2_cpu:.2} s  (again, after the store's upload)",
        baseline2.as_secs_f64(),
        mb_per_s(GIB, baseline2)
    );
    println!(
        "  upload   {:>7.2} s  {:>6.0} MB/s  client CPU {upload_cpu:.2} s (incl. the test's own chunk fill + SHA-256)  peak RSS {} MiB (started at {start_rss} MiB)",
        upload.as_secs_f64(),
        mb_per_s(GIB, upload),
        upload_peak
    );
    println!(
        "  commit   {:>7.3} s  (complete multipart in place + pointer)",
        commit.as_secs_f64()
    );
    println!(
        "  download {:>7.2} s  {:>6.0} MB/s  client CPU {download_cpu:.2} s (incl. the test's SHA-256)  peak RSS {} MiB, {frames} frames (avg {} KiB)",
        download.as_secs_f64(),
        mb_per_s(GIB, download),
        download_peak,
        GIB as u64 / frames / 1024
    );
    println!("  CopyObject of the 1 GiB object: {:.3} s", copy.as_secs_f64());
    println!("  SHA-256 of 1 GiB in memory: {:.3} s", sha.as_secs_f64());
    println!("  stat (pointer GET): {:.2} ms", stat.as_secs_f64() * 1e3);
    println!(
        "  one-byte PATCH (open at offset + write + finish): {:.2} ms",
        tiny.as_secs_f64() * 1e3
    );
}
