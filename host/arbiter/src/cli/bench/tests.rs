use std::time::Duration;

use arbiter_core::{Instances, Limits, Manifest};

use super::default_iterations;
use super::input::{case_requests, vector_requests, with_instances};
use super::report::size;
use super::stats::{Summary, percentile};

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn percentiles_are_nearest_rank_samples() {
    let sorted: Vec<Duration> = (1..=100).map(us).collect();
    assert_eq!(percentile(&sorted, 50), us(50));
    assert_eq!(percentile(&sorted, 90), us(90));
    assert_eq!(percentile(&sorted, 99), us(99));
    assert_eq!(percentile(&sorted, 100), us(100));
    assert_eq!(percentile(&sorted, 0), us(1));
    // Ten samples: the p99 is the slowest, the p50 the fifth.
    let ten: Vec<Duration> = (1..=10).map(us).collect();
    assert_eq!(percentile(&ten, 99), us(10));
    assert_eq!(percentile(&ten, 50), us(5));
    assert_eq!(percentile(&[us(7)], 50), us(7));
    assert_eq!(percentile(&[], 50), Duration::ZERO);
}

#[test]
fn a_summary_sorts_and_averages() {
    let mut samples = vec![us(30), us(10), us(20), us(40)];
    let s = Summary::of(&mut samples);
    assert_eq!(s.decisions, 4);
    assert!((s.mean_us - 25.0).abs() < 1e-9, "{s:?}");
    assert!((s.p50_us - 20.0).abs() < 1e-9, "{s:?}");
    assert!((s.p99_us - 40.0).abs() < 1e-9, "{s:?}");
    assert!((s.max_us - 40.0).abs() < 1e-9, "{s:?}");
    assert!((s.per_second() - 40_000.0).abs() < 1e-6, "{s:?}");
    // To the nanosecond: a mean of 3666.33 ns reads 3.666 us.
    let mut samples = vec![
        Duration::from_nanos(10_996),
        Duration::from_nanos(1),
        Duration::from_nanos(2),
    ];
    let s = Summary::of(&mut samples);
    assert_eq!(s.max_us.to_string(), "10.996");
    assert_eq!(s.mean_us.to_string(), "3.666");
}

#[test]
fn no_samples_summarise_to_zero() {
    let s = Summary::of(&mut []);
    assert_eq!(s.decisions, 0);
    assert!(s.mean_us.abs() < f64::EPSILON && s.max_us.abs() < f64::EPSILON);
    assert!(s.per_second().abs() < f64::EPSILON);
}

#[test]
fn default_passes_make_about_a_thousand_decisions() {
    assert_eq!(default_iterations(2000), 1);
    assert_eq!(default_iterations(1000), 1);
    assert_eq!(default_iterations(999), 2);
    assert_eq!(default_iterations(10), 100);
    assert_eq!(default_iterations(3), 334);
    assert_eq!(default_iterations(0), 1000);
}

const MANIFEST: &str = r#"format = 1
name = "two"
version = "1.2.3"
combining = "deny-overrides"

[[plugins]]
name = "a"
path = "a.wasm"
instances = "pooled"
recycle_after = 10

[[plugins]]
name = "b"
path = "b.wasm"
settings = { threshold = 3, team = "payments" }
"#;

#[test]
fn the_instance_mode_is_forced_on_every_plugin_and_nothing_else_changes() {
    let before = Manifest::parse(MANIFEST, "m", Limits::default()).expect("valid");
    for mode in [Instances::Fresh, Instances::Pooled] {
        let text = with_instances(MANIFEST, mode).expect("rewrites");
        let after = Manifest::parse(&text, "m", Limits::default()).expect("still valid");
        assert!(after.plugins.iter().all(|p| p.instances == mode), "{text}");
        let mut expected = before.clone();
        for p in &mut expected.plugins {
            p.instances = mode;
        }
        assert_eq!(after, expected, "{text}");
    }
}

#[test]
fn a_bad_vector_line_names_the_file_and_line() {
    let good = r#"{"request":{"principal":{"id":"p","kind":"agent"},"action":{"name":"db:Query","privilege":"read"}},"approved":true,"expected":"allow"}"#;
    let text = format!("{good}\n\n{good}\n{{\"request\": 1}}\n");
    let err = vector_requests(&text, "v.jsonl")
        .expect_err("line 4 is not a vector")
        .to_string();
    assert!(err.starts_with("v.jsonl:4: not a test vector"), "{err}");
    let ok = vector_requests(&format!("{good}\n\n{good}\n"), "v.jsonl").expect("two vectors");
    assert_eq!(ok.len(), 2);
    assert!(ok.iter().all(|(_, approved)| *approved));
}

#[test]
fn a_case_that_cannot_run_fails_the_file_with_its_line() {
    let text = r#"[defaults.request]
principal = { id = "p", kind = "agent" }
action = { name = "db:Query", privilege = "read" }

[[case]]
name = "fine"
expect = "allow"

[[case]]
name = "broken"
expect = "maybe"
"#;
    let err = case_requests(text, "c.toml")
        .expect_err("case 2 cannot run")
        .to_string();
    assert!(
        err.starts_with("c.toml:9: case 2 `broken`: `expect`"),
        "{err}"
    );
    let fine = text
        .split("\n[[case]]\nname = \"broken\"")
        .next()
        .expect("first part");
    assert_eq!(case_requests(fine, "c.toml").expect("one case").len(), 1);
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(size(512), "512 B");
    assert_eq!(size(2048), "2.0 KiB");
    assert_eq!(size(3 << 20), "3.0 MiB");
}
