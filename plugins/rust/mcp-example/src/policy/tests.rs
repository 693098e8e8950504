use arbiter_policy::{
    Action, Attribute, Effect, Intent, Obligation, Principal, PrincipalKind, Privilege, Request,
    Resource, Value, Verdict,
};

use super::*;

const READ: Privilege = Privilege::Read;
const WRITE: Privilege = Privilege::Write;

fn attr(name: &str, value: Value) -> Attribute {
    Attribute {
        name: name.to_string(),
        value,
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// A request as the gateway sends it, workspace `/ws`, scratch `/ws/scratch`.
fn request(method: &str, name: &str, privilege: Privilege, kind: &str, id: &str) -> Request {
    let mut action = vec![attr("mcp_method", s(method))];
    if method == TOOLS_CALL {
        action.push(attr("tool", s(name)));
    }
    Request {
        principal: Principal {
            id: "agent:claude".to_string(),
            kind: PrincipalKind::Agent,
            attributes: Vec::new(),
        },
        delegation: vec![Principal {
            id: "alice@example.com".to_string(),
            kind: PrincipalKind::Human,
            attributes: Vec::new(),
        }],
        action: Action {
            name: name.to_string(),
            privilege,
            attributes: action,
        },
        resource: Resource {
            id: id.to_string(),
            kind: kind.to_string(),
            attributes: Vec::new(),
        },
        intent: Intent {
            purpose: String::new(),
            task_id: String::new(),
            ticket: String::new(),
            justification: String::new(),
        },
        context: vec![
            attr("workspace", s("/ws")),
            attr("scratch", s("/ws/scratch")),
            attr("agent", s("claude")),
            attr("mcp_server", s("filesystem")),
        ],
        approval_verified: false,
    }
}

/// A `tools/call` on a file; `read_text_file` for reads, `write_file` for writes.
fn file(privilege: Privilege, path: &str) -> Request {
    let tool = if privilege == READ {
        "read_text_file"
    } else {
        "write_file"
    };
    request(TOOLS_CALL, tool, privilege, "file", path)
}

/// Sets (or with `None` removes) a context attribute.
fn context(mut r: Request, name: &str, value: Option<Value>) -> Request {
    r.context.retain(|a| a.name != name);
    if let Some(v) = value {
        r.context.push(attr(name, v));
    }
    r
}

fn approved(mut r: Request) -> Request {
    r.approval_verified = true;
    r
}

/// The effect and the reason codes.
fn decided(r: &Request) -> (Effect, Vec<String>) {
    let v = decide(r);
    assert_well_formed(&v);
    (v.effect, v.reasons.iter().map(|r| r.code.clone()).collect())
}

fn is(effect: Effect, code: &str) -> (Effect, Vec<String>) {
    (effect, vec![code.to_string()])
}

/// One reason with both messages, within the host's default message limit; a deny
/// carries no obligations.
fn assert_well_formed(v: &Verdict) {
    assert_eq!(v.reasons.len(), 1, "{v:?}");
    for r in &v.reasons {
        assert!(!r.caller_message.is_empty() && !r.admin_message.is_empty());
        assert!(r.caller_message.len() <= 4096 && r.admin_message.len() <= 4096);
    }
    if v.effect == Effect::Deny {
        assert!(v.obligations.is_empty(), "{v:?}");
    }
}

/// The obligations, readable (the bindings' `Obligation` has no `PartialEq`).
fn obligations(r: &Request) -> Vec<String> {
    decide(r)
        .obligations
        .iter()
        .map(|o| match o {
            Obligation::ApproversRequired(n) => format!("approvers {n}"),
            Obligation::MaxCredentialLifetime(s) => format!("lifetime {s}"),
        })
        .collect()
}

/// Of a held action: one approver, a credential of at most 5 minutes once approved.
const HELD: [&str; 2] = ["approvers 1", "lifetime 300"];

/// Of an allowed write.
const WRITE_ALLOWED: [&str; 1] = ["lifetime 300"];

// Rule 1.

#[test]
fn without_a_workspace_everything_is_denied() {
    for r in [
        file(READ, "/ws/a.txt"),
        request("initialize", "initialize", READ, "mcp_server", "filesystem"),
        request(TOOLS_CALL, "read_text_file", READ, "file", ""),
    ] {
        let r = context(r, "workspace", None);
        assert_eq!(decided(&r), is(Effect::Deny, "no-workspace"));
        assert_eq!(decided(&approved(r)), is(Effect::Deny, "no-workspace"));
    }
}

#[test]
fn a_workspace_that_is_not_an_absolute_normalised_string_is_a_bad_request() {
    for bad in [
        Value::Int(1),
        Value::Boolean(true),
        Value::Strings(vec!["/ws".to_string()]),
        s(""),
        s("ws"),
        s("/ws/"),
        s("/ws/../etc"),
        s("/ws/./a"),
        s("//ws"),
    ] {
        let r = context(file(READ, "/ws/a.txt"), "workspace", Some(bad.clone()));
        assert_eq!(decided(&r), is(Effect::Deny, "bad-request"), "{bad:?}");
    }
}

#[test]
fn a_scratch_folder_that_is_not_an_absolute_normalised_string_is_a_bad_request() {
    for bad in [Value::Int(1), s("scratch"), s("/ws/scratch/")] {
        let r = context(file(READ, "/ws/a.txt"), "scratch", Some(bad.clone()));
        assert_eq!(decided(&r), is(Effect::Deny, "bad-request"), "{bad:?}");
    }
}

#[test]
fn a_missing_method_or_a_probe_flag_of_another_type_is_a_bad_request() {
    let mut r = file(READ, "/ws/a.txt");
    r.action.attributes.retain(|a| a.name != "mcp_method");
    assert_eq!(decided(&r), is(Effect::Deny, "bad-request"));
    r.action.attributes.push(attr("mcp_method", Value::Int(1)));
    assert_eq!(decided(&r), is(Effect::Deny, "bad-request"));

    let mut r = request(TOOLS_CALL, "read_text_file", READ, "file", "");
    r.action.attributes.push(attr("probe", s("true")));
    assert_eq!(decided(&r), is(Effect::Deny, "bad-request"));
}

// Rule 2.

#[test]
fn other_methods_that_read_are_allowed() {
    for (method, kind, id) in [
        ("initialize", "mcp_server", "filesystem"),
        ("tools/list", "mcp_server", "filesystem"),
        ("resources/list", "mcp_server", "filesystem"),
        ("resources/read", "resource", "file:///ws/README.md"),
        ("prompts/get", "prompt", "review"),
    ] {
        let r = request(method, method, READ, kind, id);
        assert_eq!(decided(&r), is(Effect::Allow, "mcp-read"), "{method}");
        assert!(obligations(&r).is_empty());
    }
}

#[test]
fn other_methods_that_do_more_than_read_need_one_approver() {
    for p in [WRITE, Privilege::Admin, Privilege::SecretAccess] {
        let r = request(
            "resources/subscribe",
            "resources/subscribe",
            p,
            "resource",
            "x",
        );
        assert_eq!(
            decided(&r),
            is(Effect::RequireApproval, "mcp-method-needs-approval")
        );
        assert_eq!(obligations(&r), HELD);
        assert_eq!(decided(&approved(r)), is(Effect::Allow, "human-approved"));
    }
}

// Rule 3.

#[test]
fn admin_identity_change_and_secret_access_tools_are_denied() {
    for p in [
        Privilege::Admin,
        Privilege::IdentityChange,
        Privilege::SecretAccess,
    ] {
        for r in [
            request(TOOLS_CALL, "chmod", p, "file", "/ws/scratch/a"),
            request(TOOLS_CALL, "rotate_keys", p, "tool", "rotate_keys"),
            // A probe: the gateway hides the tool.
            request(TOOLS_CALL, "chmod", p, "file", ""),
        ] {
            assert_eq!(decided(&r), is(Effect::Deny, "privilege-not-allowed"));
            assert_eq!(
                decided(&approved(r)),
                is(Effect::Deny, "privilege-not-allowed")
            );
        }
    }
}

// Rule 4: where a path is.

#[test]
fn reads_inside_the_workspace_are_allowed_without_obligations() {
    for path in ["/ws", "/ws/a.txt", "/ws/src/lib.rs", "/ws/scratch/out.txt"] {
        let r = file(READ, path);
        assert_eq!(decided(&r), is(Effect::Allow, "workspace-read"), "{path}");
        assert!(obligations(&r).is_empty());
    }
    let r = request(TOOLS_CALL, "list_directory", READ, "directory", "/ws");
    assert_eq!(decided(&r), is(Effect::Allow, "workspace-read"));
}

#[test]
fn a_sibling_that_shares_the_workspace_prefix_is_outside_it() {
    for path in ["/ws2", "/ws2/a.txt", "/w", "/wsx/ws"] {
        for p in [READ, WRITE] {
            let r = file(p, path);
            assert_eq!(decided(&r), is(Effect::Deny, "outside-workspace"), "{path}");
        }
    }
}

#[test]
fn anything_outside_the_workspace_is_denied_even_when_approved() {
    for path in ["/", "/etc/passwd", "/home/alice/.bashrc", "/tmp/x"] {
        for p in [READ, WRITE] {
            let r = file(p, path);
            assert_eq!(decided(&r), is(Effect::Deny, "outside-workspace"), "{path}");
            assert_eq!(
                decided(&approved(r)),
                is(Effect::Deny, "outside-workspace"),
                "{path}"
            );
        }
    }
}

#[test]
fn a_workspace_at_the_root_holds_every_path_but_still_no_secrets() {
    let root = |r| context(context(r, "workspace", Some(s("/"))), "scratch", None);
    assert_eq!(
        decided(&root(file(READ, "/etc/hosts"))),
        is(Effect::Allow, "workspace-read")
    );
    assert_eq!(
        decided(&root(file(READ, "/"))),
        is(Effect::Allow, "workspace-read")
    );
    assert_eq!(
        decided(&root(file(WRITE, "/etc/hosts"))),
        is(Effect::RequireApproval, "write-needs-approval")
    );
    assert_eq!(
        decided(&root(file(READ, "/home/alice/.ssh/id_rsa"))),
        is(Effect::Deny, "secret-file")
    );
}

#[test]
fn a_path_that_is_not_absolute_and_normalised_is_a_bad_request() {
    for path in [
        "a.txt",
        "./a.txt",
        "/ws/../etc/passwd",
        "/ws/a/",
        "/ws//a",
        "~/a",
    ] {
        for p in [READ, WRITE] {
            let r = file(p, path);
            assert_eq!(decided(&r), is(Effect::Deny, "bad-request"), "{path}");
            assert_eq!(
                decided(&approved(r)),
                is(Effect::Deny, "bad-request"),
                "{path}"
            );
        }
    }
    // A kind that names no path on this server is judged as one, and refused.
    let r = request(TOOLS_CALL, "fetch", READ, "url", "https://example.com/");
    assert_eq!(decided(&r), is(Effect::Deny, "bad-request"));
}

// Rule 4: secrets.

#[test]
fn secrets_files_are_denied_even_for_reads_inside_the_workspace() {
    for path in [
        "/ws/.env",
        "/ws/.ENV",
        "/ws/app/.env.production",
        "/ws/a/.ssh/x",
        "/ws/.gnupg/secring.gpg",
        "/ws/deploy/secrets/db.txt",
        "/ws/.aws/config",
        "/ws/tls/server.pem",
        "/ws/tls/server.KEY",
        "/ws/cert.p12",
        "/ws/cert.pfx",
        "/ws/id_rsa",
        "/ws/id_ed25519",
        "/ws/id_ecdsa",
        "/ws/credentials",
        "/ws/.netrc",
        "/ws/.npmrc",
        "/ws/.pypirc",
        "/ws/scratch/.env",
    ] {
        for p in [READ, WRITE] {
            let r = file(p, path);
            assert_eq!(decided(&r), is(Effect::Deny, "secret-file"), "{path}");
            assert_eq!(
                decided(&approved(r)),
                is(Effect::Deny, "secret-file"),
                "{path}"
            );
        }
    }
    let r = request(TOOLS_CALL, "list_directory", READ, "directory", "/ws/.ssh");
    assert_eq!(decided(&r), is(Effect::Deny, "secret-file"));
}

#[test]
fn public_keys_and_look_alikes_are_ordinary_files() {
    for path in ["/ws/id_rsa.pub", "/ws/.envrc", "/ws/secrets-manager/a.md"] {
        assert_eq!(
            decided(&file(READ, path)),
            is(Effect::Allow, "workspace-read"),
            "{path}"
        );
    }
}

// Rule 4: writes.

#[test]
fn writes_inside_the_scratch_folder_are_allowed_for_five_minutes() {
    for path in ["/ws/scratch", "/ws/scratch/out.txt", "/ws/scratch/a/b.md"] {
        let r = file(WRITE, path);
        assert_eq!(decided(&r), is(Effect::Allow, "scratch-write"), "{path}");
        assert_eq!(obligations(&r), WRITE_ALLOWED);
    }
}

#[test]
fn other_writes_in_the_workspace_need_one_approver() {
    for path in [
        "/ws",
        "/ws/a.txt",
        "/ws/scratch2/a.txt",
        "/ws/src/scratch/a",
    ] {
        let r = file(WRITE, path);
        assert_eq!(
            decided(&r),
            is(Effect::RequireApproval, "write-needs-approval"),
            "{path}"
        );
        assert_eq!(obligations(&r), HELD);
        // The re-submission after a human approved it.
        let r = approved(r);
        assert_eq!(decided(&r), is(Effect::Allow, "human-approved"));
        assert_eq!(obligations(&r), WRITE_ALLOWED);
    }
}

#[test]
fn without_a_scratch_folder_every_write_needs_approval() {
    let r = context(file(WRITE, "/ws/scratch/a.txt"), "scratch", None);
    assert_eq!(
        decided(&r),
        is(Effect::RequireApproval, "write-needs-approval")
    );
}

#[test]
fn a_scratch_folder_outside_the_workspace_grants_nothing() {
    let outside = |r| context(r, "scratch", Some(s("/tmp/scratch")));
    assert_eq!(
        decided(&outside(file(WRITE, "/tmp/scratch/a.txt"))),
        is(Effect::Deny, "outside-workspace")
    );
    assert_eq!(
        decided(&outside(file(WRITE, "/ws/a.txt"))),
        is(Effect::RequireApproval, "write-needs-approval")
    );
    // Nor does a sibling that shares the workspace's prefix.
    let sibling = |r| context(r, "scratch", Some(s("/ws2")));
    assert_eq!(
        decided(&sibling(file(WRITE, "/ws2/a.txt"))),
        is(Effect::Deny, "outside-workspace")
    );
}

#[test]
fn a_scratch_folder_equal_to_the_workspace_makes_it_writable() {
    let r = context(file(WRITE, "/ws/a.txt"), "scratch", Some(s("/ws")));
    assert_eq!(decided(&r), is(Effect::Allow, "scratch-write"));
}

// Rule 5 and probes.

#[test]
fn tools_that_name_no_resource_read_freely_and_write_with_approval() {
    for kind in ["tool", "mcp_server"] {
        let r = request(TOOLS_CALL, "list_allowed_directories", READ, kind, "x");
        assert_eq!(decided(&r), is(Effect::Allow, "tool-read"), "{kind}");
        let r = request(TOOLS_CALL, "reindex", WRITE, kind, "reindex");
        assert_eq!(
            decided(&r),
            is(Effect::RequireApproval, "tool-write-needs-approval")
        );
        assert_eq!(obligations(&r), HELD);
        assert_eq!(decided(&approved(r)), is(Effect::Allow, "human-approved"));
    }
}

#[test]
fn a_probe_with_an_empty_id_gets_the_tool_level_answer() {
    let probe = |p, flag: bool| {
        let mut r = file(p, "");
        if flag {
            r.action
                .attributes
                .push(attr("probe", Value::Boolean(true)));
        }
        r
    };
    for flag in [false, true] {
        assert_eq!(decided(&probe(READ, flag)), is(Effect::Allow, "tool-read"));
        assert_eq!(
            decided(&probe(WRITE, flag)),
            is(Effect::RequireApproval, "tool-write-needs-approval")
        );
    }
}

#[test]
fn a_probe_flag_on_a_request_with_a_path_does_not_skip_the_path_rules() {
    let mut r = file(READ, "/etc/passwd");
    r.action
        .attributes
        .push(attr("probe", Value::Boolean(true)));
    assert_eq!(decided(&r), is(Effect::Deny, "outside-workspace"));
}

// Whatever the input.

#[test]
fn long_inputs_are_shortened_in_messages() {
    let long = format!("/ws/{}", "a/".repeat(2000) + "b");
    let ws = format!("/{}", "w".repeat(4000));
    for r in [
        file(WRITE, &long),
        context(file(READ, &long), "workspace", Some(s(&ws))),
        request(TOOLS_CALL, &"t".repeat(4000), Privilege::Admin, "tool", "t"),
    ] {
        // assert_well_formed checks the message sizes.
        let _ = decided(&r);
    }
}

#[test]
fn nothing_outside_the_workspace_or_secret_or_malformed_is_ever_allowed() {
    let paths = [
        "",
        "/",
        "/ws",
        "/ws2",
        "/ws/a",
        "/ws/.env",
        "/ws/a/.ssh/k",
        "/ws/scratch/x",
        "/etc",
        "a",
        "/ws/../x",
        "/ws/scratch/id_rsa",
    ];
    let privileges = [
        READ,
        WRITE,
        Privilege::Admin,
        Privilege::IdentityChange,
        Privilege::SecretAccess,
    ];
    for path in paths {
        for p in privileges {
            for kind in ["file", "directory"] {
                for approval in [false, true] {
                    let mut r = request(TOOLS_CALL, "t", p, kind, path);
                    r.approval_verified = approval;
                    let v = decide(&r);
                    assert_well_formed(&v);
                    let bad = !path.is_empty()
                        && (!is_normalised_absolute(path)
                            || !is_inside(path, "/ws")
                            || secret_rule(path).is_some());
                    let forbidden = !matches!(p, Privilege::Read | Privilege::Write);
                    if bad || forbidden {
                        assert_eq!(v.effect, Effect::Deny, "{path} {p:?} {approval}");
                    }
                    if p == WRITE && v.effect == Effect::Allow {
                        assert_eq!(obligations(&r), WRITE_ALLOWED, "{path}");
                    }
                }
            }
        }
    }
}
