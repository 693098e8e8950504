use super::*;
use crate::idempotency::{Idempotency, KEEP_SECS};

#[test]
fn an_idempotency_key_binds_one_body() {
    let seen = Idempotency::default();
    let (a, b) = (json!({"x": 1, "y": 2}), json!({"x": 2}));
    assert!(seen.claim("pep", "k1", &a, "t1", 100).is_ok());
    // Same body, member order aside: the same request.
    let reordered: Json = serde_json::from_str(r#"{"y": 2, "x": 1}"#).unwrap_or_default();
    assert!(seen.claim("pep", "k1", &reordered, "t1", 101).is_ok());
    assert!(seen.claim("pep", "k1", &b, "t1", 102).is_err());
    // Keys are per enforcement identity.
    assert!(seen.claim("other", "k1", &b, "t2", 103).is_ok());
    // Forgotten after the retention window.
    assert!(
        seen.claim("pep", "k1", &b, "t3", 100 + KEEP_SECS + 1)
            .is_ok()
    );
}

#[test]
fn a_presented_approval_leaves_the_request() {
    let v = json!({"subject": {}, "context": {"approval": {"id": "a-1"}, "hour": 3}});
    let (rest, id) = split_approval(&v).unwrap_or((Cow::Owned(Json::Null), None));
    assert_eq!(id.as_deref(), Some("a-1"));
    assert_eq!(rest["context"], json!({"hour": 3}));
    let bad = json!({"context": {"approval": {"id": 7}}});
    assert_eq!(
        split_approval(&bad).map(|_| ()).unwrap_err().field,
        "context.approval.id"
    );
}

#[test]
fn refusals_offer_a_request_only_with_a_fresh_denial() {
    let mut held = json!({"decision": false, "context": {"outcome": "require-approval", "access_request": {}}});
    Refusal::of_state(ApprovalState::Consumed).mark(&mut held);
    assert_eq!(held["context"]["next_action"], "request");
    assert_eq!(held["context"]["reason"], "approval_expired");
    let mut denied = json!({"decision": false, "context": {"outcome": "deny"}});
    Refusal::of_state(ApprovalState::Expired).mark(&mut denied);
    assert_eq!(denied["context"]["next_action"], "none");
    let mut allowed = json!({"decision": true, "context": {"outcome": "allow"}});
    Refusal::of_state(ApprovalState::Expired).mark(&mut allowed);
    assert!(allowed["context"].get("reason").is_none());
}
