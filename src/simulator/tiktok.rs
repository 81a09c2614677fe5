//! TikTok Shop auth state (wire-spec 7): shops, single-use auth codes, and
//! access/refresh token pairs that rotate on every refresh.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::SimConfig;
use super::consent::{Redirect, chosen};
use super::errors::ControlError;
use super::wire::random_alnum;

/// `open_id` of "Demo Shop", which exists from the start with `demo_user`.
pub const DEMO_OPEN_ID: &str = "YskLLgAAAADemoShopOpenId000001";

/// Lifetime of an auth code (wire-spec 7: ~30 min).
const CODE_TTL_SECS: i64 = 1800;

/// What every simulated authorisation grants.
const GRANTED_SCOPES: [&str; 3] = [
    "seller.order.info",
    "seller.product.basic",
    "seller.authorization.info",
];

/// A TikTok token or auth call that fails; the wire answer is HTTP 200 with
/// `code` ≠ 0 (see `code`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TikTokError {
    #[error("rt has expired")]
    RefreshExpired,
    #[error("invalid app_key or app_secret")]
    AppCredentials,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    AuthCode(&'static str),
    #[error("can not find related auth record")]
    NoAuthRecord,
    #[error("Invalid credentials")]
    AccessInvalid,
    #[error("Expired credentials")]
    AccessExpired,
}

impl TikTokError {
    /// The envelope's `code`. 36004001, 36004005, 105001 and 105002 are
    /// TikTok's; 36004002–36004004 are the simulator's choice.
    pub fn code(&self) -> i64 {
        match self {
            Self::RefreshExpired => 36_004_001,
            Self::AppCredentials => 36_004_002,
            Self::BadRequest(_) => 36_004_003,
            Self::AuthCode(_) => 36_004_004,
            Self::NoAuthRecord => 36_004_005,
            Self::AccessInvalid => 105_001,
            Self::AccessExpired => 105_002,
        }
    }
}

pub(crate) struct Shop {
    pub seller_name: String,
    pub region: String,
    pub shop_id: String,
    pub cipher: String,
    /// Revocation bumps it; tokens of older generations are dead.
    generation: usize,
}

struct Code {
    open_id: String,
    expires_at: i64,
    used: bool,
}

struct Grant {
    open_id: String,
    generation: usize,
    expires_at: i64,
}

/// A freshly issued pair, as `data` of token/get and token/refresh.
pub(crate) struct TokenPair {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
    pub open_id: String,
    pub seller_name: String,
    pub region: String,
}

impl TokenPair {
    /// The `data` object; `*_expire_in` are absolute Unix seconds.
    pub fn data(&self) -> Value {
        json!({
            "access_token": self.access_token,
            "access_token_expire_in": self.access_expires_at,
            "refresh_token": self.refresh_token,
            "refresh_token_expire_in": self.refresh_expires_at,
            "open_id": self.open_id,
            "seller_name": self.seller_name,
            "seller_base_region": self.region,
            "user_type": 0,
            "granted_scopes": GRANTED_SCOPES,
        })
    }
}

/// What `/tiktok/authorize` was asked.
pub(crate) struct AuthorizeRequest<'a> {
    pub app_key: Option<&'a str>,
    pub service_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// App credentials and grant of a token/get or token/refresh call.
pub(crate) struct TokenRequest<'a> {
    pub app_key: Option<&'a str>,
    pub app_secret: Option<&'a str>,
    pub grant_type: Option<&'a str>,
    /// `auth_code` for token/get, `refresh_token` for token/refresh.
    pub credential: Option<&'a str>,
}

pub(crate) struct TikTok {
    app_key: String,
    app_secret: String,
    access_secs: i64,
    refresh_secs: i64,
    pub shops: HashMap<String, Shop>,
    pub dialog_shop: Option<String>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    next_shop_id: u64,
}

impl TikTok {
    pub fn new(config: &SimConfig, _now: i64) -> Self {
        let mut tiktok = Self {
            app_key: config.tiktok_app_key.clone(),
            app_secret: config.tiktok_app_secret.clone(),
            access_secs: config.tiktok_access_secs,
            refresh_secs: config.tiktok_refresh_secs,
            shops: HashMap::new(),
            dialog_shop: None,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_shop_id: 7_494_000_000_000_000_001,
        };
        if config.demo_user {
            tiktok
                .create_shop(
                    Some(DEMO_OPEN_ID.into()),
                    Some("Demo Shop".into()),
                    Some("VN".into()),
                )
                .expect("the demo shop is the first shop");
            tiktok.dialog_shop = Some(DEMO_OPEN_ID.into());
        }
        tiktok
    }

    /// Adds a shop; returns its `open_id`.
    pub fn create_shop(
        &mut self,
        open_id: Option<String>,
        seller_name: Option<String>,
        region: Option<String>,
    ) -> Result<String, ControlError> {
        let open_id = match open_id {
            Some(id) if id.is_empty() => {
                return Err(ControlError::Invalid("open_id must not be empty".into()));
            }
            Some(id) if self.shops.contains_key(&id) => {
                return Err(ControlError::Conflict(format!("open_id {id} is taken")));
            }
            Some(id) => id,
            None => loop {
                let candidate = random_alnum(32);
                if !self.shops.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        let shop_id = self.next_shop_id.to_string();
        self.next_shop_id += 1;
        let shop = Shop {
            seller_name: seller_name.unwrap_or_else(|| format!("Sim Shop {shop_id}")),
            region: region.unwrap_or_else(|| "VN".into()),
            shop_id,
            cipher: format!("ROW_{}", random_alnum(32)),
            generation: 0,
        };
        self.shops.insert(open_id.clone(), shop);
        Ok(open_id)
    }

    /// Auto-approves the dialog shop; returns the redirect `Location`.
    pub fn authorize(
        &mut self,
        req: AuthorizeRequest<'_>,
        now: i64,
    ) -> Result<String, TikTokError> {
        match (req.app_key, req.service_id) {
            (Some(key), _) if key != self.app_key => return Err(TikTokError::AppCredentials),
            (None, None) => {
                return Err(TikTokError::BadRequest(
                    "app_key or service_id is required".into(),
                ));
            }
            _ => {}
        }
        let Some(redirect_uri) = req.redirect_uri.filter(|r| !r.is_empty()) else {
            return Err(TikTokError::BadRequest("redirect_uri is required".into()));
        };
        let redirect = Redirect::new(redirect_uri, req.state);
        let Some(open_id) = chosen(&self.dialog_shop, &self.shops) else {
            return Ok(redirect.state_last("error=access_denied"));
        };
        if self.codes.len() > 10_000 {
            self.codes.retain(|_, c| c.expires_at > now && !c.used);
        }
        let code = fresh_key(&self.codes, "TTP_", 48);
        self.codes.insert(
            code.clone(),
            Code {
                open_id,
                expires_at: now + CODE_TTL_SECS,
                used: false,
            },
        );
        Ok(redirect.state_last(&format!("code={code}")))
    }

    fn check_app(&self, req: &TokenRequest<'_>) -> Result<(), TikTokError> {
        if req.app_key == Some(self.app_key.as_str())
            && req.app_secret == Some(self.app_secret.as_str())
        {
            Ok(())
        } else {
            Err(TikTokError::AppCredentials)
        }
    }

    /// `token/get`: an unused, unexpired code → a new pair.
    pub fn exchange_code(
        &mut self,
        req: TokenRequest<'_>,
        now: i64,
    ) -> Result<TokenPair, TikTokError> {
        self.check_app(&req)?;
        if req.grant_type != Some("authorized_code") {
            return Err(TikTokError::BadRequest(
                "grant_type must be authorized_code".into(),
            ));
        }
        let Some(code) = req.credential else {
            return Err(TikTokError::BadRequest("auth_code is required".into()));
        };
        let Some(record) = self.codes.get_mut(code) else {
            return Err(TikTokError::AuthCode("auth_code is invalid"));
        };
        if record.used {
            return Err(TikTokError::AuthCode("auth_code has been used"));
        }
        if now >= record.expires_at {
            return Err(TikTokError::AuthCode("auth_code has expired"));
        }
        record.used = true;
        let open_id = record.open_id.clone();
        let (access_secs, refresh_secs) = (self.access_secs, self.refresh_secs);
        self.issue(&open_id, access_secs, refresh_secs, now)
            .ok_or(TikTokError::NoAuthRecord)
    }

    /// `token/refresh`: a live refresh token → a new pair; the old refresh
    /// token is gone from then on (its access token lives out its time).
    pub fn refresh(&mut self, req: TokenRequest<'_>, now: i64) -> Result<TokenPair, TikTokError> {
        self.check_app(&req)?;
        // The official Node SDK sends `authorized_code` here too.
        if !matches!(req.grant_type, Some("refresh_token" | "authorized_code")) {
            return Err(TikTokError::BadRequest(
                "grant_type must be refresh_token".into(),
            ));
        }
        let Some(token) = req.credential else {
            return Err(TikTokError::BadRequest("refresh_token is required".into()));
        };
        let Some(grant) = self.refresh.get(token) else {
            return Err(TikTokError::NoAuthRecord);
        };
        let shop = &self.shops[&grant.open_id];
        if grant.generation < shop.generation {
            return Err(TikTokError::NoAuthRecord);
        }
        if now >= grant.expires_at {
            return Err(TikTokError::RefreshExpired);
        }
        let open_id = grant.open_id.clone();
        self.refresh.remove(token);
        let (access_secs, refresh_secs) = (self.access_secs, self.refresh_secs);
        self.issue(&open_id, access_secs, refresh_secs, now)
            .ok_or(TikTokError::NoAuthRecord)
    }

    /// A new pair for the shop, expiring the given seconds from `now`
    /// (negative: already expired). `None` for an unknown shop.
    pub fn issue(
        &mut self,
        open_id: &str,
        access_secs: i64,
        refresh_secs: i64,
        now: i64,
    ) -> Option<TokenPair> {
        let shop = self.shops.get(open_id)?;
        let generation = shop.generation;
        let (seller_name, region) = (shop.seller_name.clone(), shop.region.clone());
        let grant = |expires_at| Grant {
            open_id: open_id.to_string(),
            generation,
            expires_at,
        };
        let (access_expires_at, refresh_expires_at) = (now + access_secs, now + refresh_secs);
        let access_token = grant_new(&mut self.access, grant(access_expires_at));
        let refresh_token = grant_new(&mut self.refresh, grant(refresh_expires_at));
        Some(TokenPair {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            open_id: open_id.to_string(),
            seller_name,
            region,
        })
    }

    /// Issues with the configured lifetimes unless overridden.
    pub fn issue_direct(
        &mut self,
        open_id: &str,
        access_secs: Option<i64>,
        refresh_secs: Option<i64>,
        now: i64,
    ) -> Result<TokenPair, ControlError> {
        let access = access_secs.unwrap_or(self.access_secs);
        let refresh = refresh_secs.unwrap_or(self.refresh_secs);
        self.issue(open_id, access, refresh, now)
            .ok_or_else(|| ControlError::NotFound(format!("no shop {open_id}")))
    }

    /// Who the authorize page approves; `None` makes it deny.
    pub fn set_dialog_shop(&mut self, open_id: Option<String>) -> Result<(), ControlError> {
        if let Some(id) = &open_id
            && !self.shops.contains_key(id)
        {
            return Err(ControlError::NotFound(format!("no shop {id}")));
        }
        self.dialog_shop = open_id;
        Ok(())
    }

    /// The seller deauthorises the app: every token issued so far dies.
    pub fn revoke(&mut self, open_id: &str) -> Result<(), ControlError> {
        let shop = self
            .shops
            .get_mut(open_id)
            .ok_or_else(|| ControlError::NotFound(format!("no shop {open_id}")))?;
        shop.generation += 1;
        Ok(())
    }

    /// The shop an access token may act for.
    pub fn authorized_shop(&self, access_token: &str, now: i64) -> Result<&Shop, TikTokError> {
        let grant = self
            .access
            .get(access_token)
            .ok_or(TikTokError::AccessInvalid)?;
        let shop = &self.shops[&grant.open_id];
        if grant.generation < shop.generation {
            return Err(TikTokError::AccessInvalid);
        }
        if now >= grant.expires_at {
            return Err(TikTokError::AccessExpired);
        }
        Ok(shop)
    }
}

/// Stores `grant` under a fresh token; the token.
fn grant_new(grants: &mut HashMap<String, Grant>, grant: Grant) -> String {
    let token = fresh_key(grants, "ROW_", 64);
    grants.insert(token.clone(), grant);
    token
}

/// `prefix` + `len` random characters, not yet a key of `map`.
pub(crate) fn fresh_key<V>(map: &HashMap<String, V>, prefix: &str, len: usize) -> String {
    loop {
        let candidate = format!("{prefix}{}", random_alnum(len));
        if !map.contains_key(&candidate) {
            return candidate;
        }
    }
}
