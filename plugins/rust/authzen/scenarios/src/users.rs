//! The Todo scenario's users and the attributes its PIP holds for them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The data file the Todo and gateway sets ship their users in.
pub const USERS_FILE: &str = "users.json";

/// One user, as the scenario's PIP describes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The user's id, their email address: what a todo's `ownerID` holds.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Role names (`viewer`, `editor`, `admin`, `evil_genius`).
    pub roles: Vec<String>,
    /// Picture URL.
    #[serde(default)]
    pub picture: String,
}

impl User {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The users by PID (the `sub` claim the PEP sends as `subject.id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    by_pid: BTreeMap<String, User>,
}

impl Users {
    /// Parses `users.json`: an object from PID to user, as in the scenario's PIP section.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let by_pid: BTreeMap<String, User> = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a map from PID to user: {e}"))?;
        if by_pid.is_empty() {
            return Err("holds no users".into());
        }
        Ok(Self { by_pid })
    }

    /// The user a subject id names: a PID, or else a user's own id (email), which some
    /// PEPs send instead of the PID.
    pub fn find(&self, subject_id: &str) -> Option<&User> {
        self.by_pid
            .get(subject_id)
            .or_else(|| self.by_pid.values().find(|u| u.id == subject_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_pid_or_by_id() {
        let users = Users::parse(
            br#"{"PID-1": {"id": "rick@the-citadel.com", "name": "Rick", "email": "rick@the-citadel.com", "roles": ["admin"]}}"#,
        )
        .expect("parses");
        assert_eq!(users.find("PID-1").map(|u| u.name.as_str()), Some("Rick"));
        assert!(
            users
                .find("rick@the-citadel.com")
                .is_some_and(|u| u.has_role("admin"))
        );
        assert!(users.find("morty@the-citadel.com").is_none());
    }

    #[test]
    fn a_malformed_or_empty_file_is_refused() {
        assert!(Users::parse(b"[]").is_err());
        assert!(Users::parse(b"{}").is_err());
        assert!(Users::parse(br#"{"PID-1": {"id": "x"}}"#).is_err());
    }
}
