//! TLS for the one listener: the operator's certificate, or a local CA and a server
//! certificate generated under `<data>/tls/` so that HTTPS works from the first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::secrets::write_private_file;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
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
    std::fs::write(path, text).map_err(|e| TlsError::Write(path.display().to_string(), e))
}

/// Create the CA once; (re)issue the server certificate when the configured names change.
fn ensure_generated(config: &Config) -> Result<(PathBuf, PathBuf, PathBuf), TlsError> {
    let dir = config.data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| TlsError::Write(dir.display().to_string(), e))?;
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (srv_crt, srv_key, names_file) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.names"),
    );
    let ca_keypair = if ca_key.exists() {
        KeyPair::from_pem(&read(&ca_key)?)?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private_file(&ca_key, key.serialize_pem().as_bytes())
            .map_err(|e| TlsError::Write(ca_key.display().to_string(), e))?;
        write_public(&ca_crt, &cert.pem())?;
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
        let _ = std::fs::remove_file(&srv_key);
        write_private_file(&srv_key, key.serialize_pem().as_bytes())
            .map_err(|e| TlsError::Write(srv_key.display().to_string(), e))?;
        write_public(&srv_crt, &cert.pem())?;
        write_public(&names_file, &wanted)?;
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

pub fn setup(config: &Config) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, generated_ca) = if config.tls.cert.is_empty() {
        let (c, k, ca) = ensure_generated(config)?;
        (c, k, Some(ca))
    } else {
        (
            PathBuf::from(&config.tls.cert),
            PathBuf::from(&config.tls.key),
            None,
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Read(cert_path.display().to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Read(
            cert_path.display().to_string(),
            "no certificate in file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| TlsError::Read(key_path.display().to_string(), e.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Our order, not the client's: curl and docker list AES-256 first, which costs
    // ~15% more per byte here than AES-128 for no practical gain in safety.
    server.ignore_client_order = true;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(server),
        generated_ca,
    })
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
}
