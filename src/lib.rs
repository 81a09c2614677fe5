//! tokenkeeper: keeps marketing platforms' access tokens alive and serves the
//! insights they unlock.

pub mod access;
pub mod api;
pub mod app;
mod atomic_file;
pub mod audit;
pub mod cadence;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod erasure;
pub mod export;
pub mod insights;
pub mod metrics;
pub mod notify;
pub mod providers;
pub mod scheduler;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod store;
pub mod telemetry;
pub mod tokens;
