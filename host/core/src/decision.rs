//! The answer of a policy set to one request.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Obligations, PluginOutcome, Reason};

/// The three-way answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Proceed.
    Allow,
    /// Do not proceed.
    Deny,
    /// Proceed only after enough humans approve.
    RequireApproval,
}

impl Outcome {
    /// The wire name: `allow`, `deny`, `require-approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RequireApproval => "require-approval",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "require-approval" => Some(Self::RequireApproval),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which policy set decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetIdentity {
    /// The set's name from its manifest.
    pub name: String,
    /// The set's version from its manifest.
    pub version: String,
    /// Hex SHA-256 over the manifest and every plugin's digest.
    pub digest: String,
}

/// What one plugin contributed to a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginReport {
    /// The plugin's name in the manifest.
    pub name: String,
    /// Its verdict or failure.
    pub outcome: PluginOutcome,
    /// Wall-clock time spent on it, instantiation included.
    #[serde(with = "micros")]
    pub elapsed: Duration,
}

/// A policy set's decision on one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique, time-ordered id.
    pub id: String,
    /// Allow, deny or require approval.
    pub outcome: Outcome,
    /// Reasons of the plugins that decided (caller and admin messages).
    pub reasons: Vec<Reason>,
    /// Merged obligations of the plugins that decided.
    pub obligations: Obligations,
    /// The set that decided.
    pub set: SetIdentity,
    /// Every plugin's verdict and timing, in manifest order.
    pub plugins: Vec<PluginReport>,
    /// Total evaluation time.
    #[serde(with = "micros")]
    pub elapsed: Duration,
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}
