//! The rules, in the order they apply:
//!
//! 1. No `workspace` in the context: deny (`no-workspace`). A malformed input anywhere
//!    (a workspace or scratch folder that is not an absolute, normalised path string, a
//!    missing `mcp_method`, a `probe` that is not a boolean, a path that is not absolute
//!    and normalised): deny (`bad-request`).
//! 2. MCP methods other than `tools/call`: read allowed (`mcp-read`), anything else
//!    needs a human approval (`mcp-method-needs-approval`).
//! 3. `tools/call` of an admin, identity-change or secret-access tool: deny
//!    (`privilege-not-allowed`).
//! 4. A tool acting on a path (any resource kind but `tool` and `mcp_server`): outside
//!    the workspace, deny (`outside-workspace`); a secrets file, deny (`secret-file`),
//!    even for reads; a read, allow (`workspace-read`); a write inside the scratch
//!    folder, allow (`scratch-write`); any other write, approval (`write-needs-approval`).
//! 5. A tool naming no resource (`tool`, `mcp_server`), and a probe (a request with an
//!    empty `resource.id`, asking whether the tool could ever be allowed): read allowed
//!    (`tool-read`), write needs approval (`tool-write-needs-approval`).
//! 6. Allowed writes carry a credential lifetime of at most 5 minutes; held actions ask
//!    for one approver. A held action the host has verified a human approval for is
//!    allowed (`human-approved`), with the same lifetime.

use std::borrow::Cow;

use arbiter_policy::{
    AttributesExt, Effect, Obligation, Privilege, Reason, Request, Value, Verdict,
};

use crate::paths::{is_inside, is_normalised_absolute, secret_rule};

/// Upper bound on a credential issued for a write: one tool call, plus the time to
/// retry it, not a working session.
pub const WRITE_CREDENTIAL_SECS: u64 = 5 * 60;

/// Humans who approve a held action: one, the person the agent works for or a
/// colleague. The example keeps the approval loop short.
pub const APPROVERS_REQUIRED: u32 = 1;

/// The MCP method whose requests name a tool and what it acts on.
const TOOLS_CALL: &str = "tools/call";

/// Resource kinds of tool calls that name no path.
const PATHLESS_KINDS: [&str; 2] = ["tool", "mcp_server"];

/// Longest piece of request input quoted in a message: messages have a size limit
/// (`max_message_bytes`, 4,096 by default) and a path may be up to 1,024 bytes, a
/// context string 4,096.
const QUOTED_BYTES: usize = 200;

/// The context the gateway sends with every request.
struct Session<'a> {
    workspace: &'a str,
    /// Given and inside the workspace; a scratch folder elsewhere grants nothing.
    scratch: Option<&'a str>,
    method: &'a str,
}

/// Decides one request.
pub fn decide(r: &Request) -> Verdict {
    match session(r) {
        Ok(session) if session.method == TOOLS_CALL => tool_call(r, &session),
        Ok(session) => other_method(r, &session),
        Err(deny) => deny,
    }
}

/// Reads and checks what every request must carry (rule 1).
fn session(r: &Request) -> Result<Session<'_>, Verdict> {
    let workspace = match r.context.get("workspace") {
        None => {
            return Err(Verdict::deny(reason(
                "no-workspace",
                "the MCP gateway sent no workspace, so this policy allows nothing: ask the operator to start the gateway with `--workspace DIR`",
                "the request's context has no `workspace` attribute".to_string(),
            )));
        }
        Some(v) => normalised(v).ok_or_else(|| {
            bad_request(
                "`workspace` in the context is not an absolute, normalised path string",
                Some(v),
            )
        })?,
    };
    let scratch = match r.context.get("scratch") {
        None => None,
        Some(v) => Some(normalised(v).ok_or_else(|| {
            bad_request(
                "`scratch` in the context is not an absolute, normalised path string",
                Some(v),
            )
        })?),
    };
    let method = r
        .action
        .attributes
        .str("mcp_method")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            bad_request(
                "the action has no string attribute `mcp_method`",
                r.action.attributes.get("mcp_method"),
            )
        })?;
    let probe = r.action.attributes.get("probe");
    if probe.is_some_and(|p| !matches!(p, Value::Boolean(_))) {
        return Err(bad_request(
            "the action's `probe` attribute is not a boolean",
            probe,
        ));
    }
    Ok(Session {
        workspace,
        scratch: scratch.filter(|s| is_inside(s, workspace)),
        method,
    })
}

/// A string value holding an absolute, normalised path.
fn normalised(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) if is_normalised_absolute(s) => Some(s),
        _ => None,
    }
}

/// Rule 2: MCP methods other than `tools/call`.
fn other_method(r: &Request, s: &Session<'_>) -> Verdict {
    let method = quoted(s.method);
    if r.action.privilege == Privilege::Read {
        return Verdict::allow_because(reason(
            "mcp-read",
            &format!("`{method}` only reads and is allowed"),
            format!("method `{method}` with privilege read"),
        ));
    }
    held(
        r,
        "mcp-method-needs-approval",
        &format!(
            "`{method}` changes state on the MCP server and needs a human approval: wait until it is approved, then retry the same request"
        ),
        format!(
            "method `{method}` with privilege {}",
            privilege(r.action.privilege)
        ),
    )
}

/// Rules 3 to 5: `tools/call`.
fn tool_call(r: &Request, s: &Session<'_>) -> Verdict {
    let tool = quoted(&r.action.name);
    let forbidden = match r.action.privilege {
        Privilege::Read | Privilege::Write => None,
        Privilege::Admin => Some("an administration"),
        Privilege::IdentityChange => Some("an identity-changing"),
        Privilege::SecretAccess => Some("a secret-access"),
    };
    if let Some(kind) = forbidden {
        return Verdict::deny(reason(
            "privilege-not-allowed",
            &format!(
                "`{tool}` is {kind} tool, which agents may not use under this policy: do the task with tools that read or write files in the workspace, or ask a human to do this step"
            ),
            format!(
                "the gateway's catalog gives tool `{tool}` privilege {} (server `{}`, agent `{}`); rule 3 denies admin, identity-change and secret-access tools",
                privilege(r.action.privilege),
                context_str(r, "mcp_server"),
                context_str(r, "agent"),
            ),
        ));
    }
    // An empty id is a probe: could this tool ever be allowed? Only the tool-level rule
    // answers it. A non-empty id is judged by its path even if `probe` is set, which
    // is never more permissive.
    if PATHLESS_KINDS.contains(&r.resource.kind.as_str()) || r.resource.id.is_empty() {
        return tool_level(r, &tool);
    }
    path_rules(r, s, &tool)
}

/// Rule 5: a tool that names no resource, or a probe.
fn tool_level(r: &Request, tool: &str) -> Verdict {
    let probe = if r.resource.id.is_empty() {
        " (probe)"
    } else {
        ""
    };
    if r.action.privilege == Privilege::Read {
        return Verdict::allow_because(reason(
            "tool-read",
            &format!("`{tool}` only reads and is allowed"),
            format!("tool `{tool}` with privilege read{probe}"),
        ));
    }
    held(
        r,
        "tool-write-needs-approval",
        &format!(
            "`{tool}` makes changes and needs a human approval: wait until it is approved, then retry the same call"
        ),
        format!("tool `{tool}` with privilege write{probe}"),
    )
}

/// Rule 4: a tool acting on a path.
fn path_rules(r: &Request, s: &Session<'_>, tool: &str) -> Verdict {
    let path = r.resource.id.as_str();
    if !is_normalised_absolute(path) {
        return bad_request(
            "`resource.id` is not an absolute, normalised path",
            Some(&Value::Str(path.to_string())),
        );
    }
    let (shown, workspace) = (quoted(path), quoted(s.workspace));
    if !is_inside(path, s.workspace) {
        return Verdict::deny(reason(
            "outside-workspace",
            &format!(
                "`{shown}` is outside your workspace `{workspace}`: work only on files inside the workspace"
            ),
            format!("tool `{tool}` on `{shown}`, outside workspace `{workspace}`"),
        ));
    }
    if let Some(rule) = secret_rule(path) {
        return Verdict::deny(reason(
            "secret-file",
            &format!(
                "`{shown}` is a secrets file (keys, credentials, .env) and agents may never read or write one: leave it alone, and ask a human if the task needs a value from it"
            ),
            format!(
                "tool `{tool}` on `{shown}`: a secrets path because {rule} (workspace `{workspace}`)"
            ),
        ));
    }
    if r.action.privilege == Privilege::Read {
        return Verdict::allow_because(reason(
            "workspace-read",
            &format!("reading `{shown}` inside your workspace is allowed"),
            format!("tool `{tool}` reads `{shown}` in workspace `{workspace}`"),
        ));
    }
    if let Some(scratch) = s.scratch.filter(|scratch| is_inside(path, scratch)) {
        let scratch = quoted(scratch);
        return Verdict::allow_because(reason(
            "scratch-write",
            &format!("writing inside the scratch folder `{scratch}` is allowed"),
            format!("tool `{tool}` writes `{shown}` in scratch folder `{scratch}`"),
        ))
        .with(Obligation::MaxCredentialLifetime(WRITE_CREDENTIAL_SECS));
    }
    let (instead, scratch) = match (s.scratch, r.context.str("scratch")) {
        (Some(scratch), _) => (
            format!(
                ", or write inside the scratch folder `{}` instead",
                quoted(scratch)
            ),
            "the path is not under it".to_string(),
        ),
        (None, None) => (String::new(), "none given".to_string()),
        (None, Some(given)) => (
            String::new(),
            format!(
                "`{}` is outside the workspace, so it grants nothing",
                quoted(given)
            ),
        ),
    };
    held(
        r,
        "write-needs-approval",
        &format!(
            "writing `{shown}` needs a human approval: wait until it is approved, then retry the same call{instead}"
        ),
        format!(
            "tool `{tool}` writes `{shown}` in workspace `{workspace}`, outside the scratch folder ({scratch})"
        ),
    )
}

/// A held action: approval needed, unless the host verified one for exactly this
/// request (the re-submission after a human approved it).
fn held(r: &Request, code: &str, caller: &str, admin: String) -> Verdict {
    if r.approval_verified {
        return Verdict::allow_because(reason(
            "human-approved",
            "a human approved this action: it may proceed, once",
            format!("approved; held as {code}: {admin}"),
        ))
        .with(Obligation::MaxCredentialLifetime(WRITE_CREDENTIAL_SECS));
    }
    Verdict::with_reasons(Effect::RequireApproval, vec![reason(code, caller, admin)])
        .with(Obligation::ApproversRequired(APPROVERS_REQUIRED))
        .with(Obligation::MaxCredentialLifetime(WRITE_CREDENTIAL_SECS))
}

/// Deny for malformed input: never guess what a broken request meant. The value sent,
/// if any, goes to the admin message only.
fn bad_request(what: &str, given: Option<&Value>) -> Verdict {
    let given = match given {
        None => "missing".to_string(),
        Some(Value::Str(s)) => format!("got `{}`", quoted(s)),
        Some(Value::Int(i)) => format!("got the integer {i}"),
        Some(Value::Float(f)) => format!("got the float {f}"),
        Some(Value::Boolean(b)) => format!("got the boolean {b}"),
        Some(Value::Strings(l)) => format!("got a list of {} strings", l.len()),
    };
    Verdict::deny(reason(
        "bad-request",
        &format!(
            "the MCP gateway sent a malformed request ({what}), so it is denied: report this to the operator; retrying will not help"
        ),
        format!("{what}: {given}"),
    ))
}

fn reason(code: &str, caller: &str, admin: String) -> Reason {
    Reason::new(code, caller).admin(format!("mcp-example: {admin}"))
}

/// A context string for admin messages, `-` when missing, shortened.
fn context_str<'a>(r: &'a Request, name: &str) -> Cow<'a, str> {
    r.context.str(name).map_or(Cow::Borrowed("-"), quoted)
}

/// `s` for a message: cut to [`QUOTED_BYTES`] on a character boundary, marked `...`
/// when cut.
fn quoted(s: &str) -> Cow<'_, str> {
    if s.len() <= QUOTED_BYTES {
        return Cow::Borrowed(s);
    }
    let mut end = QUOTED_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &s[..end]))
}

fn privilege(p: Privilege) -> &'static str {
    match p {
        Privilege::Read => "read",
        Privilege::Write => "write",
        Privilege::Admin => "admin",
        Privilege::IdentityChange => "identity-change",
        Privilege::SecretAccess => "secret-access",
    }
}

#[cfg(test)]
mod tests;
