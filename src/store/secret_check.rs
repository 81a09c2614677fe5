//! Every secret of a set of records, checked or counted: which keys seal
//! them, whether each opens with a configured key in the record it was
//! sealed for. `store verify` and `keys status` report from here, naming
//! every problem rather than the first.

use std::collections::{BTreeMap, HashMap};

use super::crypto::{Binding, Cipher, Field, Seal};
use super::error::StoreError;
use crate::domain::{Connection, EncryptedSecret};

/// Which keys seal a set of secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCensus {
    /// Secrets by the id of the key that sealed them.
    pub kids: BTreeMap<String, usize>,
    /// Secrets sealed before secrets were bound to their records (format 1):
    /// `keys rotate` binds them.
    pub unbound: usize,
    /// Secrets whose header cannot be read.
    pub unreadable: usize,
}

impl KeyCensus {
    pub fn secrets(&self) -> usize {
        self.kids.values().sum::<usize>() + self.unreadable
    }

    fn add(&mut self, other: KeyCensus) {
        for (kid, n) in other.kids {
            *self.kids.entry(kid).or_default() += n;
        }
        self.unbound += other.unbound;
        self.unreadable += other.unreadable;
    }
}

/// The secrets of `conn`, with the binding each must have.
fn secrets_of(conn: &Connection) -> impl Iterator<Item = (&EncryptedSecret, Binding)> {
    std::iter::once((
        &conn.secrets.access_token,
        Binding::of(conn, Field::AccessToken),
    ))
    .chain(
        conn.secrets
            .refresh_token
            .as_ref()
            .map(|s| (s, Binding::of(conn, Field::RefreshToken))),
    )
}

/// Counts the keys that seal `conns`' secrets, from their headers alone
/// (no key is needed).
pub fn census<'a>(conns: impl IntoIterator<Item = &'a Connection>) -> KeyCensus {
    let mut census = KeyCensus::default();
    for conn in conns {
        for (secret, _) in secrets_of(conn) {
            match Seal::of(secret) {
                Ok(seal) => {
                    *census.kids.entry(seal.kid.clone()).or_default() += 1;
                    if seal.account().is_none() {
                        census.unbound += 1;
                    }
                }
                Err(_) => census.unreadable += 1,
            }
        }
    }
    census
}

/// What opening every secret found.
#[derive(Debug, Clone, Default)]
pub struct SecretReport {
    pub census: KeyCensus,
    /// Secrets that opened where they sit.
    pub opened: usize,
    /// One line per secret that did not, naming its connection.
    pub problems: Vec<String>,
}

/// Opens every secret of `conns` on every core.
pub fn check_all(conns: &[&Connection], cipher: &Cipher) -> SecretReport {
    // Which record each account is: a misplaced secret names the record it
    // was sealed for.
    let by_account: HashMap<String, &str> = conns
        .iter()
        .map(|c| {
            let account = Binding::of(c, Field::AccessToken)
                .account_value()
                .to_string();
            (account, c.id.as_str())
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = conns.len().div_ceil(threads).max(1);
    let parts: Vec<SecretReport> = std::thread::scope(|s| {
        let workers: Vec<_> = conns
            .chunks(chunk)
            .map(|part| s.spawn(|| check_part(part, cipher, &by_account)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a secret check panicked"))
            .collect()
    });
    let mut report = SecretReport::default();
    for part in parts {
        report.census.add(part.census);
        report.opened += part.opened;
        report.problems.extend(part.problems);
    }
    report.problems.sort();
    report
}

fn check_part(
    part: &[&Connection],
    cipher: &Cipher,
    by_account: &HashMap<String, &str>,
) -> SecretReport {
    let mut report = SecretReport {
        census: census(part.iter().copied()),
        ..SecretReport::default()
    };
    for conn in part {
        for (secret, binding) in secrets_of(conn) {
            match cipher.decrypt(&conn.id, secret, &binding) {
                Ok(_) => report.opened += 1,
                Err(StoreError::Misbound { id, field, .. }) => {
                    let seal = Seal::of(secret).expect("a secret that decrypted has a header");
                    let owner = seal
                        .account()
                        .and_then(|a| by_account.get(&a.to_string()))
                        .map_or("an account no connection here has".to_string(), |id| {
                            format!("connection {id}")
                        });
                    report.problems.push(format!(
                        "connection {id}'s {field} was sealed as the {} of {owner} ({}): \
                         it was moved outside tokenkeeper",
                        seal.field.as_deref().unwrap_or("?"),
                        seal.account_text()
                    ));
                }
                Err(e) => report.problems.push(format!(
                    "connection {}'s {}: {e}",
                    conn.id,
                    binding.field().name()
                )),
            }
        }
    }
    report
}
