//! Meta's `signed_request`, as its Deauthorize and Data Deletion callbacks
//! send it (wire-spec 11.1): `<sig>.<payload>`, both base64url without
//! padding, `sig = HMAC_SHA256(key = app secret, msg = payload as sent)`,
//! and the payload JSON naming `algorithm`, `issued_at` and `user_id`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::secret::Secret;

/// How old a signed request may be: the callback is sent when the user
/// acts, and an older one replayed must not flag a user who came back.
pub const MAX_AGE: Duration = Duration::hours(1);
/// How far ahead of this clock `issued_at` may be.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A verified signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped id of the user it is about.
    pub user_id: String,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("is not `<signature>.<payload>` in base64url")]
    Malformed,
    #[error("does not carry this app's signature")]
    BadSignature,
    #[error("names algorithm {0:?}, not HMAC-SHA256")]
    Algorithm(String),
    #[error("was issued at {0}, outside the last hour")]
    Stale(DateTime<Utc>),
    #[error("has no user_id")]
    NoUser,
}

#[derive(Deserialize)]
struct Payload {
    algorithm: String,
    issued_at: i64,
    user_id: Option<serde_json::Value>,
}

/// Verifies `signed` with `app_secret` (the signature compared in constant
/// time, before the payload is read) and checks its algorithm and age.
pub fn verify(
    signed: &str,
    app_secret: &Secret,
    now: DateTime<Utc>,
) -> Result<SignedRequest, SignedRequestError> {
    let (sig, payload) = signed
        .trim()
        .split_once('.')
        .ok_or(SignedRequestError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| SignedRequestError::Malformed)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()).expect("any key length");
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| SignedRequestError::BadSignature)?;
    let body = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SignedRequestError::Malformed)?;
    let payload: Payload =
        serde_json::from_slice(&body).map_err(|_| SignedRequestError::Malformed)?;
    if !payload.algorithm.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(SignedRequestError::Algorithm(payload.algorithm));
    }
    let issued_at =
        DateTime::from_timestamp(payload.issued_at, 0).ok_or(SignedRequestError::Malformed)?;
    if issued_at < now - MAX_AGE || issued_at > now + CLOCK_SKEW {
        return Err(SignedRequestError::Stale(issued_at));
    }
    // Meta sends the id as a string; a number is read as one too.
    let user_id = match payload.user_id {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(SignedRequestError::NoUser),
    };
    Ok(SignedRequest { user_id, issued_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's documented example payload, signed here by hand.
    fn signed(secret: &str, payload: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(payload.as_bytes());
        format!(
            "{}.{payload}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_request_signed_with_the_app_secret_verifies_and_names_its_user() {
        let now = DateTime::from_timestamp(1_291_837_000, 0).unwrap();
        let secret = Secret::new("app-secret");
        let request = signed(
            "app-secret",
            r#"{"algorithm":"HMAC-SHA256","expires":1291840400,"issued_at":1291836800,"user_id":"218471"}"#,
        );
        let ok = verify(&request, &secret, now).unwrap();
        assert_eq!(ok.user_id, "218471");
        assert_eq!(ok.issued_at.timestamp(), 1_291_836_800);

        let other = signed(
            "another-secret",
            r#"{"algorithm":"HMAC-SHA256","issued_at":1291836800,"user_id":"218471"}"#,
        );
        assert_eq!(
            verify(&other, &secret, now),
            Err(SignedRequestError::BadSignature)
        );
        // One changed byte of the payload breaks the signature.
        let (sig, payload) = request.split_once('.').unwrap();
        let tampered = format!("{sig}.{}A", &payload[..payload.len() - 1]);
        assert_eq!(
            verify(&tampered, &secret, now),
            Err(SignedRequestError::BadSignature)
        );
        let md5 = signed(
            "app-secret",
            r#"{"algorithm":"MD5","issued_at":1291836800,"user_id":"1"}"#,
        );
        assert!(matches!(
            verify(&md5, &secret, now),
            Err(SignedRequestError::Algorithm(_))
        ));
        let later = now + Duration::hours(2);
        assert!(matches!(
            verify(&request, &secret, later),
            Err(SignedRequestError::Stale(_))
        ));
        for bad in ["", "nodot", "!!.??"] {
            assert_eq!(
                verify(bad, &secret, now),
                Err(SignedRequestError::Malformed),
                "{bad}"
            );
        }
    }
}
