//! TikTok Shop's webhook pushes (wire-spec 11.2): the signature check and
//! the few notification types tokenkeeper acts on.
//!
//! Signature: the `Authorization` header (no `Bearer` prefix) holds the
//! lower-case hex HMAC-SHA256, keyed by the app secret, of the app key
//! followed by the raw body, byte for byte as sent. Sources, which agree:
//! EcomPHP/tiktokshop-php src/Webhook.php (`hash_hmac('sha256', app_key .
//! raw body, app_secret)` against the `Authorization` header) and its
//! tests/WebhookTest.php; easycb/easycb-go tiktok/sign.go; the Partner
//! Center "Webhooks overview" (partner.tiktokshop.com/docv2/page/
//! tts-webhooks-overview) as summarised by open-source clients. None puts a
//! time of its own in the header: the body's `timestamp` is signed with it.
//!
//! Types: 6 `SELLER_DEAUTHORIZATION`, whose `data` is only a free-text
//! `message` (the shop is the envelope's `shop_id`), and 7
//! `UPCOMING_AUTHORIZATION_EXPIRATION`, whose `data.expiration_time` is the
//! Unix time (sent as a string) when the authorization lapses; TikTok sends
//! it from 30 days before, once a day until the seller authorizes again.
//! Partner Center pages "(6) Seller deauthorization" and "(7) Upcoming
//! authorization expiration" (docv2/page/6-seller-deauthorization,
//! docv2/page/7-upcoming-authorization-expiration, in copies kept by
//! open-source clients), with the same numbers in EcomPHP src/Webhook.php
//! and laraditz/tiktok `EventType` (which names 7 `AUTH_EXPIRE`).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::secret::Secret;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Authorization";
/// `type` of a seller deauthorization.
pub const SELLER_DEAUTHORIZATION: i64 = 6;
/// `type` of an upcoming authorization expiration.
pub const UPCOMING_AUTHORIZATION_EXPIRATION: i64 = 7;

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The seller took the app's access to `shop_id` away.
    SellerDeauthorization { shop_id: String },
    /// The authorization for `shop_id` lapses at `expires_at`.
    AuthorizationExpiring {
        shop_id: String,
        expires_at: DateTime<Utc>,
    },
    /// A type tokenkeeper does not act on (orders, products, ...).
    Other,
}

/// A verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The envelope's numeric `type`.
    pub kind: i64,
    pub event: Event,
    /// When TikTok pushed it (`timestamp`); the time of receipt when absent.
    pub pushed_at: DateTime<Utc>,
    /// `tts_notification_id`, for the log.
    pub notification_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not this app's signature of this body (or not hex at all).
    #[error("is not this app's signature of the body")]
    BadSignature,
    /// Signed, but not the JSON TikTok documents; `field` names what is
    /// missing or wrong.
    #[error("{field} {problem}")]
    Malformed {
        field: &'static str,
        problem: &'static str,
    },
}

/// Checks `signature` (the header's value) over `body` in constant time,
/// before reading the body, then reads the notification.
pub fn verify(
    body: &[u8],
    signature: &str,
    app_key: &str,
    app_secret: &Secret,
    now: DateTime<Utc>,
) -> Result<Notification, WebhookError> {
    let signature = hex::decode(signature.trim()).map_err(|_| WebhookError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()).expect("any key length");
    mac.update(app_key.as_bytes());
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::BadSignature)?;
    parse(body, now)
}

fn malformed(field: &'static str, problem: &'static str) -> WebhookError {
    WebhookError::Malformed { field, problem }
}

fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Notification, WebhookError> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|_| malformed("body", "is not JSON"))?;
    let kind = integer(&envelope["type"]).ok_or_else(|| malformed("type", "is not a number"))?;
    let pushed_at = match &envelope["timestamp"] {
        Value::Null => now,
        t => integer(t)
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or_else(|| malformed("timestamp", "is not a Unix time"))?,
    };
    let shop_id = || text(&envelope["shop_id"]).ok_or_else(|| malformed("shop_id", "is missing"));
    let event = match kind {
        SELLER_DEAUTHORIZATION => Event::SellerDeauthorization {
            shop_id: shop_id()?,
        },
        UPCOMING_AUTHORIZATION_EXPIRATION => {
            let expires_at = integer(&envelope["data"]["expiration_time"])
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .ok_or_else(|| malformed("data.expiration_time", "is not a Unix time"))?;
            Event::AuthorizationExpiring {
                shop_id: shop_id()?,
                expires_at,
            }
        }
        _ => Event::Other,
    };
    Ok(Notification {
        kind,
        event,
        pushed_at,
        notification_id: text(&envelope["tts_notification_id"]),
    })
}

/// A number, or a string of digits (TikTok sends `expiration_time` as one).
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty string, or a number as text (64-bit shop ids).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str = "fake_app_key";
    const APP_SECRET: &str = "fake_app_secret";
    /// The Partner Center's type-7 example, as TikTok sends it.
    const EXPIRING: &str = r#"{"type":7,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"message":"Authorization of shop_id {xxx} is expiring in {x} days. Please direct the merchant to re-authorize.","expiration_time":"1627587506"}}"#;
    /// HMAC-SHA256(key = "fake_app_secret", "fake_app_key" + EXPIRING),
    /// computed outside this code (Python's `hmac.new(...).hexdigest()`).
    const EXPIRING_SIGNATURE: &str =
        "8c36932bf6052167700b3926f0ba8e2c4376627b0e7994959a693da349a4b69c";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_644_412_900, 0).unwrap()
    }

    #[test]
    fn the_documented_expiration_event_verifies_against_its_fixture_signature() {
        let secret = Secret::new(APP_SECRET);
        let ok = verify(
            EXPIRING.as_bytes(),
            EXPIRING_SIGNATURE,
            APP_KEY,
            &secret,
            now(),
        )
        .unwrap();
        assert_eq!(ok.kind, 7);
        assert_eq!(
            ok.event,
            Event::AuthorizationExpiring {
                shop_id: "7494049642642441621".into(),
                expires_at: DateTime::from_timestamp(1_627_587_506, 0).unwrap(),
            }
        );
        assert_eq!(ok.pushed_at.timestamp(), 1_644_412_885);
        assert_eq!(ok.notification_id.as_deref(), Some("7327112393057371910"));
        // Upper-case hex is the same signature.
        let upper = EXPIRING_SIGNATURE.to_uppercase();
        assert!(verify(EXPIRING.as_bytes(), &upper, APP_KEY, &secret, now()).is_ok());
    }

    #[test]
    fn another_key_secret_or_body_byte_breaks_the_signature() {
        let secret = Secret::new(APP_SECRET);
        let bad = |body: &str, sig: &str, key: &str, secret: &Secret| {
            verify(body.as_bytes(), sig, key, secret, now())
        };
        let refused = Err(WebhookError::BadSignature);
        assert_eq!(
            bad(EXPIRING, EXPIRING_SIGNATURE, "other_key", &secret),
            refused
        );
        assert_eq!(
            bad(
                EXPIRING,
                EXPIRING_SIGNATURE,
                APP_KEY,
                &Secret::new("other_secret")
            ),
            refused
        );
        let tampered = EXPIRING.replace("1627587506", "1927587506");
        assert_eq!(
            bad(&tampered, EXPIRING_SIGNATURE, APP_KEY, &secret),
            refused
        );
        for sig in ["", "not hex", &EXPIRING_SIGNATURE[..32]] {
            assert_eq!(bad(EXPIRING, sig, APP_KEY, &secret), refused, "{sig:?}");
        }
    }

    /// Signs `body` here, the documented way, for the parsing cases.
    fn signed(body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
        mac.update(format!("{APP_KEY}{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn types_six_and_seven_are_read_and_any_other_is_passed_over() {
        let secret = Secret::new(APP_SECRET);
        let read = |body: &str| verify(body.as_bytes(), &signed(body), APP_KEY, &secret, now());
        let deauthorized = r#"{"type":6,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"message":"Shop_id {xxx} is deauthorized from your APP by merchant."}}"#;
        assert_eq!(
            read(deauthorized).unwrap().event,
            Event::SellerDeauthorization {
                shop_id: "7494049642642441621".into()
            }
        );
        let order = r#"{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":"576684019603311365","order_status":"AWAITING_SHIPMENT","update_time":1664095610}}"#;
        let other = read(order).unwrap();
        assert_eq!((other.kind, other.event), (1, Event::Other));
        // A shop id sent as a number, no timestamp: read as text, and now.
        let bare = r#"{"type":6,"shop_id":7494049642642441621}"#;
        let bare = read(bare).unwrap();
        assert_eq!(bare.pushed_at, now());
        assert!(
            matches!(bare.event, Event::SellerDeauthorization { shop_id } if shop_id == "7494049642642441621")
        );
        for (body, field) in [
            ("not json", "body"),
            (r#"{"shop_id":"1"}"#, "type"),
            (r#"{"type":6}"#, "shop_id"),
            (
                r#"{"type":7,"shop_id":"1","data":{}}"#,
                "data.expiration_time",
            ),
            (
                r#"{"type":6,"shop_id":"1","timestamp":"soon"}"#,
                "timestamp",
            ),
        ] {
            assert!(
                matches!(read(body), Err(WebhookError::Malformed { field: f, .. }) if f == field),
                "{body}"
            );
        }
    }
}
