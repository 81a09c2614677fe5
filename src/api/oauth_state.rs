//! The OAuth `state` parameter: signed, expiring, and accepted once, so a
//! callback cannot be forged or replayed (CSRF). Its nonce is kept in the
//! [`NonceStore`], which makes "once" hold across instances; the signature
//! turns a forged state away before the store is asked.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::ApiError;
use crate::domain::Provider;
use crate::store::{Nonce, NonceError, NonceStore};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatePayload {
    /// Provider the flow is for.
    pub p: Provider,
    /// Team the connection will belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    /// Redirect URI used for the dialog, when not the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<String>,
    /// Provider-specific data carried through the flow (e.g. a Google Ads
    /// customer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Nonce.
    pub n: String,
    /// Expiry, Unix seconds.
    pub e: i64,
}

/// What a provider sends the browser back with, on every OAuth callback.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code the platform sent back.
    pub code: Option<String>,
    /// The signed, single-use state issued with the authorization URL.
    pub state: Option<String>,
    /// Set by the platform when access was refused.
    pub error: Option<String>,
    /// The platform's explanation of `error`.
    pub error_description: Option<String>,
}

impl CallbackQuery {
    /// The code and the accepted state, or a 400 naming what is wrong;
    /// `refused` words a refusal by the platform (e.g. "Facebook did not
    /// grant access").
    pub async fn accept(
        self,
        signer: &StateSigner,
        provider: Provider,
        refused: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, StatePayload), ApiError> {
        if let Some(error) = self.error {
            let detail = self
                .error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(ApiError::bad_request(
                "error",
                format!("{refused}: {error}{detail}"),
            ));
        }
        let state = self
            .state
            .ok_or_else(|| ApiError::bad_request("state", "is required"))?;
        let code = self
            .code
            .ok_or_else(|| ApiError::bad_request("code", "is required"))?;
        let payload = signer.accept(&state, provider, now).await?;
        Ok((code, payload))
    }
}

pub struct StateSigner {
    key: [u8; 32],
    ttl: Duration,
    nonces: Arc<dyn NonceStore>,
}

impl StateSigner {
    pub fn new(key: [u8; 32], ttl_secs: i64, nonces: Arc<dyn NonceStore>) -> Self {
        Self {
            key,
            ttl: Duration::seconds(ttl_secs),
            nonces,
        }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// A fresh state for `provider` (and team), with its expiry; its nonce
    /// is recorded before it is handed out.
    pub async fn issue(
        &self,
        provider: Provider,
        team: Option<String>,
        redirect_uri: Option<String>,
        extra: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let expires = now + self.ttl;
        let payload = StatePayload {
            p: provider,
            t: team,
            r: redirect_uri,
            x: extra,
            n: uuid::Uuid::new_v4().simple().to_string(),
            e: expires.timestamp(),
        };
        let json = serde_json::to_string(&payload).expect("serializes");
        let body = URL_SAFE_NO_PAD.encode(&json);
        let sig = URL_SAFE_NO_PAD.encode(self.sign(body.as_bytes()));
        self.nonces
            .issue(Nonce {
                id: payload.n,
                payload: json,
                issued_at: now,
                expires_at: expires,
            })
            .await?;
        Ok((format!("{body}.{sig}"), expires))
    }

    /// Checks signature, provider and expiry, then takes the nonce: the
    /// payload is the one recorded when the state was issued.
    pub async fn accept(
        &self,
        state: &str,
        provider: Provider,
        now: DateTime<Utc>,
    ) -> Result<StatePayload, ApiError> {
        let bad = |why: &str| ApiError::bad_request("state", format!("the OAuth state {why}"));
        let (body, sig) = state.split_once('.').ok_or_else(|| bad("is malformed"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| bad("is malformed"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| bad("has a bad signature"))?;
        let payload: StatePayload = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("is malformed"))?;
        if payload.p != provider {
            return Err(bad("belongs to another provider"));
        }
        if Utc
            .timestamp_opt(payload.e, 0)
            .single()
            .is_none_or(|e| e < now)
        {
            return Err(bad("has expired; start the connection again"));
        }
        let recorded = match self.nonces.take(&payload.n, now).await {
            Ok(recorded) => recorded,
            Err(NonceError::Store(e)) => return Err(e.into()),
            Err(NonceError::Expired) => return Err(bad("has expired; start the connection again")),
            Err(NonceError::Unknown) => {
                return Err(bad(
                    "was not issued by this service; start the connection again",
                ));
            }
            Err(e @ NonceError::AlreadyTaken) => return Err(bad(&e.to_string())),
        };
        serde_json::from_str(&recorded).map_err(|_| bad("is malformed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_is_accepted_once_and_checked() {
        let nonces = Arc::new(crate::store::MemoryNonces::default());
        let s = StateSigner::new([1; 32], 600, nonces);
        let now = Utc::now();
        let (state, _) = s
            .issue(Provider::Facebook, Some("acme".into()), None, None, now)
            .await
            .unwrap();
        assert!(s.accept(&state, Provider::TiktokShop, now).await.is_err());
        let p = s.accept(&state, Provider::Facebook, now).await.unwrap();
        assert_eq!(p.t.as_deref(), Some("acme"));
        assert!(
            s.accept(&state, Provider::Facebook, now).await.is_err(),
            "replay refused"
        );

        let (state, _) = s
            .issue(Provider::Facebook, None, None, None, now)
            .await
            .unwrap();
        assert!(
            s.accept(&state, Provider::Facebook, now + Duration::seconds(601))
                .await
                .is_err()
        );
        let first = if state.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{first}{}", &state[1..]);
        assert!(s.accept(&tampered, Provider::Facebook, now).await.is_err());
    }
}
