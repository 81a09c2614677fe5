//! Each connection row carries an HMAC of its identity (id, provider, kind,
//! external id, team) in `identity_mac`, `<kid>:<hex>`, under the store's
//! integrity key (`Cipher::integrity_key`), checked on every read: a row
//! moved to another team or account by an edit in the database is refused,
//! not served. Rows from before the column are signed once, at the first
//! connect of this version; after that a row without an HMAC is refused too.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::{PgPool, Row};

use crate::domain::Connection;
use crate::store::crypto::Cipher;
use crate::store::error::StoreError;

/// Signs and checks rows' identities under a keyring.
#[derive(Clone)]
pub struct RowMac {
    cipher: Cipher,
}

/// The bytes the HMAC covers: a label, so that they can never be mistaken
/// for a file checksum's, and the identity fields as JSON.
fn identity(c: &Connection) -> Vec<u8> {
    let fields = serde_json::json!([
        "tokenkeeper/row-identity/v1",
        c.id,
        c.provider,
        c.kind,
        c.external_id,
        c.team_id
    ]);
    serde_json::to_vec(&fields).expect("identity fields serialize")
}

impl RowMac {
    pub fn new(cipher: Cipher) -> Self {
        Self { cipher }
    }

    fn mac(&self, kid: &str) -> Option<Hmac<Sha256>> {
        let key = self.cipher.integrity_key(kid)?;
        Some(Hmac::new_from_slice(&key).expect("any key length"))
    }

    /// `c`'s identity HMAC under the current key.
    pub fn sign(&self, c: &Connection) -> String {
        let kid = self.cipher.key_id();
        let mut mac = self.mac(kid).expect("the keyring holds its current key");
        mac.update(&identity(c));
        format!("{kid}:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// `Ok` if `stored` is `c`'s identity HMAC under a key of the keyring.
    pub fn check(&self, c: &Connection, stored: Option<&str>) -> Result<(), StoreError> {
        let tampered = |reason: &str| StoreError::Tampered {
            what: format!("connection {} in the database", c.id),
            reason: reason.to_string(),
        };
        let Some((kid, hex)) = stored.and_then(|s| s.split_once(':')) else {
            return Err(tampered("its row has no identity HMAC"));
        };
        let mut mac = self.mac(kid).ok_or_else(|| StoreError::UnknownKey {
            kid: kid.to_string(),
        })?;
        mac.update(&identity(c));
        let expected = hex::decode(hex).map_err(|_| tampered("its identity HMAC is not hex"))?;
        mac.verify_slice(&expected).map_err(|_| {
            tampered(
                "its provider, kind, external id or team does not match the row's HMAC \
                 (only a holder of the key can write one)",
            )
        })
    }

    /// The current key's id, which every row is signed with once a rotation
    /// has finished.
    pub fn key_id(&self) -> &str {
        self.cipher.key_id()
    }
}

/// Rows signed per statement by [`sign_rows`].
const BATCH: i64 = 1000;

/// Which rows [`sign_rows`] signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Those without an HMAC: rows from before the column, once.
    Unsigned,
    /// Those signed with another key (after a rotation), each checked
    /// under its old HMAC first, so that an edited row is not laundered.
    Resign,
}

/// Signs rows under the current key, [`BATCH`] per statement; how many.
pub async fn sign_rows(pool: &PgPool, rows: &RowMac, which: Signing) -> Result<usize, StoreError> {
    let prefix = format!("{}:%", rows.key_id());
    let mut signed = 0;
    loop {
        let batch = sqlx::query(
            "SELECT record, identity_mac FROM connections \
             WHERE CASE WHEN $1 THEN identity_mac IS NULL ELSE identity_mac NOT LIKE $2 END \
             ORDER BY id LIMIT $3",
        )
        .bind(which == Signing::Unsigned)
        .bind(&prefix)
        .bind(BATCH)
        .fetch_all(pool)
        .await
        .map_err(StoreError::database("read rows to sign"))?;
        if batch.is_empty() {
            return Ok(signed);
        }
        let mut ids = Vec::with_capacity(batch.len());
        let mut macs = Vec::with_capacity(batch.len());
        for row in &batch {
            let read = |e| StoreError::database("read rows to sign")(e);
            let sqlx::types::Json(conn): sqlx::types::Json<Connection> =
                row.try_get("record").map_err(read)?;
            if which == Signing::Resign {
                let old: Option<String> = row.try_get("identity_mac").map_err(read)?;
                rows.check(&conn, old.as_deref())?;
            }
            macs.push(rows.sign(&conn));
            ids.push(conn.id);
        }
        let done = sqlx::query(
            "UPDATE connections c SET identity_mac = v.mac \
             FROM unnest($1::text[], $2::text[]) AS v(id, mac) WHERE c.id = v.id",
        )
        .bind(&ids)
        .bind(&macs)
        .execute(pool)
        .await
        .map_err(StoreError::database("sign rows"))?;
        signed += done.rows_affected() as usize;
    }
}

/// Signs the rows from before identity HMACs, the first time a store of
/// this version connects; afterwards a row without one is refused on read
/// rather than signed, so that clearing a row's HMAC cannot launder an edit.
pub async fn sign_old_rows_once(pool: &PgPool, rows: &RowMac) -> Result<(), StoreError> {
    let done: Option<String> =
        sqlx::query_scalar("SELECT value FROM store_meta WHERE name = 'identity_macs'")
            .fetch_optional(pool)
            .await
            .map_err(StoreError::database("read the store's format"))?;
    if done.is_some() {
        return Ok(());
    }
    let signed = sign_rows(pool, rows, Signing::Unsigned).await?;
    if signed > 0 {
        tracing::info!(
            signed,
            "signed the identity of the rows written before identity HMACs"
        );
    }
    sqlx::query(
        "INSERT INTO store_meta (name, value) VALUES ('identity_macs', 'signed') \
         ON CONFLICT (name) DO NOTHING",
    )
    .execute(pool)
    .await
    .map_err(StoreError::database("record the store's format"))?;
    Ok(())
}
