//! Browser tests: headless Chromium from Debian's packages, driven over
//! WebDriver (fantoccini + chromedriver on a free local port) against the real
//! app. Skipped with a message when Chromium or chromedriver is not installed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fb_support::{
    ADMIN_KEY, FbApp, REDIRECT_URI, USER_KEY, connection_of_kind, connections,
};
use crate::helpers::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DEADLINE: Duration = Duration::from_secs(20);

/// A running chromedriver; killed when dropped, even when a test panics.
struct Chromedriver {
    child: Child,
    url: String,
    _profile: TempDir,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `false` (after saying why) when the browser packages are missing. In CI
/// (`CI` set) a missing browser fails the test: a skip there would hide it.
fn browser_installed(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} not found; install Debian's chromium and chromium-driver (see .ci/run)",
        missing.join(" and ")
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{test}: {why}");
    }
    // Straight to the process's stderr: the test harness captures println!
    // and eprintln! of passing tests, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver and waits until it answers `/status` as ready.
async fn start_chromedriver() -> Chromedriver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut driver = Chromedriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    };
    let http = reqwest::Client::new();
    let status_url = format!("{}/status", driver.url);
    poll("chromedriver to be ready", async || {
        if let Some(exit) = driver.child.try_wait().unwrap() {
            panic!("chromedriver exited early: {exit}");
        }
        let r = http.get(&status_url).send().await.ok()?;
        let body: Value = r.json().await.ok()?;
        (body["value"]["ready"] == true).then_some(())
    })
    .await;
    driver
}

/// Runs `body` with a fresh headless Chromium session, closing the session
/// and chromedriver afterwards whether or not `body` panicked.
async fn with_browser(body: impl AsyncFnOnce(Client)) {
    let driver = start_chromedriver().await;
    let profile = driver._profile.path().display().to_string();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                // The machine may have no internet: keep Chromium from calling home.
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,800",
                format!("--user-data-dir={profile}"),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with headless Chromium");
    let outcome = std::panic::AssertUnwindSafe(body(client.clone()))
        .catch_unwind()
        .await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls `check` until it returns `Some` or [`DEADLINE`] passes.
async fn poll<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the dashboard lists a sweep among the recent runs.
async fn sweep_listed(browser: &Client) {
    poll("the sweep in the recent runs", async || {
        let runs = browser
            .find_all(Locator::Css("tr[data-run-id]"))
            .await
            .ok()?;
        (!runs.is_empty()).then_some(())
    })
    .await;
}

async fn text_of(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_api_docs_page_lists_the_operations() {
    let test = "the_api_docs_page_lists_the_operations";
    if !browser_installed(test) {
        return;
    }
    let app = TestApp::spawn().await;
    let status = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "/docs is served");
    let docs = app.url("/docs");
    with_browser(async |browser| {
        browser.goto(&docs).await.unwrap();
        browser
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(".opblock"))
            .await
            .expect("Swagger UI renders operations (.opblock)");
        poll("the /facebook/tokens operation to be listed", async || {
            text_of(&browser, "body")
                .await
                .filter(|t| t.contains("/facebook/tokens"))
        })
        .await;
        let operations = browser.find_all(Locator::Css(".opblock")).await.unwrap();
        assert!(
            operations.len() > 10,
            "only {} operations",
            operations.len()
        );
    })
    .await;
    app.stop().await;
}

/// A store where a sweep flagged one Facebook page whose token was revoked
/// (subcode 460). Returns the app, the connect answer, the page's connection
/// id, and a real token value that must never reach the page.
async fn app_with_a_revoked_page() -> (FbApp, Value, String, String) {
    let fb = FbApp::start().await;
    let answer = fb.connect_via_dialog(None).await;
    let page = connection_of_kind(&answer, "page");
    let id = page["id"].as_str().unwrap().to_string();
    let issued = fb
        .get_ok(&format!("/tokens/{id}/access-token"), USER_KEY)
        .await;
    let token = issued["access_token"].as_str().unwrap().to_string();
    fb.revoke_page_and_sweep(&page).await;
    (fb, answer, id, token)
}

/// Opens the dashboard and enters the admin key in its form.
async fn open_dashboard(browser: &Client, url: &str) {
    browser.goto(url).await.unwrap();
    let key = browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("#key-form #api-key"))
        .await
        .expect("the key form");
    key.send_keys(ADMIN_KEY).await.unwrap();
    browser
        .find(Locator::Css("#key-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn reauth_banner(id: &str) -> String {
    format!(".banner-reauth[data-connection-id=\"{id}\"]")
}

/// Clicks "Try automatic refresh" in the banner and waits for the outcome:
/// (`data-outcome`, text).
async fn try_automatic_refresh(browser: &Client, id: &str) -> (String, String) {
    let banner = reauth_banner(id);
    browser
        .find(Locator::Css(&format!("{banner} button.try-refresh")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome_css = format!("{banner} .refresh-outcome[data-outcome]");
    poll("the refresh outcome", async || {
        let el = browser.find(Locator::Css(&outcome_css)).await.ok()?;
        let text = el.text().await.ok()?;
        let outcome = el.attr("data-outcome").await.ok()??;
        (!text.is_empty()).then_some((outcome, text))
    })
    .await
}

#[tokio::test]
async fn the_dashboard_flags_a_revoked_page_and_shows_why_automatic_refresh_failed() {
    if !browser_installed(
        "the_dashboard_flags_a_revoked_page_and_shows_why_automatic_refresh_failed",
    ) {
        return;
    }
    let (fb, answer, id, token) = app_with_a_revoked_page().await;
    let dashboard = fb.url("/dashboard");
    with_browser(async |browser| {
        open_dashboard(&browser, &dashboard).await;
        let banner = browser
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(&reauth_banner(&id)))
            .await
            .expect("a red banner for the revoked page");
        let banner_text = banner.text().await.unwrap();
        assert!(banner_text.contains("190/460"), "{banner_text}");
        let row = browser
            .find(Locator::Css(&format!("tr[data-connection-id=\"{id}\"]")))
            .await
            .expect("the connection is listed");
        assert_eq!(
            row.attr("data-health").await.unwrap().as_deref(),
            Some("reauth_required")
        );
        let flagged = poll("the health counts", async || {
            text_of(
                &browser,
                "tr[data-provider=\"facebook\"] td[data-health=\"reauth_required\"]",
            )
            .await
        })
        .await;
        assert_eq!(flagged, "1");
        sweep_listed(&browser).await;

        // A page token is re-derived from its user's token; with the user's
        // token revoked as well, the automatic refresh cannot help.
        let user = connection_of_kind(&answer, "user");
        fb.sim
            .revoke(json!({ "user_id": user["external_id"], "subcode": 460 }))
            .await;
        let (outcome, text) = try_automatic_refresh(&browser, &id).await;
        assert_eq!(outcome, "failure", "{text}");
        assert!(text.starts_with("Refresh failed: "), "{text}");
        assert!(text.len() > "Refresh failed: ".len(), "{text}");
        // The platform's words, as the refresh recorded them, once; no
        // upstream path or internal error chain around them.
        let (_, listed) = fb.get("/tokens", ADMIN_KEY).await;
        let platform = connections(&listed)
            .find(|c| c["id"] == id.as_str())
            .unwrap()["last_error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains(&platform), "{text} lacks {platform}");
        let banner_text = poll("the banner re-rendered with the outcome", async || {
            let t = text_of(&browser, &reauth_banner(&id)).await?;
            t.contains("Refresh failed: ").then_some(t)
        })
        .await;
        assert_eq!(
            banner_text.matches(&platform).count(),
            1,
            "the platform's message once: {banner_text}"
        );
        assert!(!banner_text.contains("/oauth/"), "{banner_text}");

        let source = browser.source().await.unwrap();
        assert!(!source.contains(&token), "a token value reached the page");
        let png = browser.screenshot().await.unwrap();
        std::fs::write(artifacts_dir().join("dashboard.png"), png).unwrap();

        browser
            .find(Locator::Css(&format!("{} a.reconnect", reauth_banner(&id))))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let dashboard_tab = browser.window().await.unwrap();
        let login_tab = poll("a new tab", async || {
            let windows = browser.windows().await.ok()?;
            windows.into_iter().find(|w| *w != dashboard_tab)
        })
        .await;
        browser.switch_to_window(login_tab).await.unwrap();
        let url = poll("the provider's login URL in the new tab", async || {
            let url = browser.current_url().await.ok()?;
            (url.as_str() != "about:blank").then_some(url)
        })
        .await;
        // The simulator's dialog answers at once with a redirect to the callback.
        assert!(
            url.as_str().contains("/dialog/oauth") || url.as_str().starts_with(REDIRECT_URI),
            "{url}"
        );
    })
    .await;
    fb.stop().await;
}

#[tokio::test]
async fn automatic_refresh_recovers_a_revoked_page_while_its_user_token_works() {
    if !browser_installed("automatic_refresh_recovers_a_revoked_page_while_its_user_token_works") {
        return;
    }
    let (fb, _, id, _) = app_with_a_revoked_page().await;
    let dashboard = fb.url("/dashboard");
    with_browser(async |browser| {
        open_dashboard(&browser, &dashboard).await;
        browser
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(&reauth_banner(&id)))
            .await
            .expect("a red banner for the revoked page");
        let (outcome, text) = try_automatic_refresh(&browser, &id).await;
        assert_eq!((outcome.as_str(), text.as_str()), ("success", "Refreshed"));
        let row_css = format!("tr[data-connection-id=\"{id}\"]");
        poll("the page to be listed as healthy", async || {
            let row = browser.find(Locator::Css(&row_css)).await.ok()?;
            (row.attr("data-health").await.ok()?? == "healthy").then_some(())
        })
        .await;
        let banner = browser
            .find(Locator::Css(&reauth_banner(&id)))
            .await
            .unwrap();
        let class = banner.attr("class").await.unwrap().unwrap_or_default();
        assert!(class.contains("resolved"), "{class}");
    })
    .await;
    fb.stop().await;
}

/// A store with a Facebook user and page and a TikTok shop, each refreshed
/// once by a sweep.
async fn app_with_a_shop() -> FbApp {
    let fb = FbApp::start().await;
    fb.connect_user(1, None).await;
    fb.connect_shop("team-a", "Narrow Shop").await;
    fb.sweep("/internal/scheduled-refresh").await;
    fb
}

#[tokio::test]
async fn the_dashboard_shows_a_shops_refresh_token_lapse_in_utc_and_fits_420_px() {
    if !browser_installed("the_dashboard_shows_a_shops_refresh_token_lapse_in_utc_and_fits_420_px")
    {
        return;
    }
    let fb = app_with_a_shop().await;
    let (_, listed) = fb.get("/tokens", ADMIN_KEY).await;
    let shop = connections(&listed)
        .find(|c| c["provider"] == "tiktok_shop")
        .unwrap()
        .clone();
    let shop_id = shop["id"].as_str().unwrap().to_string();
    let lapse: chrono::DateTime<chrono::Utc> = shop["refresh_token_expires_at"]
        .as_str()
        .expect("the simulator's shop has a refresh token expiry")
        .parse()
        .unwrap();
    let dashboard = fb.url("/dashboard");
    with_browser(async |browser| {
        browser.set_window_size(420, 900).await.unwrap();
        open_dashboard(&browser, &dashboard).await;
        let row = format!("tr[data-connection-id=\"{shop_id}\"]");
        let refresh = poll("the shop's refresh token expiry", async || {
            text_of(&browser, &format!("{row} td.refresh-token-expires")).await
        })
        .await;
        let expected = lapse.format("%Y-%m-%d %H:%M UTC").to_string();
        assert!(refresh.contains(&expected), "{refresh} lacks {expected}");
        let data_access = text_of(&browser, &format!("{row} td.data-access-expires"))
            .await
            .unwrap();
        assert_eq!(data_access, "—", "a shop has no data access expiry");

        let updated = poll("the time of the last update", async || {
            text_of(&browser, "#last-updated")
                .await
                .filter(|t| !t.is_empty())
        })
        .await;
        let clock = updated.strip_prefix("Updated ").unwrap_or_default();
        assert!(
            clock.len() == "14:03:22 UTC".len()
                && clock.ends_with(" UTC")
                && chrono::NaiveTime::parse_from_str(&clock[..8], "%H:%M:%S").is_ok(),
            "{updated}"
        );
        sweep_listed(&browser).await;
        for cell in browser.find_all(Locator::Css("td.time")).await.unwrap() {
            let text = cell.text().await.unwrap();
            let first = text.lines().next().unwrap_or_default();
            assert!(
                first.ends_with(" UTC") || ["never", "—", "no fixed date"].contains(&first),
                "a time not in UTC: {text:?}"
            );
        }

        // Nothing wider than the window: no sideways scrolling, no header
        // spilling out.
        let widths = browser
            .execute(
                "const top = document.querySelector('header.top');
                 return [window.innerWidth, document.documentElement.scrollWidth,
                         top.clientWidth, top.scrollWidth];",
                vec![],
            )
            .await
            .unwrap();
        let w: Vec<f64> = widths
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(w[0] <= 420.0, "the window is 420 px wide: {w:?}");
        assert!(w[1] <= w[0], "the page scrolls sideways at 420 px: {w:?}");
        assert!(w[3] <= w[2], "the header overflows at 420 px: {w:?}");
        let png = browser.screenshot().await.unwrap();
        std::fs::write(artifacts_dir().join("dashboard-420.png"), png).unwrap();
        browser
            .execute(
                "document.getElementById('connections-table').scrollIntoView();",
                vec![],
            )
            .await
            .unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(artifacts_dir().join("dashboard-420-connections.png"), png).unwrap();
    })
    .await;
    fb.stop().await;
}
