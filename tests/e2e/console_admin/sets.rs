//! Promote and roll back from the console: refused without CSRF, without the ticked box
//! and when the set changed since it was confirmed; done, they change what the gRPC
//! `GetSetStatus` reports and are on record as the admin's acts.

use std::path::{Path, PathBuf};

use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::policy_admin_client::PolicyAdminClient;
use arbiter_audit::Kind;

use super::{eventually, get, hidden, post, rows};
use crate::approvals::{Tokens, bearer, channel};
use crate::console::{csrf_of, server, session};
use crate::support::*;

/// `reference` version 2.0.0 in `root`: the reference plugin with F1 (high risk
/// forbids) and G4 (exports need approval) switched off, so it decides some of the
/// public vectors differently from the built-in 1.0.0.
fn reference_v2(root: &Path) -> PathBuf {
    let dir = root.join("reference-2");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(
        arbiter_plugin_build::plugin("reference"),
        dir.join("reference.wasm"),
    )
    .expect("copy");
    std::fs::write(
        dir.join("policy-set.toml"),
        "format = 1\nname = \"reference\"\nversion = \"2.0.0\"\n[[plugins]]\nname = \"reference\"\npath = \"reference.wasm\"\n[plugins.settings]\ndisabled_rules = [\"F1\", \"G4\"]\n",
    )
    .expect("manifest");
    dir
}

async fn admin_client(server: &TestServer) -> PolicyAdminClient<tonic::transport::Channel> {
    PolicyAdminClient::new(channel(&server.url).await)
}

/// The status of `reference` over gRPC.
async fn set_status(server: &TestServer, t: &Tokens) -> pb::SetStatus {
    let r = bearer(
        &t.admin,
        pb::GetSetStatusRequest {
            name: "reference".into(),
        },
    );
    admin_client(server)
        .await
        .get_set_status(r)
        .await
        .expect("status")
        .into_inner()
}

/// The version of `reference` in `state`, if any.
fn in_state(s: &pb::SetStatus, state: pb::SetState) -> Option<&str> {
    s.versions
        .iter()
        .find(|v| v.state == state as i32)
        .map(|v| v.version.as_str())
}

/// Loads `dir` by path as the shadow of `reference`.
async fn shadow(server: &TestServer, t: &Tokens, dir: &Path) {
    let r = bearer(
        &t.admin,
        pb::LoadSetRequest {
            source: Some(pb::load_set_request::Source::Path(
                dir.display().to_string(),
            )),
            activation: pb::Activation::Shadow as i32,
        },
    );
    let s = admin_client(server)
        .await
        .load_set(r)
        .await
        .expect("v2 loads")
        .into_inner();
    assert_eq!(in_state(&s, pb::SetState::Shadow), Some("2.0.0"));
}

/// The unapproved public vectors decided by the gateway: how many.
async fn decide_vectors(server: &TestServer, t: &Tokens) -> u64 {
    let mut c = AuthorizerClient::new(channel(&server.url).await);
    let mut n = 0;
    for v in vectors().into_iter().filter(|v| !v.approved) {
        let r = bearer(&t.gateway, arbiter::grpc::encode::request(&v.request));
        c.authorize(r).await.expect("authorize");
        n += 1;
    }
    n
}

/// Admin acts on record with `outcome`, by whom.
fn acts_by(server: &TestServer, outcome: &str) -> Vec<String> {
    audit_records(&server.audit_db(), Kind::Admin, outcome)
        .into_iter()
        .filter_map(|r| r.record.principal)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_promotes_and_rolls_back_confirmed_and_audited() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let root = tempfile::tempdir().expect("tempdir");
    let v2 = reference_v2(root.path());
    shadow(&server, &t, &v2).await;
    let (admin, csrf) = session(addr, &t.admin).await;

    // Refusals first: each leaves 1.0.0 enforced and 2.0.0 in shadow.
    let (status, confirm) = get(addr, &admin, "/console/sets/reference/confirm?act=promote").await;
    assert_eq!(status, 200, "{confirm}");
    assert!(
        confirm.contains("will enforce version") && confirm.contains("instead of version"),
        "{confirm}"
    );
    let (from, version) = (hidden(&confirm, "from"), hidden(&confirm, "version"));
    let s = set_status(&server, &t).await;
    let digest = |v: &str| {
        s.versions
            .iter()
            .find(|x| x.version == v)
            .map(|x| x.digest.clone())
            .expect("loaded")
    };
    assert_eq!(
        (from.as_str(), version.as_str()),
        (digest("1.0.0").as_str(), digest("2.0.0").as_str())
    );
    let promote = "/console/sets/reference/promote";
    let good = format!(
        "csrf={}&from={from}&version={version}&confirm=yes",
        csrf_of(&confirm)
    );
    for (body, code, says) in [
        (
            format!("from={from}&version={version}&confirm=yes"),
            403,
            "CSRF",
        ),
        (
            format!("csrf=wrong&from={from}&version={version}&confirm=yes"),
            403,
            "CSRF",
        ),
        (
            format!("csrf={csrf}&from={from}&version={version}"),
            400,
            "tick the box",
        ),
        (
            format!("csrf={csrf}&from={version}&version={version}&confirm=yes"),
            409,
            "the set changed since you confirmed",
        ),
    ] {
        let (status, _, page) = post(addr, &admin, promote, &body).await;
        assert_eq!(status, code, "{body}: {page}");
        assert!(page.contains(says), "{page}");
    }
    // The confirmed shadow is gone: the form is stale.
    let r = bearer(
        &t.admin,
        pb::ClearShadowRequest {
            name: "reference".into(),
        },
    );
    admin_client(&server)
        .await
        .clear_shadow(r)
        .await
        .expect("clear");
    let (status, _, page) = post(addr, &admin, promote, &good).await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("the set changed since you confirmed: review it again"),
        "{page}"
    );
    let s = set_status(&server, &t).await;
    assert_eq!(
        (
            in_state(&s, pb::SetState::Enforced),
            in_state(&s, pb::SetState::Shadow)
        ),
        (Some("1.0.0"), None)
    );
    assert!(
        acts_by(&server, "activate").is_empty(),
        "nothing was activated"
    );

    // In shadow again, over the public vectors: the set page shows how they differ.
    let r = bearer(
        &t.admin,
        pb::ShadowSetRequest {
            name: "reference".into(),
            version: "2.0.0".into(),
            demote: false,
        },
    );
    admin_client(&server)
        .await
        .shadow_set(r)
        .await
        .expect("shadow again");
    let n = decide_vectors(&server, &t).await;
    eventually("every shadow comparison", || async {
        set_status(&server, &t).await.shadow_compared >= n
    })
    .await;
    let diverged: u64 = set_status(&server, &t)
        .await
        .divergences
        .iter()
        .map(|d| d.count)
        .sum();
    assert!(diverged > 0);
    let (_, list) = get(addr, &admin, "/console/sets").await;
    assert!(
        list.contains(r#"href="/console/sets/reference""#) && list.contains("default"),
        "{list}"
    );
    assert!(
        list.contains("1.0.0") && list.contains("2.0.0") && list.contains("builtin:reference"),
        "{list}"
    );
    eventually("the divergence samples", || async {
        rows(
            &get(addr, &admin, "/console/sets/reference").await.1,
            "samples",
        )
        .len()
            == 10
    })
    .await;
    let (status, page) = get(addr, &admin, "/console/sets/reference").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("<dd>{diverged}</dd>")),
        "the divergence total: {page}"
    );
    let table = rows(&page, "divergences");
    assert!(
        !table.is_empty()
            && table
                .iter()
                .any(|r| r.contains("<td>deny</td><td>allow</td>")),
        "{page}"
    );
    let samples = rows(&page, "samples");
    assert!(
        samples
            .iter()
            .all(|r| r.contains("(1.0.0)") && r.contains("(2.0.0)")),
        "{page}"
    );
    assert!(
        page.contains("Promote shadow")
            && page.contains(r#"href="/console/sets/reference/confirm?act=promote""#),
        "{page}"
    );
    // Nothing to roll back to: the only other version is the shadow (that is a promotion).
    assert!(!page.contains("act=rollback"), "{page}");
    assert_eq!(
        get(addr, &admin, "/console/sets/reference/confirm?act=rollback")
            .await
            .0,
        409
    );

    // Promote from the console: 2.0.0 is enforced, on record as the admin's act.
    let (_, confirm) = get(addr, &admin, "/console/sets/reference/confirm?act=promote").await;
    let promote_form = format!(
        "csrf={csrf}&from={}&version={}&confirm=yes",
        hidden(&confirm, "from"),
        hidden(&confirm, "version")
    );
    let (status, location, page) = post(addr, &admin, promote, &promote_form).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/console/sets/reference"),
        "{page}"
    );
    let s = set_status(&server, &t).await;
    assert_eq!(
        (
            in_state(&s, pb::SetState::Enforced),
            in_state(&s, pb::SetState::Shadow)
        ),
        (Some("2.0.0"), None)
    );
    assert_eq!(acts_by(&server, "activate"), ["root@acme.org"]);
    // The same form again is stale now.
    let (status, _, _) = post(addr, &admin, promote, &promote_form).await;
    assert_eq!(status, 409);

    // Roll back: the confirmation proposes 1.0.0, the version enforced before.
    let (status, confirm) = get(addr, &admin, "/console/sets/reference/confirm?act=rollback").await;
    assert_eq!(status, 200, "{confirm}");
    assert_eq!(hidden(&confirm, "version"), digest("1.0.0"), "{confirm}");
    assert_eq!(hidden(&confirm, "from"), digest("2.0.0"), "{confirm}");
    let body = format!(
        "csrf={csrf}&from={}&version={}&confirm=yes",
        hidden(&confirm, "from"),
        hidden(&confirm, "version")
    );
    let (status, location, page) =
        post(addr, &admin, "/console/sets/reference/rollback", &body).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/console/sets/reference"),
        "{page}"
    );
    assert_eq!(
        in_state(&set_status(&server, &t).await, pb::SetState::Enforced),
        Some("1.0.0")
    );
    assert_eq!(acts_by(&server, "rollback"), ["root@acme.org"]);
    // The audit page finds both acts.
    let (_, page) = get(
        addr,
        &admin,
        "/console/audit?kind=admin&principal=root%40acme.org",
    )
    .await;
    let acts = rows(&page, "audit");
    assert!(
        acts.iter()
            .any(|r| r.contains(">activate<") && r.contains("activate reference")),
        "{page}"
    );
    assert!(acts.iter().any(|r| r.contains(">rollback<")), "{page}");
}
