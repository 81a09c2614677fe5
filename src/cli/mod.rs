//! The command line: parses arguments and runs one command. Exit codes:
//! 0 success, 1 the command failed, 2 bad arguments or configuration.

mod demo;
mod keys_cmd;
mod output;
mod serve;
mod store_cmd;
mod tokens_cmd;

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
    /// `--config` and `--data-dir`, before or after the subcommand.
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service
    Serve {
        /// Listen address (HOST:PORT), overriding server.addr
        #[arg(long)]
        addr: Option<String>,
    },
    /// Start the simulator and the service wired to it with demo data (no platform account needed)
    Demo {
        /// Address of the demo service
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
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
    /// Print a fresh base64url 256-bit encryption key; with --previous, the
    /// environment lines that make it current and keep the configured keys
    /// as previous ones (the first step of a rotation)
    Keygen {
        #[arg(long, conflicts_with = "webhook")]
        previous: bool,
        /// Print a Standard Webhooks signing secret (`whsec_...`) for
        /// TOKENKEEPER_WEBHOOK_SECRET instead
        #[arg(long)]
        webhook: bool,
    },
    /// Which keys seal the stored secrets, and rotating them to the current key
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Show, refresh or check stored tokens (exit 1 when any failed)
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Check or recover the token store
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// The configured keys, and how many secrets each seals
    Status,
    /// Re-seal every secret under the current key (and bind it to its record),
    /// while refreshes go on; safe to run again after a crash. On the JSON
    /// store, while the service runs, use POST /internal/keys/rotate
    Rotate {
        /// Connections re-sealed at once
        #[arg(long, default_value_t = crate::store::rotation::DEFAULT_AT_ONCE as u64,
              value_parser = clap::value_parser!(u64).range(1..=1_000))]
        at_once: u64,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Load the store, check its checksum and key, and decrypt every secret
    Verify,
    /// Replace the store with a backup that verifies (the newest good one by default)
    Restore {
        /// A backup file to restore instead of the newest good one
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Bring the PostgreSQL schema up to date (the service also does at start);
    /// with --to postgres, copy the JSON store into TOKENKEEPER_DATABASE_URL
    Migrate {
        /// Copy the JSON store in data_dir into this backend (stop the service first)
        #[arg(long, value_enum)]
        to: Option<store_cmd::Target>,
    },
    /// Write the PostgreSQL store (TOKENKEEPER_DATABASE_URL) out as a new JSON
    /// store, its records exactly as stored (JWE secrets unchanged), then check
    /// it by count and checksum; an existing store is never overwritten
    Export {
        /// The data folder of the new JSON store (tokens.json is written
        /// there; open it with --data-dir DIR); refused if it holds a store
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// One line per connection (table), counts (summary), or JSON for scripts
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: tokens_cmd::Format,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Refresh what is due (or everything with --force); --dry-run lists what would happen
    Refresh {
        /// Every selected connection
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// One connection
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Refresh even what is not due
        #[arg(long)]
        force: bool,
        /// Show what would be refreshed and why, changing nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate every connection upstream and update its health
    Check {
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Only this provider (facebook, tiktok or tiktok_shop, google)
    #[arg(long)]
    provider: Option<String>,
    /// Only this team
    #[arg(long)]
    team_id: Option<String>,
}

impl FilterArgs {
    fn selection(&self, id: Option<String>) -> Result<tokens_cmd::Selection, String> {
        Ok(tokens_cmd::Selection {
            provider: self
                .provider
                .as_deref()
                .map(tokens_cmd::parse_provider)
                .transpose()?,
            team_id: self.team_id.clone(),
            id,
        })
    }
}

/// Flags every command that touches the store accepts. Every command builds
/// its settings from them the one way `serve` does ([`CommonArgs::settings`]):
/// defaults, `config/local.toml`, `--config`, the environment, then flags.
#[derive(Debug, Args)]
struct CommonArgs {
    /// A configuration file layered over the defaults
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The data folder, overriding store.data_dir
    #[arg(long, value_name = "DIR", global = true)]
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
    let Cli { command, common } = Cli::parse();
    let settings = |addr: Option<String>| common.settings(addr);
    match command {
        Command::Serve { addr } => match settings(addr) {
            Ok(settings) => serve::run(settings),
            Err(e) => config_failure(e),
        },
        Command::Demo { addr } => {
            if common.config.is_some() || common.data_dir.is_some() {
                eprintln!(
                    "tokenkeeper: demo writes its own configuration and data folder; \
                     --config and --data-dir do not apply"
                );
                return ExitCode::from(EXIT_USAGE);
            }
            demo::run(addr)
        }
        Command::Simulate { port, host } => serve::simulate(std::net::SocketAddr::new(host, port)),
        Command::Keygen { webhook: true, .. } => output::finish(
            &format!("{}\n", crate::secret::generate_webhook_secret()),
            ExitCode::SUCCESS,
        ),
        Command::Keygen {
            previous: false, ..
        } => output::finish(
            &format!("{}\n", crate::secret::generate_key()),
            ExitCode::SUCCESS,
        ),
        Command::Keygen { previous: true, .. } => match settings(None) {
            Ok(settings) => keys_cmd::keygen_previous(&settings),
            Err(e) => config_failure(e),
        },
        Command::Keys { command } => match settings(None) {
            Ok(settings) => {
                quiet_logs(&settings);
                match command {
                    KeysCommand::Status => keys_cmd::status(&settings),
                    KeysCommand::Rotate { at_once } => {
                        keys_cmd::rotate(&settings, at_once as usize)
                    }
                }
            }
            Err(e) => config_failure(e),
        },
        Command::Tokens { command } => match settings(None) {
            Ok(settings) => tokens(command, settings),
            Err(e) => config_failure(e),
        },
        Command::Store { command } => match settings(None) {
            Ok(settings) => match command {
                StoreCommand::Verify => store_cmd::verify(&settings),
                StoreCommand::Restore { from } => store_cmd::restore(&settings, from.as_deref()),
                StoreCommand::Migrate { to } => store_cmd::migrate(&settings, to),
                StoreCommand::Export { to } => store_cmd::export(&settings, &to),
            },
            Err(e) => config_failure(e),
        },
    }
}

/// The configured keyring: the current key (environment, else the key file
/// in the data folder; never generated) and the previous keys.
fn keyring(settings: &Settings) -> Result<crate::store::Cipher, crate::store::StoreError> {
    crate::store::Cipher::load_existing(
        settings.secrets.encryption_key.as_ref(),
        &settings.store.data_dir,
    )?
    .with_previous(settings.secrets.previous_keys.as_ref())
}

fn usage(message: String) -> ExitCode {
    eprintln!("tokenkeeper: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn tokens(command: TokensCommand, settings: Settings) -> ExitCode {
    match command {
        TokensCommand::Status { format, filter } => match filter.selection(None) {
            Ok(selection) => tokens_cmd::status(&settings, format, &selection),
            Err(e) => usage(e),
        },
        TokensCommand::Refresh {
            all,
            id,
            filter,
            force,
            dry_run,
        } => {
            if !all && id.is_none() {
                return usage("choose --all or --id ID".into());
            }
            let selection = match filter.selection(id) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            quiet_logs(&settings);
            let options = tokens_cmd::RunOptions {
                selection,
                force,
                check_only: false,
            };
            if dry_run {
                tokens_cmd::dry_run(settings, options)
            } else {
                tokens_cmd::run(settings, options)
            }
        }
        TokensCommand::Check { filter } => {
            let selection = match filter.selection(None) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            quiet_logs(&settings);
            tokens_cmd::run(
                settings,
                tokens_cmd::RunOptions {
                    selection,
                    force: false,
                    check_only: true,
                },
            )
        }
    }
}

/// The exit code for a store that cannot be opened: a missing or unreadable
/// key is configuration (2), like a bad setting; anything else failed (1).
fn store_failure(err: &crate::store::StoreError) -> ExitCode {
    match err {
        crate::store::StoreError::Key { .. } => ExitCode::from(EXIT_USAGE),
        _ => ExitCode::FAILURE,
    }
}

/// Commands print their own results; the log only says what went wrong.
fn quiet_logs(settings: &Settings) {
    let logging = crate::config::LoggingSettings {
        format: settings.logging.format,
        level: "warn".into(),
    };
    crate::telemetry::init(&logging, std::io::stderr);
}

fn config_failure(err: ConfigError) -> ExitCode {
    eprintln!("tokenkeeper: {err}");
    ExitCode::from(EXIT_USAGE)
}
