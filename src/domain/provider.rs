//! The platforms tokenkeeper keeps tokens for, and the kinds of credential
//! each has.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The platform a connection belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Facebook,
    TiktokShop,
    Google,
}

impl Provider {
    /// Every provider, in a fixed order (metrics list their series by it).
    pub const ALL: [Provider; 3] = [Provider::Facebook, Provider::TiktokShop, Provider::Google];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Facebook => "facebook",
            Provider::TiktokShop => "tiktok_shop",
            Provider::Google => "google",
        }
    }
}

/// What the credential stands for at its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    User,
    Page,
    SystemUser,
    Shop,
    Ads,
}
