//! Fixtures of a case file: named principals (`[principals.NAME]`) and resources
//! (`[resources.NAME]`), each a whole principal or resource as in a request. A case (or
//! `[defaults]`) selects one with `principal = "NAME"` / `resource = "NAME"`: it
//! replaces that part of `[defaults.request]`, and the case's own `request` then merges
//! on top, so a case can still change one field of a fixture.

use std::collections::BTreeMap;

use arbiter_core::{Principal, Resource};
use toml::Spanned;

use super::request::part_error;

/// Which part of a request a fixture stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Principal,
    Resource,
}

impl Part {
    /// The request key, and the key of the selection in a case.
    fn key(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Resource => "resource",
        }
    }

    /// The file's top-level table of these fixtures.
    fn table(self) -> &'static str {
        match self {
            Self::Principal => "principals",
            Self::Resource => "resources",
        }
    }
}

/// The fixtures of one file, checked.
#[derive(Debug, Default)]
pub(super) struct Fixtures {
    principals: BTreeMap<String, toml::Table>,
    resources: BTreeMap<String, toml::Table>,
}

impl Fixtures {
    /// Checks every fixture as a whole principal or resource. `Err` is the byte offset
    /// of the first invalid fixture and what is wrong with it.
    pub(super) fn new(
        principals: BTreeMap<String, Spanned<toml::Table>>,
        resources: BTreeMap<String, Spanned<toml::Table>>,
    ) -> Result<Self, (usize, String)> {
        let check = |part: Part, fixtures: BTreeMap<String, Spanned<toml::Table>>| {
            let mut out = BTreeMap::new();
            for (name, table) in fixtures {
                let at = table.span().start;
                let table = table.into_inner();
                let path = format!("{}.{name}", part.table());
                let value = toml::Value::Table(table.clone());
                let wrong = match part {
                    Part::Principal => part_error::<Principal>(&path, &value),
                    Part::Resource => part_error::<Resource>(&path, &value),
                };
                if let Some((path, why)) = wrong {
                    return Err((at, format!("fixture `{path}`: {why}")));
                }
                out.insert(name, table);
            }
            Ok(out)
        };
        Ok(Self {
            principals: check(Part::Principal, principals)?,
            resources: check(Part::Resource, resources)?,
        })
    }

    /// Puts fixture `name` in `request` as its `part`, replacing what was there.
    /// `origin` says where the selection was written (`[defaults]` or the case), for
    /// the error naming an unknown fixture and the ones the file has.
    pub(super) fn select(
        &self,
        part: Part,
        name: &str,
        origin: &str,
        request: &mut toml::Table,
    ) -> Result<(), String> {
        let fixtures = match part {
            Part::Principal => &self.principals,
            Part::Resource => &self.resources,
        };
        let Some(fixture) = fixtures.get(name) else {
            let (key, table) = (part.key(), part.table());
            let known = if fixtures.is_empty() {
                format!("the file has no `[{table}.NAME]` tables")
            } else {
                let names: Vec<String> = fixtures.keys().map(|n| format!("`{n}`")).collect();
                format!("the file's {table} are {}", names.join(", "))
            };
            return Err(format!(
                "{origin}`{key} = \"{name}\"` names no fixture `[{table}.{name}]`; {known}"
            ));
        };
        request.insert(part.key().into(), toml::Value::Table(fixture.clone()));
        Ok(())
    }
}
