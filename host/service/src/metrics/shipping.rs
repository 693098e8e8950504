//! The metrics of audit shipping (a replica copying its local audit log to the shared
//! state database): records shipped, failed passes, and how long records waited.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The audit shipper's metrics.
#[derive(Debug, Default)]
pub struct Shipping {
    shipped: Counter,
    failures: Counter,
    lag: Gauge<f64, AtomicU64>,
}

impl Shipping {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "audit_shipped_records",
            "Audit records this replica shipped to the shared state database",
            self.shipped.clone(),
        );
        r.register(
            "audit_shipping_failures",
            "Audit shipping passes that failed (database unreachable, or a forked chain: see the error log)",
            self.failures.clone(),
        );
        r.register(
            "audit_shipping_lag_seconds",
            "How long the oldest record of the last shipment waited to reach the database (0 when none was waiting)",
            self.lag.clone(),
        );
    }

    /// A pass shipped `records`, the oldest of which waited `lag`.
    pub fn shipped(&self, records: usize, lag: Duration) {
        self.shipped.inc_by(records as u64);
        self.lag.set(lag.as_secs_f64());
    }

    /// A pass failed; nothing was shipped.
    pub fn failed(&self) {
        self.failures.inc();
    }
}
