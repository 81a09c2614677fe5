//! What an API key may do: the scopes a key holds and the ids reserved for
//! the built-in keys. Configuration validates against them and the HTTP
//! layer enforces them, so they sit below both.

/// The id of `TOKENKEEPER_ADMIN_API_KEY` (every scope, every team).
pub const ADMIN_KEY_ID: &str = "admin";
/// The id of `TOKENKEEPER_INTERNAL_API_KEY` (scope `internal`).
pub const INTERNAL_KEY_ID: &str = "internal";
/// Ids a configured key may not take: code trusts them (exports owned by
/// anyone are visible to `admin`).
pub const RESERVED_KEY_IDS: [&str; 2] = [ADMIN_KEY_ID, INTERNAL_KEY_ID];

/// A permission an API key holds; each protected route declares the one it
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    TokensRead,
    TokensUse,
    TokensRefresh,
    TokensAdmin,
    InsightsRead,
    Exports,
    Internal,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::TokensRead,
        Scope::TokensUse,
        Scope::TokensRefresh,
        Scope::TokensAdmin,
        Scope::InsightsRead,
        Scope::Exports,
        Scope::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TokensRead => "tokens:read",
            Scope::TokensUse => "tokens:use",
            Scope::TokensRefresh => "tokens:refresh",
            Scope::TokensAdmin => "tokens:admin",
            Scope::InsightsRead => "insights:read",
            Scope::Exports => "exports",
            Scope::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
