//! Per-connection leases kept in memory: enough for a store that one process
//! holds (the file lock sees to that), since a restart ends every holder
//! along with its leases. The fencing tokens only ever grow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::StoreError;
use super::storage::{FencingToken, Lease};
use crate::clock::SharedClock;

pub struct Leases {
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_token: u64,
    by_connection: HashMap<String, Entry>,
}

struct Entry {
    /// The newest token granted on the connection; older ones are fenced off.
    newest: FencingToken,
    /// The current holder and until when, unless released.
    held: Option<(String, DateTime<Utc>)>,
}

impl Leases {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lease table lock")
    }

    /// A new lease on `id` unless another holder's lease is live.
    pub fn grant(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.grant_if(id, holder, ttl, |other| other != holder)
    }

    /// A new lease on `id` unless any lease on it is live, this holder's too.
    pub fn claim(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.grant_if(id, holder, ttl, |_| true)
    }

    /// A new lease on `id`, refused while a live lease's holder `blocks`.
    fn grant_if(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
        blocks: impl Fn(&str) -> bool,
    ) -> Result<Lease, StoreError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut state = self.state();
        if let Some(Entry {
            held: Some((other, until)),
            ..
        }) = state.by_connection.get(id)
            && blocks(other)
            && *until > now
        {
            return Err(StoreError::Leased {
                id: id.to_string(),
                holder: other.clone(),
                expires_at: *until,
            });
        }
        state.last_token += 1;
        let fencing_token = FencingToken(state.last_token);
        state.by_connection.insert(
            id.to_string(),
            Entry {
                newest: fencing_token,
                held: Some((holder.to_string(), expires_at)),
            },
        );
        Ok(Lease {
            connection_id: id.to_string(),
            holder: holder.to_string(),
            fencing_token,
            expires_at,
        })
    }

    /// Ends `lease` if it is still the newest on its connection.
    pub fn release(&self, lease: &Lease) {
        self.end(&lease.connection_id, lease.fencing_token);
    }

    /// Ends the lease `token` on `id` if it is still the newest.
    pub fn end(&self, id: &str, token: FencingToken) {
        if let Some(entry) = self.state().by_connection.get_mut(id)
            && entry.newest == token
        {
            entry.held = None;
        }
    }

    /// `Ok` unless a lease newer than `token` was granted on `id`.
    pub fn check_fence(&self, id: &str, token: FencingToken) -> Result<(), StoreError> {
        match self.state().by_connection.get(id) {
            Some(entry) if entry.newest > token => Err(StoreError::StaleLease {
                id: id.to_string(),
                token: token.0,
                newest: entry.newest.0,
            }),
            _ => Ok(()),
        }
    }
}
