//! Approval notifications by webhook. Every new, decided, expired (and retracted)
//! approval is posted to the configured URLs as a Slack-compatible `text` message or
//! as JSON, signed with HMAC-SHA256 ([`signature`]), with a link to the approval in
//! the console.
//!
//! The notifier is a subscriber of the approval desk's change stream, like a
//! `WatchApprovals` caller: the decision path only publishes into a broadcast channel
//! and never waits for a webhook. Each webhook has a bounded queue (the oldest notice
//! is dropped, and counted, when it is full) and one sender task that retries with
//! exponential back-off and jitter ([`backoff`]) up to `max_attempts`. Deliveries,
//! failed attempts, drops and events missed by a notifier that fell behind are all
//! counted in the server's metrics (`arbiter_webhook_*`).
//!
//! A receiver checks a notice with [`signature::verify`]:
//!
//! ```
//! use arbiter_notify::signature::{sign, verify};
//! let key = b"a secret of at least thirty-two bytes";
//! let body = br#"{"text":"*Approval needed*"}"#;
//! let header = sign(key, 1_700_000_000, body); // X-Arbiter-Signature
//! assert!(verify(key, "1700000000", &header, body, 1_700_000_010).is_ok());
//! assert!(verify(key, "1700000000", &header, b"{}", 1_700_000_010).is_err());
//! ```

use std::sync::Arc;

use arbiter_service::app::App;
use arbiter_service::events::ApprovalChange;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

pub mod backoff;
mod client;
mod delivery;
mod payload;
pub mod settings;
pub mod signature;

pub use client::ClientError;
pub use delivery::QUEUE_CAPACITY;
pub use settings::{Notifications, RawNotifications, SettingsError, resolve};

use delivery::{Notice, Queue, Sender};
use settings::Webhook;

/// Starts sending `settings`' webhooks the approval changes of `app`, from now until
/// the server stops. Subscribes before returning, so nothing published afterwards is
/// missed. Nothing is started when no webhook is configured.
pub fn spawn(app: Arc<App>, settings: &Notifications) -> Result<(), ClientError> {
    if settings.webhooks.is_empty() {
        return Ok(());
    }
    // Every client first: a webhook whose TLS cannot be set up starts none.
    let clients = settings
        .webhooks
        .iter()
        .map(client::Client::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut hooks = Vec::new();
    for (hook, client) in settings.webhooks.iter().zip(clients) {
        let queue = Arc::new(Queue::default());
        let sender = Sender {
            name: hook.name.clone(),
            target: hook.target.clone(),
            client,
            secret: hook.secret.clone(),
            max_attempts: hook.max_attempts,
            queue: queue.clone(),
            metrics: app.metrics().clone(),
        };
        tracing::info!(webhook = %hook.name, target = %hook.target, format = hook.format.as_str(), events = ?hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(), "sending approval notifications");
        hooks.push((hook.clone(), queue));
        tokio::spawn(sender.run(app.stopping()));
    }
    let mut changes = app.approvals().subscribe();
    let mut stopping = app.stopping();
    let console = settings.console_url.clone();
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                _ = stopping.wait_for(|s| *s) => return,
                got = changes.recv() => got,
            };
            match got {
                Ok(change) => fan_out(&app, console.as_deref(), &hooks, &change),
                Err(RecvError::Lagged(missed)) => {
                    app.metrics().webhook_events_missed(missed);
                    tracing::warn!(
                        missed,
                        "approval notifications fell behind the approval stream: {missed} changes were not sent to any webhook (list approvals to see them)"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(())
}

/// Queues `change` for every webhook that wants it; never waits.
fn fan_out(
    app: &App,
    console: Option<&str>,
    hooks: &[(Webhook, Arc<Queue>)],
    change: &ApprovalChange,
) {
    let Some(event) = payload::event_of(change) else {
        return;
    };
    let a = &change.approval;
    let link = console.map(|c| format!("{c}/approvals/{}", a.new.id));
    for (hook, queue) in hooks.iter().filter(|(h, _)| h.events.contains(&event)) {
        let body = payload::body(hook.format, event, a, link.as_deref(), app.redaction());
        let (dropped, depth) = queue.push(Notice {
            event,
            approval: a.new.id.clone(),
            delivery: uuid::Uuid::now_v7().to_string(),
            body: Bytes::from(body),
        });
        app.metrics().webhook_queue(&hook.name, depth);
        if let Some(d) = dropped {
            app.metrics().webhook_delivery(&hook.name, "dropped");
            tracing::warn!(webhook = %hook.name, approval = %d.approval, event = d.event.as_str(), capacity = QUEUE_CAPACITY, "webhook queue full: the oldest approval notice was dropped");
        }
    }
}
