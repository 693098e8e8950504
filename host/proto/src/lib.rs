//! Generated protobuf and gRPC code for `arbiter.v1` (from `proto/arbiter/v1/`, with
//! protox: no `protoc` needed). Clients (the `arbiter` command line, the tests,
//! `arbiter-load`) use it directly; the server side is `arbiter-grpc`, which keeps
//! these types behind its adapters.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    reason = "generated code"
)]

tonic::include_proto!("arbiter.v1");

/// The encoded file descriptor set, for server reflection.
pub const DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/arbiter_descriptor.bin"));
