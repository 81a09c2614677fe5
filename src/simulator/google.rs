//! Google state (wire-spec 8): users, consent codes, refresh and access
//! tokens, and Ads customers with campaigns that have fixed daily metrics.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SimConfig;
use super::consent::{Redirect, chosen};
use super::errors::ControlError;
use super::tiktok::fresh_key;
use super::wire::{encode_component, random_alnum};

/// The Google user that exists from the start with `demo_user`.
pub const DEMO_GOOGLE_USER_ID: &str = "110000000000000000001";
/// The demo user's Ads customer, with the campaigns "Demo Search" and
/// "Demo Shopping".
pub const DEMO_CUSTOMER_ID: &str = "1234567890";

pub(crate) const ADWORDS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";

/// Lifetime of a consent code.
const CODE_TTL_SECS: i64 = 600;

/// Days before the start date that campaigns without a `start_date` began.
const DEFAULT_CAMPAIGN_AGE_DAYS: u64 = 90;

/// A failed OAuth call: `{"error","error_description"}` with a status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum OAuthError {
    #[error("The OAuth client was not found.")]
    UnknownClient,
    #[error("Unauthorized")]
    BadClientSecret,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("Bad Request")]
    RedirectMismatch,
    #[error("Invalid grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidRequest(String),
}

impl OAuthError {
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownClient | Self::BadClientSecret => 401,
            _ => 400,
        }
    }

    /// The `error` field.
    pub fn error(&self) -> &'static str {
        match self {
            Self::UnknownClient | Self::BadClientSecret => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::RedirectMismatch => "redirect_uri_mismatch",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }
}

const REVOKED: &str = "Token has been expired or revoked.";

/// Why an Ads call may not read a customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AdsAccessError {
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    DeveloperTokenMissing,
    DeveloperTokenNotApproved,
    InvalidCustomerId,
    PermissionDenied,
}

pub(crate) struct GoogleUser {
    pub email: String,
    pub customer_ids: Vec<String>,
}

/// Per-day numbers of a campaign; every active day has exactly these.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Daily {
    pub impressions: i64,
    pub clicks: i64,
    pub cost_micros: i64,
    pub conversions: f64,
}

pub(crate) struct Campaign {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub daily: Daily,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

#[derive(Default)]
pub(crate) struct Customer {
    pub manager_id: Option<String>,
    /// Sorted by id.
    pub campaigns: Vec<Campaign>,
}

/// A campaign to add with `/_sim/google/customers`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewCampaign {
    pub id: Option<Value>,
    pub name: String,
    pub status: Option<String>,
    #[serde(default)]
    pub daily: Daily,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

struct Code {
    user_id: String,
    redirect_uri: String,
    scope: String,
    offline: bool,
    expires_at: i64,
    used: bool,
}

struct Refresh {
    user_id: String,
    scope: String,
    revoked: bool,
}

struct Access {
    refresh_token: Option<String>,
    user_id: String,
    expires_at: i64,
    revoked: bool,
}

/// What the consent page was asked.
pub(crate) struct ConsentRequest<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub response_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub access_type: Option<&'a str>,
    pub state: Option<&'a str>,
}

pub(crate) struct Google {
    client_id: String,
    client_secret: String,
    pub developer_token: String,
    access_secs: i64,
    pub users: HashMap<String, GoogleUser>,
    pub customers: HashMap<String, Customer>,
    pub dialog_user: Option<String>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    access: HashMap<String, Access>,
    /// Google subject ids have 21 digits.
    next_id: u128,
}

impl Google {
    pub fn new(config: &SimConfig, now: i64) -> Self {
        let mut google = Self {
            client_id: config.google_client_id.clone(),
            client_secret: config.google_client_secret.clone(),
            developer_token: config.google_developer_token.clone(),
            access_secs: config.google_access_secs,
            users: HashMap::new(),
            customers: HashMap::new(),
            dialog_user: None,
            codes: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            next_id: 110_000_000_000_000_000_100,
        };
        if config.demo_user {
            let demo = |id: u64, name: &str, daily: Daily| NewCampaign {
                id: Some(json!(id)),
                name: name.into(),
                status: None,
                daily,
                start_date: None,
                end_date: None,
            };
            let campaigns = vec![
                demo(
                    111_111_111,
                    "Demo Search",
                    Daily {
                        impressions: 1000,
                        clicks: 30,
                        cost_micros: 4_500_000,
                        conversions: 2.5,
                    },
                ),
                demo(
                    222_222_222,
                    "Demo Shopping",
                    Daily {
                        impressions: 500,
                        clicks: 10,
                        cost_micros: 2_000_000,
                        conversions: 1.0,
                    },
                ),
            ];
            google
                .upsert_customer(DEMO_CUSTOMER_ID, None, campaigns, now)
                .expect("the demo campaigns are valid");
            google
                .create_user(
                    Some(DEMO_GOOGLE_USER_ID.into()),
                    Some("demo.user@sim.example".into()),
                    vec![DEMO_CUSTOMER_ID.into()],
                )
                .expect("the demo user is the first user");
            google.dialog_user = Some(DEMO_GOOGLE_USER_ID.into());
        }
        google
    }

    /// Adds a user; unknown customer ids become customers without campaigns.
    pub fn create_user(
        &mut self,
        id: Option<String>,
        email: Option<String>,
        customer_ids: Vec<String>,
    ) -> Result<String, ControlError> {
        let id = match id {
            Some(id) if self.users.contains_key(&id) => {
                return Err(ControlError::Conflict(format!("id {id} is taken")));
            }
            Some(id) if !is_digits(&id) => {
                return Err(ControlError::Invalid("ids are numeric strings".into()));
            }
            Some(id) => id,
            None => loop {
                let id = self.next_id.to_string();
                self.next_id += 1;
                if !self.users.contains_key(&id) {
                    break id;
                }
            },
        };
        if let Some(bad) = customer_ids.iter().find(|c| !is_digits(c)) {
            return Err(ControlError::Invalid(format!(
                "customer id {bad} is not 10 digits without dashes"
            )));
        }
        for customer in &customer_ids {
            self.customers.entry(customer.clone()).or_default();
        }
        let email = email.unwrap_or_else(|| format!("user{id}@sim.example"));
        self.users.insert(
            id.clone(),
            GoogleUser {
                email,
                customer_ids,
            },
        );
        Ok(id)
    }

    /// Creates the customer or adds to it (a campaign id that exists is
    /// replaced). Returns whether it was created.
    pub fn upsert_customer(
        &mut self,
        id: &str,
        manager_id: Option<String>,
        campaigns: Vec<NewCampaign>,
        now: i64,
    ) -> Result<bool, ControlError> {
        if !is_digits(id) || manager_id.as_deref().is_some_and(|m| !is_digits(m)) {
            return Err(ControlError::Invalid(
                "customer ids are digits without dashes".into(),
            ));
        }
        let today = date_of(now);
        let default_start = today - Days::new(DEFAULT_CAMPAIGN_AGE_DAYS);
        let created = !self.customers.contains_key(id);
        let customer = self.customers.entry(id.to_string()).or_default();
        if manager_id.is_some() {
            customer.manager_id = manager_id;
        }
        for new in campaigns {
            let id = match &new.id {
                None => customer.campaigns.iter().map(|c| c.id).max().unwrap_or(0) + 1,
                Some(Value::Number(n)) => n.as_u64().ok_or_else(bad_campaign_id)?,
                Some(Value::String(s)) => s.parse().map_err(|_| bad_campaign_id())?,
                Some(_) => return Err(bad_campaign_id()),
            };
            let status = new.status.unwrap_or_else(|| "ENABLED".into());
            if !matches!(status.as_str(), "ENABLED" | "PAUSED" | "REMOVED") {
                return Err(ControlError::Invalid(
                    "status is ENABLED, PAUSED or REMOVED".into(),
                ));
            }
            customer.campaigns.retain(|c| c.id != id);
            customer.campaigns.push(Campaign {
                id,
                name: new.name,
                status,
                daily: new.daily,
                start_date: new.start_date.unwrap_or(default_start),
                end_date: new.end_date,
            });
        }
        customer.campaigns.sort_by_key(|c| c.id);
        Ok(created)
    }

    /// Who the consent page approves; `None` makes it deny.
    pub fn set_dialog_user(&mut self, user_id: Option<String>) -> Result<(), ControlError> {
        if let Some(id) = &user_id
            && !self.users.contains_key(id)
        {
            return Err(ControlError::NotFound(format!("no Google user {id}")));
        }
        self.dialog_user = user_id;
        Ok(())
    }

    /// Auto-approves the dialog user; returns the redirect `Location`.
    pub fn consent(&mut self, req: ConsentRequest<'_>, now: i64) -> Result<String, OAuthError> {
        if req.client_id != Some(self.client_id.as_str()) {
            return Err(OAuthError::UnknownClient);
        }
        let Some(redirect_uri) = req.redirect_uri.filter(|r| !r.is_empty()) else {
            return Err(OAuthError::InvalidRequest(
                "Missing required parameter: redirect_uri".into(),
            ));
        };
        if req.response_type != Some("code") {
            return Err(OAuthError::InvalidRequest(
                "Missing or unsupported response_type; only code is supported".into(),
            ));
        }
        let scope = req
            .scope
            .filter(|s| !s.is_empty())
            .unwrap_or(ADWORDS_SCOPE)
            .to_string();
        let redirect = Redirect::new(redirect_uri, req.state);
        let Some(user_id) = chosen(&self.dialog_user, &self.users) else {
            return Ok(redirect.state_first("error=access_denied"));
        };
        if self.codes.len() > 10_000 {
            self.codes.retain(|_, c| c.expires_at > now && !c.used);
        }
        let code = fresh_key(&self.codes, "4/0A", 70);
        let location = redirect.state_first(&format!(
            "code={}&scope={}",
            encode_component(&code),
            encode_component(&scope)
        ));
        self.codes.insert(
            code,
            Code {
                user_id,
                redirect_uri: redirect_uri.to_string(),
                scope,
                offline: req.access_type == Some("offline"),
                expires_at: now + CODE_TTL_SECS,
                used: false,
            },
        );
        Ok(location)
    }

    /// `invalid_client` unless both are this client's.
    pub fn check_client(&self, id: Option<&str>, secret: Option<&str>) -> Result<(), OAuthError> {
        if id != Some(self.client_id.as_str()) {
            return Err(OAuthError::UnknownClient);
        }
        if secret != Some(self.client_secret.as_str()) {
            return Err(OAuthError::BadClientSecret);
        }
        Ok(())
    }

    /// `grant_type=authorization_code`: the token response; a refresh token
    /// only when consent asked for `access_type=offline`.
    pub fn exchange_code(
        &mut self,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        now: i64,
    ) -> Result<Value, OAuthError> {
        let Some(code) = code else {
            return Err(OAuthError::InvalidRequest(
                "Missing required parameter: code".into(),
            ));
        };
        let Some(record) = self.codes.get_mut(code) else {
            return Err(OAuthError::InvalidGrant("Malformed auth code."));
        };
        if record.used || now >= record.expires_at {
            return Err(OAuthError::InvalidGrant("Bad Request"));
        }
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(OAuthError::RedirectMismatch);
        }
        record.used = true;
        let (user_id, scope, offline) =
            (record.user_id.clone(), record.scope.clone(), record.offline);
        let refresh_token = offline.then(|| self.new_refresh(&user_id, &scope));
        let access_token = self.new_access(&user_id, refresh_token.clone(), now);
        let mut body = self.token_body(&access_token, &scope);
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = json!(refresh_token);
        }
        Ok(body)
    }

    /// `grant_type=refresh_token`: a new access token, no new refresh token.
    pub fn refresh(&mut self, refresh_token: Option<&str>, now: i64) -> Result<Value, OAuthError> {
        let Some(token) = refresh_token else {
            return Err(OAuthError::InvalidRequest(
                "Missing required parameter: refresh_token".into(),
            ));
        };
        let Some(record) = self.refresh.get(token).filter(|r| !r.revoked) else {
            return Err(OAuthError::InvalidGrant(REVOKED));
        };
        let (user_id, scope) = (record.user_id.clone(), record.scope.clone());
        let access_token = self.new_access(&user_id, Some(token.to_string()), now);
        Ok(self.token_body(&access_token, &scope))
    }

    /// A consent without the browser: `(refresh_token, access_token)`.
    pub fn consent_direct(
        &mut self,
        user_id: &str,
        now: i64,
    ) -> Result<(String, String, i64), ControlError> {
        if !self.users.contains_key(user_id) {
            return Err(ControlError::NotFound(format!("no Google user {user_id}")));
        }
        let refresh = self.new_refresh(user_id, ADWORDS_SCOPE);
        let access = self.new_access(user_id, Some(refresh.clone()), now);
        Ok((refresh, access, self.access_secs))
    }

    /// Revokes one refresh token and the access tokens minted from it.
    pub fn revoke_refresh(&mut self, token: &str) -> Result<(), ControlError> {
        let record = self
            .refresh
            .get_mut(token)
            .ok_or_else(|| ControlError::NotFound("no such refresh token".into()))?;
        record.revoked = true;
        for access in self.access.values_mut() {
            if access.refresh_token.as_deref() == Some(token) {
                access.revoked = true;
            }
        }
        Ok(())
    }

    /// Revokes every grant of a user (they removed the app).
    pub fn revoke_user(&mut self, user_id: &str) -> Result<(), ControlError> {
        if !self.users.contains_key(user_id) {
            return Err(ControlError::NotFound(format!("no Google user {user_id}")));
        }
        for record in self.refresh.values_mut().filter(|r| r.user_id == user_id) {
            record.revoked = true;
        }
        for access in self.access.values_mut().filter(|a| a.user_id == user_id) {
            access.revoked = true;
        }
        Ok(())
    }

    /// `/revoke?token=`: a refresh token (and the access tokens minted from
    /// it), or an access token and the refresh token it came from, as
    /// Google does ("If the token is an access token and it has a
    /// corresponding refresh token, the refresh token will also be
    /// revoked": developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke).
    /// The user and which kind of token it was; `None` if unknown or
    /// already revoked.
    pub fn revoke_any(&mut self, token: &str) -> Option<(String, &'static str)> {
        if let Some(record) = self.refresh.get(token).filter(|r| !r.revoked) {
            let user = record.user_id.clone();
            self.revoke_refresh(token).ok()?;
            return Some((user, "refresh_token"));
        }
        let access = self.access.get_mut(token).filter(|a| !a.revoked)?;
        access.revoked = true;
        let user = access.user_id.clone();
        if let Some(refresh) = access.refresh_token.clone() {
            self.revoke_refresh(&refresh).ok()?;
        }
        Some((user, "access_token"))
    }

    /// Checks an Ads call's credentials and access to `customer_id`.
    pub fn ads_access(
        &self,
        bearer: Option<&str>,
        developer_token: Option<&str>,
        customer_id: &str,
        login_customer_id: Option<&str>,
        now: i64,
    ) -> Result<&Customer, AdsAccessError> {
        let access = bearer
            .and_then(|t| self.access.get(t))
            .ok_or(AdsAccessError::TokenInvalid)?;
        if access.revoked {
            return Err(AdsAccessError::TokenRevoked);
        }
        if now >= access.expires_at {
            return Err(AdsAccessError::TokenExpired);
        }
        match developer_token {
            None => return Err(AdsAccessError::DeveloperTokenMissing),
            Some(t) if t != self.developer_token => {
                return Err(AdsAccessError::DeveloperTokenNotApproved);
            }
            Some(_) => {}
        }
        if !is_digits(customer_id) {
            return Err(AdsAccessError::InvalidCustomerId);
        }
        let user = &self.users[&access.user_id];
        let customer = self
            .customers
            .get(customer_id)
            .ok_or(AdsAccessError::PermissionDenied)?;
        let reachable = match login_customer_id {
            // Acting through a manager: the user must reach the manager and
            // the manager must own the customer (or be it).
            Some(login) => {
                user.customer_ids.iter().any(|c| c == login)
                    && (login == customer_id || customer.manager_id.as_deref() == Some(login))
            }
            None => user.customer_ids.iter().any(|c| c == customer_id),
        };
        if reachable {
            Ok(customer)
        } else {
            Err(AdsAccessError::PermissionDenied)
        }
    }

    fn new_refresh(&mut self, user_id: &str, scope: &str) -> String {
        let token = fresh_key(&self.refresh, "1//0", 100);
        self.refresh.insert(
            token.clone(),
            Refresh {
                user_id: user_id.to_string(),
                scope: scope.to_string(),
                revoked: false,
            },
        );
        token
    }

    fn new_access(&mut self, user_id: &str, refresh_token: Option<String>, now: i64) -> String {
        // Drop long-dead access tokens now and then so the map stays small.
        if self.access.len() > 100_000 {
            self.access.retain(|_, a| a.expires_at > now - 86_400);
        }
        let token = fresh_key(&self.access, "ya29.a0", 150);
        self.access.insert(
            token.clone(),
            Access {
                refresh_token,
                user_id: user_id.to_string(),
                expires_at: now + self.access_secs,
                revoked: false,
            },
        );
        token
    }

    fn token_body(&self, access_token: &str, scope: &str) -> Value {
        json!({
            "access_token": access_token,
            "expires_in": self.access_secs,
            "scope": scope,
            "token_type": "Bearer",
        })
    }
}

fn bad_campaign_id() -> ControlError {
    ControlError::Invalid("campaign ids are positive integers".into())
}

pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The UTC calendar day of a Unix time.
pub(crate) fn date_of(unix: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// A Google-looking `requestId`.
pub(crate) fn request_id() -> String {
    random_alnum(22)
}
