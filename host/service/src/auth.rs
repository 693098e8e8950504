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
}

impl Role {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforcer => "enforcer",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enforcer, Self::Approver, Self::Admin]
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
}

impl Caller {
    /// Whether the caller holds any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
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
    /// Roles: `enforcer`, `approver`, `admin`.
    pub roles: Vec<String>,
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
    let kind = parse_kind(kind).ok_or_else(|| {
        format!("token of `{id}`: kind `{kind}` is not human, service, agent or workload")
    })?;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                format!("token of `{id}`: role `{r}` is not enforcer, approver or admin")
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
    })
}

/// Checks bearer tokens against the configured and stored ones.
#[derive(Debug, Clone)]
pub struct Authenticator {
    configured: Arc<HashMap<String, Caller>>,
    stored: Arc<ArcSwap<HashMap<String, Caller>>>,
    anonymous: Option<Caller>,
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
            }),
        }
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
        roles: &[Role],
    ) -> Result<Caller, ServiceError> {
        let caller = self.identify(credential)?;
        if !caller.has_any(roles) {
            return Err(ServiceError::MissingRole {
                caller: caller.authenticated.then(|| caller.id.clone()),
                needed: roles.to_vec(),
            });
        }
        Ok(caller)
    }

    /// The caller of a request, whatever its roles.
    pub fn identify(&self, credential: Presented<'_>) -> Result<Caller, ServiceError> {
        let token = match credential {
            Presented::Nothing => {
                return self.anonymous.clone().ok_or(ServiceError::Unauthenticated(
                    "no `authorization: Bearer <token>` metadata",
                ));
            }
            Presented::Malformed => {
                return Err(ServiceError::Unauthenticated(
                    "the `authorization` metadata is not `Bearer <token>`",
                ));
            }
            Presented::Bearer(token) => token.trim(),
        };
        let hash = token_hash(token);
        self.configured
            .get(&hash)
            .cloned()
            .or_else(|| self.stored.load().get(&hash).cloned())
            .ok_or(ServiceError::Unauthenticated(
                "the bearer token is not known",
            ))
    }
}

#[cfg(test)]
mod tests {
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
            .authorize(md(Some(&token)), &[Role::Approver])
            .expect("ok");
        assert_eq!(c.id, "alice");
        assert!(matches!(
            auth.authorize(md(Some(&token)), &[Role::Admin]),
            Err(ServiceError::MissingRole { .. })
        ));
        assert!(matches!(
            auth.authorize(md(Some("arb_wrong")), &[Role::Approver]),
            Err(ServiceError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.authorize(md(None), &[Role::Enforcer]),
            Err(ServiceError::Unauthenticated(_))
        ));
    }

    #[test]
    fn anonymous_callers_get_only_the_anonymous_roles() {
        let auth = Authenticator::new(HashMap::new(), vec![Role::Enforcer]);
        assert!(
            !auth
                .authorize(md(None), &[Role::Enforcer])
                .expect("ok")
                .authenticated
        );
        assert!(matches!(
            auth.authorize(md(None), &[Role::Admin]),
            Err(ServiceError::MissingRole { .. })
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
}
