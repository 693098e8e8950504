//! What a webhook receives. Only what may be shown in a chat channel: who asked for
//! which action on which resource, the reason codes with their caller messages (never
//! the admin messages, which may name rules and data), who voted which way (not their
//! comments), the counts, the times and the link. Never a token, a credential, the
//! request's attributes or context. Fields the server redacts from its audit log
//! (`[audit] redact`) are redacted here too.

use arbiter_core::clock::rfc3339;
use arbiter_service::events::{ApprovalChange, ApprovalStep};
use arbiter_service::redaction::Redaction;
use arbiter_store::{Approval, ApprovalState};
use serde::Serialize;

use crate::settings::{Event, Format};

/// The longest value quoted in a `text` message, in characters; longer ones are cut
/// (the JSON fields keep them whole).
const MAX_QUOTED_CHARS: usize = 200;
/// Reasons quoted in a `text` message at most (the JSON lists them all).
const MAX_QUOTED_REASONS: usize = 5;

/// The event a change is, when it is one that webhooks are sent; votes that leave an
/// approval open and uses of an approval are not.
pub(crate) fn event_of(change: &ApprovalChange) -> Option<Event> {
    // A step another replica took is posted by that replica, once.
    if change.from_replica.is_some() {
        return None;
    }
    let state = change.approval.state;
    match change.step {
        ApprovalStep::Created => Some(Event::New),
        ApprovalStep::Vote
            if matches!(state, ApprovalState::Approved | ApprovalState::Rejected) =>
        {
            Some(Event::Decided)
        }
        ApprovalStep::Expired => Some(Event::Expired),
        ApprovalStep::Retracted => Some(Event::Retracted),
        ApprovalStep::Vote | ApprovalStep::Consumed => None,
    }
}

/// An approval as a notice shows it.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    id: &'a str,
    state: &'static str,
    principal: &'a str,
    delegation: Vec<&'a str>,
    action: &'a str,
    privilege: &'a str,
    resource: &'a str,
    resource_kind: &'a str,
    set: SetShown<'a>,
    reasons: Vec<ReasonShown<'a>>,
    approvals: u32,
    approvers_required: u32,
    votes: Vec<VoteShown<'a>>,
    created_at: String,
    expires_at: String,
}

#[derive(Debug, Serialize)]
struct SetShown<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Debug, Serialize)]
struct ReasonShown<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct VoteShown<'a> {
    approver: &'a str,
    approve: bool,
}

#[derive(Debug, Serialize)]
struct JsonBody<'a> {
    event: &'static str,
    text: &'a str,
    approval: &'a Shown<'a>,
    link: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct SlackBody<'a> {
    text: &'a str,
}

/// The body of `event` about `a` in `format`; `link` is the approval in the console.
pub(crate) fn body(
    format: Format,
    event: Event,
    a: &Approval,
    link: Option<&str>,
    redaction: &Redaction,
) -> Vec<u8> {
    let shown = shown(a, redaction);
    let text = text(event, &shown, link);
    // Serialising plain structs of strings and numbers cannot fail.
    match format {
        Format::Slack => serde_json::to_vec(&SlackBody { text: &text }),
        Format::Json => serde_json::to_vec(&JsonBody {
            event: event.as_str(),
            text: &text,
            approval: &shown,
            link,
        }),
    }
    .unwrap_or_default()
}

fn shown<'a>(a: &'a Approval, redaction: &Redaction) -> Shown<'a> {
    let request = &a.new.request;
    let field = |path: &str, value: &'a serde_json::Value| {
        redaction.shown(path, value.as_str().unwrap_or(""))
    };
    Shown {
        id: &a.new.id,
        state: a.state.as_str(),
        principal: redaction.shown("principal.id", &a.new.principal),
        delegation: a
            .new
            .delegation
            .iter()
            .map(|d| redaction.shown("delegation.id", d))
            .collect(),
        action: field("action.name", &request["action"]["name"]),
        privilege: field("action.privilege", &request["action"]["privilege"]),
        resource: field("resource.id", &request["resource"]["id"]),
        resource_kind: field("resource.kind", &request["resource"]["kind"]),
        set: SetShown {
            name: &a.new.set.name,
            version: &a.new.set.version,
        },
        reasons: a
            .new
            .reasons
            .iter()
            .map(|r| ReasonShown {
                code: &r.code,
                message: &r.caller_message,
            })
            .collect(),
        approvals: a.approvals(),
        approvers_required: a.new.approvers_required,
        votes: a
            .votes
            .iter()
            .map(|v| VoteShown {
                approver: &v.approver,
                approve: v.approve,
            })
            .collect(),
        created_at: rfc3339(a.new.created_micros),
        expires_at: rfc3339(a.new.expires_micros),
    }
}

/// The one-message summary (Slack `mrkdwn`): every value from a request is quoted
/// and escaped, so that it cannot mention a channel, forge a link or add lines.
fn text(event: Event, s: &Shown<'_>, link: Option<&str>) -> String {
    let who = match s.delegation.as_slice() {
        [] => quote(s.principal),
        chain => format!(
            "{} (for {})",
            quote(s.principal),
            chain
                .iter()
                .map(|d| quote(d))
                .collect::<Vec<_>>()
                .join(" → ")
        ),
    };
    let what = format!(
        "{} ({}) on {}",
        quote(s.action),
        escape(s.privilege),
        quote(s.resource)
    );
    let voters = |approve: bool| {
        s.votes
            .iter()
            .filter(|v| v.approve == approve)
            .map(|v| escape(v.approver))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = match (event, s.state) {
        (Event::New, _) => format!("*Approval needed*: {who} asks to {what}"),
        (Event::Decided, "rejected") => {
            format!("*Rejected* by {}: {who} may not {what}", voters(false))
        }
        (Event::Decided, _) => format!("*Approved* by {}: {who} may {what}, once", voters(true)),
        (Event::Expired, _) => {
            format!("*Expired*: the approval for {who} to {what} lapsed unused")
        }
        (Event::Retracted, _) => format!(
            "*Vote retracted*: a vote on {who} to {what} could not be recorded in the audit log and does not count; the approval is {} again",
            s.state
        ),
    };
    if event == Event::New {
        for r in s.reasons.iter().take(MAX_QUOTED_REASONS) {
            out.push_str(&format!("\n• {}: {}", quote(r.code), escape(r.message)));
        }
        out.push_str(&format!(
            "\nNeeds {} approver{} · expires {} · policy set {} {}",
            s.approvers_required,
            if s.approvers_required == 1 { "" } else { "s" },
            s.expires_at,
            quote(s.set.name),
            escape(s.set.version),
        ));
    }
    match link {
        Some(url) => out.push_str(&format!(
            "\n<{}|Open approval {}>",
            url.replace(['<', '>', '|'], ""),
            escape(s.id)
        )),
        None => out.push_str(&format!("\nApproval {}", quote(s.id))),
    }
    out
}

/// `value` as inline code.
fn quote(value: &str) -> String {
    format!("`{}`", escape(value))
}

/// `value` safe inside a Slack message: cut to [`MAX_QUOTED_CHARS`], control
/// characters (new lines) as spaces, backticks as quotes (they would end the code
/// span), and `&`, `<`, `>` as entities (Slack's escaping: no `<!channel>`, no
/// `<https://evil|innocent text>`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_QUOTED_CHARS));
    for (i, c) in value.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
