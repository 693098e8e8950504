//! `--replicas-db URL`: the state backends side by side, in one run: one replica on
//! SQLite, one on PostgreSQL, and three on PostgreSQL behind one client that spreads
//! its requests over them, each on a fresh database of the server at URL. Reports
//! decisions/s, latency, the servers' CPU per decision (all replicas together, all
//! pinned to `--server-cpu`), and the database transactions per decision beyond the
//! replicas' idle background (token refresh, event and set followers, lease renewal),
//! read from `pg_stat_database`: a statement outside a transaction is one round trip
//! and one transaction.

use std::time::Duration;

use anyhow::Context as _;
use arbiter::proto as pb;
use hdrhistogram::Histogram;

use crate::{Args, connect, cpu_time, free_port, run, spawn};

/// Seconds the replicas idle to measure their background database traffic.
const IDLE: u64 = 5;

pub(crate) fn main(
    args: &Args,
    base: &str,
    requests: &[pb::AuthorizeRequest],
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let base = base.trim_end_matches('/');
    let in_flight = args.in_flight.iter().copied().max().unwrap_or(16);
    println!(
        "| state | replicas | in flight | decisions/s | p50 (us) | p99 (us) | server CPU per decision (us) | PostgreSQL CPU per decision (us) | database transactions per decision |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, n, postgres) in [
        ("SQLite", 1, false),
        ("PostgreSQL", 1, true),
        ("PostgreSQL", 3, true),
    ] {
        let db = postgres
            .then(|| rt.block_on(fresh_database(base)))
            .transpose()?;
        let dirs: Vec<tempfile::TempDir> = (0..n)
            .map(|_| tempfile::tempdir())
            .collect::<Result<_, _>>()?;
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let mut extra = args.serve_arg.clone();
            extra.push(format!("--replica-id=bench-{i}"));
            extra.push("--metrics-listen=off".into());
            if let Some((url, _)) = &db {
                extra.push(format!("--state-url={url}"));
            }
            let port = free_port()?;
            let a = Args {
                serve_arg: extra,
                ..args.clone()
            };
            servers.push(spawn(&a, "arbiter", port, dir.path(), 0)?);
            ports.push(port);
            // Replicas start one after the other: migrations, then the lease.
            rt.block_on(connect(&format!("http://127.0.0.1:{port}")))?;
        }
        let row = rt.block_on(async {
            let mut channels = Vec::new();
            for p in &ports {
                channels.push(connect(&format!("http://127.0.0.1:{p}")).await?);
            }
            let spread = |secs: u64| {
                let (channels, requests) = (&channels, requests);
                async move {
                    let d = Duration::from_secs(secs);
                    let runs = channels.iter().enumerate().map(|(i, c)| {
                        // The in-flight requests, shared out over the replicas.
                        let share = in_flight / n + usize::from(i < in_flight % n);
                        run(c, requests, share, d)
                    });
                    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                    let mut elapsed = Duration::ZERO;
                    for r in futures::future::join_all(runs).await {
                        let (h, _, e) = r?;
                        total.add(h)?;
                        elapsed = elapsed.max(e);
                    }
                    anyhow::Ok((total, elapsed))
                }
            };
            let idle = match &db {
                Some((_, name)) => {
                    let before = transactions(base, name).await?;
                    tokio::time::sleep(Duration::from_secs(IDLE)).await;
                    Some((transactions(base, name).await? - before) as f64 / IDLE as f64)
                }
                None => None,
            };
            spread(args.warmup).await?;
            let cpu_before = servers
                .iter()
                .map(|s| cpu_time(s.id()))
                .sum::<anyhow::Result<Duration>>()?;
            let pg_before = postgres_cpu();
            let tx_before = match &db {
                Some((_, name)) => Some(transactions(base, name).await?),
                None => None,
            };
            let (hist, elapsed) = spread(args.seconds).await?;
            let cpu = servers
                .iter()
                .map(|s| cpu_time(s.id()))
                .sum::<anyhow::Result<Duration>>()?
                - cpu_before;
            let pg_cpu = postgres_cpu() - pg_before;
            let per_decision = match (&db, tx_before, idle) {
                (Some((_, name)), Some(before), Some(idle)) => {
                    // Statistics reach pg_stat_database within about a second.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    let spent = (transactions(base, name).await? - before) as f64
                        - idle * (elapsed.as_secs_f64() + 1.5);
                    format!("{:.2}", spent.max(0.0) / hist.len() as f64)
                }
                _ => "-".to_string(),
            };
            anyhow::Ok((hist, elapsed, cpu, pg_cpu, per_decision))
        });
        for s in &mut servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let (hist, elapsed, cpu, pg_cpu, per_decision) = row?;
        println!(
            "| {label} | {n} | {in_flight} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {per_decision} |",
            hist.len() as f64 / elapsed.as_secs_f64(),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            cpu.as_secs_f64() * 1e6 / hist.len() as f64,
            pg_cpu.as_secs_f64() * 1e6 / hist.len() as f64,
        );
    }
    Ok(())
}

/// A fresh database on the server at `base`: its URL and name.
async fn fresh_database(base: &str) -> anyhow::Result<(String, String)> {
    let name = format!(
        "arbiter_load_{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    );
    let client = client(base, "postgres").await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok((format!("{base}/{name}"), name))
}

fn rand_suffix() -> u64 {
    u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_micros()
            % 1000,
    )
}

/// Committed and rolled-back transactions of database `name` so far.
async fn transactions(base: &str, name: &str) -> anyhow::Result<i64> {
    let client = client(base, "postgres").await?;
    let row = client
        .query_one(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            &[&name],
        )
        .await?;
    Ok(row.get(0))
}

async fn client(base: &str, db: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(&format!("{base}/{db}"), tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {base}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// CPU time of every PostgreSQL process on this machine so far (the test server's
/// backends; with SQLite the database costs nothing here).
fn postgres_cpu() -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| cpu_time(pid).ok())
        .sum()
}
