//! The Graph API over HTTP: version-prefixed routes, parameter and token
//! extraction, `appsecret_proof`, faults, stats and the usage headers, each
//! scoped as Meta scopes it: the app, the call's business object and use
//! case, its ad account.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Sim;
use super::consent::found;
use super::edges::EdgeRoute;
use super::errors::GraphError;
use super::oauth::DialogRequest;
use super::wire::{encode_component, parse_form, proof_matches, trace_id};

/// Most pages `/me/accounts` returns at once.
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 25;

enum Route {
    Dialog,
    AccessToken,
    DebugToken,
    Me,
    MeAccounts,
    /// `/{user-id}/permissions` (`me` too): read or revoke the login.
    Permissions(String),
    Node(String),
    /// Ads, pages-insights and business edges (`edges.rs`).
    Edge(EdgeRoute),
}

impl Route {
    /// `/{v}/…` with `v` like `v25.0`; the version comes back too.
    fn parse(path: &str) -> Option<(String, Route)> {
        let mut parts = path.trim_start_matches('/').split('/');
        let version = parts.next()?;
        if !is_version(version) {
            return None;
        }
        let rest: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
        let route = match rest.as_slice() {
            ["dialog", "oauth"] => Route::Dialog,
            ["oauth", "access_token"] => Route::AccessToken,
            ["debug_token"] => Route::DebugToken,
            ["me"] => Route::Me,
            ["me", "accounts"] => Route::MeAccounts,
            [id, "permissions"] => Route::Permissions(id.to_string()),
            [id] => Route::Node(id.to_string()),
            other => Route::Edge(EdgeRoute::parse(other)?),
        };
        Some((version.to_string(), route))
    }

    /// The `/_sim/stats` key.
    fn stat_key(&self, params: &Params) -> String {
        match self {
            Route::Dialog => "/dialog/oauth".into(),
            Route::AccessToken => {
                let grant = match params.get("grant_type") {
                    Some(grant) => grant,
                    None if params.get("code").is_some() => "authorization_code",
                    None => "none",
                };
                format!("/oauth/access_token:{grant}")
            }
            Route::DebugToken => "/debug_token".into(),
            Route::Me => "/me".into(),
            Route::MeAccounts => "/me/accounts".into(),
            Route::Permissions(_) => "/{user-id}/permissions".into(),
            Route::Node(_) => "/{id}".into(),
            Route::Edge(edge) => edge.stat_key().into(),
        }
    }
}

fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Query and form parameters (query wins), plus the token from
/// `access_token` or `Authorization: Bearer`.
pub(crate) struct Params {
    map: HashMap<String, String>,
    raw_query: String,
    pub(crate) token: Option<String>,
    token_in_query: bool,
}

impl Params {
    pub(crate) fn new(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut map = HashMap::new();
        if let Ok(form) = std::str::from_utf8(body) {
            map.extend(parse_form(form));
        }
        let raw_query = query.unwrap_or_default().to_string();
        let query_pairs = parse_form(&raw_query);
        let token_in_query = query_pairs.iter().any(|(k, _)| k == "access_token");
        map.extend(query_pairs);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .or_else(|| v.strip_prefix("OAuth "))
            })
            .map(|t| t.trim().to_string());
        let token = map
            .get("access_token")
            .filter(|t| !t.is_empty())
            .cloned()
            .or(bearer);
        Self {
            map,
            raw_query,
            token,
            token_in_query,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub(crate) fn fields(&self) -> Vec<&str> {
        self.get("fields")
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Every Graph call: a batch (`POST /{v}/`) or one request.
pub(crate) async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST && super::batch::is_batch_path(uri.path()) {
        return super::batch::run(&sim, &uri, &headers, &body).await;
    }
    respond(&sim, &method, &uri, &headers, &body, false).await
}

/// One Graph request (also one op of a batch): stats, faults, the endpoint,
/// then the usage headers. A batch op hit by a `batch_null` fault answers
/// with the `BatchNull` extension set.
pub(crate) async fn respond(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    batch_op: bool,
) -> Response {
    let Some((version, route)) = Route::parse(uri.path()) else {
        let error = GraphError::new(
            400,
            2500,
            "OAuthException",
            format!("Unknown path components: {}", uri.path()),
        );
        let mut response = error_response(&error);
        let usage = json!({"call_count": 1, "total_cputime": 1, "total_time": 1});
        insert_header(response.headers_mut(), "x-app-usage", &usage.to_string());
        return response;
    };
    let params = Params::new(uri.query(), headers, body);
    // A DELETE is counted apart from reads of the same path.
    let stat_key = match *method {
        Method::DELETE => format!("DELETE {}", route.stat_key(&params)),
        _ => route.stat_key(&params),
    };
    *sim.stats().entry(stat_key).or_default() += 1;
    let decision = if batch_op {
        sim.faults().decide_batch_op(uri.path())
    } else {
        sim.faults().decide(uri.path())
    };
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if decision.batch_null {
        let mut response = StatusCode::GATEWAY_TIMEOUT.into_response();
        response.extensions_mut().insert(super::batch::BatchNull);
        return response;
    }
    let object = business_object(sim, &route, params.token.as_deref());
    let ad_account = match &route {
        Route::Edge(edge) => edge.ad_account(),
        _ => None,
    };
    let levels = sim.usage();
    // The dialog is a browser page, outside every API limit.
    let refusal = match route {
        Route::Dialog => None,
        _ => levels.refusal(object.as_ref(), ad_account),
    };
    let app = levels.app();
    let own = object
        .as_ref()
        .and_then(|(id, use_case)| levels.business(id, use_case));
    let account = ad_account.and_then(|id| levels.ad_account(id));
    drop(levels);
    let mut response = match decision.error.as_ref().or(refusal.as_ref()) {
        Some(error) => error_response(error),
        None => answer(sim, method, &route, &params, uri, headers)
            .unwrap_or_else(|e| error_response(&e)),
    };
    // A usage fault sets every header of the calls it matches; a level only
    // those of its own scope.
    let pct = |level: Option<super::usage::Level>| {
        decision.usage_pct.or(level.map(|l| l.pct)).unwrap_or(1.0)
    };
    let out = response.headers_mut();
    let app_pct = number(pct(app));
    let usage = json!({"call_count": app_pct, "total_cputime": app_pct, "total_time": app_pct});
    insert_header(out, "x-app-usage", &usage.to_string());
    if object.is_some() || decision.regain_minutes.is_some() {
        let (key, use_case) = object.unwrap_or_else(|| (sim.config.fb_app_id.clone(), "pages"));
        let own_pct = pct(own);
        let call_count = if decision.regain_minutes.is_some() {
            100.0
        } else {
            own_pct
        };
        let regain = decision
            .regain_minutes
            .or(own.map(|l| l.regain_minutes))
            .unwrap_or(0);
        let buc = json!({ key: [{
            "type": use_case,
            "call_count": number(call_count),
            "total_cputime": number(own_pct),
            "total_time": number(own_pct),
            "estimated_time_to_regain_access": regain,
        }]});
        insert_header(out, "x-business-use-case-usage", &buc.to_string());
    }
    insert_header(out, "facebook-api-version", &version);
    if let Route::Edge(edge) = &route {
        edge.usage_headers(out, number(pct(account)));
    }
    response
}

/// The business object and use case a call counts against (the key of its
/// `X-Business-Use-Case-Usage`): the page, post, video, campaign, report
/// run or ad account its path names, else the page of a page token.
fn business_object(
    sim: &Sim,
    route: &Route,
    token: Option<&str>,
) -> Option<(String, &'static str)> {
    use super::edges::EdgeRoute as E;
    let world = sim.world();
    let node = |id: &str| -> Option<(String, &'static str)> {
        let w = &world.insights;
        if world.pages.contains_key(id) {
            Some((id.to_string(), "pages"))
        } else if let Some((page, _, _)) = w.post(id) {
            Some((page.to_string(), "pages"))
        } else if let Some((page, _, _)) = w.reel(id) {
            Some((page.to_string(), "pages"))
        } else if let Some(run) = w.report_runs.get(id) {
            Some((run.account_id.clone(), "ads_insights"))
        } else {
            w.campaigns
                .get(id)
                .map(|c| (c.account_id.clone(), "ads_management"))
        }
    };
    let named = match route {
        Route::Node(id) => node(id),
        Route::Edge(edge) => match edge {
            E::Campaigns(account) => Some((account.clone(), "ads_management")),
            E::AccountInsights(account) => Some((account.clone(), "ads_insights")),
            E::NodeInsights(id) => node(id).map(|(owner, use_case)| {
                // A campaign's insights are an insights call.
                let use_case = if use_case == "ads_management" {
                    "ads_insights"
                } else {
                    use_case
                };
                (owner, use_case)
            }),
            E::PublishedPosts(page) | E::VideoReels(page) => Some((page.clone(), "pages")),
            E::VideoInsights(video) => node(video),
            E::MeBusinesses | E::OwnedPages(_) => None,
        },
        _ => None,
    };
    named.or_else(|| {
        token
            .and_then(|t| world.page_of_token(t))
            .map(|page| (page, "pages"))
    })
}

/// Whole percentages print as integers, as Meta's usually do.
pub(crate) fn number(pct: f64) -> Value {
    if pct.fract() == 0.0 && pct.abs() < 1e15 {
        json!(pct as i64)
    } else {
        json!(pct)
    }
}

pub(crate) fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

pub(crate) fn error_response(error: &GraphError) -> Response {
    let trace = trace_id();
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(error.body(&trace))).into_response();
    let headers = response.headers_mut();
    if let Some(challenge) = error.challenge {
        let value = format!(
            "OAuth \"Facebook Platform\" \"{challenge}\" \"{}\"",
            error.message.replace('"', "'")
        );
        insert_header(headers, "www-authenticate", &value);
    }
    insert_header(headers, "x-fb-trace-id", &trace);
    response
}

fn answer(
    sim: &Sim,
    method: &Method,
    route: &Route,
    params: &Params,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, GraphError> {
    let now = sim.now();
    match route {
        Route::Dialog => {
            let request = DialogRequest {
                client_id: params.get("client_id"),
                redirect_uri: params.get("redirect_uri"),
                state: params.get("state"),
                rerequest: params.get("auth_type") == Some("rerequest"),
            };
            let location = sim.world().dialog(request, now)?;
            found(&location).ok_or_else(|| GraphError::param("Invalid redirect_uri parameter."))
        }
        Route::AccessToken => access_token(sim, params, now).map(ok_json),
        Route::DebugToken => {
            let token = params.token.as_deref().unwrap_or_default();
            if !sim.world().is_app_token(token) {
                return Err(GraphError::param(
                    "(#100) You must provide an app access token, or a user access token that is an owner or developer of the app",
                ));
            }
            check_proof(sim, params, token)?;
            let Some(input) = params.get("input_token") else {
                return Err(GraphError::param(
                    "(#100) The parameter input_token is required",
                ));
            };
            Ok(ok_json(sim.world().debug_token(input, now)))
        }
        Route::Me => {
            let token = user_token(sim, params)?;
            Ok(ok_json(sim.world().me(token, &params.fields(), now)?))
        }
        Route::MeAccounts => {
            let token = user_token(sim, params)?;
            let limit = params
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(DEFAULT_LIMIT)
                .clamp(1, MAX_LIMIT);
            let start = params
                .get("after")
                .and_then(decode_cursor)
                .map_or(0, |i| i + 1);
            let page = sim
                .world()
                .accounts(token, &params.fields(), start, limit, now)?;
            let mut body = json!({ "data": page.data });
            if !page.data.is_empty() {
                let last = page.first + page.data.len() - 1;
                let after = encode_cursor(last);
                let mut paging =
                    json!({"cursors": {"before": encode_cursor(page.first), "after": after}});
                if page.more {
                    paging["next"] = json!(next_url(params, uri, headers, token, &after));
                }
                body["paging"] = paging;
            }
            Ok(ok_json(body))
        }
        Route::Permissions(user) => {
            super::permissions::answer(sim, method, user, params).map(ok_json)
        }
        Route::Node(id) => {
            let Some(token) = params.token.as_deref() else {
                return Err(GraphError::missing_token(
                    104,
                    "An access token is required to request this resource.",
                ));
            };
            check_proof(sim, params, token)?;
            if let Some(status) = super::ads::report_run_status(sim, token, id, now) {
                return status.map(ok_json);
            }
            Ok(ok_json(sim.world().node(
                token,
                id,
                &params.fields(),
                now,
            )?))
        }
        Route::Edge(edge) => super::edges::answer(sim, method, edge, params, uri, headers),
    }
}

pub(crate) fn ok_json(body: Value) -> Response {
    axum::Json(body).into_response()
}

fn access_token(sim: &Sim, params: &Params, now: i64) -> Result<Value, GraphError> {
    let mut world = sim.world();
    world.check_client(params.get("client_id"), params.get("client_secret"))?;
    match params.get("grant_type") {
        Some("fb_exchange_token") => {
            let Some(token) = params.get("fb_exchange_token") else {
                return Err(GraphError::param("Missing fb_exchange_token parameter."));
            };
            world.exchange_token(token, now)
        }
        Some("client_credentials") => Ok(world.client_credentials(now)),
        None | Some("authorization_code") => {
            let Some(code) = params.get("code") else {
                return Err(GraphError::param("Missing code parameter."));
            };
            world.exchange_code(code, params.get("redirect_uri"), now)
        }
        Some(other) => Err(GraphError::param(format!(
            "Unsupported grant_type: {other}"
        ))),
    }
}

/// The token of a `/me…` call, after the proof check.
fn user_token<'a>(sim: &Sim, params: &'a Params) -> Result<&'a str, GraphError> {
    let Some(token) = params.token.as_deref() else {
        return Err(GraphError::missing_token(
            2500,
            "An active access token must be used to query information about the current user.",
        ));
    };
    check_proof(sim, params, token)?;
    Ok(token)
}

/// With "Require App Secret" on, a missing proof fails; a given proof must
/// always be right.
pub(crate) fn check_proof(sim: &Sim, params: &Params, token: &str) -> Result<(), GraphError> {
    let Some(proof) = params.get("appsecret_proof") else {
        return if sim.requires_proof() {
            Err(GraphError::proof_missing())
        } else {
            Ok(())
        };
    };
    let time = params.get("appsecret_time");
    if proof_matches(&sim.config.fb_app_secret, token, proof, time) {
        Ok(())
    } else {
        Err(GraphError::proof_invalid())
    }
}

pub(crate) fn encode_cursor(index: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("sim-cursor:{index}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("sim-cursor:")?.parse().ok()
}

/// The same request with `after` replaced; absolute, carrying the token but
/// not `appsecret_proof`, as Meta's `next` links do (wire-spec 4).
pub(crate) fn next_url(
    params: &Params,
    uri: &Uri,
    headers: &HeaderMap,
    token: &str,
    after: &str,
) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut parts: Vec<String> = params
        .raw_query
        .split('&')
        .filter(|p| {
            !p.is_empty()
                && !["after=", "before=", "appsecret_proof=", "appsecret_time="]
                    .iter()
                    .any(|k| p.starts_with(k))
        })
        .map(str::to_string)
        .collect();
    if !params.token_in_query {
        parts.push(format!("access_token={}", encode_component(token)));
    }
    parts.push(format!("after={after}"));
    format!("http://{host}{}?{}", uri.path(), parts.join("&"))
}
