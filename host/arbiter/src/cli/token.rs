//! `arbiter token`: bearer tokens for callers. The plain token is printed once; only
//! its SHA-256 is stored (in the data directory's state database, which a running
//! server re-reads within seconds) or printed as a `[[auth.tokens]]` config entry.

use std::path::PathBuf;

use anyhow::Context as _;
use arbiter_store::{StateStore, TokenEntry, now_micros};

use crate::auth::{self, Role};
use crate::config::default_data_dir;

/// Flags of `arbiter token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `arbiter token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it (once).
    Create(CreateArgs),
    /// Lists the identities that have tokens in the data directory.
    List(DataDir),
    /// Removes every token of an identity from the data directory.
    Revoke {
        /// The identity id.
        #[arg(long)]
        id: String,
        /// Where the state is.
        #[command(flatten)]
        data: DataDir,
    },
}

/// The data directory of the server whose tokens are managed.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// The server's data directory [default: as `arbiter serve`].
    #[arg(long, env = "ARBITER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The replicas' PostgreSQL state instead of the data directory's (as `arbiter
    /// serve --state-url`; the password from `--state-password-file`).
    #[arg(long, env = "ARBITER_STATE_URL")]
    pub state_url: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, requires = "state_url")]
    pub state_password_file: Option<PathBuf>,
}

impl DataDir {
    fn open(&self) -> anyhow::Result<std::sync::Arc<dyn StateStore>> {
        if let Some(url) = &self.state_url {
            return arbiter_store::open(
                Some(url),
                self.state_password_file.as_deref(),
                "".as_ref(),
            )
            .with_context(|| {
                format!(
                    "cannot open the state database `{}`",
                    arbiter_store::redact_url(url)
                )
            });
        }
        let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        arbiter_runtime::create_private_dir(&dir)
            .with_context(|| format!("cannot create the data directory `{}`", dir.display()))?;
        let path = dir.join("state.db");
        arbiter_store::open(None, None, &path)
            .with_context(|| format!("cannot open the state database `{}`", path.display()))
    }
}

/// Flags of `arbiter token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The caller's identity id, e.g. `alice@acme.org`. For approvers, use the same id
    /// that requests name in their delegation chains, so separation of duties holds.
    #[arg(long)]
    pub id: String,
    /// What kind of identity it is: human, service, agent or workload.
    #[arg(long, default_value = "human")]
    pub kind: String,
    /// A role; repeat for several.
    #[arg(long = "role", value_enum, required = true)]
    pub roles: Vec<Role>,
    /// Print a `[[auth.tokens]]` config entry instead of storing the token.
    #[arg(long)]
    pub config_only: bool,
    /// Where the state is.
    #[command(flatten)]
    pub data: DataDir,
}

/// Runs the command.
pub fn run(args: TokenArgs) -> anyhow::Result<i32> {
    match args.command {
        TokenCommand::Create(c) => create(c),
        TokenCommand::List(d) => {
            for t in d.open()?.tokens()? {
                println!("{}\t{}\t{}", t.id, t.kind, t.roles.join(","));
            }
            Ok(0)
        }
        TokenCommand::Revoke { id, data } => {
            let n = data.open()?.remove_tokens(&id)?;
            eprintln!(
                "removed {n} token(s) of `{id}`; a running server stops accepting them within {} s",
                auth::REFRESH.as_secs()
            );
            Ok(if n == 0 { 1 } else { 0 })
        }
    }
}

fn create(c: CreateArgs) -> anyhow::Result<i32> {
    let token = auth::new_token()?;
    let sha256 = auth::token_hash(&token);
    let roles: Vec<String> = c.roles.iter().map(|r| r.as_str().to_string()).collect();
    auth::caller_of(&sha256, &c.id, &c.kind, &roles).map_err(anyhow::Error::msg)?;
    if c.config_only {
        println!("{token}");
        eprintln!(
            "add to the server's config file:\n\n[[auth.tokens]]\nsha256 = \"{sha256}\"\nid = \"{}\"\nkind = \"{}\"\nroles = [{}]\n",
            c.id,
            c.kind,
            roles
                .iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(0);
    }
    let store = c.data.open()?;
    let same = crate::approvals::identity_key(&c.id);
    let mut all: Vec<String> = roles.clone();
    for t in store.tokens()? {
        if crate::approvals::identity_key(&t.id) == same {
            all.extend(t.roles);
        }
    }
    if all.iter().any(|r| r == "enforcer") && all.iter().any(|r| r == "approver") {
        anyhow::bail!(
            "`{}` already has a token with the {} role: one identity cannot both hold requests (enforcer) and approve them (approver), whatever the token\nhint: give the enforcement point and the person two identities",
            c.id,
            if roles.iter().any(|r| r == "approver") {
                "enforcer"
            } else {
                "approver"
            }
        );
    }
    store.add_token(&TokenEntry {
        sha256,
        id: c.id.clone(),
        kind: c.kind,
        roles,
        created_micros: now_micros(),
    })?;
    println!("{token}");
    eprintln!(
        "token for `{}` stored; it is shown only now. Use it with --token or ARBITER_TOKEN. A running server records it in its audit log and accepts it within {} s",
        c.id,
        auth::REFRESH.as_secs()
    );
    Ok(0)
}
