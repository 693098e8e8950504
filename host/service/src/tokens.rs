//! Caller tokens made with `arbiter token` are admin acts, so they go on record: the
//! server compares the state database's tokens with the ones the audit log has
//! recorded (table `audited_tokens`), whole entries (id, kind, roles) and not only
//! hashes, records each difference as an admin record (`token-added`,
//! `token-changed`, `token-removed`, actor [`ACTOR`]) and lets a new or changed token
//! authenticate only once its record is written. A change made while the server was
//! down is recorded when it starts. A removed token stops working at once, recorded or
//! not.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use arbiter_store::TokenEntry;

use crate::app::App;

/// Who the records name as the actor: whoever ran `arbiter token` with write access to
/// the data directory, which the server cannot tell apart.
pub const ACTOR: &str = "local:arbiter-token";

/// Re-reads the stored tokens, records what changed, and hands the authenticator the
/// tokens that are on record. Returns how many stored tokens authenticate.
pub async fn refresh(app: &App) -> anyhow::Result<usize> {
    let store = app.store.clone();
    let (current, audited) = tokio::task::spawn_blocking(move || {
        Ok::<_, arbiter_store::StoreError>((store.tokens()?, store.audited_tokens()?))
    })
    .await
    .context("the token reader stopped")?
    .context("cannot read the caller tokens from the state database")?;
    if app.audit.is_none() {
        return Ok(app.auth.replace(current));
    }
    let on_record: HashMap<&str, &TokenEntry> =
        audited.iter().map(|t| (t.sha256.as_str(), t)).collect();
    let present: HashSet<String> = current.iter().map(|t| t.sha256.clone()).collect();
    let mut usable = Vec::with_capacity(current.len());
    let mut failed = None;
    for token in current {
        let change = match on_record.get(token.sha256.as_str()) {
            None => Some(Change::Added),
            // Edited in place (say, roles added by hand): recorded like any change.
            Some(old)
                if (&old.id, &old.kind, &old.roles) != (&token.id, &token.kind, &token.roles) =>
            {
                Some(Change::Changed(old))
            }
            Some(_) => None,
        };
        if let Some(change) = change
            && let Err(e) = note(app, &token, change).await
        {
            failed = Some(e);
            continue;
        }
        usable.push(token);
    }
    for token in audited.iter().filter(|t| !present.contains(&t.sha256)) {
        if let Err(e) = note(app, token, Change::Removed).await {
            failed = Some(e);
        }
    }
    let n = app.auth.replace(usable);
    match failed {
        // The others are retried at the next refresh; the new tokens stay unusable.
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// What happened to a stored token.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Added,
    /// Its entry differs from the one on record (shown).
    Changed(&'a TokenEntry),
    Removed,
}

/// Records `token`'s change, then notes in the state database that it is on record.
async fn note(app: &App, token: &TokenEntry, change: Change<'_>) -> anyhow::Result<()> {
    use crate::events::{AdminAct, TokenChange};
    let added = !matches!(change, Change::Removed);
    let act = AdminAct::Token {
        change: match change {
            Change::Added => TokenChange::Added,
            Change::Changed(_) => TokenChange::Changed,
            Change::Removed => TokenChange::Removed,
        },
        entry: token.clone(),
        was: match change {
            Change::Changed(old) => Some(old.clone()),
            _ => None,
        },
    };
    let what = act.name();
    app.record(crate::events::AuditEvent::Admin { actor: ACTOR, act })
        .await
        .map_err(|e| anyhow::anyhow!("cannot record a caller token change ({what}): {e}"))?;
    let store = app.store.clone();
    let token = token.clone();
    tokio::task::spawn_blocking(move || store.set_token_audited(&token, added))
        .await
        .context("the token writer stopped")?
        .context("cannot note an audited caller token in the state database")
}
