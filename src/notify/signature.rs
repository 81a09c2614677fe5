//! Standard Webhooks signatures (standardwebhooks.com, "Signature scheme";
//! wire-spec 11.3): `v1,` and the base64 HMAC-SHA256, keyed with the
//! decoded `whsec_` secret, of `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// A signing key, decoded once from its `whsec_` form.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Configuration has checked the secret; the error never holds it.
    pub fn from_secret(secret: &Secret) -> Result<Self, String> {
        crate::secret::decode_webhook_secret(secret.expose()).map(Self)
    }

    /// The `webhook-signature` value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        let sum = mac.finalize().into_bytes();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(sum)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries (the Svix test vector): this secret, id, timestamp and
    /// body sign to this value.
    #[test]
    fn signs_the_reference_libraries_test_vector() {
        let key = SigningKey::from_secret(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_key_never_shows() {
        let key = SigningKey::from_secret(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey([redacted])");
    }
}
