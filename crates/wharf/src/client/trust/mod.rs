//! `wharf trust`: signing images and managing signing keys without a daemon.
//!
//! Docker Content Trust (`--format dct`, the default): `sign.rs`, `inspect.rs`,
//! `revoke.rs`, keys in docker's own store (`keystore.rs`, `key.rs`), so docker and wharf
//! can take turns signing the same repositories. `--format cosign` (`cosign.rs`, key files
//! in `cosign_key.rs`) and `--format notation` (`notation.rs`) write signatures in those
//! tools' own formats through the registry API (`registry.rs`). `backup.rs`: one encrypted
//! file of every key in docker's store, and its restore. `copy.rs`: signed images and their
//! trust data from another registry into this one.

pub mod backup;
mod copy;
pub mod cosign;
mod cosign_key;
pub mod inspect;
pub mod key;
pub mod keystore;
mod migrate;
pub mod notation;
mod registry;
pub mod revoke;
mod rotate;
pub mod sign;
mod signer;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use self::registry::ImageRef;
use super::report::{CONFIG_FILE, INVALID_INPUT, Report, fail};
use super::session::{self, Session};
use crate::cli::{Output, SignatureFormat, Trust, TrustArgs, TrustKey, TrustSigner};

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

/// Refuse options that belong to another `--format`.
fn refuse_for_format(format: &str, options: &[(&str, bool)]) -> anyhow::Result<()> {
    match options.iter().find(|(_, given)| *given) {
        Some((option, _)) => Err(fail(
            INVALID_INPUT,
            format!("{option} is not for --format {format}"),
        )),
        None => Ok(()),
    }
}

pub async fn run(args: TrustArgs, output: Output) -> anyhow::Result<Report> {
    match args.command {
        Trust::Key(TrustKey::Generate {
            name,
            format,
            dir,
            cert,
            cert_key,
        }) => match format {
            SignatureFormat::Dct => {
                refuse_for_format(
                    "dct",
                    &[("--cert", cert.is_some()), ("--cert-key", cert_key.is_some())],
                )?;
                key::generate_in_store(&name, dir.as_deref())
            }
            SignatureFormat::Cosign => {
                refuse_for_format(
                    "cosign",
                    &[
                        ("--dir", dir.is_some()),
                        ("--cert", cert.is_some()),
                        ("--cert-key", cert_key.is_some()),
                    ],
                )?;
                cosign::generate(&name)
            }
            SignatureFormat::Notation => {
                refuse_for_format("notation", &[("--dir", dir.is_some())])?;
                notation::generate(&name, cert.as_deref(), cert_key.as_deref())
            }
        },
        Trust::Key(TrustKey::Rotate {
            repository,
            role,
            server_managed,
        }) => rotate::run(repository, role, server_managed).await,
        Trust::Key(k) => key::run(k),
        Trust::Signer(TrustSigner::Add {
            name,
            repositories,
            key,
        }) => signer::add(name, repositories, key).await,
        Trust::Signer(TrustSigner::Remove { name, repositories }) => signer::remove(name, repositories).await,
        Trust::Copy {
            source,
            destination,
            all_tags,
            source_trust_server,
            source_ca,
        } => {
            copy::run(copy::CopyRequest {
                source,
                destination,
                all_tags,
                source_trust_server,
                source_ca,
                destination_ca: args.server.ca_file,
            })
            .await
        }
        Trust::Inspect { references, pretty } => inspect::run(references, pretty).await,
        Trust::Revoke { reference, yes } => revoke::run(reference, yes, output).await,
        Trust::Sign {
            references,
            format,
            role,
            key,
            cert,
        } => {
            let server = (args.registry, args.server.ca_file);
            match format {
                SignatureFormat::Dct => {
                    refuse_for_format("dct", &[("--key", key.is_some()), ("--cert", cert.is_some())])?;
                    sign::run(references, role).await
                }
                SignatureFormat::Cosign | SignatureFormat::Notation => {
                    refuse_for_format(format_name(format), &[("--role", role.is_some())])?;
                    let signer = open_signer(format, key.as_deref(), cert.as_deref())?;
                    sign_images(&references, signer, server).await
                }
            }
        }
        Trust::Migrate {
            repositories,
            to,
            key,
            cert,
            dry_run,
        } => {
            if to == SignatureFormat::Dct {
                return Err(fail(
                    INVALID_INPUT,
                    "--to dct: migrate signs what Docker Content Trust signed with cosign or notation; choose one",
                ));
            }
            let signer = open_signer(to, key.as_deref(), cert.as_deref())?;
            migrate::run(&repositories, signer, dry_run, args.server.ca_file).await
        }
    }
}

fn format_name(format: SignatureFormat) -> &'static str {
    match format {
        SignatureFormat::Dct => "dct",
        SignatureFormat::Cosign => "cosign",
        SignatureFormat::Notation => "notation",
    }
}

/// The cosign or Notation key, opened (passphrase checked) before any request.
fn open_signer(format: SignatureFormat, key: Option<&Path>, cert: Option<&Path>) -> anyhow::Result<Signer> {
    match format {
        SignatureFormat::Cosign => {
            refuse_for_format("cosign", &[("--cert", cert.is_some())])?;
            let key = key.ok_or_else(|| fail(INVALID_INPUT, "--format cosign needs --key NAME.key"))?;
            Ok(Signer::Cosign(cosign::open_key_for_signing(key)?))
        }
        SignatureFormat::Notation => {
            let (Some(key), Some(cert)) = (key, cert) else {
                return Err(fail(
                    INVALID_INPUT,
                    "--format notation needs --key NAME.key and --cert NAME.crt",
                ));
            };
            Ok(Signer::Notation(notation::Signer::open(key, cert)?))
        }
        SignatureFormat::Dct => Err(fail(
            INVALID_INPUT,
            "Docker Content Trust keys live in the trust store, not in --key files",
        )),
    }
}

enum Signer {
    Cosign(cosign::Signer),
    Notation(notation::Signer),
}

/// cosign / notation: resolve every reference, then sign each digest once per reference.
/// The key is opened before this runs, so a wrong passphrase or a bad key pushes nothing.
async fn sign_images(
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
