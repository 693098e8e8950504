//! The `arbiter` command line: one file per subcommand.

pub mod approvals;
pub mod audit;
pub mod bundle;
pub mod check;
pub mod client;
pub mod credentials;
pub mod keygen;
pub mod replay;
pub mod serve;
pub mod sets;
pub mod test;
pub mod token;

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "arbiter",
    version,
    about = "Policy decision point for AI agents and non-human identities"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve decisions over gRPC (default: the built-in reference set on 127.0.0.1:50051).
    Serve(crate::config::ServeArgs),
    /// Ask a running server: JSON requests in (one per line), JSON decisions out.
    Check(check::CheckArgs),
    /// Run a policy set or a plugin against test vectors, in-process.
    Test(test::TestArgs),
    /// Measure a policy set (or a candidate against a baseline) over labelled vectors or
    /// an audit log: confusion matrix, false positives and negatives, approval burden.
    Replay(replay::ReplayArgs),
    /// List, show, approve, reject and watch held actions (approvers).
    Approvals(approvals::ApprovalsArgs),
    /// Introspect and revoke credentials, complete tasks, print or rotate keys.
    Credentials(credentials::CredentialsArgs),
    /// Verify, tail and query the audit log of a data directory.
    Audit(audit::AuditArgs),
    /// Load, activate, shadow, roll back and inspect policy sets on a running server.
    Sets(sets::SetsArgs),
    /// Create, list and revoke caller tokens in a data directory.
    Token(token::TokenArgs),
    /// Pack, sign and verify policy-set bundles.
    Bundle(bundle::BundleArgs),
    /// Create an Ed25519 key pair (for signing bundles).
    Keygen(keygen::KeygenArgs),
}
