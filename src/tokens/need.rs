//! What an operation needs of a connection before its token may be used: the
//! platform the token will be sent to, the kinds of credential that call
//! accepts, and the teams the caller may act for. The TokenManager checks a
//! `Need` before it decrypts anything, so a token never reaches another
//! platform and a caller never reaches another team's connection.

use crate::domain::{Connection, ConnectionKind, Provider};

use super::error::TokenError;

#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    /// The request field that named the connection (`connection_id`, `id`).
    pub field: &'a str,
    /// The platform the token goes to; `None` when it goes to the caller (the
    /// audited hand-out) or nowhere (facts only).
    pub provider: Option<Provider>,
    /// The kinds the operation accepts; empty for any kind of the provider.
    pub kinds: &'a [ConnectionKind],
    /// The caller's teams, when its key is limited to some.
    pub teams: Option<&'a [String]>,
}

impl<'a> Need<'a> {
    /// Any connection the caller may see.
    pub fn any(field: &'a str, teams: Option<&'a [String]>) -> Self {
        Self {
            field,
            provider: None,
            kinds: &[],
            teams,
        }
    }

    /// A connection of `provider`, of one of `kinds` (empty: any kind).
    pub fn of(
        field: &'a str,
        provider: Provider,
        kinds: &'a [ConnectionKind],
        teams: Option<&'a [String]>,
    ) -> Self {
        Self {
            field,
            provider: Some(provider),
            kinds,
            teams,
        }
    }

    /// Whether the caller may see `conn` at all (other teams' connections
    /// are answered as not found, so their ids are not confirmed).
    pub fn sees(&self, conn: &Connection) -> bool {
        self.teams.is_none_or(|teams| {
            conn.team_id
                .as_ref()
                .is_some_and(|t| teams.iter().any(|a| a == t))
        })
    }

    /// Whether `conn` is of the provider and kind wanted (team aside).
    pub fn fits(&self, conn: &Connection) -> bool {
        self.provider.is_none_or(|p| p == conn.provider)
            && (self.kinds.is_empty() || self.kinds.contains(&conn.kind))
    }

    /// `conn` if the caller may use it for this operation: not found when
    /// the caller may not see it, a wrong-connection error when it belongs
    /// to another platform or is of another kind.
    pub fn check(&self, conn: &Connection) -> Result<(), TokenError> {
        if !self.sees(conn) {
            return Err(TokenError::NotFound(conn.id.clone()));
        }
        if self.fits(conn) {
            return Ok(());
        }
        Err(TokenError::WrongConnection {
            field: self.field.to_string(),
            id: conn.id.clone(),
            found: describe(conn.provider, &[conn.kind]),
            expected_provider: self.provider,
            expected_kinds: self.kinds.to_vec(),
        })
    }

    /// What the operation wants, in words ("a facebook page or user connection").
    pub fn wanted(&self) -> String {
        match self.provider {
            Some(p) => describe(p, self.kinds),
            None => "a connection".into(),
        }
    }
}

fn describe(provider: Provider, kinds: &[ConnectionKind]) -> String {
    let kinds: Vec<&str> = kinds.iter().map(|k| kind_name(*k)).collect();
    if kinds.is_empty() {
        format!("a {} connection", provider.as_str())
    } else {
        format!("a {} {} connection", provider.as_str(), kinds.join(" or "))
    }
}

pub(super) fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::User => "user",
        ConnectionKind::Page => "page",
        ConnectionKind::SystemUser => "system_user",
        ConnectionKind::Shop => "shop",
        ConnectionKind::Ads => "ads",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EncryptedSecret, StoredSecrets};

    fn conn(provider: Provider, kind: ConnectionKind, team: Option<&str>) -> Connection {
        let mut c = Connection::new(
            provider,
            kind,
            "x",
            "label",
            StoredSecrets {
                access_token: EncryptedSecret("jwe".into()),
                refresh_token: None,
            },
            chrono::Utc::now(),
        );
        c.team_id = team.map(str::to_string);
        c
    }

    #[test]
    fn a_connection_of_another_platform_or_kind_is_refused_naming_the_field() {
        let google = conn(Provider::Google, ConnectionKind::Ads, None);
        let need = Need::of(
            "connection_id",
            Provider::Facebook,
            &[ConnectionKind::Page],
            None,
        );
        match need.check(&google) {
            Err(TokenError::WrongConnection {
                field,
                expected_provider,
                ..
            }) => {
                assert_eq!(field, "connection_id");
                assert_eq!(expected_provider, Some(Provider::Facebook));
            }
            other => panic!("expected a wrong-connection error, got {other:?}"),
        }
        let user = conn(Provider::Facebook, ConnectionKind::User, None);
        assert!(need.check(&user).is_err());
        let page = conn(Provider::Facebook, ConnectionKind::Page, None);
        assert!(need.check(&page).is_ok());
        assert!(Need::any("id", None).check(&google).is_ok());
    }

    #[test]
    fn another_teams_connection_is_not_found_before_its_provider_is_named() {
        let teams = vec!["a".to_string()];
        let b = conn(Provider::Google, ConnectionKind::Ads, Some("b"));
        let need = Need::of("id", Provider::Facebook, &[], Some(&teams));
        assert!(matches!(need.check(&b), Err(TokenError::NotFound(_))));
    }
}
