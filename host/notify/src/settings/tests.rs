use super::*;

const KEY: &str = "k7Jw1mQ0s3e5Zp8xV2c4b6n9m1a3s5d7f9g0h2j4k6=";

/// A directory with an owner-only secret file `webhook.key`.
fn dir_with_secret() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_private(&dir.path().join("webhook.key"), KEY);
    dir
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

fn parse(toml_text: &str, dir: &Path) -> Result<Notifications, SettingsError> {
    let raw: RawNotifications = toml::from_str(toml_text).expect("toml");
    resolve(Some(raw), Some(dir))
}

fn error(toml_text: &str, dir: &Path) -> String {
    parse(toml_text, dir).expect_err("refused").to_string()
}

#[test]
fn a_webhook_resolves_with_its_defaults() {
    let dir = dir_with_secret();
    let n = parse(
        r#"
        console_url = "https://arbiter.example/console/"
        [[webhooks]]
        url = "https://hooks.example:8443/services/T0/B0/secret?x=1"
        secret_file = "webhook.key"
        "#,
        dir.path(),
    )
    .expect("valid");
    assert_eq!(
        n.console_url.as_deref(),
        Some("https://arbiter.example/console")
    );
    let w = &n.webhooks[0];
    assert_eq!(w.name, "hooks.example");
    assert_eq!(w.format, Format::Json);
    assert_eq!(w.events, Event::ALL);
    assert_eq!(w.timeout, DEFAULT_TIMEOUT);
    assert_eq!(w.max_attempts.get(), DEFAULT_MAX_ATTEMPTS);
    assert_eq!(w.secret.bytes(), KEY.as_bytes());
    assert!(w.target.tls);
    assert_eq!(
        (w.target.host.as_str(), w.target.port),
        ("hooks.example", 8443)
    );
    assert_eq!(w.target.path, "/services/T0/B0/secret?x=1");
    // Neither the URL's path (a chat service's secret) nor the key is ever shown.
    let shown = format!("{n:?} {}", w.target);
    assert!(!shown.contains("T0/B0") && !shown.contains(KEY), "{shown}");
}

#[test]
fn http_is_allowed_on_loopback_and_refused_elsewhere_without_the_opt_in() {
    let dir = dir_with_secret();
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "http://localhost/hook",
    ] {
        let toml_text = format!("[[webhooks]]\nurl = \"{url}\"\nsecret_file = \"webhook.key\"");
        let n = parse(&toml_text, dir.path()).expect(url);
        assert!(!n.webhooks[0].target.tls);
    }
    let e = error(
        "[[webhooks]]\nurl = \"http://chat.example/hook\"\nsecret_file = \"webhook.key\"",
        dir.path(),
    );
    assert!(
        e.contains("[[notifications.webhooks]] #1 url")
            && e.contains("not loopback")
            && e.contains("insecure_plaintext"),
        "{e}"
    );
    parse(
        "[[webhooks]]\nurl = \"http://chat.example/hook\"\nsecret_file = \"webhook.key\"\ninsecure_plaintext = true",
        dir.path(),
    )
    .expect("opted in");
}

#[cfg(unix)]
#[test]
fn a_secret_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = dir_with_secret();
    let key = dir.path().join("webhook.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = error(
        "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret_file = \"webhook.key\"",
        dir.path(),
    );
    assert!(
        e.contains("secret_file")
            && e.contains(&key.display().to_string())
            && e.contains("mode 644")
            && e.contains("chmod 600"),
        "{e}"
    );
}

#[test]
fn secrets_must_exist_and_be_long_enough() {
    let dir = dir_with_secret();
    let e = error(
        "[[webhooks]]\nurl = \"https://hooks.example/a\"",
        dir.path(),
    );
    assert!(e.contains("secret_file is missing"), "{e}");
    let e = error(
        "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret_file = \"nope.key\"",
        dir.path(),
    );
    assert!(
        e.contains("secret_file: cannot read") && e.contains("nope.key"),
        "{e}"
    );
    write_private(&dir.path().join("short.key"), "short\n");
    let e = error(
        "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret_file = \"short.key\"",
        dir.path(),
    );
    assert!(
        e.contains("holds 5 bytes") && e.contains("at least 32"),
        "{e}"
    );
}

#[test]
fn a_url_file_keeps_the_url_out_of_the_config() {
    let dir = dir_with_secret();
    write_private(
        &dir.path().join("slack.url"),
        "https://hooks.slack.example/services/T/B/X\n",
    );
    let n = parse(
        "[[webhooks]]\nname = \"ops\"\nformat = \"slack\"\nurl_file = \"slack.url\"\nsecret_file = \"webhook.key\"\nevents = [\"new\"]",
        dir.path(),
    )
    .expect("valid");
    let w = &n.webhooks[0];
    assert_eq!((w.name.as_str(), w.format), ("ops", Format::Slack));
    assert_eq!(w.target.path, "/services/T/B/X");
    assert_eq!(w.events, [Event::New]);
    let e = error(
        "[[webhooks]]\nurl = \"https://a.example/\"\nurl_file = \"slack.url\"\nsecret_file = \"webhook.key\"",
        dir.path(),
    );
    assert!(e.contains("url and url_file are both given"), "{e}");
}

#[test]
fn unknown_keys_and_values_are_refused_by_name() {
    let e = toml::from_str::<RawNotifications>(
        "[[webhooks]]\nurl = \"https://a.example/\"\nsecret = \"inline\"",
    )
    .expect_err("unknown key")
    .to_string();
    assert!(
        e.contains("unknown field `secret`") && e.contains("secret_file"),
        "{e}"
    );
    let e = toml::from_str::<RawNotifications>("[[webhooks]]\nformat = \"xml\"")
        .expect_err("unknown format")
        .to_string();
    assert!(e.contains("`xml`") && e.contains("slack"), "{e}");
    let e = toml::from_str::<RawNotifications>("[[webhooks]]\nevents = [\"voted\"]")
        .expect_err("unknown event")
        .to_string();
    assert!(e.contains("`voted`") && e.contains("decided"), "{e}");
}

#[test]
fn numbers_names_and_urls_out_of_range_are_refused() {
    let dir = dir_with_secret();
    let hook = |extra: &str| {
        format!(
            "[[webhooks]]\nurl = \"https://a.example/\"\nsecret_file = \"webhook.key\"\n{extra}"
        )
    };
    for (extra, expected) in [
        ("timeout_ms = 10", "timeout_ms = 10 is out of range"),
        ("max_attempts = 0", "max_attempts is out of range"),
        ("max_attempts = 21", "max_attempts is out of range"),
        ("events = []", "events is empty"),
        ("ca_file = \"nope.pem\"", "ca_file: cannot read"),
    ] {
        let e = error(&hook(extra), dir.path());
        assert!(e.contains(expected), "{extra}: {e}");
    }
    let e = error(&format!("{}\n{}", hook(""), hook("")), dir.path());
    assert!(e.contains("#2 name") && e.contains("distinct"), "{e}");
    for (url, expected) in [
        ("ftp://a.example/", "must start with `https://`"),
        ("https://user:pw@a.example/", "user name or password"),
        ("not a url", "is not a URL"),
    ] {
        let e = error(
            &format!("[[webhooks]]\nurl = \"{url}\"\nsecret_file = \"webhook.key\""),
            dir.path(),
        );
        assert!(e.contains(expected), "{url}: {e}");
    }
    let e = error("console_url = \"https://a.example/c?x=1\"", dir.path());
    assert!(
        e.contains("[notifications] console_url") && e.contains("query"),
        "{e}"
    );
    let e = error("console_url = \"/console\"", dir.path());
    assert!(e.contains("console_url"), "{e}");
}

#[test]
fn no_section_means_no_webhooks() {
    assert_eq!(
        resolve(None, None).expect("empty"),
        Notifications::default()
    );
}
