//! The rule-set lifecycle through the real server: signed bundles, atomic hot swap
//! under load, refusals that leave the active set serving, rollback, shadow mode.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arbiter::auth::{self, Role};
use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::policy_admin_client::PolicyAdminClient;
use arbiter_core::Outcome;
use arbiter_keys::SecretKey;
use base64::Engine as _;
use tonic::transport::Channel;

use crate::approvals::{bearer, channel};
use crate::support::*;

/// v2 switches these rules off: risky actions it allows, exports it no longer holds.
const V2_DISABLED: &[&str] = &["F1", "G4"];

/// The reference policy's decision when `disabled` rules are off, from the rules a
/// vector lists as matching (every matching rule is listed).
fn decide_by_hand(rules: &[String], approved: bool, disabled: &[&str]) -> Outcome {
    let on = |g: char| {
        rules
            .iter()
            .any(|r| r.starts_with(g) && !disabled.contains(&r.as_str()))
    };
    if on('F') || !on('P') {
        Outcome::Deny
    } else if on('G') && !approved {
        Outcome::RequireApproval
    } else {
        Outcome::Allow
    }
}

/// Unapproved public vectors (the server never sees a verified approval here) with
/// what v1 and v2 must decide.
struct Case {
    request: pb::AuthorizeRequest,
    v1: Outcome,
    v2: Outcome,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors");
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            if v["approved"].as_bool() == Some(true) {
                return None;
            }
            let rules: Vec<String> = serde_json::from_value(v["rules"].clone()).expect("rules");
            let (_, request) = arbiter::cli::check::parse_line(l).expect("request");
            let v1 = decide_by_hand(&rules, false, &[]);
            assert_eq!(
                v1.as_str(),
                v["expected"].as_str().expect("expected"),
                "hand computation"
            );
            Some(Case {
                request: arbiter::grpc::encode::request(&request),
                v1,
                v2: decide_by_hand(&rules, false, V2_DISABLED),
            })
        })
        .collect()
}

/// A set directory: the reference plugin as `reference` version `version`.
fn set_dir(root: &Path, version: &str, settings: &str) -> PathBuf {
    let dir = root.join(format!("set-{version}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(
        arbiter_plugin_build::plugin("reference"),
        dir.join("reference.wasm"),
    )
    .expect("copy");
    std::fs::write(
        dir.join("policy-set.toml"),
        format!("format = 1\nname = \"reference\"\nversion = \"{version}\"\n[[plugins]]\nname = \"reference\"\npath = \"reference.wasm\"\n[plugins.settings]\n{settings}\n"),
    )
    .expect("manifest");
    dir
}

/// Packs `dir` and signs it with `key` (unsigned with `None`).
fn bundle(dir: &Path, key: Option<&SecretKey>) -> PathBuf {
    let name = dir.file_name().expect("name").to_string_lossy();
    let signed = if key.is_some() { "signed" } else { "unsigned" };
    let out = dir.with_file_name(format!("{name}.{signed}.bundle"));
    arbiter_bundle::pack(dir, &out).expect("pack");
    if let Some(k) = key {
        arbiter_bundle::sign(&out, k).expect("sign");
    }
    out
}

struct Fixture {
    server: TestServer,
    admin: String,
    key: SecretKey,
    root: tempfile::TempDir,
    v2: PathBuf,
}

/// Two signed versions, a server config serving the first with the key trusted, and
/// an admin token.
struct Setup {
    config: arbiter::config::Config,
    admin: String,
    key: SecretKey,
    v2: PathBuf,
}

fn setup(root: &Path, data: &Path) -> Setup {
    let key = SecretKey::generate().expect("key");
    let public = root.join("trusted.pub");
    key.public().write(&public).expect("pub");
    let v1 = bundle(&set_dir(root, "1.0.0", ""), Some(&key));
    let v2 = bundle(
        &set_dir(root, "2.0.0", "disabled_rules = [\"F1\", \"G4\"]"),
        Some(&key),
    );
    let mut config = test_config(data);
    config.policy_sets = vec![v1.display().to_string()];
    config.trusted_keys = vec![public];
    let admin = auth::new_token().expect("token");
    let hash = auth::token_hash(&admin);
    let caller = auth::caller_of(
        &hash,
        "root@acme.org",
        "human",
        &[Role::Admin.as_str().into()],
    )
    .expect("caller");
    config.tokens.insert(hash, caller);
    Setup {
        config,
        admin,
        key,
        v2,
    }
}

async fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let s = setup(root.path(), data.path());
    Fixture {
        server: TestServer::start_config(s.config, data).await,
        admin: s.admin,
        key: s.key,
        root,
        v2: s.v2,
    }
}

async fn load(
    admin: &mut PolicyAdminClient<Channel>,
    token: &str,
    path: &Path,
    activation: pb::Activation,
) -> Result<pb::SetStatus, tonic::Status> {
    let bytes = std::fs::read(path).expect("bundle");
    admin
        .load_set(bearer(
            token,
            pb::LoadSetRequest {
                source: Some(pb::load_set_request::Source::Bundle(bytes)),
                activation: activation as i32,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The status of the `reference` set.
async fn status(admin: &mut PolicyAdminClient<Channel>, token: &str) -> pb::SetStatus {
    admin
        .get_set_status(bearer(
            token,
            pb::GetSetStatusRequest {
                name: "reference".into(),
            },
        ))
        .await
        .expect("status")
        .into_inner()
}

fn enforced(s: &pb::SetStatus) -> &str {
    s.versions
        .iter()
        .find(|v| v.state == pb::SetState::Enforced as i32)
        .map(|v| v.version.as_str())
        .expect("enforced")
}

#[tokio::test(flavor = "multi_thread")]
async fn sets_swap_atomically_under_load_and_every_decision_matches_its_version() {
    let f = fixture().await;
    let ch = channel(&f.server.url).await;
    let mut admin = PolicyAdminClient::new(ch.clone());
    load(&mut admin, &f.admin, &f.v2, pb::Activation::None)
        .await
        .expect("v2 loads");
    let cases = Arc::new(cases());
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut workers = Vec::new();
    // 16 requests in flight for the whole test.
    for w in 0..16usize {
        let (ch, cases, stop, served) = (ch.clone(), cases.clone(), stop.clone(), served.clone());
        workers.push(tokio::spawn(async move {
            let mut c = AuthorizerClient::new(ch);
            let mut latencies = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let case = &cases[i % cases.len()];
                i += 16;
                let started = Instant::now();
                let r = c
                    .authorize(case.request.clone())
                    .await
                    .expect("no request fails during swaps")
                    .into_inner();
                latencies.push(started.elapsed());
                let (expected, slot) = match r.policy_set_version.as_str() {
                    "1.0.0" => (case.v1, 0),
                    "2.0.0" => (case.v2, 1),
                    other => panic!("unknown version {other}"),
                };
                assert_eq!(
                    arbiter::grpc::encode::outcome_of(r.decision),
                    Some(expected),
                    "decision of version {}",
                    r.policy_set_version
                );
                served[slot].fetch_add(1, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let mut swaps = 0;
    for round in 0..24 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let version = if round % 2 == 0 { "2.0.0" } else { "1.0.0" };
        let s = admin
            .activate_set(bearer(
                &f.admin,
                pb::ActivateSetRequest {
                    name: "reference".into(),
                    version: version.into(),
                },
            ))
            .await
            .expect("activates")
            .into_inner();
        assert_eq!(enforced(&s), version);
        swaps += 1;
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let (v1, v2) = (
        served[0].load(Ordering::Relaxed),
        served[1].load(Ordering::Relaxed),
    );
    assert!(
        swaps >= 20 && v1 > 0 && v2 > 0,
        "{swaps} swaps, {v1} on v1, {v2} on v2"
    );
    eprintln!(
        "hot swap: {swaps} swaps under 16 in flight, {} decisions all correct ({v1} by 1.0.0, {v2} by 2.0.0), 0 failed, p99 {p99:?}",
        latencies.len()
    );
}

/// Rewrites a bundle: `change` edits its files (by path); the index is kept unless
/// `reindex`, and the signature is redone with `resign`.
fn rewrite(
    path: &Path,
    out: &Path,
    change: impl FnOnce(&mut BTreeMap<String, Vec<u8>>),
    reindex: bool,
    resign: Option<&SecretKey>,
) {
    let mut files = BTreeMap::new();
    let mut order = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).expect("open"));
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read");
        order.push(name.clone());
        files.insert(name, bytes);
    }
    change(&mut files);
    if reindex {
        let mut index: serde_json::Value =
            serde_json::from_slice(&files["bundle.json"]).expect("index");
        let digest = |b: &[u8]| {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(b))
        };
        let m = &files["policy-set.toml"];
        index["manifest"]["sha256"] = digest(m).into();
        index["manifest"]["size"] = m.len().into();
        files.insert(
            "bundle.json".into(),
            serde_json::to_vec(&index).expect("json"),
        );
    }
    if let Some(key) = resign {
        let mut message = arbiter_bundle::SIGNATURE_DOMAIN.to_vec();
        message.extend_from_slice(&files["bundle.json"]);
        let sig = serde_json::json!({
            "algorithm": "ed25519",
            "key_id": key.public().id(),
            "signature": base64::engine::general_purpose::STANDARD.encode(key.sign(&message)),
        });
        files.insert("bundle.sig".into(), serde_json::to_vec(&sig).expect("json"));
        if !order.contains(&"bundle.sig".to_string()) {
            order.push("bundle.sig".into());
        }
    }
    let mut builder = tar::Builder::new(std::fs::File::create(out).expect("create"));
    for name in order.iter().filter(|n| files.contains_key(*n)) {
        let bytes = &files[name];
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .expect("append");
    }
    builder.finish().expect("finish");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bundles_are_refused_with_their_reason_and_the_active_set_keeps_serving() {
    let f = fixture().await;
    let ch = channel(&f.server.url).await;
    let mut admin = PolicyAdminClient::new(ch.clone());
    let mut authz = AuthorizerClient::new(ch.clone());
    let root = f.root.path();
    let stranger = SecretKey::generate().expect("key");
    let v3 = set_dir(root, "3.0.0", "");
    let unsigned = bundle(&v3, None);
    let wrong_key = root.join("wrong-key.bundle");
    arbiter_bundle::pack(&v3, &wrong_key).expect("pack");
    arbiter_bundle::sign(&wrong_key, &stranger).expect("sign");
    let signed = bundle(&v3, Some(&f.key));
    let tampered_plugin = root.join("tampered-plugin.bundle");
    rewrite(
        &signed,
        &tampered_plugin,
        |files| {
            let wasm = files.get_mut("reference.wasm").expect("plugin");
            let last = wasm.len() - 1;
            wasm[last] ^= 0xff;
        },
        false,
        None,
    );
    let tampered_manifest = root.join("tampered-manifest.bundle");
    rewrite(
        &signed,
        &tampered_manifest,
        |files| {
            let m = files.get_mut("policy-set.toml").expect("manifest");
            m.extend_from_slice(b"disabled_rules = [\"F1\"]\n");
        },
        false,
        None,
    );
    let refuses_settings = bundle(
        &set_dir(root, "4.0.0", "disabled_rules = [\"Z9\"]"),
        Some(&f.key),
    );
    let missing_data = root.join("missing-data.bundle");
    rewrite(
        &signed,
        &missing_data,
        |files| {
            let m = files.get_mut("policy-set.toml").expect("manifest");
            let text = String::from_utf8(m.clone()).expect("utf8").replace(
                "version = \"3.0.0\"\n",
                "version = \"3.0.0\"\ndata = [\"data/teams.json\"]\n",
            );
            *m = text.into_bytes();
        },
        true,
        Some(&f.key),
    );
    let wit_dir = root.join("set-wit");
    std::fs::create_dir_all(&wit_dir).expect("mkdir");
    std::fs::copy(
        arbiter_plugin_build::plugin("wrong-version"),
        wit_dir.join("p.wasm"),
    )
    .expect("copy");
    std::fs::write(wit_dir.join("policy-set.toml"), "format = 1\nname = \"reference\"\nversion = \"9.0.0\"\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\n").expect("manifest");
    let breaks_wit = bundle(&wit_dir, Some(&f.key));

    let refusals: [(&str, &Path, &str); 7] = [
        ("unsigned", &unsigned, "not signed"),
        ("wrong key", &wrong_key, &stranger.public().id()),
        ("tampered plugin", &tampered_plugin, "reference.wasm"),
        ("tampered manifest", &tampered_manifest, "policy-set.toml"),
        ("configure refuses", &refuses_settings, "Z9"),
        ("missing data file", &missing_data, "data/teams.json"),
        ("breaks the WIT contract", &breaks_wit, "arbiter:policy"),
    ];
    for (what, path, needle) in refusals {
        let s = load(&mut admin, &f.admin, path, pb::Activation::Enforce)
            .await
            .expect_err(what);
        assert_eq!(
            s.code(),
            tonic::Code::FailedPrecondition,
            "{what}: {}",
            s.message()
        );
        assert!(
            s.message().contains(needle),
            "{what}: `{needle}` not in {}",
            s.message()
        );
        // Still serving version 1.0.0.
        let d = authz
            .authorize(normal_request())
            .await
            .expect("serves")
            .into_inner();
        assert_eq!(d.policy_set_version, "1.0.0", "{what}");
    }
    let status = status(&mut admin, &f.admin).await;
    assert_eq!(status.versions.len(), 1);
    // Each refusal is an audited admin act.
    let db = f.server.audit_db();
    let refused = audit_records(&db, arbiter_audit::Kind::Admin, "load-refused");
    assert_eq!(refused.len(), 7);
    // ... naming each refused upload by its hash.
    for ((what, path, _), record) in refusals.iter().zip(&refused) {
        use sha2::Digest as _;
        let sent = hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("bundle")));
        assert_eq!(
            record.record.body_value()["bundle_sha256"],
            sent.as_str(),
            "{what}"
        );
    }
    // And a good signed bundle still loads.
    let s = load(&mut admin, &f.admin, &signed, pb::Activation::Enforce)
        .await
        .expect("loads");
    assert_eq!(enforced(&s), "3.0.0");
    assert_eq!(s.versions[0].signer, f.key.public().id());
}

async fn decide_all(ch: &Channel, cases: &[Case]) -> Vec<(Outcome, String)> {
    let mut out = Vec::new();
    for chunk in cases.chunks(4) {
        let futures = chunk.iter().map(|c| {
            let mut client = AuthorizerClient::new(ch.clone());
            let r = c.request.clone();
            async move { client.authorize(r).await.expect("decides").into_inner() }
        });
        for r in futures::future::join_all(futures).await {
            out.push((
                arbiter::grpc::encode::outcome_of(r.decision).expect("outcome"),
                r.policy_set_version,
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_decisions_exactly_and_shadow_divergence_is_counted() {
    let f = fixture().await;
    let ch = channel(&f.server.url).await;
    let mut admin = PolicyAdminClient::new(ch.clone());
    let cases = cases();

    let s = load(&mut admin, &f.admin, &f.v2, pb::Activation::Enforce)
        .await
        .expect("v2");
    assert_eq!(enforced(&s), "2.0.0");
    let got = decide_all(&ch, &cases).await;
    assert!(
        got.iter()
            .zip(&cases)
            .all(|((o, v), c)| *o == c.v2 && v == "2.0.0")
    );
    let s = admin
        .rollback_set(bearer(
            &f.admin,
            pb::RollbackSetRequest {
                name: "reference".into(),
                version: String::new(),
            },
        ))
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(enforced(&s), "1.0.0");
    let got = decide_all(&ch, &cases).await;
    let wrong = got
        .iter()
        .zip(&cases)
        .filter(|((o, v), c)| *o != c.v1 || v != "1.0.0")
        .count();
    assert_eq!(
        wrong, 0,
        "rollback restores version 1.0.0's decisions exactly"
    );

    // Shadow v2 beside v1: divergence equals what the two versions decide differently.
    admin
        .shadow_set(bearer(
            &f.admin,
            pb::ShadowSetRequest {
                name: "reference".into(),
                version: "2.0.0".into(),
                demote: false,
            },
        ))
        .await
        .expect("shadow");
    let got = decide_all(&ch, &cases).await;
    assert!(
        got.iter().all(|(_, v)| v == "1.0.0"),
        "the shadow never answers"
    );
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in cases.iter().filter(|c| c.v1 != c.v2) {
        *expected
            .entry((c.v1.as_str().into(), c.v2.as_str().into()))
            .or_default() += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = status(&mut admin, &f.admin).await;
        if s.shadow_compared + s.shadow_shed >= cases.len() as u64 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (status.shadow_compared, status.shadow_shed),
        (cases.len() as u64, 0)
    );
    let counted: BTreeMap<(String, String), u64> = status
        .divergences
        .iter()
        .map(|d| ((d.from.clone(), d.to.clone()), d.count))
        .collect();
    assert_eq!(counted, expected);
    assert!(expected.values().sum::<u64>() > 50, "{expected:?}");
    // The same counts on the metrics endpoint.
    let metrics = reqwest_metrics(f.server.running.metrics_addr.expect("metrics on")).await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("arbiter_shadow_divergences_total{")
                && l.contains("from=\"deny\"")
                && l.contains("to=\"allow\"")
        })
        .expect("divergence metric");
    assert!(
        line.ends_with(&format!(
            " {}",
            expected[&("deny".to_string(), "allow".to_string())]
        )),
        "{line}"
    );

    // Promote, then demote: separate audited acts.
    let s = admin
        .activate_set(bearer(
            &f.admin,
            pb::ActivateSetRequest {
                name: "reference".into(),
                version: "2.0.0".into(),
            },
        ))
        .await
        .expect("promote")
        .into_inner();
    assert_eq!(enforced(&s), "2.0.0");
    assert!(
        s.versions
            .iter()
            .all(|v| v.state != pb::SetState::Shadow as i32)
    );
    let s = admin
        .shadow_set(bearer(
            &f.admin,
            pb::ShadowSetRequest {
                name: "reference".into(),
                version: String::new(),
                demote: true,
            },
        ))
        .await
        .expect("demote")
        .into_inner();
    assert_eq!(enforced(&s), "1.0.0");
    assert!(
        s.versions
            .iter()
            .any(|v| v.version == "2.0.0" && v.state == pb::SetState::Shadow as i32)
    );
    let db = f.server.audit_db();
    let acts: Vec<String> = arbiter_audit::query(
        &db,
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Admin),
            ..Default::default()
        },
    )
    .expect("query")
    .into_iter()
    .filter_map(|r| r.record.outcome)
    .collect();
    assert_eq!(acts, ["load", "rollback", "shadow", "activate", "demote"]);
    // Sampled divergent requests are in the audit log.
    let samples = arbiter_audit::query(
        &db,
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Shadow),
            limit: 10_000,
            ..Default::default()
        },
    )
    .expect("query");
    assert_eq!(samples.len() as u64, expected.values().sum::<u64>());
}

/// `GET /metrics` with a bare HTTP/1.1 request (no HTTP client dependency for one call).
pub(crate) async fn reqwest_metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(
        out.starts_with("HTTP/1.1 200"),
        "{}",
        &out[..out.len().min(200)]
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_comes_back_with_the_versions_it_enforced_and_shadowed() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let Setup {
        mut config,
        admin: token,
        key,
        v2,
    } = setup(root.path(), data.path());
    let v3 = bundle(
        &set_dir(root.path(), "3.0.0", "approvers_required = 2"),
        Some(&key),
    );
    let running = arbiter::server::start(&config).await.expect("starts");
    let mut admin =
        PolicyAdminClient::new(channel(&format!("http://{}", running.local_addr)).await);
    load(&mut admin, &token, &v2, pb::Activation::Enforce)
        .await
        .expect("v2");
    load(&mut admin, &token, &v3, pb::Activation::Shadow)
        .await
        .expect("v3");
    running.shutdown().await.expect("stops");

    let running = arbiter::server::start(&config).await.expect("restarts");
    let mut admin =
        PolicyAdminClient::new(channel(&format!("http://{}", running.local_addr)).await);
    let s = status(&mut admin, &token).await;
    assert_eq!(enforced(&s), "2.0.0");
    let states: BTreeMap<&str, i32> = s
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.state))
        .collect();
    assert_eq!(states["3.0.0"], pb::SetState::Shadow as i32);
    assert_eq!(states["1.0.0"], pb::SetState::Loaded as i32);
    let mut authz = AuthorizerClient::new(channel(&format!("http://{}", running.local_addr)).await);
    assert_eq!(
        authz
            .authorize(normal_request())
            .await
            .expect("serves")
            .into_inner()
            .policy_set_version,
        "2.0.0"
    );
    let s = admin
        .rollback_set(bearer(
            &token,
            pb::RollbackSetRequest {
                name: "reference".into(),
                version: "1.0.0".into(),
            },
        ))
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(enforced(&s), "1.0.0");
    running.shutdown().await.expect("stops");

    // A config that names another set wins over the saved state.
    config.policy_sets = vec![v3.display().to_string()];
    let running = arbiter::server::start(&config).await.expect("restarts");
    let mut authz = AuthorizerClient::new(channel(&format!("http://{}", running.local_addr)).await);
    assert_eq!(
        authz
            .authorize(normal_request())
            .await
            .expect("serves")
            .into_inner()
            .policy_set_version,
        "3.0.0"
    );
    running.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_that_cannot_be_audited_is_undone_and_unknown_sets_are_not_found() {
    let f = fixture().await;
    let ch = channel(&f.server.url).await;
    let mut admin = PolicyAdminClient::new(ch.clone());
    load(&mut admin, &f.admin, &f.v2, pb::Activation::None)
        .await
        .expect("v2 loads");
    let db = f.server.audit_db();
    break_audit_log(&db);
    let activate = pb::ActivateSetRequest {
        name: "reference".into(),
        version: "2.0.0".into(),
    };
    let s = admin
        .activate_set(bearer(&f.admin, activate.clone()))
        .await
        .expect_err("not recorded");
    assert_eq!(s.code(), tonic::Code::Unavailable);
    mend_audit_log(&db);
    let status = status(&mut admin, &f.admin).await;
    assert_eq!(
        enforced(&status),
        "1.0.0",
        "the unrecorded change was undone"
    );
    let s = admin
        .activate_set(bearer(&f.admin, activate))
        .await
        .expect("recorded now")
        .into_inner();
    assert_eq!(enforced(&s), "2.0.0");
    let nope = pb::RollbackSetRequest {
        name: "nope".into(),
        version: String::new(),
    };
    assert_eq!(
        admin
            .rollback_set(bearer(&f.admin, nope))
            .await
            .expect_err("unknown")
            .code(),
        tonic::Code::NotFound
    );
}

/// Loading past the version limit unloads the oldest versions, but never the one a
/// rollback would go back to, and the load's admin record lists what it unloaded.
#[tokio::test(flavor = "multi_thread")]
async fn pruning_keeps_the_rollback_target_and_is_on_record() {
    let f = fixture().await;
    let mut admin = PolicyAdminClient::new(channel(&f.server.url).await);
    load(&mut admin, &f.admin, &f.v2, pb::Activation::Enforce)
        .await
        .expect("v2 enforced");
    // 1.0.0 (now the rollback target), 2.0.0 (enforced) and 16 more: two too many.
    let extra = arbiter::sets::MAX_VERSIONS;
    for i in 0..extra {
        let dir = set_dir(f.root.path(), &format!("3.{i}.0"), "");
        load(
            &mut admin,
            &f.admin,
            &bundle(&dir, Some(&f.key)),
            pb::Activation::None,
        )
        .await
        .expect("loaded");
    }
    let s = status(&mut admin, &f.admin).await;
    let loaded: Vec<&str> = s.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(loaded.len(), arbiter::sets::MAX_VERSIONS, "{loaded:?}");
    assert!(loaded.contains(&"1.0.0"), "{loaded:?}");
    assert!(
        !loaded.contains(&"3.0.0") && !loaded.contains(&"3.1.0"),
        "{loaded:?}"
    );

    let records = audit_records(&f.server.audit_db(), arbiter_audit::Kind::Admin, "load");
    let mut unloaded: Vec<String> = records
        .iter()
        .flat_map(|r| {
            r.record.body_value()["unloaded"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| v["version"].as_str().unwrap_or("").to_owned())
        .collect();
    unloaded.sort();
    assert_eq!(unloaded, ["3.0.0", "3.1.0"]);

    let back = admin
        .rollback_set(bearer(
            &f.admin,
            pb::RollbackSetRequest {
                name: "reference".into(),
                version: String::new(),
            },
        ))
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(enforced(&back), "1.0.0");
}

#[tokio::test]
async fn an_older_signed_version_built_in_sets_and_keys_out_of_scope_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let mut s = setup(root.path(), data.path());
    // A second key, trusted only for `pci-*` sets.
    let pci_key = SecretKey::generate().expect("key");
    let pci_pub = root.path().join("pci.pub");
    pci_key.public().write(&pci_pub).expect("pub");
    s.config.scoped_keys = vec![(pci_pub, vec!["pci-*".into()])];
    let server = TestServer::start_config(s.config, data).await;
    let mut admin = PolicyAdminClient::new(channel(&server.url).await);
    load(&mut admin, &s.admin, &s.v2, pb::Activation::Enforce)
        .await
        .expect("2.0.0 loads over 1.0.0");

    // An older version, validly signed, never held: refused, and on record.
    let old = bundle(&set_dir(root.path(), "0.9.0", ""), Some(&s.key));
    let e = load(&mut admin, &s.admin, &old, pb::Activation::Enforce)
        .await
        .expect_err("older than 2.0.0");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("older than version 2.0.0"),
        "{}",
        e.message()
    );
    assert_eq!(enforced(&status(&mut admin, &s.admin).await), "2.0.0");
    let refused = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Admin,
        "load-refused",
    );
    assert!(
        refused.iter().any(|r| r.record.body_value()["refused"]
            .as_str()
            .is_some_and(|m| m.contains("older"))),
        "the refusal is on record: {:?}",
        refused
            .iter()
            .map(|r| r.record.body_value())
            .collect::<Vec<_>>()
    );

    // A built-in set the config does not list: the binary ships sets nobody signed.
    let e = admin
        .load_set(bearer(
            &s.admin,
            pb::LoadSetRequest {
                source: Some(pb::load_set_request::Source::Path(
                    "builtin:reference-weakened".into(),
                )),
                activation: pb::Activation::Enforce as i32,
            },
        ))
        .await
        .expect_err("not listed");
    assert!(e.message().contains("built-in"), "{}", e.message());

    // A key trusted for `pci-*` cannot sign `reference`.
    let scoped = bundle(&set_dir(root.path(), "3.0.0", ""), Some(&pci_key));
    let e = load(&mut admin, &s.admin, &scoped, pb::Activation::Enforce)
        .await
        .expect_err("out of scope");
    assert!(
        e.message().contains("trusted only for pci-*"),
        "{}",
        e.message()
    );
    assert_eq!(enforced(&status(&mut admin, &s.admin).await), "2.0.0");

    // Going back is an explicit activation of a version the server holds.
    admin
        .activate_set(bearer(
            &s.admin,
            pb::ActivateSetRequest {
                name: "reference".into(),
                version: "1.0.0".into(),
            },
        ))
        .await
        .expect("activating a held version");
    assert_eq!(enforced(&status(&mut admin, &s.admin).await), "1.0.0");
}
