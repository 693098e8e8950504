//! The console's admin pages over HTTP on loopback: audit search, policy sets.
//! Refusals first (approvers, CSRF, a confirmation gone stale, bad search fields), then
//! the search finding this test's decisions with the chain intact and then broken, and
//! a promotion and a rollback made from the console, checked over gRPC and in the
//! audit log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter_audit::Kind;

use crate::approvals::{AGENT, bearer, channel, identity_change};
use crate::authzen::http;
use crate::console::{FORM, server, session};
use crate::support::*;

mod sets;

/// `GET path` with the session `cookie`: (status, page).
async fn get(addr: SocketAddr, cookie: &str, path: &str) -> (u16, String) {
    let (status, _, page) = http(addr, "GET", path, &[("Cookie", cookie)], "").await;
    (status, page)
}

/// `POST path` with the session `cookie` and a form `body`: (status, location, page).
async fn post(addr: SocketAddr, cookie: &str, path: &str, body: &str) -> (u16, String, String) {
    let (status, headers, page) = http(addr, "POST", path, &[FORM, ("Cookie", cookie)], body).await;
    let location = header(&headers, "location").unwrap_or_default().to_string();
    (status, location, page)
}

/// The value of the hidden field `name` of a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("a `{name}` field: {page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .expect("a value")
        .to_string()
}

/// The rows of the first table of class `class` in a page.
fn rows<'p>(page: &'p str, class: &str) -> Vec<&'p str> {
    let Some((_, table)) = page.split_once(&format!(r#"<table class="{class}">"#)) else {
        return Vec::new();
    };
    let table = table.split("</table>").next().expect("a table");
    let body = table.split_once("<tbody>").map_or("", |(_, b)| b);
    body.split("<tr>").skip(1).collect()
}

/// Waits until `ready` holds, for at most 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut ready: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_admin_pages_refuse_approvers_and_bad_input() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let (alice, alice_csrf) = session(addr, &t.alice).await;
    for path in [
        "/console/audit",
        "/console/sets",
        "/console/sets/reference",
        "/console/sets/reference/confirm?act=promote",
    ] {
        let (status, page) = get(addr, &alice, path).await;
        assert_eq!(status, 403, "{path}: {page}");
        assert!(page.contains("admin"), "{path} says which role: {page}");
    }
    let form = format!("csrf={alice_csrf}&confirm=yes&from=x&version=y");
    for act in ["promote", "rollback"] {
        let (status, _, page) = post(
            addr,
            &alice,
            &format!("/console/sets/reference/{act}"),
            &form,
        )
        .await;
        assert_eq!(status, 403, "{page}");
    }
    // The approvers' pages do not link to the admin ones.
    let (_, page) = get(addr, &alice, "/console/approvals").await;
    assert!(!page.contains(r#"href="/console/audit""#), "{page}");

    let (admin, _) = session(addr, &t.admin).await;
    for (query, says) in [
        (
            "since=yesterday",
            "`since` is not a date and time (YYYY-MM-DDTHH:MM)",
        ),
        ("until=2026-02-30T10:00", "`until` is not a date and time"),
        ("kind=decisions", "`kind` is not any, decision"),
        (
            "outcome=perhaps",
            "`outcome` is not any, allow, deny or require-approval",
        ),
        ("before=latest", "`before` is not a record number"),
    ] {
        let (status, page) = get(addr, &admin, &format!("/console/audit?{query}")).await;
        assert_eq!(status, 400, "{query}: {page}");
        assert!(page.contains(says), "{query}: {page}");
        // The form comes back to be corrected, and no result table.
        assert!(
            page.contains(r#"<form class="card search""#) && !page.contains("<table"),
            "{page}"
        );
    }
    for path in [
        "/console/sets/no-such-set",
        "/console/sets/no-such-set/confirm?act=promote",
        "/console/sets/reference/confirm?act=demolish",
        "/console/sets/reference/elsewhere",
    ] {
        assert_eq!(get(addr, &admin, path).await.0, 404, "{path}");
    }
    // Nothing to promote: the set page says so.
    let (status, page) = get(addr, &admin, "/console/sets/reference/confirm?act=promote").await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("has no shadow version to promote"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_audit_search_finds_the_decisions_and_shows_a_broken_chain() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    // 104 allowed reads by the deploy bot and one identity change held for approval.
    let mut c = AuthorizerClient::new(channel(&server.url).await);
    for _ in 0..104 {
        let d = c
            .authorize(bearer(&t.gateway, normal_request()))
            .await
            .expect("authorize")
            .into_inner();
        assert_eq!(d.decision(), pb::Decision::Allow);
    }
    crate::approvals::hold(
        &mut c,
        &t.gateway,
        identity_change("console-audit", "arn:aws:iam::1:role/audit"),
    )
    .await;
    let (admin, _) = session(addr, &t.admin).await;
    let db = server.audit_db();
    eventually("the decisions on record", || async {
        audit_records(&db, Kind::Decision, "allow").len() == 104
            && audit_records(&db, Kind::Decision, "require-approval").len() == 1
    })
    .await;
    let bot = "/console/audit?principal=spiffe%3A%2F%2Facme.org%2Fagent%2Fdeploy-bot&outcome=allow&kind=decision";

    let (status, page) = get(addr, &admin, bot).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Intact"), "{page}");
    let first = rows(&page, "audit");
    assert!(
        first.iter().all(
            |r| r.contains("db:Query on arn:acme:database:staging:payments/r1")
                && r.contains(">allow<")
        ),
        "{page}"
    );
    assert!(!page.contains("iam:AttachRolePolicy"), "{page}");
    // The search is kept in the form, and the older page continues below the oldest row.
    assert!(
        page.contains(r#"value="spiffe://acme.org/agent/deploy-bot""#),
        "{page}"
    );
    let seq = |row: &str| -> u64 {
        row.split("<td>")
            .nth(1)
            .and_then(|c| c.split('<').next())
            .expect("seq")
            .parse()
            .expect("a number")
    };
    let oldest = first.iter().map(|r| seq(r)).min().expect("rows");
    let older = page
        .split(r#"rel="next" href=""#)
        .nth(1)
        .and_then(|h| h.split('"').next())
        .expect("an older link")
        .replace("&amp;", "&");
    assert!(
        older.contains(&format!("before={oldest}")) && older.contains("principal="),
        "{older}"
    );
    let (status, rest) = get(addr, &admin, &older).await;
    assert_eq!(status, 200, "{rest}");
    let second = rows(&rest, "audit");
    assert_eq!(second.len(), 4, "104 in all: {rest}");
    assert!(second.iter().all(|r| seq(r) < oldest));
    assert!(!rest.contains(r#"rel="next""#), "nothing older: {rest}");

    let held = "/console/audit?principal=spiffe%3A%2F%2Facme.org%2Fagent%2Fiam-bot&outcome=require-approval";
    let (_, page) = get(addr, &admin, held).await;
    let found = rows(&page, "audit");
    assert_eq!(found.len(), 1, "{page}");
    assert!(
        found[0].contains("iam:AttachRolePolicy on arn:aws:iam::1:role/audit")
            && found[0].contains(AGENT),
        "{page}"
    );
    // The sign-in of the admin is no decision: a kind narrows the search.
    let (_, page) = get(addr, &admin, "/console/audit?kind=admin&outcome=allow").await;
    assert!(
        rows(&page, "audit").is_empty() && page.contains("No record matches"),
        "{page}"
    );

    // A record edited behind the server's back breaks the chain there.
    rusqlite::Connection::open(server.audit_db())
        .expect("open")
        .execute(
            "UPDATE records SET at_micros = at_micros + 1 WHERE seq = 3",
            [],
        )
        .expect("tamper");
    let (status, page) = get(addr, &admin, held).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Broken at record 3") && !page.contains("Intact"),
        "{page}"
    );
    assert!(
        page.contains("BROKEN at record 3"),
        "the report is shown: {page}"
    );
}
