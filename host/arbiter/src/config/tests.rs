use super::*;

fn raw(text: &str) -> RawConfig {
    toml::from_str(text).expect("valid config")
}

#[test]
fn defaults_serve_the_reference_set_on_loopback() {
    let c = Config::resolve(None, &ServeArgs::default()).expect("defaults resolve");
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.policy_sets, ["builtin:reference"]);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.wasm_stack_bytes, arbiter_runtime::MAX_WASM_STACK);
}

#[test]
fn the_checkpoint_copy_is_relative_to_the_config_file() {
    let c = Config::resolve(
        Some((
            Path::new("/etc/arbiter/arbiter.toml"),
            raw("[audit]\ncheckpoint_copy = \"witness/cp.jsonl\""),
        )),
        &ServeArgs::default(),
    )
    .expect("resolves");
    let copy = c.audit.and_then(|a| a.checkpoint_copy);
    assert_eq!(copy, Some(PathBuf::from("/etc/arbiter/witness/cp.jsonl")));
}

#[test]
fn state_keep_days_default_forever_and_range() {
    let resolve = |text: &str| {
        Config::resolve(
            Some((Path::new("c.toml"), raw(text))),
            &ServeArgs::default(),
        )
    };
    let c = resolve("").expect("default");
    assert_eq!(c.state_keep, Some(Duration::from_secs(90 * 86_400)));
    let c = resolve("[state]\nkeep_days = 0").expect("forever");
    assert_eq!(c.state_keep, None);
    let c = resolve("[state]\nkeep_days = 7").expect("a week");
    assert_eq!(c.state_keep, Some(Duration::from_secs(7 * 86_400)));
    let e = resolve("[state]\nkeep_days = 40000").expect_err("too long");
    assert!(e.to_string().contains("[state] keep_days = 40000"), "{e}");
}

#[test]
fn wasm_stack_is_bounded() {
    let args = ServeArgs {
        wasm_stack_kib: Some(16),
        ..ServeArgs::default()
    };
    let e = Config::resolve(None, &args)
        .expect_err("too small")
        .to_string();
    assert!(e.contains("16 KiB is out of range"), "{e}");
    let c = Config::resolve(
        Some((Path::new("/a.toml"), raw("wasm_stack_kib = 256\n"))),
        &ServeArgs::default(),
    )
    .expect("ok");
    assert_eq!(c.wasm_stack_bytes, 256 * 1024);
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let file = raw(
        "listen = \"127.0.0.1:1\"\nlog_format = \"json\"\npolicy_sets = [\"sets/a\", \"builtin:reference-split\"]\n[limits]\ndeadline_ms = 7\n",
    );
    let args = ServeArgs {
        listen: Some("127.0.0.1:2".into()),
        ..ServeArgs::default()
    };
    let c = Config::resolve(Some((Path::new("/etc/arbiter/arbiter.toml"), file)), &args)
        .expect("resolves");
    assert_eq!(c.listen.port(), 2);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(
        c.policy_sets,
        ["/etc/arbiter/sets/a", "builtin:reference-split"]
    );
    assert_eq!(c.limits.deadline, std::time::Duration::from_millis(7));
}

#[test]
fn bad_listen_address_says_what_is_expected() {
    let args = ServeArgs {
        listen: Some("localhost".into()),
        ..ServeArgs::default()
    };
    let e = Config::resolve(None, &args)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("`localhost`") && e.contains("IP:port"), "{e}");
}

#[test]
fn unknown_keys_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arbiter.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_port = 5\n").expect("write");
    let args = ServeArgs {
        config: Some(path.clone()),
        ..ServeArgs::default()
    };
    let e = Config::load(&args).expect_err("refused").to_string();
    assert!(
        e.starts_with(&format!("{}:2:", path.display())) && e.contains("listen_port"),
        "{e}"
    );
}

#[test]
fn the_config_format_version_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arbiter.toml");
    let args = ServeArgs {
        config: Some(path.clone()),
        ..ServeArgs::default()
    };
    std::fs::write(&path, "version = 1\nlisten = \"127.0.0.1:1\"\n").expect("write");
    assert!(Config::load(&args).is_ok());
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nversion = 2\n").expect("write");
    let e = Config::load(&args).expect_err("refused").to_string();
    assert!(
        e.starts_with(&format!("{}:2:", path.display()))
            && e.contains("version 2 is not supported")
            && e.contains("hint:"),
        "{e}"
    );
}

#[test]
fn a_key_secret_file_is_read_and_a_short_or_missing_one_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let resolve = |path: &Path| {
        let text = format!(
            "[credentials]\nkey_secret_file = {:?}",
            path.display().to_string()
        );
        Config::resolve(
            Some((Path::new("c.toml"), raw(&text))),
            &ServeArgs::default(),
        )
    };
    let good = dir.path().join("secret");
    std::fs::write(&good, [b'x'; 48]).expect("write");
    let c = resolve(&good).expect("resolves");
    let secret = c.credentials.key_secret.expect("a key secret");
    assert!(secret.issuer().starts_with("urn:arbiter:"));
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny\n").expect("write");
    let e = format!("{:#}", resolve(&short).expect_err("too short"));
    assert!(e.contains("short") && e.contains("at least 32"), "{e}");
    let e = format!(
        "{:#}",
        resolve(&dir.path().join("missing")).expect_err("missing")
    );
    assert!(
        e.contains("key_secret_file") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn secret_files_named_relative_to_the_config_file_are_found_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("key-secret"), [b'k'; 48]).expect("write");
    let text = "[state]\nurl = \"postgres://arbiter@db/arbiter\"\npassword_file = \"secrets/db-password\"\n\
                [credentials]\nkey_secret_file = \"key-secret\"\n";
    // Run from elsewhere: the working directory must not matter.
    let c = Config::resolve(
        Some((&dir.path().join("arbiter.toml"), raw(text))),
        &ServeArgs::default(),
    )
    .expect("the key secret is read beside the config file");
    assert!(c.credentials.key_secret.is_some());
    let (_, password_file) = c.state_url.expect("state url");
    assert_eq!(
        password_file.as_deref(),
        Some(dir.path().join("secrets/db-password").as_path())
    );
}
