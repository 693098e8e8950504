//! `arbiter-load --soak`: hostile and normal plugins under concurrent load for a fixed
//! time. Normal decisions must stay correct and the server's resident memory bounded
//! while a fifth of the traffic goes to plugins that loop, sleep, trap, blow their
//! stack, bomb memory, flood output and the log, or break a limit (memory, table,
//! deadline) and then answer allow, which must never be accepted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use tonic::transport::Channel;

/// (set name, plugin limits, misbehave settings). All are denied (as failures) except
/// `print-flood`, whose output is capped and which then allows.
const HOSTILE: &[(&str, &str, &str)] = &[
    ("loop", "deadline_ms = 20", "behaviour = \"loop\""),
    ("sleep", "deadline_ms = 20", "behaviour = \"sleep\""),
    ("stack", "", "behaviour = \"stack-overflow\""),
    (
        "memory-bomb",
        "memory_mib = 64",
        "behaviour = \"grow-memory\"",
    ),
    ("trap", "", "behaviour = \"trap\""),
    ("many-reasons", "", "behaviour = \"many-reasons\""),
    (
        "huge-reason",
        "memory_mib = 64",
        "behaviour = \"huge-reason\"",
    ),
    ("log-flood", "", "behaviour = \"log-flood\""),
    (
        "print-flood",
        "deadline_ms = 10000",
        "behaviour = \"print-flood\"",
    ),
    // Plugins that break a limit and then answer allow: each must be a deny.
    (
        "grow-then-allow",
        "memory_mib = 16",
        "behaviour = \"grow-then-allow\"",
    ),
    (
        "grow-catch-allow",
        "memory_mib = 16",
        "behaviour = \"grow-catch-allow\"",
    ),
    (
        "slow-allow",
        "deadline_ms = 20",
        "behaviour = \"slow\"\nslow_ms = 30",
    ),
    // Not misbehave: the hand-written `plugins/fixtures/wat/table-grow.wat`.
    (TABLE_GROW, "", ""),
];

/// The set whose plugin grows its table past the limit and then allows.
const TABLE_GROW: &str = "table-grow";

#[derive(Default)]
struct Counts {
    normal_ok: AtomicU64,
    normal_wrong: AtomicU64,
    hostile_denied: AtomicU64,
    hostile_wrong: AtomicU64,
    /// Allows answered by a set whose plugin broke a limit (must stay zero).
    limit_breaker_allows: AtomicU64,
    errors: AtomicU64,
}

/// Whether a hostile set's plugin breaks a limit and then answers allow.
fn breaks_a_limit_then_allows(hostile: &str) -> bool {
    matches!(
        hostile,
        "grow-then-allow" | "grow-catch-allow" | "slow-allow" | TABLE_GROW
    )
}

fn expected_for(hostile: &str) -> i32 {
    if hostile == "print-flood" {
        pb::Decision::Allow as i32
    } else {
        pb::Decision::Deny as i32
    }
}

/// Writes one set directory per hostile behaviour and returns their paths.
pub(crate) fn hostile_sets(dir: &Path) -> anyhow::Result<Vec<String>> {
    let wasm = arbiter_plugin_build::build(&["misbehave"])
        .map_err(anyhow::Error::msg)?
        .join("misbehave.wasm");
    let table_grow = arbiter_plugin_build::wat_component(TABLE_GROW).map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    for (name, limits, settings) in HOSTILE {
        let set = dir.join(name);
        std::fs::create_dir_all(&set)?;
        if *name == TABLE_GROW {
            std::fs::write(set.join("table-grow.wasm"), &table_grow)?;
            std::fs::write(
                set.join("policy-set.toml"),
                format!(
                    "format = 1\nname = \"{name}\"\nversion = \"1\"\n[[plugins]]\nname = \"table-grow\"\npath = \"table-grow.wasm\"\nlimits = {{ quarantine_after = 1000000 }}\n"
                ),
            )?;
            out.push(set.display().to_string());
            continue;
        }
        std::fs::copy(&wasm, set.join("misbehave.wasm"))?;
        // Quarantine out of reach: the soak keeps every hostile plugin running.
        let limits = if limits.is_empty() {
            "quarantine_after = 1000000".to_string()
        } else {
            format!("{limits}, quarantine_after = 1000000")
        };
        std::fs::write(
            set.join("policy-set.toml"),
            format!(
                "format = 1\nname = \"{name}\"\nversion = \"1\"\n[[plugins]]\nname = \"misbehave\"\npath = \"misbehave.wasm\"\nlimits = {{ {limits} }}\n[plugins.settings]\n{settings}\n"
            ),
        )?;
        out.push(set.display().to_string());
    }
    Ok(out)
}

/// Runs the soak against a server at `channel` whose process is `pid`.
pub(crate) async fn run(
    channel: &Channel,
    pid: u32,
    normal: Vec<(pb::AuthorizeRequest, i32)>,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let normal = Arc::new(normal);
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for worker in 0..in_flight {
        let mut client = AuthorizerClient::new(channel.clone());
        let counts = counts.clone();
        let normal = normal.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker * 104_729;
            while Instant::now() < end {
                i += 1;
                if i % 5 == 0 {
                    let (name, _, _) = HOSTILE[(i / 5) % HOSTILE.len()];
                    let mut r = normal[i % normal.len()].0.clone();
                    r.policy_set = name.into();
                    r.explain = true;
                    match client.authorize(r).await {
                        Ok(d) if d.get_ref().decision == expected_for(name) => {
                            &counts.hostile_denied
                        }
                        Ok(d) => {
                            let d = d.into_inner();
                            if breaks_a_limit_then_allows(name)
                                && d.decision == pb::Decision::Allow as i32
                            {
                                counts.limit_breaker_allows.fetch_add(1, Ordering::Relaxed);
                            }
                            eprintln!(
                                "hostile set `{name}` answered {} {:?}",
                                d.decision,
                                d.plugins.first().map(|p| &p.failure)
                            );
                            &counts.hostile_wrong
                        }
                        Err(_) => &counts.errors,
                    }
                } else {
                    let (r, expected) = &normal[i % normal.len()];
                    match client.authorize(r.clone()).await {
                        Ok(d) if d.get_ref().decision == *expected => &counts.normal_ok,
                        Ok(_) => &counts.normal_wrong,
                        Err(_) => &counts.errors,
                    }
                }
                .fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push((started.elapsed().as_secs(), rss_kib(pid)?));
    }
    for t in tasks {
        t.await?;
    }
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let first = samples.iter().take(10).map(|s| s.1).max().unwrap_or(0);
    let last = samples
        .iter()
        .rev()
        .take(10)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "| seconds | in flight | normal decisions (correct / wrong) | hostile decisions (as expected / not) | allows from plugins that broke a limit | errors | RSS max first 10 s (MiB) | RSS max last 10 s (MiB) | RSS peak (MiB) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {in_flight} | {} / {} | {} / {} | {} | {} | {:.1} | {:.1} | {:.1} |",
        duration.as_secs(),
        c(&counts.normal_ok),
        c(&counts.normal_wrong),
        c(&counts.hostile_denied),
        c(&counts.hostile_wrong),
        c(&counts.limit_breaker_allows),
        c(&counts.errors),
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    if c(&counts.normal_wrong) + c(&counts.hostile_wrong) + c(&counts.errors) > 0 {
        anyhow::bail!("the soak saw wrong decisions or errors");
    }
    Ok(())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}
