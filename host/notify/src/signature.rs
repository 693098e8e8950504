//! How a notice is signed, and how a receiver checks it.
//!
//! Every POST carries `X-Arbiter-Timestamp: <unix seconds>` and
//! `X-Arbiter-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
//! the timestamp, a `.`, and the raw body. The timestamp is inside the signed bytes, so
//! a captured notice cannot be replayed later with a fresh one; a receiver refuses
//! timestamps further than [`TOLERANCE`] from its clock and compares signatures in
//! constant time. Each attempt is signed anew (a retry carries a new timestamp); the
//! `X-Arbiter-Delivery` id stays the same across retries, for deduplication.

use std::time::Duration;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-arbiter-signature";
/// The header with the signing time, in unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-arbiter-timestamp";
/// The header with the event (`new`, `decided`, `expired`, `retracted`).
pub const EVENT_HEADER: &str = "x-arbiter-event";
/// The header with the notice's id, the same on every attempt.
pub const DELIVERY_HEADER: &str = "x-arbiter-delivery";
/// How far a receiver should let a timestamp be from its clock: room for retries in
/// flight and clock skew, too little for a replay to be worth much.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

const PREFIX: &str = "sha256=";

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Arbiter-Signature` value of `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Why a notice does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is not a number of seconds.
    #[error("the timestamp is not unix seconds")]
    BadTimestamp,
    /// The timestamp is too far from the receiver's clock.
    #[error("the timestamp is {skew_secs} s from this clock (replayed, or the clocks differ)")]
    Stale {
        /// How far, in seconds.
        skew_secs: u64,
    },
    /// The signature is malformed or does not match.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a received notice: `timestamp` and `signature` are the header values,
/// `body` the raw bytes, `now` the receiver's unix seconds.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: u64,
) -> Result<(), VerifyError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew_secs = now.abs_diff(ts);
    if skew_secs > TOLERANCE.as_secs() {
        return Err(VerifyError::Stale { skew_secs });
    }
    let given = signature
        .trim()
        .strip_prefix(PREFIX)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::Mismatch)?;
    // `verify_slice` compares in constant time.
    mac(secret, ts, body)
        .verify_slice(&given)
        .map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // `printf '1700000000.{"text":"hi"}' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef`
        assert_eq!(
            sign(KEY, 1_700_000_000, br#"{"text":"hi"}"#),
            "sha256=ac0ad1bf4146cca883572bbc9bfceade2f62e36ec39d359a9121178dfe0d026c"
        );
    }

    #[test]
    fn a_signed_notice_verifies_within_the_tolerance() {
        let sig = sign(KEY, 1_700_000_000, b"body");
        assert_eq!(
            verify(KEY, "1700000000", &sig, b"body", 1_700_000_299),
            Ok(())
        );
        assert_eq!(
            verify(KEY, "1700000000", &sig, b"body", 1_699_999_800),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_timestamp_or_key_does_not_verify() {
        let sig = sign(KEY, 1_700_000_000, b"body");
        let now = 1_700_000_001;
        assert_eq!(
            verify(KEY, "1700000000", &sig, b"body!", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(KEY, "1700000001", &sig, b"body", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                b"another key of thirty-two bytes!",
                "1700000000",
                &sig,
                b"body",
                now
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(KEY, "1700000000", "sha256=zz", b"body", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(KEY, "1700000000", &sig[7..], b"body", now),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_replay_past_the_tolerance_is_stale() {
        let sig = sign(KEY, 1_700_000_000, b"body");
        assert_eq!(
            verify(KEY, "1700000000", &sig, b"body", 1_700_000_301),
            Err(VerifyError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            verify(KEY, "soon", &sig, b"body", 1_700_000_000),
            Err(VerifyError::BadTimestamp)
        );
    }
}
