//! A lease this instance holds: given back when the refresh is done with
//! it, or when it is dropped midway (a caller that went away cancels its
//! refresh), so that it never lingers until it runs out and holds up a
//! sweep.

use std::sync::Arc;

use crate::store::{ConnectionStore, FencingToken, Lease};

pub(super) struct HeldLease {
    lease: Option<Lease>,
    store: Arc<dyn ConnectionStore>,
}

impl HeldLease {
    pub(super) fn new(lease: Lease, store: Arc<dyn ConnectionStore>) -> Self {
        Self {
            lease: Some(lease),
            store,
        }
    }

    pub(super) fn fencing_token(&self) -> FencingToken {
        self.lease
            .as_ref()
            .expect("held until given back")
            .fencing_token
    }

    /// Gives the lease back now.
    pub(super) async fn give_back(mut self) {
        if let Some(lease) = self.lease.take() {
            release(self.store.as_ref(), &lease).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        // Outside a runtime (shutting down) it runs out on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            runtime.spawn(async move { release(store.as_ref(), &lease).await });
        }
    }
}

/// Releases `lease`; one that cannot be is left to run out.
async fn release(store: &dyn ConnectionStore, lease: &Lease) {
    if let Err(e) = store.release(lease).await {
        tracing::warn!(connection = %lease.connection_id, error = %e, "cannot release a lease; it runs out on its own");
    }
}
