//! Facebook Login on the world: the OAuth dialog, code and token exchanges,
//! app tokens and `debug_token` (wire-spec 1.1–1.5).

use serde_json::{Map, Value, json};

use super::consent::{Redirect, chosen};
use super::errors::{GraphError, UNPARSEABLE};
use super::state::{PageOwner, Subject, Token, World};
use super::wire::random_alnum;

/// Lifetime of an authorization code.
const CODE_TTL_SECS: i64 = 600;

/// What `/dialog/oauth` was asked.
pub(crate) struct DialogRequest<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub rerequest: bool,
}

impl World {
    /// Auto-approves the dialog user; returns the redirect `Location`.
    pub fn dialog(&mut self, req: DialogRequest<'_>, now: i64) -> Result<String, GraphError> {
        if req.client_id != Some(self.config.fb_app_id.as_str()) {
            return Err(GraphError::client_id());
        }
        let Some(redirect_uri) = req.redirect_uri.filter(|r| !r.is_empty()) else {
            return Err(GraphError::param("Missing redirect_uri parameter."));
        };
        let redirect = Redirect::new(redirect_uri, req.state);
        let Some(user_id) = chosen(&self.dialog_user, &self.users) else {
            let denied = redirect.state_last("error=access_denied&error_code=200&error_description=Permissions+error&error_reason=user_denied");
            return Ok(format!("{denied}#_=_"));
        };
        let code = loop {
            let candidate = format!("AQ{}", random_alnum(100));
            if !self.codes.contains_key(&candidate) {
                break candidate;
            }
        };
        // Drop stale codes now and then so the map stays small.
        if self.codes.len() > 10_000 {
            self.codes.retain(|_, c| c.expires_at > now);
        }
        self.codes.insert(
            code.clone(),
            super::state::Code {
                user_id,
                redirect_uri: redirect_uri.to_string(),
                expires_at: now + CODE_TTL_SECS,
                used: false,
                rerequest: req.rerequest,
            },
        );
        let location = redirect.state_last(&format!("code={code}"));
        Ok(format!("{location}#_=_"))
    }

    /// 101 unless `client_id` and `client_secret` are this app's.
    pub fn check_client(
        &self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<(), GraphError> {
        if client_id != Some(self.config.fb_app_id.as_str()) {
            return Err(GraphError::client_id());
        }
        if client_secret != Some(self.config.fb_app_secret.as_str()) {
            return Err(GraphError::client_secret());
        }
        Ok(())
    }

    /// Code → short-lived user token (a fresh login).
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        now: i64,
    ) -> Result<Value, GraphError> {
        let Some(record) = self.codes.get_mut(code) else {
            return Err(code_error(36007, "Invalid verification code format."));
        };
        if record.used {
            return Err(code_error(36009, "This authorization code has been used."));
        }
        if now >= record.expires_at {
            return Err(code_error(36007, "This authorization code has expired."));
        }
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(code_error(
                36008,
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            ));
        }
        record.used = true;
        let user_id = record.user_id.clone();
        let rerequest = record.rerequest;
        let (token, expires_in) = self
            .login(&user_id, false, rerequest, now)
            .ok_or_else(|| code_error(36007, "Invalid verification code format."))?;
        Ok(bearer(&token, Some(expires_in)))
    }

    /// A still-valid user token → a new long-lived one.
    pub fn exchange_token(&mut self, token: &str, now: i64) -> Result<Value, GraphError> {
        let Some(record) = self.tokens.get(token) else {
            return Err(GraphError::unparseable_token());
        };
        if let Some(problem) = self.problem(record, now) {
            return Err(GraphError::token(Some(problem.subcode), problem.message));
        }
        let Subject::User {
            user_id,
            generation,
            ..
        } = record.subject.clone()
        else {
            return Err(GraphError::param(
                "(#100) fb_exchange_token must be a user access token",
            ));
        };
        let lifetime = self.config.long_lived_secs;
        let subject = Subject::User {
            user_id,
            generation,
            long_lived: true,
        };
        let token = self.issue(subject, now, now + lifetime, false);
        Ok(bearer(&token, Some(lifetime)))
    }

    /// `grant_type=client_credentials` → `{app_id}|…`.
    pub fn client_credentials(&mut self, now: i64) -> Value {
        let token = self.issue(Subject::App, now, 0, false);
        bearer(&token, None)
    }

    /// The `data` object of `debug_token` for `input`; invalid tokens give
    /// `is_valid:false` and `error` with key `subcode`.
    pub fn debug_token(&self, input: &str, now: i64) -> Value {
        let config = &self.config;
        let mut data = Map::new();
        if self.is_app_token(input) {
            data.insert("app_id".into(), json!(config.fb_app_id));
            data.insert("type".into(), json!("APP"));
            data.insert("application".into(), json!(config.fb_app_name));
            data.insert("is_valid".into(), json!(true));
            data.insert("scopes".into(), json!([]));
            return json!({ "data": data });
        }
        let Some(token) = self.tokens.get(input) else {
            return json!({"data": {
                "error": {"code": 190, "message": UNPARSEABLE},
                "is_valid": false,
                "scopes": [],
            }});
        };
        let problem = self.problem(token, now);
        let about = self.describe(token);
        let long_lived = match &token.subject {
            Subject::User { long_lived, .. } => *long_lived,
            _ => token.expires_at == 0,
        };
        // Keys in the order of Meta's fixtures.
        data.insert("app_id".into(), json!(config.fb_app_id));
        data.insert("type".into(), json!(about.kind));
        data.insert("application".into(), json!(config.fb_app_name));
        data.insert(
            "data_access_expires_at".into(),
            json!(about.data_access_expires_at),
        );
        data.insert("expires_at".into(), json!(token.expires_at));
        data.insert("is_valid".into(), json!(problem.is_none()));
        if long_lived {
            data.insert("issued_at".into(), json!(token.issued_at));
        }
        if token.rerequest && !long_lived {
            data.insert("metadata".into(), json!({"auth_type": "rerequest"}));
        }
        if let Some(page_id) = about.profile_id {
            data.insert("profile_id".into(), json!(page_id));
        }
        data.insert("scopes".into(), json!(about.scopes));
        data.insert(
            "granular_scopes".into(),
            self.granular(&about.scopes, token),
        );
        data.insert("user_id".into(), json!(about.user_id));
        if let Some(problem) = problem {
            data.insert(
                "error".into(),
                json!({"code": 190, "subcode": problem.subcode, "message": problem.message}),
            );
        }
        json!({ "data": data })
    }

    /// What `debug_token` reports of a user's token (pages' tokens of a
    /// user report it too, as kind PAGE).
    fn about_user(&self, user_id: &str) -> About {
        let user = &self.users[user_id];
        About {
            kind: "USER",
            user_id: user_id.to_string(),
            scopes: user.scopes.clone(),
            data_access_expires_at: user.data_access_expires_at,
            profile_id: None,
        }
    }

    /// The type-specific facts `debug_token` reports.
    fn describe(&self, token: &Token) -> About {
        match &token.subject {
            Subject::User { user_id, .. } => self.about_user(user_id),
            Subject::Page { page_id, owner, .. } => {
                let mut about = match owner {
                    PageOwner::User { user_id, .. } => self.about_user(user_id),
                    PageOwner::Business { business_id } => {
                        About::system_user(&self.businesses[business_id].system_user_id)
                    }
                };
                about.kind = "PAGE";
                about.profile_id = Some(page_id.clone());
                about
            }
            Subject::SystemUser { business_id } => {
                About::system_user(&self.businesses[business_id].system_user_id)
            }
            Subject::App => unreachable!("app tokens are answered before"),
        }
    }

    /// Page-scoped permissions list the pages they were granted for.
    fn granular(&self, scopes: &[String], token: &Token) -> Value {
        let page_ids: Vec<&String> = match &token.subject {
            Subject::User { user_id, .. } => self.users[user_id].page_ids.iter().collect(),
            Subject::Page { page_id, .. } => vec![page_id],
            Subject::SystemUser { business_id } => {
                self.businesses[business_id].page_ids.iter().collect()
            }
            Subject::App => Vec::new(),
        };
        let entries: Vec<Value> = scopes
            .iter()
            .map(|scope| {
                let page_scoped = scope.starts_with("pages_") || scope == "read_insights";
                if page_scoped && !page_ids.is_empty() {
                    json!({"scope": scope, "target_ids": page_ids})
                } else {
                    json!({"scope": scope})
                }
            })
            .collect();
        Value::Array(entries)
    }
}

/// What `debug_token` says about a non-app token.
struct About {
    kind: &'static str,
    user_id: String,
    scopes: Vec<String>,
    /// 0 for system users and their pages.
    data_access_expires_at: i64,
    profile_id: Option<String>,
}

impl About {
    fn system_user(system_user_id: &str) -> Self {
        Self {
            kind: "SYSTEM_USER",
            user_id: system_user_id.to_string(),
            scopes: super::state::DEFAULT_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            data_access_expires_at: 0,
            profile_id: None,
        }
    }
}

fn code_error(subcode: i64, message: &str) -> GraphError {
    GraphError::param(message).with_subcode(subcode)
}

fn bearer(token: &str, expires_in: Option<i64>) -> Value {
    match expires_in {
        Some(secs) => json!({"access_token": token, "token_type": "bearer", "expires_in": secs}),
        None => json!({"access_token": token, "token_type": "bearer"}),
    }
}
