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
//! of the private key, B64 standard base64 with padding. Neither scrypt nor NaCl's
//! secretbox (XSalsa20 + Poly1305) is among the workspace's crates and the build is
//! offline, so both are implemented here from their specifications (RFC 7914, the Salsa20
//! and XSalsa20 papers, RFC 8439 for Poly1305); the unit tests check them against
//! published vectors and against keys Python's `cryptography`/PyNaCl wrote.

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
    let key = scrypt(passphrase, &salt, SCRYPT_N, SCRYPT_R, SCRYPT_P);
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
    let key = scrypt(passphrase, &salt, n, r, p);
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
// scrypt (RFC 7914)

/// scrypt(passphrase, salt, N, r, p) → 32 bytes, the secretbox key.
fn scrypt(passphrase: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    scrypt_into(passphrase, salt, n, r, p, &mut out);
    out
}

fn pbkdf2_sha256(secret: &[u8], salt: &[u8], out: &mut [u8]) {
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(1).expect("one"),
        salt,
        secret,
        out,
    );
}

fn scrypt_into(passphrase: &[u8], salt: &[u8], n: u64, r: u32, p: u32, out: &mut [u8]) {
    let block_len = 128 * r as usize;
    let mut b = vec![0u8; block_len * p as usize];
    pbkdf2_sha256(passphrase, salt, &mut b);
    let words = 32 * r as usize;
    let mut x = vec![0u32; words];
    let mut v = vec![0u32; words * n as usize];
    let mut scratch = vec![0u32; words];
    for chunk in b.chunks_mut(block_len) {
        for (w, bytes) in x.iter_mut().zip(chunk.chunks(4)) {
            *w = u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
        }
        ro_mix(&mut x, &mut v, &mut scratch, n as usize, r as usize);
        for (w, bytes) in x.iter().zip(chunk.chunks_mut(4)) {
            bytes.copy_from_slice(&w.to_le_bytes());
        }
    }
    pbkdf2_sha256(passphrase, &b, out);
}

/// scryptROMix on one block `x` of 32·r words.
fn ro_mix(x: &mut [u32], v: &mut [u32], scratch: &mut [u32], n: usize, r: usize) {
    let words = x.len();
    for i in 0..n {
        v[i * words..(i + 1) * words].copy_from_slice(x);
        block_mix(x, scratch, r);
    }
    for _ in 0..n {
        // Integerify: the first word of the last 64-byte sub-block (N ≤ 2^32 here, so
        // the low word is enough for "mod N").
        let j = (x[(2 * r - 1) * 16] as usize) & (n - 1);
        for (a, b) in x.iter_mut().zip(&v[j * words..(j + 1) * words]) {
            *a ^= b;
        }
        block_mix(x, scratch, r);
    }
}

/// scryptBlockMix with Salsa20/8: the even outputs first, then the odd ones.
fn block_mix(b: &mut [u32], y: &mut [u32], r: usize) {
    let mut t = [0u32; 16];
    t.copy_from_slice(&b[(2 * r - 1) * 16..2 * r * 16]);
    for i in 0..2 * r {
        for (tw, bw) in t.iter_mut().zip(&b[i * 16..(i + 1) * 16]) {
            *tw ^= bw;
        }
        salsa_core(&mut t, 8, true);
        let at = if i % 2 == 0 { i / 2 } else { r + i / 2 };
        y[at * 16..(at + 1) * 16].copy_from_slice(&t);
    }
    b.copy_from_slice(y);
}

// ---------------------------------------------------------------------------------------
// Salsa20, HSalsa20, XSalsa20

fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[b] ^= x[a].wrapping_add(x[d]).rotate_left(7);
    x[c] ^= x[b].wrapping_add(x[a]).rotate_left(9);
    x[d] ^= x[c].wrapping_add(x[b]).rotate_left(13);
    x[a] ^= x[d].wrapping_add(x[c]).rotate_left(18);
}

/// The Salsa20 core with `rounds` rounds; with `add_input` the input is added to the
/// result (Salsa20 proper), without it the bare permutation HSalsa20 needs.
fn salsa_core(state: &mut [u32; 16], rounds: usize, add_input: bool) {
    let input = *state;
    for _ in 0..rounds / 2 {
        // Column round, then row round.
        quarter(state, 0, 4, 8, 12);
        quarter(state, 5, 9, 13, 1);
        quarter(state, 10, 14, 2, 6);
        quarter(state, 15, 3, 7, 11);
        quarter(state, 0, 1, 2, 3);
        quarter(state, 5, 6, 7, 4);
        quarter(state, 10, 11, 8, 9);
        quarter(state, 15, 12, 13, 14);
    }
    if add_input {
        for (s, i) in state.iter_mut().zip(input) {
            *s = s.wrapping_add(i);
        }
    }
}

/// "expand 32-byte k"
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn le_words<const N: usize>(bytes: &[u8]) -> [u32; N] {
    let mut out = [0u32; N];
    for (w, b) in out.iter_mut().zip(bytes.chunks(4)) {
        *w = u32::from_le_bytes(b.try_into().expect("4 bytes"));
    }
    out
}

fn salsa_input(key: &[u8; 32], middle: [u32; 4]) -> [u32; 16] {
    let k: [u32; 8] = le_words(key);
    [
        SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], middle[0], middle[1], middle[2], middle[3], SIGMA[2],
        k[4], k[5], k[6], k[7], SIGMA[3],
    ]
}

fn hsalsa20(key: &[u8; 32], nonce16: &[u8]) -> [u8; 32] {
    let mut x = salsa_input(key, le_words(nonce16));
    salsa_core(&mut x, 20, false);
    let mut out = [0u8; 32];
    for (i, w) in [x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]]
        .iter()
        .enumerate()
    {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// XOR `data` with the XSalsa20 key stream of (key, nonce), from its first byte.
fn xsalsa20_xor(key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
    let subkey = hsalsa20(key, &nonce[..16]);
    let n: [u32; 2] = le_words(&nonce[16..]);
    for (counter, chunk) in data.chunks_mut(64).enumerate() {
        let c = counter as u64;
        let mut block = salsa_input(&subkey, [n[0], n[1], c as u32, (c >> 32) as u32]);
        salsa_core(&mut block, 20, true);
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte ^= block[i / 4].to_le_bytes()[i % 4];
        }
    }
}

// ---------------------------------------------------------------------------------------
// Poly1305 (RFC 8439 2.5), 26-bit limbs

fn poly1305(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    // r, clamped, in five 26-bit limbs.
    let r0 = le32(key, 0) & 0x03ff_ffff;
    let r1 = (le32(key, 3) >> 2) & 0x03ff_ff03;
    let r2 = (le32(key, 6) >> 4) & 0x03ff_c0ff;
    let r3 = (le32(key, 9) >> 6) & 0x03f0_3fff;
    let r4 = (le32(key, 12) >> 8) & 0x000f_ffff;
    let (s1, s2, s3, s4) = (r1 * 5, r2 * 5, r3 * 5, r4 * 5);
    let mut h = [0u32; 5];
    for chunk in msg.chunks(16) {
        let mut block = [0u8; 17];
        block[..chunk.len()].copy_from_slice(chunk);
        // The 2^128 (full block) or 2^(8·len) bit, as RFC 8439 appends a 1 byte.
        block[chunk.len()] = 1;
        h[0] += le32(&block, 0) & 0x03ff_ffff;
        h[1] += (le32(&block, 3) >> 2) & 0x03ff_ffff;
        h[2] += (le32(&block, 6) >> 4) & 0x03ff_ffff;
        h[3] += (le32(&block, 9) >> 6) & 0x03ff_ffff;
        h[4] += (le32(&block, 12) >> 8) | ((block[16] as u32) << 24);
        let m = |a: u32, b: u32| a as u64 * b as u64;
        let d0 = m(h[0], r0) + m(h[1], s4) + m(h[2], s3) + m(h[3], s2) + m(h[4], s1);
        let mut d1 = m(h[0], r1) + m(h[1], r0) + m(h[2], s4) + m(h[3], s3) + m(h[4], s2);
        let mut d2 = m(h[0], r2) + m(h[1], r1) + m(h[2], r0) + m(h[3], s4) + m(h[4], s3);
        let mut d3 = m(h[0], r3) + m(h[1], r2) + m(h[2], r1) + m(h[3], r0) + m(h[4], s4);
        let mut d4 = m(h[0], r4) + m(h[1], r3) + m(h[2], r2) + m(h[3], r1) + m(h[4], r0);
        let mut c = d0 >> 26;
        h[0] = (d0 as u32) & 0x03ff_ffff;
        d1 += c;
        c = d1 >> 26;
        h[1] = (d1 as u32) & 0x03ff_ffff;
        d2 += c;
        c = d2 >> 26;
        h[2] = (d2 as u32) & 0x03ff_ffff;
        d3 += c;
        c = d3 >> 26;
        h[3] = (d3 as u32) & 0x03ff_ffff;
        d4 += c;
        c = d4 >> 26;
        h[4] = (d4 as u32) & 0x03ff_ffff;
        h[0] += (c as u32) * 5;
        let c = h[0] >> 26;
        h[0] &= 0x03ff_ffff;
        h[1] += c;
    }
    // Full carry, then h mod 2^130 - 5.
    let mut c = h[1] >> 26;
    h[1] &= 0x03ff_ffff;
    for limb in h.iter_mut().skip(2) {
        *limb += c;
        c = *limb >> 26;
        *limb &= 0x03ff_ffff;
    }
    h[0] += c * 5;
    c = h[0] >> 26;
    h[0] &= 0x03ff_ffff;
    h[1] += c;
    let mut g = [0u32; 5];
    g[0] = h[0].wrapping_add(5);
    c = g[0] >> 26;
    g[0] &= 0x03ff_ffff;
    for i in 1..5 {
        g[i] = h[i].wrapping_add(c);
        c = g[i] >> 26;
        g[i] &= 0x03ff_ffff;
    }
    g[4] = g[4].wrapping_sub(1 << 26).wrapping_add(c << 26);
    // g4's top bit set: h + 5 < 2^130, so h is already reduced; keep h. Chosen by mask,
    // without a branch on secret data.
    let use_g = (g[4] >> 31).wrapping_sub(1);
    for i in 0..5 {
        h[i] = (h[i] & !use_g) | (g[i] & use_g & 0x03ff_ffff);
    }
    let words = [
        h[0] | (h[1] << 26),
        (h[1] >> 6) | (h[2] << 20),
        (h[2] >> 12) | (h[3] << 14),
        (h[3] >> 18) | (h[4] << 8),
    ];
    let mut out = [0u8; 16];
    let mut carry = 0u64;
    for i in 0..4 {
        let f = words[i] as u64 + le32(key, 16 + i * 4) as u64 + carry;
        out[i * 4..i * 4 + 4].copy_from_slice(&(f as u32).to_le_bytes());
        carry = f >> 32;
    }
    out
}

// ---------------------------------------------------------------------------------------
// NaCl crypto_secretbox (XSalsa20-Poly1305): tag ‖ ciphertext, as Go's secretbox.Seal
// writes it (without the nonce).

fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], plaintext: &[u8]) -> Vec<u8> {
    // The first 32 bytes of the key stream are the Poly1305 key; the message is encrypted
    // with the stream from byte 32 on.
    let mut buf = vec![0u8; 32 + plaintext.len()];
    buf[32..].copy_from_slice(plaintext);
    xsalsa20_xor(key, nonce, &mut buf);
    let poly_key: [u8; 32] = buf[..32].try_into().expect("32 bytes");
    let tag = poly1305(&poly_key, &buf[32..]);
    let mut out = tag.to_vec();
    out.extend_from_slice(&buf[32..]);
    out
}

fn secretbox_open(key: &[u8; 32], nonce: &[u8; 24], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 16 {
        return None;
    }
    let (tag, ciphertext) = sealed.split_at(16);
    let mut buf = vec![0u8; 32 + ciphertext.len()];
    buf[32..].copy_from_slice(ciphertext);
    let mut poly_key = [0u8; 32];
    xsalsa20_xor(key, nonce, &mut poly_key);
    let expected = poly1305(&poly_key, ciphertext);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&expected, tag).is_err() {
        return None;
    }
    xsalsa20_xor(key, nonce, &mut buf);
    Some(buf.split_off(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    #[test]
    fn poly1305_matches_rfc_8439() {
        // RFC 8439 2.5.2.
        let key: [u8; 32] = unhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
            .try_into()
            .unwrap();
        let tag = poly1305(&key, b"Cryptographic Forum Research Group");
        assert_eq!(hex::encode(tag), "a8061dc1305136c6c22b8baf0c0127a9");
    }

    #[test]
    fn scrypt_matches_rfc_7914() {
        // RFC 7914 section 12, the second and third vectors.
        let mut out = [0u8; 64];
        scrypt_into(b"password", b"NaCl", 1024, 8, 16, &mut out);
        assert_eq!(
            hex::encode(out),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
        scrypt_into(b"", b"", 16, 1, 1, &mut out);
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
