//! What an approval webhook costs a held decision: the latency of `Authorize` calls the
//! reference policy holds for approval (each a new approval, so each publishes a `new`
//! event), one at a time, against a server with no webhook, one whose receiver refuses
//! connections (a closed port: every notice is retried with back-off), and one whose
//! receiver accepts and never answers (every attempt runs into its timeout, the queue
//! fills and drops its oldest notices). Each case gets a fresh server in a fresh data
//! directory, and the cases take turns over several rounds, so that drift of the disk
//! or the CPU spreads over all of them. Recorded in docs/approvals.md#measured.
//!
//! ```text
//! cargo bench -p arbiter --bench webhooks                 # 3 rounds of 500 per case
//! cargo bench -p arbiter --bench webhooks -- --requests 1000 --rounds 5
//! ```
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it makes a few calls per
//! case only.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arbiter::config::{Config, ServeArgs};
use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use hdrhistogram::Histogram;

const CASES: [&str; 3] = ["none", "refused", "hanging"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let number = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let bench = args.iter().any(|a| a == "--bench");
    let requests = number("--requests", if bench { 500 } else { 3 });
    let rounds = number("--rounds", if bench { 3 } else { 1 });
    let warmup = if bench { 50 } else { 1 };

    // The refused case's port: bound once to find a free one, then closed.
    let refused = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // The hanging receiver: accepts, reads, never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hanging_addr = hanging.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hanging.accept().await {
            held.push(stream);
        }
    });

    let mut histograms: Vec<Histogram<u64>> = CASES
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3))
        .collect::<Result<_, _>>()?;
    for round in 0..rounds {
        for (case, histogram) in CASES.iter().zip(&mut histograms) {
            let url = match *case {
                "refused" => Some(format!("http://{refused}/hook")),
                "hanging" => Some(format!("http://{hanging_addr}/hook")),
                _ => None,
            };
            let data = tempfile::tempdir()?;
            let config = config(data.path(), url.as_deref())?;
            let running = arbiter::server::start(&config).await?;
            let mut client =
                AuthorizerClient::connect(format!("http://{}", running.local_addr)).await?;
            for i in 0..warmup + requests {
                let request = held_request(&format!("{case}-{round}-{i}"))?;
                let start = Instant::now();
                let answer = client.authorize(request).await?.into_inner();
                let took = start.elapsed();
                anyhow::ensure!(
                    answer.decision() == pb::Decision::RequireApproval,
                    "the bench request was not held: {answer:?}"
                );
                if i >= warmup {
                    histogram.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX))?;
                }
            }
            running.shutdown().await?;
        }
    }
    println!("held decisions, one at a time, {requests} x {rounds} rounds per case (microseconds)");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "webhook", "mean", "p50", "p90", "p99", "max"
    );
    for (case, h) in CASES.iter().zip(&histograms) {
        println!(
            "{case:<10} {:>8.0} {:>8} {:>8} {:>8} {:>8}",
            h.mean(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.max()
        );
    }
    Ok(())
}

/// The defaults of `arbiter serve` on a free loopback port, with one JSON webhook at
/// `url` when given.
fn config(data: &Path, url: Option<&str>) -> anyhow::Result<Config> {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        metrics_listen: Some("off".into()),
        data_dir: Some(data.to_path_buf()),
        ..ServeArgs::default()
    };
    let mut config = Config::resolve(None, &args)?;
    if let Some(url) = url {
        let key = data.join("webhook.key");
        std::fs::write(&key, "bench-secret-bench-secret-bench-secret-0")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        }
        let raw = toml::from_str(&format!(
            "[[webhooks]]\nurl = \"{url}\"\nsecret_file = \"webhook.key\"\ntimeout_ms = 5000"
        ))?;
        config.notifications =
            arbiter_notify::resolve(Some(raw), Some(data)).context("bench webhook")?;
    }
    Ok(config)
}

/// An agent acting for bob attaches a role policy on a resource of its own: held for
/// approval by the reference policy, a new approval every time.
fn held_request(resource: &str) -> anyhow::Result<tonic::Request<pb::AuthorizeRequest>> {
    let r: arbiter_core::Request = serde_json::from_value(serde_json::json!({
        "principal": {"id": "spiffe://acme.org/agent/iam-bot", "kind": "agent", "attributes": {"team": "security"}},
        "delegation": [{"id": "bob@acme.org", "kind": "human", "attributes": {"team": "security"}}],
        "action": {"name": "iam:AttachRolePolicy", "privilege": "identity-change"},
        "resource": {"id": format!("arn:aws:iam::1:role/{resource}"), "kind": "iam_role", "attributes": {"env": "prod", "owner_team": "security"}},
        "intent": {"purpose": "access-review", "task_id": "bench", "ticket": "CHG-7"},
        "context": {"hour": 10, "source_ip": "10.0.0.5", "risk": 10, "mfa": true}
    }))?;
    let mut request = tonic::Request::new(arbiter::grpc::encode::request(&r));
    request.set_timeout(Duration::from_secs(30));
    Ok(request)
}
