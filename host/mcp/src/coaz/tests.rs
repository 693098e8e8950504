use super::*;

fn token() -> Json {
    json!({ "sub": "alice@example.com", "client_id": "http://agentprovider.com/agent-app-id",
            "aud": "https://mcp.example.com", "roles": ["treasury"] })
}

#[test]
fn the_default_tools_call_mapping_is_the_bindings() {
    let params = json!({ "name": "get_customer", "arguments": { "id": "cust-12345" } });
    let e = default_mapping("tools/call")
        .unwrap()
        .evaluations(&params, &token())
        .unwrap();
    assert_eq!(
        e,
        [json!({
            "subject": { "type": "identity", "id": "alice@example.com" },
            "context": { "agent": "http://agentprovider.com/agent-app-id" },
            "action": { "name": "tools/call" },
            "resource": { "type": "tool", "id": "get_customer" },
        })]
    );
}

#[test]
fn an_absent_optional_claim_leaves_the_field_out() {
    let t = json!({ "sub": "alice", "aud": "srv" });
    let e = default_mapping("tools/list")
        .unwrap()
        .evaluations(&json!({}), &t)
        .unwrap();
    assert_eq!(e[0]["context"], json!({}));
    assert_eq!(
        e[0]["resource"],
        json!({ "type": "mcp_server", "id": "srv" })
    );
}

#[test]
fn completion_maps_prompts_and_resources_by_ref_type() {
    let m = default_mapping("completion/complete").unwrap();
    let p = m
        .evaluations(
            &json!({ "ref": { "type": "ref/prompt", "name": "greet" } }),
            &token(),
        )
        .unwrap();
    assert_eq!(p[0]["resource"], json!({ "type": "prompt", "id": "greet" }));
    let r = m
        .evaluations(
            &json!({ "ref": { "type": "ref/resource", "uri": "file:///x" } }),
            &token(),
        )
        .unwrap();
    assert_eq!(
        r[0]["resource"],
        json!({ "type": "resource", "id": "file:///x" })
    );
}

#[test]
fn a_declared_mapping_with_conditions_and_escapes_resolves() {
    let m = Mapping::compile(
        &json!({ "evaluation": {
            "subject": { "type": "$token.roles.exists(r, r == 'treasury') ? 'treasury_user' : 'standard_user'", "id": "$token.sub" },
            "action": { "name": "$params.arguments.currency == 'USD' ? 'domestic_transfer' : 'international_transfer'" },
            "resource": { "type": "account", "id": "$params.arguments.from_account",
                          "properties": { "sensitivity": "$params.arguments.amount > 10000 ? 'high' : 'standard'", "price": "$$50" } },
            "context": { "agent": "$token.?client_id", "missing": "$token.?nope" }
        }}),
        true,
    )
    .unwrap();
    let params = json!({ "name": "transfer_funds", "arguments": { "from_account": "A1", "to_account": "B2", "amount": 20000, "currency": "EUR" } });
    let e = m.evaluations(&params, &token()).unwrap();
    assert_eq!(
        e[0]["subject"],
        json!({ "type": "treasury_user", "id": "alice@example.com" })
    );
    assert_eq!(e[0]["action"]["name"], "international_transfer");
    assert_eq!(
        e[0]["resource"]["properties"],
        json!({ "sensitivity": "high", "price": "$50" })
    );
    assert_eq!(
        e[0]["context"],
        json!({ "agent": "http://agentprovider.com/agent-app-id" })
    );
}

#[test]
fn evaluations_take_the_top_level_defaults_and_need_every_entry() {
    let m = Mapping::compile(
        &json!({ "evaluations": {
            "subject": { "type": "identity", "id": "$token.sub" },
            "context": { "agent": "$token.?client_id" },
            "evaluations": [
                { "action": { "name": "read" }, "resource": { "type": "storage_object", "id": "$params.arguments.source" } },
                { "action": { "name": "write" }, "resource": { "type": "storage_object", "id": "$params.arguments.destination" } }
            ]
        }}),
        true,
    )
    .unwrap();
    let params = json!({ "arguments": { "source": "/b/r/q1.pdf", "destination": "/b/a/q1.pdf" } });
    let e = m.evaluations(&params, &token()).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1]["resource"]["id"], "/b/a/q1.pdf");
    assert_eq!(e[1]["subject"]["id"], "alice@example.com");
    assert_eq!(
        e[1]["context"]["agent"],
        "http://agentprovider.com/agent-app-id"
    );
}

#[test]
fn a_declared_mapping_cannot_assert_another_identity() {
    let m = Mapping::compile(
        &json!({ "evaluation": { "subject": { "id": "$params.arguments.user" },
                 "action": { "name": "x" }, "resource": { "type": "t", "id": "1" } } }),
        true,
    )
    .unwrap();
    let e = m
        .evaluations(&json!({ "arguments": { "user": "root" } }), &token())
        .unwrap_err();
    assert!(
        e.to_string().contains("not the verified token subject"),
        "{e}"
    );
    // Omitted, the subject is the token's.
    let m = Mapping::compile(
        &json!({ "evaluation": { "action": { "name": "x" }, "resource": { "type": "t", "id": "1" } } }),
        true,
    )
    .unwrap();
    let e = m.evaluations(&json!({}), &token()).unwrap();
    assert_eq!(
        e[0]["subject"],
        json!({ "id": "alice@example.com", "type": "identity" })
    );
    // A subject inside an evaluations entry is refused outright.
    let e = Mapping::compile(
        &json!({ "evaluations": { "evaluations": [ { "subject": { "id": "x" }, "action": { "name": "a" }, "resource": { "type": "t", "id": "1" } } ] } }),
        true,
    )
    .unwrap_err();
    assert!(e.to_string().contains("inside `evaluations`"), "{e}");
}

#[test]
fn malformed_mappings_and_failing_expressions_are_mapping_errors() {
    for bad in [
        json!({}),
        json!({ "evaluation": {}, "evaluations": {} }),
        json!({ "search": {} }),
        json!({ "evaluation": "x" }),
        json!({ "evaluation": { "action": { "name": "$1 +" } } }),
        json!([1]),
    ] {
        assert!(Mapping::compile(&bad, true).is_err(), "{bad}");
    }
    let m = Mapping::compile(
        &json!({ "evaluation": { "action": { "name": "x" }, "resource": { "type": "t", "id": "$params.arguments.region" } } }),
        true,
    )
    .unwrap();
    let e = m
        .evaluations(&json!({ "arguments": {} }), &token())
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("COAZ mapping error: expression '$params.arguments.region' failed"),
        "{e}"
    );
    let long = format!("${}", "a".repeat(MAX_EXPRESSION_BYTES + 1));
    assert!(
        Mapping::compile(
            &json!({ "evaluation": { "action": { "name": long } } }),
            true
        )
        .is_err()
    );
}

#[test]
fn pass_through_and_unknown_methods() {
    assert!(is_pass_through("ping", true) && is_pass_through("notifications/cancelled", false));
    assert!(!is_pass_through("tools/call", false) && !is_pass_through("tools/call", true));
    assert!(
        !is_pass_through("notifications/x", true),
        "a request is never a notification"
    );
    assert!(default_mapping("sampling/createMessage").is_none());
    assert!(default_mapping("experimental/whatever").is_none());
    for m in [
        "initialize",
        "tools/list",
        "resources/read",
        "prompts/get",
        "logging/setLevel",
        "tasks/list",
    ] {
        assert!(default_mapping(m).is_some(), "{m}");
    }
}
