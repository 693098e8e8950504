//! The table the latencies are printed as (the latencies themselves, and the vectors,
//! come from the decide bench's harness: `host/runtime/benches/decide/harness.rs`).

use crate::harness::Latency;

/// The latency table, then how arbiter single-plugin compares with each peer.
pub(crate) fn print(rows: &[(&str, Latency)], reference: &str, peers: &[&str]) {
    println!("| variant | decisions | p50 (us) | p99 (us) | mean (us) | decisions/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    crate::harness::print_rows(rows.iter().map(|(n, l)| (*n, l)));
    let find = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, l)| l);
    let Some(ours) = find(reference) else {
        return;
    };
    println!(
        "\n{reference} / peer (latency ratio: below 1 means Arbiter decides faster; decisions/s ratio is the inverse of the mean ratio):\n"
    );
    println!("| peer | p50 ratio | p99 ratio | mean ratio |");
    println!("| --- | ---: | ---: | ---: |");
    for peer in peers {
        let Some(theirs) = find(peer) else {
            continue;
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        println!(
            "| {peer} | {:.2}x | {:.2}x | {:.2}x |",
            ratio(ours.quantile_us(0.5), theirs.quantile_us(0.5)),
            ratio(ours.quantile_us(0.99), theirs.quantile_us(0.99)),
            ratio(ours.mean_us(), theirs.mean_us()),
        );
    }
}
