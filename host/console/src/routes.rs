//! Routing, sign-in and sign-out, and the approval pages and votes.

use arbiter_service::app::App;
use arbiter_service::auth::{Peer, Role};
use arbiter_service::{ErrorClass, ServiceError};
use arbiter_store::{ApprovalFilter, ApprovalState};
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use crate::pages::{self, Signed};
use crate::session::{self, ATTEMPT_WINDOW, Proof, SESSION_TTL};
use crate::{Answer, Console, reader, refusal, web};

/// How long the sign-in form stays usable after it was loaded.
const SIGN_IN_FORM_SECS: u64 = 15 * 60;
/// Approvals a page lists at most.
const PAGE_LIMIT: usize = 200;

const SCRIPT: &str = include_str!("../static/console.js");
const STYLE: &str = include_str!("../static/console.css");

pub(crate) async fn route(console: &Console, req: Request<Incoming>, peer: &Peer) -> Answer {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = req.uri().query().map(str::to_string);
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/console/console.js") => asset("text/javascript; charset=utf-8", SCRIPT),
        (&Method::GET, "/console/console.css") => asset("text/css; charset=utf-8", STYLE),
        (&Method::GET, "/console/sign-in") => sign_in_form(console, peer, None, StatusCode::OK),
        (&Method::POST, "/console/sign-in") => sign_in(console, req, peer).await,
        _ => {
            let Some((id, session, caller)) = console.signed_in(&req, peer) else {
                return if method == Method::GET {
                    web::see_other("/console/sign-in")
                } else {
                    refusal(
                        StatusCode::UNAUTHORIZED,
                        "Sign in first",
                        "this needs a session: sign in with an approver's token",
                        None,
                    )
                };
            };
            let signed = Signed {
                caller: &caller,
                csrf: &session.csrf,
            };
            if method == Method::POST {
                let form = match web::form(req).await {
                    Ok(f) => f,
                    Err(e) => {
                        let (status, text) = e.explain();
                        return refusal(status, "Refused", &text, Some(&signed));
                    }
                };
                let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
                if !web::same_secret(sent, &session.csrf) {
                    return refusal(
                        StatusCode::FORBIDDEN,
                        "Refused",
                        "the form's CSRF token is missing or wrong: reload the page and try again",
                        Some(&signed),
                    );
                }
                if path == "/console/sign-out" {
                    console.sessions.close(&id);
                    let mut r = web::see_other("/console/sign-in");
                    r.headers_mut().append(
                        header::SET_COOKIE,
                        web::cookie(web::SESSION_COOKIE, "", 0, console.tls),
                    );
                    return r;
                }
                if let Some(rest) = path.strip_prefix("/console/sets/") {
                    return crate::sets_page::post(console, &signed, rest, &form).await;
                }
                return match path
                    .strip_prefix("/console/approvals/")
                    .and_then(|rest| rest.strip_suffix("/vote"))
                {
                    Some(approval) if is_id(approval) => {
                        let comment = form.get("comment").map(|c| c.trim().to_string());
                        let decision = form.get("decision").map(String::as_str);
                        vote(console, &signed, approval, decision, comment).await
                    }
                    _ => not_found(&signed),
                };
            }
            if method != Method::GET {
                return refusal(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Refused",
                    "the console takes GET and form POSTs only",
                    Some(&signed),
                );
            }
            match path.as_str() {
                "/console" => web::see_other("/console/approvals"),
                "/console/approvals" => pending(console, &signed).await,
                "/console/history" => history(console, &signed).await,
                "/console/events" => crate::events::stream(console, id, peer.clone()),
                "/console/audit" => {
                    crate::audit_page::get(console, &signed, query.as_deref()).await
                }
                "/console/sets" => {
                    crate::sets_page::get(console, &signed, "", query.as_deref()).await
                }
                "/console/measurements" => {
                    crate::measurements::get(console, &signed, "", query.as_deref()).await
                }
                p => {
                    if let Some(rest) = p.strip_prefix("/console/sets/") {
                        return crate::sets_page::get(console, &signed, rest, query.as_deref())
                            .await;
                    }
                    if let Some(rest) = p.strip_prefix("/console/measurements/") {
                        return crate::measurements::get(console, &signed, rest, query.as_deref())
                            .await;
                    }
                    match p.strip_prefix("/console/approvals/") {
                        Some(approval) if is_id(approval) => {
                            detail(console, &signed, approval, None).await
                        }
                        _ => not_found(&signed),
                    }
                }
            }
        }
    }
}

fn asset(content_type: &'static str, text: &'static str) -> Answer {
    let mut r = web::answer(StatusCode::OK, content_type, text);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// An approval id as the service hands them out (a UUID); anything else is no page.
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub(crate) fn not_found(signed: &Signed<'_>) -> Answer {
    refusal(
        StatusCode::NOT_FOUND,
        "Not found",
        "there is no such page",
        Some(signed),
    )
}

/// The sign-in form, with a fresh secret in a cookie and in the form: a sign-in
/// posted from another site lacks the pair.
fn sign_in_form(console: &Console, peer: &Peer, error: Option<&str>, status: StatusCode) -> Answer {
    let Some(secret) = web::secret() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "no randomness: try again",
            None,
        );
    };
    // A connection with a client certificate may sign in with it (mutual TLS).
    let certificate = peer.certificate.as_ref().map(|c| c.id().to_string());
    let mut r = web::html(
        status,
        pages::sign_in(&secret, error, certificate.as_deref()),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        web::cookie(web::SIGN_IN_COOKIE, &secret, SIGN_IN_FORM_SECS, console.tls),
    );
    r
}

async fn sign_in(console: &Console, req: Request<Incoming>, peer: &Peer) -> Answer {
    if !console.attempts.allow(peer.addr.map(|a| a.ip())) {
        tracing::warn!(peer = ?peer.addr, "console sign-in rate limited");
        let mut r = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!(
                "too many sign-in attempts from this address: wait {} seconds and try again",
                ATTEMPT_WINDOW.as_secs()
            ),
            None,
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(ATTEMPT_WINDOW.as_secs()),
        );
        return r;
    }
    let pair = web::cookie_of(req.headers(), web::SIGN_IN_COOKIE).map(str::to_string);
    let form = match web::form(req).await {
        Ok(f) => f,
        Err(e) => {
            let (status, text) = e.explain();
            return sign_in_form(console, peer, Some(&text), status);
        }
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !pair.is_some_and(|p| web::same_secret(sent, &p)) {
        return sign_in_form(
            console,
            peer,
            Some("the form's CSRF token is missing or wrong: sign in from this page"),
            StatusCode::FORBIDDEN,
        );
    }
    let proved = if form.get("with").map(String::as_str) == Some("certificate") {
        session::by_certificate(&console.app, peer)
            .map(|caller| (Proof::Certificate(caller.id.clone()), caller))
    } else {
        let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
        if token.is_empty() {
            return sign_in_form(
                console,
                peer,
                Some("enter an Arbiter token"),
                StatusCode::BAD_REQUEST,
            );
        }
        reader(&console.app, token, peer).map(|caller| (Proof::Token(token.to_string()), caller))
    };
    match proved {
        Ok((proof, caller)) => {
            let Some((id, _)) = console.sessions.open(proof) else {
                return refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "no randomness: try again",
                    None,
                );
            };
            tracing::info!(caller = %caller.id, peer = ?peer.addr, "console sign-in");
            let mut r = web::see_other("/console/approvals");
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                web::cookie(web::SESSION_COOKIE, &id, SESSION_TTL.as_secs(), console.tls),
            );
            h.append(
                header::SET_COOKIE,
                web::cookie(web::SIGN_IN_COOKIE, "", 0, console.tls),
            );
            r
        }
        Err(ServiceError::MissingRole { caller, .. }) => sign_in_form(
            console,
            peer,
            Some(&format!(
                "`{}` is not an approver: the console is for approvers and admins (an enforcement point's or an agent's token or certificate cannot sign in)",
                caller.unwrap_or_else(|| "anonymous".into())
            )),
            StatusCode::FORBIDDEN,
        ),
        Err(ServiceError::Unauthenticated(why)) if form.contains_key("with") => {
            sign_in_form(console, peer, Some(why), StatusCode::UNAUTHORIZED)
        }
        Err(e) if e.class() == ErrorClass::Unauthenticated => sign_in_form(
            console,
            peer,
            Some("that token is not known (or not valid from this connection)"),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => sign_in_form(console, peer, Some(&e.to_string()), StatusCode::FORBIDDEN),
    }
}

async fn pending(console: &Console, signed: &Signed<'_>) -> Answer {
    match list(&console.app, vec![ApprovalState::Pending]).await {
        Ok(list) => web::html(StatusCode::OK, pages::pending(&list, signed)),
        Err(e) => failed(&e, signed),
    }
}

async fn history(console: &Console, signed: &Signed<'_>) -> Answer {
    let decided = vec![
        ApprovalState::Approved,
        ApprovalState::Rejected,
        ApprovalState::Consumed,
        ApprovalState::Expired,
    ];
    match list(&console.app, decided).await {
        Ok(mut list) => {
            list.sort_by_key(|a| std::cmp::Reverse(a.updated_micros));
            web::html(StatusCode::OK, pages::history(&list, signed))
        }
        Err(e) => failed(&e, signed),
    }
}

/// Approvals in `states`, as many as a page shows.
pub(crate) async fn list(
    app: &App,
    states: Vec<ApprovalState>,
) -> Result<Vec<arbiter_store::Approval>, ServiceError> {
    app.approvals()
        .list(ApprovalFilter {
            states,
            limit: PAGE_LIMIT,
            ..ApprovalFilter::default()
        })
        .await
}

async fn detail(
    console: &Console,
    signed: &Signed<'_>,
    id: &str,
    error: Option<(StatusCode, String)>,
) -> Answer {
    let a = match console.app.approvals().get(id).await {
        Ok(a) => a,
        Err(e) => return failed(&e, signed),
    };
    let refusal = console
        .app
        .vote_refusal(signed.caller, &a)
        .map(|e| e.to_string());
    let evidence = pages::Evidence {
        decision: decision_record(&console.app, &a.new.decision_id).await,
        max_lifetime: console.app.credentials().config().max_lifetime,
    };
    let (status, error) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    web::html(
        status,
        pages::detail(&a, &evidence, signed, refusal.as_deref(), error.as_deref()),
    )
}

/// The body of the audit record of decision `id` (each plugin's verdict, the
/// obligations), when the log is on and has it. A page without it still shows the
/// approval: the evidence is extra, and its absence is said on the page.
async fn decision_record(app: &App, id: &str) -> Option<serde_json::Value> {
    let log = app.audit()?.clone();
    let filter = arbiter_audit::Filter {
        decision_id: Some(id.to_string()),
        kind: Some(arbiter_audit::Kind::Decision),
        limit: 1,
        ..arbiter_audit::Filter::default()
    };
    let found = crate::audit_page::query(log, filter).await;
    let record = found.ok()?.into_iter().next()?;
    serde_json::from_str(record.record.body.get()).ok()
}

/// A vote through the same call as the gRPC API's `Decide`: counted and audited with
/// the session's identity, or refused (and that refusal audited) with the reason.
async fn vote(
    console: &Console,
    signed: &Signed<'_>,
    id: &str,
    decision: Option<&str>,
    comment: Option<String>,
) -> Answer {
    let approve = match decision {
        Some("approve") => true,
        Some("reject") => false,
        _ => {
            let e = (
                StatusCode::BAD_REQUEST,
                "choose Approve or Reject".to_string(),
            );
            return detail(console, signed, id, Some(e)).await;
        }
    };
    let Some(comment) = comment.filter(|c| !c.is_empty()) else {
        let e = (
            StatusCode::BAD_REQUEST,
            "a comment is required: say why".to_string(),
        );
        return detail(console, signed, id, Some(e)).await;
    };
    // Votes need the approver role, as the API's `Decide` (admins read only).
    if !signed.caller.has_any(&[Role::Approver]) {
        let e = ServiceError::MissingRole {
            caller: Some(signed.caller.id.clone()),
            needed: vec![Role::Approver],
        };
        return detail(
            console,
            signed,
            id,
            Some((StatusCode::FORBIDDEN, e.to_string())),
        )
        .await;
    }
    match console.app.vote(signed.caller, id, approve, comment).await {
        Ok(_) => web::see_other(&format!("/console/approvals/{id}")),
        Err(e) => {
            let status = status_of(&e);
            detail(console, signed, id, Some((status, e.to_string()))).await
        }
    }
}

pub(crate) fn status_of(e: &ServiceError) -> StatusCode {
    match e.class() {
        ErrorClass::InvalidArgument | ErrorClass::FailedPrecondition => StatusCode::BAD_REQUEST,
        ErrorClass::AlreadyExists => StatusCode::CONFLICT,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorClass::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A service error as a page; internals are logged, not shown.
pub(crate) fn failed(e: &ServiceError, signed: &Signed<'_>) -> Answer {
    let status = status_of(e);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %e, "console page failed");
        return refusal(
            status,
            "Unavailable",
            "the server cannot answer now: try again shortly",
            Some(signed),
        );
    }
    refusal(status, "Refused", &e.to_string(), Some(signed))
}
