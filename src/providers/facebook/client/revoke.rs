//! Revoking a user's login: `DELETE /{user-id}/permissions` with the user's
//! own token (and its `appsecret_proof`, as on every call). Meta: "This
//! request must be made with a user access token or an app access token
//! for the current app" (developers.facebook.com/docs/graph-api/reference/user/permissions/,
//! "Revoking Permissions"); current Graph versions answer a DELETE with
//! `{"success": true}` (restfb/restfb#618, mobolic/facebook-sdk#411), older
//! ones with a bare `true`. Revoking the login ends every token of that
//! user for the app, page tokens derived from it included.

use reqwest::Method;
use serde_json::Value;

use super::GraphClient;
use crate::providers::UpstreamError;
use crate::secret::Secret;

impl GraphClient {
    /// Removes every permission `user_id` granted the app. A token Meta
    /// already rejects fails as any call does (190: `reauth_required`).
    pub async fn revoke_login(&self, user_id: &str, token: &Secret) -> Result<(), UpstreamError> {
        let path = format!("/{user_id}/permissions");
        let body = self
            .request(Method::DELETE, &path, Some(token), &[])
            .await?;
        let done = body
            .as_bool()
            .or_else(|| body.get("success").and_then(Value::as_bool));
        match done {
            Some(true) => Ok(()),
            // A 2xx that does not say it was done: the caller may retry.
            _ => Err(UpstreamError::transient(
                "/{user-id}/permissions",
                "Graph did not confirm the revocation (no \"success\": true)",
            )),
        }
    }
}
