//! `tokenkeeper store verify|restore|migrate`.

use std::path::Path;
use std::process::ExitCode;

use super::output::{count, finish};
use crate::config::{Settings, StoreBackend};
use crate::store::{self, Cipher, ConnectionStore, JsonFileStore, StoreOptions};

pub fn verify(settings: &Settings) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = Cipher::load_existing(settings.secrets.encryption_key.as_ref(), dir)
        .and_then(|cipher| store::verify(dir, &cipher));
    match result {
        Ok(report) => finish(
            &format!(
                "ok: {}, {} decrypted, generation {}\n",
                count(report.connections, "connection"),
                count(report.secrets, "secret"),
                report.generation
            ),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            eprintln!("store verify failed: {e}");
            super::store_failure(&e)
        }
    }
}

pub fn restore(settings: &Settings, from: Option<&Path>) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = Cipher::load_existing(settings.secrets.encryption_key.as_ref(), dir)
        .and_then(|cipher| store::restore(dir, from, &cipher));
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

pub fn migrate(settings: &Settings, to: Option<Target>) -> ExitCode {
    if settings.secrets.database_url.is_none() || settings.secrets.encryption_key.is_none() {
        eprintln!(
            "store migrate needs TOKENKEEPER_DATABASE_URL and TOKENKEEPER_ENCRYPTION_KEY \
             (the key the JSON store was sealed with, which every instance shares)"
        );
        return ExitCode::from(super::EXIT_USAGE);
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
