//! The charts: the numbers appear, scales survive zero and one bucket, text is
//! escaped, and nothing uses `style=` (the CSP forbids it).

use super::*;

fn stack(label: &str, counts: [u64; 3]) -> Stack {
    Stack {
        label: label.into(),
        counts,
    }
}

/// What every chart must be: an image with a title and a description, scaled by its
/// `viewBox`, with no inline style and every element closed.
fn assert_accessible(svg: &str, title: &str) {
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains(r#"role="img""#), "{svg}");
    assert!(svg.contains("viewBox=\"0 0 "), "{svg}");
    assert!(svg.contains(&format!(">{title}</title>")), "{svg}");
    assert!(svg.contains("<desc id="), "{svg}");
    assert!(svg.contains("aria-labelledby="), "{svg}");
    assert!(!svg.contains("style="), "no inline style: {svg}");
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "finite geometry: {svg}"
    );
    assert_eq!(
        svg.matches("<rect").count(),
        svg.matches("</rect>").count(),
        "closed rects"
    );
}

#[test]
fn the_confusion_matrix_prints_every_count_and_shades_by_size() {
    let m = [[856, 3, 0], [0, 1057, 0], [12, 0, 87]];
    let svg = confusion("cm", "Confusion matrix", &m).into_string();
    assert_accessible(&svg, "Confusion matrix");
    for n in ["856", "1,057", "87", "12", "3"] {
        assert!(svg.contains(&format!(">{n}</text>")), "{n}: {svg}");
    }
    assert!(
        svg.contains("Labelled deny: 0 allowed, 1,057 denied, 0 held"),
        "{svg}"
    );
    assert!(
        svg.contains("c-shade-4 c-agree"),
        "the largest cell is darkest"
    );
    assert!(svg.contains("c-shade-0"), "empty cells are blank");
    assert!(svg.contains("c-shade-1"), "a small cell is still visible");
    for axis in ["Replayed decision", "Label"] {
        assert!(svg.contains(axis), "{axis}");
    }
}

#[test]
fn an_empty_confusion_matrix_has_no_division_by_zero() {
    let svg = confusion("cm", "Empty", &[[0; 3]; 3]).into_string();
    assert_accessible(&svg, "Empty");
    // Nine blank cells and the legend's first swatch.
    assert_eq!(svg.matches("c-shade-0").count(), 10, "{svg}");
}

#[test]
fn stacked_bars_over_time_show_each_bucket_and_total() {
    let bars = [
        stack("12:00", [5, 1, 0]),
        stack("12:05", [0, 0, 0]),
        stack("12:10", [2, 2, 4]),
    ];
    let svg = over_time("ot", "Over time", "recorded time", &bars, 0).into_string();
    assert_accessible(&svg, "Over time");
    assert!(
        svg.contains("3 buckets from 12:00 to 12:10: 7 allowed, 3 denied, 4 held"),
        "{svg}"
    );
    assert!(
        svg.contains("12:10: 2 allow, 2 deny, 4 require approval"),
        "{svg}"
    );
    // Allow, deny and require approval: three classes, and a legend for each.
    for class in ["c-allow", "c-deny", "c-approval"] {
        assert!(svg.matches(class).count() >= 2, "{class}");
    }
    assert!(svg.contains("recorded time"), "the axis label");
    // Empty buckets draw no bars: 2 + 3 segments and 3 legend swatches.
    assert_eq!(svg.matches("<rect").count(), 8, "{svg}");
}

#[test]
fn one_bucket_and_zero_counts_still_draw_an_axis() {
    let svg = over_time("ot", "One", "t", &[stack("only", [0, 0, 0])], 0).into_string();
    assert_accessible(&svg, "One");
    assert!(svg.contains(">1</text>"), "the axis runs 0 to 1: {svg}");
    let svg = over_time("ot", "None", "t", &[], 0).into_string();
    assert_accessible(&svg, "None");
    assert!(svg.contains("No decisions."), "{svg}");
    let svg = over_time("ot", "One", "t", &[stack("only", [3, 0, 0])], 0).into_string();
    assert_accessible(&svg, "One");
    assert!(
        svg.contains(r#"width="64""#),
        "a lone bar stays a bar: {svg}"
    );
}

#[test]
fn grouped_bars_print_values_and_mark_missing_ones() {
    let groups = [
        Group {
            label: "p50".into(),
            values: vec![Some(120.0), Some(95.0)],
        },
        Group {
            label: "max".into(),
            values: vec![Some(4100.0), None],
        },
    ];
    let svg = grouped("lat", "Latency", "µs", &["baseline", "candidate"], &groups).into_string();
    assert_accessible(&svg, "Latency");
    for text in ["120", "95", "4,100", "n/a", "baseline", "candidate", "µs"] {
        assert!(svg.contains(text), "{text}: {svg}");
    }
    assert!(svg.contains("p50: baseline 120, candidate 95."), "{svg}");
    assert!(
        svg.contains("max: baseline 4,100, candidate not measured."),
        "{svg}"
    );
    assert!(svg.contains("c-s0") && svg.contains("c-s1"), "{svg}");
}

#[test]
fn all_zero_grouped_bars_have_a_scale() {
    let groups = [Group {
        label: "require approval".into(),
        values: vec![Some(0.0)],
    }];
    let svg = grouped("b", "Burden", "per 1,000", &["replayed"], &groups).into_string();
    assert_accessible(&svg, "Burden");
}

#[test]
fn labels_and_titles_are_escaped() {
    let svg = over_time(
        "x",
        "<script>alert(1)</script>",
        "a & b",
        &[stack("<b>", [1, 0, 0])],
        0,
    )
    .into_string();
    assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
    assert!(
        svg.contains("&lt;script&gt;") && svg.contains("&lt;b&gt;"),
        "{svg}"
    );
    assert!(svg.contains("a &amp; b"), "{svg}");
    let groups = [Group {
        label: "\"quoted\"".into(),
        values: vec![Some(1.0)],
    }];
    let svg = grouped("x", "t", "u", &["<s>"], &groups).into_string();
    assert!(!svg.contains("<s>"), "{svg}");
}

#[test]
fn scales_are_round_and_cover_the_largest_value() {
    assert_eq!(nice_scale(0.0), (1.0, 1.0));
    assert_eq!(nice_scale(f64::NAN), (1.0, 1.0));
    assert_eq!(nice_scale(1.0), (1.0, 0.5));
    assert_eq!(nice_scale(7.0), (8.0, 2.0));
    assert_eq!(nice_scale(100.0), (100.0, 50.0));
    assert_eq!(nice_scale(1057.0), (1500.0, 500.0));
    assert_eq!(nice_scale(43.5), (60.0, 20.0));
}

#[test]
fn numbers_read_with_separators_and_few_decimals() {
    assert_eq!(num(0.0), "0");
    assert_eq!(num(1234567.0), "1,234,567");
    assert_eq!(num(43.5), "43.5");
    assert_eq!(num(0.126), "0.13");
    assert_eq!(num(-2.0), "−2");
    assert_eq!(num(-0.001), "0");
}
