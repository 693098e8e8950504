//! `arbiter keygen` and `arbiter bundle pack|sign|verify`, run as the real binary on a
//! set directory holding the real reference plugin.

use std::io::Read as _;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

const MANIFEST: &str = r#"format = 1
name = "reference"
version = "1.0.0"
combining = "deny-overrides"
data = ["data/owners.json"]

[[plugins]]
name = "reference"
path = "reference.wasm"
"#;

/// Verifies `set.bundle` trusting only key pair `signer`.
const VERIFY_SIGNED: &[&str] = &["bundle", "verify", "--pubkey", "signer.pub", "set.bundle"];

/// A working directory holding the set at `set/`: the manifest above (with `data` as
/// given), the reference plugin, and `data/owners.json`.
fn workdir(data: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("set");
    std::fs::create_dir_all(set.join("data")).expect("mkdir");
    std::fs::copy(
        arbiter_plugin_build::plugin("reference"),
        set.join("reference.wasm"),
    )
    .expect("copy the reference plugin");
    let manifest = MANIFEST.replace("data/owners.json", data);
    std::fs::write(set.join("policy-set.toml"), manifest).expect("manifest");
    std::fs::write(set.join("data/owners.json"), br#"{"payments": "alice"}"#).expect("data");
    dir
}

/// What a run of `arbiter` did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `arbiter` in `dir`, so paths in `args` are relative to it.
fn arbiter(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `arbiter`, requires exit 0, and returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let run = arbiter(dir, args);
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
    run.stdout
}

/// Runs `arbiter`, requires exit `code` and a stderr containing `reason`, and returns
/// the run.
fn fails(dir: &Path, args: &[&str], code: i32, reason: &str) -> Run {
    let run = arbiter(dir, args);
    assert_eq!(run.code, Some(code), "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains(reason), "{args:?}: {}", run.stderr);
    run
}

/// Creates key pair `name` and returns its key id.
fn keygen(dir: &Path, name: &str) -> String {
    let id = ok(dir, &["keygen", "-o", name]).trim().to_string();
    assert_eq!(id.len(), 16, "a key id: {id}");
    id
}

/// Packs `set/` into `set.bundle`, signed by key pair `key` when given.
fn pack(dir: &Path, key: Option<&str>) {
    ok(dir, &["bundle", "pack", "set", "-o", "set.bundle"]);
    if let Some(key) = key {
        let key = format!("{key}.key");
        ok(dir, &["bundle", "sign", "--key", &key, "set.bundle"]);
    }
}

/// Rewrites `set.bundle` entry by entry, passing each through `change`; panics unless
/// `change` altered exactly one entry, so a tampering test cannot pass by tampering
/// with nothing.
fn rewrite(dir: &Path, change: impl Fn(&str, &[u8]) -> Option<Vec<u8>>) {
    let path = dir.join("set.bundle");
    let bytes = std::fs::read(&path).expect("read bundle");
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut builder = tar::Builder::new(Vec::new());
    let mut changed = 0;
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry bytes");
        if let Some(new) = change(&name, &data) {
            assert_ne!(new, data, "`{name}` unchanged");
            data = new;
            changed += 1;
        }
        let mut header = entry.header().clone();
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, &name, data.as_slice())
            .expect("append");
    }
    assert_eq!(changed, 1, "entries changed");
    std::fs::write(&path, builder.into_inner().expect("tar bytes")).expect("write bundle");
}

/// A change to the manifest that still parses, so only digests and the signature can
/// catch it.
fn tamper_manifest(name: &str, data: &[u8]) -> Option<Vec<u8>> {
    (name == "policy-set.toml").then(|| {
        String::from_utf8_lossy(data)
            .replace("deny-overrides", "first-applicable")
            .into_bytes()
    })
}

#[test]
fn keygen_pack_sign_verify_names_the_signer() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    let id = keygen(dir, "signer");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("signer.key"))
            .expect("key")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600, "the secret key is owner-only");
    }

    let packed = ok(dir, &["bundle", "pack", "set", "-o", "set.bundle"]);
    let digest = packed
        .lines()
        .find_map(|l| l.strip_prefix("digest   "))
        .expect("a digest line")
        .to_string();
    assert_eq!(digest.len(), 64, "{packed}");
    assert!(packed.contains("files    3 ("), "{packed}");
    for file in ["policy-set.toml", "data/owners.json", "reference.wasm"] {
        assert!(packed.contains(&format!("  {file} ")), "{file}: {packed}");
    }

    let signed = ok(
        dir,
        &["bundle", "sign", "--key", "signer.key", "set.bundle"],
    );
    assert_eq!(signed.trim(), id);

    let verified = ok(dir, VERIFY_SIGNED);
    for line in [
        "name     reference".to_string(),
        "version  1.0.0".to_string(),
        format!("digest   {digest}"),
        format!("signer   {id} (`signer.pub`), verified"),
    ] {
        assert!(verified.lines().any(|l| l == line), "{line}: {verified}");
    }
    assert!(verified.contains("  reference.wasm "), "{verified}");

    // Without a key the digests still pass, and the output says what was not checked.
    let run = arbiter(dir, &["bundle", "verify", "set.bundle"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let claimed = format!("signer   not checked: signed by key `{id}`");
    assert!(run.stdout.contains(&claimed), "{}", run.stdout);
    assert!(
        run.stderr.contains("signature was NOT checked"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bundle_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    let signer = keygen(dir, "signer");
    let other = keygen(dir, "other");
    pack(dir, Some("signer"));
    let args = ["bundle", "verify", "--pubkey", "other.pub", "set.bundle"];
    let reason = format!("signed by key `{signer}`, which is not a trusted bundle key");
    let run = fails(dir, &args, 1, &reason);
    assert!(
        run.stderr.contains(&format!("trusted keys: `{other}`")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "a refused bundle is not summarised");
}

#[test]
fn an_unsigned_bundle_is_refused_when_keys_are_trusted() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    keygen(dir, "signer");
    pack(dir, None);
    fails(dir, VERIFY_SIGNED, 1, "`set.bundle` is not signed");
}

#[test]
fn altered_plugin_bytes_are_refused_naming_the_file() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    keygen(dir, "signer");
    pack(dir, Some("signer"));
    rewrite(dir, |name, data| {
        (name == "reference.wasm").then(|| {
            let mut data = data.to_vec();
            let last = data.len() - 1;
            data[last] ^= 0xff;
            data
        })
    });
    let reason = "`reference.wasm` does not match its digest";
    fails(dir, VERIFY_SIGNED, 1, reason);
    // Digests are checked whether or not keys are trusted.
    fails(dir, &["bundle", "verify", "set.bundle"], 1, reason);
}

#[test]
fn an_altered_manifest_is_refused() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    keygen(dir, "signer");
    pack(dir, Some("signer"));
    rewrite(dir, tamper_manifest);
    fails(
        dir,
        VERIFY_SIGNED,
        1,
        "`policy-set.toml` does not match its digest",
    );
}

#[test]
fn an_index_rewritten_to_match_the_altered_manifest_breaks_the_signature() {
    let work = workdir("data/owners.json");
    let dir = work.path();
    let signer = keygen(dir, "signer");
    pack(dir, Some("signer"));
    // The bundle's manifest is `MANIFEST` itself, so this is what the first rewrite
    // stores.
    let manifest = tamper_manifest("policy-set.toml", MANIFEST.as_bytes()).expect("tampered");
    rewrite(dir, tamper_manifest);
    rewrite(dir, |name, data| {
        (name == "bundle.json").then(|| {
            let mut index: serde_json::Value = serde_json::from_slice(data).expect("index");
            index["manifest"]["sha256"] = sha256_hex(&manifest).into();
            index["manifest"]["size"] = manifest.len().into();
            serde_json::to_vec_pretty(&index).expect("json")
        })
    });
    let reason = format!("the signature by key `{signer}` does not verify");
    fails(dir, VERIFY_SIGNED, 1, &reason);
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    keygen(dir, "signer");
    let before = std::fs::read(dir.join("signer.key")).expect("key");
    fails(
        dir,
        &["keygen", "-o", "signer"],
        2,
        "`signer.key` already exists",
    );
    let after = std::fs::read(dir.join("signer.key")).expect("key");
    assert_eq!(before, after, "the secret key is untouched");
}

#[test]
fn packing_a_set_whose_manifest_names_a_missing_file_names_the_file() {
    let work = workdir("data/missing.json");
    let dir = work.path();
    let args = ["bundle", "pack", "set", "-o", "set.bundle"];
    fails(
        dir,
        &args,
        2,
        "names `data/missing.json`, which cannot be read",
    );
    assert!(!dir.join("set.bundle").exists(), "no bundle is written");
}

#[test]
fn verifying_a_missing_file_is_an_error_not_a_refusal() {
    let work = tempfile::tempdir().expect("tempdir");
    let args = ["bundle", "verify", "nope.bundle"];
    fails(work.path(), &args, 2, "cannot read `nope.bundle`");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
