//! What an approval is bound to (the request's digest), what approvers see of it,
//! and how approver ids compare.

use std::time::Duration;

use arbiter_core::Request;

/// How ids compare for separation of duties: an enforcement point and a token may spell
/// the same person differently (`Alice@Acme.org`, `alice@acme.org `).
pub fn identity_key(id: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    // Compatibility forms fold (fullwidth letters, ligatures), then case.
    id.trim().nfkc().collect::<String>().to_lowercase()
}

/// What an approval is bound to: the canonical request digest, and whether (and for how
/// long) a credential was asked for, so a redemption cannot add a credential the
/// approvers never saw.
pub fn approval_digest(request: &Request, credential: Option<Option<Duration>>) -> String {
    use sha2::Digest as _;
    let digest = request.digest();
    match credential {
        None => hex::encode(digest),
        Some(wish) => {
            let mut h = sha2::Sha256::new();
            h.update(digest);
            h.update(b"credential");
            h.update(wish.map_or(0, |w| w.as_secs()).to_be_bytes());
            hex::encode(h.finalize())
        }
    }
}

/// What approvers see: the request, and the credential it asks for, if any.
pub(super) fn evidence(
    request: &Request,
    credential: Option<Option<Duration>>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(request).unwrap_or_default();
    if let (Some(wish), Some(map)) = (credential, v.as_object_mut()) {
        map.insert(
            "credential".into(),
            serde_json::json!({ "lifetime_seconds": wish.map_or(0, |w| w.as_secs()) }),
        );
    }
    v
}
