//! Integration tests: one binary, one module per area.

mod cli;
mod export;
mod facebook;
mod fb_support;
mod helpers;
mod http;
mod insights;
mod openapi;
mod sim_insights;
mod sim_providers;
mod simulator;
mod store_crash;
mod store_durability;
