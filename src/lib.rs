//! tokenkeeper: keeps marketing platforms' access tokens alive and serves the
//! insights they unlock.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod secret;
pub mod simulator;
pub mod store;
pub mod telemetry;
