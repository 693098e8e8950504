//! The policy-set pages' markup: the list of set names and one set's page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arbiter_audit::StoredRecord;
use arbiter_service::sets::{Named, Version};
use maud::{Markup, html};
use serde_json::Value as Json;

use super::{encode, short_digest};
use crate::pages::{Signed, layout};
use crate::view;

/// Every set name as a card: what it enforces, what it shadows, how they differ.
pub(super) fn list(signed: &Signed<'_>, named: &[(String, Named)], default: &str) -> Markup {
    layout(
        "Policy sets",
        Some(signed),
        html! {
            @if named.is_empty() { p.hint { "No policy set is loaded." } }
            ul.cards.sets {
                @for (name, n) in named {
                    li.card {
                        h2 {
                            a href={ "/console/sets/" (encode(name)) } { (name) }
                            @if name == default { " " span.badge { "default" } }
                        }
                        dl {
                            dt { "Enforced" } dd { (version_line(&n.enforced)) }
                            dt { "Origin" } dd { (n.enforced.origin) }
                            dt { "Signer" } dd { (signer(&n.enforced)) }
                            dt { "Activated" } dd { (activated(&n.enforced)) }
                            dt { "Shadow" } dd {
                                @match &n.shadow { Some(s) => (version_line(&s.version)), None => "none" }
                            }
                            @if let Some(s) = &n.shadow {
                                dt { "Compared" } dd { (s.stats.compared.load(Ordering::Relaxed)) }
                                dt { "Divergences" } dd { (s.stats.divergences().values().sum::<u64>()) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One set name: the act buttons, its versions, plugins, divergences and samples
/// (`None`: the audit log is off; `Err`: it cannot be read now).
pub(super) fn detail(
    signed: &Signed<'_>,
    name: &str,
    n: &Named,
    default: bool,
    samples: Option<Result<&[StoredRecord], ()>>,
    error: Option<&str>,
) -> Markup {
    let confirm = format!("/console/sets/{}/confirm", encode(name));
    let shadow = n.shadow.as_ref();
    html! {
        (layout(&format!("Policy set {name}"), Some(signed), html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { a href="/console/sets" { "All policy sets" } }
            section.card {
                h2 { "Now" }
                dl {
                    dt { "Default set" } dd { (if default { "yes" } else { "no" }) }
                    dt { "Enforced" } dd { (version_line(&n.enforced)) }
                    dt { "Shadow" } dd { @match shadow { Some(s) => (version_line(&s.version)), None => "none" } }
                    @if let Some(s) = shadow {
                        dt { "Compared" } dd { (s.stats.compared.load(Ordering::Relaxed)) " decisions" }
                        dt { "Shed" } dd { (s.stats.shed.load(Ordering::Relaxed)) " (no free evaluation slot)" }
                        dt { "Divergences" } dd { (s.stats.divergences().values().sum::<u64>()) }
                    }
                }
                div.buttons {
                    @if shadow.is_some() { a.button href={ (confirm) "?act=promote" } { "Promote shadow" } }
                    @if super::rollback_target(n).is_some() { a.button href={ (confirm) "?act=rollback" } { "Roll back" } }
                }
            }
            section {
                h2 { "Versions" }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Version" } th scope="col" { "Digest" } th scope="col" { "State" }
                        th scope="col" { "Origin" } th scope="col" { "Signer" } th scope="col" { "Loaded" } th scope="col" { "Activated" }
                    } }
                    tbody { @for v in &n.versions {
                        tr {
                            td { (v.set.identity().version) }
                            td.id { code title=(v.set.identity().digest) { (short_digest(&v.set.identity().digest)) } }
                            td { span.state { (state(n, v)) } }
                            td.id { (v.origin) }
                            td.id { (signer(v)) }
                            td.time { (view::iso(v.loaded_micros)) }
                            td.time { (activated(v)) }
                        }
                    } }
                } }
            }
            section {
                h2 { "Plugins" }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Version" } th scope="col" { "Plugin" } th scope="col" { "Evaluations" }
                        th scope="col" { "Failures" } th scope="col" { "Quarantined" }
                    } }
                    tbody {
                        @for v in std::iter::once(&n.enforced).chain(shadow.map(|s| &s.version)) {
                            @for p in v.set.plugin_status() {
                                tr {
                                    td { (v.set.identity().version) " (" (state(n, v)) ")" }
                                    td { (p.name) }
                                    td { (p.evaluations) }
                                    td { (p.failures) }
                                    td { @match &p.quarantine {
                                        Some(q) if p.quarantined => { span.error { "yes" } ": " (q.cause) }
                                        _ => { (if p.quarantined { "yes" } else { "no" }) }
                                    } }
                                }
                            }
                        }
                    }
                } }
            }
            @if let Some(s) = shadow { (divergences(&s.stats.divergences())) }
            (sample_table(samples))
        }))
    }
}

fn divergences(
    d: &std::collections::BTreeMap<(arbiter_core::Outcome, arbiter_core::Outcome), u64>,
) -> Markup {
    html! {
        section {
            h2 { "Divergences" }
            @if d.is_empty() { p.hint { "The shadow has decided as the enforced version every time so far." } }
            @else {
                div.scroll { table.divergences {
                    thead { tr { th scope="col" { "Enforced decided" } th scope="col" { "Shadow decided" } th scope="col" { "Count" } } }
                    tbody { @for ((from, to), count) in d {
                        tr { td { (from.as_str()) } td { (to.as_str()) } td { (count) } }
                    } }
                } }
            }
        }
    }
}

fn sample_table(samples: Option<Result<&[StoredRecord], ()>>) -> Markup {
    html! {
        section.samples {
            h2 { "Divergence samples" }
            @match samples {
                None => p.hint { "The audit log is off on this server, so no divergent request is kept." },
                Some(Err(())) => p.error { "The audit log cannot be read now." },
                Some(Ok([])) => p.hint { "No divergent request on record." },
                Some(Ok(records)) => {
                    p.hint { "The newest " (records.len()) " divergent requests on record." }
                    div.scroll { table.samples {
                        thead { tr {
                            th scope="col" { "Time" } th scope="col" { "Principal" } th scope="col" { "Request" }
                            th scope="col" { "Enforced" } th scope="col" { "Shadow" } th scope="col" { "Enforced decision" }
                        } }
                        tbody { @for r in records { (sample(r)) } }
                    } }
                }
            }
        }
    }
}

/// A shadow record: the request, the enforced decision (`enforced` in the body) and
/// the shadow's (the record's own outcome and `set`).
fn sample(r: &StoredRecord) -> Markup {
    let body = r.record.body_value();
    let req = body.get("request").unwrap_or(&Json::Null);
    let enforced_id = view::text(&body, &["enforced", "decision_id"]);
    html! {
        tr {
            td.time { (view::iso(r.record.at_micros)) }
            td.id { (r.record.principal.as_deref().unwrap_or("—")) }
            td { (view::text(req, &["action", "name"])) " on " (view::text(req, &["resource", "id"])) }
            td { span.state { (view::text(&body, &["enforced", "outcome"])) } " (" (view::text(&body, &["enforced", "version"])) ")" }
            td { span.state { (r.record.outcome.as_deref().unwrap_or("—")) } " (" (view::text(&body, &["set", "version"])) ")" }
            td.id { code { (enforced_id) } }
        }
    }
}

fn state(n: &Named, v: &Arc<Version>) -> &'static str {
    if Arc::ptr_eq(v, &n.enforced) {
        "enforced"
    } else if n
        .shadow
        .as_ref()
        .is_some_and(|s| Arc::ptr_eq(v, &s.version))
    {
        "shadow"
    } else {
        "loaded"
    }
}

/// `VERSION (DIGEST…)`.
pub(super) fn version_line(v: &Version) -> Markup {
    let id = v.set.identity();
    html! { (id.version) " " code title=(id.digest) { "(" (short_digest(&id.digest)) ")" } }
}

fn signer(v: &Version) -> &str {
    v.signer.as_deref().unwrap_or("unsigned")
}

fn activated(v: &Version) -> String {
    match i64::try_from(v.activated_micros.load(Ordering::Relaxed)) {
        Ok(0) | Err(_) => "never".into(),
        Ok(micros) => view::iso(micros),
    }
}
