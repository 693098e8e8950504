//! Approval events in PostgreSQL: a numbered table appended in sequence order and
//! announced with `NOTIFY`, and one listening connection per replica that turns the
//! notifications into a signal (see [`crate::events`]).

use super::cached;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::sync::watch;

use super::{PgStore, tls::MakeRustls};
use crate::{ApprovalEvent, ApprovalEvents, StoreError};

/// The channel replicas announce new events on.
const CHANNEL: &str = "arbiter_approval_events";
/// The channel replicas announce stored policy-set changes on.
pub(super) const SET_CHANNEL: &str = "arbiter_set_changes";
/// Held while an event is appended, so events commit in sequence order.
const APPEND_LOCK: i64 = 0x4152_4249_5445_5202;
/// How long the listener waits before connecting again after a break.
const RECONNECT: Duration = Duration::from_secs(1);

impl ApprovalEvents for PgStore {
    fn append_approval_event(
        &self,
        replica: &str,
        step: &str,
        approval_id: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let e = (
            replica.to_string(),
            step.to_string(),
            approval_id.to_string(),
        );
        self.run(move |c| append(c, e, now))
    }

    fn approval_events_after(
        &self,
        seq: i64,
        limit: usize,
    ) -> Result<Vec<ApprovalEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                "SELECT seq, replica, step, approval_id, at_micros FROM approval_events
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&seq, &limit],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|r| ApprovalEvent {
                    seq: r.get(0),
                    replica: r.get(1),
                    step: r.get(2),
                    approval_id: r.get(3),
                    at_micros: r.get(4),
                })
                .collect())
        })
    }

    fn approval_event_head(&self) -> Result<i64, StoreError> {
        self.run(|c| async move {
            let row =
                cached::query_one(&c, "SELECT COALESCE(MAX(seq), 0) FROM approval_events", &[])
                    .await?;
            Ok(row.get(0))
        })
    }

    fn purge_approval_events(&self, before: i64) -> Result<usize, StoreError> {
        self.run(move |c| async move {
            let n = cached::execute(
                &c,
                "DELETE FROM approval_events WHERE at_micros < $1",
                &[&before],
            )
            .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn approval_event_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.events.clone())
    }
}

/// Appends one event under the append lock and announces it, in one statement (one
/// round trip, its own transaction): the lock is taken before the sequence number is
/// drawn and held until commit, and the notification is delivered at commit, when the
/// event can be read.
async fn append(
    c: Object,
    (replica, step, approval_id): (String, String, String),
    now: i64,
) -> Result<i64, StoreError> {
    let row = cached::query_one(
        &c,
        "WITH locked AS (SELECT pg_advisory_xact_lock($5)),
         appended AS (INSERT INTO approval_events (replica, step, approval_id, at_micros)
             SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::BIGINT FROM locked RETURNING seq)
         SELECT seq, pg_notify($6, seq::TEXT)::TEXT FROM appended",
        &[&replica, &step, &approval_id, &now, &APPEND_LOCK, &CHANNEL],
    )
    .await?;
    Ok(row.get(0))
}

/// Keeps one connection listening on [`CHANNEL`] and [`SET_CHANNEL`] for as long as
/// the store lives, connecting again after any break; each returned signal (approval
/// events, set changes) changes on every notification on its channel and on every
/// (re)connection (notifications may have been missed meanwhile).
pub(super) fn listen(
    rt: &tokio::runtime::Handle,
    config: tokio_postgres::Config,
    tls: MakeRustls,
) -> (watch::Receiver<u64>, watch::Receiver<u64>) {
    let (events, events_rx) = watch::channel(0u64);
    let (sets, sets_rx) = watch::channel(0u64);
    rt.spawn(async move {
        let bump = |signal: &watch::Sender<u64>| signal.send_modify(|n| *n += 1);
        loop {
            if let Ok((client, mut conn)) = config.connect(tls.clone()).await {
                let (notified, mut notes) = tokio::sync::mpsc::unbounded_channel::<bool>();
                let driver = tokio::spawn(async move {
                    use tokio_postgres::AsyncMessage;
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                if notified.send(n.channel() == SET_CHANNEL).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {SET_CHANNEL}"))
                    .await
                    .is_ok()
                {
                    bump(&events);
                    bump(&sets);
                    while let Some(set) = notes.recv().await {
                        bump(if set { &sets } else { &events });
                    }
                }
                driver.abort();
            }
            if events.is_closed() && sets.is_closed() {
                return;
            }
            tokio::time::sleep(RECONNECT).await;
        }
    });
    (events_rx, sets_rx)
}

#[cfg(test)]
mod tests;
