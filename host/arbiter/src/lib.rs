//! The Arbiter policy decision point: the binary's wiring (configuration, server,
//! command-line tool). The gRPC front door lives in `arbiter-grpc`, the decision
//! pipeline and everything behind it in `arbiter-service`, plugins in
//! `arbiter-runtime`.

pub mod cli;
pub mod config;
pub mod server;
mod upkeep;

// The gRPC front door lives in `arbiter-grpc`, the domain in `arbiter-service`; these
// keep their modules at their old paths for the CLI, the tests and the benches.
pub use arbiter_grpc as grpc;
/// The `arbiter.v1` client API (generated code), for the command line and tests.
pub use arbiter_proto as proto;
pub use arbiter_service::{
    app, approvals, auth, credentials, embedded, history, loader, metrics, records, sets, shadow,
    tokens, watch,
};
