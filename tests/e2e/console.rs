//! The approver console over plain HTTP on loopback (no browser): who may sign in,
//! the session cookie's flags, the security headers, CSRF, the sign-in rate limit,
//! and a vote counted and audited like the API's. The browser tests are in
//! `console_browser`.

use std::net::SocketAddr;

use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;

use crate::approvals::{Tokens, bearer, channel, hold, identity_change, with_tokens};
use crate::authzen::http;
use crate::support::*;

pub(crate) const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// A server with the HTTP listener (so the console) and the tests' tokens.
pub(crate) async fn server() -> (TestServer, Tokens) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: arbiter_tls::ClientAuth::None,
    });
    let tokens = with_tokens(&mut config);
    (TestServer::start_config(config, data).await, tokens)
}

/// The gateway's identity change, held: its approval id.
pub(crate) async fn held(server: &TestServer, t: &Tokens, task: &str) -> String {
    let mut authz = AuthorizerClient::new(channel(&server.url).await);
    hold(
        &mut authz,
        &t.gateway,
        identity_change(task, "arn:aws:iam::1:role/deploy"),
    )
    .await
}

/// Approval `id` as the gRPC API shows it to `token`.
pub(crate) async fn approval(
    server: &TestServer,
    token: &str,
    id: &str,
) -> arbiter::proto::Approval {
    let mut approvals = ApprovalsClient::new(channel(&server.url).await);
    let r = bearer(token, arbiter::proto::GetApprovalRequest { id: id.into() });
    approvals.get_approval(r).await.expect("get").into_inner()
}

/// The value of the hidden `csrf` field of a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    page[start..]
        .split('"')
        .next()
        .expect("a value")
        .to_string()
}

/// The `name=value` of a `Set-Cookie` for `name`.
pub(crate) fn set_cookie<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with(&format!("{name}=")))
}

pub(crate) fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("a pair").to_string()
}

/// Loads the sign-in form and posts `token`: the answer.
async fn sign_in(addr: SocketAddr, token: &str) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, page) = http(addr, "GET", "/console/sign-in", &[], "").await;
    assert_eq!(status, 200, "{page}");
    let pair = cookie_pair(set_cookie(&headers, "arbiter_console_signin").expect("form cookie"));
    let body = format!("csrf={}&token={token}", csrf_of(&page));
    http(
        addr,
        "POST",
        "/console/sign-in",
        &[FORM, ("Cookie", &pair)],
        &body,
    )
    .await
}

/// Signs in: the session cookie (`name=value`) and the session's CSRF token.
pub(crate) async fn session(addr: SocketAddr, token: &str) -> (String, String) {
    let (status, headers, body) = sign_in(addr, token).await;
    assert_eq!(status, 303, "{body}");
    let cookie = cookie_pair(set_cookie(&headers, "arbiter_console").expect("session cookie"));
    let (status, _, page) = http(
        addr,
        "GET",
        "/console/approvals",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    (cookie, csrf_of(&page))
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_refuses_unknown_tokens_and_enforcement_points() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let (status, _, page) = sign_in(addr, "arb_not-a-token").await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("that token is not known"), "{page}");
    for enforcer in [&t.gateway, &t.agent] {
        let (status, headers, page) = sign_in(addr, enforcer).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("is not an approver"), "{page}");
        assert!(set_cookie(&headers, "arbiter_console").is_none());
    }
    // Approvers and admins (readers, as over the API) sign in.
    for reader in [&t.alice, &t.admin] {
        assert_eq!(sign_in(addr, reader).await.0, 303);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_session_cookie_and_security_headers() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let (status, headers, _) = sign_in(addr, &t.alice).await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/console/approvals"));
    let cookie = set_cookie(&headers, "arbiter_console").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    // The token never comes back, neither in the cookie nor in a URL.
    assert!(!cookie.contains(&t.alice));

    let id = held(&server, &t, "console-headers").await;
    let pair = cookie_pair(cookie);
    for path in [
        "/console/sign-in",
        "/console/approvals",
        &format!("/console/approvals/{id}"),
        "/console/history",
        "/console/console.js",
    ] {
        let (status, headers, page) = http(addr, "GET", path, &[("Cookie", &pair)], "").await;
        assert_eq!(status, 200, "{path}: {page}");
        let csp = header(&headers, "content-security-policy").expect("csp");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
        assert!(!page.contains(&t.alice), "{path} shows no token");
        if path.ends_with(".js") {
            continue;
        }
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "{path}: no inline script or style"
        );
    }
    let (_, _, pending) = http(addr, "GET", "/console/approvals", &[("Cookie", &pair)], "").await;
    assert!(
        pending.contains(&id) && pending.contains("iam:AttachRolePolicy"),
        "{pending}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn console_forms_without_the_csrf_token_are_refused() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let id = held(&server, &t, "console-csrf").await;

    // Sign-in without the form's token pair.
    let (status, _, page) = http(
        addr,
        "POST",
        "/console/sign-in",
        &[FORM],
        &format!("token={}", t.alice),
    )
    .await;
    assert_eq!(status, 403, "{page}");

    let (cookie, csrf) = session(addr, &t.alice).await;
    let vote = format!("/console/approvals/{id}/vote");
    let headers = [FORM, ("Cookie", cookie.as_str())];
    for body in [
        "decision=approve&comment=ok",
        "csrf=wrong&decision=approve&comment=ok",
    ] {
        let (status, _, page) = http(addr, "POST", &vote, &headers, body).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("CSRF"), "{page}");
    }
    // Sign-out needs it too.
    assert_eq!(
        http(addr, "POST", "/console/sign-out", &headers, "")
            .await
            .0,
        403
    );
    // A comment is required.
    let (status, _, page) = http(
        addr,
        "POST",
        &vote,
        &headers,
        &format!("csrf={csrf}&decision=approve&comment=+"),
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("a comment is required"), "{page}");
    // A form larger than the limit is refused before it is read.
    let big = format!(
        "csrf={csrf}&decision=approve&comment={}",
        "x".repeat(20_000)
    );
    assert_eq!(http(addr, "POST", &vote, &headers, &big).await.0, 413);

    // Nothing counted so far; with the token, the vote counts, audited as alice.
    assert!(approval(&server, &t.alice, &id).await.votes.is_empty());
    let (status, headers2, page) = http(
        addr,
        "POST",
        &vote,
        &headers,
        &format!("csrf={csrf}&decision=approve&comment=CHG-7+reviewed"),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(
        header(&headers2, "location"),
        Some(format!("/console/approvals/{id}").as_str())
    );
    let a = approval(&server, &t.alice, &id).await;
    assert_eq!(a.votes.len(), 1);
    assert_eq!(a.votes[0].approver, "alice@acme.org");
    assert_eq!(a.votes[0].comment, "CHG-7 reviewed");
    // Audited like the API's vote, with the session's identity.
    let votes = audit_records(&server.audit_db(), arbiter_audit::Kind::Approval, "vote");
    assert!(
        votes
            .iter()
            .any(|r| r.record.principal.as_deref() == Some("alice@acme.org")),
        "the console's vote is on record as alice's"
    );
    let (_, _, page) = http(
        addr,
        "GET",
        &format!("/console/approvals/{id}"),
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert!(page.contains("approved"), "{page}");

    // Signed out, the session is gone.
    let (status, _, _) = http(
        addr,
        "POST",
        "/console/sign-out",
        &headers,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(status, 303);
    let (status, h, _) = http(
        addr,
        "GET",
        "/console/approvals",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(
        (status, header(&h, "location")),
        (303, Some("/console/sign-in"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn console_without_a_session_redirects_pages_and_refuses_votes() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let id = held(&server, &t, "console-nosession").await;
    let (status, h, _) = http(addr, "GET", "/console/approvals", &[], "").await;
    assert_eq!(
        (status, header(&h, "location")),
        (303, Some("/console/sign-in"))
    );
    let bogus = [FORM, ("Cookie", "arbiter_console=0000")];
    for headers in [&[FORM][..], &bogus[..]] {
        let (status, _, page) = http(
            addr,
            "POST",
            &format!("/console/approvals/{id}/vote"),
            headers,
            "csrf=x&decision=approve&comment=ok",
        )
        .await;
        assert_eq!(status, 401, "{page}");
    }
    // Even a bearer token is not a session.
    let auth = format!("Bearer {}", t.alice);
    let (status, _, _) = http(
        addr,
        "POST",
        &format!("/console/approvals/{id}/vote"),
        &[FORM, ("Authorization", &auth)],
        "decision=approve&comment=ok",
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_is_rate_limited_per_peer() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    for _ in 0..10 {
        assert_eq!(sign_in(addr, "arb_wrong").await.0, 401);
    }
    let (status, headers, page) = sign_in(addr, "arb_wrong").await;
    assert_eq!(status, 429, "{page}");
    assert!(header(&headers, "retry-after").is_some());
    // The right token is refused too until the window ends.
    assert_eq!(sign_in(addr, &t.alice).await.0, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_shows_why_someone_may_not_vote() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let id = held(&server, &t, "console-why").await;
    let page = format!("/console/approvals/{id}");
    // bob is the human the agent acts for; the admin reads but does not vote.
    for (token, why) in [
        (&t.bob, "is in the delegation chain of this request"),
        (&t.admin, "approver"),
    ] {
        let (cookie, csrf) = session(addr, token).await;
        let (status, _, body) = http(addr, "GET", &page, &[("Cookie", &cookie)], "").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("You cannot vote") && body.contains(why),
            "{body}"
        );
        assert!(body.contains(r#"value="approve" disabled"#), "{body}");
        // And the service refuses the vote all the same.
        let form = format!("csrf={csrf}&decision=approve&comment=mine");
        let (status, _, body) = http(
            addr,
            "POST",
            &format!("{page}/vote"),
            &[FORM, ("Cookie", &cookie)],
            &form,
        )
        .await;
        assert_eq!(status, 403, "{body}");
    }
    // bob's refused vote is on record, as over the API.
    let refused = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "vote-refused",
    );
    assert!(
        refused
            .iter()
            .any(|r| r.record.principal.as_deref() == Some("bob@acme.org")),
        "the refused vote is on record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn console_approval_shows_each_plugins_verdict_and_the_credential_limit() {
    let (server, t) = server().await;
    let addr = server.running.http_addr.expect("http");
    let id = held(&server, &t, "console-evidence").await;
    let (cookie, _) = session(addr, &t.alice).await;
    let path = format!("/console/approvals/{id}");
    let (status, _, page) = http(addr, "GET", &path, &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200, "{page}");
    // The reference set's one plugin held it, with the rule that says why.
    assert!(page.contains("Each plugin&#39;s verdict") || page.contains("Each plugin's verdict"));
    let verdicts = page
        .split("<table class=\"verdicts\">")
        .nth(1)
        .expect("a verdict table")
        .split("</table>")
        .next()
        .expect("its end");
    assert!(
        verdicts.contains("<td>reference</td>")
            && verdicts.contains("require-approval")
            && verdicts.contains("identity-change-needs-approval"),
        "{verdicts}"
    );
    // The credential a redemption may get: the reference set keeps an identity
    // change's credential to five minutes, under the server's fifteen.
    assert!(
        page.contains("living at most 5 min (the policy allows 5 min, the server 15 min)"),
        "{page}"
    );
}
