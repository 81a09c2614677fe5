//! A lease this instance holds: given back when the refresh is done with
//! it, or when it is dropped midway (a caller that went away cancels its
//! refresh), so that it never lingers until it runs out and holds up a
//! sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::domain::Connection;
use crate::store::{ConnectionStore, FencingToken, Lease};

pub(super) struct HeldLease {
    lease: Option<Lease>,
    /// The connection as read under this lease, when a claim read it with
    /// the lease: nobody else refreshes it meanwhile, so it need not be
    /// read again.
    claimed: Option<Arc<Connection>>,
    /// A write ended the lease (`WriteGuard::FencedLast`).
    ended: AtomicBool,
    store: Arc<dyn ConnectionStore>,
}

impl HeldLease {
    pub(super) fn new(lease: Lease, store: Arc<dyn ConnectionStore>) -> Self {
        Self {
            lease: Some(lease),
            claimed: None,
            ended: AtomicBool::new(false),
            store,
        }
    }

    /// A lease a claim granted together with `conn`.
    pub(super) fn claimed(
        lease: Lease,
        conn: Arc<Connection>,
        store: Arc<dyn ConnectionStore>,
    ) -> Self {
        let mut held = Self::new(lease, store);
        held.claimed = Some(conn);
        held
    }

    pub(super) fn claimed_record(&self) -> Option<&Arc<Connection>> {
        self.claimed.as_ref()
    }

    /// Marks the lease ended by the write that used it last, so that it is
    /// not given back again.
    pub(super) fn ended_by_write(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    fn still_held(&mut self) -> Option<Lease> {
        let lease = self.lease.take()?;
        (!self.ended.load(Ordering::Relaxed)).then_some(lease)
    }

    pub(super) fn fencing_token(&self) -> FencingToken {
        self.lease
            .as_ref()
            .expect("held until given back")
            .fencing_token
    }

    /// Gives the lease back now.
    pub(super) async fn give_back(mut self) {
        if let Some(lease) = self.still_held() {
            release(self.store.as_ref(), &lease).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(lease) = self.still_held() else {
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
