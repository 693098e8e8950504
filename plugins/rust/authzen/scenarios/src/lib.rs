//! What the AuthZEN policy sets share.
//!
//! - [`users`]: the users of the Todo interop scenario (`shared/authzen/interop-todo-scenario.md`)
//!   with the attributes its PIP holds, as the sets ship them in `users.json`.
//! - [`cases`] (feature `cases`): the scenarios' decision files (`tests/vectors/authzen/`)
//!   mapped to requests the way the AuthZEN door maps them (`docs/authzen.md`), so that
//!   each plugin's tests run every case through its decision function natively.

#[cfg(feature = "cases")]
pub mod cases;
pub mod users;
