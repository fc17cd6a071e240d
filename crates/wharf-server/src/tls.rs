//! TLS for the one listener: the operator's certificate, or a local CA and a server
//! certificate generated in the data directory so that HTTPS works from the first start.
//!
//! Generated material is split by who reads it. `<data>/tls/` holds certificates only
//! (`ca.crt`, `server.crt`): it is the folder users point clients at, and the containers
//! cert-dir convention (skopeo, podman, docker's `certs.d`) reads every `*.key` there as
//! a client key and every `*.cert` as a client certificate, failing on either without
//! its pair. The private keys and the bookkeeping beside them live in
//! `<data>/private/tls/` (directories 0700, files 0600).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::secrets::{private_dir, replace_file, replace_private_file, sync_dir};
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
    #[error("cannot read {setting} {path}: {error}")]
    ReadSetting {
        setting: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("{setting} {path} {problem}")]
    Content {
        setting: &'static str,
        path: String,
        problem: String,
    },
    #[error("tls.key {key} is not the key of the certificate in tls.cert {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// The generated CA clients must trust, when Wharf made its own certificates.
    pub generated_ca: Option<PathBuf>,
}

const CA_NAME: &str = "Wharf local CA";

/// Where the generated material lives, by who may read it.
struct Layout {
    /// `<data>/tls`: certificates only.
    public: PathBuf,
    /// `<data>/private/tls`: keys and the names the server certificate was issued for.
    private: PathBuf,
}

/// What lives in `private/tls/`; earlier versions kept these in `tls/`.
const PRIVATE_FILES: [&str; 3] = ["ca.key", "server.key", "server.names"];

impl Layout {
    fn new(data_dir: &Path) -> Self {
        Self {
            public: data_dir.join("tls"),
            private: data_dir.join("private").join("tls"),
        }
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

/// Host names the generated certificate covers: loopback plus the configured names.
fn subject_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    for h in &config.public_hosts {
        // Strip a :port (but keep IPv6 literals intact).
        let host = match h.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest).to_owned(),
            None => h.rsplit_once(':').map_or(h.as_str(), |(host, _)| host).to_owned(),
        };
        if !names.contains(&host) {
            names.push(host);
        }
    }
    names
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read(path.display().to_string(), e.to_string()))
}

fn write_public(path: &Path, text: &str) -> Result<(), TlsError> {
    replace_file(path, text.as_bytes(), 0o644).map_err(|e| TlsError::Write(path.display().to_string(), e))
}

fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    replace_private_file(path, text.as_bytes()).map_err(|e| TlsError::Write(path.display().to_string(), e))
}

/// Move what earlier versions kept in `tls/` beside the certificates to `private/tls/`.
/// Each file is first written whole at its new place (see `replace_private_file`) and
/// only then removed from the old one, so a crash at any point leaves a complete copy
/// in at least one of the two, and the next start finishes the move. A copy already at
/// the new place can only be complete, so it wins.
fn move_private_files(layout: &Layout) -> Result<(), TlsError> {
    for name in PRIVATE_FILES {
        let old = layout.public.join(name);
        let new = layout.private.join(name);
        let bytes = match std::fs::read(&old) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(TlsError::Read(old.display().to_string(), e.to_string())),
        };
        if !new.exists() {
            replace_private_file(&new, &bytes).map_err(|e| TlsError::Write(new.display().to_string(), e))?;
        }
        std::fs::remove_file(&old)
            .and_then(|()| sync_dir(&layout.public))
            .map_err(|e| TlsError::Write(old.display().to_string(), e))?;
        tracing::info!(from = %old.display(), to = %new.display(), "moved a private TLS file out of the certificate folder");
    }
    Ok(())
}

/// Create the CA once; (re)issue the server certificate when the configured names change.
fn ensure_generated(config: &Config) -> Result<(PathBuf, PathBuf, PathBuf), TlsError> {
    let layout = Layout::new(&config.data_dir);
    std::fs::create_dir_all(&layout.public)
        .map_err(|e| TlsError::Write(layout.public.display().to_string(), e))?;
    for dir in [
        layout.private.parent().unwrap_or(&layout.private),
        &layout.private,
    ] {
        private_dir(dir).map_err(|e| TlsError::Write(dir.display().to_string(), e))?;
    }
    move_private_files(&layout)?;
    let (ca_crt, srv_crt) = (layout.public.join("ca.crt"), layout.public.join("server.crt"));
    let (ca_key, srv_key, names_file) = (
        layout.private.join("ca.key"),
        layout.private.join("server.key"),
        layout.private.join("server.names"),
    );
    let ca_keypair = if ca_key.exists() {
        KeyPair::from_pem(&read(&ca_key)?)?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        // Certificate first: the key's presence is what says the CA is complete.
        write_public(&ca_crt, &cert.pem())?;
        write_private(&ca_key, &key.serialize_pem())?;
        key
    };
    let names = subject_names(config);
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&names_file).unwrap_or_default();
    if current != wanted || !srv_crt.exists() || !srv_key.exists() {
        let issuer = Issuer::new(ca_params()?, ca_keypair);
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "wharf");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        // Names last: until they are written, a crash in between means a reissue.
        write_private(&srv_key, &key.serialize_pem())?;
        write_public(&srv_crt, &cert.pem())?;
        write_private(&names_file, &wanted)?;
    }
    Ok((srv_crt, srv_key, ca_crt))
}

/// aws-lc-rs for key exchange (incl. the post-quantum hybrid), certificates and
/// randomness; ring's AES-GCM for the bulk record protection, because on CPUs with
/// VAES it seals and opens twice as fast as aws-lc's (measured here: 16 KiB records,
/// AES-128-GCM 6.3–7.9 vs 3.3–3.6 GB/s), and every blob byte goes through it.
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::cipher_suite as ring_suite;
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            ring_suite::TLS13_AES_128_GCM_SHA256,
            ring_suite::TLS13_AES_256_GCM_SHA384,
            ring_suite::TLS13_CHACHA20_POLY1305_SHA256,
            ring_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ring_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ring_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ring_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ring_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ring_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// The operator's certificate chain and key (`tls.cert`, `tls.key`), read and checked
/// — PEM, a certificate and a private key, the key the certificate's — before the server
/// creates anything, so a wrong path or file fails the start with nothing left behind.
/// `None` when none is configured.
pub fn load_configured(config: &Config) -> Result<Option<TlsSetup>, TlsError> {
    if config.tls.cert.is_empty() {
        return Ok(None);
    }
    let (cert_path, key_path) = (Path::new(&config.tls.cert), Path::new(&config.tls.key));
    let read = |setting, path: &Path| {
        std::fs::read(path).map_err(|error| TlsError::ReadSetting {
            setting,
            path: path.display().to_string(),
            error,
        })
    };
    let content = |setting, path: &Path, problem: String| TlsError::Content {
        setting,
        path: path.display().to_string(),
        problem,
    };
    let cert_pem = read("tls.cert", cert_path)?;
    let key_pem = read("tls.key", key_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| content("tls.cert", cert_path, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            "tls.cert",
            cert_path,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => content(
            "tls.key",
            key_path,
            "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".into(),
        ),
        e => content("tls.key", key_path, format!("is not valid PEM: {e}")),
    })?;
    let config = server_config(certs, key).map_err(|e| match e {
        TlsError::Rustls(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            TlsError::KeyMismatch {
                cert: cert_path.display().to_string(),
                key: key_path.display().to_string(),
            }
        }
        e => e,
    })?;
    Ok(Some(TlsSetup {
        config,
        generated_ca: None,
    }))
}

/// The local CA and server certificate under the data directory, created or reissued as
/// needed, keys moved out of `tls/` where an earlier version left them.
pub fn generated(config: &Config) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, ca) = ensure_generated(config)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Read(cert_path.display().to_string(), e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| TlsError::Read(key_path.display().to_string(), e.to_string()))?;
    Ok(TlsSetup {
        config: server_config(certs, key)?,
        generated_ca: Some(ca),
    })
}

/// The operator's certificate when one is configured, else the generated one.
pub fn setup(config: &Config) -> Result<TlsSetup, TlsError> {
    match load_configured(config)? {
        Some(setup) => Ok(setup),
        None => generated(config),
    }
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut server = ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Our order, not the client's: curl and docker list AES-256 first, which costs
    // ~15% more per byte here than AES-128 for no practical gain in safety.
    server.ignore_client_order = true;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ClientConnection;
    use rustls::pki_types::ServerName;

    /// Completes a handshake in memory between a client with `client_suites` (in its order
    /// of preference) and Wharf's generated server configuration.
    fn negotiate(client_suites: Vec<rustls::SupportedCipherSuite>) -> rustls::CipherSuite {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let setup = setup(&config).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(setup.generated_ca.unwrap()).unwrap();
        roots.add(ca).unwrap();
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: client_suites,
            ..rustls::crypto::aws_lc_rs::default_provider()
        };
        let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut server = rustls::ServerConnection::new(setup.config).unwrap();
        while client.is_handshaking() || server.is_handshaking() {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            wire.clear();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut wire.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        server.negotiated_cipher_suite().unwrap().suite()
    }

    #[test]
    fn aes_128_gcm_is_chosen_even_when_the_client_prefers_aes_256() {
        use rustls::crypto::aws_lc_rs::cipher_suite as suite;
        let chosen = negotiate(vec![
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
            suite::TLS13_AES_128_GCM_SHA256,
        ]);
        assert_eq!(chosen, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        // A client without AES-128 still gets a connection.
        let chosen = negotiate(vec![suite::TLS13_CHACHA20_POLY1305_SHA256]);
        assert_eq!(chosen, rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_move_interrupted_at_any_point_is_finished_by_the_next_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        generated(&config).unwrap();
        let layout = Layout::new(dir.path());
        let before: Vec<Vec<u8>> = PRIVATE_FILES
            .iter()
            .map(|f| std::fs::read(layout.private.join(f)).unwrap())
            .collect();
        let ca = std::fs::read(layout.public.join("ca.crt")).unwrap();
        // A crash during the move: ca.key only half written under its temporary name,
        // server.key renamed into place but not yet removed from tls/, server.names not
        // started.
        for f in PRIVATE_FILES {
            std::fs::rename(layout.private.join(f), layout.public.join(f)).unwrap();
        }
        std::fs::write(layout.private.join("ca.key.tmp"), b"-----BEGIN PRIV").unwrap();
        std::fs::copy(
            layout.public.join("server.key"),
            layout.private.join("server.key"),
        )
        .unwrap();

        let again = generated(&config).unwrap();
        assert_eq!(names_in(&layout.public), ["ca.crt", "server.crt"]);
        assert_eq!(names_in(&layout.private), PRIVATE_FILES);
        for (f, bytes) in PRIVATE_FILES.iter().zip(&before) {
            let path = layout.private.join(f);
            assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{f}");
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(std::fs::read(again.generated_ca.unwrap()).unwrap(), ca);
    }
}
