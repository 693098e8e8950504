//! `arbiter audit verify|query --state-url`: the audit chains the replicas shipped to
//! the shared PostgreSQL state, each verified on its own, queried merged by time.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_audit::Filter;
use arbiter_keys::PublicKey;
use arbiter_store::{ChainRecord, StateStore};

/// Opens the state database at `url` (its password from `password_file`).
pub(super) fn open(url: &str, password_file: Option<&Path>) -> anyhow::Result<Arc<dyn StateStore>> {
    arbiter_store::open(Some(url), password_file, "".as_ref()).with_context(|| {
        format!(
            "cannot open the state database `{}`",
            arbiter_store::redact_url(url)
        )
    })
}

/// Verifies every chain: one line per chain, then the verdict; the exit code.
pub(super) fn verify(store: &dyn StateStore, keys: Option<&[PublicKey]>) -> anyhow::Result<i32> {
    let chains =
        arbiter_store::verify_chains(store, keys).context("cannot read the audit chains")?;
    if chains.is_empty() {
        println!("no audit chains in the state database yet (replicas ship theirs while they run)");
        return Ok(0);
    }
    let broken = chains.iter().filter(|(_, v)| !v.is_intact()).count();
    for (head, v) in &chains {
        println!("chain {}: {v}", head.chain_id);
    }
    let total = chains.len();
    if broken == 0 {
        let s = if total == 1 { "" } else { "s" };
        println!("OK: {total} chain{s}, every one intact");
    } else {
        println!("BROKEN: {broken} of {total} chains");
    }
    if keys.is_none() && broken == 0 {
        eprintln!(
            "note: checked against the public keys shipped with the checkpoints; pass --pubkey with copies of each replica's keys/audit.pub kept elsewhere to rule out re-signed chains"
        );
    }
    Ok(i32::from(broken > 0))
}

/// The records of every chain (or `chain` alone) matching `filter`, merged by time, as
/// JSON lines each naming its chain.
pub(super) fn query(
    store: &dyn StateStore,
    filter: &Filter,
    chain: Option<&str>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let records = store
        .query_audit_chains(filter, chain)
        .context("cannot query the audit chains")?;
    let mut out = std::io::stdout().lock();
    for ChainRecord { chain_id, record } in records {
        let mut line = serde_json::to_value(&record)?;
        if let Some(fields) = line.as_object_mut() {
            fields.insert("chain_id".into(), chain_id.into());
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
