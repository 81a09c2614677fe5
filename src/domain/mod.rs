//! The domain model every layer shares: connections and the facts shown of
//! them, providers, kinds, error classes, health, and the records kept
//! beside connections (refresh runs, export jobs, webhook deliveries, data
//! deletion requests). It sits on the ground floor and imports nothing of
//! ours but leaf modules, so any layer may depend on it.

mod connection;
mod data_deletion;
mod delivery;
mod error_class;
mod export_job;
mod facts;
mod health;
pub mod policy;
mod provider;
mod refresh_run;

pub use connection::{Connection, EncryptedSecret, StoredSecrets};
pub use data_deletion::{DeletionRequest, DeletionStatus};
pub use delivery::{AttemptOutcome, Delivery, DeliveryStatus};
pub use error_class::{ErrorClass, LastError};
pub use export_job::{ExportJob, ExportStatus};
pub use facts::ConnectionFacts;
pub use health::Health;
pub use policy::{HealthPolicy, RenewRule};
pub use provider::{ConnectionKind, Provider};
pub use refresh_run::{RefreshRun, RunError, RunStatus, Tally};
