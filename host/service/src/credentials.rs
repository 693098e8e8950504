//! Just-in-time credentials: short-lived JWT access tokens (RFC 9068: `typ: at+jwt`,
//! EdDSA over Ed25519, `kid` header), minted and verified with the `jsonwebtoken`
//! library, bound to one principal, action, resource, task and decision, recorded
//! before they are returned, revocable one by one or per task, and verifiable offline
//! with the published keys (`jwks.json` in the data directory, and
//! `Credentials.GetJwks`). The issuer is per deployment (`urn:arbiter:<id>`, the id
//! kept in `<data_dir>/keys/deployment-id`) unless `[credentials] issuer` names one.
//!
//! Keys live in `<data_dir>/keys/credentials/<kid>.pem` (owner-only); which one signs
//! is recorded in the state database. With a key secret (`[credentials]
//! key_secret_file`), they live sealed in the state database instead, shared by every
//! replica that mounts the same secret (`sealed.rs`). Rotation starts a new key; a retired key stays
//! published until every credential it signed has expired.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter_core::{Decision, Request, SharedClock};
use arbiter_keys::SecretKey;
use arbiter_store::{Credential, StateStore};
use arc_swap::ArcSwap;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ServiceError;

mod keyring;
mod sealed;

use keyring::{Keyring, jwks_json, load_keyring};
pub use sealed::KeySecret;

/// The longest any credential may live, whatever the config says: credentials for
/// agents are minutes, not hours.
pub const MAX_LIFETIME_CEILING: Duration = Duration::from_secs(60 * 60);
/// Default maximum lifetime.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Lifetime when the request states no wish.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Credential settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialConfig {
    /// `iss` of every credential.
    pub issuer: String,
    /// Upper bound on every lifetime.
    pub max_lifetime: Duration,
    /// Lifetime when the request names none.
    pub default_lifetime: Duration,
    /// The deployment's key secret: with it, signing keys are kept sealed in the
    /// state database (shared by replicas) instead of key files, and the default
    /// issuer is derived from it.
    pub key_secret: Option<KeySecret>,
}

impl Default for CredentialConfig {
    fn default() -> Self {
        Self {
            // Empty: this deployment's own (see the module docs).
            issuer: String::new(),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            default_lifetime: DEFAULT_LIFETIME,
            key_secret: None,
        }
    }
}

/// The claims of an Arbiter credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The principal.
    pub sub: String,
    /// The resource (never empty: a credential is asked for a named resource).
    pub aud: String,
    /// The action: a private claim, since `act` is RFC 8693's actor claim.
    #[serde(rename = "arbiter_action")]
    pub action: String,
    /// The task.
    pub task_id: String,
    /// The decision that issued it.
    pub decision_id: String,
    /// Credential id.
    pub jti: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// The JWT `typ` of an access token (RFC 9068).
pub const JWT_TYPE: &str = "at+jwt";

/// A credential as handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The credential id.
    pub id: String,
    /// The compact JWT.
    pub token: String,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

/// What introspection found: `None` is inactive.
pub type Introspection = Option<(Claims, String)>;

/// Issues, checks and revokes credentials.
#[derive(Debug)]
pub struct Credentials {
    store: Arc<dyn StateStore>,
    clock: SharedClock,
    dir: PathBuf,
    jwks_file: PathBuf,
    config: CredentialConfig,
    keys: ArcSwap<Keyring>,
    rotation: Mutex<()>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %e, "{what}");
    ServiceError::Unavailable(format!("{what}; no credential was issued or changed"))
}

impl Credentials {
    /// Loads the keys in `<data_dir>/keys/credentials`, creating the first one when
    /// there is none, and writes `<data_dir>/jwks.json`.
    pub fn open(
        store: Arc<dyn StateStore>,
        data_dir: &std::path::Path,
        config: CredentialConfig,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let dir = data_dir.join("keys").join("credentials");
        arbiter_runtime::create_private_dir(&dir)?;
        let mut config = config;
        if config.issuer.is_empty() {
            config.issuer = match &config.key_secret {
                Some(k) => k.issuer().to_string(),
                None => deployment_issuer(&data_dir.join("keys"))?,
            };
        }
        let keyring = load_keyring(&*store, &dir, &config, clock.now_micros())?;
        let this = Self {
            store,
            clock,
            dir,
            jwks_file: data_dir.join("jwks.json"),
            config,
            keys: ArcSwap::from_pointee(keyring),
            rotation: Mutex::new(()),
        };
        this.write_jwks()?;
        Ok(this)
    }

    /// The settings.
    pub fn config(&self) -> &CredentialConfig {
        &self.config
    }

    /// The key that signs new credentials.
    pub fn active_kid(&self) -> String {
        self.keys.load().active.0.clone()
    }

    /// Signs and records a credential for an allowed request. Recorded durably before
    /// it is returned, so revocation by task always finds it.
    pub fn issue(
        &self,
        request: &Request,
        decision: &Decision,
        wish: Option<Duration>,
        holder: &str,
    ) -> Result<Issued, ServiceError> {
        let (record, issued) = self.mint(request, decision, wish, holder)?;
        self.store.insert_credential(&record)?;
        Ok(issued)
    }

    /// Signs a credential for an allowed request without recording it: the caller
    /// records the returned row (with the approval it uses, in one step) before anyone
    /// sees the token. A token whose row is never recorded never introspects active.
    pub fn mint(
        &self,
        request: &Request,
        decision: &Decision,
        wish: Option<Duration>,
        holder: &str,
    ) -> Result<(Credential, Issued), ServiceError> {
        let mut lifetime = wish
            .unwrap_or(self.config.default_lifetime)
            .min(self.config.max_lifetime);
        if let Some(max) = decision.obligations.max_credential_lifetime {
            lifetime = lifetime.min(max);
        }
        let now = self.clock.now_secs();
        let keys = self.keys.load();
        let kid = &keys.active.0;
        if request.resource.id.is_empty() {
            return Err(ServiceError::field(
                "resource.id",
                "is required when asking for a credential: it is the credential's audience",
            ));
        }
        let claims = Claims {
            iss: self.config.issuer.clone(),
            sub: request.principal.id.clone(),
            aud: request.resource.id.clone(),
            action: request.action.name.clone(),
            task_id: request.intent.task_id.clone(),
            decision_id: decision.id.clone(),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(0),
        };
        let token = sign(kid, &keys.encoding, JWT_TYPE, &claims)?;
        let record = Credential {
            id: claims.jti.clone(),
            task_id: claims.task_id.clone(),
            principal: claims.sub.clone(),
            action: claims.action.clone(),
            resource: claims.aud.clone(),
            decision_id: claims.decision_id.clone(),
            kid: kid.clone(),
            issued_at: claims.iat,
            expires_at: claims.exp,
            revoked_micros: None,
            revoke_reason: None,
            holder: holder.to_string(),
        };
        let issued = Issued {
            id: claims.jti,
            token,
            expires_at: claims.exp,
        };
        Ok((record, issued))
    }

    /// RFC 7662: the claims and key id of an active credential; `None` for anything
    /// else (malformed, unknown key, bad signature, expired, revoked, never issued).
    pub fn introspect(&self, token: &str) -> Result<Introspection, ServiceError> {
        let Some((claims, kid)) = self.verify_offline(token) else {
            return Ok(None);
        };
        let now = self.clock.now_secs();
        if claims.exp <= now || claims.nbf > now || claims.iss != self.config.issuer {
            return Ok(None);
        }
        match self.store.credential(&claims.jti)? {
            Some(c) if c.revoked_micros.is_none() && c.task_id == claims.task_id => {
                Ok(Some((claims, kid)))
            }
            _ => Ok(None),
        }
    }

    /// Checks the header (`EdDSA`, `at+jwt`, a published `kid`) and the signature,
    /// and parses the claims; times and the issuer are checked by the caller, on the
    /// injected clock.
    fn verify_offline(&self, token: &str) -> Option<(Claims, String)> {
        self.verify_typed(JWT_TYPE, token)
    }

    /// Signs `claims` with the active key as a compact JWS typed `typ`: a signed
    /// statement of this deployment (an AuthZEN denial binding, say), verifiable with
    /// the published keys. Never `at+jwt`: a statement is not a credential.
    pub fn sign_statement<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, ServiceError> {
        debug_assert_ne!(typ, JWT_TYPE);
        let keys = self.keys.load();
        sign(&keys.active.0, &keys.encoding, typ, claims)
    }

    /// The claims of a statement [`Self::sign_statement`] signed with `typ`, when its
    /// signature checks with a published key; times are the caller's to check.
    pub fn verify_statement<T: DeserializeOwned>(&self, typ: &str, token: &str) -> Option<T> {
        (typ != JWT_TYPE)
            .then(|| self.verify_typed(typ, token))
            .flatten()
            .map(|(claims, _)| claims)
    }

    fn verify_typed<T: DeserializeOwned>(&self, typ: &str, token: &str) -> Option<(T, String)> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(typ) {
            return None;
        }
        let kid = header.kid?;
        let keys = self.keys.load();
        let (_, public, _) = keys.published.iter().find(|(k, ..)| *k == kid)?;
        let key = DecodingKey::from_ed_components(&B64.encode(public.to_bytes())).ok()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Expiry, not-before and issuer are checked against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<T>(token, &key, &validation).ok()?;
        Some((data.claims, kid))
    }

    /// Revokes one credential: `Ok(false)` when already revoked. With `holder`, only
    /// a credential issued to that enforcement identity (or group); `None` is an
    /// admin's revocation, or the server's own.
    pub fn revoke(&self, id: &str, holder: Option<&str>) -> Result<bool, ServiceError> {
        ServiceError::refuse_nul("id", id)?;
        let Some(found) = self.store.credential(id)? else {
            return Err(ServiceError::not_found("credential", id));
        };
        if let Some(h) = holder
            && !found.holder.is_empty()
            && found.holder != h
        {
            // Said as "not found": whether another identity's credential exists is
            // none of this caller's business.
            return Err(ServiceError::not_found("credential", id));
        }
        Ok(self
            .store
            .revoke_credential(id, self.clock.now_micros(), "revoked")?)
    }

    /// Revokes every credential of `task_id` issued to `holder` (`None`: everyone's,
    /// an admin's completion).
    pub fn complete_task(
        &self,
        task_id: &str,
        holder: Option<&str>,
    ) -> Result<Vec<String>, ServiceError> {
        ServiceError::refuse_nul("task_id", task_id)?;
        Ok(self
            .store
            .revoke_task(task_id, holder, self.clock.now_micros())?)
    }

    /// The published keys as a JWKS document.
    pub fn jwks(&self) -> String {
        jwks_json(&self.keys.load())
    }

    /// Starts signing with a new key; returns (new, retired) key ids.
    pub fn rotate(&self) -> Result<(String, String), ServiceError> {
        let _one_at_a_time = self.rotation.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.active_kid();
        let key = SecretKey::generate().map_err(|e| unavailable("cannot create a key", e))?;
        let kid = key.public().id();
        keyring::keep_new(
            &*self.store,
            &self.dir,
            &self.config,
            &kid,
            &key,
            self.clock.now_micros(),
        )
        .map_err(|e| unavailable("cannot keep the new signing key", e))?;
        let ring = load_keyring(
            &*self.store,
            &self.dir,
            &self.config,
            self.clock.now_micros(),
        )
        .map_err(|e| unavailable("cannot reload the signing keys", e))?;
        self.keys.store(Arc::new(ring));
        self.write_jwks()
            .map_err(|e| unavailable("cannot write jwks.json", e))?;
        Ok((kid, old))
    }

    /// Re-reads the keys other replicas keep in the shared state database (with a key
    /// secret; key files are this server's alone and need no re-reading): a key
    /// another replica rotated to is published here, and signs here, within one pass.
    pub fn reload_shared(&self) -> anyhow::Result<()> {
        if self.config.key_secret.is_none() {
            return Ok(());
        }
        let _one_at_a_time = self.rotation.lock().unwrap_or_else(|e| e.into_inner());
        let ring = load_keyring(
            &*self.store,
            &self.dir,
            &self.config,
            self.clock.now_micros(),
        )?;
        let kids = |r: &Keyring| {
            r.published
                .iter()
                .map(|(k, ..)| k.clone())
                .collect::<Vec<_>>()
        };
        let changed =
            kids(&ring) != kids(&self.keys.load()) || ring.active.0 != self.keys.load().active.0;
        self.keys.store(Arc::new(ring));
        if changed {
            self.write_jwks()?;
        }
        Ok(())
    }

    fn write_jwks(&self) -> anyhow::Result<()> {
        let tmp = self.jwks_file.with_extension("json.tmp");
        std::fs::write(&tmp, self.jwks())?;
        std::fs::rename(&tmp, &self.jwks_file)?;
        Ok(())
    }
}

fn sign<T: Serialize>(
    kid: &str,
    key: &jsonwebtoken::EncodingKey,
    typ: &str,
    claims: &T,
) -> Result<String, ServiceError> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key)
        .map_err(|e| unavailable("cannot sign a credential", e))
}

/// `urn:arbiter:<id>`, the id random and kept in `<keys>/deployment-id`, so replicas
/// sharing a data directory's keys share it, and two deployments never do.
fn deployment_issuer(keys: &std::path::Path) -> anyhow::Result<String> {
    let path = keys.join("deployment-id");
    let id = match std::fs::read_to_string(&path) {
        Ok(id) => id.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let id = hex::encode(bytes);
            arbiter_runtime::create_private_dir(keys)?;
            // Two servers starting at once on one data directory agree on the first.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    std::io::Write::write_all(&mut f, id.as_bytes())?;
                    id
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path)?.trim().to_string()
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "`{}` is not a deployment id (32 hex digits)",
            path.display()
        );
    }
    Ok(format!("urn:arbiter:{id}"))
}
