//! Signing keys shared by replicas through the state database: each key's secret is
//! sealed (ChaCha20-Poly1305, `ring`) under a key derived from the deployment's key
//! secret, a file every replica mounts (a Kubernetes Secret, say) and the database
//! never sees. Whoever reads the database without that file learns no signing key.

use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest as _, Sha256};

/// Bytes a key secret file must hold at least.
pub(super) const MIN_SECRET_BYTES: usize = 32;

/// The deployment's key secret, as derived keys (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret {
    seal: Arc<[u8; 32]>,
    redaction: Arc<[u8; 32]>,
    issuer: String,
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySecret")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn derive(label: &str, secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(secret);
    h.finalize().into()
}

impl KeySecret {
    /// The secret in a file's bytes (surrounding whitespace ignored): at least
    /// [`MIN_SECRET_BYTES`] of them, e.g. `head -c 32 /dev/urandom | base64`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "holds {} bytes; a key secret needs at least {MIN_SECRET_BYTES} random bytes (e.g. `head -c 48 /dev/urandom | base64 > FILE`)",
                secret.len()
            ));
        }
        let id = derive("arbiter deployment id v1", secret);
        Ok(Self {
            seal: Arc::new(derive("arbiter signing key seal v1", secret)),
            redaction: Arc::new(derive("arbiter redaction key v1", secret)),
            issuer: format!("urn:arbiter:{}", hex::encode(&id[..16])),
        })
    }

    /// The issuer of every replica holding this secret: `urn:arbiter:<id>`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key of the audit log's keyed digests (`[audit] redact`): the same on every
    /// replica holding this secret, so their records name one request alike.
    pub fn redaction_key(&self) -> [u8; 32] {
        *self.redaction
    }

    fn key(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&aead::CHACHA20_POLY1305, self.seal.as_slice())
            .ok()
            .map(LessSafeKey::new)
    }

    /// `plain` sealed for key `kid`: a random nonce, then the ciphertext and tag.
    pub(crate) fn seal(&self, kid: &str, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let mut data = plain.to_vec();
        self.key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(out)
    }

    /// What [`KeySecret::seal`] sealed for `kid`; `None` for anything else (another
    /// secret, another key id, altered bytes).
    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, data) = sealed.split_at_checked(aead::NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .key()?
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_its_id() {
        let a = KeySecret::from_bytes(&[7; 40]).expect("secret");
        let b = KeySecret::from_bytes(&[8; 40]).expect("secret");
        let sealed = a.seal("k1", b"the key").expect("sealed");
        assert_eq!(a.open("k1", &sealed).as_deref(), Some(&b"the key"[..]));
        assert!(a.open("k2", &sealed).is_none(), "bound to its key id");
        assert!(b.open("k1", &sealed).is_none(), "another secret");
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(a.open("k1", &altered).is_none());
        assert!(a.open("k1", &sealed[..5]).is_none());
        assert_eq!(
            a.issuer(),
            KeySecret::from_bytes(&[7; 40]).expect("same").issuer()
        );
        assert_ne!(a.issuer(), b.issuer());
        assert!(!format!("{a:?}").contains("seal:"));
        assert!(KeySecret::from_bytes(b"  short  ").is_err());
    }
}
