//! `arbiter test --pipeline`: vectors through the same decision pipeline the server
//! runs (`arbiter_service::pipeline::Decider`), in a scratch data directory, not just
//! the set's evaluation. A vector marked `approved` whose request is held is then
//! approved by as many test approvers as the approval needs, and redeemed: so the
//! approval hold, the approvers required (an obligation) and redemption are what is
//! tested, as an enforcement point would see them (a deny or an allow is final at
//! once). No network, and no audit log.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_core::{Outcome, PrincipalKind};
use arbiter_service::app::App;
use arbiter_service::auth::{Caller, Role};
use arbiter_service::pipeline::{Answer, Authorize, Decider};

use super::{Tally, Vector};
use crate::config::{Config, ServeArgs};

/// The enforcement point the vectors come from.
const ENFORCER: &str = "arbiter-test";

/// The pipeline over `set` in a fresh scratch directory, kept alive by the returned
/// guard.
pub(crate) async fn open(set: &str) -> anyhow::Result<(Decider, Arc<App>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().context("cannot create a scratch data directory")?;
    let args = ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        policy_sets: vec![set.to_string()],
        metrics_listen: Some("off".into()),
        no_audit: true,
        ..ServeArgs::default()
    };
    let config = Config::resolve(None, &args)?;
    let app = crate::server::open(&config, arbiter_core::system_clock()).await?;
    Ok((Decider::new(app.clone(), 16), app, dir))
}

fn caller(id: String, kind: PrincipalKind, role: Role) -> Caller {
    Caller {
        id,
        kind,
        roles: vec![role],
        authenticated: true,
        sets: arbiter_service::auth::SetAccess::Any,
    }
}

/// One vector through the pipeline: its final answer, or why it could not get one.
async fn decide(decider: &Decider, app: &App, v: &Vector) -> Result<Answer, String> {
    let enforcer = caller(ENFORCER.into(), PrincipalKind::Service, Role::Enforcer);
    let ask = |approval_id: Option<String>| Authorize {
        request: v.request.clone(),
        policy_set: None,
        approval_id,
        explain: false,
        credential: None,
        probe: false,
    };
    let first = decider
        .decide(&enforcer, ask(None))
        .await
        .map_err(|e| e.to_string())?;
    // An approval matters only for a held request: a deny or an allow is final, as
    // an enforcement point would see it.
    if !v.approved || first.decision.outcome != Outcome::RequireApproval {
        return Ok(first);
    }
    let Some(id) = first.approval_id.clone() else {
        return Err("held for approval, but no approval id came with it".into());
    };
    let required = app
        .approvals()
        .get(&id)
        .await
        .map_err(|e| e.to_string())?
        .new
        .approvers_required;
    for n in 1..=required {
        let approver = caller(
            format!("arbiter-test-approver-{n}@local"),
            PrincipalKind::Human,
            Role::Approver,
        );
        app.approvals()
            .vote(&approver, &id, true, "arbiter test".into())
            .await
            .map_err(|e| format!("approver {n} of {required} could not approve: {e}"))?;
    }
    decider
        .decide(&enforcer, ask(Some(id)))
        .await
        .map_err(|e| format!("the approved request was refused: {e}"))
}

/// Runs JSON-lines vectors through the pipeline.
pub(super) async fn run_vectors(
    set: &str,
    text: &str,
    name: &str,
    verbose: bool,
    out: &mut impl Write,
) -> anyhow::Result<Tally> {
    let (decider, app, _scratch) = open(set).await?;
    let mut tally = Tally::default();
    for (i, line) in text.lines().enumerate() {
        let Some((v, expected)) = super::parse_vector(line, i, name, &mut tally, out)? else {
            continue;
        };
        match decide(&decider, &app, &v).await {
            Ok(answer) => {
                super::judge(&v, i, expected, &answer.decision, verbose, &mut tally, out)?
            }
            Err(why) => {
                tally.failed += 1;
                writeln!(out, "FAIL {} (line {}): {why}", v.id, i + 1)?;
            }
        }
    }
    Ok(tally)
}
