//! A SHA-256 computation that can stop between requests and resume anywhere: the state
//! is saved with the upload session, as distribution saves its `hashstates`.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256};
use wharf_store::Digest;

use super::error::RegistryError;

pub struct ResumableSha256(Sha256);

impl ResumableSha256 {
    pub fn new() -> Self {
        Self(Sha256::new())
    }

    pub fn restore(saved: &[u8]) -> Result<Self, RegistryError> {
        let state = SerializedState::<Sha256>::try_from(saved)
            .map_err(|_| RegistryError::UploadInvalid("upload hash state is corrupt".into()))?;
        Sha256::deserialize(&state)
            .map(Self)
            .map_err(|_| RegistryError::UploadInvalid("upload hash state is corrupt".into()))
    }

    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().as_slice().to_vec()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.0.finalize().as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_hash_equals_one_shot_hash() {
        let mut h = ResumableSha256::new();
        h.update(b"hello ");
        let saved = h.save();
        let mut resumed = ResumableSha256::restore(&saved).unwrap();
        resumed.update(b"world");
        assert_eq!(resumed.finish(), Digest::of(b"hello world"));
        assert!(ResumableSha256::restore(&saved[1..]).is_err());
    }
}
