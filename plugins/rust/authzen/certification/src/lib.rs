//! The OpenID AuthZEN 1.0 certification scenario's fixture
//! (`shared/authzen/certification-scenario-1_0.md`, "Required Fixture") as a plugin:
//! its subjects and resources come from the set's `fixture.json`, its policy is in
//! [`policy`].

use arbiter_policy::{
    Attribute, DataFile, Description, Policy, Reason, Request, Verdict, export_policy,
};

pub mod fixture;
pub mod policy;

use fixture::{FIXTURE_FILE, Fixture};

/// The fixture, parsed in `configure`: once per load (fresh instances start from its
/// snapshot).
static FIXTURE: DataFile<Fixture> = DataFile::new(FIXTURE_FILE, Fixture::parse);

struct Certification;

impl Policy for Certification {
    fn describe() -> Description {
        Description::new("authzen-certification", env!("CARGO_PKG_VERSION"))
            .actions(&policy::ACTIONS)
    }

    /// Takes no settings; refuses the set when `fixture.json` is missing or malformed.
    fn configure(_settings: &[Attribute]) -> Result<(), String> {
        FIXTURE.get().map(|_| ())
    }

    fn evaluate(request: &Request) -> Verdict {
        match FIXTURE.get() {
            Ok(fixture) => policy::decide(fixture, request),
            Err(e) => Verdict::deny(
                Reason::new("pip-unavailable", "the fixture's directory is unavailable").admin(e),
            ),
        }
    }
}

export_policy!(Certification);
