//! Integration tests: one binary, one module per area.

mod access;
mod browser;
mod cli;
mod cli_tokens;
mod connections;
mod export;
mod facebook;
mod fb_support;
mod helpers;
mod http;
mod insights;
mod metrics;
mod openapi;
mod providers;
mod sim_insights;
mod sim_providers;
mod simulator;
mod store_crash;
mod store_durability;
