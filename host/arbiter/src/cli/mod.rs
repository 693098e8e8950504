//! The `arbiter` command line: one file per subcommand.

pub mod approvals;
pub mod audit;
pub mod bench;
pub mod build;
pub mod bundle;
pub mod check;
pub mod client;
pub mod credentials;
pub mod keygen;
pub mod mcp;
pub mod new;
pub mod replay;
pub mod replicas;
pub mod serve;
pub mod serve_args;
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
    /// Time a policy set or a plugin per decision over a test file, vectors or a
    /// project's tests, in-process: fresh and pooled instances side by side.
    Bench(bench::BenchArgs),
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
    /// Which replica answers, and the replicas sharing its state database (admin).
    Replicas(replicas::ReplicasArgs),
    /// Create, list and revoke caller tokens in a data directory.
    Token(token::TokenArgs),
    /// Write a new policy plugin project (Rust, Python, JavaScript or C): WIT, SDK,
    /// a starter policy, a one-plugin set and test cases.
    New(new::NewArgs),
    /// Build a project's plugin with its language's pinned toolchain (installed on
    /// first use) and check it against this host's WIT.
    Build(build::BuildArgs),
    /// Pack, sign and verify policy-set bundles.
    Bundle(bundle::BundleArgs),
    /// Create an Ed25519 key pair (for signing bundles).
    Keygen(keygen::KeygenArgs),
    /// Gate an MCP server: every message an agent sends decided by Arbiter, held
    /// calls waiting for a human, credentials handed to the server (stdio or HTTP).
    #[command(name = "mcp-gateway")]
    McpGateway(mcp::McpArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// A positional argument with the id of a flag that reaches it (its own or a global
    /// one from a parent) makes clap read one as the other: `credentials introspect`
    /// once took the JWT for `--token`. Walks every subcommand.
    #[test]
    fn no_positional_argument_shares_an_id_with_a_flag() {
        fn walk(cmd: &clap::Command, inherited: &[String], path: &str, clashes: &mut Vec<String>) {
            let mut flags: Vec<String> = inherited.to_vec();
            flags.extend(
                cmd.get_arguments()
                    .filter(|a| !a.is_positional())
                    .map(|a| a.get_id().to_string()),
            );
            for a in cmd.get_arguments().filter(|a| a.is_positional()) {
                if flags.iter().any(|f| f == a.get_id().as_str()) {
                    clashes.push(format!("{path}: `{}`", a.get_id()));
                }
            }
            let globals: Vec<String> = flags
                .iter()
                .filter(|f| {
                    inherited.contains(f)
                        || cmd
                            .get_arguments()
                            .any(|a| a.get_id().as_str() == f.as_str() && a.is_global_set())
                })
                .cloned()
                .collect();
            for sub in cmd.get_subcommands() {
                walk(
                    sub,
                    &globals,
                    &format!("{path} {}", sub.get_name()),
                    clashes,
                );
            }
        }
        let mut clashes = Vec::new();
        walk(&super::Cli::command(), &[], "arbiter", &mut clashes);
        assert!(
            clashes.is_empty(),
            "positional arguments named like a flag: {clashes:?}"
        );
    }

    #[test]
    fn introspect_takes_the_jwt_and_the_token_apart() {
        use clap::Parser as _;
        for argv in [
            &[
                "arbiter",
                "credentials",
                "introspect",
                "--token",
                "T",
                "J.W.T",
            ][..],
            &[
                "arbiter",
                "credentials",
                "--token",
                "T",
                "introspect",
                "J.W.T",
            ][..],
            &[
                "arbiter",
                "credentials",
                "introspect",
                "J.W.T",
                "--token",
                "T",
            ][..],
        ] {
            let cli = super::Cli::try_parse_from(argv).expect("parses");
            let super::Command::Credentials(c) = cli.command else {
                panic!("credentials");
            };
            assert_eq!(c.client.token.as_deref(), Some("T"), "{argv:?}");
            assert!(
                matches!(&c.command, super::credentials::CredentialsCommand::Introspect { jwt } if jwt == "J.W.T"),
                "{argv:?}"
            );
        }
    }
}
