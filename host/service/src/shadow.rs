//! Shadow evaluation: a set version evaluated on the same traffic as the enforced one,
//! after the caller has its answer, never returned. Shadow work only takes evaluation
//! slots that are free at that moment (it never waits: under load it is shed first,
//! and counted), and at most half of them, so it cannot crowd out enforced decisions.

use std::sync::Arc;

use crate::pipeline::ShadowPermit;
use arbiter_audit::{Durability, Kind};
use arbiter_core::{Decision, Request};

use crate::app::App;
use crate::records;
use crate::sets::Shadow;

/// Divergent requests recorded in full per shadow activation before sampling thins
/// them to one in [`SAMPLE_EVERY`]: enough to study, bounded in volume.
pub const SAMPLE_FIRST: u64 = 1000;
/// After [`SAMPLE_FIRST`], one divergent request in this many is recorded.
pub const SAMPLE_EVERY: u64 = 100;

/// Evaluates `request` on the shadow in the background, with the slot `permit`
/// already taken (or counts it as shed when there is none).
pub fn spawn(
    app: Arc<App>,
    shadow: Shadow,
    permit: Option<ShadowPermit>,
    request: Request,
    approved: bool,
    enforced: &Decision,
) {
    let shadow_name = shadow.version.set.identity().name.clone();
    let Some(permit) = permit else {
        shadow
            .stats
            .shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        app.metrics.shadow_shed(&shadow_name);
        return;
    };
    let (enforced_outcome, enforced_id, enforced_version) = (
        enforced.outcome,
        enforced.id.clone(),
        enforced.set.version.clone(),
    );
    tokio::spawn(async move {
        let d = shadow.version.set.decide(&request, approved).await;
        drop(permit);
        if !shadow.stats.compare(enforced_outcome, d.outcome) {
            return;
        }
        let id = d.set.clone();
        app.metrics.divergence(
            &id.name,
            &id.version,
            enforced_outcome.as_str(),
            d.outcome.as_str(),
        );
        let n: u64 = shadow.stats.divergences().values().sum();
        if n > SAMPLE_FIRST && !n.is_multiple_of(SAMPLE_EVERY) {
            return;
        }
        let mut r = records::decision(
            &request,
            &d,
            "shadow",
            None,
            0,
            &app.redaction,
            app.clock.now_micros(),
        );
        r.kind = Kind::Shadow;
        let mut body = r.body_value();
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "enforced".into(),
                serde_json::json!({
                    "decision_id": enforced_id,
                    "version": enforced_version,
                    "outcome": enforced_outcome.as_str(),
                }),
            );
        }
        records::set_body(&mut r, &body);
        // Sampled evidence, not a decision anyone waits for: queued, never blocking.
        if let Err(e) = app.append(r, Durability::Async).await {
            tracing::warn!(error = %e, "cannot record a shadow divergence");
        }
    });
}
