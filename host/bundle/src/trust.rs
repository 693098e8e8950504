//! Which signatures a bundle needs, and checking them.

use crate::BundleError;
use crate::index::{SignatureFile, signed_message};
use crate::open::Unpacked;

/// Which signatures a bundle needs.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// No trusted keys are configured: a signature is not required and not verified
    /// (there is no key to verify it with), but a malformed `bundle.sig` is refused.
    Any,
    /// A valid signature by one of these keys is required. An empty slice refuses
    /// every bundle.
    Keys(&'a [arbiter_keys::PublicKey]),
}

/// The signature rules of [`Trust`]; returns the verifying key's id.
pub(crate) fn check_signature(
    unpacked: &Unpacked,
    origin: &str,
    trust: Trust<'_>,
) -> Result<Option<String>, BundleError> {
    let Some(sig) = &unpacked.signature else {
        return match trust {
            Trust::Any => Ok(None),
            Trust::Keys(_) => Err(BundleError::Unsigned {
                origin: origin.to_string(),
            }),
        };
    };
    let (key_id, signature) = SignatureFile::parse(sig, origin)?;
    let Trust::Keys(keys) = trust else {
        return Ok(None);
    };
    // Ids are 64 bits, so two trusted keys could share one: try each that matches.
    let mut candidates = keys.iter().filter(|k| k.id() == key_id).peekable();
    if candidates.peek().is_none() {
        return Err(BundleError::UnknownKey {
            origin: origin.to_string(),
            key_id,
        });
    }
    let message = signed_message(&unpacked.index_json);
    if candidates.any(|k| k.verify(&message, &signature).is_ok()) {
        Ok(Some(key_id))
    } else {
        Err(BundleError::BadSignature {
            origin: origin.to_string(),
            key_id,
        })
    }
}
