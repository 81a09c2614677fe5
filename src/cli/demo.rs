//! `tokenkeeper demo`: the simulator and the service wired to it on a
//! temporary data folder, with demo connections across two teams (one of them
//! revoked), a sweep, a Deauthorize callback arriving, and the URLs to look
//! at. Nothing leaves the machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::clock::SystemClock;
use crate::config::{Overrides, Settings};
use crate::simulator::{self, DEMO_CUSTOMER_ID, SimConfig};

/// The demo's connections, made through the service's own HTTP API.
struct Demo {
    http: reqwest::Client,
    browser: reqwest::Client,
    service: String,
    sim: String,
    admin: String,
}

impl Demo {
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, &url);
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{url}: {status} {body}"));
        }
        Ok(body)
    }

    /// Auth URL → the simulator's consent page → our callback.
    async fn consent(&self, auth_path: &str, callback: &str) -> Result<Value, String> {
        let auth = self
            .call(
                reqwest::Method::GET,
                format!("{}{auth_path}", self.service),
                Some(&self.admin),
                None,
            )
            .await?;
        let url = auth["url"].as_str().ok_or("no url")?;
        let r = self
            .browser
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let location = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or("the consent page did not redirect")?;
        let query = location
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(""))
            .unwrap_or("");
        self.call(
            reqwest::Method::GET,
            format!("{}{callback}?{query}", self.service),
            None,
            None,
        )
        .await
    }

    async fn sim_post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(
            reqwest::Method::POST,
            format!("{}{path}", self.sim),
            None,
            Some(body),
        )
        .await
    }
}

/// The demo user removes the app on Facebook: the simulator sends Meta's
/// Deauthorize callback, signed with the app secret, to the running
/// service, which flags the user and its pages at once (no sweep).
async fn deauthorize_demo_user(d: &Demo, fb: &Value) -> Result<(), String> {
    let connections = fb["connections"].as_array().cloned().unwrap_or_default();
    let Some(user) = connections.iter().find(|c| c["kind"] == "user") else {
        return Err("the demo has no Facebook user connection".into());
    };
    let path = "/facebook/webhooks/deauthorize";
    let sent = d
        .sim_post(
            "/_sim/callbacks/facebook",
            json!({ "url": format!("{}{path}", d.service), "user_id": user["external_id"] }),
        )
        .await?;
    if sent["status"] != 200 {
        return Err(format!("{path}: {} {}", sent["status"], sent["body"]));
    }
    println!(
        "{} removed the app on Facebook; the simulator sent Meta's Deauthorize callback:",
        user["label"]
    );
    println!(
        "  POST {path}: {} connections flagged at once",
        sent["body"]["flagged"]
    );
    let listed = d
        .call(
            reqwest::Method::GET,
            format!("{}/tokens?provider=facebook", d.service),
            Some(&d.admin),
            None,
        )
        .await?;
    let ids: Vec<&Value> = connections.iter().map(|c| &c["id"]).collect();
    for c in listed["connections"].as_array().into_iter().flatten() {
        if ids.contains(&&c["id"]) {
            let text = |k: &str| c[k].as_str().unwrap_or("?").to_string();
            println!("    {} ({}): {}", c["label"], text("kind"), text("health"));
        }
    }
    Ok(())
}

pub fn run(addr: SocketAddr) -> ExitCode {
    let logging = crate::config::LoggingSettings {
        format: crate::config::LogFormat::Human,
        level: "warn".into(),
    };
    crate::telemetry::init(&logging, std::io::stderr);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        match demo(addr).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tokenkeeper demo: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A value for a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a `TOKENKEEPER__*` variable may change the demo. Its address,
/// folder and platform URLs stay the demo's own: an operator's production
/// data folder or a real platform must never receive demo data.
fn operator_override(key: &str) -> bool {
    key.starts_with("TOKENKEEPER__")
        && key != "TOKENKEEPER__SERVER__ADDR"
        && key != "TOKENKEEPER__STORE__DATA_DIR"
        && !key.ends_with("_BASE_URL")
        && !key.ends_with("__REDIRECT_URI")
}

/// A word a POSIX shell reads back as itself.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+@%,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The demo's address, bound once to resolve port 0 and to tell a busy port
/// before anything starts.
fn free_addr(addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "{addr} is in use by another process: choose another address with \
                 --addr HOST:PORT, e.g. `tokenkeeper demo --addr 127.0.0.1:{}`",
                addr.port().wrapping_add(1).max(1024)
            )
        } else {
            format!("cannot listen on {addr}: {e}")
        }
    })?;
    listener.local_addr().map_err(|e| e.to_string())
}

async fn demo(addr: SocketAddr) -> Result<(), String> {
    // SIGTERM as Ctrl-C: either one stops the demo and removes its folder
    // (the `TempDir` below is dropped on every way out of this function).
    let cancel = CancellationToken::new();
    tokio::spawn(super::serve::wait_for_signal(cancel.clone()));
    let data = tempfile::Builder::new()
        .prefix("tokenkeeper-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // A signal during the set-up abandons it; once running, the service
    // shuts down gracefully before the folder goes.
    let (server, sim) = tokio::select! {
        result = demo_in(addr, data.path(), cancel.clone()) => result?,
        () = cancel.cancelled() => return Ok(()),
    };
    cancel.cancelled().await;
    let _ = server.await;
    drop(sim);
    Ok(())
}

type Running = (
    tokio::task::JoinHandle<std::io::Result<()>>,
    simulator::SimHandle,
);

async fn demo_in(
    addr: SocketAddr,
    data_dir: &std::path::Path,
    cancel: CancellationToken,
) -> Result<Running, String> {
    let addr = free_addr(addr)?;
    let sim_config = SimConfig::default();
    let sim = simulator::start(
        sim_config.clone(),
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .map_err(|e| format!("starting the simulator: {e}"))?;
    let service = format!("http://{addr}");
    let sim_url = sim.base_url();
    // The demo's whole configuration lives in its folder, so that the CLI
    // can work on its data: `--config <dir>/demo.toml` names the simulator,
    // the folder and (through the folder) the key file.
    let config_path = data_dir.join("demo.toml");
    let config = format!(
        "# Written by `tokenkeeper demo`; removed when it stops.\n\
         [server]\naddr = \"{addr}\"\n\
         [store]\ndata_dir = {dir}\n\
         [facebook]\ngraph_base_url = \"{sim_url}\"\ndialog_base_url = \"{sim_url}\"\nredirect_uri = \"{service}/facebook/auth/callback\"\n\
         [tiktok]\nauthorize_base_url = \"{sim_url}\"\nauth_base_url = \"{sim_url}\"\napi_base_url = \"{sim_url}\"\nredirect_uri = \"{service}/tiktok/auth/callback\"\n\
         [google]\nauth_base_url = \"{sim_url}\"\noauth_base_url = \"{sim_url}\"\nads_base_url = \"{sim_url}\"\nredirect_uri = \"{service}/google/auth/callback\"\n",
        dir = toml_string(&data_dir.display().to_string()),
    );
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    // The key as a file in the folder (mode 0600), where every command
    // looks when TOKENKEEPER_ENCRYPTION_KEY is not set.
    crate::store::Cipher::load_or_create(None, data_dir).map_err(|e| e.to_string())?;
    let admin = format!("demo-admin-{}", &crate::secret::generate_key()[..16]);
    let internal = format!("demo-internal-{}", &crate::secret::generate_key()[..16]);
    // The simulator's app credentials (not secrets of any real app), also
    // in demo.env for the CLI commands printed below.
    let credentials: Vec<(&str, String)> = vec![
        ("FB_APP_ID", sim_config.fb_app_id.clone()),
        ("FB_APP_SECRET", sim_config.fb_app_secret.clone()),
        ("TIKTOK_SHOP_APP_KEY", sim_config.tiktok_app_key.clone()),
        (
            "TIKTOK_SHOP_APP_SECRET",
            sim_config.tiktok_app_secret.clone(),
        ),
        ("GOOGLE_CLIENT_ID", sim_config.google_client_id.clone()),
        (
            "GOOGLE_CLIENT_SECRET",
            sim_config.google_client_secret.clone(),
        ),
        (
            "GOOGLE_ADS_DEVELOPER_TOKEN",
            sim_config.google_developer_token.clone(),
        ),
    ];
    let env_path = data_dir.join("demo.env");
    let env_file: String = credentials
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell_word(v)))
        .collect();
    std::fs::write(&env_path, env_file).map_err(|e| e.to_string())?;
    // The operator's `TOKENKEEPER__*` overrides apply to the demo as to
    // `serve` (a log level, a higher limit for a contract-test run), except
    // what wires the demo together; the credentials and keys are its own.
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| operator_override(k))
        .chain(
            credentials
                .into_iter()
                .chain([
                    ("TOKENKEEPER_ADMIN_API_KEY", admin.clone()),
                    ("TOKENKEEPER_INTERNAL_API_KEY", internal.clone()),
                ])
                .map(|(k, v)| (k.to_string(), v)),
        )
        .collect();
    let settings = Settings::load_from(
        std::path::Path::new("/nonexistent/local.toml"),
        &Overrides {
            config_file: Some(config_path.clone()),
            addr: None,
            data_dir: None,
        },
        &env,
    )
    .map_err(|e| e.to_string())?;
    let app = Application::build_with_clock(settings, Arc::new(SystemClock))
        .await
        .map_err(|e| format!("{e}{}", super::serve::busy_port_hint(&e)))?;
    let server = tokio::spawn(app.run(cancel.clone()));

    let d = Demo {
        http: reqwest::Client::new(),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?,
        service: service.clone(),
        sim: sim_url.clone(),
        admin: admin.clone(),
    };
    println!("Connecting demo accounts through the simulator...");
    let fb = d
        .consent(
            "/facebook/auth/url?team_id=agency-north",
            "/facebook/auth/callback",
        )
        .await?;
    println!(
        "  Facebook: {} connections (team agency-north)",
        fb["connected"]
    );
    let tt = d
        .consent(
            "/tiktok/auth/url?team_id=agency-south",
            "/tiktok/auth/callback",
        )
        .await?;
    println!(
        "  TikTok Shop: {} (team agency-south)",
        tt["integration"]["label"]
    );
    let g = d
        .consent(
            &format!("/google/auth/url?team_id=agency-north&customer_id={DEMO_CUSTOMER_ID}"),
            "/google/auth/callback",
        )
        .await?;
    println!(
        "  Google Ads: {} (team agency-north)",
        g["connection"]["label"]
    );

    // Some numbers to read, and one page whose admin changed their password.
    let pages: Vec<String> = fb["connections"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["kind"] == "page")
                .filter_map(|c| c["external_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for page in &pages {
        d.sim_post(
            &format!("/_sim/pages/{page}/posts"),
            json!({ "count": 12, "message": "Xin chào từ {n}" }),
        )
        .await?;
        d.sim_post(&format!("/_sim/pages/{page}/reels"), json!({ "count": 3 }))
            .await?;
    }
    if let Some(revoked) = pages.last() {
        d.sim_post(
            "/_sim/revoke",
            json!({ "page_id": revoked, "subcode": 460 }),
        )
        .await?;
        println!("  Revoked page {revoked} (password changed, code 190/460)");
    }
    let run = d
        .call(
            reqwest::Method::POST,
            format!("{service}/internal/scheduled-refresh"),
            Some(&internal),
            None,
        )
        .await?;
    println!("Sweep: {}", run["run"]["counts"]);
    deauthorize_demo_user(&d, &fb).await?;

    let exe = std::env::current_exe()
        .map(|p| shell_word(&p.display().to_string()))
        .unwrap_or_else(|_| "tokenkeeper".into());
    let cli = format!(
        "{exe} --config {}",
        shell_word(&config_path.display().to_string())
    );
    println!();
    println!(
        "tokenkeeper is running on {service} (data in {})",
        data_dir.display()
    );
    println!("  API docs:   {service}/docs");
    println!("  Dashboard:  {service}/dashboard   (API key: {admin})");
    println!("  Simulator:  {sim_url}");
    println!("  Try:        curl -H 'X-API-Key: {admin}' {service}/tokens/health");
    println!();
    println!(
        "The CLI on the demo's data (its key is {}):",
        data_dir.join(crate::store::crypto::KEY_FILE_NAME).display()
    );
    println!(
        "    set -a; . {}; set +a",
        shell_word(&env_path.display().to_string())
    );
    println!("    {cli} tokens status");
    println!("    {cli} tokens refresh --all --dry-run");
    println!("    {cli} store verify");
    println!(
        "  `tokens refresh` and `tokens check` need the store's lock, which the demo holds; meanwhile:"
    );
    println!("    curl -X POST -H 'X-API-Key: {internal}' {service}/internal/scheduled-refresh");
    println!("Press Ctrl-C to stop (the demo's folder is removed).");
    Ok((server, sim))
}

#[cfg(test)]
mod tests {
    use super::operator_override;

    #[test]
    fn operator_overrides_never_rewire_the_demo() {
        assert!(operator_override("TOKENKEEPER__LOG__LEVEL"));
        assert!(operator_override(
            "TOKENKEEPER__API__FAILED_AUTH_PER_SECOND"
        ));
        for wiring in [
            "TOKENKEEPER__SERVER__ADDR",
            "TOKENKEEPER__STORE__DATA_DIR",
            "TOKENKEEPER__FACEBOOK__GRAPH_BASE_URL",
            "TOKENKEEPER__GOOGLE__REDIRECT_URI",
            "TOKENKEEPER_ADMIN_API_KEY",
        ] {
            assert!(!operator_override(wiring), "{wiring}");
        }
    }
}
