//! `tokenkeeper serve`: run the service until SIGINT or SIGTERM.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::app::{Application, StartError};
use crate::config::{LogFormat, LoggingSettings, Settings};

pub fn run(settings: Settings) -> ExitCode {
    crate::telemetry::init(&settings.logging, std::io::stderr);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokenkeeper: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("tokenkeeper: {e}{}", busy_port_hint(&e));
                return match e {
                    StartError::Config(_) => ExitCode::from(2),
                    _ => ExitCode::FAILURE,
                };
            }
        };
        let cancel = CancellationToken::new();
        tokio::spawn(wait_for_signal(cancel.clone()));
        match app.run(cancel).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// For a port another process holds: how to pick another.
pub(super) fn busy_port_hint(e: &StartError) -> &'static str {
    match e {
        StartError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            "\n(another process listens there: choose another address with --addr HOST:PORT, e.g. --addr 127.0.0.1:8081)"
        }
        _ => "",
    }
}

/// Until SIGINT (Ctrl-C) or SIGTERM (`kill`, systemd, docker stop).
pub(super) async fn wait_for_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
    cancel.cancel();
}

/// `tokenkeeper simulate`: the upstream simulator until SIGINT or SIGTERM.
/// App credentials come from the same variables the service reads.
pub fn simulate(addr: std::net::SocketAddr) -> ExitCode {
    let logging = LoggingSettings {
        format: LogFormat::Human,
        level: "info".into(),
    };
    crate::telemetry::init(&logging, std::io::stderr);
    let config = crate::simulator::SimConfig::from_env();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        let sim = match crate::simulator::start(config, addr).await {
            Ok(sim) => sim,
            Err(e) => {
                eprintln!("tokenkeeper: cannot start the simulator on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("simulator listening on {}", sim.base_url());
        let cancel = CancellationToken::new();
        wait_for_signal(cancel).await;
        ExitCode::SUCCESS
    })
}
