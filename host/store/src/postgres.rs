//! The PostgreSQL backend: the state of several replicas in one shared database.
//!
//! Every rule the store enforces is enforced by the database, not by one process's
//! memory, so it holds whichever replica asks: an approval is consumed by a
//! conditional update (exactly once, however many replicas race); a vote is a row
//! keyed by approval and approver (once per approver), counted under a lock on the
//! approval's row (two approvers voting on two replicas at once are counted one after
//! the other); holding a request that is already held joins its approval under an
//! advisory lock on the request; expiry is computed from the row, so every replica
//! may run the sweep.
//!
//! The trait is synchronous (callers run it on a blocking thread, as for SQLite); the
//! store runs `tokio-postgres` on a small runtime of its own and waits for the answer,
//! so it can be called from any thread.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolConfig, Runtime, Timeouts};

use crate::columns::{json, to_json};
use crate::model::{
    Approval, ApprovalFilter, Credential, NewApproval, SigningKeyInfo, TokenEntry, Vote,
    VoteOutcome,
};
use crate::{StateStore, StoreError};

mod approvals;
mod audit;
mod cached;
mod events;
mod keys;
mod lease;
mod policy_sets;
mod rows;
mod schema;
mod tls;
mod url;

pub(crate) use url::read_password;
pub use url::redact_url;
use url::{pool_error, with_causes};
#[cfg(test)]
mod tests;

use rows::*;

/// Connections one replica holds at most.
const POOL_SIZE: usize = 16;
/// How long a call waits for a connection (or to make one) before it fails closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Approvals listed when the filter names no limit, and at most.
const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 10_000;

/// State in a PostgreSQL database shared by replicas.
pub struct PgStore {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    /// The URL without its password, for messages.
    shown: String,
    /// Changes when approval events may be waiting (see [`crate::events`]).
    events: tokio::sync::watch::Receiver<u64>,
    /// Changes when a policy-set change may have been stored.
    set_changes: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or
    /// the key=value form; TLS as libpq's `sslmode`, `sslrootcert`, `sslcert` and
    /// `sslkey` say) and brings its schema up to date under the migration lock.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, None)
    }

    /// [`PgStore::open`], with the password given apart from the URL.
    pub fn open_with(url: &str, password: Option<String>) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let (rest, tls_params) = url::split_params(url, &tls::PARAMS);
        let mut pg: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::Unreachable(format!(
                "`{shown}` is not a PostgreSQL URL: {}",
                with_causes(&e)
            ))
        })?;
        let tls = tls::connector(&tls_params, &mut pg)?;
        if let Some(p) = password {
            pg.password(p);
        }
        let listening = (pg.clone(), tls.clone());
        let manager = deadpool_postgres::Manager::from_config(
            pg,
            tls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("arbiter-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unreachable(format!("cannot start the database runtime: {e}"))
            })?;
        let pool = Pool::builder(manager)
            .config(PoolConfig {
                max_size: POOL_SIZE,
                timeouts: Timeouts {
                    wait: Some(CONNECT_TIMEOUT),
                    create: Some(CONNECT_TIMEOUT),
                    recycle: Some(CONNECT_TIMEOUT),
                },
                ..PoolConfig::default()
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                StoreError::Unreachable(format!("cannot set up connections to `{shown}`: {e}"))
            })?;
        let (events, set_changes) = events::listen(runtime.handle(), listening.0, listening.1);
        let store = Self {
            pool,
            runtime: Some(runtime),
            shown,
            events,
            set_changes,
        };
        store.run(schema::migrate)?;
        Ok(store)
    }

    /// Runs `f` with a pooled connection on the store's runtime and waits for it.
    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::Unreachable("the store is closed".into()));
        };
        let pool = self.pool.clone();
        let shown = self.shown.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => f(client).await,
                Err(e) => Err(StoreError::Unreachable(format!(
                    "`{shown}`: {}",
                    pool_error(&e)
                ))),
            };
            // The caller waits for this; if it is gone there is no one to tell.
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| StoreError::Unreachable("the database call was abandoned".into()))?
    }

    fn token_rows(&self, table: &'static str) -> Result<Vec<TokenEntry>, StoreError> {
        self.run(move |c| async move {
            let rows = cached::query(&c,
                    &format!("SELECT sha256, id, kind, roles, created_micros FROM {table} ORDER BY created_micros"),
                    &[],
                )
                .await?;
            // A row that does not parse is left out (its token then proves nothing).
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let id: String = r.get(1);
                    Some(TokenEntry {
                        roles: json(r.get(3), "token roles", &id).ok()?,
                        sha256: r.get(0),
                        kind: r.get(2),
                        created_micros: r.get(4),
                        id,
                    })
                })
                .collect())
        })
    }
}

/// Approvals closed before `$1` (unix microseconds): what purging deletes.
const CLOSED_BEFORE: &str = "state IN ('rejected', 'consumed', 'expired') AND updated_micros < $1";

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl StateStore for PgStore {
    fn create_approval(&self, a: &NewApproval) -> Result<(), StoreError> {
        let a = a.clone();
        self.run(move |c| async move { insert_approval(&c, &a).await })
    }

    fn approval(&self, id: &str, now: i64) -> Result<Option<Approval>, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move { get_approval(&c, &id, now, false).await })
    }

    fn hold_approval(&self, a: &NewApproval, now: i64) -> Result<(Approval, bool), StoreError> {
        let a = a.clone();
        self.run(move |c| approvals::hold(c, a, now))
    }

    fn list_approvals(&self, f: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        let f = f.clone();
        self.run(move |c| approvals::list(c, f))
    }

    fn claim_lapsed_approvals(
        &self,
        claimant: &str,
        now: i64,
        limit: usize,
        claim_now: i64,
        hold: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        let (claimant, limit) = (
            claimant.to_string(),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        self.run(move |c| approvals::claim_lapsed(c, claimant, now, limit, (claim_now, hold)))
    }

    fn mark_expired(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            let n = cached::execute(
                &c,
                "UPDATE approvals SET state = 'expired', updated_micros = $2
                     WHERE id = $1 AND state IN ('pending', 'approved') AND expires_micros <= $2",
                &[&id, &now],
            )
            .await?;
            Ok(n == 1)
        })
    }

    fn purgeable(&self, approvals: i64, credentials: i64) -> Result<(usize, usize), StoreError> {
        self.run(move |c| async move {
            let a: i64 = cached::query_one(
                &c,
                &format!("SELECT count(*) FROM approvals WHERE {CLOSED_BEFORE}"),
                &[&approvals],
            )
            .await?
            .get(0);
            let k: i64 = cached::query_one(
                &c,
                "SELECT count(*) FROM credentials WHERE expires_at < $1",
                &[&credentials],
            )
            .await?
            .get(0);
            Ok((count(a), count(k)))
        })
    }

    fn purge_closed_approvals(&self, before: i64) -> Result<usize, StoreError> {
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            cached::execute(&tx,
                &format!(
                    "DELETE FROM votes WHERE approval_id IN (SELECT id FROM approvals WHERE {CLOSED_BEFORE})"
                ),
                &[&before],
            )
            .await?;
            let n = cached::execute(&tx,
                    &format!("DELETE FROM approvals WHERE {CLOSED_BEFORE}"),
                    &[&before],
                )
                .await?;
            tx.commit().await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn purge_expired_credentials(&self, before_secs: i64) -> Result<usize, StoreError> {
        self.run(move |c| async move {
            let n = cached::execute(
                &c,
                "DELETE FROM credentials WHERE expires_at < $1",
                &[&before_secs],
            )
            .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn vote(&self, id: &str, vote: &Vote, now: i64) -> Result<VoteOutcome, StoreError> {
        let (id, vote) = (id.to_string(), vote.clone());
        self.run(move |c| approvals::vote(c, id, vote, now))
    }

    fn retract_vote(&self, id: &str, approver: &str, now: i64) -> Result<(), StoreError> {
        let (id, approver) = (id.to_string(), approver.to_string());
        self.run(move |c| approvals::retract(c, id, approver, now))
    }

    fn redeem_approval(
        &self,
        id: &str,
        decision_id: &str,
        now: i64,
        credential: Option<&Credential>,
    ) -> Result<bool, StoreError> {
        let (id, decision_id) = (id.to_string(), decision_id.to_string());
        let credential = credential.cloned();
        self.run(move |c| approvals::redeem(c, id, decision_id, now, credential))
    }

    fn release_approval(&self, id: &str, decision_id: &str, now: i64) -> Result<bool, StoreError> {
        let (id, decision_id) = (id.to_string(), decision_id.to_string());
        self.run(move |c| approvals::release(c, id, decision_id, now))
    }

    fn insert_credential(&self, k: &Credential) -> Result<(), StoreError> {
        let k = k.clone();
        self.run(move |c| async move { insert_credential(&c, &k).await })
    }

    fn credential(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            let row = cached::query_opt(
                &c,
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1"),
                &[&id],
            )
            .await?;
            Ok(row.as_ref().map(rows::credential))
        })
    }

    fn revoke_credential(&self, id: &str, now: i64, reason: &str) -> Result<bool, StoreError> {
        let (id, reason) = (id.to_string(), reason.to_string());
        self.run(move |c| async move {
            let n = cached::execute(&c,
                    "UPDATE credentials SET revoked_micros = $2, revoke_reason = $3 WHERE id = $1 AND revoked_micros IS NULL",
                    &[&id, &now, &reason],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn revoke_task(
        &self,
        task_id: &str,
        holder: Option<&str>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (task_id, holder) = (task_id.to_string(), holder.map(str::to_string));
        self.run(move |c| async move {
            // One statement: the ids are exactly the rows this call revoked.
            let rows = cached::query(&c,
                    "UPDATE credentials SET revoked_micros = $2, revoke_reason = 'task-complete'
                     WHERE task_id = $1 AND revoked_micros IS NULL AND ($3::TEXT IS NULL OR holder = $3)
                     RETURNING id, issued_at",
                    &[&task_id, &now, &holder],
                )
                .await?;
            let mut ids: Vec<(i64, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
            ids.sort();
            Ok(ids.into_iter().map(|(_, id)| id).collect())
        })
    }

    fn tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        self.token_rows("tokens")
    }

    fn add_token(&self, t: &TokenEntry) -> Result<(), StoreError> {
        let t = t.clone();
        self.run(move |c| async move {
            let n = cached::execute(&c,
                    "INSERT INTO tokens (sha256, id, kind, roles, created_micros) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
                    &[&t.sha256, &t.id, &t.kind, &to_json(&t.roles), &t.created_micros],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::Duplicate(t.sha256.clone()));
            }
            Ok(())
        })
    }

    fn remove_tokens(&self, id: &str) -> Result<usize, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            let n = cached::execute(&c, "DELETE FROM tokens WHERE id = $1", &[&id]).await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn audited_tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        self.token_rows("audited_tokens")
    }

    fn set_token_audited(&self, t: &TokenEntry, audited: bool) -> Result<(), StoreError> {
        let t = t.clone();
        self.run(move |c| async move {
            if audited {
                cached::execute(&c,
                    "INSERT INTO audited_tokens (sha256, id, kind, roles, created_micros) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (sha256) DO UPDATE SET id = EXCLUDED.id, kind = EXCLUDED.kind, roles = EXCLUDED.roles, created_micros = EXCLUDED.created_micros",
                    &[&t.sha256, &t.id, &t.kind, &to_json(&t.roles), &t.created_micros],
                )
                .await?;
            } else {
                cached::execute(&c, "DELETE FROM audited_tokens WHERE sha256 = $1", &[&t.sha256])
                    .await?;
            }
            Ok(())
        })
    }

    fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, StoreError> {
        self.run(move |c| async move {
            let rows = cached::query(&c,
                    "SELECT kid, created_micros, retired_micros FROM signing_keys ORDER BY created_micros, kid",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| SigningKeyInfo {
                    kid: r.get(0),
                    created_micros: r.get(1),
                    retired_micros: r.get(2),
                })
                .collect())
        })
    }

    fn activate_signing_key(&self, kid: &str, now: i64) -> Result<(), StoreError> {
        let kid = kid.to_string();
        self.run(move |c| keys::activate_key(c, kid, now))
    }

    fn add_sealed_signing_key(&self, kid: &str, sealed: &[u8], now: i64) -> Result<(), StoreError> {
        let (kid, sealed) = (kid.to_string(), sealed.to_vec());
        self.run(move |c| keys::add_sealed(c, kid, sealed, now))
    }

    fn sealed_signing_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                "SELECT kid, sealed FROM sealed_signing_keys ORDER BY kid",
                &[],
            )
            .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}
