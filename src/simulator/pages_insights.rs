//! Pages API on the world (wire-spec 6.1–6.4): seeding posts and reels,
//! who may read a page's content, `published_posts` with field expansion,
//! post insights, `video_reels` and `video_insights`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::{ControlError, GraphError};
use super::fields::{FieldSpec, parse_fields};
use super::insights_world::{Post, Reel, graph_time, parse_graph_time};
use super::metrics::{self, Object, comments, metric_list, reactions, reactions_total, shares};
use super::state::{Caller, PageOwner, Subject, World};

const POST_FIELDS: [&str; 13] = [
    "id",
    "message",
    "created_time",
    "updated_time",
    "permalink_url",
    "full_picture",
    "status_type",
    "is_published",
    "from",
    "shares",
    "reactions",
    "comments",
    "insights",
];
const REEL_FIELDS: [&str; 7] = [
    "id",
    "description",
    "title",
    "created_time",
    "updated_time",
    "permalink_url",
    "length",
];

/// The body of `POST /_sim/pages/{id}/posts` and `…/reels`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewContent {
    pub count: usize,
    /// Meta datetime of the first item; default `now - count * interval`.
    pub start: Option<String>,
    pub interval_secs: Option<i64>,
    /// Post message template; `{n}` is the post index, "" means no message.
    pub message: Option<String>,
    /// Reel description template.
    pub description: Option<String>,
}

/// The ids a seeding control call created.
type Seeded = Result<Vec<String>, ControlError>;

impl World {
    /// Appends posts to a page; the ids created.
    pub fn seed_posts(&mut self, page_id: &str, req: &NewContent, now: i64) -> Seeded {
        let (start, interval) = self.content_times(page_id, req, now)?;
        let template = req.message.clone().unwrap_or_else(|| "Post {n}".into());
        let posts = self.insights.posts.entry(page_id.to_string()).or_default();
        let mut ids = Vec::with_capacity(req.count);
        for i in 0..req.count {
            let n = posts.len() + 1;
            posts.push(Post {
                created_time: start + i as i64 * interval,
                message: (!template.is_empty()).then(|| template.replace("{n}", &n.to_string())),
            });
            ids.push(format!("{page_id}_{n}"));
        }
        Ok(ids)
    }

    /// Appends reels to a page; the video ids created.
    pub fn seed_reels(&mut self, page_id: &str, req: &NewContent, now: i64) -> Seeded {
        let (start, interval) = self.content_times(page_id, req, now)?;
        let template = req.description.clone().unwrap_or_else(|| "Reel {n}".into());
        let mut ids = Vec::with_capacity(req.count);
        for i in 0..req.count {
            let id = self.insights.fresh_video_id();
            let reels = self.insights.reels.entry(page_id.to_string()).or_default();
            let index = reels.len();
            reels.push(Reel {
                id: id.clone(),
                created_time: start + i as i64 * interval,
                description: template.replace("{n}", &(index + 1).to_string()),
            });
            self.insights
                .videos
                .insert(id.clone(), (page_id.to_string(), index));
            ids.push(id);
        }
        Ok(ids)
    }

    fn content_times(
        &self,
        page_id: &str,
        req: &NewContent,
        now: i64,
    ) -> Result<(i64, i64), ControlError> {
        if !self.pages.contains_key(page_id) {
            return Err(ControlError::NotFound(format!("no page {page_id}")));
        }
        if req.count > 100_000 {
            return Err(ControlError::Invalid("count is at most 100000".into()));
        }
        let interval = req.interval_secs.unwrap_or(3600);
        let start = match &req.start {
            Some(text) => parse_graph_time(text).ok_or_else(|| {
                ControlError::Invalid("start looks like 2026-01-01T00:00:00+0000".into())
            })?,
            None => now - req.count as i64 * interval,
        };
        Ok((start, interval))
    }

    /// A page token of `page_id` (or a system user of a business owning it)
    /// with pages_read_engagement, and read_insights when `insights`.
    pub fn page_reader(
        &self,
        token: &str,
        page_id: &str,
        insights: bool,
        now: i64,
    ) -> Result<(), GraphError> {
        let caller = self.caller(token, now)?;
        if !self.pages.contains_key(page_id) {
            return Err(GraphError::unsupported_get(page_id));
        }
        let scopes = match &caller {
            Caller::Page { page_id: own } if own == page_id => {
                match self.tokens.get(token).map(|t| &t.subject) {
                    Some(Subject::Page {
                        owner: PageOwner::User { user_id, .. },
                        ..
                    }) => Some(&self.users[user_id].scopes),
                    _ => None,
                }
            }
            Caller::SystemUser { business_id }
                if self.businesses[business_id]
                    .page_ids
                    .iter()
                    .any(|p| p == page_id) =>
            {
                None
            }
            Caller::User { .. } | Caller::App => {
                return Err(GraphError::new(
                    400,
                    210,
                    "OAuthException",
                    "(#210) A page access token is required to request this resource.",
                ));
            }
            _ => return Err(GraphError::unsupported_get(page_id)),
        };
        if let Some(scopes) = scopes {
            let has = |s: &str| scopes.iter().any(|g| g == s);
            if !has("pages_read_engagement") {
                return Err(GraphError::new(
                    403,
                    10,
                    "OAuthException",
                    "(#10) This endpoint requires the 'pages_read_engagement' permission or the 'Page Public Content Access' feature.",
                ));
            }
            if insights && !has("read_insights") {
                return Err(GraphError::new(
                    403,
                    10,
                    "OAuthException",
                    "(#10) This endpoint requires the 'read_insights' permission.",
                ));
            }
        }
        Ok(())
    }

    /// Checks the fields and nested insights metrics of a posts request.
    pub fn post_field_specs(&self, fields: Option<&str>) -> Result<Vec<FieldSpec>, GraphError> {
        let specs = match fields {
            Some(f) if !f.trim().is_empty() => parse_fields(f),
            _ => parse_fields("created_time,message,id"),
        };
        for spec in &specs {
            if !POST_FIELDS.contains(&spec.name.as_str()) {
                return Err(nonexisting(&spec.name, "PagePost"));
            }
            if spec.name == "insights" {
                let metrics = metric_list(spec.modifier("metric"));
                self.validate_metrics(Object::Post, &metrics)?;
            }
        }
        Ok(specs)
    }

    pub fn validate_metrics(&self, object: Object, metrics: &[String]) -> Result<(), GraphError> {
        metrics::validate(
            object,
            metrics,
            &self.config.retired_metrics,
            &self.insights.rejected_metrics,
        )
    }

    /// The indices `n` of the page's posts in `[since, until]`, newest first.
    pub fn post_numbers(&self, page_id: &str, since: Option<i64>, until: Option<i64>) -> Vec<u64> {
        let posts = self
            .insights
            .posts
            .get(page_id)
            .map_or(&[][..], Vec::as_slice);
        let times = posts.iter().map(|p| p.created_time);
        let indices = newest_first(times, since, until);
        indices.into_iter().map(|i| i as u64 + 1).collect()
    }

    /// Post `n` of the page with the asked fields.
    pub fn post_object(&self, page_id: &str, n: u64, specs: &[FieldSpec]) -> Value {
        let post = &self.insights.posts[page_id][n as usize - 1];
        let id = format!("{page_id}_{n}");
        let mut out = Map::new();
        for spec in specs {
            let value = match spec.name.as_str() {
                "id" => json!(id),
                "message" => match &post.message {
                    Some(m) => json!(m),
                    None => continue,
                },
                "created_time" | "updated_time" => json!(graph_time(post.created_time)),
                "permalink_url" => json!(format!("https://www.facebook.com/{page_id}/posts/{n}")),
                "full_picture" => json!(format!(
                    "https://scontent.xx.fbcdn.net/v/t39.30808-6/{page_id}_{n}_n.jpg"
                )),
                "status_type" => json!("added_photos"),
                "is_published" => json!(true),
                "from" => json!({"name": self.pages[page_id].name, "id": page_id}),
                "shares" => match shares(n) {
                    0 => continue,
                    count => json!({ "count": count }),
                },
                "reactions" => {
                    let count = match spec.modifier("type") {
                        Some(kind) => reaction_of_type(n, kind),
                        None => reactions_total(n),
                    };
                    edge_summary(spec, count, false)
                }
                "comments" => edge_summary(spec, comments(n), true),
                "insights" => {
                    let metrics = metric_list(spec.modifier("metric"));
                    let data = metrics::entries(
                        Object::Post,
                        &id,
                        "insights",
                        n,
                        &metrics,
                        spec.modifier("period"),
                    );
                    json!({ "data": data })
                }
                _ => continue,
            };
            out.insert(spec.key().to_string(), value);
        }
        Value::Object(out)
    }

    /// Checks reel fields; the default is `id,description,created_time`.
    pub fn reel_fields(&self, fields: Vec<&str>) -> Result<Vec<String>, GraphError> {
        let fields = if fields.is_empty() {
            vec!["id", "description", "created_time"]
        } else {
            fields
        };
        if let Some(bad) = fields.iter().find(|f| !REEL_FIELDS.contains(f)) {
            return Err(nonexisting(bad, "Video"));
        }
        Ok(fields.into_iter().map(str::to_string).collect())
    }

    /// Indices of the page's reels in `[since, until]`, newest first.
    pub fn reel_indices(
        &self,
        page_id: &str,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Vec<usize> {
        let reels = self
            .insights
            .reels
            .get(page_id)
            .map_or(&[][..], Vec::as_slice);
        newest_first(reels.iter().map(|r| r.created_time), since, until)
    }

    pub fn reel_object(&self, page_id: &str, index: usize, fields: &[String]) -> Value {
        let reel = &self.insights.reels[page_id][index];
        let n = index as u64 + 1;
        let mut out = Map::new();
        for field in fields {
            let value = match field.as_str() {
                "id" => json!(reel.id),
                "description" => json!(reel.description),
                "title" => json!(format!("Reel {n}")),
                "created_time" | "updated_time" => json!(graph_time(reel.created_time)),
                "permalink_url" => json!(format!("/reel/{}/", reel.id)),
                // 10.5 s to 59.5 s.
                "length" => json!(10.5 + (n % 50) as f64),
                _ => continue,
            };
            out.insert(field.clone(), value);
        }
        Value::Object(out)
    }
}

/// `since <= t <= until` (Unix seconds), either bound optional.
fn in_window(t: i64, since: Option<i64>, until: Option<i64>) -> bool {
    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
}

/// A `since`/`until` parameter: Unix seconds or a `YYYY-MM-DD` date.
pub(crate) fn time_param(text: Option<&str>) -> Result<Option<i64>, GraphError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(Some(secs));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc().timestamp()))
        .ok_or_else(|| GraphError::param("(#100) since and until must be Unix seconds or dates"))
}

fn nonexisting(field: &str, node: &str) -> GraphError {
    GraphError::param(format!(
        "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
    ))
}

/// Graph reaction types (LIKE, LOVE, WOW, HAHA, SAD, ANGRY) to counts.
fn reaction_of_type(n: u64, kind: &str) -> i64 {
    let key = match kind.to_ascii_uppercase().as_str() {
        "LIKE" => "like",
        "LOVE" => "love",
        "WOW" => "wow",
        "HAHA" => "haha",
        "SAD" => "sorry",
        "ANGRY" => "anger",
        _ => return 0,
    };
    reactions(n)
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, v)| *v)
}

/// `{"data":[]}` plus a summary when `.summary(…)` asks for one.
fn edge_summary(spec: &FieldSpec, count: i64, comments: bool) -> Value {
    match spec.modifier("summary") {
        None | Some("false") | Some("0") => json!({"data": []}),
        Some("true") if comments => json!({"data": [], "summary": {
            "order": "ranked", "total_count": count, "can_comment": true}}),
        Some(_) => json!({"data": [], "summary": {"total_count": count}}),
    }
}

/// The indices of `times` in `[since, until]`, newest first (the later
/// index first on a tie).
fn newest_first(
    times: impl Iterator<Item = i64>,
    since: Option<i64>,
    until: Option<i64>,
) -> Vec<usize> {
    let mut found: Vec<(i64, usize)> = times
        .enumerate()
        .filter(|(_, t)| in_window(*t, since, until))
        .map(|(i, t)| (t, i))
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, i)| i).collect()
}
