//! Who is calling: bearer tokens (`authorization: Bearer <token>` metadata) mapped to
//! an identity and roles. Only SHA-256 hashes of tokens are configured or stored; the
//! plain token is shown once by `arbiter token create` and never kept.
//!
//! Tokens come from the config file (`[[auth.tokens]]`) and from the state database
//! (`arbiter token create`), which the server re-reads every [`REFRESH`], so a token
//! created or removed while the server runs takes effect within seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arbiter_core::PrincipalKind;
use arbiter_store::{StateStore, TokenEntry};
use arc_swap::ArcSwap;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::ServiceError;

mod access;
mod peers;
pub use access::SetAccess;
pub use peers::{GroupConfig, Peer, PeerCertificate, PeerConfig, PeerMap, PeerRule, groups};

/// What a caller presented to prove who it is, as a front door extracted it from its
/// transport (the gRPC `authorization` metadata, an HTTP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Nothing: an anonymous caller.
    Nothing,
    /// Something that is not `Bearer <token>`.
    Malformed,
    /// A bearer token.
    Bearer(&'a str),
}

impl<'a> Presented<'a> {
    /// Reads an `authorization` header value (`Bearer <token>`, the scheme
    /// case-insensitive as RFC 6750 allows for the usual spellings); `None` when the
    /// header is absent, and bytes that are not visible ASCII are malformed.
    pub fn from_header(value: Option<&'a [u8]>) -> Self {
        let Some(value) = value else {
            return Self::Nothing;
        };
        std::str::from_utf8(value)
            .ok()
            .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map_or(Self::Malformed, Self::Bearer)
    }
}
/// How often tokens created or removed in the state database are picked up.
pub const REFRESH: Duration = Duration::from_secs(2);
/// The prefix of tokens Arbiter creates, so a leaked one is recognisable in a scan.
pub const TOKEN_PREFIX: &str = "arb_";

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// An enforcement point: asks for decisions, introspects and revokes credentials.
    Enforcer,
    /// A human who approves or rejects held actions.
    Approver,
    /// Administers policy sets, keys and the audit log.
    Admin,
    /// A resource server: checks credentials (introspection) and nothing else.
    Introspector,
}

impl Role {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforcer => "enforcer",
            Self::Approver => "approver",
            Self::Admin => "admin",
            Self::Introspector => "introspector",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Enforcer,
            Self::Approver,
            Self::Admin,
            Self::Introspector,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// An authenticated (or, on loopback, anonymous) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity id, e.g. `alice@acme.org`; `anonymous` without a token.
    pub id: String,
    /// What kind of identity it is.
    pub kind: PrincipalKind,
    /// What it may do.
    pub roles: Vec<Role>,
    /// Whether a token proved the identity.
    pub authenticated: bool,
    /// Which policy sets it may name in a request.
    pub sets: SetAccess,
}

/// A token entry as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Hex SHA-256 of the token (`arbiter token create` prints it).
    pub sha256: String,
    /// The caller's identity id.
    pub id: String,
    /// `human`, `service`, `agent` or `workload`.
    pub kind: String,
    /// Roles: `enforcer`, `approver`, `admin`, `introspector`.
    pub roles: Vec<String>,
    /// Policy sets it may name in a request (absent: the default set only; `*`: any).
    pub sets: Option<Vec<String>>,
}

/// The hex SHA-256 of a token, as configured and stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token.
pub fn new_token() -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Parses a principal kind name.
pub fn parse_kind(s: &str) -> Option<PrincipalKind> {
    [
        PrincipalKind::Human,
        PrincipalKind::Service,
        PrincipalKind::Agent,
        PrincipalKind::Workload,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

/// Validates one token entry into the caller it proves.
pub fn caller_of(sha256: &str, id: &str, kind: &str, roles: &[String]) -> Result<Caller, String> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "token of `{id}`: `sha256` must be 64 hex digits (the SHA-256 of the token, as printed by `arbiter token create`)"
        ));
    }
    if id.is_empty() {
        return Err("a token has an empty `id`".into());
    }
    if arbiter_core::invisible_in(id) {
        return Err(format!(
            "token of `{}`: the id has control, zero-width or bidirectional-override characters, which could make two ids look alike",
            id.escape_default()
        ));
    }
    let kind = parse_kind(kind).ok_or_else(|| {
        format!("token of `{id}`: kind `{kind}` is not human, service, agent or workload")
    })?;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                format!(
                    "token of `{id}`: role `{r}` is not enforcer, approver, admin or introspector"
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if roles.contains(&Role::Approver) && roles.contains(&Role::Enforcer) {
        return Err(format!(
            "token of `{id}`: one identity cannot be both `enforcer` and `approver`: it could hold a request for any principal and approve it itself; give it two tokens with two identities"
        ));
    }
    if roles.contains(&Role::Approver) && kind != PrincipalKind::Human {
        return Err(format!(
            "token of `{id}`: only humans can hold the `approver` role (kind is `{}`)",
            kind.as_str()
        ));
    }
    Ok(Caller {
        id: id.to_string(),
        kind,
        roles,
        authenticated: true,
        sets: SetAccess::Default,
    })
}

/// Checks bearer tokens against the configured and stored ones.
#[derive(Debug, Clone)]
pub struct Authenticator {
    configured: Arc<HashMap<String, Caller>>,
    stored: Arc<ArcSwap<HashMap<String, Caller>>>,
    anonymous: Option<Caller>,
    peers: Arc<PeerMap>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    groups: Arc<HashMap<String, String>>,
}

impl Authenticator {
    /// Tokens from the config (already validated), and `anonymous_roles` for callers
    /// without a token (empty: every call needs a token).
    pub fn new(configured: HashMap<String, Caller>, anonymous_roles: Vec<Role>) -> Self {
        Self {
            configured: Arc::new(configured),
            stored: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            anonymous: (!anonymous_roles.is_empty()).then(|| Caller {
                id: "anonymous".into(),
                kind: PrincipalKind::Service,
                roles: anonymous_roles,
                authenticated: false,
                sets: SetAccess::Default,
            }),
            peers: Arc::new(PeerMap::default()),
            metrics: None,
            groups: Arc::default(),
        }
    }

    /// Enforcement groups: identity id -> group name (`[[auth.groups]]`). The
    /// replicas of one gateway share the approvals and credentials they obtain.
    pub fn with_groups(mut self, groups: HashMap<String, String>) -> Self {
        self.groups = Arc::new(groups);
        self
    }

    /// Whether identity `id` holds `role` through any configured or stored token, or
    /// through the `[[auth.peers]]` mapping of its SPIFFE ID. Identities compare by
    /// [`crate::approvals::identity_key`].
    pub fn identity_holds(&self, id: &str, role: Role) -> bool {
        let key = crate::approvals::identity_key(id);
        let by_token = |m: &HashMap<String, Caller>| {
            m.values()
                .any(|c| crate::approvals::identity_key(&c.id) == key && c.roles.contains(&role))
        };
        // The identity as a certificate could prove it: a SPIFFE ID (whatever case it
        // was written in) or a subject.
        let by_peer = || {
            let mut forms = vec![PeerCertificate {
                spiffe_id: None,
                subject: id.to_string(),
                not_after: i64::MAX,
            }];
            for spiffe in [id.to_string(), key.clone()] {
                if spiffe.to_ascii_lowercase().starts_with("spiffe://") {
                    forms.push(PeerCertificate {
                        spiffe_id: Some(spiffe),
                        subject: String::new(),
                        not_after: i64::MAX,
                    });
                }
            }
            forms.iter().any(|cert| {
                self.peers
                    .caller(cert)
                    .is_some_and(|c| c.roles.contains(&role))
            })
        };
        by_token(&self.configured) || by_token(&self.stored.load()) || by_peer()
    }

    /// Who approvals held and credentials obtained by `caller` are bound to: its
    /// group (`group:NAME`), else its own id.
    pub fn holder_of(&self, caller: &Caller) -> String {
        match self.groups.get(&caller.id) {
            Some(group) => format!("group:{group}"),
            None => caller.id.clone(),
        }
    }

    /// Lets callers without a token name any set (the zero-config tour).
    pub fn anonymous_may_name_any_set(mut self) -> Self {
        if let Some(a) = &mut self.anonymous {
            a.sets = SetAccess::Any;
        }
        self
    }

    /// Counts refused callers in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Also accepts callers proven by client certificates, mapped by `peers`.
    pub fn with_peers(mut self, peers: PeerMap) -> Self {
        self.peers = Arc::new(peers);
        self
    }

    /// Re-reads the tokens of the state database, all of them. The server uses
    /// [`crate::tokens::refresh`] instead, which lets in only tokens on record.
    pub fn refresh(&self, store: &dyn StateStore) -> Result<usize, arbiter_store::StoreError> {
        Ok(self.replace(store.tokens()?))
    }

    /// Makes `entries` the stored tokens that authenticate; returns how many are valid.
    pub fn replace(&self, entries: Vec<TokenEntry>) -> usize {
        let mut map = HashMap::new();
        for TokenEntry {
            sha256,
            id,
            kind,
            roles,
            ..
        } in entries
        {
            match caller_of(&sha256, &id, &kind, &roles) {
                Ok(c) => {
                    map.insert(sha256, c);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring an invalid stored token"),
            }
        }
        let n = map.len();
        self.stored.store(Arc::new(map));
        n
    }

    /// Whether any token exists (config or state database).
    pub fn has_tokens(&self) -> bool {
        !self.configured.is_empty() || !self.stored.load().is_empty()
    }

    /// The caller of a request, who must hold one of `roles`.
    pub fn authorize(
        &self,
        credential: Presented<'_>,
        peer: &Peer,
        roles: &[Role],
    ) -> Result<Caller, ServiceError> {
        self.checked(credential, peer, Some(roles))
    }

    /// The caller of a request, whoever it is, as long as it is someone (refusals
    /// logged and counted like [`Authenticator::authorize`]'s).
    pub fn known(&self, credential: Presented<'_>, peer: &Peer) -> Result<Caller, ServiceError> {
        self.checked(credential, peer, None)
    }

    fn checked(
        &self,
        credential: Presented<'_>,
        peer: &Peer,
        roles: Option<&[Role]>,
    ) -> Result<Caller, ServiceError> {
        let refused = |e: ServiceError, reason: &'static str| {
            // Every refusal is seen: in the log (who, from where, why) and counted.
            tracing::warn!(door = peer.door, peer = ?peer.addr, reason, error = %e, "caller refused");
            if let Some(m) = &self.metrics {
                m.caller_refused(peer.door, reason);
            }
            e
        };
        let caller = match self.identify(credential, peer) {
            Ok(c) => c,
            Err(e @ ServiceError::Unauthenticated(_)) => return Err(refused(e, "unauthenticated")),
            Err(e @ ServiceError::UnmappedCertificate { .. }) => {
                return Err(refused(e, "unmapped-certificate"));
            }
            Err(e @ ServiceError::IdentityMismatch { .. }) => {
                return Err(refused(e, "identity-mismatch"));
            }
            Err(e) => return Err(refused(e, "refused")),
        };
        if let Some(roles) = roles
            && !caller.has_any(roles)
        {
            return Err(refused(
                ServiceError::MissingRole {
                    caller: caller.authenticated.then(|| caller.id.clone()),
                    needed: roles.to_vec(),
                },
                "missing-role",
            ));
        }
        Ok(caller)
    }

    /// The caller of a request, whatever its roles: from the client certificate the
    /// transport verified, the bearer token, or both (then they must name the same
    /// identity); with neither, the anonymous roles, for loopback peers only.
    pub fn identify(&self, credential: Presented<'_>, peer: &Peer) -> Result<Caller, ServiceError> {
        let by_certificate = match &peer.certificate {
            None => None,
            // The handshake checked the validity period; a connection outlives it.
            Some(cert) if cert.not_after <= now_secs() => {
                return Err(ServiceError::Unauthenticated(
                    "the client certificate of this connection has expired: reconnect with a current one",
                ));
            }
            Some(cert) => {
                Some(
                    self.peers
                        .caller(cert)
                        .ok_or_else(|| ServiceError::UnmappedCertificate {
                            id: arbiter_core::prefix(cert.id(), 128).to_string(),
                        })?,
                )
            }
        };
        let token = match credential {
            Presented::Nothing => {
                return match by_certificate {
                    Some(c) => Ok(c),
                    None => self.anonymous.clone().filter(|_| peer.is_loopback()).ok_or(
                        ServiceError::Unauthenticated(
                            "no `authorization: Bearer <token>` metadata",
                        ),
                    ),
                };
            }
            Presented::Malformed => {
                return Err(ServiceError::Unauthenticated(
                    "the `authorization` metadata is not `Bearer <token>`",
                ));
            }
            Presented::Bearer(token) => token.trim(),
        };
        let hash = token_hash(token);
        let by_token = self
            .configured
            .get(&hash)
            .cloned()
            .or_else(|| self.stored.load().get(&hash).cloned())
            .ok_or(ServiceError::Unauthenticated(
                "the bearer token is not known",
            ))?;
        match by_certificate {
            Some(c) if c.id != by_token.id => Err(ServiceError::IdentityMismatch {
                token: arbiter_core::prefix(&by_token.id, 128).to_string(),
                certificate: arbiter_core::prefix(&c.id, 128).to_string(),
            }),
            _ => Ok(by_token),
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
