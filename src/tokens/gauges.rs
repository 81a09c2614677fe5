//! The figures a metrics scrape shows about the stored connections, computed
//! at scrape time from the manager's connections and health windows.

use crate::metrics::StoreGauges;

use super::error::TokenError;
use super::listing::ConnectionFilter;
use super::manager::TokenManager;
use crate::domain::policy;

impl TokenManager {
    /// The store gauges of this application, now.
    pub async fn gauges(&self) -> Result<StoreGauges, TokenError> {
        let now = self.now();
        let mut gauges = StoreGauges::new(now);
        for conn in self.list(&ConnectionFilter::default()).await? {
            let lapse_at = policy::lapse_at(&conn, now, self.policy(conn.provider));
            gauges.add(&conn, self.health(&conn), lapse_at);
        }
        if let Ok(graph) = self.registry.facebook() {
            gauges.set_facebook_usage(graph.usage_pct());
        }
        Ok(gauges)
    }
}
