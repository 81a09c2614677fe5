//! The token lifecycle: health, connect, refresh (single-flight, retried),
//! validation, sweeps, and the notifications they trigger.

mod alerts;
mod disconnect;
mod error;
mod expiring;
mod gauges;
mod held_lease;
mod listing;
mod manager;
pub mod need;
mod refresh;
mod revoked;
pub mod single_flight;
pub mod sweep;

pub use crate::domain::{RefreshRun, RunError};
pub use crate::providers::connect::Upsert;
pub use disconnect::{DerivedRef, Disconnect, DisconnectError, Removed, Revocation};
pub use error::TokenError;
pub use listing::ConnectionFilter;
pub use manager::{TokenManager, ValidToken};
pub use need::Need;
pub use revoked::Subject;
pub use sweep::{Plan, Runs, SweepFilter};
