//! Key-encryption key: seals server-held private keys (token signing, and later the
//! trust timestamp/snapshot keys) before they reach the metadata store.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("key-encryption key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("key-encryption key file {0} must hold base64 of exactly 32 bytes")]
    BadKeyFile(String),
    #[error("cannot read or create the key-encryption key file {0}: {1}")]
    File(String, std::io::Error),
    #[error("sealed value is corrupt or was sealed with a different key-encryption key")]
    Unseal,
    #[error("random number generator failed")]
    Random,
}

pub struct KeyEncryptionKey {
    key: LessSafeKey,
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| SecretError::Random)?;
    Ok(out)
}

/// 256 random bits as unpadded URL-safe base64: generated secrets, session ids, CSRF
/// tokens — values that travel in URLs, headers, cookies and forms unescaped.
pub fn random_token() -> Result<String, SecretError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

impl KeyEncryptionKey {
    fn from_raw(raw: &[u8]) -> Result<Self, SecretError> {
        let unbound = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    pub fn from_base64(b64: &str) -> Result<Self, SecretError> {
        let raw = STANDARD.decode(b64.trim()).map_err(|_| SecretError::BadKey)?;
        if raw.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Self::from_raw(&raw)
    }

    /// The configured key, else the one in `file`, else a new one written there with 0600.
    pub fn load_or_create(configured: &str, file: &Path) -> Result<Self, SecretError> {
        match Self::load(configured, file)? {
            Some(kek) => Ok(kek),
            None => Self::create(file),
        }
    }

    /// The configured key, else the one in `file`; `None` when neither exists. Reads
    /// only, so the server can check the key before it creates anything.
    pub fn load(configured: &str, file: &Path) -> Result<Option<Self>, SecretError> {
        if !configured.is_empty() {
            return Self::from_base64(configured).map(Some);
        }
        match std::fs::read_to_string(file) {
            Ok(text) => Self::from_base64(&text)
                .map(Some)
                .map_err(|_| SecretError::BadKeyFile(file.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretError::File(file.display().to_string(), e)),
        }
    }

    /// A new random key, written to `file` with 0600.
    pub fn create(file: &Path) -> Result<Self, SecretError> {
        let raw = random_bytes::<32>()?;
        write_private_file(file, format!("{}\n", STANDARD.encode(raw)).as_bytes())
            .map_err(|e| SecretError::File(file.display().to_string(), e))?;
        Self::from_raw(&raw)
    }

    /// nonce ‖ ciphertext ‖ tag; `label` binds the value to its purpose.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Unseal);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unseal)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Unseal)?;
        Ok(plain.to_vec())
    }
}

/// Create a file readable by its owner only (secrets, generated passwords, keys).
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Put `contents` at `path` (0600) all at once; see [`replace_file`].
pub fn replace_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace_file(path, contents, 0o600)
}

/// Put `contents` at `path` all at once: written and synced under a temporary name
/// created with `mode`, renamed over `path`, then the directory synced, so that after a
/// crash `path` holds either its old contents or all of the new ones, never a part.
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a file path without a directory"))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // Left by a crash during an earlier write; never anything but a partial copy.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Make the directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A directory only its owner can enter, whatever the umask, also when it existed
/// before with wider rights (data directories of earlier versions were 0755).
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// An existing or new file readable by its owner only, left otherwise untouched (the
/// metadata database: SQLite gives its WAL and shared-memory files the same mode).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_and_files_are_owner_only_even_when_they_existed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("metadata.db");
        std::fs::write(&db, b"kept").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&data).unwrap();
        private_file(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));
        assert_eq!(std::fs::read(&db).unwrap(), b"kept");
        let fresh = data.join("new.db");
        private_file(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_label() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kek");
        let kek = KeyEncryptionKey::load_or_create("", &file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let sealed = kek.seal("token-key", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let again = KeyEncryptionKey::load_or_create("", &file).unwrap();
        assert_eq!(again.open("token-key", &sealed).unwrap(), b"secret");
        assert!(matches!(again.open("other", &sealed), Err(SecretError::Unseal)));
        let other = KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(matches!(
            other.open("token-key", &sealed),
            Err(SecretError::Unseal)
        ));
        assert!(matches!(
            KeyEncryptionKey::from_base64("c2hvcnQ="),
            Err(SecretError::BadKey)
        ));
    }
}
