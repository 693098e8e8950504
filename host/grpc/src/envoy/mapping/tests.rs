use super::*;

fn config(toml_text: &str) -> EnvoyConfig {
    let c: EnvoyConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    c
}

fn check<'a>(method: &'a str, path: &'a str, headers: &'a HashMap<String, String>) -> Check<'a> {
    Check {
        method,
        path,
        host: "api.acme.org",
        headers,
        source_principal: "spiffe://acme.org/ns/shop/sa/cart",
        source_ip: Some("10.0.0.7"),
    }
}

const ROUTES: &str = r#"
principal_kind = "agent"
[intent]
task_id = "x-task"
[context]
risk = "x-risk"
[principal_attributes]
team = "x-team"
[[routes]]
methods = ["GET"]
path = "/todos/{id}"
action = "todos:Read"
resource_kind = "todo"
[[routes]]
path = "/admin/{rest*}"
action = "admin:Any"
privilege = "admin"
"#;

#[test]
fn routes_give_the_action_privilege_and_captured_segments() {
    let c = config(ROUTES);
    let headers = HashMap::from([
        ("x-task".to_string(), "T-9".to_string()),
        ("x-risk".to_string(), "42".to_string()),
        ("x-team".to_string(), "payments".to_string()),
    ]);
    let r = request(&c, &check("GET", "/todos/7?verbose=1", &headers))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r.principal.id, "spiffe://acme.org/ns/shop/sa/cart");
    assert_eq!(r.principal.kind, PrincipalKind::Agent);
    assert_eq!(
        r.principal.attributes["team"],
        Value::Str("payments".into())
    );
    assert_eq!(
        (r.action.name.as_str(), r.action.privilege),
        ("todos:Read", Privilege::Read)
    );
    assert_eq!(
        (r.resource.id.as_str(), r.resource.kind.as_str()),
        ("/todos/7", "todo")
    );
    assert_eq!(r.resource.attributes["id"], Value::Str("7".into()));
    assert_eq!(r.intent.task_id, "T-9");
    assert_eq!(r.context["risk"], Value::Int(42));
    assert_eq!(r.context["source_ip"], Value::Str("10.0.0.7".into()));
    // The route is for GET only: a DELETE falls through to the method's defaults.
    let r = request(&c, &check("DELETE", "/todos/7", &headers)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        (r.action.name.as_str(), r.action.privilege),
        ("http:DELETE", Privilege::Write)
    );
    assert_eq!(r.resource.kind, "http_route");
    let r = request(&c, &check("GET", "/admin/users/1/keys", &headers))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        (r.action.name.as_str(), r.action.privilege),
        ("admin:Any", Privilege::Admin)
    );
    assert_eq!(
        r.resource.attributes["rest"],
        Value::Str("users/1/keys".into())
    );
    // `{rest*}` needs at least one segment; `{id}` exactly one.
    let r = request(&c, &check("GET", "/admin", &headers)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r.action.name, "http:GET");
    let r = request(&c, &check("GET", "/todos/7/x", &headers)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r.action.name, "http:GET");
}

#[test]
fn a_principal_header_replaces_the_peer_and_its_absence_is_unauthenticated() {
    let c = config("principal_header = \"x-user\"\n");
    let none = HashMap::new();
    let e = request(&c, &check("GET", "/", &none)).expect_err("no principal");
    assert!(e.unauthenticated, "{e:?}");
    assert!(e.message.contains("x-user"), "{e:?}");
    let headers = HashMap::from([("x-user".to_string(), "alice@acme.org".to_string())]);
    let r = request(&c, &check("GET", "/", &headers)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r.principal.id, "alice@acme.org");
    assert_eq!(r.principal.kind, PrincipalKind::Service);
    let mut empty_peer = check("GET", "/", &none);
    empty_peer.source_principal = "";
    assert!(
        request(&EnvoyConfig::default(), &empty_peer)
            .expect_err("no peer")
            .unauthenticated
    );
}

#[test]
fn hostile_values_are_refused_naming_the_header() {
    let c = config(ROUTES);
    let headers = HashMap::from([(
        "x-risk".to_string(),
        "9".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1),
    )]);
    let e = request(&c, &check("GET", "/", &headers)).expect_err("too long");
    assert_eq!(e.field, "header x-risk");
    let mut invisible = check("GET", "/", &headers);
    invisible.source_principal = "spiffe://acme.org/\u{200b}bot";
    let e = request(&EnvoyConfig::default(), &invisible).expect_err("invisible");
    assert_eq!(e.field, "principal");
}

#[test]
fn values_are_typed() {
    assert_eq!(typed("10"), Value::Int(10));
    assert_eq!(typed("-3"), Value::Int(-3));
    assert_eq!(typed("0.5"), Value::Float(0.5));
    assert_eq!(typed("true"), Value::Bool(true));
    assert_eq!(typed("1e999"), Value::Str("1e999".into()));
    assert_eq!(typed("NaN"), Value::Str("NaN".into()));
    assert_eq!(typed("payments"), Value::Str("payments".into()));
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    for (text, needle) in [
        (
            "[[routes]]\npath = \"todos\"\naction = \"a\"\n",
            "must start with /",
        ),
        (
            "[[routes]]\npath = \"/{rest*}/x\"\naction = \"a\"\n",
            "must be last",
        ),
        (
            "[[routes]]\npath = \"/a{id}\"\naction = \"a\"\n",
            "mixes text",
        ),
        (
            "[[routes]]\npath = \"/a\"\naction = \"\"\n",
            "`action` is empty",
        ),
        ("[intent]\nowner = \"x-owner\"\n", "not an intent field"),
        (
            "principal_header = \"x user\"\n",
            "not a plain HTTP header name",
        ),
    ] {
        let c: EnvoyConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let e = c.validate().expect_err(text);
        assert!(e.contains(needle), "{text}: {e}");
    }
    assert!(toml::from_str::<EnvoyConfig>("nope = 1\n").is_err());
    assert!(toml::from_str::<EnvoyConfig>("[method_privileges]\nGET = \"root\"\n").is_err());
}
