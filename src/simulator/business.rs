//! Business Manager reads: `/me/businesses` and `/{business_id}/owned_pages`.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::state::{Caller, World};

impl World {
    /// The businesses a user was added to (a system user: its own), by id.
    pub fn my_businesses(
        &self,
        token: &str,
        fields: &[&str],
        now: i64,
    ) -> Result<Vec<Value>, GraphError> {
        let mut ids: Vec<&String> = match self.caller(token, now)? {
            Caller::User { user_id } => self
                .insights
                .business_members
                .iter()
                .filter(|(_, members)| members.contains(&user_id))
                .map(|(id, _)| id)
                .collect(),
            Caller::SystemUser { business_id } => self
                .businesses
                .keys()
                .filter(|id| **id == business_id)
                .collect(),
            Caller::Page { .. } => {
                return Err(GraphError::param(
                    "(#100) Tried accessing nonexisting field (businesses) on node type (Page)",
                ));
            }
            Caller::App => {
                return Err(GraphError::missing_token(
                    2500,
                    "An active access token must be used to query information about the current user.",
                ));
            }
        };
        ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        Ok(ids
            .into_iter()
            .map(|id| {
                let name = &self.businesses[id].name;
                pick(fields, &[("id", json!(id)), ("name", json!(name))])
            })
            .collect())
    }

    /// The pages a business owns, for its system user or a member user with
    /// business_management.
    pub fn owned_pages(
        &self,
        token: &str,
        business_id: &str,
        fields: &[&str],
        now: i64,
    ) -> Result<Vec<Value>, GraphError> {
        let caller = self.caller(token, now)?;
        let Some(business) = self.businesses.get(business_id) else {
            return Err(GraphError::unsupported_get(business_id));
        };
        let allowed = match &caller {
            Caller::SystemUser { business_id: own } => own == business_id,
            Caller::User { user_id } => {
                let member = self
                    .insights
                    .business_members
                    .get(business_id)
                    .is_some_and(|m| m.contains(user_id));
                if member
                    && !self.users[user_id]
                        .scopes
                        .iter()
                        .any(|s| s == "business_management")
                {
                    return Err(GraphError::new(
                        400,
                        200,
                        "OAuthException",
                        "(#200) Requires business_management permission to manage the object",
                    ));
                }
                member
            }
            Caller::Page { .. } | Caller::App => false,
        };
        if !allowed {
            return Err(GraphError::unsupported_get(business_id));
        }
        Ok(business
            .page_ids
            .iter()
            .map(|id| {
                let page = &self.pages[id];
                pick(
                    fields,
                    &[
                        ("id", json!(id)),
                        ("name", json!(page.name)),
                        ("category", json!(page.category)),
                    ],
                )
            })
            .collect())
    }
}

/// The asked `fields` among `available` (`id,name` when none asked); `id`
/// is always sent.
fn pick(fields: &[&str], available: &[(&str, Value)]) -> Value {
    let wanted: &[&str] = if fields.is_empty() {
        &["id", "name"]
    } else {
        fields
    };
    let out: Map<String, Value> = available
        .iter()
        .filter(|(k, _)| *k == "id" || wanted.contains(k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Value::Object(out)
}
