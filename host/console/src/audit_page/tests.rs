use super::*;

#[test]
fn datetime_local_values_read_as_utc() {
    assert_eq!(utc_micros("1970-01-01T00:00"), Some(0));
    assert_eq!(
        utc_micros("2023-11-14T22:13:20"),
        Some(1_700_000_000_000_000)
    );
    assert_eq!(utc_micros("2000-02-29T00:00"), Some(951_782_400_000_000));
    for bad in [
        "",
        "yesterday",
        "2023-11-14",
        "2023-11-14T22",
        "2023-13-01T00:00",
        "2023-02-29T00:00",
        "2023-11-14T24:00",
        "2023-11-14T22:13:20:01",
        "2023-1-14T22:13",
        "+023-11-14T22:13",
    ] {
        assert_eq!(utc_micros(bad), None, "{bad}");
    }
}

#[test]
fn times_read_back_as_the_console_shows_them() {
    let micros = utc_micros("2026-12-06T18:05").unwrap_or_default();
    assert_eq!(crate::view::iso(micros), "2026-12-06 18:05:00 UTC");
}

#[test]
fn a_search_becomes_a_newest_first_filter() {
    let s = Search::parse(
        "since=2026-01-01T00%3A00&principal=+bot+&outcome=deny&set=reference&kind=decision",
    );
    let f = s.filter().unwrap_or_default();
    assert_eq!(f.since_micros, utc_micros("2026-01-01T00:00"));
    assert_eq!(f.until_micros, None);
    assert_eq!(f.principal.as_deref(), Some("bot"));
    assert_eq!(f.outcome.as_deref(), Some("deny"));
    assert_eq!(f.policy_set.as_deref(), Some("reference"));
    assert_eq!(f.kind, Some(Kind::Decision));
    assert!(f.newest_first);
    assert_eq!(f.limit, PAGE_ROWS + 1);
    // `any` and empty fields match everything.
    let any = Search::parse("outcome=any&kind=any&principal=").filter();
    assert_eq!(
        any.map(|f| (f.outcome, f.kind, f.principal)),
        Ok((None, None, None))
    );
}

#[test]
fn bad_fields_are_named() {
    for (query, field) in [
        ("since=soon", "since"),
        ("until=2026-02-30T00:00", "until"),
        ("outcome=maybe", "outcome"),
        ("kind=decisions", "kind"),
        ("before=x", "before"),
        ("before=0", "before"),
    ] {
        let e = Search::parse(query).filter().map(drop);
        assert_eq!(e.map_err(|b| b.field), Err(field), "{query}");
    }
    let long = format!("principal={}", "a".repeat(MAX_TEXT + 1));
    assert!(Search::parse(&long).filter().is_err());
    let e = Search::parse("since=soon").filter().map(drop);
    assert_eq!(
        e.map_err(|b| b.to_string()),
        Err("`since` is not a date and time (YYYY-MM-DDTHH:MM)".into())
    );
}

#[test]
fn the_older_link_keeps_the_search() {
    let s = Search::parse("principal=a b&outcome=any&kind=shadow&before=7");
    assert_eq!(s.before, Some(7));
    assert_eq!(s.query(Some(3)), "principal=a+b&kind=shadow&before=3");
    assert_eq!(s.query(None), "principal=a+b&kind=shadow");
}

#[test]
fn summaries_are_short() {
    assert_eq!(render::short("abcdef", 3), "abc…");
    assert_eq!(render::short("abc", 3), "abc");
    assert_eq!(render::short("ééé", 2), "éé…");
}
