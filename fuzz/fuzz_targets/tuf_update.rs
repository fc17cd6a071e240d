//! The full update validation with valid signatures. The input is a JSON object
//! `{"<role>": <signed object>, …}`; the harness signs each `signed` with the fixed
//! client keys (so a role whose keys are ours verifies), writes the file in a
//! non-canonical layout (pretty-printed, members reordered) and validates the update
//! against the fixed repository.
//! Properties: an accepted update re-validates identically after a canonical round
//! trip of every uploaded file (same files, versions and signed content); bounded
//! allocation. (Whether a client verifies what was accepted needs a root certificate
//! for the fixed root key: the stored root is trusted as stored, clients want x509.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wharf_fuzz::{GUN, REPO, within_allocation_bound};
use wharf_tuf::metadata::{Envelope, encode_file};
use wharf_tuf::{NewFile, UpdateInput, Upload, parse_upload_part, validate_update};

fn validate(uploads: &[Upload]) -> Result<Vec<NewFile>, wharf_tuf::UpdateError> {
    let repo = &*REPO;
    let input = UpdateInput {
        gun: GUN,
        current: &repo.current,
        uploads,
        now: repo.now,
    };
    validate_update(&input, &repo.server_keys)
}

/// Role, version and canonical signed content of each file.
fn summary(files: &[NewFile]) -> Vec<(String, i64, Vec<u8>)> {
    files
        .iter()
        .map(|f| {
            let env = Envelope::parse(f.bytes.clone()).expect("accepted file parses");
            (
                f.role.clone(),
                f.version,
                env.canonical_signed().expect("accepted file is canonical"),
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    within_allocation_bound("tuf_update", data.len(), || {
        let Ok(Value::Object(roles)) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let mut uploads = Vec::new();
        for (role, signed) in roles {
            let Some(canonical_file) = REPO.sign_as_client(&signed) else {
                return;
            };
            let Ok(env) = Envelope::parse(canonical_file) else {
                return;
            };
            // The same signed value and signatures in another layout: signatures cover
            // the canonical form, so the layout must not matter.
            let signatures: Vec<Value> = env
                .signatures
                .iter()
                .map(|s| serde_json::from_str(&s.to_go_json()).expect("signature JSON"))
                .collect();
            let pretty = serde_json::to_vec_pretty(&json!({"signatures": signatures, "signed": signed}))
                .expect("pretty JSON");
            let Ok(upload) = parse_upload_part(&role, pretty) else {
                return;
            };
            uploads.push(upload);
        }
        let Ok(accepted) = validate(&uploads) else {
            return;
        };

        // Canonical round trip of every uploaded file, then the same update again.
        let round_tripped: Vec<Upload> = uploads
            .iter()
            .map(|u| {
                let env = Envelope::parse(u.bytes.clone()).expect("accepted upload parses");
                let bytes = encode_file(&env.signed, &env.signatures).expect("accepted upload re-encodes");
                parse_upload_part(&u.role, bytes).expect("round-tripped upload parses")
            })
            .collect();
        let again = validate(&round_tripped)
            .unwrap_or_else(|e| panic!("accepted update refused after a canonical round trip: {e:?}"));
        let (first, second) = (summary(&accepted), summary(&again));
        let uploaded = |s: &[(String, i64, Vec<u8>)]| -> Vec<(String, i64, Vec<u8>)> {
            s.iter()
                .filter(|(role, ..)| role != "timestamp" && uploads.iter().any(|u| &u.role == role))
                .cloned()
                .collect()
        };
        assert_eq!(
            uploaded(&first),
            uploaded(&second),
            "uploaded files differ after a round trip"
        );
        let versions = |s: &[(String, i64, Vec<u8>)]| -> Vec<(String, i64)> {
            s.iter().map(|(r, v, _)| (r.clone(), *v)).collect()
        };
        assert_eq!(
            versions(&first),
            versions(&second),
            "stored files differ after a round trip"
        );
    });
});
