//! Administrative acts, typed: what each one records is decided here and only here.

use arbiter_store::TokenEntry;
use serde_json::{Value, json};

/// How much of a token's SHA-256 a record shows: enough to tell tokens apart, too
/// little to look one up by.
const HASH_PREFIX: usize = 12;

/// A change to the policy sets (asked for over the admin API, or by the watched
/// directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetAct {
    /// A new version was loaded; enforced or shadowing as it says.
    Load {
        /// Its version.
        version: String,
        /// Its digest.
        digest: String,
        /// Where it came from: a path, `upload`, a watched file.
        origin: String,
        /// SHA-256 of an uploaded bundle.
        bundle_sha256: Option<String>,
        /// The key that signed it.
        signer: Option<String>,
        /// Enforced at once.
        enforce: bool,
        /// Shadowing the enforced version.
        shadow: bool,
    },
    /// A held version was made the enforced one.
    Activate {
        /// The version (or digest) asked for.
        version: String,
    },
    /// A held version was made the shadow.
    Shadow {
        /// The version (or digest) asked for.
        version: String,
    },
    /// The enforced version was demoted to shadow (the previous one enforced again).
    Demote,
    /// The shadow was cleared.
    ClearShadow,
    /// Back to the previous (or the named) version.
    Rollback {
        /// The version asked for, if any.
        version: Option<String>,
    },
    /// A quarantined plugin was released.
    ReleasePlugin {
        /// The plugin.
        plugin: String,
    },
}

impl SetAct {
    /// The act's name in the records.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Load { .. } => "load",
            Self::Activate { .. } => "activate",
            Self::Shadow { .. } => "shadow",
            Self::Demote => "demote",
            Self::ClearShadow => "clear-shadow",
            Self::Rollback { .. } => "rollback",
            Self::ReleasePlugin { .. } => "release-plugin",
        }
    }

    fn detail(&self) -> Value {
        match self {
            Self::Load {
                version,
                digest,
                origin,
                bundle_sha256,
                signer,
                enforce,
                shadow,
            } => json!({
                "version": version, "digest": digest, "origin": origin,
                "bundle_sha256": bundle_sha256, "signer": signer,
                "enforce": enforce, "shadow": shadow,
            }),
            Self::Activate { version } | Self::Shadow { version } => json!({ "version": version }),
            Self::Rollback { version } => json!({ "version": version }),
            Self::ReleasePlugin { plugin } => json!({ "plugin": plugin }),
            Self::Demote | Self::ClearShadow => json!({}),
        }
    }
}

/// What happened to a stored caller token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChange {
    /// Created with `arbiter token create`.
    Added,
    /// Its entry was edited in the state file.
    Changed,
    /// Removed with `arbiter token revoke`.
    Removed,
}

/// An administrative act and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAct {
    /// A set change, or its refusal (`refused`); `unloaded` lists versions a load past
    /// the version limit unloaded, as (set, version, digest).
    Set {
        /// The change.
        act: SetAct,
        /// The set name.
        set: String,
        /// Versions it unloaded.
        unloaded: Vec<(String, String, String)>,
        /// Why it was refused, if it was.
        refused: Option<String>,
    },
    /// A set that could not be loaded at all (verification, compilation, downgrade).
    LoadRefused {
        /// Where it came from.
        origin: String,
        /// SHA-256 of an uploaded bundle.
        bundle_sha256: Option<String>,
        /// Why.
        refused: String,
    },
    /// The credential signing key was rotated.
    RotateSigningKey {
        /// The key that signs from now on.
        active_kid: String,
        /// The key retired (still published until its credentials expire).
        retired_kid: String,
    },
    /// Old approvals and credentials were deleted from the state database.
    StatePurged {
        /// Approvals deleted.
        approvals: usize,
        /// They had closed before this (unix microseconds).
        approvals_closed_before_micros: i64,
        /// Credentials deleted.
        credentials: usize,
        /// They had expired before this (unix seconds).
        credentials_expired_before: i64,
    },
    /// A stored caller token was added, changed or removed.
    Token {
        /// What happened.
        change: TokenChange,
        /// The entry (the current one; the removed one).
        entry: TokenEntry,
        /// The entry on record before, for a change.
        was: Option<TokenEntry>,
    },
}

impl AdminAct {
    /// The act's name in the records (`outcome`): `load`, `activate-refused`,
    /// `rotate-signing-key`, `token-added`...
    pub fn name(&self) -> String {
        match self {
            Self::Set {
                act, refused: None, ..
            } => act.name().to_string(),
            Self::Set { act, .. } => format!("{}-refused", act.name()),
            Self::LoadRefused { .. } => "load-refused".into(),
            Self::RotateSigningKey { .. } => "rotate-signing-key".into(),
            Self::StatePurged { .. } => "state-purged".into(),
            Self::Token { change, .. } => match change {
                TokenChange::Added => "token-added",
                TokenChange::Changed => "token-changed",
                TokenChange::Removed => "token-removed",
            }
            .into(),
        }
    }

    /// The policy set it concerns, when it concerns one.
    pub fn set(&self) -> Option<&str> {
        match self {
            Self::Set { set, .. } => Some(set),
            _ => None,
        }
    }

    /// The record body.
    pub fn body(&self) -> Value {
        match self {
            Self::Set {
                act,
                set,
                unloaded,
                refused,
            } => {
                let mut body = json!({ "set": set, "detail": act.detail() });
                if !unloaded.is_empty() {
                    body["unloaded"] = unloaded
                        .iter()
                        .map(|(set, version, digest)| {
                            json!({ "set": set, "version": version, "digest": digest })
                        })
                        .collect::<Vec<_>>()
                        .into();
                }
                if let Some(why) = refused {
                    body["refused"] = why.as_str().into();
                }
                body
            }
            Self::LoadRefused {
                origin,
                bundle_sha256,
                refused,
            } => json!({ "origin": origin, "bundle_sha256": bundle_sha256, "refused": refused }),
            Self::RotateSigningKey {
                active_kid,
                retired_kid,
            } => json!({ "active_kid": active_kid, "retired_kid": retired_kid }),
            Self::StatePurged {
                approvals,
                approvals_closed_before_micros,
                credentials,
                credentials_expired_before,
            } => json!({
                "approvals": approvals,
                "approvals_closed_before_micros": approvals_closed_before_micros,
                "credentials": credentials,
                "credentials_expired_before": credentials_expired_before,
            }),
            Self::Token { entry, was, .. } => {
                let mut body = json!({
                    "token_for": entry.id,
                    "kind": entry.kind,
                    "roles": entry.roles,
                    "token_sha256_prefix": entry.sha256.get(..HASH_PREFIX).unwrap_or(&entry.sha256),
                    "created_micros": entry.created_micros,
                });
                if let Some(old) = was {
                    body["was"] =
                        json!({ "token_for": old.id, "kind": old.kind, "roles": old.roles });
                }
                body
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_are_named_and_recorded_as_before() {
        let load = AdminAct::Set {
            act: SetAct::Activate {
                version: "2.0.0".into(),
            },
            set: "reference".into(),
            unloaded: Vec::new(),
            refused: Some("no version `2.0.0`".into()),
        };
        assert_eq!(load.name(), "activate-refused");
        assert_eq!(load.set(), Some("reference"));
        assert_eq!(
            load.body(),
            json!({"set": "reference", "detail": {"version": "2.0.0"}, "refused": "no version `2.0.0`"})
        );
        let token = AdminAct::Token {
            change: TokenChange::Added,
            entry: TokenEntry {
                sha256: "ab".repeat(32),
                id: "gw".into(),
                kind: "service".into(),
                roles: vec!["enforcer".into()],
                created_micros: 5,
            },
            was: None,
        };
        assert_eq!(token.name(), "token-added");
        assert_eq!(token.body()["token_sha256_prefix"], "abababababab");
    }
}
