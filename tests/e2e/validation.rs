//! Bad input gets INVALID_ARGUMENT naming the field, and the server keeps serving.

use arbiter::proto as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::support::*;

fn value(kind: pb::value::Kind) -> pb::Value {
    pb::Value { kind: Some(kind) }
}

/// Each case: a broken request and the field the error must name.
fn broken() -> Vec<(&'static str, pb::AuthorizeRequest, &'static str)> {
    let base = normal_request;
    let mut cases = Vec::new();
    let mut r = base();
    r.principal = None;
    cases.push(("missing principal", r, "principal"));
    let mut r = base();
    r.principal.as_mut().expect("p").id.clear();
    cases.push(("empty principal id", r, "principal.id"));
    let mut r = base();
    r.principal.as_mut().expect("p").kind = 0;
    cases.push(("unspecified principal kind", r, "principal.kind"));
    let mut r = base();
    r.action.as_mut().expect("a").privilege = 99;
    cases.push(("unknown privilege", r, "action.privilege"));
    let mut r = base();
    r.action.as_mut().expect("a").privilege = 0;
    cases.push(("unspecified privilege", r, "action.privilege"));
    let mut r = base();
    r.action.as_mut().expect("a").name.clear();
    cases.push(("empty action name", r, "action.name"));
    let mut r = base();
    r.context
        .insert(String::new(), value(pb::value::Kind::Int(1)));
    cases.push(("empty attribute name", r, "context"));
    let mut r = base();
    r.context
        .insert("note".into(), value(pb::value::Kind::Str("x".repeat(5000))));
    cases.push(("attribute value too long", r, "context[\"note\"]"));
    let mut r = base();
    r.context.insert("empty".into(), pb::Value { kind: None });
    cases.push(("attribute without a value", r, "context[\"empty\"]"));
    let mut r = base();
    for i in 0..65 {
        r.context
            .insert(format!("a{i}"), value(pb::value::Kind::Boolean(true)));
    }
    cases.push(("too many attributes", r, "context"));
    let mut r = base();
    r.context
        .insert("nan".into(), value(pb::value::Kind::Float(f64::NAN)));
    cases.push(("non-finite float", r, "context[\"nan\"]"));
    let mut r = base();
    r.delegation = (0..17).map(|_| r.principal.clone().expect("p")).collect();
    cases.push(("delegation too long", r, "delegation"));
    let mut r = base();
    r.delegation = vec![pb::Principal {
        id: "spiffe://x/human/a".into(),
        kind: 99,
        attributes: Default::default(),
    }];
    cases.push(("bad delegation kind", r, "delegation[0].kind"));
    let mut r = base();
    r.resource.as_mut().expect("r").id = "r".repeat(2000);
    cases.push(("resource id too long", r, "resource.id"));
    let mut r = base();
    r.intent.as_mut().expect("i").justification = "j".repeat(5 << 20);
    cases.push(("message over the size cap", r, "request"));
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_name_the_field_and_the_server_keeps_serving() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    for (what, request, field) in broken() {
        let status = client.authorize(request).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{what}: message `{}` should name `{field}`",
            status.message()
        );
        let details = status
            .get_details_bad_request()
            .unwrap_or_else(|| panic!("{what}: no BadRequest details"));
        assert_eq!(details.field_violations[0].field, field, "{what}");
        let ok = client
            .authorize(normal_request())
            .await
            .unwrap_or_else(|e| panic!("after {what}: {e:?}"));
        assert_eq!(
            ok.into_inner().decision,
            pb::Decision::Allow as i32,
            "after {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_policy_set_is_not_found() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    let mut r = normal_request();
    r.policy_set = "payments-v9".into();
    let status = client.authorize(r).await.expect_err("unknown set");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("`payments-v9`"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_batch_is_refused_whole() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    let requests = (0..1001).map(|_| normal_request()).collect();
    let status = client
        .authorize_batch(pb::AuthorizeBatchRequest { requests })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("`requests`") && status.message().contains("1001"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_id_is_never_silently_ignored() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    let mut r = normal_request();
    r.approval_id = "01900000-0000-7000-8000-000000000000".into();
    let status = client.authorize(r).await.expect_err("no such approval");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("no approval"),
        "{}",
        status.message()
    );
}
