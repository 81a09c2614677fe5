//! Requests built from the OpenAPI document, so that a matrix over every
//! operation covers a new operation without extra work: each parameter and
//! body field takes its documented example unless the test fills it.

use serde_json::{Map, Value, json};

use crate::fb_support::FbApp;
use crate::helpers::json_of;

/// Where a value goes in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    Body,
}

pub struct Operation {
    pub method: String,
    pub path: String,
    pub op: Value,
}

impl Operation {
    pub fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    /// Whether the operation takes `name` in `place`.
    pub fn takes(&self, spec: &Value, place: In, name: &str) -> bool {
        match place {
            In::Body => self
                .body_schema(spec)
                .is_some_and(|s| s["properties"].get(name).is_some()),
            _ => self.params().iter().any(|p| {
                p["name"] == name && p["in"] == if place == In::Path { "path" } else { "query" }
            }),
        }
    }

    fn params(&self) -> Vec<Value> {
        self.op["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn body_schema<'a>(&'a self, spec: &'a Value) -> Option<&'a Value> {
        let body = resolve(spec, self.op.get("requestBody")?);
        Some(resolve(
            spec,
            &body["content"]["application/json"]["schema"],
        ))
    }

    /// The request with `key`, every value `fill` gives, and documented
    /// examples for the rest of what is required.
    pub fn request(
        &self,
        spec: &Value,
        fb: &FbApp,
        key: &str,
        fill: &dyn Fn(In, &str) -> Option<String>,
    ) -> reqwest::RequestBuilder {
        let mut path = self.path.clone();
        let mut query: Vec<(String, String)> = Vec::new();
        for p in self.params() {
            let name = p["name"].as_str().unwrap().to_string();
            match p["in"].as_str() {
                Some("path") => {
                    let value = fill(In::Path, &name)
                        .or_else(|| example_of(&p))
                        .unwrap_or_else(|| "1".into());
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                Some("query") => {
                    let required = p["required"] == true;
                    if let Some(v) = fill(In::Query, &name)
                        .or_else(|| required.then(|| example_of(&p).unwrap_or_else(|| "1".into())))
                    {
                        query.push((name, v));
                    }
                }
                _ => {}
            }
        }
        let method = reqwest::Method::from_bytes(self.method.to_uppercase().as_bytes()).unwrap();
        let mut req = fb
            .app
            .client
            .request(method, fb.url(&path))
            .header("x-api-key", key)
            .query(&query);
        if let Some(schema) = self.body_schema(spec) {
            let body = resolve(spec, self.op.get("requestBody").unwrap());
            let mut example: Map<String, Value> = body["content"]["application/json"]["example"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for name in props.keys() {
                    if let Some(v) = fill(In::Body, name) {
                        example.insert(name.clone(), json!(v));
                    }
                }
            }
            req = req.json(&example);
        }
        req
    }
}

pub async fn spec(fb: &FbApp) -> Value {
    json_of(fb.app.client.get(fb.url("/openapi.json"))).await
}

/// Every operation of the document.
pub fn operations(spec: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push(Operation {
                method: method.clone(),
                path: path.clone(),
                op: op.clone(),
            });
        }
    }
    out
}

pub fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(r) => resolve(
            spec,
            spec.pointer(r.trim_start_matches('#'))
                .expect("a $ref resolves"),
        ),
        None => value,
    }
}

/// A parameter's documented example, as text.
fn example_of(param: &Value) -> Option<String> {
    let example = param
        .get("example")
        .or_else(|| param["schema"].get("example"))?;
    Some(match example {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}
