//! Docker / notary private key files: `wharf_tuf::keyfile::decode_key_file` (PEM, PKCS#8
//! PBES2 / PBKDF2 / AES-256-CBC, plain PKCS#8, SEC1). The first byte picks the mode:
//! 0. the rest is the file's text, read with the passphrase `repopass` (the seeds are
//!    docker's own files encrypted with it, so mutants reach the decryption and the
//!    inner key parser);
//! 1. the rest is DER that the harness wraps in a PEM block (label picked by the second
//!    byte, headers `role: fuzz` and `gun: example.com/fuzz`), so libFuzzer mutates the
//!    ASN.1 directly instead of its base64.
//!
//! Properties: a key that decodes is written back by `encode_key_file`, both plain and
//! encrypted, and reads back as the same key (same key ID), role and gun; a public key
//! PEM can be written for any ECDSA key it accepts; bounded allocation.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::fuzz_target;
use wharf_fuzz::within_allocation_bound;
use wharf_tuf::keyfile::{
    EC_LABEL, ENCRYPTED_LABEL, KeyFile, PLAIN_LABEL, decode_key_file, encode_key_file,
    public_key_pem,
};
use wharf_tuf::{Signer as _, keys};

const PASSPHRASE: &str = "repopass";

fn pem_around(label_choice: u8, der: &[u8]) -> String {
    let label = [ENCRYPTED_LABEL, PLAIN_LABEL, EC_LABEL][usize::from(label_choice % 3)];
    let mut text = format!("-----BEGIN {label}-----\ngun: example.com/fuzz\nrole: fuzz\n\n");
    for line in B64.encode(der).as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn check_round_trip(file: &KeyFile) {
    let gun = file.gun.as_deref();
    let id = file.key.key_id();
    for passphrase in ["", "another passphrase"] {
        let text = encode_key_file(&file.key, &file.role, gun, passphrase)
            .expect("a key that was read can be written");
        let again = decode_key_file(&text, passphrase).expect("what we wrote reads back");
        assert_eq!(again.key.key_id(), id, "key changed in a round trip");
        assert_eq!(again.role, file.role, "role changed in a round trip");
        assert_eq!(again.gun, file.gun, "gun changed in a round trip");
    }
    if file.key.public_key().keytype == keys::ECDSA {
        public_key_pem(&file.key, &file.role).expect("ECDSA keys have a public PEM");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 2 {
        0 => match std::str::from_utf8(rest) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
        _ => {
            let Some((&label, der)) = rest.split_first() else {
                return;
            };
            pem_around(label, der)
        }
    };
    let decoded = within_allocation_bound("keyfile", text.len(), || {
        decode_key_file(&text, PASSPHRASE)
    });
    if let Ok(file) = decoded {
        check_round_trip(&file);
    }
});
