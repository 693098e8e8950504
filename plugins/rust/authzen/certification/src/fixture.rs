//! The certification fixture's entities, as `fixture.json` lists them.

use std::collections::BTreeMap;

use arbiter_policy::PrincipalKind;
use serde::Deserialize;

/// The data file the certification set ships its fixture in.
pub const FIXTURE_FILE: &str = "fixture.json";

/// A subject of the fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Its AuthZEN `subject.type` (`user`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its properties (`role`), which a request's `subject.properties` override.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The actions it may take on active records.
    #[serde(default)]
    pub grants: Vec<String>,
}

impl Subject {
    /// Whether a request's principal of `kind` can be this subject: the door maps
    /// `user`, `identity` and `human` to a human, and the fixture's subjects are users.
    pub fn is_kind(&self, kind: PrincipalKind) -> bool {
        let expected = match self.kind.as_str() {
            "user" | "identity" | "human" => PrincipalKind::Human,
            "agent" => PrincipalKind::Agent,
            "workload" => PrincipalKind::Workload,
            _ => PrincipalKind::Service,
        };
        kind == expected
    }

    /// Whether it may take `action` on active records.
    pub fn may(&self, action: &str) -> bool {
        self.grants.iter().any(|g| g == action)
    }
}

/// A resource of the fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its AuthZEN `resource.type` (`record`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its properties (`status`), which a request's `resource.properties` override.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The fixture: subjects and resources by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Subjects by `subject.id`.
    pub subjects: BTreeMap<String, Subject>,
    /// Resources by `resource.id`.
    #[serde(default)]
    pub resources: BTreeMap<String, Resource>,
}

impl Fixture {
    /// Parses `fixture.json`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let fixture: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if fixture.subjects.is_empty() {
            return Err("holds no subjects".into());
        }
        Ok(fixture)
    }

    /// The resource `id` of type `kind`, if the fixture has it.
    pub fn resource(&self, kind: &str, id: &str) -> Option<&Resource> {
        self.resources.get(id).filter(|r| r.kind == kind)
    }
}
