//! The code stays where a reader expects it: no host source file over 500 lines
//! (tests aside), and the binary crate holds only wiring outside its CLI (under 1,500
//! lines), the domain being in `arbiter-service` and the front door in `arbiter-grpc`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .count()
}

fn is_test(p: &Path) -> bool {
    p.components().any(|c| c.as_os_str() == "tests")
        || p.file_name().is_some_and(|n| n == "tests.rs")
}

#[test]
fn no_host_source_file_is_over_500_lines() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&host, &mut files);
    assert!(files.len() > 50, "found the host sources: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|p| !is_test(p))
        .filter(|p| lines(p) > 500)
        .map(|p| format!("{} ({} lines)", p.display(), lines(p)))
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn the_binary_crate_is_wiring_outside_its_cli() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let total: usize = files
        .iter()
        .filter(|p| !p.starts_with(src.join("cli")) && !is_test(p))
        .map(|p| lines(p))
        .sum();
    assert!(
        total < 1500,
        "host/arbiter/src outside cli/ has {total} lines: domain code belongs in arbiter-service"
    );
}
