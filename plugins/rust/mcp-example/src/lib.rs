//! The example policy set of Arbiter's MCP gateway (`builtin:mcp-example`): an AI agent
//! working through the gateway reads its workspace, writes its scratch folder, needs a
//! human approval for other writes in the workspace, and never touches anything outside
//! the workspace or any secrets file. The gateway sends the workspace and the scratch
//! folder as request context, so the set takes no settings. The rules are in
//! [`policy`], the path tests in [`paths`]; `README.md` describes the request shape and
//! the reason codes.

use arbiter_policy::{Attribute, Description, Policy, Request, Verdict, export_policy};

pub mod paths;
pub mod policy;

struct McpExample;

impl Policy for McpExample {
    fn describe() -> Description {
        Description::new("mcp-example", env!("CARGO_PKG_VERSION"))
    }

    /// Takes no settings: a setting is a mistake in the manifest, refused at load
    /// rather than silently ignored.
    fn configure(settings: &[Attribute]) -> Result<(), String> {
        match settings.first() {
            None => Ok(()),
            Some(a) => Err(format!(
                "mcp-example takes no settings (it reads the workspace from each request's context), got `{}`",
                a.name
            )),
        }
    }

    fn evaluate(request: &Request) -> Verdict {
        policy::decide(request)
    }
}

export_policy!(McpExample);
