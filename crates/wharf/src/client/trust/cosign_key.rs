//! cosign's encrypted private key file, written and read without cosign.
//!
//! The file is a PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY` as cosign 2.x writes it, or
//! `ENCRYPTED COSIGN PRIVATE KEY` as cosign 1.x and skopeo 1.9 expect) around a JSON
//! envelope:
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
//!  "cipher":{"name":"nacl/secretbox","nonce":B64},
//!  "ciphertext":B64}
//! ```
//!
//! The secretbox key is scrypt(passphrase, salt) (32 bytes), the plaintext the PKCS#8 DER
//! of the private key, B64 standard base64 with padding. scrypt and NaCl's secretbox
//! (XSalsa20 + Poly1305) come from the RustCrypto crates `scrypt` and `crypto_secretbox`
//! (reviewed implementations rather than our own); the unit tests pin them to published
//! vectors and to keys Python's `cryptography`/PyNaCl wrote.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// The PEM type cosign 1.x writes and skopeo 1.9 (containers/image 5.22) accepts; cosign
/// 2.x reads it too, so it is what wharf writes.
pub const PEM_TYPE_COSIGN: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// cosign 2.x's own label; read as well.
pub const PEM_TYPE_SIGSTORE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

/// The scrypt cost cosign writes.
const SCRYPT_N: u64 = 32768;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The largest cost accepted when reading (N·r bytes × 128 of memory): 1 GiB, far above
/// what cosign writes, low enough that a hostile file cannot exhaust memory.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("not a cosign private key: {0}")]
    Malformed(String),
    #[error("wrong passphrase for the cosign key (or the key file is damaged)")]
    WrongPassphrase,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The PEM file text of `pkcs8_der` sealed under `passphrase`.
pub fn encrypt(pkcs8_der: &[u8], passphrase: &[u8]) -> String {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    aws_lc_rs::rand::fill(&mut salt).expect("system randomness");
    aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
    let key = scrypt(passphrase, &salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        .expect("cosign's own scrypt parameters are valid");
    let sealed = secretbox_seal(&key, &nonce, pkcs8_der);
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                n: SCRYPT_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: BASE64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: BASE64.encode(nonce),
        },
        ciphertext: BASE64.encode(sealed),
    };
    let json = serde_json::to_vec(&envelope).expect("serializable");
    pem_encode(PEM_TYPE_COSIGN, &json)
}

/// The PKCS#8 DER inside a cosign key file.
pub fn decrypt(pem_text: &str, passphrase: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    let bad = |m: &str| KeyFileError::Malformed(m.to_owned());
    let (label, json) = pem_decode(pem_text).ok_or_else(|| bad("no PEM block"))?;
    if label != PEM_TYPE_COSIGN && label != PEM_TYPE_SIGSTORE {
        return Err(KeyFileError::Malformed(format!(
            "the PEM block is {label:?}, not {PEM_TYPE_SIGSTORE:?} or {PEM_TYPE_COSIGN:?}"
        )));
    }
    let env: Envelope = serde_json::from_slice(&json)
        .map_err(|e| KeyFileError::Malformed(format!("the envelope is not cosign's JSON: {e}")))?;
    if env.kdf.name != "scrypt" {
        return Err(KeyFileError::Malformed(format!(
            "key derivation {:?} is not scrypt",
            env.kdf.name
        )));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(KeyFileError::Malformed(format!(
            "cipher {:?} is not nacl/secretbox",
            env.cipher.name
        )));
    }
    let ScryptParams { n, r, p } = env.kdf.params;
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 || p > 16 {
        return Err(bad("the scrypt parameters are invalid"));
    }
    if n.saturating_mul(r as u64).saturating_mul(128) > MAX_SCRYPT_MEMORY {
        return Err(bad("the scrypt parameters ask for more than 1 GiB of memory"));
    }
    let b64 = |what: &str, s: &str| {
        BASE64
            .decode(s)
            .map_err(|e| KeyFileError::Malformed(format!("{what} is not base64: {e}")))
    };
    let salt = b64("the salt", &env.kdf.salt)?;
    let nonce: [u8; 24] = b64("the nonce", &env.cipher.nonce)?
        .try_into()
        .map_err(|_| bad("the nonce is not 24 bytes"))?;
    let sealed = b64("the ciphertext", &env.ciphertext)?;
    let key = scrypt(passphrase, &salt, n, r, p)?;
    secretbox_open(&key, &nonce, &sealed).ok_or(KeyFileError::WrongPassphrase)
}

// ---------------------------------------------------------------------------------------
// PEM

/// A PEM block, 64 characters a line.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The label and bytes of the first PEM block of `text`.
pub fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body_start = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body_start.find(&end_marker)?;
    let body: String = body_start[..body_end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = BASE64.decode(body).ok()?;
    Some((label.to_owned(), bytes))
}

// ---------------------------------------------------------------------------------------
// scrypt (RFC 7914) and NaCl crypto_secretbox (XSalsa20-Poly1305: tag ‖ ciphertext, as Go's
// secretbox.Seal writes it, without the nonce)

/// scrypt(passphrase, salt, N, r, p) → 32 bytes, the secretbox key. `n` is a power of two
/// (checked by the caller).
fn scrypt(passphrase: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> Result<[u8; 32], KeyFileError> {
    let mut out = [0u8; 32];
    scrypt_into(passphrase, salt, n, r, p, &mut out)?;
    Ok(out)
}

fn scrypt_into(
    passphrase: &[u8],
    salt: &[u8],
    n: u64,
    r: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), KeyFileError> {
    let invalid = || KeyFileError::Malformed("the scrypt parameters are invalid".into());
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| invalid())?;
    let params = ::scrypt::Params::new(log_n, r, p, out.len()).map_err(|_| invalid())?;
    ::scrypt::scrypt(passphrase, salt, &params, out).map_err(|_| invalid())
}

fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], plaintext: &[u8]) -> Vec<u8> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    crypto_secretbox::XSalsa20Poly1305::new(key.into())
        .encrypt(nonce.into(), plaintext)
        .expect("sealing in memory cannot fail")
}

fn secretbox_open(key: &[u8; 32], nonce: &[u8; 24], sealed: &[u8]) -> Option<Vec<u8>> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    crypto_secretbox::XSalsa20Poly1305::new(key.into())
        .decrypt(nonce.into(), sealed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    #[test]
    fn scrypt_matches_rfc_7914() {
        // RFC 7914 section 12, the second and third vectors.
        let mut out = [0u8; 64];
        scrypt_into(b"password", b"NaCl", 1024, 8, 16, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
        scrypt_into(b"", b"", 16, 1, 1, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        );
    }

    #[test]
    fn secretbox_matches_nacl() {
        // The test vector of NaCl's tests/secretbox.c (also Go's x/crypto secretbox test):
        // the first bytes of the box for the "firstkey"/"nonce" message.
        let key: [u8; 32] = unhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
            .try_into()
            .unwrap();
        let nonce: [u8; 24] = unhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
            .try_into()
            .unwrap();
        let message = unhex(
            "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705",
        );
        let sealed = secretbox_seal(&key, &nonce, &message);
        assert_eq!(
            hex::encode(&sealed[..32]),
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce"
        );
        assert_eq!(secretbox_open(&key, &nonce, &sealed).unwrap(), message);
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(secretbox_open(&key, &nonce, &tampered).is_none());
    }

    #[test]
    fn a_key_written_is_read_back_only_with_its_passphrase() {
        let secret = b"pkcs8 bytes stand-in".to_vec();
        let pem = encrypt(&secret, b"right");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
        assert_eq!(decrypt(&pem, b"right").unwrap(), secret);
        assert_eq!(decrypt(&pem, b"wrong"), Err(KeyFileError::WrongPassphrase));
        assert!(matches!(
            decrypt(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                b"x"
            ),
            Err(KeyFileError::Malformed(_))
        ));
    }
}
