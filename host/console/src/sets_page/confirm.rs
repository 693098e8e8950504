//! The confirmation of a promotion or a rollback: exactly what will change, and the
//! form that does it, carrying the versions confirmed so that the act is refused if
//! the set changed in between.

use std::sync::Arc;

use arbiter_service::sets::{Named, Version};
use maud::{Markup, html};

use super::render::version_line;
use super::{Act, Plan, encode, rollback_candidates, short_digest};
use crate::pages::{Signed, layout};

/// The confirmation page of `plan` on set `name`.
pub(super) fn page(signed: &Signed<'_>, name: &str, n: &Named, plan: &Plan) -> Markup {
    let (title, button) = match plan.act {
        Act::Promote => (format!("Promote the shadow of {name}"), "Promote"),
        Act::Rollback => (format!("Roll back {name}"), "Roll back"),
    };
    let to = plan.to.set.identity();
    let shadow = n.shadow.as_ref().map(|s| &s.version);
    let others: Vec<&Arc<Version>> = rollback_candidates(n)
        .filter(|v| !Arc::ptr_eq(v, &plan.to))
        .collect();
    html! {
        (layout(&title, Some(signed), html! {
            section.card.confirm {
                h2 { "What will change" }
                p.change {
                    "Set " strong { (name) } " will enforce version " strong { (version_line(&plan.to)) }
                    " instead of version " strong { (version_line(&plan.from)) } "."
                }
                ul {
                    li { "Every decision from then on is version " (to.version) "'s; approvals and credentials already issued stay as they are." }
                    @match shadow {
                        Some(s) if Arc::ptr_eq(s, &plan.to) => li { "Version " (to.version) " stops being the shadow: the comparison and its divergence counts end." },
                        Some(s) => li { "Version " (version_line(s)) " keeps shadowing, compared from then on with version " (to.version) "." },
                        None => li { "No version is in shadow; none will be." },
                    }
                    li { "The act is recorded in the audit log as yours (" (signed.caller.id) "), or its refusal if it is refused." }
                }
                @if plan.act == Act::Rollback && !others.is_empty() {
                    p.hint { "Proposed: the version last active before this one. Roll back to another instead:" }
                    ul.others {
                        @for v in others {
                            li { a href={ "/console/sets/" (encode(name)) "/confirm?act=rollback&version=" (v.set.identity().digest) } {
                                (v.set.identity().version) " (" (short_digest(&v.set.identity().digest)) ")"
                            } }
                        }
                    }
                }
            }
            form.card.confirm method="post" action={ "/console/sets/" (encode(name)) "/" (plan.act.as_str()) } {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="from" value=(plan.from.set.identity().digest);
                input type="hidden" name="version" value=(to.digest);
                div.check {
                    input id="confirm" name="confirm" type="checkbox" value="yes" required;
                    label for="confirm" { "I have reviewed this change: enforce version " (to.version) " of " (name) }
                }
                div.buttons {
                    button.danger type="submit" { (button) }
                    a href={ "/console/sets/" (encode(name)) } { "Cancel" }
                }
            }
        }))
    }
}
