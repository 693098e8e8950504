//! Starting servers and reading the vectors.

use std::path::{Path, PathBuf};

use arbiter::config::{Config, LogFormat, ServeArgs};
use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::server::{self, Running};
use arbiter_core::{Limits, Outcome, Request};
use tonic::transport::Channel;

/// Held by the tests that load the machine on purpose (bursts, large uploads) or
/// that time decisions tightly, so that they do not run at the same time: on two
/// cores, one's load would push the other's evaluations past their deadlines.
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server on an ephemeral loopback port with its own data directory.
pub(crate) struct TestServer {
    pub running: Running,
    pub url: String,
    _data: tempfile::TempDir,
}

impl TestServer {
    /// Serves `sets` (default: the built-in reference set).
    pub(crate) async fn start(sets: &[&str]) -> Self {
        Self::start_with(sets, 64).await
    }

    /// Serves `sets` with `capacity` concurrent evaluations.
    pub(crate) async fn start_with(sets: &[&str], capacity: u32) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let policy_sets = if sets.is_empty() {
            vec!["builtin:reference".to_string()]
        } else {
            sets.iter().map(|s| s.to_string()).collect()
        };
        let mut config = test_config(data.path());
        config.policy_sets = policy_sets;
        config.capacity = capacity;
        Self::start_config(config, data).await
    }

    /// Serves `config` (from [`test_config`], adjusted), keeping `data` alive.
    pub(crate) async fn start_config(config: Config, data: tempfile::TempDir) -> Self {
        Self::start_config_with_clock(config, data, arbiter_core::system_clock()).await
    }

    /// [`TestServer::start_config`] going by `clock`.
    pub(crate) async fn start_config_with_clock(
        config: Config,
        data: tempfile::TempDir,
        clock: arbiter_core::SharedClock,
    ) -> Self {
        let running = server::start_with_clock(&config, clock)
            .await
            .expect("server starts");
        let url = format!("http://{}", running.local_addr);
        Self {
            running,
            url,
            _data: data,
        }
    }

    pub(crate) async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::connect(self.url.clone())
            .await
            .expect("client connects")
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connects")
    }
}

impl TestServer {
    /// The server's audit log file.
    pub(crate) fn audit_db(&self) -> PathBuf {
        self.running
            .app
            .audit()
            .expect("audit on")
            .path()
            .to_path_buf()
    }
}

/// Makes every insert into the audit log at `db` fail, as a full disk would, from
/// another connection; [`mend_audit_log`] undoes it.
pub(crate) fn break_audit_log(db: &Path) {
    rusqlite::Connection::open(db)
        .expect("open")
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON records BEGIN SELECT RAISE(FAIL, 'disk full'); END;",
        )
        .expect("trigger");
}

/// Undoes [`break_audit_log`].
pub(crate) fn mend_audit_log(db: &Path) {
    rusqlite::Connection::open(db)
        .expect("open")
        .execute_batch("DROP TRIGGER full;")
        .expect("drop");
}

/// The defaults of `arbiter serve`, on an ephemeral loopback port with `data_dir`.
pub(crate) fn test_config(data_dir: &Path) -> Config {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        metrics_listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.to_path_buf()),
        ..ServeArgs::default()
    };
    let mut c = Config::resolve(None, &args).expect("test config");
    c.log_format = LogFormat::Text;
    c.limits = Limits::default();
    c
}

/// One public test vector.
pub(crate) struct Vector {
    pub line: usize,
    pub request: Request,
    pub approved: bool,
    pub expected: Outcome,
}

pub(crate) fn vectors_path() -> PathBuf {
    arbiter_plugin_build::repo_root().join("tests/vectors/reference-public.jsonl")
}

pub(crate) fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors");
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let (_, request) = arbiter::cli::check::parse_line(l).expect("vector request");
            Vector {
                line: i + 1,
                request,
                approved: v["approved"].as_bool().expect("approved"),
                expected: Outcome::parse(v["expected"].as_str().expect("expected"))
                    .expect("outcome"),
            }
        })
        .collect()
}

/// A valid request for tests that only need "something normal".
pub(crate) fn normal_request() -> pb::AuthorizeRequest {
    let r: Request = serde_json::from_str(
        r#"{"principal":{"id":"spiffe://acme.org/agent/deploy-bot","kind":"agent","attributes":{"team":"payments"}},
            "action":{"name":"db:Query","privilege":"read"},
            "resource":{"id":"arn:acme:database:staging:payments/r1","kind":"database","attributes":{"env":"staging","owner_team":"payments"}},
            "intent":{"purpose":"cost-optimization","ticket":"INC-1"},
            "context":{"hour":10,"source_ip":"10.1.2.3","risk":10,"mfa":false}}"#,
    )
    .expect("request");
    arbiter::grpc::encode::request(&r)
}

/// A set directory holding one `misbehave` plugin with the given settings.
pub(crate) fn misbehave_set(dir: &Path, name: &str, settings: &str) -> PathBuf {
    misbehave_set_with(dir, name, "deadline_ms = 5000", settings)
}

/// Like [`misbehave_set`], with the plugin's limits table written out.
pub(crate) fn misbehave_set_with(dir: &Path, name: &str, limits: &str, settings: &str) -> PathBuf {
    one_plugin_set(
        dir,
        name,
        "misbehave",
        &format!("limits = {{ {limits} }}\n[plugins.settings]\n{settings}"),
    )
}

/// A set directory `dir/name` holding the built plugin `krate`, its manifest entry
/// followed by `plugin_lines` (limits, settings).
pub(crate) fn one_plugin_set(dir: &Path, name: &str, krate: &str, plugin_lines: &str) -> PathBuf {
    let set = dir.join(name);
    std::fs::create_dir_all(&set).expect("mkdir");
    std::fs::copy(
        arbiter_plugin_build::plugin(krate),
        set.join(format!("{krate}.wasm")),
    )
    .expect("copy plugin");
    std::fs::write(
        set.join("policy-set.toml"),
        format!("format = 1\nname = \"{name}\"\nversion = \"1\"\n\n[[plugins]]\nname = \"{krate}\"\npath = \"{krate}.wasm\"\n{plugin_lines}\n"),
    )
    .expect("manifest");
    set
}

/// The real `arbiter serve` binary in its own process (for tests that measure the
/// process, like its resident memory). Killed on drop.
pub(crate) struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl ServerProcess {
    pub(crate) async fn start(sets: &[String]) -> Self {
        Self::start_with_config(sets, None).await
    }

    /// Like [`ServerProcess::start`], with a config file holding `config` (TOML).
    pub(crate) async fn start_with_config(sets: &[String], config: Option<&str>) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data.path());
        for s in sets {
            cmd.args(["--policy-set", s]);
        }
        if let Some(config) = config {
            let file = data.path().join("arbiter-test.toml");
            std::fs::write(&file, config).expect("config file");
            cmd.arg("--config").arg(file);
        }
        let child = cmd
            .env("ARBITER_LOG", "error")
            .spawn()
            .expect("server starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if AuthorizerClient::connect(url.clone()).await.is_ok() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not come up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self {
            child,
            url,
            _data: data,
        }
    }

    pub(crate) async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::connect(self.url.clone())
            .await
            .expect("client connects")
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connects")
    }

    /// Resident memory of the server process, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records of the audit log at `db` of `kind` with `outcome`, oldest first.
pub(crate) fn audit_records(
    db: &Path,
    kind: arbiter_audit::Kind,
    outcome: &str,
) -> Vec<arbiter_audit::StoredRecord> {
    let filter = arbiter_audit::Filter {
        kind: Some(kind),
        outcome: Some(outcome.into()),
        ..arbiter_audit::Filter::default()
    };
    arbiter_audit::query(db, &filter).expect("query the audit log")
}

/// The approval ids of the `expired` records in the audit log at `db`, oldest first.
pub(crate) fn expired_approval_ids(db: &Path) -> Vec<String> {
    audit_records(db, arbiter_audit::Kind::Approval, "expired")
        .iter()
        .map(|r| {
            r.record.body_value()["approval_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// A set directory `two-approvers` in `dir`: the reference plugin asking for two
/// approvers, to show that approvals count people, not votes.
pub(crate) fn two_approver_set(dir: &Path) -> PathBuf {
    one_plugin_set(
        dir,
        "two-approvers",
        "reference",
        "[plugins.settings]\napprovers_required = 2",
    )
}

/// The value of the first response header called `name` (names as the HTTP helpers
/// return them).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
