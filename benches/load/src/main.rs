//! `arbiter-load`: a closed-loop load generator for Arbiter.
//!
//! It starts the servers it measures (so it can read their CPU time from `/proc`),
//! pinned to one core with `taskset` when available, and drives them from this
//! process, which should itself run on the other core:
//!
//! ```text
//! cargo build --release -p arbiter -p arbiter-load
//! taskset -c 1 target/release/arbiter-load --server-cpu 0
//! ```
//!
//! Each run replays the request lines of the vectors file in a loop with a fixed
//! number of requests in flight for a fixed time, after a warm-up, and reports
//! decisions/s, p50/p99 latency and the server's CPU time per request. The no-op
//! target is the same gRPC service answering a constant response without deciding:
//! the floor that tonic, HTTP/2 and protobuf cost on this machine.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use clap::Parser;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

mod doors;
mod noop;
mod replicas;
mod soak;

#[derive(Debug, Clone, Parser)]
#[command(about = "Closed-loop load generator for arbiter serve")]
struct Args {
    /// Requests in flight, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    in_flight: Vec<usize>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds per run (not measured).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Request source: JSON lines with a `request` field (or bare requests).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Targets to measure: `noop`, `arbiter`, `arbiter-tls` (the same server over TLS,
    /// with a certificate made for the run; connections are reused), and the other
    /// doors of the same server: `authzen` (AuthZEN `evaluation` over HTTP/1.1
    /// keep-alive), `authzen-batch` (`evaluations` of 25 items; decisions count items)
    /// and `ext-authz` (Envoy `Check` on the gRPC channel).
    #[arg(long, value_delimiter = ',', default_value = "noop,arbiter")]
    targets: Vec<String>,
    /// CPU the servers are pinned to (with taskset); the generator should run on
    /// another one.
    #[arg(long)]
    server_cpu: Option<usize>,
    /// The `arbiter` binary [default: next to this one].
    #[arg(long)]
    arbiter: Option<PathBuf>,
    /// Extra arguments for `arbiter serve` (e.g. `--policy-set=builtin:reference-split`).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
    /// Soak instead of measuring: a fifth of the traffic to hostile plugins, the rest
    /// to the reference set, for `--seconds`; checks every decision and samples the
    /// server's resident memory.
    #[arg(long)]
    soak: bool,
    /// With `--soak`: the set that answers the normal traffic (a set directory or
    /// bundle, e.g. another language's reference plugin, which must decide the vectors
    /// as the reference does).
    #[arg(long, default_value = "builtin:reference")]
    soak_set: String,
    /// Compare the state backends instead: one replica on SQLite, one on PostgreSQL
    /// and three on PostgreSQL, each on a fresh database of the PostgreSQL server at
    /// this URL (`postgres://user@host:port`, e.g. what scripts/postgres-test-server
    /// prints), at the largest `--in-flight`.
    #[arg(long)]
    replicas_db: Option<String>,
    /// Run as the no-op server on this address (used internally).
    #[arg(long, hide = true)]
    noop_server: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(addr) = &args.noop_server {
        let rt = tokio::runtime::Runtime::new()?;
        return rt.block_on(noop::serve(addr.parse()?));
    }
    let decoded = load_requests(args.vectors.clone())?;
    let requests: Vec<pb::AuthorizeRequest> =
        decoded.iter().map(arbiter::grpc::encode::request).collect();
    if args.soak {
        return soak_main(&args);
    }
    if let Some(url) = &args.replicas_db {
        return replicas::main(&args, url, &requests);
    }
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!(
        "| target | in flight | decisions/s | p50 (us) | p99 (us) | server CPU per request (us) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for target in &args.targets {
        let port = free_port()?;
        let data = tempfile::tempdir()?;
        let tls = (target == "arbiter-tls")
            .then(|| test_pki(data.path()))
            .transpose()?;
        let http_port = free_port()?;
        let door = matches!(target.as_str(), "authzen" | "authzen-batch" | "ext-authz");
        let work = door
            .then(|| doors::Work::of(target, &decoded))
            .transpose()?;
        let mut server = spawn(&args, target, port, data.path(), http_port)?;
        let result = client_rt.block_on(async {
            let channel = match &tls {
                Some(ca) => connect_tls(port, ca).await?,
                None => connect(&format!("http://127.0.0.1:{port}")).await?,
            };
            let mut rows = Vec::new();
            for &n in &args.in_flight {
                let measure = |secs: u64| {
                    let (channel, work, requests) = (&channel, &work, &requests);
                    async move {
                        let d = Duration::from_secs(secs);
                        match work {
                            Some(w) => doors::run(channel, http_port, w, n, d).await,
                            None => run(channel, requests, n, d).await,
                        }
                    }
                };
                measure(args.warmup).await?;
                let cpu_before = cpu_time(server.id())?;
                let (hist, count, elapsed) = measure(args.seconds).await?;
                let cpu = cpu_time(server.id())? - cpu_before;
                rows.push((n, hist, count, elapsed, cpu));
            }
            anyhow::Ok(rows)
        });
        let _ = server.kill();
        let _ = server.wait();
        for (n, hist, count, elapsed, cpu) in result? {
            println!(
                "| {target} | {n} | {:.0} | {:.0} | {:.0} | {:.1} |",
                count as f64 / elapsed.as_secs_f64(),
                hist.value_at_quantile(0.5) as f64 / 1000.0,
                hist.value_at_quantile(0.99) as f64 / 1000.0,
                cpu.as_secs_f64() * 1e6 / count as f64,
            );
        }
    }
    Ok(())
}

fn soak_main(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut serve_args = vec![format!("--policy-set={}", args.soak_set)];
    for set in soak::hostile_sets(dir.path())? {
        serve_args.push(format!("--policy-set={set}"));
    }
    let normal = normal_vectors(args.vectors.clone())?;
    let port = free_port()?;
    let args = Args {
        serve_arg: serve_args,
        ..args.clone()
    };
    let mut server = spawn(&args, "arbiter", port, dir.path(), 0)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let channel = connect(&format!("http://127.0.0.1:{port}")).await?;
        let in_flight = args.in_flight.iter().copied().max().unwrap_or(16);
        soak::run(
            &channel,
            server.id(),
            normal,
            in_flight,
            Duration::from_secs(args.seconds),
        )
        .await
    });
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// The vectors without approval, with their expected decision.
fn normal_vectors(path: Option<PathBuf>) -> anyhow::Result<Vec<(pb::AuthorizeRequest, i32)>> {
    let path = path.unwrap_or_else(default_vectors);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut out = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l)?;
        if v["approved"].as_bool() == Some(true) {
            continue;
        }
        let expected = match v["expected"].as_str() {
            Some("allow") => pb::Decision::Allow,
            Some("deny") => pb::Decision::Deny,
            Some("require-approval") => pb::Decision::RequireApproval,
            other => bail!("vector without a known `expected`: {other:?}"),
        };
        let (_, r) = arbiter::cli::check::parse_line(l).map_err(anyhow::Error::msg)?;
        out.push((arbiter::grpc::encode::request(&r), expected as i32));
    }
    Ok(out)
}

fn default_vectors() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/reference-public.jsonl"
    ))
}

fn load_requests(path: Option<PathBuf>) -> anyhow::Result<Vec<arbiter_core::Request>> {
    let path = path.unwrap_or_else(default_vectors);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let (_, r) = arbiter::cli::check::parse_line(l)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
            Ok(r)
        })
        .collect()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(
    args: &Args,
    target: &str,
    port: u16,
    data: &std::path::Path,
    http_port: u16,
) -> anyhow::Result<Child> {
    let me = std::env::current_exe()?;
    let listen = format!("127.0.0.1:{port}");
    let (program, argv): (PathBuf, Vec<String>) = match target {
        "noop" => (me.clone(), vec!["--noop-server".into(), listen]),
        "arbiter" | "arbiter-tls" | "authzen" | "authzen-batch" | "ext-authz" => {
            let bin = args
                .arbiter
                .clone()
                .unwrap_or_else(|| me.with_file_name("arbiter"));
            let mut v = vec![
                "serve".into(),
                "--listen".into(),
                listen,
                "--data-dir".into(),
                data.display().to_string(),
            ];
            if matches!(target, "authzen" | "authzen-batch") {
                v.push("--http-listen".into());
                v.push(format!("127.0.0.1:{http_port}"));
            }
            if target == "ext-authz" {
                let file = data.join("arbiter.toml");
                std::fs::write(&file, doors::ENVOY_CONFIG)?;
                v.push("--config".into());
                v.push(file.display().to_string());
            }
            if target == "arbiter-tls" {
                for (flag, file) in [("--tls-cert", "server.pem"), ("--tls-key", "server.key")] {
                    v.push(flag.into());
                    v.push(data.join(file).display().to_string());
                }
            }
            v.extend(args.serve_arg.iter().cloned());
            (bin, v)
        }
        other => bail!(
            "unknown target `{other}` (noop, arbiter, arbiter-tls, authzen, authzen-batch, ext-authz)"
        ),
    };
    let mut cmd = match args.server_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    cmd.args(&argv)
        .env("ARBITER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.spawn()
        .with_context(|| format!("cannot start `{}`", program.display()))
}

/// A CA and a server certificate for localhost in `dir` (`server.pem`,
/// `server.key`); returns the CA certificate (PEM).
fn test_pki(dir: &std::path::Path) -> anyhow::Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("server.pem"), cert.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;
    Ok(issuer.pem())
}

/// One reused TLS connection to the server on `port`, trusting `ca`.
async fn connect_tls(port: u16, ca: &str) -> anyhow::Result<Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let url = format!("https://localhost:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(url.clone())?
            .tls_config(tls.clone())?
            .connect()
            .await
        {
            Ok(c) => return ready(c).await,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => bail!("server at {url} did not come up: {e}"),
        }
    }
}

/// Returns the channel once the server answers a call. Its port accepts connections
/// as soon as it is bound, but `arbiter serve` answers only once every set is loaded
/// (seconds for a large plugin compiled from an empty cache): without this, the first
/// requests of a run, or a whole soak, would time the load.
async fn ready(channel: Channel) -> anyhow::Result<Channel> {
    // An empty request: refused as invalid by arbiter, answered by the no-op service;
    // either answer means the server is serving.
    let _ = AuthorizerClient::new(channel.clone())
        .authorize(pb::AuthorizeRequest::default())
        .await;
    Ok(channel)
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(url.to_string())?.connect().await {
            Ok(c) => return ready(c).await,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => bail!("server at {url} did not come up: {e}"),
        }
    }
}

/// Drives `in_flight` closed loops for `duration`; returns latencies in ns.
async fn run(
    channel: &Channel,
    requests: &[pb::AuthorizeRequest],
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, u64, Duration)> {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for worker in 0..in_flight {
        let mut client = AuthorizerClient::new(channel.clone());
        let requests = requests.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
            let mut i = worker * 7919;
            while Instant::now() < end {
                let r = requests[i % requests.len()].clone();
                i += 1;
                let t = Instant::now();
                client.authorize(r).await.context("request failed")?;
                hist.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))?;
            }
            anyhow::Ok(hist)
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for t in tasks {
        total.add(t.await??)?;
    }
    Ok((total.clone(), total.len(), start.elapsed()))
}

/// User + system CPU time of a process (Linux `/proc/PID/stat`). The server may run
/// under `taskset`, which execs it, so the pid is the server's.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are utime and stime; after `comm` they are
    // at 11 and 12 (0-based), in clock ticks of 1/100 s.
    let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}
