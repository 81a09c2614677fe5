use super::*;

fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(
        Path::new("/nonexistent/local.toml"),
        &Overrides::default(),
        &env,
    )
}

#[test]
fn defaults_load_without_any_environment() {
    let s = load(&[]).unwrap();
    assert_eq!(s.server.addr, "127.0.0.1:8080");
    assert_eq!(s.store.backup_count, 5);
    assert_eq!(s.logging.format, LogFormat::Human);
}

#[test]
fn environment_overrides_files() {
    let s = load(&[
        ("TOKENKEEPER__STORE__BACKUP_COUNT", "9"),
        ("TOKENKEEPER__LOGGING__FORMAT", "json"),
    ])
    .unwrap();
    assert_eq!(s.store.backup_count, 9);
    assert_eq!(s.logging.format, LogFormat::Json);
}

#[test]
fn a_bad_value_names_its_key() {
    let err = load(&[("TOKENKEEPER__STORE__BACKUP_COUNT", "many")]).unwrap_err();
    assert_eq!(err.key, "store.backup_count", "{err}");
    let err = load(&[("TOKENKEEPER__SERVER__ADDR", "nowhere")]).unwrap_err();
    assert_eq!(err.key, "server.addr");
    let err = load(&[("TOKENKEEPER_ENCRYPTION_KEY", "short")]).unwrap_err();
    assert_eq!(err.key, "TOKENKEEPER_ENCRYPTION_KEY");
    assert!(
        !err.to_string().contains("short"),
        "the key value leaked: {err}"
    );
}

fn load_toml(toml: &str) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, toml).unwrap();
    Settings::load_from(
        Path::new("/nonexistent/local.toml"),
        &Overrides {
            config_file: Some(file),
            ..Overrides::default()
        },
        &HashMap::new(),
    )
}

fn key(id: &str) -> String {
    format!(
        "[[api.keys]]\nid = \"{id}\"\nkey = \"k-{id}-0123456789abcdef\"\nscopes = [\"exports\"]\n"
    )
}

#[test]
fn a_configured_key_may_not_take_a_built_in_id() {
    for reserved in ["admin", "internal", "Admin"] {
        let err = load_toml(&format!("{}{}", key("dashboard"), key(reserved))).unwrap_err();
        assert_eq!(err.key, "api.keys[1].id", "{err}");
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    assert!(load_toml(&key("administrator")).is_ok());
}

#[test]
fn two_configured_keys_may_not_share_an_id() {
    let err = load_toml(&format!("{}{}{}", key("a"), key("b"), key("a"))).unwrap_err();
    assert_eq!(err.key, "api.keys[2].id", "{err}");
    assert!(err.to_string().contains("api.keys[0]"), "{err}");
}

#[test]
fn server_limits_are_range_checked_naming_the_key() {
    for (var, value, key) in [
        (
            "TOKENKEEPER__SERVER__HEADER_READ_TIMEOUT_SECS",
            "0",
            "server.header_read_timeout_secs",
        ),
        (
            "TOKENKEEPER__SERVER__BODY_READ_TIMEOUT_SECS",
            "4000",
            "server.body_read_timeout_secs",
        ),
        (
            "TOKENKEEPER__SERVER__IDLE_TIMEOUT_SECS",
            "0",
            "server.idle_timeout_secs",
        ),
        (
            "TOKENKEEPER__SERVER__MAX_CONNECTIONS",
            "0",
            "server.max_connections",
        ),
        (
            "TOKENKEEPER__SERVER__REQUEST_TIMEOUT_SECS",
            "600",
            "server.request_timeout_secs",
        ),
        (
            "TOKENKEEPER__API__FAILED_AUTH_PER_SECOND",
            "0",
            "api.failed_auth_per_second",
        ),
        (
            "TOKENKEEPER__API__FAILED_AUTH_MAX_CLIENTS",
            "0",
            "api.failed_auth_max_clients",
        ),
    ] {
        let err = load(&[(var, value)]).unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
    let s = load(&[]).unwrap();
    assert_eq!(s.server.max_connections, 1024);
    assert!(s.server.request_timeout_secs > s.insights.async_timeout_secs);
}

#[test]
fn out_of_range_numbers_exit_naming_the_key_and_the_range() {
    for (var, key, range) in [
        (
            "TOKENKEEPER__API__RATE_LIMIT_PER_SECOND",
            "api.rate_limit_per_second",
            "between 1 and 1000000",
        ),
        (
            "TOKENKEEPER__STORE__BACKUP_COUNT",
            "store.backup_count",
            "between 1 and 1000",
        ),
        (
            "TOKENKEEPER__REFRESH__CONCURRENCY",
            "refresh.concurrency",
            "between 1 and 1000",
        ),
        (
            "TOKENKEEPER__INSIGHTS__MAX_MONTHS_BACK",
            "insights.max_months_back",
            "between 1 and 37",
        ),
    ] {
        let err = load(&[(var, "2000000000")]).unwrap_err();
        assert_eq!(err.key, key, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(range) && text.contains("2000000000"),
            "{text}"
        );
    }
    let err = load(&[("TOKENKEEPER__FACEBOOK__USAGE_PAUSE_PCT", "150.5")]).unwrap_err();
    assert_eq!(err.key, "facebook.usage_pause_pct", "{err}");
    let err = load(&[("TOKENKEEPER__REFRESH__BASE_DELAY_MS", "60000")]).unwrap_err();
    assert_eq!(err.key, "refresh.base_delay_ms", "{err}");
    assert!(err.to_string().contains("refresh.max_delay_ms"), "{err}");
    // The edges of a range are allowed.
    load(&[("TOKENKEEPER__API__RATE_LIMIT_PER_SECOND", "1000000")]).unwrap();
    load(&[("TOKENKEEPER__API__RATE_LIMIT_BURST", "1")]).unwrap();
}

/// Every numeric key of `config/default.toml` (its path and whether it
/// is a float), tables walked recursively.
fn numeric_default_keys() -> Vec<(String, bool)> {
    fn walk(
        prefix: &str,
        table: &config::Map<String, config::Value>,
        out: &mut Vec<(String, bool)>,
    ) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match &value.kind {
                config::ValueKind::Table(t) => walk(&key, t, out),
                config::ValueKind::I64(_) | config::ValueKind::U64(_) => out.push((key, false)),
                config::ValueKind::Float(_) => out.push((key, true)),
                config::ValueKind::Array(items) => match items.first().map(|v| &v.kind) {
                    Some(config::ValueKind::I64(_) | config::ValueKind::U64(_)) => {
                        out.push((key, false))
                    }
                    Some(config::ValueKind::Float(_)) => out.push((key, true)),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let defaults = Config::builder()
        .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
        .build()
        .unwrap();
    let mut out = Vec::new();
    walk("", &config::Source::collect(&defaults).unwrap(), &mut out);
    out
}

#[test]
fn every_numeric_key_is_range_checked() {
    let keys = numeric_default_keys();
    assert!(keys.len() > 30, "the walk found only {keys:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local.toml");
    let arrays = ["facebook.warning_days"];
    // Beyond every range, yet within every integer type (u32 included),
    // so only the range check can refuse it; and below every range.
    for (key, float) in &keys {
        for value in ["2000000000", "-1"] {
            let value = if *float {
                format!("{value}.0")
            } else {
                value.to_string()
            };
            let value = if arrays.contains(&key.as_str()) {
                format!("[{value}]")
            } else {
                value
            };
            let (table, name) = key.rsplit_once('.').unwrap();
            std::fs::write(&file, format!("[{table}]\n{name} = {value}\n")).unwrap();
            let err = Settings::load_from(&file, &Overrides::default(), &HashMap::new())
                .err()
                .unwrap_or_else(|| {
                    panic!("{key} = {value} was accepted: give it a range in config/ranges.rs")
                });
            assert_eq!(&err.key, key, "{key} = {value}: {err}");
        }
    }
}

#[test]
fn flags_override_everything() {
    let env = [(
        "TOKENKEEPER__SERVER__ADDR".to_string(),
        "0.0.0.0:1".to_string(),
    )]
    .into();
    let s = Settings::load_from(
        Path::new("/nonexistent"),
        &Overrides {
            addr: Some("127.0.0.1:9999".into()),
            data_dir: Some("/tmp/x".into()),
            config_file: None,
        },
        &env,
    )
    .unwrap();
    assert_eq!(s.server.addr, "127.0.0.1:9999");
    assert_eq!(s.store.data_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn the_postgres_backend_needs_its_url_and_a_shared_key_from_the_environment() {
    let env = [("TOKENKEEPER__STORE__BACKEND", "postgres")];
    let err = load(&env).unwrap_err();
    assert_eq!(err.key, "TOKENKEEPER_DATABASE_URL");
    let env = [
        ("TOKENKEEPER__STORE__BACKEND", "postgres"),
        ("TOKENKEEPER_DATABASE_URL", "postgres://tk:pw@db/tk"),
    ];
    let err = load(&env).unwrap_err();
    assert_eq!(err.key, "TOKENKEEPER_ENCRYPTION_KEY");
    let key = crate::secret::generate_key();
    let env = [
        ("TOKENKEEPER__STORE__BACKEND", "postgres"),
        ("TOKENKEEPER_DATABASE_URL", "postgres://tk:pw@db/tk"),
        ("TOKENKEEPER_ENCRYPTION_KEY", key.as_str()),
    ];
    let settings = load(&env).unwrap();
    assert_eq!(settings.store.backend, StoreBackend::Postgres);
    assert_eq!(settings.store.postgres.max_connections, 10);
    // The URL holds a password: it never shows in the settings' Debug.
    assert!(!format!("{settings:?}").contains("pw@"));
}
