//! What the server appends and what a query gives back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::AuditError;

use crate::chain::Hash;

/// What a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A policy decision (allow, deny, require-approval).
    Decision,
    /// A step of an approval: requested, approved, rejected, expired.
    Approval,
    /// A credential issued, refreshed or revoked.
    Credential,
    /// An administrative act: a policy set activated, a key rotated, a setting changed.
    Admin,
    /// A sampled shadow decision that differed from the enforced one.
    Shadow,
    /// A probe: a policy set's answer to "could this be allowed?", with no effect
    /// (no approval, no credential), so not a decision.
    Probe,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 6] = [
        Kind::Decision,
        Kind::Approval,
        Kind::Credential,
        Kind::Admin,
        Kind::Shadow,
        Kind::Probe,
    ];

    /// The name stored in the `kind` column and accepted by [`str::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decision => "decision",
            Kind::Approval => "approval",
            Kind::Credential => "credential",
            Kind::Admin => "admin",
            Kind::Shadow => "shadow",
            Kind::Probe => "probe",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is not one of [`Kind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown audit record kind `{found}`; expected one of: decision, approval, credential, admin, shadow, probe"
)]
pub struct UnknownKind {
    /// The name that was given.
    pub found: String,
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind {
                found: s.to_owned(),
            })
    }
}

/// When [`AuditLog::append`](crate::AuditLog::append) returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the record's transaction committed and was synced to disk.
    Durable,
    /// As soon as the record is queued (still waiting for queue space: records are
    /// never dropped for lack of room). A later write failure is reported to the
    /// [`Observer`](crate::Observer) and the error log, not to the caller.
    Async,
}

/// One audit record, as the server appends it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// What the record is about.
    pub kind: Kind,
    /// When it happened, in microseconds since the Unix epoch, set by the caller.
    pub at_micros: i64,
    /// Who the record is about: the request principal, or the approver or admin who acted.
    pub principal: Option<String>,
    /// The result: `allow`, `deny`, `require-approval` for decisions; `approved`,
    /// `rejected`, `issued`, `revoked`, `activated` and the like otherwise.
    pub outcome: Option<String>,
    /// The policy set involved, by name.
    pub policy_set: Option<String>,
    /// The decision this record belongs to.
    pub decision_id: Option<String>,
    /// Everything else (the request, plugin verdicts, ...), as the JSON text that is
    /// stored and hashed, byte for byte. Building it as text lets a hot caller
    /// serialize straight from its own types (and embed JSON it already has) instead
    /// of through a [`serde_json::Value`]; [`Record::set_body`] takes anything
    /// serializable.
    pub body: Box<RawValue>,
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            kind,
            at_micros,
            principal,
            outcome,
            policy_set,
            decision_id,
            body,
        } = self;
        *kind == other.kind
            && *at_micros == other.at_micros
            && *principal == other.principal
            && *outcome == other.outcome
            && *policy_set == other.policy_set
            && *decision_id == other.decision_id
            && body.get() == other.body.get()
    }
}

impl Record {
    /// A record of `kind` at `at_micros` with no indexed fields and a `null` body.
    pub fn new(kind: Kind, at_micros: i64) -> Self {
        Self {
            kind,
            at_micros,
            principal: None,
            outcome: None,
            policy_set: None,
            decision_id: None,
            body: RawValue::NULL.to_owned(),
        }
    }

    /// Sets the body to `body` as compact JSON.
    pub fn set_body<T: Serialize + ?Sized>(&mut self, body: &T) -> Result<(), AuditError> {
        self.body =
            serde_json::value::to_raw_value(body).map_err(|source| AuditError::Body { source })?;
        Ok(())
    }

    /// The body parsed into a [`serde_json::Value`] (for reading, not for the hot path).
    pub fn body_value(&self) -> serde_json::Value {
        // The body is valid JSON by construction, so this cannot fail in practice.
        serde_json::from_str(self.body.get()).unwrap_or(serde_json::Value::Null)
    }
}

/// A record as stored, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRecord {
    /// Its sequence number: 1 for the first record, then one more for each.
    pub seq: u64,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
    /// The hash of record `seq - 1` (all zero for record 1).
    #[serde(serialize_with = "hex32")]
    pub prev_hash: Hash,
    /// This record's hash.
    #[serde(serialize_with = "hex32")]
    pub hash: Hash,
}

fn hex32<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{kind}\""));
        }
        let e = "decisions".parse::<Kind>().expect_err("unknown");
        assert_eq!(e.found, "decisions");
    }

    #[test]
    fn stored_records_serialize_flat_with_hex_hashes() {
        let stored = StoredRecord {
            seq: 7,
            record: Record::new(Kind::Admin, 5),
            prev_hash: [0; 32],
            hash: [0xab; 32],
        };
        let v = serde_json::to_value(&stored).expect("serialize");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["kind"], "admin");
        assert_eq!(v["hash"], "ab".repeat(32));
    }
}
