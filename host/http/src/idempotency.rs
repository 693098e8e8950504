//! `Idempotency-Key` for access-request submissions (the approval profile): the same
//! key from the same enforcement identity with the same body is the same request; with
//! another body it is refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value as Json;

/// `Idempotency-Key`s seen, per enforcement identity: the submission's canonical
/// digest and its task, kept for a day. In memory: a replica that did not see the
/// first submission treats a retry as new, which joins the same approval anyway.
#[derive(Debug, Default)]
pub(crate) struct Idempotency {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    by_key: HashMap<(String, String), (String, String)>,
    order: VecDeque<(i64, (String, String))>,
}

/// How long a key is remembered (the profile asks for at least a day after a task
/// ends; approvals expire well within that).
pub(crate) const KEEP_SECS: i64 = 2 * 24 * 60 * 60;
/// Keys remembered at most; the oldest are forgotten first.
const MAX_KEYS: usize = 100_000;
/// Bytes of an `Idempotency-Key` accepted.
pub(crate) const MAX_KEY_BYTES: usize = 256;

impl Idempotency {
    /// Remembers `key` for `body` and `task`; `Err` when the same key came with a
    /// different body.
    pub(crate) fn claim(
        &self,
        holder: &str,
        key: &str,
        body: &Json,
        task: &str,
        now: i64,
    ) -> Result<(), ()> {
        use sha2::Digest as _;
        // serde_json's maps are ordered by key: the text is canonical.
        let digest = hex::encode(sha2::Sha256::digest(body.to_string().as_bytes()));
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, k)) = seen.order.front().cloned() {
            if at > now - KEEP_SECS && seen.order.len() < MAX_KEYS {
                break;
            }
            seen.order.pop_front();
            seen.by_key.remove(&k);
        }
        let k = (holder.to_string(), key.to_string());
        match seen.by_key.get(&k) {
            Some((d, t)) if *d == digest && t == task => Ok(()),
            Some(_) => Err(()),
            None => {
                seen.by_key.insert(k.clone(), (digest, task.to_string()));
                seen.order.push_back((now, k));
                Ok(())
            }
        }
    }
}
