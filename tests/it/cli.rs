//! The command line as an operator uses it: help, keygen, store verify and
//! restore, configuration errors, and the lock against a second service.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::helpers::{TEST_KEY, ok_stdout, spawn_until_listening, text};

fn tokenkeeper(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
    cmd.args(args).env_remove("TOKENKEEPER_ENCRYPTION_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn help_lists_every_subcommand() {
    let out = tokenkeeper(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["serve", "keygen", "store"] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    let out = tokenkeeper(&["store", "--help"], &[]);
    let help = text(&out.stdout);
    assert!(help.contains("verify") && help.contains("restore"));
}

#[test]
fn keygen_prints_a_fresh_256_bit_key() {
    let a = text(&tokenkeeper(&["keygen"], &[]).stdout);
    let b = text(&tokenkeeper(&["keygen"], &[]).stdout);
    assert_ne!(a, b);
    tokenkeeper::secret::decode_key(a.trim()).expect("a usable key");
}

#[test]
fn a_bad_setting_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = tokenkeeper(
        &["serve", "--data-dir", d],
        &[("TOKENKEEPER__STORE__BACKUP_COUNT", "zero")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("store.backup_count"));
    let out = tokenkeeper(
        &["serve", "--data-dir", d],
        &[("TOKENKEEPER_ENCRYPTION_KEY", "not-a-key")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("TOKENKEEPER_ENCRYPTION_KEY"), "{err}");
    assert!(!err.contains("not-a-key"));
}

#[test]
fn an_out_of_range_rate_limit_exits_2_naming_the_key_and_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokenkeeper(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[
            ("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY),
            ("TOKENKEEPER__API__RATE_LIMIT_PER_SECOND", "2000000000"),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("api.rate_limit_per_second"), "{err}");
    assert!(err.contains("between 1 and 1000000"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Starts `serve` on a random port and waits until it logs its address.
fn start_service(dir: &Path) -> (std::process::Child, String) {
    spawn_until_listening(
        Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
            .env("TOKENKEEPER__LOGGING__FORMAT", "json")
            .env("NO_COLOR", "1"),
    )
}

#[test]
fn a_second_service_on_the_same_store_is_refused_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (first, addr) = start_service(dir.path());
    assert!(addr.starts_with("127.0.0.1:"));

    let out = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");

    let status = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut first = first;
    assert!(first.wait().unwrap().success(), "graceful exit code 0");

    let out = tokenkeeper(
        &[
            "store",
            "verify",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn first_run_without_a_key_creates_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
        cmd.env_remove("TOKENKEEPER_ENCRYPTION_KEY");
        // start_service sets a key; start by hand here.
        let mut child = cmd
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("TOKENKEEPER__LOGGING__FORMAT", "json")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut warned = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            warned |= line.contains("production should set the variable");
            if line.contains("tokenkeeper listening") {
                break;
            }
        }
        assert!(warned, "no warning about the generated key");
        (child, ())
    };
    let key = dir.path().join("master.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    child.kill().unwrap();
    child.wait().unwrap();
    // The store verifies with the generated key file, and not with another key.
    let d = dir.path().to_str().unwrap();
    assert!(
        tokenkeeper(&["store", "verify", "--data-dir", d], &[])
            .status
            .success()
    );
    let out = tokenkeeper(
        &["store", "verify", "--data-dir", d],
        &[("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("written with key"));
}

#[tokio::test]
async fn store_verify_and_restore_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let env = [("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)];
    store_of_two(&tokenkeeper::store::StoreOptions {
        backup_interval: std::time::Duration::ZERO,
        ..tokenkeeper::store::StoreOptions::new(dir.path())
    })
    .await;
    let out = tokenkeeper(&["store", "verify", "--data-dir", &d], &env);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("2 connections"));

    let path = dir.path().join("tokens.json");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 10);
    std::fs::write(&path, &bytes).unwrap();
    let out = tokenkeeper(&["store", "verify", "--data-dir", &d], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("corrupt"));

    // A backup that does not verify is refused.
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, b"{}").unwrap();
    let out = tokenkeeper(
        &[
            "store",
            "restore",
            "--data-dir",
            &d,
            "--from",
            bogus.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left untouched");

    let out = tokenkeeper(&["store", "restore", "--data-dir", &d], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tokenkeeper(&["store", "verify", "--data-dir", &d], &env);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("1 connection,"));
}

/// A store of two pages, written with the test key.
async fn store_of_two(options: &tokenkeeper::store::StoreOptions) {
    let store =
        tokenkeeper::store::JsonFileStore::open(options, crate::helpers::test_cipher()).unwrap();
    let cipher = crate::helpers::test_cipher();
    for i in 0..2 {
        store
            .put(crate::helpers::page_connection(
                &cipher,
                &format!("p{i}"),
                "EAAB-x",
            ))
            .await
            .unwrap();
    }
    store.close().await;
}

#[tokio::test]
async fn store_verify_without_a_key_is_a_configuration_error_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    store_of_two(&tokenkeeper::store::StoreOptions::new(dir.path())).await;
    let d = dir.path().to_str().unwrap();
    let out = tokenkeeper(&["store", "verify", "--data-dir", d], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TOKENKEEPER_ENCRYPTION_KEY"), "{err}");
    let out = tokenkeeper(&["tokens", "check", "--data-dir", d], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[tokio::test]
async fn the_cli_reads_config_local_toml_as_serve_does() {
    let data = tempfile::tempdir().unwrap();
    store_of_two(&tokenkeeper::store::StoreOptions::new(data.path())).await;
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("config")).unwrap();
    std::fs::write(
        work.path().join("config/local.toml"),
        format!("[store]\ndata_dir = {:?}\n", data.path().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["tokens", "status", "--format", "summary"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let stdout = ok_stdout(&out);
    assert!(stdout.starts_with("2 connections"), "{stdout}");
    let out = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["store", "verify"])
        .current_dir(work.path())
        .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
        .output()
        .unwrap();
    let stdout = ok_stdout(&out);
    assert!(stdout.contains("2 connections"), "{stdout}");
}

#[test]
fn a_busy_port_suggests_addr() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokenkeeper(
        &[
            "serve",
            "--addr",
            &addr,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--addr"), "{err}");
    let out = tokenkeeper(&["demo", "--addr", &addr], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&addr) && err.contains("--addr"), "{err}");
}

#[test]
fn store_migrate_names_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = tokenkeeper(
        &["store", "migrate", "--to", "postgres", "--data-dir", data],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("TOKENKEEPER_DATABASE_URL"));
    // On the JSON backend there is no schema to migrate.
    let env = [
        ("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY),
        (
            "TOKENKEEPER_DATABASE_URL",
            "postgres://tk:pw@127.0.0.1:1/tk",
        ),
    ];
    let out = tokenkeeper(&["store", "migrate", "--data-dir", data], &env);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--to postgres") && !err.contains("pw@"),
        "{err}"
    );
}
