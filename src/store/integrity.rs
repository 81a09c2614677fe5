//! Keyed checksums of the store file and its journal lines: HMAC-SHA256
//! under a key derived from an encryption key (`Cipher::integrity_key`),
//! written `hmac-sha256:<kid>:<hex>`, so that only a holder of the key can
//! write a file that loads. A file of format 1 carries an unkeyed
//! `sha256:<hex>`; it is accepted only on a format-1 document (and the
//! journal lines after it), which the store upgrades when it opens.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::crypto::Cipher;

const KEYED: &str = "hmac-sha256:";
const PLAIN: &str = "sha256:";

/// How a checksum was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumKind {
    /// HMAC-SHA256 under a key of the keyring (format 2).
    Keyed,
    /// SHA-256, which anyone can recompute (format 1).
    Plain,
}

/// What checks the checksums: the keyring, or nobody (a look at the store
/// without the key, which checks plain sums and the layout only).
#[derive(Debug, Clone, Copy)]
pub enum Checker<'a> {
    Keyring(&'a Cipher),
    Unkeyed,
}

/// Why a checksum was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It does not match: damage, or an edit by somebody without the key.
    Mismatch { kind: SumKind },
    /// It names a key the keyring does not hold.
    UnknownKey(String),
    /// It is neither kind of checksum.
    Malformed,
}

impl Refusal {
    /// The refusal as the store's error: a keyed sum that does not match
    /// is an edit outside tokenkeeper, a plain one damage.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Mismatch {
                kind: SumKind::Keyed,
            } => "its HMAC does not match (only a holder of the key can write one)".into(),
            Refusal::Mismatch {
                kind: SumKind::Plain,
            } => "its SHA-256 checksum does not match".into(),
            Refusal::UnknownKey(kid) => format!(
                "its HMAC is made with key {kid}, which is not configured \
                 (TOKENKEEPER_ENCRYPTION_KEY or TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS)"
            ),
            Refusal::Malformed => "its checksum is neither `hmac-sha256:` nor `sha256:`".into(),
        }
    }
}

/// The keyed checksum of `bytes` under the current key.
pub fn sign(cipher: &Cipher, bytes: &[u8]) -> String {
    let mut signer = Signer::new(cipher);
    signer.update(bytes);
    signer.finish()
}

/// The checksum of a byte stream, fed as it is written.
pub struct Signer {
    mac: Hmac<Sha256>,
    kid: String,
}

impl Signer {
    pub fn new(cipher: &Cipher) -> Self {
        let key = cipher
            .integrity_key(cipher.key_id())
            .expect("the keyring holds its current key");
        Self {
            mac: Hmac::new_from_slice(&key).expect("any key length"),
            kid: cipher.key_id().to_string(),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.mac.update(bytes);
    }

    pub fn finish(self) -> String {
        format!(
            "{KEYED}{}:{}",
            self.kid,
            hex::encode(self.mac.finalize().into_bytes())
        )
    }

    /// The length of every checksum this signer writes: key ids have one
    /// length, so a placeholder can be overwritten in place.
    pub fn sum_len(&self) -> usize {
        KEYED.len() + self.kid.len() + 1 + 64
    }
}

/// Checks `sum` against `bytes`; returns how it was made.
pub fn check(checker: Checker<'_>, sum: &str, bytes: &[u8]) -> Result<SumKind, Refusal> {
    if let Some(plain) = sum.strip_prefix(PLAIN) {
        return if hex::encode(Sha256::digest(bytes)) == plain {
            Ok(SumKind::Plain)
        } else {
            Err(Refusal::Mismatch {
                kind: SumKind::Plain,
            })
        };
    }
    let (kid, expected) = sum
        .strip_prefix(KEYED)
        .and_then(|rest| rest.split_once(':'))
        .ok_or(Refusal::Malformed)?;
    let Checker::Keyring(cipher) = checker else {
        return Ok(SumKind::Keyed);
    };
    let key = cipher
        .integrity_key(kid)
        .ok_or_else(|| Refusal::UnknownKey(kid.to_string()))?;
    let expected = hex::decode(expected).map_err(|_| Refusal::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(bytes);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| Refusal::Mismatch {
        kind: SumKind::Keyed,
    })?;
    Ok(SumKind::Keyed)
}

/// The unkeyed SHA-256 checksum a format-1 store wrote (for its fixtures
/// and tests).
pub fn plain(bytes: &[u8]) -> String {
    format!("{PLAIN}{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_sum_checks_only_under_its_key() {
        let a = Cipher::new([1u8; 32]);
        let sum = sign(&a, b"doc");
        assert_eq!(sum.len(), Signer::new(&a).sum_len());
        assert_eq!(
            check(Checker::Keyring(&a), &sum, b"doc"),
            Ok(SumKind::Keyed)
        );
        assert_eq!(
            check(Checker::Keyring(&a), &sum, b"dog"),
            Err(Refusal::Mismatch {
                kind: SumKind::Keyed
            })
        );
        let b = Cipher::new([2u8; 32]);
        assert_eq!(
            check(Checker::Keyring(&b), &sum, b"doc"),
            Err(Refusal::UnknownKey(a.key_id().to_string()))
        );
        // Anyone can recompute a plain sum: it is reported as such.
        assert_eq!(
            check(Checker::Keyring(&a), &plain(b"dog"), b"dog"),
            Ok(SumKind::Plain)
        );
        assert_eq!(
            check(Checker::Keyring(&a), "md5:00", b"doc"),
            Err(Refusal::Malformed)
        );
    }
}
