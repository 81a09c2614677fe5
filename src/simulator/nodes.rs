//! Graph node reads on the world: `/me`, `/me/accounts` and `/{id}`.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::state::{Caller, World};

/// Page fields `/me/accounts` returns when `fields` is absent.
const ACCOUNT_FIELDS: [&str; 6] = [
    "id",
    "name",
    "access_token",
    "category",
    "category_list",
    "tasks",
];

/// One slice of `/me/accounts`.
pub(crate) struct AccountsPage {
    pub data: Vec<Value>,
    /// Index of the first item in the full list.
    pub first: usize,
    pub more: bool,
}

impl World {
    /// `/me`: the user, system user or page behind the token.
    pub fn me(&self, token: &str, fields: &[&str], now: i64) -> Result<Value, GraphError> {
        let (id, name) = match self.caller(token, now)? {
            Caller::User { user_id } => (user_id.clone(), self.users[&user_id].name.clone()),
            Caller::SystemUser { business_id } => {
                let business = &self.businesses[&business_id];
                (
                    business.system_user_id.clone(),
                    format!("{} System User", business.name),
                )
            }
            Caller::Page { page_id } => (page_id.clone(), self.pages[&page_id].name.clone()),
            Caller::App => {
                return Err(GraphError::missing_token(
                    2500,
                    "An active access token must be used to query information about the current user.",
                ));
            }
        };
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        if fields.is_empty() || fields.contains(&"name") {
            out.insert("name".into(), json!(name));
        }
        Ok(Value::Object(out))
    }

    /// `/me/accounts`: the pages of a user or of a system user's business,
    /// with page tokens minted from `token` when asked for.
    pub fn accounts(
        &mut self,
        token: &str,
        fields: &[&str],
        start: usize,
        limit: usize,
        now: i64,
    ) -> Result<AccountsPage, GraphError> {
        let page_ids = match self.caller(token, now)? {
            Caller::User { user_id } => self.users[&user_id].page_ids.clone(),
            Caller::SystemUser { business_id } => self.businesses[&business_id].page_ids.clone(),
            Caller::Page { .. } => {
                return Err(GraphError::param(
                    "(#100) Tried accessing nonexisting field (accounts) on node type (Page)",
                ));
            }
            Caller::App => {
                return Err(GraphError::missing_token(
                    2500,
                    "An active access token must be used to query information about the current user.",
                ));
            }
        };
        let fields: Vec<&str> = if fields.is_empty() {
            ACCOUNT_FIELDS.to_vec()
        } else {
            fields.to_vec()
        };
        let end = page_ids.len().min(start.saturating_add(limit));
        let start = start.min(end);
        let mut data = Vec::with_capacity(end - start);
        for page_id in &page_ids[start..end] {
            data.push(self.page_object(token, page_id, &fields, now));
        }
        Ok(AccountsPage {
            data,
            first: start,
            more: end < page_ids.len(),
        })
    }

    /// `/{id}`: a page the token can see, or the token's own user.
    pub fn node(
        &mut self,
        token: &str,
        id: &str,
        fields: &[&str],
        now: i64,
    ) -> Result<Value, GraphError> {
        let caller = self.caller(token, now)?;
        let fields: Vec<&str> = if fields.is_empty() {
            vec!["id", "name"]
        } else {
            fields.to_vec()
        };
        if let Caller::User { user_id } = &caller
            && user_id == id
        {
            return self.me(token, &fields, now);
        }
        if !self.pages.contains_key(id) {
            return Err(GraphError::unsupported_get(id));
        }
        let sees_page = match &caller {
            Caller::User { user_id } => self.users[user_id].page_ids.iter().any(|p| p == id),
            Caller::SystemUser { business_id } => self.businesses[business_id]
                .page_ids
                .iter()
                .any(|p| p == id),
            Caller::Page { page_id } => page_id == id,
            // App tokens read public fields only.
            Caller::App => !fields.contains(&"access_token"),
        };
        if !sees_page {
            return Err(GraphError::unsupported_get(id));
        }
        Ok(self.page_object(token, id, &fields, now))
    }

    fn page_object(&mut self, token: &str, page_id: &str, fields: &[&str], now: i64) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(page_id));
        for field in fields {
            let value = match *field {
                "access_token" => {
                    if self.page_of_token(token).as_deref() == Some(page_id) {
                        json!(token)
                    } else {
                        json!(self.issue_page_token(token, page_id, now))
                    }
                }
                "name" => json!(self.pages[page_id].name),
                "category" => json!(self.pages[page_id].category),
                "category_list" => {
                    json!([{"id": "2200", "name": self.pages[page_id].category}])
                }
                "tasks" => json!(self.pages[page_id].tasks),
                _ => continue,
            };
            out.insert(field.to_string(), value);
        }
        Value::Object(out)
    }
}
