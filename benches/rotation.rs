//! Key rotation benchmark: N page connections (100,000, or
//! `TK_BENCH_CONNECTIONS`), each with an access and a refresh token sealed
//! with the old key, rotated to a new one with `keys rotate`'s code
//! (`store::rotation::rotate`, 64 at once) on the JSON store, or on
//! PostgreSQL with `TK_BENCH_BACKEND=postgres` (the database of
//! `TOKENKEEPER_TEST_DATABASE_URL`, in a schema made for the run and dropped
//! after). Prints the rotation's wall time, connections per second, and its
//! ratio to the floor measured in the same run: opening and sealing the same
//! secrets in memory on every core, with no store. Run with
//! `cargo bench --bench rotation`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokenkeeper::clock::SystemClock;
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{
    Cipher, ConnectionStore, JsonFileStore, PgConnectionStore, StoreOptions, Write, rotation,
};

const OLD: [u8; 32] = [7u8; 32];
const NEW: [u8; 32] = [9u8; 32];

fn page(cipher: &Cipher, i: usize) -> Connection {
    let external_id = format!("1045185381{i:06}");
    let team = format!("team-{}", i % 10);
    let bound = |field| {
        Binding::new(
            Provider::Facebook,
            ConnectionKind::Page,
            &external_id,
            Some(&team),
            field,
        )
    };
    let seal = |token: String, field| cipher.encrypt(&Secret::new(token), &bound(field)).unwrap();
    let mut c = Connection::new(
        Provider::Facebook,
        ConnectionKind::Page,
        external_id.clone(),
        format!("Page {i}"),
        StoredSecrets {
            access_token: seal(format!("EAAB{}{i}", "x".repeat(180)), Field::AccessToken),
            refresh_token: Some(seal(
                format!("RT{}{i}", "y".repeat(60)),
                Field::RefreshToken,
            )),
        },
        Utc::now(),
    );
    c.team_id = Some(team.clone());
    c
}

fn keyring() -> Cipher {
    use base64::Engine;
    let old = Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(OLD));
    Cipher::new(NEW).with_previous(Some(&old)).unwrap()
}

async fn fill(store: &dyn ConnectionStore, n: usize) {
    let old = Cipher::new(OLD);
    let pages: Vec<Connection> = (0..n).map(|i| page(&old, i)).collect();
    for chunk in pages.chunks(1_000) {
        let writes = chunk
            .iter()
            .map(|c| Write::Upsert {
                new: Box::new(c.clone()),
                edit: Box::new(|_| {}),
            })
            .collect();
        store.write_all(writes).await.unwrap();
    }
}

/// The in-memory floor: every secret opened and sealed again, on every core.
fn floor(conns: &[Arc<Connection>], ring: &Cipher) -> f64 {
    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = conns.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in conns.chunks(chunk) {
            s.spawn(move || {
                for c in part {
                    for field in [Field::AccessToken, Field::RefreshToken] {
                        let secret = match field {
                            Field::AccessToken => &c.secrets.access_token,
                            Field::RefreshToken => c.secrets.refresh_token.as_ref().unwrap(),
                        };
                        let bound = Binding::of(c, field);
                        let plain = ring.decrypt(&c.id, secret, &bound).unwrap();
                        ring.encrypt(&plain, &bound).unwrap();
                    }
                }
            });
        }
    });
    t.elapsed().as_secs_f64()
}

async fn run(store: Arc<dyn ConnectionStore>, n: usize, what: &str) {
    let all = store
        .list(&tokenkeeper::store::ListFilter::default())
        .await
        .unwrap();
    let floor = floor(&all, &keyring());
    drop(all);
    let t = Instant::now();
    let report = rotation::rotate(&*store, rotation::DEFAULT_AT_ONCE, &|_| {})
        .await
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(report.resealed, n);
    assert_eq!(report.in_use.kids.len(), 1, "only the new key is left");
    println!(
        "rotation of {n} connections ({} secrets) on {what}: {wall:.2} s, {:.0} connections/s",
        2 * n,
        n as f64 / wall
    );
    println!(
        "  floor (open and seal every secret in memory, {} cores) {floor:.2} s; wall / floor {:.2}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        wall / floor
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("TK_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    match std::env::var("TK_BENCH_BACKEND").as_deref() {
        Ok("postgres") => {
            let url = std::env::var("TOKENKEEPER_TEST_DATABASE_URL")
                .expect("TK_BENCH_BACKEND=postgres needs TOKENKEEPER_TEST_DATABASE_URL");
            let schema = format!("tk_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .unwrap();
            let connect = |cipher: Cipher| {
                let options = sqlx::postgres::PgConnectOptions::from_str(&url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                PgConnectionStore::connect_with(
                    options,
                    sqlx::postgres::PgPoolOptions::new().max_connections(10),
                    cipher,
                    Arc::new(SystemClock),
                )
            };
            let filling = connect(Cipher::new(OLD)).await.unwrap();
            fill(&filling, n).await;
            filling.close().await;
            let store = connect(keyring()).await.unwrap();
            run(Arc::new(store), n, "PostgreSQL").await;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
        }
        Ok("json") | Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let filling =
                JsonFileStore::open(&StoreOptions::new(dir.path()), Cipher::new(OLD)).unwrap();
            fill(&filling, n).await;
            filling.close().await;
            let store = JsonFileStore::open(&StoreOptions::new(dir.path()), keyring()).unwrap();
            run(Arc::new(store), n, "the JSON store").await;
        }
        Ok(other) => panic!("TK_BENCH_BACKEND is json or postgres, not {other}"),
    }
}
