//! A wrapper for secret strings (tokens, keys) that never prints its value,
//! and the text form of the 256-bit master key (configuration checks it, the
//! store opens with it).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

/// A secret value. `Debug` and `Display` print `[redacted]`; the only way to
/// read it is [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call sites should be few and obvious.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Decodes a base64url 256-bit key (padding optional). The error text never
/// contains the key.
pub fn decode_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| "must be base64url (run `tokenkeeper keygen` to make one)".to_string())?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, got {}", b.len()))
}

/// Decodes a Standard Webhooks signing secret: `whsec_` then standard
/// base64 of 24 to 64 random bytes (standardwebhooks.com, "Signature
/// scheme"); the reference libraries also take it without the prefix. The
/// error text never contains the secret.
pub fn decode_webhook_secret(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| {
            "must be whsec_ followed by base64 (make one with `tokenkeeper keygen --webhook`)"
                .to_string()
        })?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!(
            "must decode to 24 to 64 bytes, got {} (make one with `tokenkeeper keygen --webhook`)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A fresh Standard Webhooks signing secret: `whsec_` and 32 random bytes.
pub fn generate_webhook_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A fresh random key, base64url without padding.
pub fn generate_key() -> String {
    let key: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("EAAB-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "EAAB-very-secret");
    }
}
