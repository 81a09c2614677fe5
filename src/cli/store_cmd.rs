//! `tokenkeeper store verify|restore|migrate|export`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::output::{count, finish};
use crate::config::{Settings, StoreBackend};
use crate::domain::Connection;
use crate::store::postgres::records_checksum;
use crate::store::{
    self, Cipher, ConnectionStore, Document, JsonFileStore, StoreError, StoreOptions,
};

pub fn verify(settings: &Settings) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = match settings.store.backend {
        StoreBackend::Json => {
            super::keyring(settings).and_then(|cipher| store::verify(dir, &cipher))
        }
        StoreBackend::Postgres => {
            if let Some(usage) = needs_database(settings, "store verify") {
                return usage;
            }
            let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
            runtime.block_on(async {
                let (database, _) =
                    crate::app::open_database(settings, Arc::new(crate::clock::SystemClock))
                        .await?;
                let report = database.verify().await;
                database.close().await;
                report
            })
        }
    };
    match result {
        Ok(report) => finish(
            &format!(
                "ok: {}, {} decrypted ({}), generation {}\n",
                count(report.connections, "connection"),
                count(report.secrets, "secret"),
                super::keys_cmd::census_text(&report.census),
                report.generation
            ),
            ExitCode::SUCCESS,
        ),
        Err(StoreError::Unsound { what, problems }) => {
            eprintln!(
                "store verify failed: {what}: {}",
                count(problems.len(), "problem")
            );
            for problem in &problems {
                eprintln!("  - {problem}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("store verify failed: {e}");
            super::store_failure(&e)
        }
    }
}

pub fn restore(settings: &Settings, from: Option<&Path>) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = super::keyring(settings).and_then(|cipher| store::restore(dir, from, &cipher));
    match result {
        Ok((path, report)) => finish(
            &format!(
                "restored {} ({}, generation {})\n",
                path.display(),
                count(report.connections, "connection"),
                report.generation
            ),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            eprintln!("store restore failed: {e}");
            super::store_failure(&e)
        }
    }
}

/// Where `store migrate --to` copies the JSON store.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Target {
    Postgres,
}

/// Exit 2 with a message unless the database URL and the key are set.
fn needs_database(settings: &Settings, command: &str) -> Option<ExitCode> {
    if settings.secrets.database_url.is_some() && settings.secrets.encryption_key.is_some() {
        return None;
    }
    eprintln!(
        "{command} needs TOKENKEEPER_DATABASE_URL and TOKENKEEPER_ENCRYPTION_KEY \
         (the key the JSON store was sealed with, which every instance shares)"
    );
    Some(ExitCode::from(super::EXIT_USAGE))
}

pub fn migrate(settings: &Settings, to: Option<Target>) -> ExitCode {
    if let Some(usage) = needs_database(settings, "store migrate") {
        return usage;
    }
    if to.is_none() && settings.store.backend != StoreBackend::Postgres {
        eprintln!(
            "store.backend is \"json\": its files need no migration; \
             `store migrate --to postgres` copies them into PostgreSQL"
        );
        return ExitCode::from(super::EXIT_USAGE);
    }
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let result = runtime.block_on(async {
        let dir = &settings.store.data_dir;
        let (database, cipher) =
            crate::app::open_database(settings, std::sync::Arc::new(crate::clock::SystemClock))
                .await?;
        let Some(Target::Postgres) = to else {
            database.close().await;
            return Ok("the database schema is up to date\n".to_string());
        };
        // Opening a folder without a store would create an empty one.
        if store::presence::check(dir)? == store::Presence::Fresh {
            database.close().await;
            return Err(store::StoreError::Corrupt {
                path: dir.join(store::STORE_FILE_NAME),
                reason: "there is no JSON store here to copy".into(),
            });
        }
        // The lock keeps the service off the files while they are copied.
        let file = JsonFileStore::open(&StoreOptions::from(&settings.store), cipher)?;
        let records: Vec<_> = file.list().iter().map(|c| (**c).clone()).collect();
        file.close().await;
        let copied = database.copy_in(&records).await;
        database.close().await;
        let report = copied?;
        Ok::<_, store::StoreError>(format!(
            "copied {} into PostgreSQL ({} already there); the database holds exactly the \
             JSON store: {}, checksum {}\n",
            count(report.copied, "connection"),
            report.present,
            count(records.len(), "connection"),
            report.checksum
        ))
    });
    match result {
        Ok(message) => finish(&message, ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("store migrate failed: {e}");
            super::store_failure(&e)
        }
    }
}

/// Why `store export` wrote no store.
#[derive(Debug, thiserror::Error)]
enum ExportFailure {
    #[error("{0} already holds a store; nothing was changed (export into a folder without one)")]
    Exists(PathBuf),
    #[error(
        "the written store does not hold exactly the database's records ({expected} read, \
         {found} written, or their records differ); it was removed"
    )]
    Mismatch { expected: usize, found: usize },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// `store export --to DIR`: the PostgreSQL store's records, exactly as
/// stored, written as a new JSON store in DIR, then read back and checked
/// by count and checksum, and verified as `store verify` does.
pub fn export(settings: &Settings, to: &Path) -> ExitCode {
    if let Some(usage) = needs_database(settings, "store export") {
        return usage;
    }
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let result = runtime.block_on(async {
        let (database, cipher) =
            crate::app::open_database(settings, Arc::new(crate::clock::SystemClock)).await?;
        let read = database.copy_out().await;
        database.close().await;
        let records = read?;
        write_json_store(to, records, &cipher)
    });
    match result {
        Ok(message) => finish(&message, ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("store export failed: {e}");
            match &e {
                ExportFailure::Store(e) => super::store_failure(e),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Writes `records` as a new store in `dir` (refusing one there already),
/// as the JSON store creates one, then checks what was written.
fn write_json_store(
    dir: &Path,
    records: Vec<Connection>,
    cipher: &Cipher,
) -> Result<String, ExportFailure> {
    std::fs::create_dir_all(dir).map_err(|e| store::StoreError::io(dir, e))?;
    // Held while writing, so no service opens (and creates) a store here.
    let _lock = store::lock::StoreLock::acquire(dir)?;
    if store::presence::check(dir)? == store::Presence::Present {
        return Err(ExportFailure::Exists(dir.to_path_buf()));
    }
    let expected = records_checksum(&records);
    let mut doc = Document::empty(cipher.key_id());
    for record in records {
        doc.put(Arc::new(record));
    }
    let path = dir.join(store::STORE_FILE_NAME);
    // Tagged as a store being created: a crash leaves no sign of a store.
    store::file::write_atomic_via(&path, &store::file::encode(&doc, cipher)?, "new")?;
    let checked = store::backup::verify_file(&path, cipher).map(|(written, report)| {
        let sum = records_checksum(written.connections.values().map(|c| &**c));
        (sum, report)
    });
    let (sum, report) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
    };
    if sum != expected || report.connections != doc.connections.len() {
        let _ = std::fs::remove_file(&path);
        return Err(ExportFailure::Mismatch {
            expected: doc.connections.len(),
            found: report.connections,
        });
    }
    Ok(format!(
        "exported {} ({}) from PostgreSQL into {}; it holds exactly the database's records: \
         checksum {sum}\n",
        count(report.connections, "connection"),
        count(report.secrets, "secret"),
        path.display(),
    ))
}
