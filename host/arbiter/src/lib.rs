//! The Arbiter policy decision point: the binary's wiring (configuration, server,
//! command-line tool) and the gRPC front door. The decision pipeline and everything
//! behind it live in `arbiter-service`, plugins in `arbiter-runtime`.

pub mod cli;
pub mod config;
pub mod grpc;
pub mod metrics_http;
pub mod server;

// The domain lives in `arbiter-service`; these keep its modules at their old paths for
// the CLI, the tests and the benches.
pub use arbiter_service::{
    app, approvals, auth, credentials, embedded, history, loader, metrics, records, sets, shadow,
    tokens, watch,
};

/// Generated protobuf and gRPC code for `arbiter.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic, reason = "generated code")]
pub mod proto {
    tonic::include_proto!("arbiter.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const DESCRIPTOR: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/arbiter_descriptor.bin"));
}
