use arbiter_core::{Reason, SetIdentity};
use arbiter_store::{NewApproval, Vote};
use serde_json::{Value, json};

use super::*;

fn approval(state: ApprovalState, votes: Vec<Vote>) -> Approval {
    Approval {
        new: NewApproval {
            id: "0190-abc".into(),
            request_digest: "d".repeat(64),
            request: json!({
                "principal": {"id": "spiffe://acme.org/agent/iam-bot", "kind": "agent", "attributes": {"email": "bot@acme.org"}},
                "action": {"name": "iam:AttachRolePolicy", "privilege": "identity-change"},
                "resource": {"id": "arn:aws:iam::1:role/deploy", "kind": "iam_role"},
                "intent": {"justification": "the secret plan"},
                "context": {"source_ip": "10.0.0.5", "api_token": "tok-123"}
            }),
            principal: "spiffe://acme.org/agent/iam-bot".into(),
            delegation: vec!["bob@acme.org".into()],
            task_id: "task-1".into(),
            set: SetIdentity {
                name: "reference".into(),
                version: "1.0.0".into(),
                digest: "e".repeat(64),
            },
            decision_id: "dec-1".into(),
            reasons: vec![Reason::new(
                "identity-change-needs-approval",
                "a human must approve identity changes",
                "rule G1 matched role deploy in table prod-roles",
            )],
            approvers_required: 1,
            created_micros: 1_700_000_000_000_000,
            expires_micros: 1_700_003_600_000_000,
            held_by: "gateway".into(),
        },
        state,
        votes,
        consumed_micros: None,
        consumed_by: None,
        updated_micros: 1_700_000_000_000_000,
    }
}

fn vote(approver: &str, approve: bool) -> Vote {
    Vote {
        approver: approver.into(),
        approve,
        comment: "the ticket says so, password hunter2".into(),
        at_micros: 1_700_000_100_000_000,
    }
}

fn json_body(event: Event, a: &Approval, redaction: &Redaction) -> Value {
    let link = "https://arbiter.example/console/approvals/0190-abc";
    serde_json::from_slice(&body(Format::Json, event, a, Some(link), redaction)).expect("json")
}

#[test]
fn the_json_body_carries_the_caller_safe_fields_and_the_link() {
    let a = approval(ApprovalState::Pending, vec![]);
    let v = json_body(Event::New, &a, &Redaction::none());
    assert_eq!(
        v,
        json!({
            "event": "new",
            "text": v["text"],
            "approval": {
                "id": "0190-abc",
                "state": "pending",
                "principal": "spiffe://acme.org/agent/iam-bot",
                "delegation": ["bob@acme.org"],
                "action": "iam:AttachRolePolicy",
                "privilege": "identity-change",
                "resource": "arn:aws:iam::1:role/deploy",
                "resource_kind": "iam_role",
                "set": {"name": "reference", "version": "1.0.0"},
                "reasons": [{"code": "identity-change-needs-approval", "message": "a human must approve identity changes"}],
                "approvals": 0,
                "approvers_required": 1,
                "votes": [],
                "created_at": "2023-11-14T22:13:20.000000Z",
                "expires_at": "2023-11-14T23:13:20.000000Z"
            },
            "link": "https://arbiter.example/console/approvals/0190-abc"
        })
    );
}

#[test]
fn no_body_carries_admin_messages_attributes_context_or_comments() {
    let decided = approval(ApprovalState::Approved, vec![vote("alice@acme.org", true)]);
    for format in [Format::Json, Format::Slack] {
        for event in Event::ALL {
            let text = String::from_utf8(body(format, event, &decided, None, &Redaction::none()))
                .expect("utf-8");
            for secret in [
                "rule G1",
                "bot@acme.org",
                "the secret plan",
                "10.0.0.5",
                "tok-123",
                "hunter2",
                "d".repeat(64).as_str(),
            ] {
                assert!(!text.contains(secret), "{format:?} {event:?}: {text}");
            }
        }
    }
}

#[test]
fn the_slack_body_is_only_text_with_the_link() {
    let a = approval(ApprovalState::Pending, vec![]);
    let link = "https://arbiter.example/console/approvals/0190-abc";
    let v: Value = serde_json::from_slice(&body(
        Format::Slack,
        Event::New,
        &a,
        Some(link),
        &Redaction::none(),
    ))
    .expect("json");
    let text = v["text"].as_str().expect("text");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    assert_eq!(
        text,
        "*Approval needed*: `spiffe://acme.org/agent/iam-bot` (for `bob@acme.org`) asks to `iam:AttachRolePolicy` (identity-change) on `arn:aws:iam::1:role/deploy`\n\
         • `identity-change-needs-approval`: a human must approve identity changes\n\
         Needs 1 approver · expires 2023-11-14T23:13:20.000000Z · policy set `reference` 1.0.0\n\
         <https://arbiter.example/console/approvals/0190-abc|Open approval 0190-abc>"
    );
}

#[test]
fn decisions_name_who_voted_and_expiry_says_unused() {
    let approved = approval(
        ApprovalState::Approved,
        vec![vote("alice@acme.org", true), vote("carol@acme.org", true)],
    );
    let v = json_body(Event::Decided, &approved, &Redaction::none());
    let text = v["text"].as_str().expect("text");
    assert!(
        text.starts_with("*Approved* by alice@acme.org, carol@acme.org:"),
        "{text}"
    );
    assert_eq!(
        v["approval"]["votes"][1],
        json!({"approver": "carol@acme.org", "approve": true})
    );
    let rejected = approval(ApprovalState::Rejected, vec![vote("carol@acme.org", false)]);
    let text = json_body(Event::Decided, &rejected, &Redaction::none())["text"].clone();
    assert!(
        text.as_str()
            .expect("text")
            .starts_with("*Rejected* by carol@acme.org:"),
        "{text}"
    );
    let expired = approval(ApprovalState::Expired, vec![]);
    let text = json_body(Event::Expired, &expired, &Redaction::none())["text"].clone();
    assert!(
        text.as_str().expect("text").contains("lapsed unused"),
        "{text}"
    );
}

#[test]
fn values_from_a_request_cannot_mention_a_channel_forge_a_link_or_add_lines() {
    let mut a = approval(ApprovalState::Pending, vec![]);
    a.new.principal = "<!channel> `x`\n*Approved* <https://evil.example|click> & go".into();
    let message = text(Event::New, &shown(&a, &Redaction::none()), None);
    let first = message.lines().next().expect("a line");
    assert!(
        first.contains(
            "`&lt;!channel&gt; 'x' *Approved* &lt;https://evil.example|click&gt; &amp; go`"
        ),
        "{message}"
    );
    assert!(
        !message.contains("<!channel>") && !message.contains("<https://evil"),
        "{message}"
    );
    a.new.principal = "x".repeat(1000);
    let message = text(Event::New, &shown(&a, &Redaction::none()), None);
    let cut = format!("{}…`", "x".repeat(MAX_QUOTED_CHARS));
    assert!(message.contains(&cut), "{message}");
}

#[test]
fn redacted_fields_are_redacted_in_notices_too() {
    let a = approval(ApprovalState::Pending, vec![]);
    let redaction = Redaction::new(vec!["principal".into(), "resource.id".into()], [7; 32]);
    let v = json_body(Event::New, &a, &redaction);
    assert_eq!(v["approval"]["principal"], "[redacted]");
    assert_eq!(v["approval"]["resource"], "[redacted]");
    assert_eq!(v["approval"]["action"], "iam:AttachRolePolicy");
    let text = v["text"].as_str().expect("text");
    assert!(
        !text.contains("iam-bot") && !text.contains("role/deploy"),
        "{text}"
    );
}

#[test]
fn only_new_deciding_expiring_and_retracting_changes_are_events() {
    let change = |step, state| ApprovalChange {
        step,
        approval: approval(state, vec![]),
        from_replica: None,
    };
    let cases = [
        (
            ApprovalStep::Created,
            ApprovalState::Pending,
            Some(Event::New),
        ),
        (ApprovalStep::Vote, ApprovalState::Pending, None),
        (
            ApprovalStep::Vote,
            ApprovalState::Approved,
            Some(Event::Decided),
        ),
        (
            ApprovalStep::Vote,
            ApprovalState::Rejected,
            Some(Event::Decided),
        ),
        (ApprovalStep::Consumed, ApprovalState::Consumed, None),
        (
            ApprovalStep::Expired,
            ApprovalState::Expired,
            Some(Event::Expired),
        ),
        (
            ApprovalStep::Retracted,
            ApprovalState::Pending,
            Some(Event::Retracted),
        ),
    ];
    for (step, state, expected) in cases {
        assert_eq!(
            event_of(&change(step, state)),
            expected,
            "{step:?} {state:?}"
        );
    }
}
