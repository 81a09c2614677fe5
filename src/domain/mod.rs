//! The domain model every layer shares: connections, providers, kinds, error
//! classes and health. It sits on the ground floor and imports nothing of
//! ours but leaf modules, so any layer may depend on it.

mod connection;
mod error_class;
mod health;
pub mod policy;
mod provider;

pub use connection::{Connection, EncryptedSecret, StoredSecrets};
pub use error_class::{ErrorClass, LastError};
pub use health::Health;
pub use policy::{HealthPolicy, RenewRule};
pub use provider::{ConnectionKind, Provider};
