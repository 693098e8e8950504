//! The service crate stays transport-free: no RPC, protobuf or HTTP library among its
//! normal dependencies, direct or indirect. A front door belongs in its own crate.

use std::process::Command;

/// Crates that would make the service depend on a transport or wire format.
const FORBIDDEN: &[&str] = &[
    "tonic", "prost", "hyper", "axum", "http", "h2", "tower", "protox",
];

#[test]
fn the_service_depends_on_no_transport() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "arbiter-service",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo tree runs: {e}"));
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"arbiter-runtime"),
        "the tree lists the service's dependencies: {tree}"
    );
    let found: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| FORBIDDEN.contains(n) || n.starts_with("tonic-") || n.starts_with("prost-"))
        .collect();
    assert!(
        found.is_empty(),
        "arbiter-service depends on {found:?}; put transport code in a front-door crate"
    );
}
