//! `arbiter audit verify|tail|query`: the audit log, read offline from a data
//! directory (SQLite lets a running server keep writing meanwhile), or with
//! `--state-url` the chains every replica shipped to the shared PostgreSQL state.

mod chains;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use arbiter_audit::{Filter, Kind, StoredRecord};
use arbiter_keys::PublicKey;

use crate::config::default_data_dir;

/// Flags of `arbiter audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
    /// The server's data directory [default: as `arbiter serve`].
    #[arg(long, env = "ARBITER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The replicas' PostgreSQL state (as `arbiter serve --state-url`): verify and
    /// query every replica's chain there instead of one data directory's log.
    #[arg(long, env = "ARBITER_STATE_URL", global = true)]
    pub state_url: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, requires = "state_url", global = true)]
    pub state_password_file: Option<PathBuf>,
}

/// `arbiter audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Checks every record's hash and link and every checkpoint's signature: prints
    /// `OK: ...` (exit 0) or the first broken record and why (exit 1).
    Verify {
        /// Trusted checkpoint public key(s) (PEM), kept outside the data directory;
        /// without, the keys recorded in the log itself are used.
        #[arg(long = "pubkey")]
        pubkeys: Vec<PathBuf>,
        /// The checkpoint copy kept off the machine (`[audit] checkpoint_copy`): every
        /// checkpoint in it must still match the log, which catches a truncation that
        /// also removed the checkpoints inside the log.
        #[arg(long = "checkpoints", conflicts_with = "state_url")]
        checkpoints: Option<PathBuf>,
    },
    /// Prints the last records as JSON lines; `--follow` keeps printing new ones.
    Tail {
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing records as they are written.
        #[arg(long, short)]
        follow: bool,
        /// Only records of this kind: decision, approval, credential, admin, shadow, probe.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Prints the records matching every filter given, oldest first, as JSON lines.
    Query(QueryArgs),
}

/// Filters of `arbiter audit query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// At or after (RFC 3339 or unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Before (RFC 3339 or unix seconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Records about this principal (request principal, approver or admin).
    #[arg(long)]
    pub principal: Option<String>,
    /// Decisions with this outcome (allow, deny, require-approval), or events with it.
    #[arg(long, alias = "decision")]
    pub outcome: Option<String>,
    /// Records of this policy set.
    #[arg(long = "set")]
    pub policy_set: Option<String>,
    /// decision, approval, credential, admin, shadow or probe.
    #[arg(long)]
    pub kind: Option<String>,
    /// Records of this decision id.
    #[arg(long)]
    pub decision_id: Option<String>,
    /// Records of this chain (replica id) only; with `--state-url`.
    #[arg(long, requires = "state_url")]
    pub chain: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

fn kind(k: Option<&str>) -> anyhow::Result<Option<Kind>> {
    k.map(|k| {
        k.parse::<Kind>().map_err(|_| {
            anyhow::anyhow!(
                "--kind `{k}` is not decision, approval, credential, admin, shadow or probe"
            )
        })
    })
    .transpose()
}

fn print(records: &[StoredRecord]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for r in records {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    }
    out.flush()?;
    Ok(())
}

/// Runs the command; the result is the exit code.
pub async fn run(args: AuditArgs) -> anyhow::Result<i32> {
    if let Some(url) = &args.state_url {
        return run_shared(url, args.state_password_file.as_deref(), args.command);
    }
    let dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let path = dir.join("audit.db");
    if !path.exists() {
        anyhow::bail!(
            "no audit log at `{}`; pass the server's --data-dir",
            path.display()
        );
    }
    match args.command {
        AuditCommand::Verify {
            pubkeys,
            checkpoints,
        } => {
            let keys = load_keys(&pubkeys)?;
            let v = arbiter_audit::verify(&path, keys.as_deref())
                .with_context(|| format!("cannot verify `{}`", path.display()))?;
            println!("{v}");
            if keys.is_none() && v.is_intact() {
                eprintln!(
                    "note: checked against the keys recorded in the log itself; pass --pubkey with a copy of keys/audit.pub kept elsewhere to rule out a re-signed log"
                );
            }
            let copies_agree = match &checkpoints {
                Some(file) => compare_copies(&path, file)?,
                None => true,
            };
            Ok(if v.is_intact() && copies_agree { 0 } else { 1 })
        }
        AuditCommand::Tail {
            lines,
            follow,
            kind: k,
        } => {
            let kind = kind(k.as_deref())?;
            let mut last = arbiter_audit::query(
                &path,
                &Filter {
                    kind,
                    limit: lines,
                    newest_first: true,
                    ..Filter::default()
                },
            )?;
            last.reverse();
            print(&last)?;
            let mut after = last.last().map_or(0, |r| r.seq);
            if !follow {
                return Ok(0);
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let new = arbiter_audit::query(
                    &path,
                    &Filter {
                        kind,
                        after_seq: Some(after),
                        limit: 10_000,
                        ..Filter::default()
                    },
                )?;
                print(&new)?;
                after = new.last().map_or(after, |r| r.seq);
            }
        }
        AuditCommand::Query(q) => {
            print(&arbiter_audit::query(&path, &query_filter(q)?)?)?;
            Ok(0)
        }
    }
}

/// `verify` and `query` on the chains in the shared state database.
fn run_shared(
    url: &str,
    password_file: Option<&std::path::Path>,
    command: AuditCommand,
) -> anyhow::Result<i32> {
    match command {
        AuditCommand::Verify { pubkeys, .. } => {
            let keys = load_keys(&pubkeys)?;
            chains::verify(&*chains::open(url, password_file)?, keys.as_deref())
        }
        AuditCommand::Query(mut q) => {
            let chain = q.chain.take();
            let filter = query_filter(q)?;
            chains::query(
                &*chains::open(url, password_file)?,
                &filter,
                chain.as_deref(),
            )?;
            Ok(0)
        }
        AuditCommand::Tail { .. } => anyhow::bail!(
            "`audit tail` follows one data directory's log; for the replicas' chains use `arbiter audit query --state-url`"
        ),
    }
}

/// The trusted keys of `--pubkey`, if any were given.
fn load_keys(paths: &[PathBuf]) -> anyhow::Result<Option<Vec<PublicKey>>> {
    let keys = paths
        .iter()
        .map(|p| PublicKey::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!keys.is_empty()).then_some(keys))
}

/// The filter of `audit query`'s flags.
fn query_filter(q: QueryArgs) -> anyhow::Result<Filter> {
    let time = |t: &Option<String>, flag: &str| {
        t.as_deref()
            .map(|t| {
                super::replay::time::parse_time(t).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            })
            .transpose()
    };
    Ok(Filter {
        since_micros: time(&q.since, "since")?,
        until_micros: time(&q.until, "until")?,
        principal: q.principal,
        outcome: q.outcome,
        policy_set: q.policy_set,
        decision_id: q.decision_id,
        kind: kind(q.kind.as_deref())?,
        after_seq: None,
        limit: q.limit,
        newest_first: false,
    })
}

/// One line of a checkpoint copy.
#[derive(serde::Deserialize)]
struct CopiedCheckpoint {
    number: u64,
    seq: u64,
    hash: String,
}

/// Checks every checkpoint in the copy `file` against the log at `path`: the record it
/// covers must still be there with the same hash. Prints the outcome; `false` when the
/// log disagrees with its copy.
fn compare_copies(path: &std::path::Path, file: &std::path::Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the checkpoint copy `{}`", file.display()))?;
    let mut copies = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", file.display(), i + 1);
        let copy: CopiedCheckpoint = serde_json::from_str(line).with_context(|| {
            format!("{at}: not a checkpoint line; expected {{\"number\", \"seq\", \"hash\"}} as `[audit] checkpoint_copy` writes them")
        })?;
        copies.push((at, copy));
    }
    let seqs: Vec<u64> = copies.iter().map(|(_, c)| c.seq).collect();
    let stored = arbiter_audit::record_hashes(path, &seqs)?;
    for (at, copy) in &copies {
        let (seq, number) = (copy.seq, copy.number);
        let why = match stored.get(&seq) {
            Some(hash) if hex::encode(hash) == copy.hash => continue,
            Some(_) => format!(
                "record {seq} does not match checkpoint {number} copied to {at} (rewritten?)"
            ),
            None => format!(
                "record {seq} is gone, but checkpoint {number} copied to {at} covers it (truncated?)"
            ),
        };
        println!("BROKEN against the copy: {why}");
        return Ok(false);
    }
    println!(
        "OK against the copy: {} checkpoints in `{}` match the log",
        copies.len(),
        file.display()
    );
    Ok(true)
}
