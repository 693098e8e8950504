//! Hostile plugins and overload through the real server: each is contained as a deny
//! with the right failure kind, and the server keeps answering correctly.

use std::time::{Duration, Instant};

use arbiter::proto as pb;
use tonic::Code;

use crate::support::*;

/// (set name, limits, settings, expected failure kind)
const HOSTILE: &[(&str, &str, &str, &str)] = &[
    (
        "loop",
        "deadline_ms = 50",
        "behaviour = \"loop\"",
        "timeout",
    ),
    (
        "sleep",
        "deadline_ms = 50",
        "behaviour = \"sleep\"",
        "timeout",
    ),
    (
        "stack",
        "",
        "behaviour = \"stack-overflow\"",
        "stack-overflow",
    ),
    (
        "memory-bomb",
        "memory_mib = 32",
        "behaviour = \"grow-memory\"",
        "memory-limit",
    ),
    ("trap", "", "behaviour = \"trap\"", "trap"),
    ("exit", "", "behaviour = \"exit\"", "trap"),
    (
        "many-reasons",
        "",
        "behaviour = \"many-reasons\"",
        "bad-output",
    ),
    (
        "huge-reason",
        "memory_mib = 512, deadline_ms = 5000",
        // 100 MiB, far past every output cap; each instance's memory goes back to the
        // kernel when it ends, so the RSS bound below holds.
        "behaviour = \"huge-reason\"\nhuge_mib = 100",
        "bad-output",
    ),
    (
        "log-flood",
        "",
        "behaviour = \"log-flood\"",
        "host-call-limit",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_are_contained_and_the_server_stays_correct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sets = vec!["builtin:reference".to_string()];
    for (name, limits, settings, _) in HOSTILE {
        // Quarantine would turn later rounds into `quarantined`; this test is about
        // each failure kind, so it is set out of reach.
        let limits = if limits.is_empty() {
            "quarantine_after = 1000".to_string()
        } else {
            format!("{limits}, quarantine_after = 1000")
        };
        let set = misbehave_set_with(dir.path(), name, &limits, settings);
        sets.push(set.display().to_string());
    }
    let server = ServerProcess::start(&sets).await;
    let mut client = server.client().await;
    let vectors = vectors();
    let mut baseline = None;
    for round in 0..4 {
        if round == 1 {
            baseline = Some(server.rss_kib());
        }
        for (i, (name, _, _, kind)) in HOSTILE.iter().enumerate() {
            let mut r = normal_request();
            r.policy_set = (*name).into();
            r.explain = true;
            let d = client
                .authorize(r)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"))
                .into_inner();
            assert_eq!(d.decision, pb::Decision::Deny as i32, "{name}");
            assert_eq!(d.reasons[0].code, "plugin-failure", "{name}");
            assert_eq!(d.plugins[0].effect, "failed", "{name}");
            assert_eq!(d.plugins[0].failure, *kind, "{name}");
            // Right after: a normal request on the reference set is answered correctly.
            let v = &vectors[(round * HOSTILE.len() + i) % vectors.len()];
            if !v.approved {
                let ok = client
                    .authorize(arbiter::grpc::encode::request(&v.request))
                    .await
                    .expect("normal")
                    .into_inner();
                assert_eq!(
                    arbiter::grpc::encode::outcome_of(ok.decision),
                    Some(v.expected),
                    "after {name}"
                );
            }
        }
    }
    let grown = server.rss_kib().saturating_sub(baseline.expect("baseline"));
    assert!(
        grown < 48 * 1024,
        "resident memory grew by {grown} KiB over three rounds of hostile plugins"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_queues_then_is_resource_exhausted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = misbehave_set(dir.path(), "slow", "behaviour = \"slow\"\nslow_ms = 300");
    let server =
        TestServer::start_with(&["builtin:reference", slow.to_str().expect("utf-8")], 1).await;
    let client = server.client().await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut r = normal_request();
                r.policy_set = "slow".into();
                client.authorize(r).await
            })
        })
        .collect();
    let (mut ok, mut exhausted) = (0, 0);
    for c in calls {
        match c.await.expect("joins") {
            Ok(_) => ok += 1,
            Err(s) if s.code() == Code::ResourceExhausted => {
                assert!(s.message().contains("at capacity"), "{}", s.message());
                exhausted += 1;
            }
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    // One evaluates, four (QUEUE_PER_SLOT) wait their turn, the rest are refused.
    assert_eq!((ok, exhausted), (5, 5));
    let mut client = server.client().await;
    assert!(
        client.authorize(normal_request()).await.is_ok(),
        "serves normally afterwards"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_deadline_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = misbehave_set(dir.path(), "slow", "behaviour = \"slow\"\nslow_ms = 3000");
    let server = TestServer::start(&["builtin:reference", slow.to_str().expect("utf-8")]).await;
    let mut client = server.client().await;
    let mut r = normal_request();
    r.policy_set = "slow".into();
    let mut request = tonic::Request::new(r);
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = client.authorize(request).await.expect_err("deadline");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    assert!(client.authorize(normal_request()).await.is_ok());
}
