//! Graph edges beyond login and pages: ads (`/act_{id}/campaigns`,
//! `…/insights`), node insights (campaigns, report runs, posts), page
//! content (`published_posts`, `video_reels`, `video_insights`) and business
//! (`/me/businesses`, `/{id}/owned_pages`). Parsing, stats keys, usage
//! headers, paging, then the world.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::Sim;
use super::ads::InsightsNode;
use super::errors::GraphError;
use super::graph::{
    Params, check_proof, decode_cursor, encode_cursor, insert_header, next_url, ok_json,
};
use super::metrics::{self, Object, metric_list};
use super::pages_insights::time_param;

/// Page sizes: (default, most).
const POSTS_LIMITS: (usize, usize) = (25, 100);
const INSIGHTS_LIMITS: (usize, usize) = (25, 5000);
const CAMPAIGNS_LIMITS: (usize, usize) = (25, 500);

#[derive(Debug, Clone)]
pub(crate) enum EdgeRoute {
    /// The ad account id, without `act_`.
    Campaigns(String),
    AccountInsights(String),
    /// `/{id}/insights` of a campaign, report run or post.
    NodeInsights(String),
    PublishedPosts(String),
    VideoReels(String),
    VideoInsights(String),
    MeBusinesses,
    OwnedPages(String),
}

impl EdgeRoute {
    /// The path segments after the version.
    pub fn parse(rest: &[&str]) -> Option<Self> {
        let account = |id: &str| id.strip_prefix("act_").map(str::to_string);
        Some(match rest {
            ["me", "businesses"] => EdgeRoute::MeBusinesses,
            [id, "campaigns"] => EdgeRoute::Campaigns(account(id)?),
            [id, "insights"] => match account(id) {
                Some(account) => EdgeRoute::AccountInsights(account),
                None => EdgeRoute::NodeInsights(id.to_string()),
            },
            [id, "published_posts"] => EdgeRoute::PublishedPosts(id.to_string()),
            [id, "video_reels"] => EdgeRoute::VideoReels(id.to_string()),
            [id, "video_insights"] => EdgeRoute::VideoInsights(id.to_string()),
            [id, "owned_pages"] => EdgeRoute::OwnedPages(id.to_string()),
            _ => return None,
        })
    }

    /// The `/_sim/stats` key.
    pub fn stat_key(&self) -> &'static str {
        match self {
            EdgeRoute::Campaigns(_) => "/act_{id}/campaigns",
            EdgeRoute::AccountInsights(_) => "/act_{id}/insights",
            EdgeRoute::NodeInsights(_) => "/{id}/insights",
            EdgeRoute::PublishedPosts(_) => "/{id}/published_posts",
            EdgeRoute::VideoReels(_) => "/{id}/video_reels",
            EdgeRoute::VideoInsights(_) => "/{id}/video_insights",
            EdgeRoute::MeBusinesses => "/me/businesses",
            EdgeRoute::OwnedPages(_) => "/{id}/owned_pages",
        }
    }

    /// The ad account (no `act_`) of an ad-account call.
    pub fn ad_account(&self) -> Option<&str> {
        match self {
            EdgeRoute::Campaigns(account) | EdgeRoute::AccountInsights(account) => Some(account),
            _ => None,
        }
    }

    /// `X-Ad-Account-Usage` on ad-account calls, plus
    /// `x-fb-ads-insights-throttle` on account insights.
    pub fn usage_headers(&self, out: &mut HeaderMap, pct: Value) {
        if !matches!(
            self,
            EdgeRoute::Campaigns(_) | EdgeRoute::AccountInsights(_)
        ) {
            return;
        }
        let usage = json!({"acc_id_util_pct": pct, "reset_time_duration": 0,
            "ads_api_access_tier": "standard_access"});
        insert_header(out, "x-ad-account-usage", &usage.to_string());
        if matches!(self, EdgeRoute::AccountInsights(_)) {
            let throttle = json!({"app_id_util_pct": pct, "acc_id_util_pct": pct,
                "ads_api_access_tier": "standard_access"});
            insert_header(out, "x-fb-ads-insights-throttle", &throttle.to_string());
        }
    }
}

/// A request's context for building paged answers.
struct Call<'a> {
    sim: &'a Sim,
    params: &'a Params,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    token: &'a str,
}

impl Call<'_> {
    /// `[start, end)` of the requested page of `total` items.
    fn window(&self, total: usize, (default, most): (usize, usize)) -> (usize, usize) {
        let limit = self
            .params
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(default)
            .clamp(1, most);
        let start = self
            .params
            .get("after")
            .and_then(decode_cursor)
            .map_or(0, |i| i + 1)
            .min(total);
        (start, total.min(start.saturating_add(limit)))
    }

    /// `{"data":…,"paging":{cursors,next?}}` for items `[start, end)` of
    /// `total` (wire-spec 4).
    fn page(&self, data: Vec<Value>, start: usize, end: usize, total: usize) -> Value {
        let mut body = json!({ "data": data });
        if end > start {
            let after = encode_cursor(end - 1);
            let mut paging = json!({"cursors": {"before": encode_cursor(start), "after": after}});
            if end < total {
                paging["next"] = json!(self.link(&after));
            }
            body["paging"] = paging;
        }
        body
    }

    fn link(&self, after: &str) -> String {
        next_url(self.params, self.uri, self.headers, self.token, after)
    }

    /// Pages a fully built list.
    /// One page of posts or reels out of `items`, each made into its object
    /// only when on the page.
    fn posts_page<T>(&self, items: &[T], object: impl Fn(&T) -> Value) -> Value {
        let (start, end) = self.window(items.len(), POSTS_LIMITS);
        let data = items[start..end].iter().map(object).collect();
        self.page(data, start, end, items.len())
    }

    fn paged(&self, items: Vec<Value>, limits: (usize, usize)) -> Value {
        let total = items.len();
        let (start, end) = self.window(total, limits);
        let data = items.into_iter().skip(start).take(end - start).collect();
        self.page(data, start, end, total)
    }
}

pub(crate) fn answer(
    sim: &Sim,
    method: &Method,
    edge: &EdgeRoute,
    params: &Params,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, GraphError> {
    let Some(token) = params.token.as_deref() else {
        return Err(GraphError::missing_token(
            104,
            "An access token is required to request this resource.",
        ));
    };
    check_proof(sim, params, token)?;
    let now = sim.now();
    let call = Call {
        sim,
        params,
        uri,
        headers,
        token,
    };
    let body = match edge {
        EdgeRoute::Campaigns(account) => {
            let fields = params.fields();
            let status = params.get("effective_status");
            let items = sim
                .world()
                .campaigns(token, account, &fields, status, now)?;
            call.paged(items, CAMPAIGNS_LIMITS)
        }
        EdgeRoute::AccountInsights(account) => {
            insights(&call, method, InsightsNode::Account(account), now)?
        }
        EdgeRoute::NodeInsights(id) => node_insights(&call, method, id, now)?,
        EdgeRoute::PublishedPosts(page_id) => published_posts(&call, page_id, now)?,
        EdgeRoute::VideoReels(page_id) => {
            let world = sim.world();
            world.page_reader(token, page_id, false, now)?;
            let fields = world.reel_fields(params.fields())?;
            let (since, until) = since_until(params)?;
            let indices = world.reel_indices(page_id, since, until);
            call.posts_page(&indices, |i| world.reel_object(page_id, *i, &fields))
        }
        EdgeRoute::VideoInsights(video_id) => {
            let world = sim.world();
            let Some((page_id, n, _)) = world.insights.reel(video_id) else {
                world.caller(token, now)?;
                return Err(GraphError::unsupported_get(video_id));
            };
            world.page_reader(token, page_id, true, now)?;
            let metrics = metric_list(params.get("metric"));
            world.validate_metrics(Object::Reel, &metrics)?;
            let data = metrics::entries(
                Object::Reel,
                video_id,
                "video_insights",
                n,
                &metrics,
                params.get("period"),
            );
            json!({"data": data, "paging": {}})
        }
        EdgeRoute::MeBusinesses => {
            let items = sim.world().my_businesses(token, &params.fields(), now)?;
            call.paged(items, POSTS_LIMITS)
        }
        EdgeRoute::OwnedPages(business_id) => {
            let items = sim
                .world()
                .owned_pages(token, business_id, &params.fields(), now)?;
            call.paged(items, POSTS_LIMITS)
        }
    };
    Ok(ok_json(body))
}

/// Sync insights (GET) or a new async report run (POST) on an account or
/// campaign.
fn insights(
    call: &Call<'_>,
    method: &Method,
    node: InsightsNode<'_>,
    now: i64,
) -> Result<Value, GraphError> {
    let params = call.params;
    let mut world = call.sim.world();
    let (account_id, query, rows) =
        world.insights_rows(call.token, node, |k| params.get(k), now)?;
    if method == Method::POST {
        let id = world.start_report_run(account_id, &query, rows, now);
        return Ok(json!({ "report_run_id": id }));
    }
    if rows.len() > world.config.sync_max_rows {
        let mut error = GraphError::param(
            "Please reduce the amount of data you're asking for, then retry your request",
        )
        .with_subcode(1487534);
        error.is_transient = Some(false);
        return Err(error);
    }
    drop(world);
    Ok(call.paged(rows, INSIGHTS_LIMITS))
}

/// `/{id}/insights`: a report run's rows, a campaign's insights or a post's
/// metrics. Videos have no `insights` edge.
fn node_insights(
    call: &Call<'_>,
    method: &Method,
    id: &str,
    now: i64,
) -> Result<Value, GraphError> {
    let (token, params) = (call.token, call.params);
    let world = call.sim.world();
    if world.insights.report_runs.contains_key(id) {
        let rows = world.report_rows(token, id, now)?;
        drop(world);
        return Ok(call.paged(rows, INSIGHTS_LIMITS));
    }
    if world.insights.campaigns.contains_key(id) {
        drop(world);
        return insights(call, method, InsightsNode::Campaign(id), now);
    }
    if let Some((page_id, n, post)) = world.insights.post(id) {
        world.page_reader(token, page_id, true, now)?;
        let metrics = metric_list(params.get("metric"));
        world.validate_metrics(Object::Post, &metrics)?;
        // Lifetime values sit inside the post's life; the `next`/`previous`
        // windows the links point at lie outside it and come back empty.
        let outside = params.get("after").is_some() || params.get("before").is_some();
        let since = time_param(params.get("since"))?;
        let until = time_param(params.get("until"))?;
        let created = post.created_time;
        if outside || since.is_some_and(|s| s > now) || until.is_some_and(|u| u < created) {
            return Ok(json!({"data": []}));
        }
        let data = metrics::entries(
            Object::Post,
            id,
            "insights",
            n,
            &metrics,
            params.get("period"),
        );
        drop(world);
        let next = call.link(&encode_cursor(0));
        let previous = match next.rfind("&after=") {
            Some(i) => format!("{}&before={}", &next[..i], &next[i + 7..]),
            None => next.clone(),
        };
        return Ok(json!({"data": data, "paging": {"previous": previous, "next": next}}));
    }
    world.caller(token, now)?;
    if world.insights.videos.contains_key(id) {
        return Err(GraphError::param(
            "(#100) Tried accessing nonexisting field (insights) on node type (Video)",
        ));
    }
    Err(GraphError::unsupported_get(id))
}

fn published_posts(call: &Call<'_>, page_id: &str, now: i64) -> Result<Value, GraphError> {
    let params = call.params;
    let world = call.sim.world();
    world.caller(call.token, now)?;
    let specs = world.post_field_specs(params.get("fields"))?;
    let wants_insights = specs.iter().any(|s| s.name == "insights");
    world.page_reader(call.token, page_id, wants_insights, now)?;
    let (since, until) = since_until(params)?;
    let numbers = world.post_numbers(page_id, since, until);
    Ok(call.posts_page(&numbers, |n| world.post_object(page_id, *n, &specs)))
}

/// The `since` and `until` parameters.
fn since_until(params: &Params) -> Result<(Option<i64>, Option<i64>), GraphError> {
    Ok((
        time_param(params.get("since"))?,
        time_param(params.get("until"))?,
    ))
}
