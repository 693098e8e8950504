//! Every public vector through Authorize and AuthorizeBatch.

use arbiter::grpc::encode;
use arbiter::proto as pb;
use futures::StreamExt as _;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_unapproved_vector_through_authorize() {
    let server = TestServer::start(&[]).await;
    let client = server.client().await;
    let vectors: Vec<Vector> = vectors().into_iter().filter(|v| !v.approved).collect();
    assert_eq!(vectors.len(), 1769, "unapproved public vectors");
    let results: Vec<(usize, _, _)> = futures::stream::iter(vectors.iter().map(|v| {
        let mut client = client.clone();
        async move {
            let r = client
                .authorize(encode::request(&v.request))
                .await
                .expect("decision")
                .into_inner();
            (v.line, v.expected, r)
        }
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    for (line, expected, r) in &results {
        assert_eq!(
            encode::outcome_of(r.decision),
            Some(*expected),
            "vector on line {line}: {r:?}"
        );
        assert_eq!(r.policy_set, "reference");
        assert_eq!(r.policy_set_version, "1.0.0");
        assert_eq!(r.decision_id.len(), 36);
        assert!(r.plugins.is_empty(), "no explanation unless asked");
    }
    let mut ids: Vec<&str> = results
        .iter()
        .map(|(_, _, r)| r.decision_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), results.len(), "decision ids are unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_unapproved_vector_through_authorize_batch_in_order() {
    let server = TestServer::start(&["builtin:reference-split"]).await;
    let mut client = server.client().await;
    let vectors: Vec<Vector> = vectors().into_iter().filter(|v| !v.approved).collect();
    for chunk in vectors.chunks(500) {
        let requests = chunk.iter().map(|v| encode::request(&v.request)).collect();
        let items = client
            .authorize_batch(pb::AuthorizeBatchRequest { requests })
            .await
            .expect("batch")
            .into_inner()
            .items;
        assert_eq!(items.len(), chunk.len());
        for (v, item) in chunk.iter().zip(items) {
            let Some(pb::batch_item::Result::Response(r)) = item.result else {
                panic!("line {}: {item:?}", v.line)
            };
            assert_eq!(
                encode::outcome_of(r.decision),
                Some(v.expected),
                "vector on line {}",
                v.line
            );
            assert_eq!(r.policy_set, "reference-split");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explanation_lists_plugins_and_never_admin_messages() {
    let server = TestServer::start(&["builtin:reference-split"]).await;
    let mut client = server.client().await;
    let mut request = normal_request();
    request.explain = true;
    let r = client
        .authorize(request)
        .await
        .expect("decision")
        .into_inner();
    assert_eq!(r.decision, pb::Decision::Allow as i32);
    let names: Vec<&str> = r.plugins.iter().map(|p| p.plugin.as_str()).collect();
    assert_eq!(
        names,
        [
            "risk-guard",
            "prod-guard",
            "delegation-guard",
            "team-access",
            "identity-gate"
        ]
    );
    assert_eq!(r.plugins[3].effect, "allow");
    assert_eq!(r.plugins[0].effect, "abstain");
    let text = format!("{r:?}");
    assert!(
        !text.contains("reference rule"),
        "admin messages leaked: {text}"
    );
    let o = r.obligations.expect("allow carries obligations");
    assert_eq!(o.max_credential_lifetime_seconds, Some(900));
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_items_fail_alone_and_a_malformed_item_is_not_a_deny() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    let mut bad = normal_request();
    bad.principal.as_mut().expect("principal").id.clear();
    let mut unknown_set = normal_request();
    unknown_set.policy_set = "nope".into();
    let requests = vec![normal_request(), bad, unknown_set, normal_request()];
    let items = client
        .authorize_batch(pb::AuthorizeBatchRequest { requests })
        .await
        .expect("batch")
        .into_inner()
        .items;
    let kinds: Vec<String> = items
        .iter()
        .map(|i| match &i.result {
            Some(pb::batch_item::Result::Response(r)) => format!("decision {}", r.decision),
            Some(pb::batch_item::Result::Error(e)) => format!("error {} {}", e.code, e.field),
            None => "none".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "decision 1",
            "error 3 requests[1].principal.id",
            "error 5 requests[2].policy_set",
            "decision 1"
        ]
    );
}
