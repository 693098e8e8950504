//! Ed25519 keys as files, for everything Arbiter signs: credentials (JWT `EdDSA`),
//! audit checkpoints and policy bundles.
//!
//! Secret keys are PKCS#8 PEM files (what `openssl genpkey -algorithm ed25519` writes),
//! created owner-only (mode 0600) and refused when group or others can read them.
//! Public keys are SPKI PEM files. A key's id is the first 16 hex digits of the SHA-256
//! of its public key bytes: short enough for a JWT `kid`, long enough not to collide.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let key = arbiter_keys::SecretKey::load_or_create(&dir.path().join("k.pem")).unwrap();
//! let sig = key.sign(b"message");
//! assert!(key.public().verify(b"message", &sig).is_ok());
//! ```

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest as _, Sha256};

/// An Ed25519 signature (64 bytes).
pub type Signature = [u8; 64];

/// What went wrong with a key file or a signature.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("cannot access key file `{path}`")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a key of the expected kind.
    #[error(
        "`{path}` is not an Ed25519 {kind} key in PEM form ({why}); create one with `arbiter keygen`"
    )]
    Format {
        /// The key file.
        path: PathBuf,
        /// `secret` or `public`.
        kind: &'static str,
        /// What the parser said.
        why: String,
    },
    /// A secret key file that others may read.
    #[error(
        "secret key file `{path}` is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The operating system could not supply randomness.
    #[error("no randomness available to create a key: {0}")]
    Random(String),
    /// A signature did not verify.
    #[error("signature does not verify with key `{key_id}`")]
    BadSignature {
        /// The key it was checked against.
        key_id: String,
    },
}

/// An Ed25519 signing key.
#[derive(Clone)]
pub struct SecretKey {
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.public().id())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// Reads a PKCS#8 PEM secret key, refusing files that group or others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        check_private(path)?;
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|why| KeyError::Format {
            path: path.to_path_buf(),
            kind: "secret",
            why,
        })
    }

    /// Parses a PKCS#8 PEM secret key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self { key })
            .map_err(|e| e.to_string())
    }

    /// Reads the key at `path`, or creates it (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate()?;
        key.write_new(path)?;
        Ok(key)
    }

    /// Writes the key to a new file (mode 0600); refuses to overwrite one.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let pem = self.to_pem();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The PKCS#8 PEM text.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(Default::default())
            .map(|p| p.to_string())
            // Encoding 32 bytes into a fixed structure cannot fail.
            .unwrap_or_default()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message).to_bytes()
    }
}

/// An Ed25519 verifying key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Reads an SPKI PEM public key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|why| KeyError::Format {
            path: path.to_path_buf(),
            kind: "public",
            why,
        })
    }

    /// Parses an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(|key| Self { key })
            .map_err(|e| e.to_string())
    }

    /// The key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, String> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(|key| Self { key })
            .map_err(|e| e.to_string())
    }

    /// The SPKI PEM text.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    /// Writes the key as SPKI PEM (mode 0644), replacing any file there.
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        std::fs::write(path, self.to_pem()).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The 32 raw bytes (e.g. the `x` of a JWK).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key id: the first 16 hex digits of SHA-256 over the raw public key.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.key.as_bytes())[..8])
    }

    /// Checks `signature` over `message` (strict: no malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let bad = || KeyError::BadSignature { key_id: self.id() };
        let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
        self.key.verify_strict(message, &sig).map_err(|_| bad())
    }
}

/// Refuses a secret key file that group or others can read.
fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_are_private_and_reload_identically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        let a = SecretKey::load_or_create(&path).expect("create");
        let b = SecretKey::load_or_create(&path).expect("reload");
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_secret_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        SecretKey::generate()
            .expect("key")
            .write_new(&path)
            .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = SecretKey::load(&path).expect_err("refused").to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn signatures_verify_only_with_their_key_and_message() {
        let a = SecretKey::generate().expect("key");
        let b = SecretKey::generate().expect("key");
        let sig = a.sign(b"m");
        assert!(a.public().verify(b"m", &sig).is_ok());
        assert!(a.public().verify(b"n", &sig).is_err());
        assert!(b.public().verify(b"m", &sig).is_err());
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(a.public().verify(b"m", &bad).is_err());
    }

    #[test]
    fn pem_round_trips_and_ids_are_stable() {
        let a = SecretKey::generate().expect("key");
        let p = PublicKey::from_pem(&a.public().to_pem()).expect("public pem");
        assert_eq!(p, a.public());
        assert_eq!(p.id().len(), 16);
        let s = SecretKey::from_pem(&a.to_pem()).expect("secret pem");
        assert_eq!(s.public().id(), a.public().id());
    }
}
