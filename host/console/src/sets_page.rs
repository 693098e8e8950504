//! The policy-set pages (admins): what is enforced and in shadow for each set name,
//! its versions, shadow divergence counts and samples; promote and roll back, each
//! confirmed and recorded as an audited admin act.
//!
//! | path | does |
//! | --- | --- |
//! | `GET /console/sets` | every set name as a card |
//! | `GET /console/sets/{name}` | versions, plugins, divergences and their samples |
//! | `GET /console/sets/{name}/confirm?act=promote\|rollback[&version=V]` | what the act will change, and the form that does it |
//! | `POST /console/sets/{name}/{act}` | the act, through the same call as the gRPC `PolicyAdmin` |

mod confirm;
mod render;

use std::collections::HashMap;
use std::sync::Arc;

use arbiter_audit::{Filter, Kind, StoredRecord};
use arbiter_service::events::SetAct;
use arbiter_service::sets::{Named, Version};
use http::StatusCode;

use crate::pages::Signed;
use crate::{Answer, Console, web};

/// Divergence samples the set page shows: the newest few, to see what kind of request
/// the shadow decides differently (the audit page and the CLI search them all).
const SAMPLES: usize = 10;
/// Hex digits of a digest shown where space is short.
const DIGEST_CHARS: usize = 12;

/// A change an admin makes from these pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// The shadow version becomes the enforced one.
    Promote,
    /// An earlier version is enforced again.
    Rollback,
}

impl Act {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "promote" => Some(Self::Promote),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
        }
    }
}

/// What an act will change: enforced `from` now, `to` after it.
pub(crate) struct Plan {
    pub(crate) act: Act,
    pub(crate) from: Arc<Version>,
    pub(crate) to: Arc<Version>,
}

/// `GET /console/sets` (`rest` empty) and `GET /console/sets/{name}[/...]`.
pub(crate) async fn get(
    console: &Console,
    signed: &Signed<'_>,
    rest: &str,
    query: Option<&str>,
) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let sets = console.app.sets();
    if rest.is_empty() {
        let default = sets.default_name();
        return web::html(
            StatusCode::OK,
            render::list(signed, &sets.named(), &default),
        );
    }
    let (segment, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let name = decode(segment);
    let Some(named) = sets.get_named(&name) else {
        return crate::routes::not_found(signed);
    };
    match sub {
        "" => detail(console, signed, &name, &named, None).await,
        "confirm" => {
            let q: HashMap<String, String> =
                form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let Some(act) = q.get("act").and_then(|a| Act::parse(a)) else {
                return crate::routes::not_found(signed);
            };
            match plan(&name, &named, act, q.get("version").map(String::as_str)) {
                Ok(plan) => web::html(StatusCode::OK, confirm::page(signed, &name, &named, &plan)),
                Err((status, why)) => {
                    detail(console, signed, &name, &named, Some((status, why))).await
                }
            }
        }
        _ => crate::routes::not_found(signed),
    }
}

/// `POST /console/sets/{name}/{act}` (the form's CSRF token already checked).
pub(crate) async fn post(
    console: &Console,
    signed: &Signed<'_>,
    rest: &str,
    form: &HashMap<String, String>,
) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let Some((segment, act)) = rest.split_once('/') else {
        return crate::routes::not_found(signed);
    };
    let name = decode(segment);
    let (Some(named), Some(act)) = (console.app.sets().get_named(&name), Act::parse(act)) else {
        return crate::routes::not_found(signed);
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let refuse =
        |status, why: &str| detail(console, signed, &name, &named, Some((status, why.into())));
    if field("confirm") != "yes" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "tick the box to confirm the change",
        )
        .await;
    }
    // What the admin confirmed must still be what the act changes: the version
    // enforced now, and the one it makes enforced (for a promotion, still the shadow).
    let plan = plan(&name, &named, act, Some(field("version")));
    let Some(plan) = plan.ok().filter(|p| {
        p.from.set.identity().digest == field("from")
            && p.to.set.identity().digest == field("version")
    }) else {
        return refuse(
            StatusCode::CONFLICT,
            "the set changed since you confirmed: review it again",
        )
        .await;
    };
    // The act names its target by digest, so even a change that lands between this
    // check and the act cannot make it enforce another version than the one confirmed.
    let digest = plan.to.set.identity().digest.clone();
    let set_act = match act {
        Act::Promote => SetAct::Activate {
            version: digest.clone(),
        },
        Act::Rollback => SetAct::Rollback {
            version: Some(digest.clone()),
        },
    };
    let sets = console.app.sets();
    let change = || match act {
        Act::Promote => sets.activate(&name, &digest),
        Act::Rollback => sets.rollback(&name, Some(&digest)),
    };
    match console
        .app
        .change_sets(signed.caller, set_act, &name, change)
        .await
    {
        Ok(Ok(())) => {
            let id = plan.to.set.identity();
            tracing::info!(set = %name, act = act.as_str(), version = %id.version, digest = %id.digest, by = %signed.caller.id, "policy set changed from the console");
            web::see_other(&format!("/console/sets/{}", encode(&name)))
        }
        Ok(Err(refused)) => refuse(StatusCode::CONFLICT, &refused.to_string()).await,
        Err(e) => crate::routes::failed(&e, signed),
    }
}

/// What `act` on `name` would change now; `version` picks a rollback's target (one of
/// [`rollback_candidates`]) or, for a promotion, must name the shadow.
fn plan(
    name: &str,
    named: &Named,
    act: Act,
    version: Option<&str>,
) -> Result<Plan, (StatusCode, String)> {
    let from = named.enforced.clone();
    let version = version.filter(|v| !v.is_empty());
    let to = match act {
        Act::Promote => {
            let shadow = named
                .shadow
                .as_ref()
                .map(|s| s.version.clone())
                .ok_or_else(|| {
                    (
                        StatusCode::CONFLICT,
                        format!("`{name}` has no shadow version to promote"),
                    )
                })?;
            if version.is_some_and(|v| !shadow.is(v)) {
                return Err((
                    StatusCode::CONFLICT,
                    format!("the shadow of `{name}` is another version now"),
                ));
            }
            shadow
        }
        Act::Rollback => {
            let candidates = || rollback_candidates(named);
            match version {
                None => rollback_target(named).ok_or_else(|| {
                    (
                        StatusCode::CONFLICT,
                        format!("`{name}` has no loaded version to roll back to (other than the enforced one and the shadow)"),
                    )
                })?,
                Some(v) => match candidates().filter(|x| x.is(v)).collect::<Vec<_>>().as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        return Err((
                            StatusCode::NOT_FOUND,
                            format!("`{name}` has no version `{v}` to roll back to (other than the enforced one and the shadow)"),
                        ));
                    }
                    _ => {
                        return Err((
                            StatusCode::BAD_REQUEST,
                            format!("`{v}` names several versions of `{name}`: use a digest"),
                        ));
                    }
                },
            }
        }
    };
    Ok(Plan { act, from, to })
}

/// The versions a rollback may enforce: every loaded one but the enforced one and the
/// shadow (enforcing the shadow is a promotion).
fn rollback_candidates(named: &Named) -> impl Iterator<Item = &Arc<Version>> {
    let shadow = named.shadow.as_ref().map(|s| &s.version);
    named.versions.iter().filter(move |v| {
        !Arc::ptr_eq(v, &named.enforced) && !shadow.is_some_and(|s| Arc::ptr_eq(v, s))
    })
}

/// The version a rollback proposes: of [`rollback_candidates`], the one last made
/// enforced or shadow. The registry keeps its enforcement history to itself, so this
/// is the console's reading of it; the confirmation names the version and offers the
/// others, and the act enforces exactly the version confirmed.
pub(crate) fn rollback_target(named: &Named) -> Option<Arc<Version>> {
    rollback_candidates(named)
        .max_by_key(|v| {
            v.activated_micros
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .cloned()
}

/// The set page, with an error above it when an act was refused.
async fn detail(
    console: &Console,
    signed: &Signed<'_>,
    name: &str,
    named: &Named,
    error: Option<(StatusCode, String)>,
) -> Answer {
    let samples = match console.app.audit() {
        None => None,
        Some(log) => {
            let filter = Filter {
                kind: Some(Kind::Shadow),
                policy_set: Some(name.to_string()),
                newest_first: true,
                limit: SAMPLES,
                ..Filter::default()
            };
            Some(crate::audit_page::query(log.clone(), filter).await)
        }
    };
    let samples: Option<Result<&[StoredRecord], ()>> =
        samples.as_ref().map(|s| s.as_deref().map_err(drop));
    let default = console.app.sets().default_name() == name;
    let (status, error) = match error {
        Some((status, why)) => (status, Some(why)),
        None => (StatusCode::OK, None),
    };
    let page = render::detail(signed, name, named, default, samples, error.as_deref());
    web::html(status, page)
}

/// The first hex digits of a digest.
pub(crate) fn short_digest(digest: &str) -> &str {
    digest.get(..DIGEST_CHARS).unwrap_or(digest)
}

/// A set name as a path segment: unreserved characters as they are, others escaped.
pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment's set name (`%XX` escapes undone; one that does not decode names no
/// set).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_round_trip_through_paths() {
        for name in ["reference", "a b/c%", "ünï"] {
            assert_eq!(decode(&encode(name)), name);
        }
        assert_eq!(encode("ref-1.0_x"), "ref-1.0_x");
        assert_eq!(decode("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn acts_are_promote_and_rollback_only() {
        assert_eq!(Act::parse("promote"), Some(Act::Promote));
        assert_eq!(Act::parse("rollback"), Some(Act::Rollback));
        assert_eq!(Act::parse("demote"), None);
    }
}
