//! The Arbiter policy decision point: the gRPC server, its configuration, and the
//! command-line tool. Decisions themselves come from `arbiter-runtime` (sandboxed
//! plugins) and `arbiter-core` (the domain); this crate is the edge around them.

pub mod app;
pub mod approvals;
pub mod auth;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod embedded;
pub mod grpc;
pub mod history;
pub mod loader;
pub mod metrics;
pub mod records;
pub mod server;
pub mod sets;
pub mod shadow;
pub mod tokens;
pub mod watch;

/// Generated protobuf and gRPC code for `arbiter.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic, reason = "generated code")]
pub mod proto {
    tonic::include_proto!("arbiter.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const DESCRIPTOR: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/arbiter_descriptor.bin"));
}
