//! Asking Arbiter and acting on the answers: every evaluation must allow. A deny
//! refuses the message. A require-approval holds it: the gateway keeps the agent's
//! request open while a human decides (progress notifications when the agent gave a
//! progress token), then re-submits the identical request with the approval id, and
//! Arbiter decides again. In non-blocking mode the agent is answered at once with the
//! approval id and calls again later; the session remembers the approval.

use std::time::{Duration, Instant};

use arbiter_proto as pb;
use serde_json::{Value as Json, json};

use crate::gate::{Ask, Gateway, Refusal, Session};
use crate::jsonrpc;
use crate::pdp::PdpError;

/// How long one wait for an approval lasts before the agent hears progress again.
const POLL: Duration = Duration::from_secs(5);

fn reasons(answer: &pb::AuthorizeResponse) -> String {
    let messages: Vec<&str> = answer
        .reasons
        .iter()
        .map(|r| r.message.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    if messages.is_empty() {
        "denied by policy".into()
    } else {
        messages.join("; ")
    }
}

fn denial(answer: &pb::AuthorizeResponse) -> Refusal {
    Refusal {
        code: jsonrpc::DENIED,
        message: format!("Access denied: {}", reasons(answer)),
        data: Some(json!({
            "decision_id": answer.decision_id,
            "reasons": answer.reasons.iter().map(|r| json!({ "code": r.code, "message": r.message })).collect::<Vec<_>>(),
        })),
    }
}

/// Canonical JSON (keys sorted at every level), to recognise a call made again.
pub(crate) fn canonical(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Json::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Decides `asks`; on allow, the credential of the first (if one was issued).
pub(crate) async fn decide(
    gw: &Gateway,
    session: &Session,
    asks: Vec<Ask>,
    key: Option<&str>,
    progress_token: &Option<Json>,
    progress: &(dyn Fn(Json) + Send + Sync),
) -> Result<Option<String>, Refusal> {
    // A call made again in non-blocking mode: its held items are not asked again
    // (that would open new approvals); they are redeemed once approved.
    let remembered = key
        .and_then(|k| {
            session
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(k)
                .cloned()
        })
        .filter(|ids| ids.len() == asks.len());
    let retry = remembered.is_some();
    let remembered = remembered.unwrap_or_else(|| vec![String::new(); asks.len()]);
    let mut held: Vec<(usize, String)> = Vec::new();
    let mut answers: Vec<Option<pb::AuthorizeResponse>> = vec![None; asks.len()];
    let fresh: Vec<usize> = (0..asks.len())
        .filter(|i| remembered[*i].is_empty())
        .collect();
    let asked = futures::future::join_all(
        fresh
            .iter()
            .map(|i| gw.pdp.authorize(asks[*i].request.clone())),
    )
    .await;
    for (i, id) in remembered
        .iter()
        .enumerate()
        .filter(|(_, id)| !id.is_empty())
    {
        held.push((i, id.clone()));
    }
    for (i, answer) in fresh.into_iter().zip(asked) {
        let answer = answer?;
        if answer.decision == pb::Decision::Deny as i32 {
            forget(session, key);
            return Err(denial(&answer));
        }
        if answer.decision == pb::Decision::RequireApproval as i32 {
            held.push((i, answer.approval_id.clone()));
        }
        answers[i] = Some(answer);
    }
    if !held.is_empty() {
        if let Some(key) = key {
            if !(retry && all_approved(gw, &held).await?) {
                return not_waiting(gw, session, key, &held, asks.len()).await;
            }
        } else {
            wait_for(gw, &held, progress_token, progress).await?;
        }
        for (i, approval) in &held {
            let mut r = asks[*i].request.clone();
            r.approval_id.clone_from(approval);
            let answer = gw.pdp.authorize(r).await?;
            if answer.decision != pb::Decision::Allow as i32 {
                forget(session, key);
                return Err(denial(&answer));
            }
            answers[*i] = Some(answer);
        }
    }
    forget(session, key);
    Ok(answers
        .iter_mut()
        .flatten()
        .find_map(|a| a.credential.take())
        .map(|c| c.token))
}

/// Forgets the approvals a call made again was waiting for (non-blocking mode).
fn forget(session: &Session, key: Option<&str>) {
    if let Some(k) = key {
        session
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(k);
    }
}

/// Whether every held approval is approved now.
async fn all_approved(gw: &Gateway, held: &[(usize, String)]) -> Result<bool, Refusal> {
    for (_, id) in held {
        match gw.pdp.await_approval(id, Duration::ZERO).await {
            Ok(s) if s.state == pb::ApprovalState::Approved as i32 => {}
            Ok(_) | Err(PdpError::UnknownApproval(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Waits until every held approval is approved; a rejection, an expiry or the
/// timeout refuses the call.
async fn wait_for(
    gw: &Gateway,
    held: &[(usize, String)],
    token: &Option<Json>,
    progress: &(dyn Fn(Json) + Send + Sync),
) -> Result<(), Refusal> {
    let deadline = Instant::now() + gw.settings.approval_timeout;
    let mut step = 0;
    for (_, id) in held {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(t) = token {
                step += 1;
                progress(jsonrpc::progress(
                    t,
                    step,
                    &format!("held for human approval `{id}`: waiting for an approver"),
                ));
            }
            let status = gw.pdp.await_approval(id, left.min(POLL)).await?;
            match pb::ApprovalState::try_from(status.state) {
                Ok(pb::ApprovalState::Approved) => break,
                Ok(pb::ApprovalState::Pending) if left.is_zero() => {
                    return Err(Refusal {
                        code: jsonrpc::DENIED,
                        message: format!(
                            "Access denied: approval `{id}` was not given within {} s; it stays pending: call again with the same arguments once it is approved",
                            gw.settings.approval_timeout.as_secs()
                        ),
                        data: Some(json!({ "approval_id": id, "state": "pending" })),
                    });
                }
                Ok(pb::ApprovalState::Pending) => {}
                other => return Err(closed(id, other.ok())),
            }
        }
    }
    Ok(())
}

fn closed(id: &str, state: Option<pb::ApprovalState>) -> Refusal {
    let what = match state {
        Some(pb::ApprovalState::Rejected) => "rejected by a human approver",
        Some(pb::ApprovalState::Expired) => "expired before anyone approved it",
        _ => "closed without approval",
    };
    Refusal {
        code: jsonrpc::DENIED,
        message: format!("Access denied: approval `{id}` was {what}; the call was not made"),
        data: Some(
            json!({ "approval_id": id, "state": state.map_or("unknown", |s| s.as_str_name()) }),
        ),
    }
}

/// Non-blocking mode: the state of the held approvals, answered at once; the session
/// remembers them so the same call, made again, redeems them.
async fn not_waiting(
    gw: &Gateway,
    session: &Session,
    key: &str,
    held: &[(usize, String)],
    n: usize,
) -> Result<Option<String>, Refusal> {
    let mut ids = vec![String::new(); n];
    for (i, id) in held {
        let status = match gw.pdp.await_approval(id, Duration::ZERO).await {
            Ok(s) => s,
            Err(PdpError::UnknownApproval(_)) => {
                forget(session, Some(key));
                return Err(closed(id, None));
            }
            Err(e) => return Err(e.into()),
        };
        match pb::ApprovalState::try_from(status.state) {
            Ok(pb::ApprovalState::Pending | pb::ApprovalState::Approved) => ids[*i].clone_from(id),
            other => {
                forget(session, Some(key));
                return Err(closed(id, other.ok()));
            }
        }
    }
    session
        .waiting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_string(), ids.clone());
    let pending: Vec<&String> = ids.iter().filter(|i| !i.is_empty()).collect();
    Err(Refusal {
        code: jsonrpc::DENIED,
        message: format!(
            "Approval required: a human must approve {}; call again with the same arguments once approved",
            pending
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        data: Some(
            json!({ "approval_ids": pending, "retry": "call again with the same arguments once approved" }),
        ),
    })
}
