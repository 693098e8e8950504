//! Every file a project is made of, embedded in the binary: the host's WIT, each
//! language's SDK and toolchain lockfile (straight from the repository's `wit/` and
//! `plugins/`, so they cannot drift from what the host runs), and the starter files
//! under `templates/`, where `{{name}}` and the pins are filled in.

use crate::Lang;

/// A file of a project: its path in the project and its text.
pub(crate) type File = (&'static str, &'static str);

/// The host's WIT package (`arbiter:policy`), as `wit/` of every project.
pub(crate) const WIT: [File; 4] = [
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    (
        "wit/evaluator.wit",
        include_str!("../../../wit/evaluator.wit"),
    ),
    ("wit/log.wit", include_str!("../../../wit/log.wit")),
    ("wit/data.wit", include_str!("../../../wit/data.wit")),
];

/// Files every project has.
pub(crate) const COMMON: [File; 4] = [
    (
        "policy-set.toml",
        include_str!("../templates/common/policy-set.toml"),
    ),
    (
        "tests/policy.cases.toml",
        include_str!("../templates/common/policy.cases.toml"),
    ),
    ("README.md", include_str!("../templates/common/README.md")),
    (".gitignore", include_str!("../templates/common/gitignore")),
];

/// The Rust SDK's `lib.rs` names the WIT relative to the repository; in a project the
/// SDK sits in `sdk/`, beside `wit/`.
pub(crate) const RUST_SDK_WIT_PATH: (&str, &str) = ("path: \"../../../wit\"", "path: \"../wit\"");

/// The language's own files (the SDK and the starter policy).
pub(crate) fn files(lang: Lang) -> &'static [File] {
    match lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
            // The versions the repository's plugins are tested with (plugins/Cargo.lock).
            ("Cargo.lock", include_str!("../templates/rust/Cargo.lock")),
            (
                "rust-toolchain.toml",
                include_str!("../templates/rust/rust-toolchain.toml"),
            ),
            (
                ".cargo/config.toml",
                include_str!("../templates/rust/cargo-config.toml"),
            ),
            ("src/lib.rs", include_str!("../templates/rust/lib.rs")),
            (
                "sdk/Cargo.toml",
                include_str!("../templates/rust/sdk-Cargo.toml"),
            ),
            (
                "sdk/src/lib.rs",
                include_str!("../../../plugins/sdk/rust/src/lib.rs"),
            ),
            (
                "sdk/src/attributes.rs",
                include_str!("../../../plugins/sdk/rust/src/attributes.rs"),
            ),
            (
                "sdk/src/data_file.rs",
                include_str!("../../../plugins/sdk/rust/src/data_file.rs"),
            ),
            (
                "sdk/src/verdict.rs",
                include_str!("../../../plugins/sdk/rust/src/verdict.rs"),
            ),
        ],
        Lang::Python => &[
            ("src/rules.py", include_str!("../templates/python/rules.py")),
            (
                "sdk/arbiter_policy.py",
                include_str!("../../../plugins/python/sdk/arbiter_policy.py"),
            ),
        ],
        Lang::Js => &[
            ("src/policy.js", include_str!("../templates/js/policy.js")),
            (
                "sdk/index.js",
                include_str!("../../../plugins/js/sdk/index.js"),
            ),
            (
                "sdk/index.d.ts",
                include_str!("../../../plugins/js/sdk/index.d.ts"),
            ),
            (
                "sdk/types/policy.d.ts",
                include_str!("../../../plugins/js/sdk/types/policy.d.ts"),
            ),
            (
                "sdk/types/interfaces/arbiter-policy-data.d.ts",
                include_str!("../../../plugins/js/sdk/types/interfaces/arbiter-policy-data.d.ts"),
            ),
            (
                "sdk/types/interfaces/arbiter-policy-evaluator.d.ts",
                include_str!(
                    "../../../plugins/js/sdk/types/interfaces/arbiter-policy-evaluator.d.ts"
                ),
            ),
            (
                "sdk/types/interfaces/arbiter-policy-log.d.ts",
                include_str!("../../../plugins/js/sdk/types/interfaces/arbiter-policy-log.d.ts"),
            ),
            (
                "sdk/types/interfaces/arbiter-policy-types.d.ts",
                include_str!("../../../plugins/js/sdk/types/interfaces/arbiter-policy-types.d.ts"),
            ),
        ],
        Lang::C => &[
            ("src/policy.c", include_str!("../templates/c/policy.c")),
            (
                "sdk/arbiter_policy.h",
                include_str!("../../../plugins/c/sdk/arbiter_policy.h"),
            ),
            (
                "sdk/arbiter_policy.c",
                include_str!("../../../plugins/c/sdk/arbiter_policy.c"),
            ),
        ],
    }
}

/// The policy's entry file in a new project of `lang` (what `arbiter.toml` names).
pub(crate) fn source(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "src/lib.rs",
        Lang::Python => "src/rules.py",
        Lang::Js => "src/policy.js",
        Lang::C => "src/policy.c",
    }
}

/// The JavaScript toolchain's pinned npm packages (QuickJS engine), the repository's.
pub(crate) const JS_PACKAGE_JSON: &str =
    include_str!("../../../plugins/js/toolchain/quickjs/package.json");
/// Their lockfile: `npm ci` installs exactly these.
pub(crate) const JS_PACKAGE_LOCK: &str =
    include_str!("../../../plugins/js/toolchain/quickjs/package-lock.json");

/// The host's WIT package name and version, read from the embedded WIT.
pub(crate) fn wit_package() -> &'static str {
    WIT[1]
        .1
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map_or("arbiter:policy", |p| p.trim_end_matches(';').trim())
}
