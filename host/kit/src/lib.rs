//! The policy author's kit, for someone who has only the `arbiter` binary:
//!
//! - [`create`] writes a self-contained plugin project in one of four languages: the
//!   host's WIT package, the language's SDK, a starter policy with two rules, a
//!   one-plugin policy set, test cases and a README. Everything is embedded in the
//!   binary, so a project is always in step with the host that will run it.
//! - [`build`] builds a project's component with its language's pinned toolchain
//!   (installed on first use into a per-user cache, [`Toolchains`]) and checks the
//!   result against the host's WIT ([`check`]) before writing it where the project's
//!   `policy-set.toml` expects it.
//!
//! `arbiter test` and `arbiter bench` then run the project's set; `arbiter bundle`
//! packs it. The toolchain pins are the ones the repository's own build scripts use
//! (`plugins/*/build.sh`); a test keeps them equal.

mod build;
pub mod check;
mod error;
mod project;
mod templates;
mod toolchain;

pub use build::{Built, build};
pub use error::KitError;
pub use project::{Created, create};
pub use toolchain::Toolchains;

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with cargo and the `wasm32-wasip2` target.
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-qjs (QuickJS).
    Js,
    /// C, with zig's clang, wit-bindgen and wasm-tools.
    C,
}

impl Lang {
    /// Every language, in the order help texts list them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// The name used on the command line and in `arbiter.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// Parses a command-line or `arbiter.toml` name (`javascript` is accepted for `js`).
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "rust" => Some(Lang::Rust),
            "python" => Some(Lang::Python),
            "js" | "javascript" => Some(Lang::Js),
            "c" => Some(Lang::C),
            _ => None,
        }
    }

    /// How people name the language.
    pub fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
