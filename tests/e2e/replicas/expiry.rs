//! Approval expiry and the audit page with replicas: every replica runs the expiry
//! sweep, and each lapsed approval's expiry is recorded once, in one replica's audit
//! chain; a replica's console audit page says whose chain it searches.

use std::time::Duration;

use arbiter::proto::authorizer_client::AuthorizerClient;

use super::{database, replicas_with};
use crate::approvals::{channel, hold, identity_change};
use crate::support::expired_approval_ids;

#[tokio::test(flavor = "multi_thread")]
async fn every_replica_sweeps_and_each_expiry_is_recorded_once() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas_with(&url, 3, |config| {
        config.approval_ttl = Duration::from_secs(2);
    })
    .await;
    let mut held = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let mut authz = AuthorizerClient::new(channel(&server.url).await);
        for k in 0..12 {
            let request = identity_change(&format!("lapse-{i}-{k}"), &format!("arn:role/l{i}{k}"));
            held.push(hold(&mut authz, &t.gateway, request).await);
        }
    }
    held.sort();
    // 36 approvals lapse at once, so a sweep takes long enough (one durable audit
    // record each) that the three replicas' sweeps overlap. Each replica sweeps every
    // second: wait until the expiries are on record (well
    // within a minute), then a few sweeps more, for any second record to appear.
    let recorded = |servers: &[crate::support::TestServer]| -> Vec<String> {
        let mut ids: Vec<String> = servers
            .iter()
            .flat_map(|s| expired_approval_ids(&s.audit_db()))
            .collect();
        ids.sort();
        ids
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while recorded(&servers).len() < held.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = recorded(&servers);
    let twice: Vec<&String> = got
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| &w[0])
        .collect();
    assert!(
        twice.is_empty(),
        "expiries recorded more than once: {twice:?}"
    );
    assert_eq!(
        got, held,
        "every expiry recorded, across the three replicas' chains"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicas_console_audit_page_says_it_searches_that_replicas_chain() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas_with(&url, 2, |config| {
        config.http = Some(arbiter_http::settings::HttpSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            default_privilege: arbiter_core::Privilege::Read,
            client_auth: arbiter_tls::ClientAuth::None,
        });
    })
    .await;
    for (i, server) in servers.iter().enumerate() {
        let addr = server.running.http_addr.expect("http");
        let (admin, _) = crate::console::session(addr, &t.admin).await;
        let (status, _, page) =
            crate::authzen::http(addr, "GET", "/console/audit", &[("Cookie", &admin)], "").await;
        assert_eq!(status, 200, "{page}");
        let note = page
            .split_once(r#"id="replica-chain""#)
            .map(|(_, rest)| rest.split("</p>").next().unwrap_or_default())
            .unwrap_or_else(|| panic!("the page names the chain it searches: {page}"));
        assert!(note.contains(&format!("replica-{i}")), "{note}");
    }
}
