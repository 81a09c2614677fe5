//! `tokenkeeper keys status|rotate` and `keygen --previous`: which keys seal
//! the stored secrets, moving them all to the current key, and the
//! environment lines that start a rotation.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use super::output::{count, finish};
use crate::config::{Settings, StoreBackend};
use crate::store::rotation::{self, Progress};
use crate::store::secret_check::{self, KeyCensus};
use crate::store::{Cipher, ConnectionStore, JsonFileStore, ListFilter, StoreError, StoreOptions};

/// "k-1: 4, k-2: 1" (and the unbound ones), for one line of output.
pub fn census_text(census: &KeyCensus) -> String {
    let mut parts: Vec<String> = census
        .kids
        .iter()
        .map(|(kid, n)| format!("{kid}: {n}"))
        .collect();
    if census.unbound > 0 {
        parts.push(format!("{} not yet bound", census.unbound));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The store of `settings`, opened to write (the file store takes its lock).
async fn open(settings: &Settings) -> Result<Arc<dyn ConnectionStore>, StoreError> {
    match settings.store.backend {
        StoreBackend::Json => {
            let cipher = super::keyring(settings)?;
            let store = JsonFileStore::open(&StoreOptions::from(&settings.store), cipher)?;
            Ok(Arc::new(store))
        }
        StoreBackend::Postgres => {
            let (store, _) =
                crate::app::open_database(settings, Arc::new(crate::clock::SystemClock)).await?;
            Ok(Arc::new(store))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("the tokio runtime starts")
}

/// `keys status`: the configured keys and the secrets each seals.
pub fn status(settings: &Settings) -> ExitCode {
    let keyring = super::keyring(settings).ok();
    let listed = runtime().block_on(async {
        let store: Arc<dyn ConnectionStore> = match settings.store.backend {
            // Read-only: it works while the service holds the store.
            StoreBackend::Json => {
                Arc::new(JsonFileStore::open_read_only(&settings.store.data_dir)?)
            }
            StoreBackend::Postgres => open(settings).await?,
        };
        let all = store.list(&ListFilter::default()).await;
        store.close().await;
        all
    });
    let all = match listed {
        Ok(all) => all,
        Err(e) => {
            eprintln!("keys status failed: {e}");
            return super::store_failure(&e);
        }
    };
    let census = secret_check::census(all.iter().map(|c| &**c));
    finish(
        &status_text(keyring.as_ref(), &census, all.len()),
        ExitCode::SUCCESS,
    )
}

fn status_text(keyring: Option<&Cipher>, census: &KeyCensus, connections: usize) -> String {
    let mut out = String::new();
    match keyring {
        Some(k) => {
            out.push_str(&format!("current key: {}\n", k.key_id()));
            let previous = k.previous_ids();
            out.push_str(&format!(
                "previous keys: {}\n",
                if previous.is_empty() {
                    "none".to_string()
                } else {
                    previous.join(", ")
                }
            ));
        }
        None => out.push_str("current key: not configured\n"),
    }
    out.push_str(&format!(
        "{} in {}:\n",
        count(census.secrets(), "secret"),
        count(connections, "connection")
    ));
    for (kid, n) in &census.kids {
        let role = match keyring {
            Some(k) if k.key_id() == kid => "current",
            Some(k) if k.has_key(kid) => "previous",
            Some(_) => "NOT CONFIGURED: these secrets cannot be opened",
            None => "?",
        };
        out.push_str(&format!("  {kid}  {n}  ({role})\n"));
    }
    if census.unbound > 0 {
        out.push_str(&format!(
            "{} sealed before secrets were bound to their records: `keys rotate` binds them\n",
            count(census.unbound, "secret")
        ));
    }
    out
}

/// `keys rotate`: re-seals every secret under the current key.
pub fn rotate(settings: &Settings, at_once: usize) -> ExitCode {
    let tty = std::io::stderr().is_terminal();
    let show = move |p: Progress| {
        if tty {
            eprint!("\rre-sealing: {}/{}", p.resealed, p.to_reseal);
        } else {
            eprintln!("re-sealing: {}/{}", p.resealed, p.to_reseal);
        }
    };
    let result = runtime().block_on(async {
        let store = open(settings).await?;
        let report = rotation::rotate(&*store, at_once, &show).await;
        store.close().await;
        report
    });
    if tty {
        eprintln!();
    }
    match result {
        Ok(report) => {
            let others: Vec<&String> = report
                .in_use
                .kids
                .keys()
                .filter(|kid| **kid != report.key_id)
                .collect();
            let text = format!(
                "rotated: {} of {} re-sealed under {}; keys in use: {}\n",
                report.resealed,
                count(report.connections, "connection"),
                report.key_id,
                census_text(&report.in_use)
            );
            if others.is_empty() {
                finish(
                    &format!("{text}no secret needs a previous key: they can be retired\n"),
                    ExitCode::SUCCESS,
                )
            } else {
                eprintln!(
                    "still in use besides the current key: {}; run `keys rotate` again once \
                     every instance has the current key",
                    others
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                finish(&text, ExitCode::FAILURE)
            }
        }
        Err(e @ StoreError::Locked { .. }) => {
            eprintln!(
                "keys rotate failed: {e}.\nWhile the service runs, POST /internal/keys/rotate \
                 rotates in the service."
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("keys rotate failed: {e}; run it again to go on where it stopped");
            super::store_failure(&e)
        }
    }
}

/// `keygen --previous`: a new current key, and the configured keys as the
/// previous ones, as environment lines.
pub fn keygen_previous(settings: &Settings) -> ExitCode {
    let current = match &settings.secrets.encryption_key {
        Some(key) => key.expose().to_string(),
        None => {
            let path = settings
                .store
                .data_dir
                .join(crate::store::crypto::KEY_FILE_NAME);
            match std::fs::read_to_string(&path) {
                Ok(text) => text.trim().to_string(),
                Err(_) => {
                    eprintln!(
                        "keygen --previous: no current key (TOKENKEEPER_ENCRYPTION_KEY is not \
                         set and there is no {}): nothing to rotate from",
                        path.display()
                    );
                    return ExitCode::from(super::EXIT_USAGE);
                }
            }
        }
    };
    let mut previous = vec![current];
    if let Some(keys) = &settings.secrets.previous_keys {
        previous.extend(
            keys.expose()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        );
    }
    finish(
        &format!(
            "TOKENKEEPER_ENCRYPTION_KEY={}\n{}={}\n",
            crate::secret::generate_key(),
            crate::store::crypto::PREVIOUS_KEYS_VAR,
            previous.join(",")
        ),
        ExitCode::SUCCESS,
    )
}
