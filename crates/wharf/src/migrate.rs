//! `wharf migrate --from OLD.toml --to NEW.toml [--force]`: move a single-machine
//! deployment (SQLite in `data_dir`, blobs on disk or in S3) to PostgreSQL and another
//! blob store. This side reads both configurations, checks that the move can work at all
//! (a SQLite source that exists, a PostgreSQL target, two different blob stores, one
//! key-encryption key), opens the stores as the server would and reports; the copy itself
//! is `wharf_store::transfer`, which says what is copied in what order and why.
//!
//! NEW.toml is read as `wharf serve --config NEW.toml` will read it, `WHARF_*` and `AWS_*`
//! environment included: the new deployment's secrets are meant to live there
//! (docs/deployment.md), and the operator runs `wharf migrate` with that environment.
//! OLD.toml is read alone, so the new deployment's `WHARF_DATABASE_URL` cannot turn the
//! source into the target; an old server that had its key-encryption key from the
//! environment needs it written into OLD.toml (the error says so).
//! The old server must be stopped first: SQLite is read in one snapshot, but writes a
//! running server makes after it would not move. The source is opened read-only and not
//! migrated, so an abandoned move leaves the old deployment as it was.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value, json};
use wharf_server::auth::secrets::KeyEncryptionKey;
use wharf_server::backends;
use wharf_server::config::Config;
use wharf_store::transfer::{self, Progress, TransferError, TransferReport};

use crate::cli::Output;
use crate::client::report::{self, Report, fail};

/// The target database already holds Wharf data (and `--force` was not given): a script
/// can tell "already migrated" from other failures.
pub const TARGET_NOT_EMPTY: &str = "TARGET_NOT_EMPTY";

/// Progress lines about blobs at most this often (plus the last one).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn migrate(from: PathBuf, to: PathBuf, force: bool, output: Output) -> anyhow::Result<Report> {
    let env = |k: &str| std::env::var(k).ok();
    let old = Config::load(Some(&from), |_| None).with_context(|| format!("--from {}", from.display()))?;
    let new = Config::load(Some(&to), env).with_context(|| format!("--to {}", to.display()))?;
    let (from_name, to_name) = (from.display().to_string(), to.display().to_string());

    if !old.database.url.is_empty() {
        return Err(fail(
            report::INVALID_INPUT,
            format!(
                "{from_name} names a PostgreSQL database: wharf migrate moves a SQLite deployment (no [database] url) to PostgreSQL"
            ),
        ));
    }
    let source_db = backends::sqlite_path(&old.data_dir);
    if !source_db.is_file() {
        return Err(fail(
            report::INVALID_INPUT,
            format!(
                "{from_name}: there is no database at {} (is data_dir right?)",
                source_db.display()
            ),
        ));
    }
    if new.database.url.is_empty() {
        return Err(fail(
            report::INVALID_INPUT,
            format!(
                "{to_name} names no PostgreSQL database: set [database] url to the database to move into"
            ),
        ));
    }
    if let Some(same) = same_blob_storage(&old, &new) {
        return Err(fail(
            report::INVALID_INPUT,
            format!(
                "{from_name} and {to_name} name the same blob storage ({same}): the target needs storage of its own"
            ),
        ));
    }
    check_same_kek(&old, &new, &from_name, &to_name)?;

    let show = output == Output::Table;
    if show {
        eprintln!(
            "Migrating {} and {} to {} and {}",
            source_db.display(),
            describe_storage(&old),
            wharf_server::config::redacted_url(&new.database.url),
            describe_storage(&new)
        );
    }
    // The target first: a wrong URL or bucket fails before the source is even opened.
    let target = backends::open_postgres(&new)
        .await
        .with_context(|| format!("target ({to_name})"))?;
    let target_blobs = backends::open_blobs(&new, &new.data_dir)
        .await
        .with_context(|| format!("target ({to_name})"))?;
    let source = backends::open_sqlite_read_only(&old.data_dir)
        .await
        .with_context(|| format!("source ({from_name})"))?;
    let source_blobs = backends::open_blobs(&old, &old.data_dir)
        .await
        .with_context(|| format!("source ({from_name})"))?;

    let started = Instant::now();
    let mut printer = ProgressPrinter::new(show);
    let result = transfer::migrate(
        &source,
        source_blobs.as_ref(),
        &target,
        target_blobs.as_ref(),
        force,
        &mut |p| printer.event(p),
    )
    .await;
    let done = match result {
        Ok(done) => done,
        Err(e @ TransferError::TargetNotEmpty(_)) => return Err(fail(TARGET_NOT_EMPTY, e.to_string())),
        Err(e) => {
            return Err(fail(
                report::CLI_ERROR,
                format!("migration stopped, no metadata was written (run it again to resume): {e}"),
            ));
        }
    };
    Ok(summary(&done, started.elapsed()))
}

/// Why two configurations share blob storage, if they do: copying a store onto itself
/// is never what the operator meant.
fn same_blob_storage(old: &Config, new: &Config) -> Option<String> {
    match (old.storage.backend.as_str(), new.storage.backend.as_str()) {
        ("s3", "s3") => {
            let (a, b) = (&old.storage.s3, &new.storage.s3);
            (a.endpoint == b.endpoint && a.bucket == b.bucket && a.prefix == b.prefix)
                .then(|| describe_storage(old))
        }
        ("s3", _) | (_, "s3") => None,
        _ => {
            // Resolved where it exists (links, `..`), else made absolute: a source without
            // a blob yet has no storage directory, and that must not hide the clash.
            let dir = |c: &Config| {
                let d = c.data_dir.join("storage");
                d.canonicalize()
                    .unwrap_or_else(|_| std::path::absolute(&d).unwrap_or(d))
            };
            let a = dir(old);
            (a == dir(new)).then(|| a.display().to_string())
        }
    }
}

fn describe_storage(c: &Config) -> String {
    if c.storage.backend == "s3" {
        let s3 = &c.storage.s3;
        let endpoint = if s3.endpoint.is_empty() {
            "AWS"
        } else {
            &s3.endpoint
        };
        let prefix = if s3.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", s3.prefix)
        };
        format!("S3 bucket {}{prefix} at {endpoint}", s3.bucket)
    } else {
        c.data_dir.join("storage").display().to_string()
    }
}

/// Keys sealed in the source's database (token signing, trust timestamp and snapshot
/// keys) open only with the key that sealed them, so the target must be configured with
/// the very same key-encryption key. Compared by sealing with one and opening with the
/// other: the keys themselves are never shown.
fn check_same_kek(old: &Config, new: &Config, from: &str, to: &str) -> anyhow::Result<()> {
    let old_file = old.data_dir.join("key-encryption-key");
    let source = KeyEncryptionKey::load(&old.security.key_encryption_key, &old_file)
        .with_context(|| format!("the key-encryption key of {from}"))?
        .ok_or_else(|| {
            fail(
                report::INVALID_INPUT,
                format!("{from}: no key-encryption key: neither security.key_encryption_key nor {} is set (an old server that read it from WHARF_SECURITY_KEY_ENCRYPTION_KEY: write it into {from})", old_file.display()),
            )
        })?;
    let where_old = if old.security.key_encryption_key.is_empty() {
        format!("the content of {}", old_file.display())
    } else {
        format!("security.key_encryption_key of {from}")
    };
    let new_file = new.data_dir.join("key-encryption-key");
    let target = KeyEncryptionKey::load(&new.security.key_encryption_key, &new_file)
        .with_context(|| format!("the key-encryption key of {to}"))?
        .ok_or_else(|| {
            fail(
                report::INVALID_INPUT,
                format!("{to} sets no key-encryption key: the keys sealed in the database open only with the source's, so set security.key_encryption_key (or WHARF_SECURITY_KEY_ENCRYPTION_KEY) to {where_old}"),
            )
        })?;
    const LABEL: &str = "wharf-migrate-key-check";
    let sealed = source.seal(LABEL, b"same key?").context("sealing a test value")?;
    if target.open(LABEL, &sealed).is_err() {
        return Err(fail(
            report::INVALID_INPUT,
            format!(
                "{to} has a different key-encryption key than {from}: the keys sealed in the database would not open; set its security.key_encryption_key to {where_old}"
            ),
        ));
    }
    Ok(())
}

/// Progress on standard error, for people only (JSON mode keeps standard error for the
/// error object): a line per table, and blob lines at most once a second.
struct ProgressPrinter {
    show: bool,
    terminal: bool,
    planned: (u64, u64),
    bytes_done: u64,
    last: Option<Instant>,
}

impl ProgressPrinter {
    fn new(show: bool) -> Self {
        Self {
            show,
            terminal: std::io::stderr().is_terminal(),
            planned: (0, 0),
            bytes_done: 0,
            last: None,
        }
    }

    fn event(&mut self, p: Progress<'_>) {
        if !self.show {
            return;
        }
        match p {
            Progress::BlobsPlanned { count, bytes } => {
                self.planned = (count, bytes);
                eprintln!("Blobs: {count} referenced, {}", human_bytes(bytes));
            }
            Progress::Blob { done, size, .. } => {
                self.bytes_done += size;
                let last = done == self.planned.0;
                if !last && self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
                    return;
                }
                self.last = Some(Instant::now());
                let line = format!(
                    "  blobs {done}/{}, {} of {}",
                    self.planned.0,
                    human_bytes(self.bytes_done),
                    human_bytes(self.planned.1)
                );
                // On a terminal the line is redrawn in place; in a log, one line each.
                if self.terminal && !last {
                    eprint!("\r{line}");
                    let _ = std::io::stderr().flush();
                } else if self.terminal {
                    eprintln!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            Progress::TargetEmptied => eprintln!("Target emptied (--force)"),
            Progress::Table { table, rows } => eprintln!("  table {table}: {rows} rows"),
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn summary(done: &TransferReport, elapsed: Duration) -> Report {
    let tables: Map<String, Value> = done
        .tables
        .iter()
        .map(|(t, n)| ((*t).to_owned(), json!(n)))
        .collect();
    let replaced: Map<String, Value> = done
        .replaced
        .iter()
        .map(|(t, n)| ((*t).to_owned(), json!(n)))
        .collect();
    let json = json!({
        "tables": tables,
        "blobs": {
            "copied": done.blobs_copied,
            "skipped": done.blobs_skipped,
            "bytes_copied": done.bytes_copied,
            "bytes_skipped": done.bytes_skipped,
        },
        "replaced": replaced,
        "seconds": elapsed.as_secs_f64(),
    });
    let mut text = format!(
        "Migrated in {:.1} s.\nBlobs: {} copied ({}), {} already there ({}).\n",
        elapsed.as_secs_f64(),
        done.blobs_copied,
        human_bytes(done.bytes_copied),
        done.blobs_skipped,
        human_bytes(done.bytes_skipped)
    );
    if !done.replaced.is_empty() {
        let what: Vec<String> = done.replaced.iter().map(|(t, n)| format!("{t} {n}")).collect();
        text.push_str(&format!("Replaced what the target held: {}.\n", what.join(", ")));
    }
    let items: Vec<Value> = done
        .tables
        .iter()
        .map(|(t, n)| json!({"table": t, "rows": n}))
        .collect();
    text.push_str(&report::table(
        &items,
        &[
            ("TABLE", &|v: &Value| {
                v["table"].as_str().unwrap_or_default().to_owned()
            }),
            ("ROWS", &|v: &Value| v["rows"].to_string()),
        ],
    ));
    Report::new(json, text).with_hint(
        "Uploads that were in flight were not moved (clients restart them). Start the new server(s) with the --to configuration.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_same_fs_storage_is_recognised_through_different_spellings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/storage")).unwrap();
        let a = Config {
            data_dir: dir.path().join("d"),
            ..Config::default()
        };
        let mut b = Config {
            data_dir: dir.path().join("d/../d"),
            ..Config::default()
        };
        assert!(same_blob_storage(&a, &b).is_some());
        b.data_dir = dir.path().join("other");
        assert!(same_blob_storage(&a, &b).is_none());
        // Not created yet (no blob stored): still the same place.
        let fresh = |d: &str| Config {
            data_dir: dir.path().join(d),
            ..Config::default()
        };
        assert!(same_blob_storage(&fresh("x"), &fresh("x")).is_some());
        b.storage.backend = "s3".into();
        assert!(same_blob_storage(&a, &b).is_none());
    }
}
