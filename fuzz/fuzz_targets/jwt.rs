//! Access-token (ES256 JWT) parsing and verification: `auth::token::TokenKeySet::verify`.
//! The first byte picks the mode, the second the clock-skew leeway:
//! 0. the rest is a token: it never verifies (the fuzzer cannot forge a signature);
//! 1. the rest is the payload of a token the harness signs validly with the current key:
//!    it verifies exactly when the payload is claims for our issuer and audience inside
//!    the validity window (widened by the leeway) — computed here without overflow;
//! 2. the rest is the header of a validly signed token with good claims: it verifies
//!    only for `alg` ES256 and a `kid` of ours.
//!
//! Also: bounded allocation.
#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wharf_fuzz::within_allocation_bound;
use wharf_server::auth::token::{Claims, TokenKeySet, TokenSigner};

const ISSUER: &str = "wharf";
const AUDIENCE: &str = "reg.example.com";
const NOW: i64 = 1_800_000_000;

struct Keys {
    set: TokenKeySet,
    /// The current key again, to sign headers and payloads `TokenSigner` never writes.
    raw: EcdsaKeyPair,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let current = TokenSigner::generate_pkcs8().expect("key");
    let previous = TokenSigner::generate_pkcs8().expect("key");
    Keys {
        set: TokenKeySet {
            current: TokenSigner::from_pkcs8(&current, ISSUER).expect("current"),
            previous: Some(TokenSigner::from_pkcs8(&previous, ISSUER).expect("previous")),
        },
        raw: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &current).expect("raw key"),
    }
});

fn signed_token(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
    let sig = KEYS
        .raw
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("sign");
    format!("{input}.{}", B64URL.encode(sig.as_ref()))
}

fn good_header() -> Vec<u8> {
    serde_json::to_vec(&json!({"alg": "ES256", "typ": "JWT", "kid": KEYS.set.current.key_id()})).unwrap()
}

fn acceptable(claims: &Claims, leeway: i64) -> bool {
    let (now, leeway) = (i128::from(NOW), i128::from(leeway));
    claims.iss == ISSUER
        && claims.aud == AUDIENCE
        && now < i128::from(claims.exp) + leeway
        && now + leeway >= i128::from(claims.nbf)
}

fuzz_target!(|data: &[u8]| {
    let [mode, leeway, rest @ ..] = data else {
        return;
    };
    let leeway = i64::from(*leeway);
    let keys = &*KEYS;
    within_allocation_bound("jwt", data.len(), || match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            assert!(
                keys.set.verify(token, AUDIENCE, NOW, leeway).is_err(),
                "forged token verified"
            );
        }
        1 => {
            let token = signed_token(&good_header(), rest);
            let verified = keys.set.verify(&token, AUDIENCE, NOW, leeway);
            let expected = serde_json::from_slice::<Claims>(rest)
                .ok()
                .filter(|c| acceptable(c, leeway));
            assert_eq!(verified.ok(), expected, "verification disagrees with the claims");
        }
        _ => {
            let claims = json!({"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": NOW + 300,
                "nbf": NOW - 10, "iat": NOW - 10, "jti": "j", "access": []});
            let token = signed_token(rest, &serde_json::to_vec(&claims).unwrap());
            if keys.set.verify(&token, AUDIENCE, NOW, leeway).is_ok() {
                let header: Value = serde_json::from_slice(rest).expect("verified header is JSON");
                assert_eq!(header["alg"], "ES256");
                assert_eq!(header["kid"], keys.set.current.key_id());
            }
        }
    });
});
