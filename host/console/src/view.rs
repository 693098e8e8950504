//! Reading the recorded request (canonical JSON, as approvers see it over the API)
//! into text for the pages.

use maud::{Markup, html};
use serde_json::Value as Json;

/// What a page shows for a field the request does not have.
const ABSENT: &str = "—";

/// The field at `path` as text: strings as they are, other values as JSON.
pub(crate) fn text(v: &Json, path: &[&str]) -> String {
    let mut at = v;
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return ABSENT.into(),
        }
    }
    match at {
        Json::Null => ABSENT.into(),
        Json::String(s) if s.is_empty() => ABSENT.into(),
        Json::String(s) => s.clone(),
        // Typed attribute values are written as `{"Str": "x"}` and the like.
        Json::Object(o) if o.len() == 1 => {
            o.values().next().map_or(ABSENT.into(), |v| text(v, &[]))
        }
        other => other.to_string(),
    }
}

/// An attribute map as a list of `name: value`.
pub(crate) fn attributes(v: Option<&Json>) -> Markup {
    let Some(map) = v.and_then(Json::as_object).filter(|m| !m.is_empty()) else {
        return html! { " " };
    };
    html! {
        ul.attributes {
            @for (name, value) in map { li { span.name { (name) } ": " (text(value, &[])) } }
        }
    }
}

/// `micros` as a UTC time a person reads (the page's script turns deadlines into a
/// countdown).
pub(crate) fn iso(micros: i64) -> String {
    let full = arbiter_core::clock::rfc3339(micros);
    // `2026-12-06T18:05:00.000000Z` -> `2026-12-06 18:05:00 UTC`
    match (full.get(..10), full.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_read_as_text_and_absent_ones_as_a_dash() {
        let r = json!({"principal": {"id": "bot"}, "context": {"risk": {"Int": 10}, "mfa": true}});
        assert_eq!(text(&r, &["principal", "id"]), "bot");
        assert_eq!(text(&r, &["context", "risk"]), "10");
        assert_eq!(text(&r, &["context", "mfa"]), "true");
        assert_eq!(text(&r, &["intent", "purpose"]), "—");
    }

    #[test]
    fn times_read_in_utc() {
        assert_eq!(iso(0), "1970-01-01 00:00:00 UTC");
    }
}
