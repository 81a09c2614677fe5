//! The storage document: what the store file holds around the connections.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Connection, ConnectionKind, Provider};

/// Everything in the store file, apart from the checksum envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// Format of the document, for future migrations.
    pub format: u32,
    /// Id of the encryption key that wrote the secrets (and the document).
    pub key_id: String,
    /// Incremented on every file write.
    pub generation: u64,
    pub written_at: DateTime<Utc>,
    /// Connections by id, in a persistent map: a commit's copy shares every
    /// record and node it does not change, so it costs O(changes). Read it
    /// freely; change it only through [`Document::put`] and
    /// [`Document::remove`], which keep the natural-key index in step.
    pub connections: imbl::OrdMap<String, Arc<Connection>>,
    /// Ids by natural key (provider, kind, external id, team), so that an
    /// upsert finds its record without a scan. Rebuilt on load.
    #[serde(skip)]
    by_key: imbl::HashMap<NaturalKey, String>,
}

/// A connection's identity: provider, kind, external id, team.
type NaturalKey = (Provider, ConnectionKind, String, Option<String>);

fn key_of(c: &Connection) -> NaturalKey {
    (c.provider, c.kind, c.external_id.clone(), c.team_id.clone())
}

/// The format this build writes: keyed checksums, bound secrets.
pub const DOCUMENT_FORMAT: u32 = 2;
/// The format before keys rotated: an unkeyed SHA-256, unbound secrets. It
/// loads, and the store upgrades it when it opens.
pub const LEGACY_FORMAT: u32 = 1;

impl Document {
    pub fn empty(key_id: &str) -> Self {
        Self {
            format: DOCUMENT_FORMAT,
            key_id: key_id.to_string(),
            generation: 0,
            written_at: Utc::now(),
            connections: imbl::OrdMap::new(),
            by_key: imbl::HashMap::new(),
        }
    }

    /// Inserts or replaces the record with `conn`'s id.
    pub fn put(&mut self, conn: Arc<Connection>) {
        if let Some(old) = self.connections.get(&conn.id).cloned() {
            self.unindex(&old);
        }
        self.by_key.insert(key_of(&conn), conn.id.clone());
        self.connections.insert(conn.id.clone(), conn);
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<Connection>> {
        let old = self.connections.remove(id)?;
        self.unindex(&old);
        Some(old)
    }

    /// Drops `old`'s index entry if it is the one the key names (a `Put`
    /// may have stored a second record under one key).
    fn unindex(&mut self, old: &Connection) {
        let key = key_of(old);
        if self.by_key.get(&key) == Some(&old.id) {
            self.by_key.remove(&key);
        }
    }

    /// The id of the record with `conn`'s natural key, if one is stored.
    pub fn id_by_key(&self, conn: &Connection) -> Option<&String> {
        self.by_key.get(&key_of(conn))
    }

    /// Builds the natural-key index of a document just read.
    pub fn reindex(&mut self) {
        self.by_key = self
            .connections
            .values()
            .map(|c| (key_of(c), c.id.clone()))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EncryptedSecret, StoredSecrets};

    fn conn(id: &str, external_id: &str, team: Option<&str>) -> Arc<Connection> {
        let secrets = StoredSecrets {
            access_token: EncryptedSecret("jwe".into()),
            refresh_token: None,
        };
        let mut c = Connection::new(
            Provider::Facebook,
            ConnectionKind::Page,
            external_id,
            "label",
            secrets,
            chrono::Utc::now(),
        );
        c.id = id.into();
        c.team_id = team.map(str::to_string);
        Arc::new(c)
    }

    #[test]
    fn the_natural_key_index_follows_every_change_and_a_reload() {
        let mut doc = Document::empty("k");
        doc.put(conn("a", "p1", Some("t1")));
        doc.put(conn("b", "p2", Some("t1")));
        let find = |doc: &Document, ext: &str, team: Option<&str>| {
            doc.id_by_key(&conn("?", ext, team)).cloned()
        };
        assert_eq!(find(&doc, "p1", Some("t1")).as_deref(), Some("a"));
        // A record moved to another team is found under its new key only.
        doc.put(conn("a", "p1", Some("t2")));
        assert_eq!(find(&doc, "p1", Some("t1")), None);
        assert_eq!(find(&doc, "p1", Some("t2")).as_deref(), Some("a"));
        doc.remove("b");
        assert_eq!(find(&doc, "p2", Some("t1")), None);
        // Read back from its JSON, the document indexes itself again.
        let json = serde_json::to_string(&doc).unwrap();
        let mut back: Document = serde_json::from_str(&json).unwrap();
        assert_eq!(
            find(&back, "p1", Some("t2")),
            None,
            "not indexed before reindex"
        );
        back.reindex();
        assert_eq!(find(&back, "p1", Some("t2")).as_deref(), Some("a"));
    }
}
