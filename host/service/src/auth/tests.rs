use super::*;

fn md(token: Option<&str>) -> Presented<'_> {
    token.map_or(Presented::Nothing, Presented::Bearer)
}

#[test]
fn authorization_headers_are_read_strictly() {
    assert_eq!(Presented::from_header(None), Presented::Nothing);
    assert_eq!(
        Presented::from_header(Some(b"Bearer arb_x")),
        Presented::Bearer("arb_x")
    );
    assert_eq!(
        Presented::from_header(Some(b"bearer arb_x")),
        Presented::Bearer("arb_x")
    );
    for bad in [&b"Basic YQ=="[..], b"Bearer\tx", b"arb_x", b"Bearer \xff"] {
        assert_eq!(
            Presented::from_header(Some(bad)),
            Presented::Malformed,
            "{bad:?}"
        );
    }
}

#[test]
fn tokens_map_to_callers_and_roles_are_checked() {
    let token = new_token().expect("token");
    let alice =
        caller_of(&token_hash(&token), "alice", "human", &["approver".into()]).expect("valid");
    let auth = Authenticator::new(HashMap::from([(token_hash(&token), alice)]), vec![]);
    let c = auth
        .authorize(md(Some(&token)), &Peer::local(), &[Role::Approver])
        .expect("ok");
    assert_eq!(c.id, "alice");
    assert!(matches!(
        auth.authorize(md(Some(&token)), &Peer::local(), &[Role::Admin]),
        Err(ServiceError::MissingRole { .. })
    ));
    assert!(matches!(
        auth.authorize(md(Some("arb_wrong")), &Peer::local(), &[Role::Approver]),
        Err(ServiceError::Unauthenticated(_))
    ));
    assert!(matches!(
        auth.authorize(md(None), &Peer::local(), &[Role::Enforcer]),
        Err(ServiceError::Unauthenticated(_))
    ));
}

#[test]
fn anonymous_callers_get_only_the_anonymous_roles() {
    let auth = Authenticator::new(HashMap::new(), vec![Role::Enforcer]);
    assert!(
        !auth
            .authorize(md(None), &Peer::local(), &[Role::Enforcer])
            .expect("ok")
            .authenticated
    );
    assert!(matches!(
        auth.authorize(md(None), &Peer::local(), &[Role::Admin]),
        Err(ServiceError::MissingRole { .. })
    ));
    // Anonymous roles are for callers on this machine only.
    let remote = Peer::at(Some("10.0.0.7:40000".parse().expect("addr")));
    assert!(matches!(
        auth.authorize(md(None), &remote, &[Role::Enforcer]),
        Err(ServiceError::Unauthenticated(_))
    ));
    let lo = Peer::at(Some("127.0.0.1:40000".parse().expect("addr")));
    assert!(auth.authorize(md(None), &lo, &[Role::Enforcer]).is_ok());
}

#[test]
fn a_certificate_and_a_token_must_name_one_identity() {
    let token = new_token().expect("token");
    let gw = caller_of(
        &token_hash(&token),
        "spiffe://acme.org/gw",
        "service",
        &["enforcer".into()],
    )
    .expect("valid");
    let rule = PeerConfig {
        trust_domain: Some("acme.org".into()),
        kind: "service".into(),
        roles: vec!["enforcer".into()],
        ..PeerConfig::default()
    };
    let auth = Authenticator::new(HashMap::from([(token_hash(&token), gw)]), vec![])
        .with_peers(PeerMap::new(vec![rule.rule().expect("rule")]));
    let peer = |id: &str| Peer {
        door: "grpc",
        addr: Some("10.0.0.7:40000".parse().expect("addr")),
        certificate: Some(PeerCertificate {
            spiffe_id: Some(id.into()),
            subject: "CN=x".into(),
            not_after: i64::MAX,
        }),
    };
    let same = auth.authorize(
        md(Some(&token)),
        &peer("spiffe://acme.org/gw"),
        &[Role::Enforcer],
    );
    assert_eq!(same.expect("same identity").id, "spiffe://acme.org/gw");
    let other = auth.authorize(
        md(Some(&token)),
        &peer("spiffe://acme.org/other"),
        &[Role::Enforcer],
    );
    assert!(matches!(other, Err(ServiceError::IdentityMismatch { .. })));
    let cert_only = auth.authorize(
        md(None),
        &peer("spiffe://acme.org/other"),
        &[Role::Enforcer],
    );
    assert_eq!(cert_only.expect("mapped").id, "spiffe://acme.org/other");
    let unmapped = auth.authorize(md(None), &peer("spiffe://evil.org/x"), &[Role::Enforcer]);
    assert!(matches!(
        unmapped,
        Err(ServiceError::UnmappedCertificate { .. })
    ));
}

#[test]
fn only_humans_approve_and_entries_are_validated() {
    let h = "a".repeat(64);
    assert!(caller_of(&h, "bot", "agent", &["approver".into()]).is_err());
    assert!(caller_of(&h, "x", "robot", &[]).is_err());
    assert!(caller_of(&h, "x", "human", &["root".into()]).is_err());
    assert!(caller_of("abc", "x", "human", &[]).is_err());
    let both = caller_of(&h, "x", "human", &["enforcer".into(), "approver".into()]);
    assert!(both.expect_err("refused").contains("both"));
}

#[test]
fn an_expired_certificate_on_an_open_connection_proves_nothing_and_unknown_addresses_are_remote() {
    let rule = PeerConfig {
        trust_domain: Some("acme.org".into()),
        kind: "service".into(),
        roles: vec!["enforcer".into()],
        ..PeerConfig::default()
    };
    let auth = Authenticator::new(HashMap::new(), vec![Role::Enforcer])
        .with_peers(PeerMap::new(vec![rule.rule().expect("rule")]));
    let expired = Peer {
        door: "grpc",
        addr: Some("127.0.0.1:40000".parse().expect("addr")),
        certificate: Some(PeerCertificate {
            spiffe_id: Some("spiffe://acme.org/gw".into()),
            subject: String::new(),
            not_after: 1,
        }),
    };
    assert!(matches!(
        auth.authorize(md(None), &expired, &[Role::Enforcer]),
        Err(ServiceError::Unauthenticated(m)) if m.contains("expired")
    ));
    // A network caller whose address is unknown is not taken for a local one, and
    // IPv4 loopback through a dual-stack socket is local.
    let unknown = Peer::at(None);
    assert!(
        auth.authorize(md(None), &unknown, &[Role::Enforcer])
            .is_err()
    );
    let mapped = Peer::at(Some("[::ffff:127.0.0.1]:40000".parse().expect("addr")));
    assert!(auth.authorize(md(None), &mapped, &[Role::Enforcer]).is_ok());
}
