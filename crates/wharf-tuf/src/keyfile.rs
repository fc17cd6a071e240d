//! Private key files exactly as docker / notary 0.7 write and read them
//! (`$DOCKER_CONFIG/trust/private/<key id>.key`):
//!
//! * PEM block `ENCRYPTED PRIVATE KEY` (`PRIVATE KEY` when the passphrase is
//!   empty) with RFC 1421 headers `role: <role>` and, for repository keys,
//!   `gun: <gun>`, in Go `pem.Encode` layout (headers sorted, a blank line,
//!   64-column base64, `\n` line ends);
//! * PKCS#8 `EncryptedPrivateKeyInfo`, PBES2 with PBKDF2-HMAC-SHA1 (the PRF
//!   is left out, so the default applies), 8-byte salt, 2048 iterations, and
//!   AES-256-CBC with PKCS#7 padding — the only parameters Go notary's
//!   decoder accepts (it hard-codes SHA-1 and a 32-byte key);
//! * inside, a PKCS#8 `PrivateKeyInfo`: ECDSA P-256 with version 1 and a SEC1
//!   `ECPrivateKey`; Ed25519 with notary's own OID 1.3.6.1.4.1.11591.15.1 and
//!   its 96-byte blob (public key, then Go's 64-byte private key).
//!
//! The small DER reader/writer below only knows these structures: the
//! RustCrypto `pkcs8` crate refuses docker's files (PEM headers, version 1
//! without a public key), see the research notes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::keys;
use crate::signature::{PrivateKey, Signer as _};

/// What notary writes; also the most iterations we accept on reading, times
/// 1000, so a crafted file cannot make decryption run for minutes.
const PBKDF2_ITERATIONS: u32 = 2048;
const MAX_PBKDF2_ITERATIONS: u32 = 2_048_000;
const SALT_LEN: usize = 8;

const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const OID_HMAC_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07];
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// notary's non-standard Ed25519 OID (not RFC 8410's 1.3.101.112).
const OID_NOTARY_ED25519: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OBJECT_ID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;

pub const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";
pub const PLAIN_LABEL: &str = "PRIVATE KEY";
pub const EC_LABEL: &str = "EC PRIVATE KEY";

/// Why a key file could not be used. None of the messages contains key
/// material or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Not a PEM private key in one of the layouts docker writes.
    #[error("not a docker trust key file: {0}")]
    Malformed(String),
    /// Decryption produced no valid key: almost always the wrong passphrase.
    #[error("wrong passphrase (the key could not be decrypted)")]
    WrongPassphrase,
    /// A well-formed key of a kind wharf cannot sign with.
    #[error("unsupported key: {0}")]
    Unsupported(String),
}

/// A decoded key file.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// The `role:` header (`root`, `targets`, a signer name…); empty if absent.
    pub role: String,
    /// The `gun:` header of repository keys.
    pub gun: Option<String>,
    pub key: PrivateKey,
}

/// One PEM block: label, headers in file order, DER body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    pub headers: Vec<(String, String)>,
    pub der: Vec<u8>,
}

impl PemBlock {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the first PEM block, with RFC 1421 headers (`name: value` lines
/// before a blank line), tolerating CRLF and any base64 line width, like Go's
/// `pem.Decode`.
pub fn parse_pem(text: &str) -> Result<PemBlock, KeyFileError> {
    let bad = |why: &str| KeyFileError::Malformed(why.to_string());
    let start = text.find("-----BEGIN ").ok_or_else(|| bad("no PEM block"))?;
    let after = &text[start + 11..];
    let label_end = after.find("-----").ok_or_else(|| bad("bad PEM header line"))?;
    let label = after[..label_end].to_string();
    let body = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body
        .find(&end_marker)
        .ok_or_else(|| bad("unterminated PEM block"))?;
    let mut headers = Vec::new();
    let mut b64 = String::new();
    let mut in_headers = true;
    for line in body[..end].lines() {
        let line = line.trim_end_matches('\r');
        if in_headers {
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            in_headers = false;
        }
        b64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    let der = B64
        .decode(b64.as_bytes())
        .map_err(|_| bad("PEM body is not base64"))?;
    if der.is_empty() {
        return Err(bad("empty PEM block"));
    }
    Ok(PemBlock { label, headers, der })
}

/// Go `pem.Encode`: headers sorted by name, a blank line after them,
/// 64-column base64, `\n` line ends, final newline.
pub fn encode_pem(label: &str, headers: &[(&str, &str)], der: &[u8]) -> String {
    let mut sorted: Vec<_> = headers.to_vec();
    sorted.sort();
    let mut out = format!("-----BEGIN {label}-----\n");
    for (k, v) in &sorted {
        out.push_str(&format!("{k}: {v}\n"));
    }
    if !sorted.is_empty() {
        out.push('\n');
    }
    let b64 = B64.encode(der);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The key file docker would write for `key`: encrypted with `passphrase`
/// (a plain `PRIVATE KEY` block when it is empty, as notary does).
pub fn encode_key_file(
    key: &PrivateKey,
    role: &str,
    gun: Option<&str>,
    passphrase: &str,
) -> Result<String, KeyFileError> {
    let inner = private_key_info(key)?;
    let mut headers = vec![("role", role)];
    if let Some(g) = gun {
        headers.push(("gun", g));
    }
    if passphrase.is_empty() {
        return Ok(encode_pem(PLAIN_LABEL, &headers, &inner));
    }
    let salt: [u8; SALT_LEN] = random()?;
    let iv: [u8; 16] = random()?;
    let encrypted = encrypt(&inner, passphrase, &salt, &iv);
    let der = tlv(
        SEQUENCE,
        &[
            tlv(
                SEQUENCE,
                &[
                    tlv(OBJECT_ID, OID_PBES2),
                    tlv(
                        SEQUENCE,
                        &[
                            tlv(
                                SEQUENCE,
                                &[
                                    tlv(OBJECT_ID, OID_PBKDF2),
                                    tlv(
                                        SEQUENCE,
                                        &[tlv(OCTET_STRING, &salt), integer(PBKDF2_ITERATIONS)].concat(),
                                    ),
                                ]
                                .concat(),
                            ),
                            tlv(
                                SEQUENCE,
                                &[tlv(OBJECT_ID, OID_AES256_CBC), tlv(OCTET_STRING, &iv)].concat(),
                            ),
                        ]
                        .concat(),
                    ),
                ]
                .concat(),
            ),
            tlv(OCTET_STRING, &encrypted),
        ]
        .concat(),
    );
    Ok(encode_pem(ENCRYPTED_LABEL, &headers, &der))
}

/// Reads a key file (`ENCRYPTED PRIVATE KEY`, `PRIVATE KEY` or SEC1
/// `EC PRIVATE KEY`). `passphrase` is only used for an encrypted one.
pub fn decode_key_file(text: &str, passphrase: &str) -> Result<KeyFile, KeyFileError> {
    let block = parse_pem(text)?;
    let role = block.header("role").unwrap_or_default().to_string();
    let gun = block.header("gun").map(str::to_string);
    let key = match block.label.as_str() {
        ENCRYPTED_LABEL => {
            let inner = decrypt(&block.der, passphrase)?;
            // A wrong passphrase that happens to leave valid padding still
            // cannot produce a valid PrivateKeyInfo.
            parse_private_key_info(&inner).map_err(|e| match e {
                KeyFileError::Malformed(_) => KeyFileError::WrongPassphrase,
                other => other,
            })?
        }
        PLAIN_LABEL => parse_private_key_info(&block.der)?,
        EC_LABEL => parse_ec_private_key(&block.der)?,
        other => {
            return Err(KeyFileError::Malformed(format!(
                "PEM block is {other}, not a private key"
            )));
        }
    };
    Ok(KeyFile { role, gun, key })
}

/// `NAME.pub` as `docker trust key generate` writes it: the SPKI in a
/// `PUBLIC KEY` block with the header `role: NAME`.
pub fn public_key_pem(key: &PrivateKey, role: &str) -> Result<String, KeyFileError> {
    let public = key.public_key();
    if public.keytype != keys::ECDSA {
        return Err(KeyFileError::Unsupported(format!(
            "{} keys have no PEM public key form here",
            public.keytype
        )));
    }
    Ok(encode_pem("PUBLIC KEY", &[("role", role)], &public.public))
}

/// The key as an unencrypted RFC 5208 PrivateKeyInfo (version 0), for libraries that
/// refuse notary's version 1 without a public key (e.g. to build a root certificate).
pub fn pkcs8_der(key: &PrivateKey) -> Result<Vec<u8>, KeyFileError> {
    let mut der = private_key_info(key)?;
    // SEQUENCE header, then INTEGER version: `02 01 01` → `02 01 00`.
    let at = if der[1] & 0x80 != 0 {
        2 + usize::from(der[1] & 0x7f)
    } else {
        2
    };
    if der.get(at..at + 3) == Some(&[INTEGER, 1, 1][..]) {
        der[at + 2] = 0;
    }
    Ok(der)
}

fn random<const N: usize>() -> Result<[u8; N], KeyFileError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyFileError::Unsupported(format!("no randomness: {e}")))?;
    Ok(b)
}

fn derive_key(passphrase: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<sha1::Sha1, 32>(passphrase.as_bytes(), salt, iterations)
}

fn encrypt(plain: &[u8], passphrase: &str, salt: &[u8], iv: &[u8; 16]) -> Vec<u8> {
    use cbc::cipher::{BlockModeEncrypt as _, KeyIvInit as _, block_padding::Pkcs7};
    let key = derive_key(passphrase, salt, PBKDF2_ITERATIONS);
    cbc::Encryptor::<aes::Aes256>::new(&key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plain)
}

/// EncryptedPrivateKeyInfo → the DER PrivateKeyInfo inside.
fn decrypt(der: &[u8], passphrase: &str) -> Result<Vec<u8>, KeyFileError> {
    let bad = |why: &str| KeyFileError::Malformed(why.to_string());
    let mut outer = Der::new(der).sequence()?;
    let mut alg = outer.sequence()?;
    let encrypted = outer.expect(OCTET_STRING)?;
    if alg.expect(OBJECT_ID)? != OID_PBES2 {
        return Err(KeyFileError::Unsupported(
            "encryption scheme is not PBES2 (docker only writes PBES2)".into(),
        ));
    }
    let mut params = alg.sequence()?;
    let mut kdf = params.sequence()?;
    let mut cipher = params.sequence()?;
    if kdf.expect(OBJECT_ID)? != OID_PBKDF2 {
        return Err(KeyFileError::Unsupported("key derivation is not PBKDF2".into()));
    }
    let mut kdf_params = kdf.sequence()?;
    let salt = kdf_params.expect(OCTET_STRING)?;
    let iterations = parse_u32(kdf_params.expect(INTEGER)?)?;
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(bad("PBKDF2 iteration count out of range"));
    }
    // Optional keyLength (INTEGER) and PRF (SEQUENCE); notary leaves both out.
    while let Some((tag, value)) = kdf_params.next()? {
        match tag {
            INTEGER if parse_u32(value)? == 32 => {}
            SEQUENCE => {
                let mut prf = Der::new(value);
                if prf.expect(OBJECT_ID)? != OID_HMAC_SHA1 {
                    return Err(KeyFileError::Unsupported(
                        "PBKDF2 with a PRF other than HMAC-SHA1 (docker cannot read it either)".into(),
                    ));
                }
            }
            _ => return Err(bad("unexpected PBKDF2 parameter")),
        }
    }
    if cipher.expect(OBJECT_ID)? != OID_AES256_CBC {
        return Err(KeyFileError::Unsupported("cipher is not AES-256-CBC".into()));
    }
    let iv: [u8; 16] = cipher
        .expect(OCTET_STRING)?
        .try_into()
        .map_err(|_| bad("AES-CBC IV is not 16 bytes"))?;
    if encrypted.is_empty() || encrypted.len() % 16 != 0 {
        return Err(bad("encrypted key is not a whole number of AES blocks"));
    }
    use cbc::cipher::{BlockModeDecrypt as _, KeyIvInit as _, block_padding::Pkcs7};
    let key = derive_key(passphrase, salt, iterations);
    cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(encrypted)
        .map_err(|_| KeyFileError::WrongPassphrase)
}

/// PKCS#8 PrivateKeyInfo as notary writes it.
fn private_key_info(key: &PrivateKey) -> Result<Vec<u8>, KeyFileError> {
    let public = key.public_key();
    let secret = key.raw_secret();
    match public.keytype.as_str() {
        keys::ECDSA => {
            // A P-256 SPKI ends with the 65-byte uncompressed point.
            let point = &public.public[public.public.len().saturating_sub(65)..];
            let ec = tlv(
                SEQUENCE,
                &[
                    integer(1),
                    tlv(OCTET_STRING, &secret),
                    tlv(0xa0, &tlv(OBJECT_ID, OID_P256)),
                    tlv(0xa1, &tlv(BIT_STRING, &[&[0u8][..], point].concat())),
                ]
                .concat(),
            );
            Ok(tlv(
                SEQUENCE,
                &[
                    integer(1),
                    tlv(
                        SEQUENCE,
                        &[tlv(OBJECT_ID, OID_EC_PUBLIC_KEY), tlv(OBJECT_ID, OID_P256)].concat(),
                    ),
                    tlv(OCTET_STRING, &ec),
                ]
                .concat(),
            ))
        }
        keys::ED25519 => {
            // public || (seed || public): Go's ed25519.PrivateKey after the public key.
            let blob = [&public.public[..], &secret[..], &public.public[..]].concat();
            Ok(tlv(
                SEQUENCE,
                &[
                    integer(0),
                    tlv(SEQUENCE, &tlv(OBJECT_ID, OID_NOTARY_ED25519)),
                    tlv(OCTET_STRING, &blob),
                ]
                .concat(),
            ))
        }
        other => Err(KeyFileError::Unsupported(format!("{other} private keys"))),
    }
}

fn parse_private_key_info(der: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let bad = |why: &str| KeyFileError::Malformed(why.to_string());
    let mut info = Der::new(der).sequence()?;
    let version = parse_u32(info.expect(INTEGER)?)?;
    if version > 1 {
        return Err(bad("unknown PrivateKeyInfo version"));
    }
    let mut alg = info.sequence()?;
    let oid = alg.expect(OBJECT_ID)?;
    let private = info.expect(OCTET_STRING)?;
    if oid == OID_EC_PUBLIC_KEY {
        if alg.expect(OBJECT_ID)? != OID_P256 {
            return Err(KeyFileError::Unsupported("ECDSA curve other than P-256".into()));
        }
        parse_ec_private_key(private)
    } else if oid == OID_NOTARY_ED25519 {
        if private.len() != 96 {
            return Err(bad("ed25519 key blob is not 96 bytes"));
        }
        let key = PrivateKey::from_raw(keys::ED25519, &private[32..64])
            .map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        if key.public_key().public != private[..32] {
            return Err(bad("ed25519 public key does not match the private key"));
        }
        Ok(key)
    } else if oid == OID_RSA {
        Err(KeyFileError::Unsupported(
            "RSA private keys (wharf signs with ECDSA P-256 and Ed25519)".into(),
        ))
    } else {
        Err(KeyFileError::Unsupported("unknown private key algorithm".into()))
    }
}

/// SEC1 ECPrivateKey (P-256): the scalar, left-padded to 32 bytes.
fn parse_ec_private_key(der: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let mut ec = Der::new(der).sequence()?;
    if parse_u32(ec.expect(INTEGER)?)? != 1 {
        return Err(KeyFileError::Malformed("unknown ECPrivateKey version".into()));
    }
    let d = ec.expect(OCTET_STRING)?;
    if d.is_empty() || d.len() > 32 {
        return Err(KeyFileError::Unsupported("ECDSA key is not on P-256".into()));
    }
    let mut scalar = [0u8; 32];
    scalar[32 - d.len()..].copy_from_slice(d);
    while let Some((tag, value)) = ec.next()? {
        if tag == 0xa0 && Der::new(value).expect(OBJECT_ID)? != OID_P256 {
            return Err(KeyFileError::Unsupported("ECDSA curve other than P-256".into()));
        }
    }
    PrivateKey::from_raw(keys::ECDSA, &scalar).map_err(|e| KeyFileError::Malformed(e.to_string()))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative DER INTEGER.
fn integer(v: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = v.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(INTEGER, &bytes)
}

fn parse_u32(bytes: &[u8]) -> Result<u32, KeyFileError> {
    let bad = || KeyFileError::Malformed("integer out of range".into());
    if bytes.is_empty() || bytes[0] & 0x80 != 0 {
        return Err(bad());
    }
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.len() > 4 {
        return Err(bad());
    }
    Ok(trimmed.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// Sequential reader over DER content.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn next(&mut self) -> Result<Option<(u8, &'a [u8])>, KeyFileError> {
        let bad = || KeyFileError::Malformed("invalid DER".into());
        let Some((&tag, rest)) = self.rest.split_first() else {
            return Ok(None);
        };
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(bad());
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Ok(Some((tag, value)))
    }

    fn expect(&mut self, tag: u8) -> Result<&'a [u8], KeyFileError> {
        match self.next()? {
            Some((t, v)) if t == tag => Ok(v),
            _ => Err(KeyFileError::Malformed(format!("expected DER tag 0x{tag:02x}"))),
        }
    }

    fn sequence(&mut self) -> Result<Der<'a>, KeyFileError> {
        Ok(Der::new(self.expect(SEQUENCE)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `docker trust key generate alice` (docker 28.2.2) with the
    /// repository passphrase `repopass`; key ID = the file name docker chose.
    const DOCKER_ALICE: &str = include_str!("../tests/fixtures/docker-alice.key");
    const DOCKER_ALICE_ID: &str = "59260a354aba03f7061a839b2dbd75a4a40ae8943bf06513827afd33aa0404eb";
    const DOCKER_ALICE_PUB: &str = include_str!("../tests/fixtures/docker-alice.pub");

    #[test]
    fn reads_a_key_docker_wrote() {
        let f = decode_key_file(DOCKER_ALICE, "repopass").unwrap();
        assert_eq!(f.role, "alice");
        assert_eq!(f.gun, None);
        assert_eq!(f.key.key_id(), DOCKER_ALICE_ID);
        // The .pub docker wrote next to it is what we would write.
        assert_eq!(public_key_pem(&f.key, "alice").unwrap(), DOCKER_ALICE_PUB);
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let err = decode_key_file(DOCKER_ALICE, "not-the-passphrase").unwrap_err();
        assert_eq!(err, KeyFileError::WrongPassphrase);
        assert_eq!(
            err.to_string(),
            "wrong passphrase (the key could not be decrypted)"
        );
    }

    #[test]
    fn written_files_have_docker_layout_and_round_trip() {
        let key = PrivateKey::generate_p256().unwrap();
        let text = encode_key_file(&key, "targets", Some("localhost:5443/app"), "pw").unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_eq!(lines.next(), Some("gun: localhost:5443/app"));
        assert_eq!(lines.next(), Some("role: targets"));
        assert_eq!(lines.next(), Some(""));
        assert!(text.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
        // The same parameters as docker's own file: PBES2, PBKDF2 (8-byte
        // salt, 2048 iterations, no PRF), AES-256-CBC. The DER headers up to
        // the salt and from the iteration count to the IV are identical.
        let ours = parse_pem(&text).unwrap().der;
        let docker = parse_pem(DOCKER_ALICE).unwrap().der;
        assert_eq!(ours[3..35], docker[3..35]);
        assert_eq!(ours[43..62], docker[43..62]);
        let back = decode_key_file(&text, "pw").unwrap();
        assert_eq!(back.key.key_id(), key.key_id());
        assert_eq!(back.role, "targets");
        assert_eq!(back.gun.as_deref(), Some("localhost:5443/app"));

        let ed = PrivateKey::generate_ed25519().unwrap();
        let text = encode_key_file(&ed, "root", None, "pw").unwrap();
        assert_eq!(decode_key_file(&text, "pw").unwrap().key.key_id(), ed.key_id());

        let plain = encode_key_file(&key, "alice", None, "").unwrap();
        assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----\nrole: alice\n\n"));
        assert_eq!(
            decode_key_file(&plain, "ignored").unwrap().key.key_id(),
            key.key_id()
        );
    }

    #[test]
    fn inner_key_info_matches_docker_byte_for_byte() {
        // Decrypting docker's file and re-encoding the key gives the same
        // PrivateKeyInfo bytes (version 1, ECPrivateKey with curve and point).
        let block = parse_pem(DOCKER_ALICE).unwrap();
        let inner = decrypt(&block.der, "repopass").unwrap();
        let key = parse_private_key_info(&inner).unwrap();
        assert_eq!(private_key_info(&key).unwrap(), inner);
    }

    #[test]
    fn corrupted_files_are_refused() {
        for (text, want) in [
            ("", "not a docker trust key file: no PEM block"),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "not a docker trust key file: PEM block is PUBLIC KEY, not a private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: x\n\n!!!\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "not a docker trust key file: PEM body is not base64",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQE=\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "not a docker trust key file: expected DER tag 0x30",
            ),
        ] {
            assert_eq!(
                decode_key_file(text, "pw").unwrap_err().to_string(),
                want,
                "{text:?}"
            );
        }
        // Truncated: the body cut in half.
        let cut = DOCKER_ALICE.replace("dA==\n", "");
        assert!(matches!(
            decode_key_file(&cut, "repopass").unwrap_err(),
            KeyFileError::Malformed(_) | KeyFileError::WrongPassphrase
        ));
    }
}
