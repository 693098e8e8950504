//! One regression test per finding of the security review of the plaintext build
//! (issue "Who is calling, proven", item 4), each asserting the refusal and, where
//! the refusal is an act on record, its audit record.

use std::process::Command;
use std::time::{Duration, Instant};

use arbiter::auth::{self, Role};
use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::credentials_client::CredentialsClient;
use arbiter::proto::policy_admin_client::PolicyAdminClient;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::approvals::{bearer, identity_change, with_tokens};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// A gRPC codec that sends and receives raw bytes, to send what no generated client
/// would.
#[derive(Debug, Clone, Default)]
struct Raw;

#[derive(Debug)]
struct RawCoder;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }

    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

impl Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn raw_authorize(channel: Channel, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static("/arbiter.v1.Authorizer/Authorize"),
        Raw,
    )
    .await
    .expect_err("an undecodable body is refused")
}

#[tokio::test]
async fn undecodable_bodies_are_invalid_argument_without_the_decoders_text() {
    use prost::Message as _;
    let server = TestServer::start(&[]).await;
    let valid = normal_request().encode_to_vec();
    let mut invalid_utf8 = valid.clone();
    let at = valid
        .windows(7)
        .position(|w| w == b"spiffe:")
        .expect("the principal id is in the encoding");
    invalid_utf8[at] = 0xff;
    for (what, body) in [
        ("random bytes", vec![0xffu8; 64]),
        ("a truncated message", valid[..valid.len() / 2].to_vec()),
        ("invalid UTF-8 in a string", invalid_utf8),
    ] {
        let s = raw_authorize(server.channel().await, body).await;
        assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
        assert!(!s.message().contains("Protobuf"), "{what}: {}", s.message());
    }
    // The server still decides.
    server
        .client()
        .await
        .authorize(normal_request())
        .await
        .expect("decides");
}

#[tokio::test]
async fn an_error_echoes_at_most_a_bounded_prefix_of_the_callers_input() {
    let server = TestServer::start(&[]).await;
    let mut r = normal_request();
    let name = "n".repeat(20 * 1024);
    r.context.insert(
        name,
        pb::Value {
            kind: Some(pb::value::Kind::Boolean(true)),
        },
    );
    let s = server
        .client()
        .await
        .authorize(r)
        .await
        .expect_err("a 20 KiB attribute name is refused");
    // The client could read the status at all: it is small.
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().len() < 512, "{} bytes", s.message().len());
    assert!(s.message().contains("context"), "{}", s.message());
}

#[tokio::test]
async fn ids_with_invisible_characters_are_refused() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    for sneaky in [
        "al\u{200b}ice@acme.org",
        "\u{202e}gro.emca@ecila",
        "bob\u{feff}",
    ] {
        let mut r = normal_request();
        r.principal.as_mut().expect("principal").id = sneaky.into();
        let s = client.authorize(r).await.expect_err("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{sneaky:?}");
        assert!(s.message().contains("principal.id"), "{}", s.message());
    }
    // A token id with one is refused too.
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--id",
            "al\u{200b}ice",
            "--kind",
            "human",
            "--role",
            "approver",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zero-width"));
}

#[tokio::test]
async fn one_identity_with_two_tokens_cannot_hold_a_request_and_approve_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    // `dave` has an enforcer token and an approver token: each alone is valid.
    let mut add = |roles: &[&str]| {
        let token = auth::new_token().expect("token");
        let hash = auth::token_hash(&token);
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let c = auth::caller_of(&hash, "dave@acme.org", "human", &roles).expect("valid");
        config.tokens.insert(hash, c);
        token
    };
    let dave_enforcer = add(&["enforcer"]);
    let dave_approver = add(&["approver"]);
    let server = TestServer::start_config(config, data).await;
    let mut authz = server.client().await;
    let held = authz
        .authorize(bearer(
            &dave_enforcer,
            identity_change("task-d", "arn:role/d"),
        ))
        .await
        .expect("held")
        .into_inner();
    let id = held.approval_id;
    assert!(!id.is_empty());
    let s = ApprovalsClient::new(server.channel().await)
        .decide(bearer(
            &dave_approver,
            pb::DecideApprovalRequest {
                id: id.clone(),
                approve: true,
                comment: "mine".into(),
            },
        ))
        .await
        .expect_err("dave cannot approve what dave held");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("enforcer role"), "{}", s.message());
    let refused = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "vote-refused",
    );
    assert!(
        refused
            .iter()
            .any(|r| r.record.principal.as_deref() == Some("dave@acme.org")),
        "the refused vote is on record"
    );
    // Another person still may.
    ApprovalsClient::new(server.channel().await)
        .decide(bearer(
            &tokens.alice,
            pb::DecideApprovalRequest {
                id,
                approve: true,
                comment: "ok".into(),
            },
        ))
        .await
        .expect("alice approves");

    // `arbiter token create` refuses to give one identity the other side.
    let dir = tempfile::tempdir().expect("tempdir");
    let create = |role: &str| {
        Command::new(BIN)
            .args([
                "token",
                "create",
                "--id",
                "erin@acme.org",
                "--kind",
                "human",
                "--role",
                role,
                "--data-dir",
            ])
            .arg(dir.path())
            .output()
            .expect("runs")
    };
    assert!(create("approver").status.success());
    let second = create("enforcer");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already has a token with the approver role"),
        "{err}"
    );
}

#[tokio::test]
async fn an_approval_is_redeemed_only_by_the_enforcement_identity_that_held_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let mut authz = server.client().await;
    let request = identity_change("task-b", "arn:role/b");
    let first = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("held")
        .into_inner()
        .approval_id;
    ApprovalsClient::new(server.channel().await)
        .decide(bearer(
            &t.alice,
            pb::DecideApprovalRequest {
                id: first.clone(),
                approve: true,
                comment: "ok".into(),
            },
        ))
        .await
        .expect("approved");
    // Another enforcer repeating the request does not learn the gateway's approval...
    let other = authz
        .authorize(bearer(&t.agent, request.clone()))
        .await
        .expect("held")
        .into_inner()
        .approval_id;
    assert_ne!(other, first, "its own approval, not the gateway's");
    // ... and cannot redeem it.
    let mut stolen = request.clone();
    stolen.approval_id = first.clone();
    let s = authz
        .authorize(bearer(&t.agent, stolen))
        .await
        .expect_err("not its approval");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let refusals = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "redemption-refused",
    );
    assert!(
        refusals
            .iter()
            .any(|r| r.record.principal.as_deref() == Some(crate::approvals::AGENT)),
        "the attempt is on record"
    );
    // The gateway still redeems it.
    let mut mine = request;
    mine.approval_id = first;
    let d = authz
        .authorize(bearer(&t.gateway, mine))
        .await
        .expect("redeemed")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::Allow);
}

#[tokio::test]
async fn enforcers_revoke_only_their_own_credentials_and_introspectors_only_introspect() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let introspector = auth::new_token().expect("token");
    let hash = auth::token_hash(&introspector);
    let c = auth::caller_of(
        &hash,
        "resource-server",
        "service",
        &[Role::Introspector.as_str().into()],
    )
    .expect("valid");
    config.tokens.insert(hash, c);
    let server = TestServer::start_config(config, data).await;
    let mut r = normal_request();
    r.intent.as_mut().expect("intent").task_id = "task-c".into();
    r.credential = Some(pb::CredentialRequest {
        lifetime_seconds: 300,
    });
    let issued = server
        .client()
        .await
        .authorize(bearer(&t.gateway, r))
        .await
        .expect("allowed")
        .into_inner()
        .credential
        .expect("a credential");
    let mut creds = CredentialsClient::new(server.channel().await);
    // Another enforcer: neither revoke nor complete the task.
    let s = creds
        .revoke(bearer(
            &t.agent,
            pb::RevokeRequest {
                id: issued.id.clone(),
            },
        ))
        .await
        .expect_err("not its credential");
    assert_eq!(s.code(), Code::NotFound);
    let done = creds
        .complete_task(bearer(
            &t.agent,
            pb::CompleteTaskRequest {
                task_id: "task-c".into(),
            },
        ))
        .await
        .expect("completes its own (none)")
        .into_inner();
    assert!(done.revoked.is_empty());
    // The introspector checks the credential, and can do nothing else.
    let seen = creds
        .introspect(bearer(
            &introspector,
            pb::IntrospectRequest {
                token: issued.token.clone(),
            },
        ))
        .await
        .expect("introspects")
        .into_inner();
    assert!(seen.active);
    let s = creds
        .revoke(bearer(
            &introspector,
            pb::RevokeRequest {
                id: issued.id.clone(),
            },
        ))
        .await
        .expect_err("not a holder");
    assert_eq!(s.code(), Code::PermissionDenied);
    let s = server
        .client()
        .await
        .authorize(bearer(&introspector, normal_request()))
        .await
        .expect_err("not an enforcer");
    assert_eq!(s.code(), Code::PermissionDenied);
    // The gateway (its holder) revokes it.
    let revoked = creds
        .revoke(bearer(&t.gateway, pb::RevokeRequest { id: issued.id }))
        .await
        .expect("its own")
        .into_inner();
    assert!(revoked.revoked);
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--metrics-listen",
            "off",
            "--data-dir",
        ])
        .arg(data.path())
        .env("ARBITER_LOG", "error")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plaintext") && err.contains("--insecure-plaintext"),
        "{err}"
    );
}

/// Attributes of 64 strings of 4 KiB in [`big_request`].
const BIG_ATTRIBUTES: usize = 12;

/// About 3.2 MB once encoded (4 MB decoded), within every documented limit: 12 attributes of 64
/// strings of 4 KiB.
fn big_request() -> pb::AuthorizeRequest {
    let mut big = normal_request();
    for i in 0..BIG_ATTRIBUTES {
        big.context.insert(
            format!("blob{i}"),
            pb::Value {
                kind: Some(pb::value::Kind::Strings(pb::StringList {
                    values: vec![char::from(b'a' + i as u8).to_string().repeat(4096); 64],
                })),
            },
        );
    }
    big
}

#[tokio::test]
async fn the_record_of_a_large_request_stays_small_with_long_values_by_digest() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await.max_encoding_message_size(usize::MAX);
    let d = client
        .authorize(big_request())
        .await
        .expect("decided")
        .into_inner();
    let records = arbiter_audit::query(
        &server.audit_db(),
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Decision),
            ..arbiter_audit::Filter::default()
        },
    )
    .expect("query");
    let record = records
        .iter()
        .find(|r| r.record.decision_id.as_deref() == Some(d.decision_id.as_str()))
        .expect("recorded");
    let size = record.record.body.get().len();
    assert!(size < 128 * 1024, "the record is {size} bytes");
    let body = record.record.body_value();
    let digested = body["digested"].as_array().expect("where").len();
    assert_eq!(digested, BIG_ATTRIBUTES * 64, "every long string");
    let first = body["request"]["context"]["blob0"][0]
        .as_str()
        .expect("a string");
    assert!(
        first.starts_with("[sha256:") && first.ends_with(" 4096 bytes]"),
        "{first}"
    );
    // A normal request's record is as it always was: no `digested` key.
    let d = client
        .authorize(normal_request())
        .await
        .expect("decided")
        .into_inner();
    let records =
        arbiter_audit::query(&server.audit_db(), &arbiter_audit::Filter::default()).expect("query");
    let normal = records
        .iter()
        .find(|r| r.record.decision_id.as_deref() == Some(d.decision_id.as_str()))
        .expect("recorded");
    assert!(normal.record.body_value().get("digested").is_none());
}

/// Peak resident memory of `server` while `work` runs, sampled every 10 ms.
async fn peak_rss_during<F: Future>(server: &ServerProcess, work: F) -> (u64, F::Output) {
    let mut work = std::pin::pin!(work);
    let mut peak = server.rss_kib();
    loop {
        tokio::select! {
            out = &mut work => return (peak.max(server.rss_kib()), out),
            () = tokio::time::sleep(Duration::from_millis(10)) => peak = peak.max(server.rss_kib()),
        }
    }
}

#[tokio::test]
async fn oversized_unauthenticated_uploads_are_refused_before_their_bodies_are_read() {
    let _alone = HEAVY.lock().await;
    let server = ServerProcess::start(&[]).await;
    let mut client = server.client().await;
    for _ in 0..50 {
        client.authorize(normal_request()).await.expect("warm");
    }
    let idle = server.rss_kib();
    let upload = |channel: Channel| async move {
        let bundle = vec![0x42u8; 60 << 20];
        PolicyAdminClient::new(channel)
            .max_encoding_message_size(usize::MAX)
            .load_set(pb::LoadSetRequest {
                source: Some(pb::load_set_request::Source::Bundle(bundle)),
                activation: 0,
            })
            .await
    };
    let uploads = futures::future::join_all((0..4).map(|_| {
        let server = &server;
        async move { upload(server.channel().await).await }
    }));
    // Decisions are answered meanwhile.
    let decisions = async {
        let started = Instant::now();
        let mut answered = 0;
        while started.elapsed() < Duration::from_millis(500) {
            client
                .authorize(normal_request())
                .await
                .expect("decides meanwhile");
            answered += 1;
        }
        answered
    };
    let (peak, (results, answered)) =
        peak_rss_during(&server, async { tokio::join!(uploads, decisions) }).await;
    for r in results {
        let s = r.expect_err("no admin token");
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    }
    assert!(answered > 0);
    assert!(
        peak < idle + 50 * 1024,
        "RSS went from {idle} KiB to {peak} KiB: bodies were read before the caller was known"
    );
}

#[tokio::test]
async fn request_bytes_in_flight_are_bounded() {
    let _alone = HEAVY.lock().await;
    let server =
        ServerProcess::start_with_config(&[], Some("[connections]\nrequest_mib_in_flight = 80\n"))
            .await;
    let mut client = server.client().await;
    client.authorize(normal_request()).await.expect("warm");
    let idle = server.rss_kib();
    let big = big_request();
    // 96 at once: about 300 MB sent, bodies read at most 80 MiB at a time (decoded
    // requests add to that; unbounded, the server held all of it at once).
    let calls = futures::future::join_all((0..96).map(|_| {
        let (server, big) = (&server, big.clone());
        async move {
            let mut c = server.client().await.max_encoding_message_size(usize::MAX);
            c.authorize(big).await.map(|_| ()).map_err(|s| s.code())
        }
    }));
    let (peak, results) = peak_rss_during(&server, calls).await;
    let exhausted = results
        .iter()
        .filter(|r| **r == Err(Code::ResourceExhausted))
        .count();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert!(exhausted > 0, "{results:?}");
    assert!(answered > 0, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Code::ResourceExhausted))),
        "{results:?}"
    );
    // What the server holds per request in flight: the body (about 3 MB), the decoded
    // request, its WIT form, the guest's copy and HTTP/2 buffers, about 13-15 MB; with
    // 80 MiB of bodies admitted at once that peaks at 400-430 MB above idle (measured
    // 2026-12-06: under 400 in most runs, 404-430 in about one in four). With the
    // budget at its maximum (65,536 MiB, so every body is admitted at once) the same
    // run went 577 MB above idle.
    assert!(
        peak < idle + 480 * 1024,
        "RSS went from {idle} KiB to {peak} KiB"
    );
    client
        .authorize(normal_request())
        .await
        .expect("still decides");
}

#[tokio::test]
async fn a_caller_names_only_the_sets_its_entry_lists() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.policy_sets = vec![
        "builtin:reference".into(),
        "builtin:reference-weakened".into(),
    ];
    let mut add = |id: &str, sets: Option<Vec<String>>| {
        let token = auth::new_token().expect("token");
        let hash = auth::token_hash(&token);
        let mut c = auth::caller_of(&hash, id, "service", &["enforcer".into()]).expect("valid");
        c.sets = auth::SetAccess::from_config(sets);
        config.tokens.insert(hash, c);
        token
    };
    let plain = add("gw-plain", None);
    let listed = add("gw-listed", Some(vec!["reference-*".into()]));
    config.anonymous_roles = Vec::new();
    let server = TestServer::start_config(config, data).await;
    let mut client = server.client().await;
    let naming = |set: &str| {
        let mut r = normal_request();
        r.policy_set = set.into();
        r
    };
    // Without a list: the default set, named or not, and nothing else.
    client
        .authorize(bearer(&plain, normal_request()))
        .await
        .expect("default");
    client
        .authorize(bearer(&plain, naming("reference")))
        .await
        .expect("default by name");
    let s = client
        .authorize(bearer(&plain, naming("reference-weakened")))
        .await
        .expect_err("not listed");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(
        s.message().contains("may not select policy set"),
        "{}",
        s.message()
    );
    // With `sets = ["reference-*"]`.
    client
        .authorize(bearer(&listed, naming("reference-weakened")))
        .await
        .expect("listed");
}

#[tokio::test]
async fn a_token_revoked_while_its_watch_stream_is_open_ends_the_stream() {
    let data = tempfile::tempdir().expect("tempdir");
    let created = Command::new(BIN)
        .args([
            "token",
            "create",
            "--id",
            "frank@acme.org",
            "--kind",
            "human",
            "--role",
            "approver",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .expect("runs");
    assert!(created.status.success());
    let frank = String::from_utf8(created.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    let dir = data.path().to_path_buf();
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let mut stream = ApprovalsClient::new(server.channel().await)
        .watch_approvals(bearer(
            &frank,
            pb::WatchApprovalsRequest {
                include_pending: false,
            },
        ))
        .await
        .expect("watching")
        .into_inner();
    let revoked = Command::new(BIN)
        .args(["token", "revoke", "--id", "frank@acme.org", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // The server picks the removal up within its refresh interval.
    tokio::time::sleep(auth::REFRESH + Duration::from_secs(1)).await;
    server
        .client()
        .await
        .authorize(bearer(&t.gateway, identity_change("task-w", "arn:role/w")))
        .await
        .expect("held");
    let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream answers");
    let s = next.expect_err("the stream ends with the refusal, not the event");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_sharing_a_key_secret_key_their_redacted_digests_alike() {
    // Two replicas' data directories: one key secret, derived redaction key, no key file.
    let digest = |secret: u8| async move {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(data.path());
        let t = with_tokens(&mut config);
        config.audit.as_mut().expect("audit on").redact = vec!["context.source_ip".into()];
        config.credentials.key_secret =
            Some(arbiter::credentials::KeySecret::from_bytes(&[secret; 40]).expect("secret"));
        let keys = data.path().join("keys");
        let server = TestServer::start_config(config, data).await;
        let held = server
            .client()
            .await
            .authorize(bearer(&t.gateway, identity_change("task-k", "arn:role/k")))
            .await
            .expect("held")
            .into_inner();
        let records = arbiter_audit::query(&server.audit_db(), &arbiter_audit::Filter::default())
            .expect("query");
        let body = records
            .iter()
            .find(|r| r.record.decision_id.as_deref() == Some(held.decision_id.as_str()))
            .expect("decision record")
            .record
            .body_value();
        assert!(!keys.join("redaction.key").exists(), "derived, not stored");
        body["request_digest"].as_str().expect("digest").to_string()
    };
    let (a, b, other) = (digest(7).await, digest(7).await, digest(8).await);
    assert!(a.starts_with("hmac-sha256:"), "{a}");
    assert_eq!(
        a, b,
        "one secret, one key: the same request has the same digest"
    );
    assert_ne!(a, other, "another secret keys another digest");
}

#[tokio::test]
async fn redacted_fields_stay_redacted_in_every_record_and_digests_are_keyed() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_path_buf();
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.audit.as_mut().expect("audit on").redact =
        vec!["context.source_ip".into(), "principal".into()];
    let server = TestServer::start_config(config, data).await;
    let request = identity_change("task-r", "arn:role/r");
    let held = server
        .client()
        .await
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("held")
        .into_inner();
    let records =
        arbiter_audit::query(&server.audit_db(), &arbiter_audit::Filter::default()).expect("query");
    let decision = records
        .iter()
        .find(|r| {
            r.record.decision_id.as_deref() == Some(held.decision_id.as_str())
                && r.record.kind == arbiter_audit::Kind::Decision
        })
        .expect("decision record");
    let body = decision.record.body_value();
    let decoded = arbiter::grpc::decode::authorize(request)
        .expect("valid")
        .request;
    let digest = body["request_digest"].as_str().expect("digest");
    assert!(digest.starts_with("hmac-sha256:"), "{digest}");
    assert!(
        !digest.contains(&hex::encode(decoded.digest())),
        "not the plain SHA-256"
    );
    assert_eq!(decision.record.principal.as_deref(), Some("[redacted]"));
    assert_eq!(body["request"]["context"]["source_ip"], "[redacted]");
    // The approval record does not name the requester either.
    let created = audit_records(&server.audit_db(), arbiter_audit::Kind::Approval, "created");
    let approval = created[0].record.body_value();
    assert_eq!(approval["requester"], "[redacted]", "{approval}");
    assert!(
        approval["request_digest"]
            .as_str()
            .expect("digest")
            .starts_with("hmac-sha256:")
    );
    // The key is kept with the other keys, owner-only.
    let key = dir.join("keys").join("redaction.key");
    assert_eq!(std::fs::read(&key).expect("the key").len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
