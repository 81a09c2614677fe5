//! Shared test helpers: a `TestApp` on a random port with its own data folder,
//! sample records, and a log buffer that tests search for leaked secrets.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use tempfile::TempDir;
use tokenkeeper::app::{Application, StartError};
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::config::{Overrides, Settings};
use tokenkeeper::domain::{Connection, ConnectionKind, EncryptedSecret, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{Cipher, JsonFileStore, StoreError, StoreOptions};
use tokio_util::sync::CancellationToken;

/// A fixed test key (base64url of 32 bytes).
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

pub fn test_cipher() -> Cipher {
    Cipher::new(tokenkeeper::secret::decode_key(TEST_KEY).unwrap())
}

/// Everything logged by any test in this binary.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let settings = tokenkeeper::config::LoggingSettings {
            format: tokenkeeper::config::LogFormat::Json,
            level: "debug".into(),
        };
        let writer = buffer.clone();
        tokenkeeper::telemetry::init(&settings, move || writer.clone());
        buffer
    })
}

pub fn test_settings(data_dir: &Path, extra_env: &[(&str, &str)]) -> Settings {
    test_settings_with(data_dir, extra_env, None)
}

pub fn test_settings_with(
    data_dir: &Path,
    extra_env: &[(&str, &str)],
    config_file: Option<&Path>,
) -> Settings {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("TOKENKEEPER_ENCRYPTION_KEY".into(), TEST_KEY.into());
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::load_from(
        Path::new("/nonexistent/local.toml"),
        &Overrides {
            config_file: config_file.map(Path::to_path_buf),
            addr: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.to_path_buf()),
        },
        &env,
    )
    .expect("test settings")
}

/// The real service on a random port, with its own data folder.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: JsonFileStore,
    cancel: CancellationToken,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<TempDir>,
}

/// Builds the app; a store lock held by this very process is waited for a
/// moment. A process that another test spawns is forked with a copy of every
/// descriptor, the lock file's included, which it closes only when it execs:
/// a restart in that instant finds the lock still held, by our own pid.
async fn build_retrying_own_lock(settings: Settings, clock: Arc<OffsetClock>) -> Application {
    let own = std::process::id().to_string();
    for _ in 0..100 {
        match Application::build_with_clock(settings.clone(), clock.clone()).await {
            Err(StartError::Store(StoreError::Locked { pid, .. })) if pid == own => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            built => return built.expect("the app builds"),
        }
    }
    panic!("the store lock stayed held by this process");
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut app = Self::spawn_in(dir.path()).await;
        app._dir = Some(dir);
        app
    }

    pub async fn spawn_in(data_dir: &Path) -> Self {
        Self::spawn_with(
            test_settings(data_dir, &[]),
            Arc::new(OffsetClock::default()),
        )
        .await
    }

    /// The app with the given settings and domain clock.
    pub async fn spawn_with(settings: Settings, clock: Arc<OffsetClock>) -> Self {
        logs();
        let app = build_retrying_own_lock(settings, clock).await;
        let addr = app.addr();
        let store = app.file_store().expect("the JSON backend").clone();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(app.run(cancel.clone()));
        Self {
            addr,
            client: reqwest::Client::new(),
            store,
            cancel,
            handle: Some(handle),
            _dir: None,
        }
    }

    /// Keeps a temporary folder alive as long as the app.
    pub fn keep_dir(&mut self, dir: TempDir) {
        self._dir = Some(dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown, as SIGTERM would do it; waits for the store flush.
    pub async fn stop(mut self) -> Option<TempDir> {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self._dir.take()
    }
}

/// `token` sealed as `conn`'s `field` (seal again after changing its
/// provider, kind, external id or team: a secret is bound to them).
pub fn seal(cipher: &Cipher, conn: &Connection, field: Field, token: &str) -> EncryptedSecret {
    cipher
        .encrypt(&Secret::new(token), &Binding::of(conn, field))
        .unwrap()
}

/// A Facebook page connection whose access token is `token`.
pub fn page_connection(store_cipher: &Cipher, external_id: &str, token: &str) -> Connection {
    let binding = Binding::new(
        Provider::Facebook,
        ConnectionKind::Page,
        external_id,
        None,
        Field::AccessToken,
    );
    let secrets = StoredSecrets {
        access_token: store_cipher.encrypt(&Secret::new(token), &binding).unwrap(),
        refresh_token: None,
    };
    Connection::new(
        Provider::Facebook,
        ConnectionKind::Page,
        external_id,
        format!("Page {external_id}"),
        secrets,
        Utc::now(),
    )
}

/// Opens the store, waiting briefly if the lock is held: a child process
/// that another test is spawning may hold a copy of a lock descriptor
/// between fork and exec.
pub fn open_store(dir: &Path) -> JsonFileStore {
    open_store_with_clock(dir, Arc::new(tokenkeeper::clock::SystemClock))
}

/// [`open_store`] with the clock its leases expire by.
pub fn open_store_with_clock(dir: &Path, clock: tokenkeeper::clock::SharedClock) -> JsonFileStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match JsonFileStore::open_with_clock(&StoreOptions::new(dir), test_cipher(), clock.clone())
        {
            Ok(store) => return store,
            Err(tokenkeeper::store::StoreError::Locked { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("the store does not open: {e}"),
        }
    }
}

/// Spawns `tokenkeeper serve` as `cmd` sets it up (JSON logs) with its
/// stderr piped, and waits until it logs its address; the child and the
/// address. The rest of stderr is drained in the background.
pub fn spawn_until_listening(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the service exits before listening")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "tokenkeeper listening" {
            break v["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// A CLI's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a CLI run that must exit 0 (else the failure shows both
/// streams).
pub fn ok_stdout(out: &std::process::Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

/// Sends a request and reads its JSON answer, whatever the status.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The status code and `Content-Length` (0 when absent) of a raw HTTP/1.1
/// response head, for the tests that speak HTTP over a bare socket.
pub fn status_and_length(head: &str) -> (u16, usize) {
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (status, length)
}
