//! `arbiter build`: builds a project's component with its language's pinned toolchain
//! and checks it against this host's WIT (see `arbiter_kit`).

use std::path::PathBuf;

use arbiter_kit::Toolchains;

/// Flags of `arbiter build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The project directory (holding `arbiter.toml`, written by `arbiter new`).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Where toolchains are installed and reused [default: $XDG_CACHE_HOME/arbiter/toolchains,
    /// else ~/.cache/arbiter/toolchains].
    #[arg(long, env = "ARBITER_TOOLCHAINS", value_name = "DIR")]
    pub toolchains: Option<PathBuf>,
}

/// Runs the command; the result is the process exit code.
pub fn run(args: BuildArgs) -> anyhow::Result<i32> {
    let toolchains = match args.toolchains {
        Some(dir) => Toolchains::at(dir),
        None => Toolchains::locate()?,
    };
    let built = arbiter_kit::build(&args.dir, &toolchains)?;
    println!(
        "built {} ({} KiB, {}) in {:.1}s (toolchain ready in {:.1}s); it fits this host's WIT ({})",
        built.path.display(),
        built.size.div_ceil(1024),
        built.lang.display_name(),
        built.compile.as_secs_f64(),
        built.toolchain.as_secs_f64(),
        arbiter_kit::check::host_package()
    );
    Ok(0)
}
