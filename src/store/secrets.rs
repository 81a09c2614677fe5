//! Sealing and opening secrets at the store boundary: callers hand plain
//! secrets in and get plain secrets out through here, and only here is the
//! keyring used to encrypt or decrypt. Each secret is sealed for its
//! connection's account and field, and opens only there.

use super::crypto::{Binding, Cipher, Field};
use super::error::StoreError;
use crate::domain::{Connection, EncryptedSecret};
use crate::secret::Secret;

/// Seals secrets for storage and opens stored ones, under the store's keys.
#[derive(Debug, Clone)]
pub struct SecretBox {
    cipher: Cipher,
}

impl SecretBox {
    pub fn new(cipher: Cipher) -> Self {
        Self { cipher }
    }

    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Seals `plain` for `binding` under the current key.
    pub fn seal(&self, plain: &Secret, binding: &Binding) -> Result<EncryptedSecret, StoreError> {
        self.cipher.encrypt(plain, binding)
    }

    /// Seals a secret a connection may not have (a refresh token).
    pub fn seal_optional(
        &self,
        plain: Option<&Secret>,
        binding: &Binding,
    ) -> Result<Option<EncryptedSecret>, StoreError> {
        plain.map(|p| self.seal(p, binding)).transpose()
    }

    /// `conn`'s access token.
    pub fn access_token(&self, conn: &Connection) -> Result<Secret, StoreError> {
        let binding = Binding::of(conn, Field::AccessToken);
        self.cipher
            .decrypt(&conn.id, &conn.secrets.access_token, &binding)
    }

    /// `conn`'s refresh token, if it has one.
    pub fn refresh_token(&self, conn: &Connection) -> Result<Option<Secret>, StoreError> {
        let binding = Binding::of(conn, Field::RefreshToken);
        conn.secrets
            .refresh_token
            .as_ref()
            .map(|s| self.cipher.decrypt(&conn.id, s, &binding))
            .transpose()
    }
}
