//! What the fuzz targets share: the counting allocator behind the allocation bound,
//! and a fixed trust repository (fixed keys, so the harness can make signatures valid).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::{Value, json};
use wharf_tuf::metadata::format_go_time;
use wharf_tuf::update::sign_and_encode;
use wharf_tuf::{PrivateKey, PublicKey, Signer};

/// Counts the bytes live on this thread and their high-water mark. libFuzzer runs the
/// target on one thread, so a thread-local count is the target's own.
pub struct CountingAllocator;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes a parser may hold at once per input byte (serde_json's `Value` costs up to
/// ~100 bytes for a 2-byte `[]`, and a vector doubles), plus a fixed allowance for
/// the work any input costs (hashing, signing a generated timestamp, error strings).
pub const BYTES_PER_INPUT_BYTE: usize = 512;
pub const FIXED_ALLOWANCE: usize = 4 << 20;

/// Runs `f` and panics when the most it held allocated at once exceeds the bound for an
/// input of `input_len` bytes: parsing must never allocate more than a bound
/// proportional to its input.
pub fn within_allocation_bound<T>(what: &str, input_len: usize, f: impl FnOnce() -> T) -> T {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let used = PEAK.with(Cell::get).saturating_sub(start);
    let bound = FIXED_ALLOWANCE + BYTES_PER_INPUT_BYTE * input_len;
    assert!(
        used <= bound,
        "{what}: {used} bytes allocated at once for a {input_len}-byte input (bound {bound})"
    );
    out
}

/// The GUN of the fixed repository.
pub const GUN: &str = "example.com/fuzz";

/// A trust repository with a stored root: fixed Ed25519 keys for root, targets and one
/// delegation (held by the "client", i.e. the harness) and the server's snapshot and
/// timestamp keys. Fixed seeds, so their key IDs can appear in the seed corpus.
pub struct FixedRepo {
    pub now: DateTime<Utc>,
    pub root_key: PrivateKey,
    pub targets_key: PrivateKey,
    pub delegation_key: PrivateKey,
    pub server_keys: Vec<PrivateKey>,
    pub current: BTreeMap<String, Vec<u8>>,
}

fn fixed_key(seed: u8) -> PrivateKey {
    PrivateKey::from_raw("ed25519", &[seed; 32]).expect("fixed ed25519 seed")
}

pub static REPO: LazyLock<FixedRepo> = LazyLock::new(|| {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
    let root_key = fixed_key(1);
    let targets_key = fixed_key(2);
    let delegation_key = fixed_key(3);
    let snapshot_key = fixed_key(4);
    let timestamp_key = fixed_key(5);
    let keys: serde_json::Map<String, Value> = [&root_key, &targets_key, &snapshot_key, &timestamp_key]
        .iter()
        .map(|k| (k.key_id(), k.public_key().to_value()))
        .collect();
    let root = json!({"_type": "Root", "consistent_snapshot": false,
        "expires": format_go_time(now + chrono::Duration::days(3650)), "keys": keys, "version": 1,
        "roles": {"root": {"keyids": [root_key.key_id()], "threshold": 1},
                  "targets": {"keyids": [targets_key.key_id()], "threshold": 1},
                  "snapshot": {"keyids": [snapshot_key.key_id()], "threshold": 1},
                  "timestamp": {"keyids": [timestamp_key.key_id()], "threshold": 1}}});
    let root = sign_and_encode(&root, &[&root_key]).expect("sign fixed root");
    FixedRepo {
        now,
        root_key,
        targets_key,
        delegation_key,
        server_keys: vec![snapshot_key, timestamp_key],
        current: [("root".to_owned(), root)].into(),
    }
});

impl FixedRepo {
    /// Signs `signed` with every client key: the validator checks only the keys of
    /// the role, so whichever role the fuzzer names, its signature is valid when the
    /// role's keys are ours.
    pub fn sign_as_client(&self, signed: &Value) -> Option<Vec<u8>> {
        sign_and_encode(signed, &[&self.targets_key, &self.delegation_key, &self.root_key]).ok()
    }

    pub fn delegation_public(&self) -> &PublicKey {
        self.delegation_key.public_key()
    }
}
