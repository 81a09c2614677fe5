//! `tokenkeeper store verify|restore`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Settings;
use crate::store::{self, Cipher};

pub fn verify(settings: &Settings) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = Cipher::load_existing(settings.secrets.encryption_key.as_ref(), dir)
        .and_then(|cipher| store::verify(dir, &cipher));
    match result {
        Ok(report) => {
            println!(
                "ok: {} connections, {} secrets decrypted, generation {}",
                report.connections, report.secrets, report.generation
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("store verify failed: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn restore(settings: &Settings, from: Option<&Path>) -> ExitCode {
    let dir = &settings.store.data_dir;
    let result = Cipher::load_existing(settings.secrets.encryption_key.as_ref(), dir)
        .and_then(|cipher| store::restore(dir, from, &cipher));
    match result {
        Ok((path, report)) => {
            println!(
                "restored {} ({} connections, generation {})",
                path.display(),
                report.connections,
                report.generation
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("store restore failed: {e}");
            ExitCode::FAILURE
        }
    }
}
