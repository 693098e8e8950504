//! One webhook's queue and its sender: notices wait in a bounded queue (the oldest is
//! dropped, and counted, when it is full: a receiver that is down never holds up a
//! decision or grows memory), and one task posts them in order, each signed anew per
//! attempt, retried with back-off until delivered, refused, or out of attempts.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arbiter_service::metrics::Metrics;
use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::backoff;
use crate::client::Client;
use crate::settings::{Event, Secret, Target};
use crate::signature::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Notices waiting per webhook at most: hours of approvals at a busy site while the
/// receiver is down, and a few MiB of memory at worst (a notice is a few KiB).
pub const QUEUE_CAPACITY: usize = 1024;

/// One message for one webhook.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    /// What happened.
    pub(crate) event: Event,
    /// The approval it is about (for logs).
    pub(crate) approval: String,
    /// Its id, the same on every attempt (`X-Arbiter-Delivery`).
    pub(crate) delivery: String,
    /// The body, built once.
    pub(crate) body: Bytes,
}

/// Notices waiting for one webhook.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    items: Mutex<VecDeque<Notice>>,
    ready: Notify,
}

impl Queue {
    /// Adds `notice` without waiting; when the queue is full the oldest notice makes
    /// room and is returned. Also returns the depth after.
    pub(crate) fn push(&self, notice: Notice) -> (Option<Notice>, usize) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = if items.len() >= QUEUE_CAPACITY {
            items.pop_front()
        } else {
            None
        };
        items.push_back(notice);
        let depth = items.len();
        drop(items);
        self.ready.notify_one();
        (dropped, depth)
    }

    /// The oldest notice, once there is one.
    async fn pop(&self) -> Notice {
        loop {
            if let Some(n) = self
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            {
                return n;
            }
            // A push in between leaves a permit: this returns at once.
            self.ready.notified().await;
        }
    }

    fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Posts one webhook's notices.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) name: String,
    pub(crate) target: Target,
    pub(crate) client: Client,
    pub(crate) secret: Secret,
    pub(crate) max_attempts: NonZeroU32,
    pub(crate) queue: Arc<Queue>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Sender {
    /// Sends notices in order until the server stops.
    pub(crate) async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut interrupted = 0;
        loop {
            let notice = tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                n = self.queue.pop() => n,
            };
            self.metrics.webhook_queue(&self.name, self.queue.len());
            tokio::select! {
                _ = stopping.wait_for(|s| *s) => {
                    interrupted = 1;
                    break;
                }
                () = self.deliver(&notice) => {}
            }
        }
        let left = self.queue.len() + interrupted;
        if left > 0 {
            tracing::warn!(webhook = %self.name, left, "the server is stopping: approval notices still waiting are not sent");
        }
    }

    /// Tries `notice` until it is delivered, refused, or out of attempts; every failed
    /// attempt and the outcome are counted.
    async fn deliver(&self, notice: &Notice) {
        let attempts = self.max_attempts.get();
        for attempt in 1..=attempts {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let headers = [
                (TIMESTAMP_HEADER, now.to_string()),
                (
                    SIGNATURE_HEADER,
                    signature::sign(self.secret.bytes(), now, &notice.body),
                ),
                (EVENT_HEADER, notice.event.as_str().to_string()),
                (DELIVERY_HEADER, notice.delivery.clone()),
            ];
            let failure = match self.client.post(&headers, notice.body.clone()).await {
                Ok(()) => {
                    self.metrics.webhook_delivery(&self.name, "delivered");
                    tracing::debug!(webhook = %self.name, approval = %notice.approval, event = notice.event.as_str(), attempt, "approval notice delivered");
                    return;
                }
                Err(f) => f,
            };
            self.metrics.webhook_failure(&self.name, failure.reason());
            let cause = std::error::Error::source(&failure).map(ToString::to_string);
            if attempt == attempts || failure.permanent() {
                self.metrics.webhook_delivery(&self.name, "gave-up");
                tracing::error!(webhook = %self.name, target = %self.target, approval = %notice.approval, event = notice.event.as_str(), attempts = attempt, error = %failure, cause, "approval notice given up");
                return;
            }
            let wait = backoff::delay(attempt, failure.retry_after(), backoff::random());
            tracing::warn!(webhook = %self.name, target = %self.target, approval = %notice.approval, event = notice.event.as_str(), attempt, retry_in_ms = wait.as_millis() as u64, error = %failure, cause, "approval notice not delivered; trying again");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(n: usize) -> Notice {
        Notice {
            event: Event::New,
            approval: n.to_string(),
            delivery: n.to_string(),
            body: Bytes::new(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_notice_and_never_waits() {
        let q = Queue::default();
        for n in 0..QUEUE_CAPACITY {
            assert!(q.push(notice(n)).0.is_none());
        }
        let (dropped, depth) = q.push(notice(QUEUE_CAPACITY));
        assert_eq!(dropped.map(|d| d.approval), Some("0".into()));
        assert_eq!(depth, QUEUE_CAPACITY);
        assert_eq!(q.pop().await.approval, "1");
    }

    #[tokio::test]
    async fn a_waiting_sender_wakes_for_a_pushed_notice() {
        let q = Arc::new(Queue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.approval }
        });
        tokio::task::yield_now().await;
        q.push(notice(7));
        assert_eq!(waiter.await.expect("joins"), "7");
    }
}
