//! `tokenkeeper store verify|restore`.

use std::path::Path;
use std::process::ExitCode;

use super::output::{count, finish};
use crate::config::Settings;
use crate::store::{self, Cipher};

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
