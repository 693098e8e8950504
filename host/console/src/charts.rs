//! Charts drawn on the server as SVG: pure functions from numbers to markup, so a page
//! needs no script and the strict CSP holds. Colors come from classes in
//! `console.css` (`c-allow`, `c-deny`, `c-approval`, `c-s0`, `c-s1`, `c-shade-N`), other
//! presentation from SVG attributes, never `style=`. Every chart is an image to
//! assistive technology (`role="img"`) named by its `<title>` and described in words by
//! its `<desc>`, carries axis labels and a legend, and scales with its `viewBox`
//! (down to a 390 px phone).
//!
//! Elements are always closed (`<rect ...></rect>`): inside `<svg>` an HTML parser
//! treats an unclosed tag as the parent of what follows.

use maud::{Markup, html};

/// The three outcomes: the key in a report, what a person reads, the color class.
pub(crate) const OUTCOMES: [(&str, &str, &str); 3] = [
    ("allow", "allow", "c-allow"),
    ("deny", "deny", "c-deny"),
    ("require-approval", "require approval", "c-approval"),
];

/// Width of the bar charts' coordinate space; the page scales it to fit.
const WIDTH: f64 = 640.0;
/// Room left of the plot for the value axis and its ticks.
const LEFT: f64 = 64.0;
/// Room right of the plot.
const RIGHT: f64 = 12.0;
/// Room above the plot for the legend.
const TOP: f64 = 40.0;
/// Height of the plot area.
const PLOT: f64 = 200.0;
/// Room below the plot for category labels and the axis label.
const BOTTOM: f64 = 52.0;
/// The widest bar: a lone bucket stays a bar, not a block.
const MAX_BAR: f64 = 64.0;
/// Category labels an axis shows at most: more would overlap at this width.
const MAX_X_LABELS: usize = 4;

/// One bar of a stacked chart: its category label and its counts in the order of
/// [`OUTCOMES`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stack {
    pub(crate) label: String,
    pub(crate) counts: [u64; 3],
}

/// One category of a grouped chart: a value per series (`None`: not measured).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub(crate) label: String,
    pub(crate) values: Vec<Option<f64>>,
}

/// The frame every chart shares: `role="img"`, the title and the description naming
/// it, and the `viewBox`.
fn frame(
    id: &str,
    wide: bool,
    title: &str,
    desc: &str,
    (w, h): (f64, f64),
    body: Markup,
) -> Markup {
    html! {
        svg.chart.c-narrow[!wide] xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (w) " " (h) }
            aria-labelledby={ (id) "-title " (id) "-desc" } {
            title id={ (id) "-title" } { (title) }
            desc id={ (id) "-desc" } { (desc) }
            (body)
        }
    }
}

/// A confusion matrix: rows are the labels (or recorded decisions), columns the
/// replayed decisions, each cell shaded by its count (`c-shade-0` for none to
/// `c-shade-4` for the largest) with the count printed in it.
pub(crate) fn confusion(id: &str, title: &str, m: &[[u64; 3]; 3]) -> Markup {
    const CELL_W: f64 = 92.0;
    const CELL_H: f64 = 46.0;
    const ROW_HEAD: f64 = 150.0;
    const COL_HEAD: f64 = 64.0;
    let max = m.iter().flatten().copied().max().unwrap_or(0);
    let w = ROW_HEAD + 3.0 * CELL_W + 8.0;
    let h = COL_HEAD + 3.0 * CELL_H + 64.0;
    let mut desc = String::from("Rows are labels, columns replayed decisions. ");
    for (r, row) in m.iter().enumerate() {
        desc.push_str(&format!(
            "Labelled {}: {} allowed, {} denied, {} held for approval. ",
            OUTCOMES[r].1,
            num(row[0] as f64),
            num(row[1] as f64),
            num(row[2] as f64)
        ));
    }
    let legend_y = COL_HEAD + 3.0 * CELL_H + 26.0;
    frame(
        id,
        false,
        title,
        desc.trim_end(),
        (w, h),
        html! {
            text.c-axis x=(px(ROW_HEAD + 1.5 * CELL_W)) y="16" text-anchor="middle" { "Replayed decision" }
            text.c-axis x="10" y=(px(COL_HEAD - 10.0)) { "Label ↓" }
            @for (c, (_, name, class)) in OUTCOMES.iter().enumerate() {
                rect class=(class) x=(px(ROW_HEAD + c as f64 * CELL_W + 4.0)) y="26" width=(px(CELL_W - 8.0)) height="6" {}
                text x=(px(ROW_HEAD + (c as f64 + 0.5) * CELL_W)) y="50" text-anchor="middle" { (name) }
            }
            @for (r, row) in m.iter().enumerate() {
                @let y = COL_HEAD + r as f64 * CELL_H;
                text x=(px(ROW_HEAD - 10.0)) y=(px(y + CELL_H / 2.0 + 5.0)) text-anchor="end" { (OUTCOMES[r].1) }
                @for (c, &n) in row.iter().enumerate() {
                    @let level = shade(n, max);
                    @let x = ROW_HEAD + c as f64 * CELL_W;
                    @let class = format!("c-cell c-shade-{level}{}", if r == c { " c-agree" } else { "" });
                    g {
                        title { "labelled " (OUTCOMES[r].1) ", replayed " (OUTCOMES[c].1) ": " (num(n as f64)) }
                        rect class=(class) x=(px(x)) y=(px(y)) width=(px(CELL_W)) height=(px(CELL_H)) {}
                        text class=[(level >= 3).then_some("c-on-dark")] x=(px(x + CELL_W / 2.0)) y=(px(y + CELL_H / 2.0 + 5.0)) text-anchor="middle" font-weight="600" { (num(n as f64)) }
                    }
                }
            }
            text.c-axis x="10" y=(px(legend_y + 4.0)) { "fewer" }
            @for level in 0..5u64 {
                rect class={ "c-cell c-shade-" (level) } x=(px(58.0 + level as f64 * 22.0)) y=(px(legend_y - 8.0)) width="20" height="14" {}
            }
            text.c-axis x="172" y=(px(legend_y + 4.0)) { "more (largest cell: " (num(max as f64)) ")" }
            text.c-axis x="10" y=(px(legend_y + 26.0)) { "outlined: label and decision agree" }
        },
    )
}

/// Darkness 0 (none) to 4 (the largest) of a cell with `n` of at most `max`.
fn shade(n: u64, max: u64) -> u64 {
    if n == 0 || max == 0 {
        return 0;
    }
    // 1..=4, rounding up so every non-empty cell is visibly shaded.
    (n.saturating_mul(4)).div_ceil(max).clamp(1, 4)
}

/// Stacked bars of decisions by outcome, one bar per bucket, on a scale up to at
/// least `scale_to` (so two charts can share a scale; 0 for this chart's own).
pub(crate) fn over_time(
    id: &str,
    title: &str,
    axis: &str,
    bars: &[Stack],
    scale_to: u64,
) -> Markup {
    let most = bars.iter().map(|b| b.counts.iter().sum::<u64>()).max();
    let (top, step) = nice_scale(most.unwrap_or(0).max(scale_to) as f64);
    // Counts are whole: no ticks between them.
    let step = step.max(1.0);
    let top = (top / step).ceil() * step;
    let totals: [u64; 3] = std::array::from_fn(|i| bars.iter().map(|b| b.counts[i]).sum::<u64>());
    let desc = match (bars.first(), bars.last()) {
        (Some(first), Some(last)) => format!(
            "{} buckets from {} to {}: {} allowed, {} denied, {} held for approval in all; the fullest bucket has {}.",
            bars.len(),
            first.label,
            last.label,
            num(totals[0] as f64),
            num(totals[1] as f64),
            num(totals[2] as f64),
            num(most.unwrap_or(0) as f64)
        ),
        _ => "No decisions.".to_string(),
    };
    let slot = (WIDTH - LEFT - RIGHT) / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).min(MAX_BAR);
    let y = |v: f64| TOP + PLOT - v / top * PLOT;
    frame(
        id,
        true,
        title,
        &desc,
        (WIDTH, TOP + PLOT + BOTTOM),
        html! {
            (legend(&OUTCOMES.map(|(_, name, class)| (name, class))))
            (value_axis(top, step, "decisions"))
            @if bars.is_empty() {
                text.c-axis x=(px(LEFT + 20.0)) y=(px(TOP + PLOT / 2.0)) { "no decisions" }
            }
            @for (i, bar) in bars.iter().enumerate() {
                @let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
                g {
                    title { (bar.label) ": " (num(bar.counts[0] as f64)) " allow, " (num(bar.counts[1] as f64)) " deny, " (num(bar.counts[2] as f64)) " require approval" }
                    @for (k, (_, _, class)) in OUTCOMES.iter().enumerate() {
                        @let below: u64 = bar.counts[..k].iter().sum();
                        @let n = bar.counts[k];
                        @if n > 0 {
                            rect class=(class) x=(px(x)) y=(px(y((below + n) as f64))) width=(px(bar_w)) height=(px(n as f64 / top * PLOT)) {}
                        }
                    }
                }
            }
            (category_labels(&bars.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(), slot))
            text.c-axis x=(px(LEFT + (WIDTH - LEFT - RIGHT) / 2.0)) y=(px(TOP + PLOT + 44.0)) text-anchor="middle" { (axis) }
        },
    )
}

/// Grouped bars: for each group (`p50`, `p99`, ...) a bar per series (baseline,
/// candidate), the value printed above it; `unit` labels the value axis.
pub(crate) fn grouped(
    id: &str,
    title: &str,
    unit: &str,
    series: &[&str],
    groups: &[Group],
) -> Markup {
    let most = groups
        .iter()
        .flat_map(|g| g.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let (top, step) = nice_scale(most);
    let desc = groups
        .iter()
        .map(|g| {
            let values: Vec<String> = series
                .iter()
                .zip(&g.values)
                .map(|(s, v)| format!("{s} {}", v.map_or("not measured".into(), num)))
                .collect();
            format!("{}: {}.", g.label, values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" ");
    let slot = (WIDTH - LEFT - RIGHT) / groups.len().max(1) as f64;
    let bar = slot * 0.8 / series.len().max(1) as f64;
    let y = |v: f64| TOP + PLOT - v / top * PLOT;
    let named: Vec<(&str, String)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, format!("c-s{}", i.min(1))))
        .collect();
    frame(
        id,
        true,
        title,
        &format!("In {unit}. {desc}"),
        (WIDTH, TOP + PLOT + BOTTOM),
        html! {
            (legend(&named.iter().map(|(s, c)| (*s, c.as_str())).collect::<Vec<_>>()))
            (value_axis(top, step, unit))
            @for (i, group) in groups.iter().enumerate() {
                @for (k, value) in group.values.iter().enumerate().take(series.len()) {
                    @let x = LEFT + i as f64 * slot + slot * 0.1 + k as f64 * bar;
                    @let class = &named[k].1;
                    g {
                        title { (group.label) ", " (series[k]) ": " (value.map_or("not measured".into(), num)) }
                        @if let Some(v) = value {
                            rect class=(class) x=(px(x + 1.0)) y=(px(y(*v))) width=(px(bar - 2.0)) height=(px(v / top * PLOT)) {}
                        }
                        text.c-value x=(px(x + bar / 2.0)) y=(px(value.map_or(TOP + PLOT, &y) - 4.0)) text-anchor="middle" {
                            (value.map_or("n/a".into(), num))
                        }
                    }
                }
            }
            (category_labels(&groups.iter().map(|g| g.label.as_str()).collect::<Vec<_>>(), slot))
        },
    )
}

/// The legend across the top: a swatch and a name per entry.
fn legend(entries: &[(&str, &str)]) -> Markup {
    html! {
        g.c-legend {
            @for (i, (name, class)) in entries.iter().enumerate() {
                @let x = LEFT + i as f64 * 170.0;
                rect class=(class) x=(px(x)) y="10" width="14" height="14" {}
                text x=(px(x + 20.0)) y="22" { (name) }
            }
        }
    }
}

/// The value axis: gridlines and tick labels every `step` up to `top`, and its label.
fn value_axis(top: f64, step: f64, label: &str) -> Markup {
    let ticks: Vec<f64> = (0..=((top / step).round() as u64))
        .map(|i| i as f64 * step)
        .collect();
    html! {
        @for t in ticks {
            @let y = TOP + PLOT - t / top * PLOT;
            line.c-grid x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(y)) y2=(px(y)) {}
            text.c-tick x=(px(LEFT - 6.0)) y=(px(y + 4.0)) text-anchor="end" { (num(t)) }
        }
        text.c-axis x="12" y=(px(TOP + PLOT / 2.0)) text-anchor="middle"
            transform={ "rotate(-90 12 " (TOP + PLOT / 2.0) ")" } { (label) }
    }
}

/// Labels under the categories: all when few, else evenly picked ones.
fn category_labels(labels: &[&str], slot: f64) -> Markup {
    let n = labels.len();
    let shown: Vec<usize> = if n <= MAX_X_LABELS {
        (0..n).collect()
    } else {
        let mut picks: Vec<usize> = (0..MAX_X_LABELS)
            .map(|k| k * (n - 1) / (MAX_X_LABELS - 1))
            .collect();
        picks.dedup();
        picks
    };
    html! {
        @for i in shown {
            @let anchor = if n > MAX_X_LABELS && i == 0 { "start" } else if n > MAX_X_LABELS && i + 1 == n { "end" } else { "middle" };
            @let x = match anchor { "start" => LEFT + i as f64 * slot, "end" => LEFT + (i + 1) as f64 * slot, _ => LEFT + (i as f64 + 0.5) * slot };
            line.c-grid x1=(px(LEFT + (i as f64 + 0.5) * slot)) x2=(px(LEFT + (i as f64 + 0.5) * slot)) y1=(px(TOP + PLOT)) y2=(px(TOP + PLOT + 5.0)) {}
            text.c-tick x=(px(x)) y=(px(TOP + PLOT + 20.0)) text-anchor=(anchor) { (labels[i]) }
        }
    }
}

/// The top of a value axis at or above `max` and its tick step: a step of 1, 2 or 5
/// times a power of ten, about four ticks. `max` of zero (nothing counted) still gets
/// an axis, from 0 to 1.
pub(crate) fn nice_scale(max: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 1.0);
    }
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    ((max / step).ceil() * step, step)
}

/// A coordinate to a tenth of a unit: enough at any screen size, and free of
/// floating-point noise in the markup.
fn px(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A number as a person reads it: thousands separated, at most two decimals.
pub(crate) fn num(v: f64) -> String {
    let text = format!("{:.2}", v.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 && text != "0.00" { "−" } else { "" };
    match fraction {
        "" => format!("{sign}{grouped}"),
        f => format!("{sign}{grouped}.{f}"),
    }
}

#[cfg(test)]
mod tests;
