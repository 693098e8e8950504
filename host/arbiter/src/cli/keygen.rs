//! `arbiter keygen`: an Ed25519 key pair as two files, the secret one owner-only. Used
//! to sign policy bundles (`arbiter bundle sign`); servers and `arbiter bundle verify`
//! get only the public file.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use arbiter_keys::SecretKey;

/// Flags of `arbiter keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Path prefix of the key files: writes PREFIX.key (secret, mode 0600) and
    /// PREFIX.pub (public). Refuses to overwrite either.
    #[arg(short, long, value_name = "PREFIX")]
    pub output: PathBuf,
}

/// Runs the command; the result is the process exit code.
pub fn run(args: KeygenArgs) -> anyhow::Result<i32> {
    let prefix = &args.output;
    if prefix.as_os_str().is_empty() {
        anyhow::bail!("the key file prefix is empty; give one such as `-o keys/bundle`");
    }
    if prefix.is_dir() {
        anyhow::bail!(
            "`{}` is a directory, not a file name prefix; give one such as `-o {}`",
            prefix.display(),
            prefix.join("bundle").display()
        );
    }
    let secret = with_suffix(prefix, ".key");
    let public = with_suffix(prefix, ".pub");
    // Checked before writing anything, so a refusal leaves no half-made pair; the
    // secret file is also created exclusively below, which closes the race.
    for path in [&secret, &public] {
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "`{}` already exists; keygen never replaces a key: choose another prefix with `-o`, or move the old files away first",
                path.display()
            );
        }
    }
    let key = SecretKey::generate()?;
    key.write_new(&secret)?;
    key.public().write(&public)?;
    let id = key.public().id();
    writeln!(std::io::stdout().lock(), "{id}")?;
    eprintln!(
        "wrote secret key `{}` (owner-only: keep it offline) and public key `{}` (key id `{id}`)",
        secret.display(),
        public.display()
    );
    Ok(0)
}

/// `prefix` with `suffix` appended to its last part (`keys/a` -> `keys/a.key`), unlike
/// [`Path::with_extension`], which would replace a dot already in the prefix.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = OsString::from(prefix.as_os_str());
    path.push(suffix);
    path.into()
}
