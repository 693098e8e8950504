//! The console's measurements pages: `arbiter replay` reports drawn as charts. A real
//! server decides some of the public vectors over AuthZEN, the real binary replays
//! its audit log (the reference set against the weakened one) and saves the report
//! into `<data_dir>/reports`, and the pages show it to admins only.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use arbiter_core::{PrincipalKind, Request};
use serde_json::{Value, json};

use crate::approvals::Tokens;
use crate::authzen::http;
use crate::console::{server, session};
use crate::support::{TestServer, vectors};

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// Decisions the server is asked for.
const DECISIONS: usize = 60;

/// An Arbiter request as an AuthZEN evaluation (the documented mapping).
fn authzen(r: &Request) -> Value {
    let subject = |p: &arbiter_core::Principal| {
        let kind = match p.kind {
            PrincipalKind::Human => "user",
            other => other.as_str(),
        };
        json!({"type": kind, "id": p.id, "properties": p.attributes})
    };
    let mut action = serde_json::to_value(&r.action.attributes).expect("attrs");
    action["privilege"] = r.action.privilege.as_str().into();
    let mut context = serde_json::to_value(&r.context).expect("context");
    context["intent"] = serde_json::to_value(&r.intent).expect("intent");
    context["delegation"] = r.delegation.iter().map(subject).collect::<Vec<_>>().into();
    json!({
        "subject": subject(&r.principal),
        "action": {"name": r.action.name, "properties": action},
        "resource": {"type": r.resource.kind, "id": r.resource.id, "properties": r.resource.attributes},
        "context": context,
    })
}

/// A server that decided [`DECISIONS`] vectors over AuthZEN, and the id (file stem) of
/// the report `arbiter replay --audit ... --save <data>/reports` saved for it.
pub(crate) async fn with_report() -> (TestServer, Tokens, String) {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let auth = format!("Bearer {}", t.gateway);
    let picked: Vec<_> = vectors()
        .into_iter()
        .filter(|v| !v.approved)
        .step_by(11)
        .take(DECISIONS)
        .collect();
    for v in &picked {
        let (status, _, body) = http(
            addr,
            "POST",
            "/access/v1/evaluation",
            &[crate::authzen::JSON, ("Authorization", &auth)],
            &authzen(&v.request).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // Spread over a few seconds, so the series over time has several buckets.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let db = server.audit_db();
    let data = db.parent().expect("data dir").to_path_buf();
    // The audit writer commits in batches: wait until every decision is on disk.
    let filter = arbiter_audit::Filter {
        kind: Some(arbiter_audit::Kind::Decision),
        ..arbiter_audit::Filter::default()
    };
    for _ in 0..200 {
        if arbiter_audit::query(&db, &filter).expect("query").len() >= DECISIONS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reports = data.join("reports");
    let out = Command::new(BIN)
        .arg("replay")
        .arg("--audit")
        .arg(&data)
        .args(["--baseline", "builtin:reference"])
        .args(["--candidate", "builtin:reference-weakened"])
        .arg("--save")
        .arg(&reports)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let saved = PathBuf::from(
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("saved "))
            .unwrap_or_else(|| panic!("the saved path on stderr: {stderr}")),
    );
    assert_eq!(saved.parent(), Some(reports.as_path()));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).expect("saved")).expect("json");
    assert_eq!(doc["input"]["actions"], DECISIONS as u64);
    assert!(doc["generated_micros"].as_i64().expect("time") > 0);
    assert_eq!(doc["inputs"]["candidate"], "builtin:reference-weakened");
    assert_eq!(doc["baseline"]["over_time"]["axis"], "time");
    let stem = saved
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .to_string();
    assert!(
        stem.starts_with("replay-") && stem.len() == "replay-20250601T120000Z-a1b2c3".len(),
        "{stem}"
    );
    (server, t, stem)
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_see_saved_replay_reports_as_charts() {
    let (server, t, stem) = with_report().await;
    let addr = server.running.http_addr.expect("http");
    let get = |cookie: String, path: String| async move {
        let (status, _, page) = http(addr, "GET", &path, &[("Cookie", &cookie)], "").await;
        (status, page)
    };

    let (alice, _) = session(addr, &t.alice).await;
    for path in [
        "/console/measurements".to_string(),
        format!("/console/measurements/{stem}"),
    ] {
        let (status, page) = get(alice.clone(), path).await;
        assert_eq!(status, 403, "an approver is refused: {page}");
    }

    let (admin, _) = session(addr, &t.admin).await;
    let (status, list) = get(admin.clone(), "/console/measurements".into()).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list.contains(&format!(r#"href="/console/measurements/{stem}""#)),
        "{list}"
    );
    assert!(list.contains("reference@"), "{list}");
    assert!(list.contains(" → reference-weakened@"), "{list}");
    assert!(list.contains("audit.db"), "{list}");

    let (status, page) = get(admin.clone(), format!("/console/measurements/{stem}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.matches("<svg").count() >= 6,
        "two matrices, two series, two bar charts"
    );
    for title in [
        "Confusion matrix, baseline: reference@",
        "Confusion matrix, candidate: reference-weakened@",
        "Decisions by outcome over time, baseline: reference@",
        "Decisions by outcome over time, candidate: reference-weakened@",
        ">Approval burden</title>",
        ">Decision latency percentiles</title>",
    ] {
        assert!(page.contains(title), "{title}: {page}");
    }
    assert!(
        page.contains(&format!(r#"<dd id="actions">{DECISIONS}</dd>"#)),
        "{page}"
    );
    assert!(page.contains("recorded time (UTC)"), "{page}");
    assert!(page.contains(r#"id="changed""#), "{page}");
    assert!(!page.contains("style="), "the CSP allows no inline style");

    for path in [
        "/console/measurements/..%2Fetc",
        "/console/measurements/../etc/passwd",
        "/console/measurements/replay-none",
    ] {
        let (status, page) = get(admin.clone(), path.into()).await;
        assert_eq!(status, 404, "{path}: {page}");
    }

    let reports = server.audit_db().parent().expect("data").join("reports");
    std::fs::write(reports.join("replay-broken.json"), "{\"baseline\": [oops").expect("writes");
    let (status, page) = get(admin.clone(), "/console/measurements/replay-broken".into()).await;
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("replay-broken.json"),
        "names the file: {page}"
    );
    assert!(page.contains("is not a replay report"), "{page}");
    let (status, list) = get(admin, "/console/measurements".into()).await;
    assert_eq!(status, 200, "a broken file does not break the list: {list}");
    assert!(list.contains("replay-broken"), "{list}");
}
