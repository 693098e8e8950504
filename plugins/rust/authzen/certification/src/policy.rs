//! The certification fixture's policy. The scenario requires eight decisions (its
//! "Required Policy Behaviour"); this policy gives them from a few rules rather than a
//! table of answers:
//!
//! - Only the fixture's subjects (`alice`, `bob`), as users, and resources of type
//!   `record` are known; anything else is denied with its reason.
//! - `read`: subjects granted `read` (both) may read any record.
//! - `write`: an archived record may be changed only by an `admin`; an active record by
//!   the subjects granted `write` (`alice`). A record whose status is unknown is not
//!   changed.
//! - `delete`: only soft deletes (`action.properties.soft = true`; absent is a hard
//!   delete), under the rules of `write` with the `delete` grant.
//!
//! A subject's `role` and a record's `status` are the request's `properties` when it
//! carries them, else the fixture's. The scenario asks for that (rules 5 to 8 decide on
//! the properties the caller sends); a deployment would take roles from its own PIP
//! rather than from the caller. `bob` is an admin but not granted `write`: he changes
//! archived records only (rules 4 and 6).

use arbiter_policy::{AttributesExt, Reason, Request, Verdict};

use crate::fixture::Fixture;

/// The fixture's action names.
pub const ACTIONS: [&str; 3] = ["read", "write", "delete"];

/// The only resource type the fixture has.
const RECORD: &str = "record";

fn reason(code: &str, caller: &str, admin: String) -> Reason {
    Reason::new(code, caller).admin(format!("authzen-certification: {admin}"))
}

/// Decides one request against the fixture.
pub fn decide(fixture: &Fixture, r: &Request) -> Verdict {
    let id = r.principal.id.as_str();
    let Some(subject) = fixture
        .subjects
        .get(id)
        .filter(|s| s.is_kind(r.principal.kind))
    else {
        return Verdict::deny(reason(
            "unknown-subject",
            "the subject is not one of the fixture's users",
            format!("no {:?} subject `{id}`", r.principal.kind),
        ));
    };
    let action = r.action.name.as_str();
    if !ACTIONS.contains(&action) {
        return Verdict::deny(reason(
            "unknown-action",
            "the fixture's actions are read, write and delete",
            format!("action `{action}`"),
        ));
    }
    if r.resource.kind != RECORD {
        return Verdict::deny(reason(
            "unknown-resource-type",
            "the fixture's resources are of type `record`",
            format!("resource type `{}`", r.resource.kind),
        ));
    }
    if action == "read" {
        return if subject.may("read") {
            Verdict::allow_because(reason(
                "may-read",
                "you may read records",
                format!("`{id}` is granted read"),
            ))
        } else {
            Verdict::deny(reason(
                "not-granted",
                "you may not read records",
                format!("`{id}` is not granted read"),
            ))
        };
    }
    if action == "delete" && r.action.attributes.bool("soft") != Some(true) {
        return Verdict::deny(reason(
            "hard-delete-denied",
            "records may only be soft-deleted: send `action.properties.soft` = true",
            format!("soft = {:?}", r.action.attributes.get("soft")),
        ));
    }
    let role = r
        .principal
        .attributes
        .str("role")
        .or_else(|| subject.properties.get("role").map(String::as_str));
    let stored = fixture.resource(RECORD, &r.resource.id);
    let status = r
        .resource
        .attributes
        .str("status")
        .or_else(|| stored.and_then(|s| s.properties.get("status").map(String::as_str)));
    match status {
        Some("archived") if role == Some("admin") => Verdict::allow_because(reason(
            "admin-changes-archived",
            "admins may change archived records",
            format!(
                "`{id}` is an admin; {action} on archived `{}`",
                r.resource.id
            ),
        )),
        Some("archived") => Verdict::deny(reason(
            "record-archived",
            "archived records may be changed only by an admin",
            format!("`{id}` has role {role:?}"),
        )),
        Some("active") if subject.may(action) => Verdict::allow_because(reason(
            "may-change-active",
            &format!("you may {action} active records"),
            format!("`{id}` is granted {action}"),
        )),
        Some("active") => Verdict::deny(reason(
            "not-granted",
            &format!("you may not {action} active records"),
            format!("`{id}` is not granted {action}"),
        )),
        _ => Verdict::deny(reason(
            "record-status-unknown",
            "the record's status is unknown: send `resource.properties.status`",
            format!("`{}` status {status:?}", r.resource.id),
        )),
    }
}

#[cfg(test)]
mod tests;
