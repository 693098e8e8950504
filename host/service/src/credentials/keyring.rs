//! The signing keys in use: read from key files named in the state database, or,
//! with a key secret, from their sealed secrets in the (shared) state database.

use arbiter_keys::{PublicKey, SecretKey};
use arbiter_store::StateStore;
use base64::Engine as _;

use super::{B64, CredentialConfig};

#[derive(Debug)]
pub(super) struct Keyring {
    pub(super) active: (String, SecretKey),
    /// The active key as the JOSE library takes it.
    pub(super) encoding: jsonwebtoken::EncodingKey,
    /// Every key that may still have live credentials, with its retirement time.
    pub(super) published: Vec<(String, PublicKey, Option<i64>)>,
}

pub(super) fn jwks_json(ring: &Keyring) -> String {
    let keys: Vec<_> = ring
        .published
        .iter()
        .map(|(kid, public, _)| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": B64.encode(public.to_bytes()),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Keeps a new key `kid` and makes it the active one: sealed in the state database
/// with a key secret, else in a key file named there.
pub(super) fn keep_new(
    store: &dyn StateStore,
    dir: &std::path::Path,
    config: &CredentialConfig,
    kid: &str,
    key: &SecretKey,
    now: i64,
) -> anyhow::Result<()> {
    match &config.key_secret {
        Some(secret) => {
            let sealed = secret
                .seal(kid, key.to_pem().as_bytes())
                .ok_or_else(|| anyhow::anyhow!("cannot seal the new signing key"))?;
            store.add_sealed_signing_key(kid, &sealed, now)?;
        }
        None => {
            key.write_new(&dir.join(format!("{kid}.pem")))?;
            store.activate_signing_key(kid, now)?;
        }
    }
    Ok(())
}

/// The secret key `kid`: from its sealed secret with a key secret, else its file;
/// `None` when it is not there (or does not open).
fn secret_of(
    dir: &std::path::Path,
    config: &CredentialConfig,
    sealed: &[(String, Vec<u8>)],
    kid: &str,
) -> anyhow::Result<Option<SecretKey>> {
    match &config.key_secret {
        Some(secret) => {
            let Some((_, bytes)) = sealed.iter().find(|(k, _)| k == kid) else {
                return Ok(None);
            };
            let Some(pem) = secret.open(kid, bytes) else {
                tracing::warn!(
                    kid,
                    "a sealed signing key does not open with this key secret; every replica must mount the same one"
                );
                return Ok(None);
            };
            let pem = String::from_utf8(pem)
                .map_err(|_| anyhow::anyhow!("sealed key `{kid}` is not PEM"))?;
            Ok(Some(SecretKey::from_pem(&pem).map_err(anyhow::Error::msg)?))
        }
        None => {
            let path = dir.join(format!("{kid}.pem"));
            if !path.exists() {
                return Ok(None);
            }
            Ok(Some(SecretKey::load(&path)?))
        }
    }
}

/// Reads the key files named in the state database; creates the first key, or a new
/// one when the active key's file is gone (its credentials then fail introspection).
pub(super) fn load_keyring(
    store: &dyn StateStore,
    dir: &std::path::Path,
    config: &CredentialConfig,
    now: i64,
) -> anyhow::Result<Keyring> {
    let horizon = i64::try_from(config.max_lifetime.as_micros()).unwrap_or(i64::MAX);
    let sealed = match config.key_secret {
        Some(_) => store.sealed_signing_keys()?,
        None => Vec::new(),
    };
    let mut active = None;
    let mut published = Vec::new();
    for info in store.signing_keys()? {
        let retired_long_ago = info
            .retired_micros
            .is_some_and(|r| r.saturating_add(horizon) < now);
        let key = match retired_long_ago {
            true => None,
            false => secret_of(dir, config, &sealed, &info.kid)?,
        };
        let Some(key) = key else {
            if info.retired_micros.is_none() {
                tracing::warn!(kid = %info.kid, "the active credential signing key is missing (its file, or its sealed secret); creating a new key");
            }
            continue;
        };
        published.push((info.kid.clone(), key.public(), info.retired_micros));
        if info.retired_micros.is_none() {
            active = Some((info.kid, key));
        }
    }
    let active = match active {
        Some(a) => a,
        None => {
            let key = SecretKey::generate()?;
            let kid = key.public().id();
            keep_new(store, dir, config, &kid, &key, now)?;
            published.push((kid.clone(), key.public(), None));
            tracing::info!(kid = %kid, shared = config.key_secret.is_some(), "created a credential signing key");
            (kid, key)
        }
    };
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(active.1.to_pem().as_bytes())
        .map_err(|e| anyhow::anyhow!("the signing key `{}` cannot sign JWTs: {e}", active.0))?;
    Ok(Keyring {
        active,
        encoding,
        published,
    })
}
