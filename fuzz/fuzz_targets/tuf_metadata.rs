//! TUF metadata parsing: one uploaded file, raw bytes, as the role the first byte picks,
//! through the upload handler's first stage, the typed views, the full update validation
//! against the fixed repository (signatures mostly invalid here; `tuf_update` makes them
//! valid) and the client-side verification. Properties: no panic, bounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_fuzz::{GUN, REPO, within_allocation_bound};
use wharf_tuf::metadata::{MetaFile, Root, Signed, Targets};
use wharf_tuf::{Files, UpdateInput, parse_upload_part, validate_update, verify_repository};

const ROLES: [&str; 6] = [
    "root",
    "targets",
    "snapshot",
    "timestamp",
    "targets/releases",
    "targets/a/b",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let role = ROLES[usize::from(pick) % ROLES.len()];
    let repo = &*REPO;
    within_allocation_bound("tuf_metadata", body.len(), || {
        let _ = Signed::<Root>::parse(body.to_vec()).map(|r| r.signed.validate_structure());
        let _ = Signed::<Targets>::parse(body.to_vec()).map(|t| t.signed.validate_structure(role));
        let _ = Signed::<MetaFile>::parse(body.to_vec()).map(|m| m.signed.validate_structure(role));

        if let Ok(upload) = parse_upload_part(role, body.to_vec()) {
            let input = UpdateInput {
                gun: GUN,
                current: &repo.current,
                uploads: &[upload],
                now: repo.now,
            };
            let _ = validate_update(&input, &repo.server_keys);
        }

        // A client reading the file as the repository's timestamp, and as the root
        // the timestamp leads to.
        let mut files = Files::new(body.to_vec());
        files.add(role, body.to_vec());
        let _ = verify_repository(GUN, &files, repo.now);
    });
});
