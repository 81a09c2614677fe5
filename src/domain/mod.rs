//! The domain model every layer shares: connections and the facts shown of
//! them, providers, kinds, error classes and health. It sits on the ground
//! floor and imports nothing of ours but leaf modules, so any layer may
//! depend on it.

mod connection;
mod error_class;
mod facts;
mod health;
mod provider;

pub use connection::{Connection, EncryptedSecret, StoredSecrets};
pub use error_class::{ErrorClass, LastError};
pub use facts::ConnectionFacts;
pub use health::Health;
pub use provider::{ConnectionKind, Provider};
