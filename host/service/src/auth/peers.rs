//! Callers proven by a client certificate (mutual TLS): the transport verifies the
//! certificate and hands over the identity it proves (a SPIFFE ID, else the subject);
//! this module maps that identity to a kind and roles, as `[[auth.peers]]` says.

use std::net::SocketAddr;

pub use arbiter_core::PeerCertificate;
use arbiter_core::PrincipalKind;
use serde::Deserialize;

use super::{Caller, Role, SetAccess};

/// What the transport knows about the other end of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Which door the call came through (`grpc`, `http`, `in-process`), for logs and
    /// metrics.
    pub door: &'static str,
    /// The remote address; `None` for a caller in the same process (`arbiter test`).
    pub addr: Option<SocketAddr>,
    /// What its verified client certificate proves, when it presented one.
    pub certificate: Option<PeerCertificate>,
}

impl Default for Peer {
    fn default() -> Self {
        Self::local()
    }
}

impl Peer {
    /// A caller in the same process.
    pub fn local() -> Self {
        Self {
            door: "in-process",
            addr: None,
            certificate: None,
        }
    }

    /// A caller at `addr`, without a client certificate.
    pub fn at(addr: Option<SocketAddr>) -> Self {
        Self {
            door: "grpc",
            addr,
            certificate: None,
        }
    }

    /// Whether the caller is on this machine: a loopback address (IPv4 loopback on a
    /// dual-stack socket included), or in-process. A network caller whose address is
    /// unknown is not on this machine.
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            Some(a) => a.ip().to_canonical().is_loopback(),
            None => self.door == "in-process",
        }
    }
}

/// One `[[auth.peers]]` entry as written in the config file: exactly one of the
/// matchers, a kind and roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// This exact SPIFFE ID.
    pub spiffe_id: Option<String>,
    /// Any SPIFFE ID starting with this (e.g. `spiffe://acme.org/ns/prod/`).
    pub spiffe_prefix: Option<String>,
    /// Any SPIFFE ID of this trust domain (e.g. `acme.org`).
    pub trust_domain: Option<String>,
    /// A certificate without a SPIFFE ID whose subject is exactly this.
    pub subject: Option<String>,
    /// `human`, `service`, `agent` or `workload`.
    pub kind: String,
    /// Roles: `enforcer`, `approver`, `admin`, `introspector`.
    pub roles: Vec<String>,
    /// Policy sets it may name in a request (absent: the default set only; `*`: any).
    pub sets: Option<Vec<String>>,
}

/// How a rule matches a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    SpiffeId(String),
    Subject(String),
    Prefix(String),
    TrustDomain(String),
}

impl Matcher {
    /// Higher is more specific: the most specific matching rule wins.
    fn rank(&self) -> (u8, usize) {
        match self {
            Self::SpiffeId(_) => (3, 0),
            Self::Subject(_) => (3, 0),
            Self::Prefix(p) => (2, p.len()),
            Self::TrustDomain(_) => (1, 0),
        }
    }

    fn matches(&self, cert: &PeerCertificate) -> bool {
        match (self, cert.spiffe_id.as_deref()) {
            (Self::SpiffeId(id), Some(s)) => s == id,
            (Self::Prefix(p), Some(s)) => s.starts_with(p.as_str()),
            (Self::TrustDomain(td), Some(s)) => s
                .strip_prefix("spiffe://")
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|d| d == td),
            (Self::Subject(subject), None) => &cert.subject == subject,
            _ => false,
        }
    }
}

/// A validated `[[auth.peers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRule {
    matcher: Matcher,
    kind: PrincipalKind,
    roles: Vec<Role>,
    sets: SetAccess,
}

fn spiffe_problem(id: &str) -> Option<&'static str> {
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return Some("must start with `spiffe://`");
    };
    let domain = rest.split('/').next().unwrap_or_default();
    if domain.is_empty() {
        return Some("has no trust domain");
    }
    if !domain
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Some("has a trust domain that is not lowercase letters, digits, `-`, `.`, `_`");
    }
    None
}

impl PeerConfig {
    /// Validates the entry (one matcher, a SPIFFE-shaped value, a known kind, roles
    /// that one identity may hold together).
    pub fn rule(&self) -> Result<PeerRule, String> {
        let given = [
            self.spiffe_id.as_ref().map(|v| ("spiffe_id", v)),
            self.spiffe_prefix.as_ref().map(|v| ("spiffe_prefix", v)),
            self.trust_domain.as_ref().map(|v| ("trust_domain", v)),
            self.subject.as_ref().map(|v| ("subject", v)),
        ];
        let given: Vec<(&str, &String)> = given.into_iter().flatten().collect();
        let [(key, value)] = given[..] else {
            return Err(
                "each entry needs exactly one of `spiffe_id`, `spiffe_prefix`, `trust_domain`, `subject`"
                    .into(),
            );
        };
        let matcher = match key {
            "spiffe_id" | "spiffe_prefix" => {
                if let Some(p) = spiffe_problem(value) {
                    return Err(format!("{key} = \"{value}\" {p}"));
                }
                if key == "spiffe_id" {
                    Matcher::SpiffeId(value.clone())
                } else if !value.ends_with('/') {
                    // `spiffe://acme.org/ns/prod` would also match `.../ns/production`.
                    return Err(format!(
                        "spiffe_prefix = \"{value}\" must end with `/`, so that it matches whole path segments"
                    ));
                } else {
                    Matcher::Prefix(value.clone())
                }
            }
            "trust_domain" => {
                if let Some(p) = spiffe_problem(&format!("spiffe://{value}")) {
                    return Err(format!(
                        "trust_domain = \"{value}\" {p} (give it without `spiffe://`)"
                    ));
                }
                Matcher::TrustDomain(value.clone())
            }
            _ if value.is_empty() => return Err("subject must not be empty".into()),
            _ => Matcher::Subject(value.clone()),
        };
        // The same rules as tokens: an approver is a human, and nobody holds
        // requests and approves them.
        let caller = super::caller_of(&"0".repeat(64), value, &self.kind, &self.roles)?;
        Ok(PeerRule {
            matcher,
            kind: caller.kind,
            roles: caller.roles,
            sets: SetAccess::from_config(self.sets.clone()),
        })
    }
}

/// Every `[[auth.peers]]` rule, most specific first.
#[derive(Debug, Clone, Default)]
pub struct PeerMap {
    rules: Vec<PeerRule>,
}

impl PeerMap {
    /// The rules, ordered so that the most specific match is found first.
    pub fn new(mut rules: Vec<PeerRule>) -> Self {
        rules.sort_by_key(|r| std::cmp::Reverse(r.matcher.rank()));
        Self { rules }
    }

    /// Whether any certificate can map to a caller.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The caller a certificate proves, or `None` when no rule maps it.
    pub fn caller(&self, cert: &PeerCertificate) -> Option<Caller> {
        let rule = self.rules.iter().find(|r| r.matcher.matches(cert))?;
        Some(Caller {
            id: cert.id().to_string(),
            kind: rule.kind,
            roles: rule.roles.clone(),
            authenticated: true,
            sets: rule.sets.clone(),
        })
    }
}

/// `[[auth.groups]]`: enforcement identities that share approvals and credentials
/// (the replicas of one gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The group's name.
    pub name: String,
    /// Identity ids (token ids, SPIFFE IDs, certificate subjects).
    pub members: Vec<String>,
}

/// Validates `[[auth.groups]]` into identity -> group; an identity is in one group.
pub fn groups(groups: &[GroupConfig]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut map = std::collections::HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        if g.name.is_empty() || g.members.is_empty() {
            return Err(format!(
                "config [[auth.groups]] entry {}: needs a `name` and at least one member",
                i + 1
            ));
        }
        for m in &g.members {
            if let Some(other) = map.insert(m.clone(), g.name.clone()) {
                return Err(format!(
                    "config [[auth.groups]]: `{m}` is in both `{other}` and `{}`; an identity is in one group",
                    g.name
                ));
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(key: &str, value: &str, roles: &[&str]) -> PeerRule {
        let mut c = PeerConfig {
            kind: "service".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..PeerConfig::default()
        };
        let v = Some(value.to_string());
        match key {
            "spiffe_id" => c.spiffe_id = v,
            "spiffe_prefix" => c.spiffe_prefix = v,
            "trust_domain" => c.trust_domain = v,
            _ => c.subject = v,
        }
        c.rule().expect("valid")
    }

    fn svid(id: &str) -> PeerCertificate {
        PeerCertificate {
            spiffe_id: Some(id.into()),
            subject: "CN=x".into(),
            not_after: i64::MAX,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let map = PeerMap::new(vec![
            rule("trust_domain", "acme.org", &["enforcer"]),
            rule(
                "spiffe_prefix",
                "spiffe://acme.org/ns/prod/",
                &["enforcer", "admin"],
            ),
            rule("spiffe_id", "spiffe://acme.org/ns/prod/sa/ops", &["admin"]),
        ]);
        let roles = |id: &str| map.caller(&svid(id)).map(|c| c.roles);
        assert_eq!(
            roles("spiffe://acme.org/ns/prod/sa/ops"),
            Some(vec![Role::Admin])
        );
        assert_eq!(
            roles("spiffe://acme.org/ns/prod/sa/gw"),
            Some(vec![Role::Enforcer, Role::Admin])
        );
        assert_eq!(
            roles("spiffe://acme.org/ns/dev/sa/gw"),
            Some(vec![Role::Enforcer])
        );
        // `acme.org.evil` is another trust domain, not a subdomain match.
        assert_eq!(roles("spiffe://acme.org.evil/ns/prod/sa/gw"), None);
        assert_eq!(roles("spiffe://other.org/x"), None);
        let c = map.caller(&svid("spiffe://acme.org/a")).expect("mapped");
        assert_eq!(c.id, "spiffe://acme.org/a");
        assert!(c.authenticated);
    }

    #[test]
    fn subjects_match_only_certificates_without_a_spiffe_id() {
        let map = PeerMap::new(vec![rule("subject", "CN=gateway,O=Acme", &["enforcer"])]);
        let plain = PeerCertificate {
            spiffe_id: None,
            subject: "CN=gateway,O=Acme".into(),
            not_after: i64::MAX,
        };
        assert_eq!(
            map.caller(&plain).map(|c| c.id),
            Some("CN=gateway,O=Acme".into())
        );
        let with_svid = PeerCertificate {
            spiffe_id: Some("spiffe://acme.org/x".into()),
            ..plain
        };
        assert_eq!(map.caller(&with_svid), None);
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let bad = |c: PeerConfig| c.rule().expect_err("refused");
        let base = PeerConfig {
            kind: "service".into(),
            roles: vec!["enforcer".into()],
            ..PeerConfig::default()
        };
        assert!(bad(base.clone()).contains("exactly one"));
        assert!(
            bad(PeerConfig {
                spiffe_id: Some("https://acme.org/x".into()),
                ..base.clone()
            })
            .contains("spiffe://")
        );
        assert!(
            bad(PeerConfig {
                spiffe_id: Some("spiffe://a/x".into()),
                trust_domain: Some("a".into()),
                ..base.clone()
            })
            .contains("exactly one")
        );
        assert!(
            bad(PeerConfig {
                trust_domain: Some("ACME.org".into()),
                ..base.clone()
            })
            .contains("lowercase")
        );
        assert!(
            bad(PeerConfig {
                trust_domain: Some("acme.org".into()),
                roles: vec!["approver".into()],
                ..base
            })
            .contains("only humans")
        );
    }
}
