use super::*;

/// The Rust reference plugin, built from this repository.
fn reference() -> Vec<u8> {
    std::fs::read(arbiter_plugin_build::plugin("reference")).expect("reference plugin")
}

#[test]
fn the_reference_plugin_fits() {
    assert_eq!(component(&reference()), Ok(()));
}

#[test]
fn the_host_package_is_read_from_the_embedded_wit() {
    assert_eq!(host_package(), "arbiter:policy@0.1.0");
}

#[test]
fn another_version_of_the_contract_is_named() {
    let bytes = std::fs::read(arbiter_plugin_build::plugin("wrong-version")).expect("fixture");
    let mismatches = component(&bytes).expect_err("another version");
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains("@0.1.0") || m.contains("version")),
        "{mismatches:?}"
    );
}

#[test]
fn an_import_the_host_does_not_provide_is_named() {
    let bytes = std::fs::read(arbiter_plugin_build::plugin("extra-import")).expect("fixture");
    let mismatches = component(&bytes).expect_err("extra import");
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains("arbiter:policy/secrets")),
        "{mismatches:?}"
    );
}

#[test]
fn a_file_that_is_no_component_is_named() {
    let mismatches = component(b"\0asm\x01\0\0\0").expect_err("a core module");
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert!(
        mismatches[0].contains("core WebAssembly module"),
        "{mismatches:?}"
    );
    let mismatches = component(b"hello").expect_err("not wasm");
    assert!(
        mismatches[0].contains("not a WebAssembly component"),
        "{mismatches:?}"
    );
}
