//! `arbiter bundle`: pack a set directory into one file, sign it with a key kept
//! offline, and verify it the way a server that trusts given keys would.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arbiter_bundle::{Bundle, BundleError, Trust, open_file, pack, sign};
use arbiter_keys::{PublicKey, SecretKey};

/// Exit code of `verify` when the bundle is refused (usage and I/O errors are 2).
const REFUSED: i32 = 1;

/// Flags of `arbiter bundle`.
#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// `arbiter bundle` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Packs a set directory (or its `policy-set.toml`) into an unsigned bundle.
    Pack(PackArgs),
    /// Signs a bundle with a secret key, replacing any previous signature.
    Sign(SignArgs),
    /// Checks a bundle's digests and, given trusted public keys, its signature.
    Verify(VerifyArgs),
}

/// Flags of `arbiter bundle pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The set directory, or its manifest file.
    #[arg(value_name = "DIR")]
    pub set: PathBuf,
    /// Where to write the bundle (replaced if it exists).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Flags of `arbiter bundle sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The secret key (PKCS#8 PEM, owner-only), as written by `arbiter keygen`.
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// The bundle, rewritten in place with the signature.
    #[arg(value_name = "FILE")]
    pub bundle: PathBuf,
}

/// Flags of `arbiter bundle verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A trusted public key (SPKI PEM); repeat for several. With at least one, a valid
    /// signature by one of them is required; without, the signature is not checked.
    #[arg(long = "pubkey", value_name = "KEY")]
    pub pubkeys: Vec<PathBuf>,
    /// The bundle.
    #[arg(value_name = "FILE")]
    pub bundle: PathBuf,
}

/// Runs the command; the result is the process exit code.
pub fn run(args: BundleArgs) -> anyhow::Result<i32> {
    match args.command {
        BundleCommand::Pack(a) => pack_set(&a),
        BundleCommand::Sign(a) => sign_bundle(&a),
        BundleCommand::Verify(a) => verify(&a),
    }
}

fn pack_set(args: &PackArgs) -> anyhow::Result<i32> {
    pack(&args.set, &args.output)?;
    // The digest is over `bundle.json` exactly as written, which only the bundle
    // library serialises; reading the bundle back gets it without a second copy of
    // that format, and proves the file on disk opens.
    let bundle = open_file(&args.output, Trust::Any)?;
    print_summary(
        &bundle,
        "none: unsigned; sign it with `arbiter bundle sign`",
    )?;
    eprintln!(
        "packed `{}` into `{}`",
        args.set.display(),
        args.output.display()
    );
    Ok(0)
}

fn sign_bundle(args: &SignArgs) -> anyhow::Result<i32> {
    let key = SecretKey::load(&args.key)?;
    let signed = sign(&args.bundle, &key)?;
    writeln!(std::io::stdout().lock(), "{}", signed.key_id)?;
    eprintln!(
        "signed `{}` (digest {}) with key `{}`; check it with `arbiter bundle verify --pubkey <the .pub file> {}`",
        args.bundle.display(),
        signed.digest,
        signed.key_id,
        args.bundle.display()
    );
    Ok(0)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut trusted = Vec::new();
    for path in &args.pubkeys {
        trusted.push((PublicKey::load(path)?, path.as_path()));
    }
    let keys: Vec<PublicKey> = trusted.iter().map(|(k, _)| *k).collect();
    let trust = if keys.is_empty() {
        Trust::Any
    } else {
        Trust::Keys(&keys)
    };
    let bundle = match open_file(&args.bundle, trust) {
        Ok(bundle) => bundle,
        // The bundle could not be read at all: nothing was refused.
        Err(e @ BundleError::Read { .. }) => return Err(e.into()),
        Err(e) => {
            // Which keys were tried is what the operator needs to fix a key mix-up.
            let about_keys = matches!(
                e,
                BundleError::UnknownKey { .. } | BundleError::BadSignature { .. }
            );
            eprintln!("refused: {:#}", anyhow::Error::from(e));
            if about_keys {
                eprintln!("trusted keys: {}", key_list(&trusted));
            }
            return Ok(REFUSED);
        }
    };
    match &bundle.signer {
        Some(id) => {
            let file = trusted
                .iter()
                .find(|(k, _)| k.id() == *id)
                .map_or(String::new(), |(_, p)| format!(" (`{}`)", p.display()));
            print_summary(&bundle, &format!("{id}{file}, verified"))?;
            eprintln!(
                "ok: `{}` is intact and signed by trusted key `{id}`",
                args.bundle.display()
            );
        }
        None => {
            let signer = match claimed_signer(&args.bundle) {
                Some(id) => format!("not checked: signed by key `{id}`, but no `--pubkey` given"),
                None => "not checked: the bundle is unsigned".to_string(),
            };
            print_summary(&bundle, &signer)?;
            eprintln!(
                "ok: `{}` is intact as packed (digests checked)\n\
                 warning: the signature was NOT checked, so nothing says who packed it; \
                 pass `--pubkey` with the signer's public key to require a valid signature",
                args.bundle.display()
            );
        }
    }
    Ok(0)
}

/// The key id a bundle's signature names, unverified, or `None` when it is unsigned.
/// The bundle library reports it only as a refusal: trusting no key at all refuses a
/// signed bundle as signed by an unknown key (naming it) and an unsigned one as
/// unsigned, which spares this command a second reader of `bundle.sig`.
fn claimed_signer(path: &Path) -> Option<String> {
    match open_file(path, Trust::Keys(&[])) {
        Err(BundleError::UnknownKey { key_id, .. }) => Some(key_id),
        _ => None,
    }
}

fn key_list(trusted: &[(PublicKey, &Path)]) -> String {
    trusted
        .iter()
        .map(|(k, p)| format!("`{}` (`{}`)", k.id(), p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the bundle holds, on stdout: identity, digest, signer, every file.
fn print_summary(bundle: &Bundle, signer: &str) -> anyhow::Result<()> {
    let index = &bundle.index;
    let files: Vec<_> = std::iter::once(&index.manifest)
        .chain(&index.files)
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let width = files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "name     {}", index.name)?;
    writeln!(out, "version  {}", index.version)?;
    writeln!(out, "digest   {}", bundle.digest)?;
    writeln!(out, "signer   {signer}")?;
    writeln!(out, "files    {} ({total} bytes)", files.len())?;
    for f in files {
        writeln!(
            out,
            "  {:<width$}  {:>10} bytes  sha256 {}",
            f.path, f.size, f.sha256
        )?;
    }
    out.flush().context("cannot write to stdout")
}
