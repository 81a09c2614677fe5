//! The command line: parses arguments and runs one command. Exit codes:
//! 0 success, 1 the command failed, 2 bad arguments or configuration.

mod serve;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, Overrides, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "tokenkeeper",
    version,
    about = "Keeps marketing platforms' access tokens alive and serves the insights they unlock"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service
    Serve {
        #[command(flatten)]
        common: CommonArgs,
        /// Listen address (HOST:PORT), overriding server.addr
        #[arg(long)]
        addr: Option<String>,
    },
    /// Run the upstream simulator (Facebook Graph, TikTok Shop, Google) for demos and tests
    Simulate {
        /// Port to listen on (0 picks a free one)
        #[arg(long, default_value_t = 9090)]
        port: u16,
        /// Address to bind
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
    },
    /// Print a fresh base64url 256-bit encryption key
    Keygen,
    /// Check or recover the token store
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Load the store, check its checksum and key, and decrypt every secret
    Verify {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Replace the store with a backup that verifies (the newest good one by default)
    Restore {
        #[command(flatten)]
        common: CommonArgs,
        /// A backup file to restore instead of the newest good one
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// Flags every command that touches the store accepts.
#[derive(Debug, Args)]
struct CommonArgs {
    /// A configuration file layered over the defaults
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data folder, overriding store.data_dir
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl CommonArgs {
    fn settings(&self, addr: Option<String>) -> Result<Settings, ConfigError> {
        Settings::load(&Overrides {
            config_file: self.config.clone(),
            addr,
            data_dir: self.data_dir.clone(),
        })
    }
}

/// Exit code for bad arguments or configuration.
const EXIT_USAGE: u8 = 2;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, addr } => match common.settings(addr) {
            Ok(settings) => serve::run(settings),
            Err(e) => config_failure(e),
        },
        Command::Simulate { port, host } => serve::simulate(std::net::SocketAddr::new(host, port)),
        Command::Keygen => {
            println!("{}", crate::store::crypto::generate_key());
            ExitCode::SUCCESS
        }
        Command::Store { command } => match command {
            StoreCommand::Verify { common } => match common.settings(None) {
                Ok(settings) => store_cmd::verify(&settings),
                Err(e) => config_failure(e),
            },
            StoreCommand::Restore { common, from } => match common.settings(None) {
                Ok(settings) => store_cmd::restore(&settings, from.as_deref()),
                Err(e) => config_failure(e),
            },
        },
    }
}

fn config_failure(err: ConfigError) -> ExitCode {
    eprintln!("tokenkeeper: {err}");
    ExitCode::from(EXIT_USAGE)
}
