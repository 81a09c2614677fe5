//! Fault rules set through `/_sim/faults`: latency, injected Graph errors
//! (count-limited, random or permanent) and usage-header percentages.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::errors::GraphError;

/// An error to answer with instead of the real handler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ErrorSpec {
    #[serde(default = "default_status")]
    pub http_status: u16,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    /// Minutes; adds `X-Business-Use-Case-Usage` at 100 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_time_to_regain_access: Option<u64>,
    /// Google OAuth `error` (default `invalid_grant`); ignored by Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_error: Option<String>,
    /// Google Ads `errorCode`, a one-key object such as
    /// `{"quotaError":"RESOURCE_EXHAUSTED"}`; ignored by Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<serde_json::Value>,
}

fn default_status() -> u16 {
    400
}

/// The body of `POST /_sim/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FaultSpec {
    /// Substring of the request path; empty matches every Graph call.
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_pct: Option<f64>,
    /// Batch ops matching the rule come back as `null` (never applies to
    /// calls outside a batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_null: Option<bool>,
    /// Also accepted next to `error` rather than inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_time_to_regain_access: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub spec: FaultSpec,
}

/// What the matching rules do to one call.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub error: Option<GraphError>,
    pub usage_pct: Option<f64>,
    pub regain_minutes: Option<u64>,
    /// The call is a batch op that answers `null`.
    pub batch_null: bool,
    /// The rule's error as written, for envelopes other than Graph's.
    pub error_spec: Option<ErrorSpec>,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Rule>,
    next_id: u64,
}

impl Faults {
    pub fn add(&mut self, spec: FaultSpec) -> Result<String, String> {
        if let Some(p) = spec.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err("probability must be between 0 and 1".into());
        }
        if spec.latency_ms.is_none()
            && spec.error.is_none()
            && spec.usage_pct.is_none()
            && spec.batch_null != Some(true)
        {
            return Err("a fault needs latency_ms, error, usage_pct or batch_null".into());
        }
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.rules.push(Rule {
            id: id.clone(),
            spec,
        });
        Ok(id)
    }

    pub fn clear(&mut self) -> usize {
        std::mem::take(&mut self.rules).len()
    }

    pub fn list(&self) -> &[Rule] {
        &self.rules
    }

    /// Applies the rules matching `path` to one call, using up counts.
    pub fn decide(&mut self, path: &str) -> Decision {
        self.decide_call(path, false)
    }

    /// As `decide`, for one op of a batch, where `batch_null` rules apply.
    pub fn decide_batch_op(&mut self, path: &str) -> Decision {
        self.decide_call(path, true)
    }

    fn decide_call(&mut self, path: &str, batch_op: bool) -> Decision {
        let mut decision = Decision::default();
        for rule in &mut self.rules {
            let spec = &mut rule.spec;
            if !path.contains(spec.path.as_str()) {
                continue;
            }
            let nulls = spec.batch_null == Some(true);
            if nulls && (!batch_op || decision.batch_null) {
                continue;
            }
            // An error is answered once; later error rules stay unused.
            if spec.error.is_some() && decision.error.is_some() {
                continue;
            }
            let fires = match (spec.count, spec.probability) {
                (Some(0), _) => false,
                (Some(_), _) => true,
                (None, Some(p)) => rand::random::<f64>() < p,
                (None, None) => true,
            };
            if !fires {
                continue;
            }
            if let Some(n) = spec.count.as_mut() {
                *n -= 1;
            }
            if let Some(ms) = spec.latency_ms {
                decision.latency += Duration::from_millis(ms);
            }
            decision.batch_null |= nulls;
            if let Some(pct) = spec.usage_pct {
                decision.usage_pct = Some(pct);
            }
            if let Some(error) = &spec.error {
                decision.regain_minutes = error
                    .estimated_time_to_regain_access
                    .or(spec.estimated_time_to_regain_access);
                decision.error = Some(graph_error(error));
                decision.error_spec = Some(error.clone());
            }
        }
        self.rules.retain(|r| r.spec.count != Some(0));
        decision
    }
}

fn graph_error(spec: &ErrorSpec) -> GraphError {
    let message = spec.message.clone().unwrap_or_else(|| match spec.code {
        1 => "An unknown error occurred".into(),
        2 => "An unexpected error has occurred. Please retry your request later.".into(),
        4 => "(#4) Application request limit reached".into(),
        17 => "(#17) User request limit reached".into(),
        32 => "(#32) Page request limit reached".into(),
        190 => "Error validating access token: The session has been invalidated.".into(),
        80001 => "(#80001) There have been too many calls to this Page account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".into(),
        code => format!("(#{code}) Simulated error"),
    });
    let kind = spec.kind.clone().unwrap_or_else(|| "OAuthException".into());
    let mut error = GraphError::new(spec.http_status, spec.code, &kind, message);
    error.subcode = spec.subcode;
    error.is_transient = spec.is_transient;
    if spec.code == 190 {
        error.challenge = Some("invalid_token");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_rule(count: Option<u64>) -> FaultSpec {
        serde_json::from_value(serde_json::json!({
            "path": "/me", "error": {"code": 2}, "count": count
        }))
        .unwrap()
    }

    #[test]
    fn counted_error_rules_fire_that_many_times_then_vanish() {
        let mut faults = Faults::default();
        faults.add(error_rule(Some(2))).unwrap();
        assert!(faults.decide("/v25.0/me").error.is_some());
        assert!(faults.decide("/v25.0/debug_token").error.is_none());
        assert!(faults.decide("/v25.0/me").error.is_some());
        assert!(faults.decide("/v25.0/me").error.is_none());
        assert!(faults.list().is_empty());
    }
}
