//! Secret encryption: JWE compact strings (`dir` + `A256GCM`) under a
//! keyring of 256-bit keys, each carrying its key's id (`kid`) and what it
//! is bound to (`acct`, `fld`) in its protected header.

use std::io::Write;
use std::path::{Path, PathBuf};

use josekit::jwe::{self, JweHeader};
use sha2::{Digest, Sha256};

use serde_json::Value;

use super::error::StoreError;
use crate::domain::{Connection, ConnectionKind, EncryptedSecret, Provider};
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

/// One key of the keyring: its bytes and its id.
#[derive(Clone)]
struct Key {
    bytes: [u8; 32],
    id: String,
    /// The checksums' key, derived once: every journal line and database
    /// row read or written uses it.
    integrity: [u8; 32],
}

impl Key {
    fn new(bytes: [u8; 32]) -> Self {
        // The id is a short digest of the key: it tells keys apart without
        // revealing them.
        let digest = Sha256::digest(bytes);
        let id = format!("k-{}", hex::encode(&digest[..6]));
        let mut integrity = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, &bytes)
            .expand(INTEGRITY_LABEL, &mut integrity)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Self {
            bytes,
            id,
            integrity,
        }
    }
}

/// Which secret of a connection a JWE holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    AccessToken,
    RefreshToken,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::AccessToken => "access_token",
            Field::RefreshToken => "refresh_token",
        }
    }
}

/// What a sealed secret belongs to: the account of its connection (provider,
/// kind, external id, team: unique in a store, and known before the store
/// picks the record's id) and the field. It rides in the JWE's protected
/// header (`acct`, `fld`), which AES-GCM authenticates, so a secret copied
/// into another record, or into the other field, does not open there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    account: Value,
    field: Field,
}

impl Binding {
    pub fn new(
        provider: Provider,
        kind: ConnectionKind,
        external_id: &str,
        team_id: Option<&str>,
        field: Field,
    ) -> Self {
        Self {
            account: Value::Array(vec![
                serde_json::to_value(provider).unwrap_or(Value::Null),
                serde_json::to_value(kind).unwrap_or(Value::Null),
                Value::String(external_id.to_string()),
                team_id.map_or(Value::Null, |t| Value::String(t.to_string())),
            ]),
            field,
        }
    }

    pub fn of(conn: &Connection, field: Field) -> Self {
        Self::new(
            conn.provider,
            conn.kind,
            &conn.external_id,
            conn.team_id.as_deref(),
            field,
        )
    }

    pub fn field(&self) -> Field {
        self.field
    }

    pub fn account_value(&self) -> &Value {
        &self.account
    }
}

/// The unencrypted facts of a sealed secret, from its protected header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub kid: String,
    /// `None` for a secret sealed before secrets were bound (format 1).
    pub account: Option<Value>,
    pub field: Option<String>,
}

impl Seal {
    /// Reads the header of `secret` without any key.
    pub fn of(secret: &EncryptedSecret) -> Result<Self, StoreError> {
        use base64::Engine;
        let damaged = || StoreError::Crypto("a secret is not a JWE compact string".into());
        let head = secret.0.split('.').next().ok_or_else(damaged)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .map_err(|_| damaged())?;
        let header: serde_json::Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| damaged())?;
        Ok(Self {
            kid: header
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            account: header.get(ACCOUNT_CLAIM).cloned(),
            field: header
                .get(FIELD_CLAIM)
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Sealed, under `current`, for exactly `binding`: nothing to rotate.
    pub fn is_current(&self, current: &str, binding: &Binding) -> bool {
        self.kid == current && self.binds(binding)
    }

    fn binds(&self, binding: &Binding) -> bool {
        self.account.as_ref() == Some(&binding.account)
            && self.field.as_deref() == Some(binding.field.name())
    }

    /// The account this secret was sealed for, as a person reads it.
    pub fn account_text(&self) -> String {
        match &self.account {
            Some(Value::Array(parts)) => parts
                .iter()
                .map(|p| p.as_str().unwrap_or("-"))
                .collect::<Vec<_>>()
                .join("/"),
            Some(other) => other.to_string(),
            None => "no account (sealed before secrets were bound)".into(),
        }
    }

    /// The account as [`Binding`] writes it, for looking up its record.
    pub fn account(&self) -> Option<&Value> {
        self.account.as_ref()
    }
}

const ACCOUNT_CLAIM: &str = "acct";
const FIELD_CLAIM: &str = "fld";

/// The keyring: secrets are sealed with the current key and opened with
/// the key their `kid` names, the current one or a previous one, so that
/// keys can rotate while the service runs.
#[derive(Clone)]
pub struct Cipher {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous_ids())
            .finish()
    }
}

/// The variable that holds the previous keys, comma-separated.
pub const PREVIOUS_KEYS_VAR: &str = "TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS";

/// The label the integrity key is derived under (HKDF-SHA256 `info`): it
/// differs from every other use of the key, so the MAC key is not the
/// encryption key.
const INTEGRITY_LABEL: &[u8] = b"tokenkeeper/store-integrity/v1";

impl Cipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            current: Key::new(key),
            previous: Vec::new(),
        }
    }

    /// Adds the previous keys from `TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS`
    /// (comma-separated; the current key among them is ignored).
    pub fn with_previous(mut self, keys: Option<&Secret>) -> Result<Self, StoreError> {
        let Some(keys) = keys else {
            return Ok(self);
        };
        for (n, text) in keys.expose().split(',').enumerate() {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let bytes = decode_key(text).map_err(|reason| StoreError::Key {
                source_name: format!("{PREVIOUS_KEYS_VAR} (key {})", n + 1),
                reason,
            })?;
            let key = Key::new(bytes);
            if key.id != self.current.id && !self.previous.iter().any(|k| k.id == key.id) {
                self.previous.push(key);
            }
        }
        Ok(self)
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
    /// from the current key so there is only one secret to manage.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.current.bytes).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The key the store's checksums (HMAC-SHA256) are made with under the
    /// key `kid`, if the keyring holds it.
    pub fn integrity_key(&self, kid: &str) -> Option<[u8; 32]> {
        self.key(kid).map(|k| k.integrity)
    }

    /// The current key's id: what new secrets are sealed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    pub fn previous_ids(&self) -> Vec<&str> {
        self.previous.iter().map(|k| k.id.as_str()).collect()
    }

    /// The keyring holds the key `kid`.
    pub fn has_key(&self, kid: &str) -> bool {
        self.key(kid).is_some()
    }

    fn key(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
    }

    /// Seals `plain` for `binding` under the current key.
    pub fn encrypt(
        &self,
        plain: &Secret,
        binding: &Binding,
    ) -> Result<EncryptedSecret, StoreError> {
        let mut header = JweHeader::new();
        header.set_algorithm("dir");
        header.set_content_encryption("A256GCM");
        header.set_key_id(&self.current.id);
        let crypto = |e: josekit::JoseError| StoreError::Crypto(e.to_string());
        header
            .set_claim(ACCOUNT_CLAIM, Some(binding.account.clone()))
            .map_err(crypto)?;
        header
            .set_claim(
                FIELD_CLAIM,
                Some(Value::String(binding.field.name().into())),
            )
            .map_err(crypto)?;
        let encrypter = jwe::Dir
            .encrypter_from_bytes(self.current.bytes)
            .map_err(crypto)?;
        let compact = jwe::serialize_compact(plain.expose().as_bytes(), &header, &encrypter)
            .map_err(crypto)?;
        Ok(EncryptedSecret(compact))
    }

    /// Opens `secret` with the key its `kid` names. The header it returns is
    /// authenticated: the caller checks the binding.
    pub fn open(&self, secret: &EncryptedSecret) -> Result<(Secret, Seal), StoreError> {
        let seal = Seal::of(secret)?;
        let key = self.key(&seal.kid).ok_or_else(|| StoreError::UnknownKey {
            kid: seal.kid.clone(),
        })?;
        let decrypter = jwe::Dir
            .decrypter_from_bytes(key.bytes)
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        let (payload, _) = jwe::deserialize_compact(&secret.0, &decrypter).map_err(|_| {
            StoreError::Crypto(format!(
                "a secret does not decrypt with key {} (damaged value)",
                seal.kid
            ))
        })?;
        let plain = String::from_utf8(payload)
            .map(Secret::new)
            .map_err(|_| StoreError::Crypto("a decrypted secret is not UTF-8".into()))?;
        Ok((plain, seal))
    }

    /// Opens `secret` of connection `id`, which must be sealed for `binding`
    /// (or before secrets were bound).
    pub fn decrypt(
        &self,
        id: &str,
        secret: &EncryptedSecret,
        binding: &Binding,
    ) -> Result<Secret, StoreError> {
        let (plain, seal) = self.open(secret)?;
        if seal.account.is_some() && !seal.binds(binding) {
            return Err(StoreError::Misbound {
                id: id.to_string(),
                field: binding.field.name(),
                sealed_for: format!(
                    "{} {}",
                    seal.account_text(),
                    seal.field.as_deref().unwrap_or("?")
                ),
            });
        }
        Ok(plain)
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

    fn page(external_id: &str, field: Field) -> Binding {
        Binding::new(
            Provider::Facebook,
            ConnectionKind::Page,
            external_id,
            Some("team-a"),
            field,
        )
    }

    #[test]
    fn round_trip_and_header() {
        let cipher = Cipher::new([7u8; 32]);
        let bound = page("p1", Field::AccessToken);
        let enc = cipher.encrypt(&Secret::new("EAAB-token"), &bound).unwrap();
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
        assert_eq!(
            header["acct"],
            serde_json::json!(["facebook", "page", "p1", "team-a"])
        );
        assert_eq!(header["fld"], "access_token");
        let plain = cipher.decrypt("c1", &enc, &bound).unwrap();
        assert_eq!(plain.expose(), "EAAB-token");
    }

    #[test]
    fn a_secret_opens_only_where_it_was_sealed_for() {
        let cipher = Cipher::new([7u8; 32]);
        let enc = cipher
            .encrypt(&Secret::new("x"), &page("p1", Field::AccessToken))
            .unwrap();
        for elsewhere in [
            page("p2", Field::AccessToken),
            page("p1", Field::RefreshToken),
        ] {
            let err = cipher.decrypt("c2", &enc, &elsewhere).unwrap_err();
            assert!(matches!(err, StoreError::Misbound { .. }), "{err}");
            assert!(err.to_string().contains("c2"), "{err}");
            assert!(err.to_string().contains("facebook/page/p1/team-a"), "{err}");
        }
        // Editing the header to name the other account breaks AES-GCM's tag.
        let mut parts: Vec<String> = enc.0.split('.').map(str::to_string).collect();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
        parts[0] = URL_SAFE_NO_PAD.encode(header.replace("\"p1\"", "\"p2\""));
        let forged = EncryptedSecret(parts.join("."));
        let err = cipher
            .decrypt("c2", &forged, &page("p2", Field::AccessToken))
            .unwrap_err();
        assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    }

    #[test]
    fn previous_keys_open_their_secrets_and_an_unknown_kid_is_named() {
        let bound = page("p1", Field::AccessToken);
        let old = Cipher::new([1u8; 32]);
        let enc = old.encrypt(&Secret::new("x"), &bound).unwrap();
        let err = Cipher::new([2u8; 32])
            .decrypt("c1", &enc, &bound)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownKey { kid } if kid == old.key_id()),
            "{err}"
        );
        let previous = Secret::new(URL_SAFE_NO_PAD.encode([1u8; 32]));
        let ring = Cipher::new([2u8; 32])
            .with_previous(Some(&previous))
            .unwrap();
        assert_eq!(ring.decrypt("c1", &enc, &bound).unwrap().expose(), "x");
        assert_eq!(ring.previous_ids(), vec![old.key_id()]);
        let resealed = ring.encrypt(&Secret::new("x"), &bound).unwrap();
        assert_eq!(Seal::of(&resealed).unwrap().kid, ring.key_id());
        // The integrity key differs per key and from the key itself.
        let mac_old = ring.integrity_key(old.key_id()).unwrap();
        assert_ne!(mac_old, [1u8; 32]);
        assert_ne!(Some(mac_old), ring.integrity_key(ring.key_id()));
        let bad = Secret::new(format!("{},abc", URL_SAFE_NO_PAD.encode([1u8; 32])));
        let err = Cipher::new([2u8; 32])
            .with_previous(Some(&bad))
            .unwrap_err();
        assert!(err.to_string().contains("key 2"), "{err}");
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
