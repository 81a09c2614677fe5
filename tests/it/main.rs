//! Integration tests: one binary, one module per area.

mod browser;
mod cli;
mod cli_demo;
mod cli_tokens;
mod concurrent_connect;
mod export;
mod facebook;
mod fb_support;
mod graph_throttle;
mod handout_audit;
mod helpers;
mod http;
mod insights;
mod metrics;
mod openapi;
mod providers;
mod revoked_elsewhere;
mod sim_insights;
mod sim_providers;
mod simulator;
mod spec_calls;
mod store_crash;
mod store_durability;
mod store_safety;
mod tenancy;
mod wrong_provider;
