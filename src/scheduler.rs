//! The background refresh schedule: a sweep every interval (plus jitter),
//! never overlapping a running one, until cancelled.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RefreshSettings;
use crate::store::Provider;
use crate::tokens::{SweepFilter, TokenManager};

pub fn spawn(
    tokens: Arc<TokenManager>,
    settings: RefreshSettings,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let jitter = if settings.jitter_secs == 0 {
                0
            } else {
                rand::random_range(0..=settings.jitter_secs)
            };
            let wait = Duration::from_secs(settings.interval_secs + jitter);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let filter = SweepFilter {
                provider: Some(Provider::Facebook),
                ..SweepFilter::default()
            };
            match tokens.start_sweep("schedule", filter) {
                Ok((_, handle)) => {
                    let _ = handle.await;
                }
                Err(running) => {
                    tracing::info!(run = %running, "scheduled sweep skipped: a run is in progress");
                }
            }
        }
    })
}
