//! This replica's name among the replicas sharing one database: random, made on the
//! first start and kept in `<data_dir>/replica-id`, so a restarted replica knows the
//! upload leases its previous run held (it holds none now, and frees them at once
//! instead of making clients wait for them to expire).

use std::path::Path;

use crate::auth::secrets::{SecretError, random_bytes};

const FILE: &str = "replica-id";

#[derive(Debug, thiserror::Error)]
pub enum ReplicaIdError {
    #[error("cannot read or write {0}: {1}")]
    File(String, std::io::Error),
    #[error(transparent)]
    Random(#[from] SecretError),
}

pub fn load_or_create(data_dir: &Path) -> Result<String, ReplicaIdError> {
    let file = data_dir.join(FILE);
    let fail = |e| ReplicaIdError::File(file.display().to_string(), e);
    match std::fs::read_to_string(&file) {
        Ok(id) if is_replica_id(id.trim()) => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let id = hex::encode(random_bytes::<8>()?);
    std::fs::write(&file, format!("{id}\n")).map_err(fail)?;
    Ok(id)
}

fn is_replica_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(is_replica_id(&first));
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        // A damaged file is replaced rather than trusted.
        std::fs::write(dir.path().join(FILE), "../../etc").unwrap();
        let replaced = load_or_create(dir.path()).unwrap();
        assert!(is_replica_id(&replaced) && replaced != first);
    }
}
