//! Graph batch requests (wire-spec 6.5): `POST /{v}/` with a `batch` JSON
//! array of at most 50 ops, each run as a real request with the outer token;
//! answers 200 with one `{code, headers?, body}` (body a JSON string) or
//! `null` per op, in order.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::Sim;
use super::errors::GraphError;
use super::graph::{Params, check_proof, error_response, insert_header, number, ok_json, respond};
use super::wire::encode_component;

/// Most ops one batch may hold.
const MAX_OPS: usize = 50;

/// Marks the response of a batch op that must come back as `null`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchNull;

/// `/{v}/` (or `/{v}`): the batch endpoint.
pub(crate) fn is_batch_path(path: &str) -> bool {
    let trimmed = path.trim_matches('/');
    !trimmed.is_empty() && !trimmed.contains('/') && trimmed.starts_with('v')
}

/// The whole batch: stats under `/batch`, faults on the outer path, then
/// each op through the normal request path.
pub(crate) async fn run(sim: &Sim, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let version = uri.path().trim_matches('/').to_string();
    *sim.stats().entry("/batch".into()).or_default() += 1;
    let decision = sim.faults().decide(uri.path());
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let mut response = match decision.error {
        Some(error) => error_response(&error),
        None => match ops(sim, &version, uri, headers, body).await {
            Ok(results) => ok_json(Value::Array(results)),
            Err(error) => error_response(&error),
        },
    };
    let pct = number(decision.usage_pct.unwrap_or(1.0));
    let usage = json!({"call_count": pct, "total_cputime": pct, "total_time": pct});
    let out = response.headers_mut();
    insert_header(out, "x-app-usage", &usage.to_string());
    insert_header(out, "facebook-api-version", &version);
    response
}

async fn ops(
    sim: &Sim,
    version: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Value>, GraphError> {
    let params = Params::new(uri.query(), headers, body);
    let Some(token) = params.token.clone() else {
        return Err(GraphError::missing_token(
            104,
            "An access token is required to request this resource.",
        ));
    };
    check_proof(sim, &params, &token)?;
    let Some(batch) = params.get("batch") else {
        return Err(GraphError::param("(#100) The parameter batch is required"));
    };
    let ops: Vec<Value> = serde_json::from_str(batch)
        .map_err(|_| GraphError::param("(#100) The parameter batch must be a JSON array"))?;
    if ops.len() > MAX_OPS {
        return Err(GraphError::param(format!(
            "(#100) Too many requests in batch message. Maximum batch size is {MAX_OPS}"
        )));
    }
    let include_headers = params.get("include_headers") != Some("false");
    let proof = params
        .get("appsecret_proof")
        .unwrap_or_default()
        .to_string();
    let mut results = Vec::with_capacity(ops.len());
    for op in &ops {
        let response = match op_request(op, version, &token, &proof) {
            Ok((method, op_uri, op_body)) => {
                respond(sim, &method, &op_uri, headers, op_body.as_bytes(), true).await
            }
            Err(error) => error_response(&error),
        };
        results.push(op_result(response, include_headers).await);
    }
    Ok(results)
}

/// The method, URI and form body of one op; the outer token and proof are
/// added when the op carries no token of its own.
fn op_request(
    op: &Value,
    version: &str,
    token: &str,
    proof: &str,
) -> Result<(Method, Uri, String), GraphError> {
    let method = op["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| GraphError::param("(#100) Unsupported method in batch op"))?;
    let Some(relative) = op["relative_url"].as_str() else {
        return Err(GraphError::param(
            "(#100) Each batch op needs a relative_url",
        ));
    };
    let relative = relative.trim_start_matches('/');
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let first = path.split('/').next().unwrap_or_default();
    let versioned = first.starts_with('v') && first[1..].contains('.');
    let path = if versioned {
        format!("/{path}")
    } else {
        format!("/{version}/{path}")
    };
    let mut query = query.to_string();
    let op_body = op["body"].as_str().unwrap_or_default().to_string();
    let has_token = query
        .split('&')
        .chain(op_body.split('&'))
        .any(|p| p.starts_with("access_token="));
    if !has_token {
        let sep = if query.is_empty() { "" } else { "&" };
        query = format!("{query}{sep}access_token={}", encode_component(token));
        // Without "Require App Secret" the outer call may carry no proof.
        if !proof.is_empty() {
            query = format!("{query}&appsecret_proof={}", encode_component(proof));
        }
    }
    let uri: Uri = format!("{path}?{query}")
        .parse()
        .map_err(|_| GraphError::param("(#100) Invalid relative_url in batch op"))?;
    Ok((method, uri, op_body))
}

/// `{"code","headers"?,"body":"<json>"}`, or `null` for a `batch_null` op.
async fn op_result(response: Response, include_headers: bool) -> Value {
    if response.extensions().get::<BatchNull>().is_some() {
        return Value::Null;
    }
    let code = response.status().as_u16();
    let headers: Vec<Value> = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "content-length")
        .map(|(name, value)| {
            if name == "content-type" {
                json!({"name": "Content-Type", "value": "text/javascript; charset=UTF-8"})
            } else {
                json!({"name": name.as_str(), "value": value.to_str().unwrap_or_default()})
            }
        })
        .collect();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut result = json!({
        "code": code,
        "body": String::from_utf8_lossy(&bytes),
    });
    if include_headers {
        result["headers"] = json!(headers);
    }
    result
}
