//! Bundles altered after packing or signing, and bundles without the trust they need.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_bundle::{BundleError, Index, Trust, open, sign};
use arbiter_keys::SecretKey;
use base64::Engine as _;
use common::*;

/// The demo set packed and signed; returns the key and the bundle's entries.
fn signed() -> (SecretKey, Vec<(String, Vec<u8>)>) {
    let (f, _) = packed();
    let key = SecretKey::generate().expect("key");
    sign(&f.bundle, &key).expect("sign");
    (key, entries(&std::fs::read(&f.bundle).expect("read")))
}

fn refused(bytes: &[u8], trust: Trust<'_>) -> BundleError {
    open(bytes, "demo.bundle", trust).expect_err("bundle must be refused")
}

#[test]
fn unsigned_bundle_is_refused_when_keys_are_configured() {
    let (_f, bytes) = packed();
    let trusted = [SecretKey::generate().expect("key").public()];
    let err = refused(&bytes, Trust::Keys(&trusted));
    assert!(matches!(err, BundleError::Unsigned { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`demo.bundle` is not signed, and trusted bundle keys are configured; sign it with `arbiter bundle sign`"
    );
    assert!(open(&bytes, "demo.bundle", Trust::Any).is_ok());
}

#[test]
fn bundle_signed_by_an_untrusted_key_is_refused() {
    let (key, entries) = signed();
    let trusted = [SecretKey::generate().expect("key").public()];
    let err = refused(&files_tar(&entries), Trust::Keys(&trusted));
    let id = key.public().id();
    assert!(
        matches!(&err, BundleError::UnknownKey { key_id, .. } if *key_id == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!(
        "signed by key `{id}`, which is not a trusted bundle key"
    )));
}

#[test]
fn empty_trusted_key_list_refuses_signed_bundles() {
    let (_, entries) = signed();
    let err = refused(&files_tar(&entries), Trust::Keys(&[]));
    assert!(matches!(err, BundleError::UnknownKey { .. }), "{err:?}");
}

#[test]
fn plugin_altered_after_packing_is_refused_even_with_a_valid_signature() {
    let (key, mut entries) = signed();
    replace(&mut entries, "p.wasm", b"\0asm evil".to_vec());
    let trusted = [key.public()];
    let err = refused(&files_tar(&entries), Trust::Keys(&trusted));
    assert!(
        matches!(&err, BundleError::Tampered { path, expected, .. }
            if path == "p.wasm" && *expected == sha256(PLUGIN)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`demo.bundle`: `p.wasm` does not match its digest in `bundle.json`: the bundle was altered after packing"
    );
}

#[test]
fn size_that_disagrees_with_the_index_is_refused() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    let mut index: Index = serde_json::from_slice(data_of(&entries, "bundle.json")).expect("index");
    index.files.iter_mut().for_each(|d| d.size += 1);
    replace(
        &mut entries,
        "bundle.json",
        serde_json::to_vec(&index).expect("json"),
    );
    let err = refused(&files_tar(&entries), Trust::Any);
    assert!(
        matches!(&err, BundleError::Tampered { path, .. } if path == "data/teams.json"),
        "{err:?}"
    );
}

#[test]
fn manifest_altered_after_packing_is_refused() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    let edited = MANIFEST.replace("version = \"1.0.0\"", "version = \"1.0.1\"");
    replace(&mut entries, "policy-set.toml", edited.into_bytes());
    let err = refused(&files_tar(&entries), Trust::Any);
    assert!(
        matches!(&err, BundleError::Tampered { path, .. } if path == "policy-set.toml"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`policy-set.toml` does not match its digest")
    );
}

#[test]
fn index_rewritten_after_signing_fails_the_signature() {
    // The attack the signature exists for: swap the plugin and fix up its digest.
    let (key, mut entries) = signed();
    let evil = b"\0asm evil".to_vec();
    let mut index: Index = serde_json::from_slice(data_of(&entries, "bundle.json")).expect("index");
    index.files.retain(|d| d.path != "p.wasm");
    index.files.push(digest("p.wasm", &evil));
    replace(
        &mut entries,
        "bundle.json",
        serde_json::to_vec(&index).expect("json"),
    );
    replace(&mut entries, "p.wasm", evil);
    let bytes = files_tar(&entries);

    // Internally consistent, so only the signature can tell.
    assert!(open(&bytes, "demo.bundle", Trust::Any).is_ok());
    let trusted = [key.public()];
    let err = refused(&bytes, Trust::Keys(&trusted));
    let id = key.public().id();
    assert!(
        matches!(&err, BundleError::BadSignature { key_id, .. } if *key_id == id),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`demo.bundle`: the signature by key `{id}` does not verify: the bundle was altered after signing"
        )
    );
}

#[test]
fn flipped_signature_bit_is_a_bad_signature() {
    let (key, mut entries) = signed();
    let mut sig: serde_json::Value =
        serde_json::from_slice(data_of(&entries, "bundle.sig")).expect("sig");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64
        .decode(sig["signature"].as_str().expect("signature"))
        .expect("base64");
    raw[10] ^= 1;
    sig["signature"] = b64.encode(raw).into();
    replace(
        &mut entries,
        "bundle.sig",
        serde_json::to_vec(&sig).expect("json"),
    );
    let trusted = [key.public()];
    let err = refused(&files_tar(&entries), Trust::Keys(&trusted));
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err:?}");
}

#[test]
fn malformed_signature_file_is_refused_even_without_keys() {
    let (_, mut entries) = signed();
    let sig = br#"{"algorithm":"rsa","key_id":"0011223344556677","signature":"AA=="}"#;
    replace(&mut entries, "bundle.sig", sig.to_vec());
    let err = refused(&files_tar(&entries), Trust::Any);
    assert!(
        matches!(err, BundleError::BadSignatureFile { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("algorithm `rsa`"), "{err}");
}

#[test]
fn signature_covers_the_domain_prefix_and_the_exact_index_bytes() {
    // The documented message, checked independently of the crate's own verifier.
    let (key, entries) = signed();
    let sig: serde_json::Value =
        serde_json::from_slice(data_of(&entries, "bundle.sig")).expect("sig");
    assert_eq!(sig["algorithm"], "ed25519");
    assert_eq!(sig["key_id"], key.public().id());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sig["signature"].as_str().expect("signature"))
        .expect("base64");
    let index = data_of(&entries, "bundle.json");
    let message = [b"arbiter-bundle-v1\n".as_slice(), index].concat();
    assert!(key.public().verify(&message, &raw).is_ok());
    assert!(key.public().verify(index, &raw).is_err());
}
