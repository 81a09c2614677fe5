//! `tokenkeeper demo` as a newcomer runs it: a Deauthorize callback flags
//! the demo user at once, the CLI commands it prints work on its data while
//! it runs, and SIGTERM removes its folder as Ctrl-C does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_prints_cli_commands_that_work_on_its_data_and_sigterm_removes_its_folder() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["demo", "--addr", "127.0.0.1:0"])
        .env_remove("TOKENKEEPER_ENCRYPTION_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("the demo's output");
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let all = printed.join("\n");
    let env_file = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("set -a; . "))
        .and_then(|l| l.strip_suffix("; set +a"))
        .unwrap_or_else(|| panic!("no demo.env line in:\n{all}"))
        .to_string();
    let commands: Vec<Vec<String>> = printed
        .iter()
        .filter(|l| l.contains(" --config ") && l.contains("demo.toml"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert!(commands.len() >= 3, "{all}");
    // The Deauthorize callback arrives while the demo runs: the user and
    // both its pages are flagged at once, without a sweep.
    let callback = printed
        .iter()
        .position(|l| l.contains("POST /facebook/webhooks/deauthorize"))
        .unwrap_or_else(|| panic!("no Deauthorize callback in:\n{all}"));
    assert!(
        printed[callback].contains("2 connections flagged at once"),
        "the user and the page not yet revoked:\n{all}"
    );
    let flagged: Vec<&String> = printed[callback + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert_eq!(flagged.len(), 3, "{all}");
    assert!(
        flagged.iter().all(|l| l.ends_with(": reauth_required")),
        "{all}"
    );
    assert!(flagged.iter().any(|l| l.contains("(user)")), "{all}");
    let folder = std::path::PathBuf::from(&env_file)
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(folder.join("demo.toml").is_file() && folder.join("master.key").is_file());
    let credentials: Vec<(String, String)> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    // Run each printed command as printed, beside the running demo.
    for command in &commands {
        let out = Command::new(&command[0])
            .args(&command[1..])
            .envs(credentials.iter().map(|(k, v)| (k, v)))
            .env_remove("TOKENKEEPER_ENCRYPTION_KEY")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}{}",
            command.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if command.contains(&"--dry-run".to_string()) {
            // The revoked page waits for its user; the rest is planned.
            assert!(text.contains("awaiting reconnect"), "{text}");
            assert!(text.contains("nothing changed"), "{text}");
        }
        if command.contains(&"verify".to_string()) {
            assert!(text.starts_with("ok: 5 connections"), "{text}");
        }
    }

    let status = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = demo.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the demo ignores SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(!folder.exists(), "{} is left behind", folder.display());
}
