//! The gRPC health service kept in step with what this replica can serve: Approvals
//! and Credentials follow the state database (decisions that need no state go on
//! without it); on a shared database, every service and the server as a whole (`""`)
//! are NOT_SERVING while another process holds this replica's id.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::proto;

/// Sets the statuses from `state` (the state database answers) and `lease` (this
/// process holds its replica id; `None` without a shared database) whenever either
/// changes, until `state`'s sender is gone (the server is stopping).
pub fn follow(
    reporter: HealthReporter,
    mut state: watch::Receiver<bool>,
    mut lease: Option<watch::Receiver<bool>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let status = |up: bool| match up {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        loop {
            let state_up = *state.borrow_and_update();
            let held = lease.as_mut().is_none_or(|l| *l.borrow_and_update());
            for name in [
                proto::approvals_server::SERVICE_NAME,
                proto::credentials_server::SERVICE_NAME,
            ] {
                reporter
                    .set_service_status(name, status(state_up && held))
                    .await;
            }
            if lease.is_some() {
                for name in ["", proto::authorizer_server::SERVICE_NAME] {
                    reporter.set_service_status(name, status(held)).await;
                }
            }
            let lease_changed = async {
                match lease.as_mut() {
                    Some(l) => l.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = state.changed() => if changed.is_err() { break },
                changed = lease_changed => if changed.is_err() { lease = None },
            }
        }
    })
}
