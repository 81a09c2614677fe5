//! The OpenAPI document (`GET /openapi.json`) and the Swagger UI that reads
//! it (`GET /docs`), both served by the binary: the UI's assets are vendored
//! at build time, nothing is fetched at run time.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::schemas::{ErrorBody, responses};
use super::{
    AppState, data_deletion, disconnect, exports, facebook, facebook_connect, facebook_webhooks,
    google, health, insights, keys, tiktok, tiktok_webhooks, tokens, webhook_deliveries,
};

/// Where the document is served.
pub const SPEC_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served.
pub const UI_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenkeeper",
        description = "Keeps Facebook, TikTok Shop and Google tokens alive and serves insights.\n\n\
Every endpoint except `/healthz`, `/readyz` and the OAuth callbacks needs an API key, sent as \
`X-API-Key: KEY` (scheme `api_key`) or `Authorization: Bearer KEY` (scheme `bearer`). Each \
operation's security requirement names the scope it needs. The `internal` endpoints take the \
internal key (`TOKENKEEPER_INTERNAL_API_KEY`, scope `internal`) or the admin key.\n\n\
Errors always use the envelope `{\"error\": {\"code\", \"message\", \"field\"?}}` (`ErrorBody`)."
    ),
    paths(
        health::healthz,
        health::readyz,
        super::metrics_endpoint::scrape,
        super::dashboard::page,
        facebook_connect::auth_url,
        facebook_connect::auth_callback,
        facebook_connect::auth_exchange,
        facebook_connect::register_business_token,
        facebook::list_tokens,
        facebook::get_token,
        facebook::delete_token,
        facebook::refresh_token,
        facebook::force_refresh_token,
        facebook::page_token_status,
        facebook::debug_token,
        facebook::check_permissions,
        facebook_connect::extend_permissions,
        facebook_webhooks::deauthorize,
        data_deletion::data_deletion,
        data_deletion::status_page,
        facebook::scheduled_refresh,
        facebook::refresh_run,
        tokens::page_access_token,
        tokens::access_token,
        tokens::list,
        tokens::health,
        tokens::refresh,
        disconnect::delete,
        tokens::scheduled_refresh,
        tokens::runs,
        keys::status,
        keys::rotate,
        webhook_deliveries::list,
        webhook_deliveries::get,
        webhook_deliveries::retry,
        insights::available_metrics,
        insights::campaigns,
        insights::campaign_metrics,
        insights::post_metrics,
        insights::reel_metrics,
        insights::business_post_insights,
        insights::business_posts_and_reels_insights,
        insights::check_business_pages_access,
        exports::post_metrics_csv,
        exports::reel_metrics_csv,
        exports::business_post_insights_csv,
        exports::business_posts_and_reels_insights_csv,
        exports::campaign_metrics_csv,
        exports::create,
        exports::list,
        exports::get,
        exports::download,
        tiktok::auth_url,
        tiktok::auth_callback,
        tiktok_webhooks::receive,
        tiktok::list_integrations,
        tiktok::create_integration,
        tiktok::integration_status,
        tiktok::refresh_integration,
        tiktok::health,
        tiktok::scheduled_refresh,
        tiktok::cleanup,
        google::auth_url,
        google::auth_callback,
        google::campaigns,
        google::campaign_metrics,
        google::campaign_metrics_csv,
    ),
    components(
        schemas(ErrorBody),
        responses(
        responses::BadRequest,
        responses::Unauthorized,
        responses::Forbidden,
        responses::NotFound,
        responses::Conflict,
        responses::Unprocessable,
        responses::WrongConnection,
        responses::RateLimited,
        responses::BadGateway,
        responses::Unavailable,
        )
    ),
    modifiers(&SecuritySchemes, &SharedRunPath, &CatalogConstraints),
    tags(
        (name = "facebook", description = "Facebook Login, page and business tokens, insights"),
        (name = "tiktok", description = "TikTok Shop integrations"),
        (name = "google", description = "Google Ads connections and insights"),
        (name = "tokens", description = "Connections of every provider: facts, refresh, hand-out"),
        (name = "insights", description = "Campaign, post and reel insights (JSON)"),
        (name = "exports", description = "CSV twins of the insights endpoints and async exports"),
        (name = "internal", description = "Scheduled refresh, run records, key rotation and webhook deliveries; take the internal key"),
        (name = "health", description = "Liveness and readiness probes (public)"),
    )
)]
pub struct ApiDoc;

/// `api_key` (`X-API-Key`) and `bearer` (`Authorization: Bearer`): the same
/// keys either way.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key. Internal endpoints take the internal key (scope `internal`).",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The same API key as `Authorization: Bearer KEY`.".to_string(),
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /internal/refresh-runs/{run_id}` is served by the same handler as
/// its `/facebook/internal/...` twin; documents it under its own path.
struct SharedRunPath;

impl Modify for SharedRunPath {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        let Some(mut item) = paths
            .get("/facebook/internal/refresh-runs/{run_id}")
            .cloned()
        else {
            return;
        };
        if let Some(op) = item.get.as_mut() {
            op.operation_id = Some("internal_refresh_run".into());
            op.tags = Some(vec!["internal".into(), "tokens".into()]);
            op.description = Some(
                "The record of one sweep of any provider. Takes the internal key (scope `internal`)."
                    .into(),
            );
        }
        paths.insert("/internal/refresh-runs/{run_id}".into(), item);
    }
}

/// The metric lists' constraints, taken from the metric registry itself so
/// the document cannot drift from what `metrics::check` accepts: the
/// comma-separated query lists get a pattern, the body lists an enum.
struct CatalogConstraints;

/// `^(a|b)(,(a|b))*$`: a comma-separated list of known names.
fn list_pattern(names: &[&str]) -> String {
    let one = format!("({})", names.join("|"));
    format!("^{one}(,{one})*$")
}

impl Modify for CatalogConstraints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::insights::metrics::{self, MetricObject};
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{Array, ArrayItems, Object, Schema, Type};
        use utoipa::openapi::{RefOr, schema::SchemaType};
        // Query parameters, by the path's subject.
        let query_list = |path: &str, name: &str| -> Option<&'static [&'static str]> {
            match name {
                "effective_status" => Some(crate::insights::campaigns::EFFECTIVE_STATUSES),
                "reel_metrics" => Some(metrics::valid(MetricObject::Reel)),
                "metrics" if path.contains("reel_metrics") => {
                    Some(metrics::valid(MetricObject::Reel))
                }
                "metrics" => Some(metrics::valid(MetricObject::Post)),
                _ => None,
            }
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                for p in op.parameters.iter_mut().flatten() {
                    if p.parameter_in != ParameterIn::Query {
                        continue;
                    }
                    if let (Some(names), Some(RefOr::T(Schema::Object(o)))) =
                        (query_list(path, &p.name), p.schema.as_mut())
                    {
                        o.pattern = Some(list_pattern(names));
                    }
                }
            }
        }
        let enum_items = |names: &[&str]| {
            let mut o = Object::with_type(SchemaType::Type(Type::String));
            o.enum_values = Some(names.iter().map(|n| (*n).into()).collect());
            ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(o))))
        };
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(req))) =
            components.schemas.get_mut("CampaignMetricsRequest")
        {
            for (field, names) in [
                ("metrics", metrics::valid(MetricObject::Campaign)),
                ("dimensions", metrics::BREAKDOWNS),
            ] {
                if let Some(RefOr::T(Schema::Array(Array { items, .. }))) =
                    req.properties.get_mut(field)
                {
                    *items = enum_items(names);
                }
            }
        }
    }
}

/// `GET /openapi.json` and the Swagger UI at `GET /docs` (public).
pub fn routes() -> axum::Router<AppState> {
    SwaggerUi::new(UI_PATH)
        .url(SPEC_PATH, ApiDoc::openapi())
        .into()
}
