//! Prometheus metrics (`--metrics-listen`, OpenMetrics text at `/metrics`): decisions by
//! set and outcome, decision and per-plugin latency, plugin failures by kind,
//! quarantined plugins, the audit writer's queue and latency, approvals by state with
//! time to decide, credentials issued and revoked, shadow divergences, probes (side-
//! effect-free decisions, counted apart so that they never inflate the decisions), and
//! approval webhooks' deliveries and failures (sent by `arbiter-notify`).
//!
//! Label values are set and plugin names (bounded by configuration) and fixed words;
//! nothing a caller sends becomes a label, so a caller cannot blow up cardinality.

use std::time::Duration;

use arbiter_core::{Decision, PluginOutcome};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod labels;
mod shipping;
use labels::*;
pub use shipping::Shipping;

/// Default metrics address: loopback, like the gRPC default.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

fn latency() -> Histogram {
    // 10 us .. ~5 s in 20 doubling buckets: covers a fresh Rust instance and a slow
    // Python plugin alike.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

fn slow_latency() -> Histogram {
    // 1 s .. ~9 h: how long humans take to decide.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<SetOutcome, Counter>,
    probes: Family<SetOutcome, Counter>,
    decision_seconds: Family<SetLabel, Histogram, fn() -> Histogram>,
    plugin_seconds: Family<PluginLabel, Histogram, fn() -> Histogram>,
    plugin_failures: Family<FailureLabel, Counter>,
    quarantined: Family<PluginLabel, Gauge>,
    quarantines: Family<PluginLabel, Gauge>,
    overload_timeouts: Family<PluginLabel, Gauge>,
    audit_queue: Gauge,
    state_up: Gauge,
    replica: Family<ReplicaLabel, Gauge>,
    replica_lease_lost: Gauge,
    replicas_live: Gauge,
    audit_write_seconds: Histogram,
    audit_records: Counter,
    audit_failures: Counter,
    audit_shipping: Shipping,
    approvals: Family<StateLabel, Counter>,
    approval_seconds: Family<StateLabel, Histogram, fn() -> Histogram>,
    credentials_issued: Counter,
    credentials_revoked: Counter,
    divergences: Family<Divergence, Counter>,
    shadow_shed: Family<SetLabel, Counter>,
    tls_reloads: Family<ListenerResult, Counter>,
    refusals: Family<RefusalLabel, Counter>,
    webhook_deliveries: Family<WebhookOutcome, Counter>,
    webhook_failures: Family<WebhookFailure, Counter>,
    webhook_queue: Family<WebhookLabel, Gauge>,
    webhook_missed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric, all at zero.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("arbiter");
        let m = Self {
            decisions: Family::default(),
            probes: Family::default(),
            decision_seconds: Family::new_with_constructor(latency),
            plugin_seconds: Family::new_with_constructor(latency),
            plugin_failures: Family::default(),
            quarantined: Family::default(),
            quarantines: Family::default(),
            overload_timeouts: Family::default(),
            audit_queue: Gauge::default(),
            state_up: Gauge::default(),
            replica: Family::default(),
            replica_lease_lost: Gauge::default(),
            replicas_live: Gauge::default(),
            audit_write_seconds: latency(),
            audit_records: Counter::default(),
            audit_failures: Counter::default(),
            audit_shipping: Shipping::default(),
            approvals: Family::default(),
            approval_seconds: Family::new_with_constructor(slow_latency),
            credentials_issued: Counter::default(),
            credentials_revoked: Counter::default(),
            divergences: Family::default(),
            shadow_shed: Family::default(),
            tls_reloads: Family::default(),
            refusals: Family::default(),
            webhook_deliveries: Family::default(),
            webhook_failures: Family::default(),
            webhook_queue: Family::default(),
            webhook_missed: Counter::default(),
            registry: Registry::default(),
        };
        r.register(
            "tls_reloads",
            "TLS certificate reloads by listener and result (`failed`: the previous certificate is still served)",
            m.tls_reloads.clone(),
        );
        r.register(
            "refused_callers",
            "Calls refused for who the caller is, by listener and reason (TLS handshake failures, unknown tokens, unmapped certificates, token and certificate naming two identities, missing roles)",
            m.refusals.clone(),
        );
        r.register(
            "decisions",
            "Decisions by policy set and outcome",
            m.decisions.clone(),
        );
        r.register(
            "probes",
            "Probes (side-effect-free decisions: no approval, no credential) by policy set and outcome; not counted in decisions",
            m.probes.clone(),
        );
        r.register(
            "decision_seconds",
            "Decision latency (evaluation of every plugin and combining)",
            m.decision_seconds.clone(),
        );
        r.register(
            "plugin_seconds",
            "Per-plugin evaluation latency, instantiation included",
            m.plugin_seconds.clone(),
        );
        r.register(
            "plugin_failures",
            "Plugin failures by kind (each counted as a deny unless on_error = abstain)",
            m.plugin_failures.clone(),
        );
        r.register(
            "plugin_quarantined",
            "1 while a plugin is quarantined (fails closed without running)",
            m.quarantined.clone(),
        );
        r.register(
            "plugin_quarantines",
            "Times a plugin has been quarantined since its set version was loaded (it is retried by itself with back-off)",
            m.quarantines.clone(),
        );
        r.register(
            "plugin_overload_timeouts",
            "Timeouts of a plugin that were the host's overload (it waited for a CPU): denied, not counted toward quarantine",
            m.overload_timeouts.clone(),
        );
        r.register(
            "state_database_up",
            "1 while the state database answers (approvals and credentials can be served), 0 while it does not",
            m.state_up.clone(),
        );
        r.register(
            "replica",
            "1, labelled with this replica's id (--replica-id)",
            m.replica.clone(),
        );
        r.register(
            "replica_lease_lost",
            "1 while another process holds this replica's id in the shared state database (this one is not ready), else 0",
            m.replica_lease_lost.clone(),
        );
        r.register(
            "replicas_live",
            "Replicas holding a live lease in the shared state database, as this one last saw (0 on SQLite)",
            m.replicas_live.clone(),
        );
        r.register(
            "audit_queue_depth",
            "Audit records waiting for the group-commit writer",
            m.audit_queue.clone(),
        );
        r.register(
            "audit_write_seconds",
            "Time to commit one audit batch",
            m.audit_write_seconds.clone(),
        );
        r.register(
            "audit_records",
            "Audit records committed",
            m.audit_records.clone(),
        );
        r.register(
            "audit_write_failures",
            "Audit batches that could not be written",
            m.audit_failures.clone(),
        );
        m.audit_shipping.register(&mut r);
        r.register(
            "approvals",
            "Approval events by resulting state (pending = created)",
            m.approvals.clone(),
        );
        r.register(
            "approval_decision_seconds",
            "Time from an approval's creation to its approval or rejection",
            m.approval_seconds.clone(),
        );
        r.register(
            "credentials_issued",
            "Credentials issued",
            m.credentials_issued.clone(),
        );
        r.register(
            "credentials_revoked",
            "Credentials revoked (one by one or by task completion)",
            m.credentials_revoked.clone(),
        );
        r.register(
            "shadow_divergences",
            "Shadow decisions that differ from the enforced one, by enforced -> shadow outcome",
            m.divergences.clone(),
        );
        r.register(
            "shadow_shed",
            "Shadow evaluations skipped because the server was busy",
            m.shadow_shed.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Approval notices by webhook and outcome: delivered, gave-up (out of attempts, or refused by the receiver), dropped (the queue was full)",
            m.webhook_deliveries.clone(),
        );
        r.register(
            "webhook_failures",
            "Failed attempts to deliver an approval notice, by webhook and reason (each retried until the notice's attempts run out)",
            m.webhook_failures.clone(),
        );
        r.register(
            "webhook_queue_depth",
            "Approval notices waiting for a webhook",
            m.webhook_queue.clone(),
        );
        r.register(
            "webhook_events_missed",
            "Approval changes no webhook was sent because the notifier fell behind the approval stream",
            m.webhook_missed.clone(),
        );
        Self { registry: r, ..m }
    }

    /// Counts a decision and its plugins' latency and failures.
    pub fn decision(&self, d: &Decision) {
        let set = &d.set.name;
        self.decisions
            .get_or_create(&SetOutcome {
                set: set.clone(),
                outcome: d.outcome.as_str().to_string(),
            })
            .inc();
        self.decision_seconds
            .get_or_create(&SetLabel { set: set.clone() })
            .observe(d.elapsed.as_secs_f64());
        self.plugins(d);
    }

    /// Counts a probe, and its plugins' latency and failures (the plugins did run).
    pub fn probe(&self, d: &Decision) {
        self.probes
            .get_or_create(&SetOutcome {
                set: d.set.name.clone(),
                outcome: d.outcome.as_str().to_string(),
            })
            .inc();
        self.plugins(d);
    }

    /// The latency and failures of the plugins behind `d`.
    fn plugins(&self, d: &Decision) {
        let set = &d.set.name;
        for p in &d.plugins {
            let label = PluginLabel {
                set: set.clone(),
                plugin: p.name.clone(),
            };
            self.plugin_seconds
                .get_or_create(&label)
                .observe(p.elapsed.as_secs_f64());
            if let PluginOutcome::Failed(f) = &p.outcome {
                self.plugin_failures
                    .get_or_create(&FailureLabel {
                        set: set.clone(),
                        plugin: p.name.clone(),
                        kind: f.kind.as_str().to_string(),
                    })
                    .inc();
            }
        }
    }

    /// A plugin's quarantine state and overload count (refreshed at every scrape).
    pub fn plugin_health(&self, set: &str, status: &arbiter_runtime::PluginStatus) {
        let label = PluginLabel {
            set: set.to_string(),
            plugin: status.name.clone(),
        };
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.quarantined
            .get_or_create(&label)
            .set(i64::from(status.quarantined));
        self.quarantines
            .get_or_create(&label)
            .set(gauge(status.quarantines));
        self.overload_timeouts
            .get_or_create(&label)
            .set(gauge(status.overload_timeouts));
    }

    /// Whether the state database answers (`/readyz` follows it).
    pub fn set_state_up(&self, up: bool) {
        self.state_up.set(i64::from(up));
    }

    /// The last [`Metrics::set_state_up`].
    pub fn state_up(&self) -> bool {
        self.state_up.get() == 1
    }

    /// Labels `arbiter_replica` with this replica's id.
    pub fn set_replica(&self, id: &str) {
        self.replica
            .get_or_create(&ReplicaLabel { replica: id.into() })
            .set(1);
    }

    /// Whether another process holds this replica's id (`/readyz` fails while so).
    pub fn set_replica_lease_lost(&self, lost: bool) {
        self.replica_lease_lost.set(i64::from(lost));
    }

    /// The last [`Metrics::set_replica_lease_lost`].
    pub fn replica_lease_lost(&self) -> bool {
        self.replica_lease_lost.get() == 1
    }

    /// How many replicas hold a live lease.
    pub fn replicas_live(&self, n: usize) {
        self.replicas_live.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The audit queue depth (refreshed at every scrape).
    pub fn audit_queue(&self, depth: usize) {
        self.audit_queue
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// One committed audit batch.
    pub fn audit_committed(&self, records: usize, took: Duration) {
        self.audit_records.inc_by(records as u64);
        self.audit_write_seconds.observe(took.as_secs_f64());
    }

    /// One failed audit batch.
    pub fn audit_failed(&self) {
        self.audit_failures.inc();
    }

    /// The audit shipper's metrics.
    pub fn audit_shipping(&self) -> &Shipping {
        &self.audit_shipping
    }

    /// An approval reached `state`; `age` is its time since creation, for decisions.
    pub fn approval(&self, state: &str, age: Option<Duration>) {
        let label = StateLabel {
            state: state.to_string(),
        };
        self.approvals.get_or_create(&label).inc();
        if let Some(age) = age {
            self.approval_seconds
                .get_or_create(&label)
                .observe(age.as_secs_f64());
        }
    }

    /// A credential was issued.
    pub fn credential_issued(&self) {
        self.credentials_issued.inc();
    }

    /// `n` credentials were revoked.
    pub fn credentials_revoked(&self, n: usize) {
        self.credentials_revoked.inc_by(n as u64);
    }

    /// A shadow decision differed from the enforced one.
    pub fn divergence(&self, set: &str, shadow: &str, from: &str, to: &str) {
        self.divergences
            .get_or_create(&Divergence {
                set: set.to_string(),
                shadow: shadow.to_string(),
                from: from.to_string(),
                to: to.to_string(),
            })
            .inc();
    }

    /// A shadow evaluation was skipped under load.
    pub fn shadow_shed(&self, shadow: &str) {
        self.shadow_shed
            .get_or_create(&SetLabel {
                set: shadow.to_string(),
            })
            .inc();
    }

    /// A TLS reload on `listener` succeeded or failed.
    pub fn tls_reloaded(&self, listener: &str, ok: bool) {
        self.tls_reloads
            .get_or_create(&ListenerResult {
                listener: listener.into(),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// A caller was refused on `listener` for `reason` (a fixed word).
    pub fn caller_refused(&self, listener: &str, reason: &str) {
        self.refusals
            .get_or_create(&RefusalLabel {
                listener: listener.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// An approval notice for `webhook` ended: `delivered`, `gave-up` or `dropped`.
    pub fn webhook_delivery(&self, webhook: &str, outcome: &str) {
        self.webhook_deliveries
            .get_or_create(&WebhookOutcome {
                webhook: webhook.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// An attempt to deliver to `webhook` failed for `reason` (a fixed word).
    pub fn webhook_failure(&self, webhook: &str, reason: &str) {
        self.webhook_failures
            .get_or_create(&WebhookFailure {
                webhook: webhook.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// `depth` notices wait for `webhook`.
    pub fn webhook_queue(&self, webhook: &str, depth: usize) {
        self.webhook_queue
            .get_or_create(&WebhookLabel {
                webhook: webhook.into(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// `n` approval changes were missed by the notifier.
    pub fn webhook_events_missed(&self, n: u64) {
        self.webhook_missed.inc_by(n);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
