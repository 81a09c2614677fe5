//! Sealing and opening secrets at the store boundary: callers hand plain
//! secrets in and get plain secrets out through here, and only here is the
//! master key used to encrypt or decrypt.

use super::crypto::Cipher;
use super::error::StoreError;
use crate::domain::EncryptedSecret;
use crate::secret::Secret;

/// Seals secrets for storage and opens stored ones, under the store's key.
#[derive(Debug, Clone)]
pub struct SecretBox {
    cipher: Cipher,
}

impl SecretBox {
    pub fn new(cipher: Cipher) -> Self {
        Self { cipher }
    }

    pub fn seal(&self, plain: &Secret) -> Result<EncryptedSecret, StoreError> {
        self.cipher.encrypt(plain)
    }

    pub fn open(&self, sealed: &EncryptedSecret) -> Result<Secret, StoreError> {
        self.cipher.decrypt(sealed)
    }

    /// Seals a secret a connection may not have (a refresh token).
    pub fn seal_optional(
        &self,
        plain: Option<&Secret>,
    ) -> Result<Option<EncryptedSecret>, StoreError> {
        plain.map(|p| self.seal(p)).transpose()
    }

    pub fn open_optional(
        &self,
        sealed: Option<&EncryptedSecret>,
    ) -> Result<Option<Secret>, StoreError> {
        sealed.map(|s| self.open(s)).transpose()
    }
}
