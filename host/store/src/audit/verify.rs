//! Verifying every chain the replicas shipped, each on its own, page by page.

use arbiter_audit::{ChainVerifier, Verification};
use arbiter_keys::PublicKey;

use crate::{AuditChains, ChainHead, StoreError};

/// Records (and checkpoints) read per round trip while verifying.
const PAGE: usize = 5000;

/// Verifies every chain in `store`: recomputes each record's hash and link with the
/// audit log's own hashing, and checks each checkpoint's signature against `keys` when
/// given, else against the public keys shipped with the chain's checkpoints (which
/// catches accidents and careless edits, not someone who can rewrite the database and
/// re-sign). Each chain is read up to the head it had when verification began, so a
/// replica shipping meanwhile is not mistaken for a truncation; a checkpoint shipped
/// ahead of the records it covers is one.
pub fn verify_chains(
    store: &dyn AuditChains,
    keys: Option<&[PublicKey]>,
) -> Result<Vec<(ChainHead, Verification)>, StoreError> {
    let heads = store.audit_chain_heads()?;
    let mut found = Vec::with_capacity(heads.len());
    for head in heads {
        let v = verify_chain(store, &head, keys)?;
        found.push((head, v));
    }
    Ok(found)
}

fn verify_chain(
    store: &dyn AuditChains,
    head: &ChainHead,
    keys: Option<&[PublicKey]>,
) -> Result<Verification, StoreError> {
    let chain = head.chain_id.as_str();
    let trusted = match keys {
        Some(keys) => keys.to_vec(),
        // A key that does not parse trusts nothing; its checkpoints show as untrusted.
        None => store
            .audit_chain_keys(chain)?
            .iter()
            .filter_map(|pem| PublicKey::from_pem(pem).ok())
            .collect(),
    };
    let mut verifier = ChainVerifier::new(trusted);
    let mut checkpoints = Vec::new().into_iter();
    let (mut after_number, mut more_checkpoints) = (0, true);
    let mut next_checkpoint = |verifier: &mut ChainVerifier| -> Result<bool, StoreError> {
        if let Some(c) = checkpoints.next() {
            verifier.checkpoint(&c);
            return Ok(true);
        }
        if !more_checkpoints {
            return Ok(false);
        }
        let page =
            store.audit_chain_checkpoints(chain, after_number, head.checkpoint_number, PAGE)?;
        more_checkpoints = page.len() == PAGE;
        after_number = page.last().map_or(after_number, |c| c.number);
        checkpoints = page.into_iter();
        match checkpoints.next() {
            Some(c) => {
                verifier.checkpoint(&c);
                Ok(true)
            }
            None => Ok(false),
        }
    };
    let mut after = 0;
    'pages: loop {
        let page = store.audit_chain_records(chain, after, head.seq, PAGE)?;
        for r in &page {
            while verifier.wants_checkpoints() {
                if !next_checkpoint(&mut verifier)? {
                    break;
                }
            }
            if !verifier.record(r) {
                break 'pages;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.seq,
            _ => break,
        }
    }
    // What is left over covers records that are not there; the first one says so.
    if !verifier.is_broken() {
        next_checkpoint(&mut verifier)?;
    }
    Ok(verifier.finish())
}
