//! Secret encryption: JWE compact strings (`dir` + `A256GCM`) under a 256-bit
//! master key, each carrying the key's id in its `kid` header.

use std::io::Write;
use std::path::{Path, PathBuf};

use josekit::jwe::{self, JweHeader};
use sha2::{Digest, Sha256};

use super::error::StoreError;
use crate::domain::EncryptedSecret;
use crate::secret::{Secret, decode_key, generate_key};

pub const KEY_FILE_NAME: &str = "master.key";

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// What [`Cipher::load`] does when no key is configured or on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// Generate `master.key`: only where no store exists yet.
    Generate,
    /// Refuse: a new key would never open the store already there.
    Refuse,
}

/// Encrypts and decrypts secrets under one key.
#[derive(Clone)]
pub struct Cipher {
    key: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Cipher {
    pub fn new(key: [u8; 32]) -> Self {
        // The id is a short digest of the key: it tells keys apart without
        // revealing them.
        let digest = Sha256::digest(key);
        let key_id = format!("k-{}", hex::encode(&digest[..6]));
        Self { key, key_id }
    }

    /// Uses the key from the environment if given, else `<data_dir>/master.key`,
    /// creating that file (mode 0600) on first run.
    pub fn load_or_create(
        env_key: Option<&Secret>,
        data_dir: &Path,
    ) -> Result<(Self, KeySource), StoreError> {
        Self::load(env_key, data_dir, MissingKey::Generate)
    }

    /// Opens only an existing key (environment or key file); never creates one.
    pub fn load_existing(env_key: Option<&Secret>, data_dir: &Path) -> Result<Self, StoreError> {
        Self::load(env_key, data_dir, MissingKey::Refuse).map(|(c, _)| c)
    }

    /// The key from the environment, else from `<data_dir>/master.key`; when
    /// neither exists, `missing` decides whether a key file is generated.
    pub fn load(
        env_key: Option<&Secret>,
        data_dir: &Path,
        missing: MissingKey,
    ) -> Result<(Self, KeySource), StoreError> {
        if let Some(key) = env_key {
            let key = decode_key(key.expose()).map_err(|reason| StoreError::Key {
                source_name: "TOKENKEEPER_ENCRYPTION_KEY".into(),
                reason,
            })?;
            return Ok((Self::new(key), KeySource::Environment));
        }
        let path = data_dir.join(KEY_FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = decode_key(&text).map_err(|reason| StoreError::Key {
                    source_name: path.display().to_string(),
                    reason,
                })?;
                Ok((Self::new(key), KeySource::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match missing {
                MissingKey::Generate => {
                    let key = generate_key();
                    write_key_file(&path, &key)?;
                    let key = decode_key(&key).expect("a generated key decodes");
                    Ok((Self::new(key), KeySource::Generated(path)))
                }
                MissingKey::Refuse => Err(StoreError::Key {
                    source_name: "TOKENKEEPER_ENCRYPTION_KEY".into(),
                    reason: format!(
                        "not set, and there is no {KEY_FILE_NAME} in {}: the store needs \
                         the key it was written with (no new key was generated)",
                        data_dir.display()
                    ),
                }),
            },
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// A separate key for another purpose (e.g. signing OAuth state), derived
    /// from the master key so there is only one secret to manage.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn encrypt(&self, plain: &Secret) -> Result<EncryptedSecret, StoreError> {
        let mut header = JweHeader::new();
        header.set_algorithm("dir");
        header.set_content_encryption("A256GCM");
        header.set_key_id(&self.key_id);
        let encrypter = jwe::Dir
            .encrypter_from_bytes(self.key)
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        let compact = jwe::serialize_compact(plain.expose().as_bytes(), &header, &encrypter)
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        Ok(EncryptedSecret(compact))
    }

    pub fn decrypt(&self, secret: &EncryptedSecret) -> Result<Secret, StoreError> {
        let decrypter = jwe::Dir
            .decrypter_from_bytes(self.key)
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        let (payload, header) = jwe::deserialize_compact(&secret.0, &decrypter).map_err(|_| {
            StoreError::Crypto(
                "a secret does not decrypt with this key (wrong key or damaged value)".into(),
            )
        })?;
        if header.key_id() != Some(self.key_id.as_str()) {
            return Err(StoreError::Crypto(format!(
                "a secret names key {:?}, the current key is {}",
                header.key_id(),
                self.key_id
            )));
        }
        String::from_utf8(payload)
            .map(Secret::new)
            .map_err(|_| StoreError::Crypto("a decrypted secret is not UTF-8".into()))
    }
}

fn write_key_file(path: &Path, key: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    file.write_all(format!("{key}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn round_trip_and_header() {
        let cipher = Cipher::new([7u8; 32]);
        let enc = cipher.encrypt(&Secret::new("EAAB-token")).unwrap();
        assert!(!enc.0.contains("EAAB"));
        assert_eq!(enc.0.split('.').count(), 5, "JWE compact has five parts");
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(enc.0.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "dir");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], cipher.key_id());
        assert_eq!(cipher.decrypt(&enc).unwrap().expose(), "EAAB-token");
    }

    #[test]
    fn wrong_key_is_refused() {
        let enc = Cipher::new([1u8; 32]).encrypt(&Secret::new("x")).unwrap();
        assert!(Cipher::new([2u8; 32]).decrypt(&enc).is_err());
    }

    #[test]
    fn keys_decode_with_or_without_padding() {
        let k = generate_key();
        assert_eq!(k.len(), 43);
        assert!(decode_key(&k).is_ok());
        assert!(decode_key(&format!("{k}=")).is_ok());
        assert!(decode_key("abc").is_err());
    }

    #[test]
    fn generated_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (c1, src) = Cipher::load_or_create(None, dir.path()).unwrap();
        assert!(matches!(src, KeySource::Generated(_)));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (c2, src) = Cipher::load_or_create(None, dir.path()).unwrap();
        assert!(matches!(src, KeySource::File(_)));
        assert_eq!(c1.key_id(), c2.key_id());
        // A key in the environment wins over the file.
        let env = Secret::new(generate_key());
        let (c3, src) = Cipher::load_or_create(Some(&env), dir.path()).unwrap();
        assert_eq!(src, KeySource::Environment);
        assert_ne!(c3.key_id(), c1.key_id());
    }
}
