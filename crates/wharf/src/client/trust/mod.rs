//! `wharf trust`: signing images and managing signing keys without a daemon.
//!
//! `--format cosign` (`cosign.rs`, key files in `cosign_key.rs`) and `--format notation`
//! (`notation.rs`) write signatures in those tools' own formats through the registry API
//! (`registry.rs`). Docker Content Trust (`--format dct`, the default) is built elsewhere.

pub mod cosign;
mod cosign_key;
pub mod notation;
mod registry;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use self::registry::ImageRef;
use super::report::{CONFIG_FILE, INVALID_INPUT, Report, fail};
use super::session::{self, Session};
use crate::cli::{SignatureFormat, TrustArgs, TrustCommand, TrustKeyCommand};

/// One image to sign: the reference given, the digest it resolved to and how to describe
/// it in a signature.
pub struct SignTarget<'a> {
    pub image: &'a ImageRef,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// `host/repo:tag` (cosign's docker-reference).
    pub identity: String,
}

/// Refuse before writing anything when one of `paths` exists: a key is never overwritten.
fn refuse_existing(paths: &[&Path]) -> anyhow::Result<()> {
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "{} already exists; nothing was written (choose another NAME or move it away)",
                p.display()
            ),
        ));
    }
    Ok(())
}

/// Create each file new, readable by its owner only; on a failure the files already
/// written are removed again.
fn write_new_files(files: &[(&Path, &[u8])]) -> anyhow::Result<()> {
    let mut written: Vec<&Path> = Vec::new();
    for (path, bytes) in files {
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
        if let Err(e) = result {
            for done in &written {
                let _ = std::fs::remove_file(done);
            }
            return Err(fail(CONFIG_FILE, format!("cannot write {}: {e}", path.display())));
        }
        written.push(path);
    }
    Ok(())
}

/// The last component of a key's NAME (which may be a path), to name it in a policy.
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn not_on_this_branch() -> anyhow::Error {
    fail(
        INVALID_INPUT,
        "--format dct (Docker Content Trust) is not built on this branch; use --format cosign or --format notation",
    )
}

pub async fn run(args: TrustArgs) -> anyhow::Result<Report> {
    match args.command {
        TrustCommand::Key(TrustKeyCommand::Generate {
            name,
            format,
            cert,
            cert_key,
        }) => match format {
            SignatureFormat::Dct => Err(not_on_this_branch()),
            SignatureFormat::Cosign if cert.is_some() || cert_key.is_some() => Err(fail(
                INVALID_INPUT,
                "--cert and --cert-key are for --format notation",
            )),
            SignatureFormat::Cosign => cosign::generate(&name),
            SignatureFormat::Notation => notation::generate(&name, cert.as_deref(), cert_key.as_deref()),
        },
        TrustCommand::Sign {
            references,
            format,
            key,
            cert,
        } => {
            let server = (args.registry, args.server.ca_file);
            match format {
                SignatureFormat::Dct => Err(not_on_this_branch()),
                SignatureFormat::Cosign => {
                    let key =
                        key.ok_or_else(|| fail(INVALID_INPUT, "--format cosign needs --key NAME.key"))?;
                    if cert.is_some() {
                        return Err(fail(INVALID_INPUT, "--cert is for --format notation"));
                    }
                    sign(
                        &references,
                        Signer::Cosign(cosign::open_key_for_signing(&key)?),
                        server,
                    )
                    .await
                }
                SignatureFormat::Notation => {
                    let (Some(key), Some(cert)) = (key, cert) else {
                        return Err(fail(
                            INVALID_INPUT,
                            "--format notation needs --key NAME.key and --cert NAME.crt",
                        ));
                    };
                    sign(
                        &references,
                        Signer::Notation(notation::Signer::open(&key, &cert)?),
                        server,
                    )
                    .await
                }
            }
        }
    }
}

enum Signer {
    Cosign(cosign::Signer),
    Notation(notation::Signer),
}

/// Resolve every reference, then sign each digest once per reference. The key is opened
/// before this runs, so a wrong passphrase or a bad key pushes nothing.
async fn sign(
    references: &[String],
    signer: Signer,
    (registry, ca_file): (Option<String>, Option<PathBuf>),
) -> anyhow::Result<Report> {
    let images = references
        .iter()
        .map(|r| ImageRef::parse(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let registry = registry::common_registry(&images, registry)?;
    let mut repositories: Vec<&str> = images.iter().map(|i| i.repository.as_str()).collect();
    repositories.sort_unstable();
    repositories.dedup();
    let scopes: Vec<String> = repositories
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let s: Session = session::open(registry, ca_file, &scopes).await?;
    // Every reference resolved before the first signature is stored: a typo in the last
    // one leaves the registry as it was.
    let mut targets = Vec::new();
    for image in &images {
        let Some(m) = registry::manifest(&s, &image.repository, &image.reference).await? else {
            return Err(fail(
                "MANIFEST_UNKNOWN",
                format!("{} does not exist; nothing was signed", image.full(s.registry())),
            ));
        };
        targets.push(SignTarget {
            image,
            identity: cosign::identity(image, s.registry()),
            size: m.bytes.len() as u64,
            digest: m.digest,
            media_type: m.media_type,
        });
    }
    let (format, mut rows, mut lines) = (
        match signer {
            Signer::Cosign(_) => "cosign",
            Signer::Notation(_) => "notation",
        },
        Vec::new(),
        Vec::new(),
    );
    for t in &targets {
        let shown = t.image.full(s.registry());
        let (added, signature) = match &signer {
            Signer::Cosign(k) => (cosign::sign(&s, k, t).await?, cosign::signature_location(t)),
            Signer::Notation(k) => notation::sign(&s, k, t).await?,
        };
        lines.push(if added {
            format!("Signed {shown} ({}) with {format}: {signature}", t.digest)
        } else {
            format!(
                "{shown} ({}) already carries this key's {format} signature; nothing added",
                t.digest
            )
        });
        rows.push(json!({
            "reference": shown,
            "digest": t.digest,
            "signature": signature,
            "added": added,
        }));
    }
    Ok(Report::new(
        json!({"format": format, "signed": rows}),
        lines.join("\n"),
    ))
}
