//! The OpenID AuthZEN API-gateway interop scenario
//! (`shared/authzen/interop-api-gateway-scenario.md`) as a plugin: which users of the
//! Todo application may call which of its routes, decided from the roles its PIP holds
//! for each user (`users.json` in the set). The rules are in [`policy`].

use arbiter_policy::{
    Attribute, DataFile, Description, Policy, Reason, Request, Verdict, export_policy,
};
use authzen_scenarios::users::{USERS_FILE, Users};

pub mod policy;

/// The users, parsed in `configure`: once per load, since fresh instances start from
/// the snapshot taken after it.
static USERS: DataFile<Users> = DataFile::new(USERS_FILE, Users::parse);

struct Gateway;

impl Policy for Gateway {
    fn describe() -> Description {
        Description::new("authzen-gateway", env!("CARGO_PKG_VERSION")).actions(&policy::METHODS)
    }

    /// Takes no settings; refuses the set when `users.json` is missing or malformed.
    fn configure(_settings: &[Attribute]) -> Result<(), String> {
        USERS.get().map(|_| ())
    }

    fn evaluate(request: &Request) -> Verdict {
        match USERS.get() {
            Ok(users) => policy::decide(users, request),
            Err(e) => Verdict::deny(
                Reason::new("pip-unavailable", "the user directory is unavailable").admin(e),
            ),
        }
    }
}

export_policy!(Gateway);
