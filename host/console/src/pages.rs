//! The console's pages, rendered on the server (maud escapes every value). No inline
//! script or style: the page's behaviour is `console.js`, its look `console.css`.

use arbiter_service::auth::Caller;
use arbiter_store::{Approval, ApprovalState};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value as Json;

use crate::view;

/// What the header of a signed-in page needs.
pub(crate) struct Signed<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) csrf: &'a str,
}

pub(crate) fn layout(title: &str, signed: Option<&Signed<'_>>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Arbiter console" }
                link rel="stylesheet" href="/console/console.css";
                script src="/console/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Arbiter" }
                    @if let Some(s) = signed {
                        nav aria-label="Console" {
                            a href="/console/approvals" { "Pending" }
                            a href="/console/history" { "History" }
                            @if s.caller.has_any(crate::ADMINS) {
                                a href="/console/audit" { "Audit" }
                                a href="/console/sets" { "Policy sets" }
                                a href="/console/measurements" { "Measurements" }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.who { (s.caller.id) " (" (roles(s.caller)) ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { h1 { (title) } (main) }
            }
        }
    }
}

fn roles(c: &Caller) -> String {
    c.roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sign-in form; `csrf` ties it to the browser that loaded it. `certificate` is
/// the identity the connection's client certificate shows, if it has one: it may sign
/// in with that instead of a token.
pub(crate) fn sign_in(csrf: &str, error: Option<&str>, certificate: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.card method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Arbiter token" }
                input id="token" name="token" type="password" autocomplete="off" required autofocus;
                p.hint { "An approver's token (`arbiter token create --role approver`). It stays on the server; the browser gets a session cookie." }
                button type="submit" { "Sign in" }
            }
            @if let Some(id) = certificate {
                form.card.certificate method="post" action="/console/sign-in" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="with" value="certificate";
                    p { "This connection presented a client certificate for " code { (id) } "." }
                    button type="submit" { "Sign in with this certificate" }
                }
            }
        },
    )
}

/// A page that only says something (a refusal, an error).
pub(crate) fn message(title: &str, text: &str, signed: Option<&Signed<'_>>) -> Markup {
    layout(
        title,
        signed,
        html! {
            p.error role="alert" { (text) }
            p { a href="/console/approvals" { "Pending approvals" } " · " a href="/console/sign-in" { "Sign in" } }
        },
    )
}

/// The pending approvals, updated live by `console.js` from `/console/events`.
pub(crate) fn pending(list: &[Approval], signed: &Signed<'_>) -> Markup {
    layout(
        "Pending approvals",
        Some(signed),
        html! {
            p #live.hint role="status" aria-live="polite" { "Updates live as actions are held and decided." }
            p #empty.hint hidden[!list.is_empty()] { "Nothing is waiting for approval." }
            ul #pending.cards data-events="/console/events" {
                @for a in list { (card(a)) }
            }
        },
    )
}

/// One pending approval as a card of the list (also sent over server-sent events).
pub(crate) fn card(a: &Approval) -> Markup {
    let r = &a.new.request;
    html! {
        li.card id={ "a-" (a.new.id) } {
            h2 { a href={ "/console/approvals/" (a.new.id) } { (view::text(r, &["action", "name"])) " on " (view::text(r, &["resource", "id"])) } }
            dl {
                dt { "Who" } dd { (principal(r)) }
                dt { "Privilege" } dd { (view::text(r, &["action", "privilege"])) }
                dt { "Purpose" } dd { (view::text(r, &["intent", "purpose"])) " " (view::text(r, &["intent", "ticket"])) }
                dt { "Approvals" } dd { (a.approvals()) " of " (a.new.approvers_required) }
                dt { "Time left" } dd { (countdown(a)) }
            }
        }
    }
}

fn principal(r: &Json) -> Markup {
    let chain: Vec<String> = r
        .get("delegation")
        .and_then(Json::as_array)
        .map(|d| d.iter().map(|p| view::text(p, &["id"])).collect())
        .unwrap_or_default();
    html! {
        (view::text(r, &["principal", "id"])) " (" (view::text(r, &["principal", "kind"])) ")"
        @if !chain.is_empty() { " for " (chain.join(" → ")) }
    }
}

fn countdown(a: &Approval) -> Markup {
    html! { time data-expires=(a.new.expires_micros) datetime=(view::iso(a.new.expires_micros)) { (view::iso(a.new.expires_micros)) } }
}

/// What the decision record adds to an approval: each plugin's verdict and the
/// obligations (the credential's lifetime limit), and the server's own limit.
pub(crate) struct Evidence {
    /// The body of the decision's audit record, when the log has it.
    pub(crate) decision: Option<Json>,
    /// The longest credential the server issues.
    pub(crate) max_lifetime: std::time::Duration,
}

/// Each plugin's verdict, from the decision record.
fn verdicts(e: &Evidence) -> Markup {
    let plugins = e
        .decision
        .as_ref()
        .and_then(|d| d.get("plugins"))
        .and_then(Json::as_array);
    let Some(plugins) = plugins else {
        return html! { p.hint { "The decision record is not in the audit log (the log is off, or the record was redacted away), so each plugin's verdict cannot be shown." } };
    };
    html! {
        div.scroll {
            table.verdicts {
                thead { tr { th scope="col" { "Plugin" } th scope="col" { "Verdict" } th scope="col" { "Reasons" } th scope="col" { "Time" } } }
                tbody {
                    @for p in plugins {
                        tr {
                            td { (view::text(p, &["name"])) }
                            td { span.state { (view::text(p, &["effect"])) } }
                            td {
                                @if let Some(codes) = p.get("reasons").and_then(Json::as_array) {
                                    @for c in codes { code { (view::text(c, &[])) } " " }
                                }
                                @if p.get("failure").is_some() {
                                    (view::text(p, &["failure"])) ": " (view::text(p, &["detail"]))
                                }
                            }
                            td { (view::text(p, &["elapsed_us"])) " µs" }
                        }
                    }
                }
            }
        }
    }
}

/// The credential a redemption may be handed, and how long it may live: the
/// policy's `max_credential_lifetime` obligation and the server's maximum.
fn credential(a: &Approval, e: &Evidence) -> Markup {
    let r = &a.new.request;
    let policy = e
        .decision
        .as_ref()
        .and_then(|d| d.pointer("/obligations/max_credential_lifetime"))
        .and_then(Json::as_u64);
    let server = e.max_lifetime.as_secs();
    let limit = policy.map_or(server, |p| p.min(server));
    html! {
        "If the enforcement point asks for one when it resubmits: a credential for "
        (view::text(r, &["principal", "id"])) " to " (view::text(r, &["action", "name"]))
        " on " (view::text(r, &["resource", "id"])) ", living at most " (lifetime(limit))
        @match policy {
            Some(p) => { " (the policy allows " (lifetime(p)) ", the server " (lifetime(server)) ")" }
            None => { " (the server's limit; the policy sets none)" }
        }
        ", revoked when task " code { (a.new.task_id) } " completes."
    }
}

fn lifetime(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One approval with everything an approver weighs, and the vote forms (disabled,
/// with the service's reason, when this caller may not vote).
pub(crate) fn detail(
    a: &Approval,
    evidence: &Evidence,
    signed: &Signed<'_>,
    refusal: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let r = &a.new.request;
    let title = format!(
        "{} on {}",
        view::text(r, &["action", "name"]),
        view::text(r, &["resource", "id"])
    );
    html! {
        (layout(&title, Some(signed), html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            section.card {
                h2 { "Request" }
                dl {
                    dt { "State" } dd { span.state { (a.state.as_str()) } }
                    dt { "Principal" } dd { (principal(r)) }
                    dt { "Action" } dd { (view::text(r, &["action", "name"])) }
                    dt { "Privilege" } dd { (view::text(r, &["action", "privilege"])) }
                    dt { "Resource" } dd { (view::text(r, &["resource", "id"])) " (" (view::text(r, &["resource", "kind"])) ")" (view::attributes(r.pointer("/resource/attributes"))) }
                    dt { "Purpose" } dd { (view::text(r, &["intent", "purpose"])) }
                    dt { "Ticket" } dd { (view::text(r, &["intent", "ticket"])) }
                    dt { "Justification" } dd { (view::text(r, &["intent", "justification"])) }
                    dt { "Task" } dd { (a.new.task_id) }
                    dt { "Context" } dd { (view::attributes(r.get("context"))) }
                    dt { "Policy set" } dd { (a.new.set.name) " " (a.new.set.version) }
                    dt { "Decision" } dd { code { (a.new.decision_id) } }
                    dt { "Credential" } dd { (credential(a, evidence)) }
                    dt { "Approvals" } dd { (a.approvals()) " of " (a.new.approvers_required) " needed" }
                    dt { "Time left" } dd { (countdown(a)) }
                }
            }
            section.card {
                h2 { "Why it was held" }
                ul.reasons {
                    @for reason in &a.new.reasons {
                        li {
                            code { (reason.code) }
                            p { (reason.caller_message) }
                            @if !reason.admin_message.is_empty() { p.admin { "For approvers: " (reason.admin_message) } }
                        }
                    }
                }
                h3 { "Each plugin's verdict" }
                (verdicts(evidence))
            }
            @if !a.votes.is_empty() {
                section.card {
                    h2 { "Votes" }
                    ul { @for v in &a.votes { li { (v.approver) ": " (if v.approve { "approve" } else { "reject" }) " — " (v.comment) } } }
                }
            }
            (vote_form(a, signed, refusal))
        }))
    }
}

fn vote_form(a: &Approval, signed: &Signed<'_>, refusal: Option<&str>) -> Markup {
    let disabled = refusal.is_some();
    html! {
        form.card.vote method="post" action={ "/console/approvals/" (a.new.id) "/vote" } {
            h2 { "Your decision" }
            @if let Some(why) = refusal { p #why-not.error role="note" { "You cannot vote: " (why) } }
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="comment" { "Comment (required)" }
            textarea id="comment" name="comment" rows="3" maxlength="4096" required disabled[disabled] aria-describedby=[refusal.map(|_| "why-not")] {}
            div.buttons {
                button.approve type="submit" name="decision" value="approve" disabled[disabled] { "Approve" }
                button.reject type="submit" name="decision" value="reject" disabled[disabled] { "Reject" }
            }
        }
    }
}

/// Decided approvals, newest first.
pub(crate) fn history(list: &[Approval], signed: &Signed<'_>) -> Markup {
    layout(
        "Decided approvals",
        Some(signed),
        html! {
            @if list.is_empty() { p.hint { "Nothing has been decided yet." } }
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Action" } th scope="col" { "Principal" } th scope="col" { "Outcome" } th scope="col" { "Votes" } th scope="col" { "Updated" } } }
                    tbody {
                        @for a in list {
                            tr {
                                td { a href={ "/console/approvals/" (a.new.id) } { (view::text(&a.new.request, &["action", "name"])) " on " (view::text(&a.new.request, &["resource", "id"])) } }
                                td { (view::text(&a.new.request, &["principal", "id"])) }
                                td { span.state { (outcome(a.state)) } }
                                td { @for v in &a.votes { div { (v.approver) ": " (if v.approve { "yes" } else { "no" }) " — " (v.comment) } } }
                                td { (view::iso(a.updated_micros)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn outcome(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Consumed => "approved, used",
        other => other.as_str(),
    }
}
