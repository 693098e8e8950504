//! End-to-end tests: the real server on 127.0.0.1:0, a real tonic client, real
//! plugins built from this repository, and the real `arbiter` binary.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod approvals;
mod audit;
mod author_kit;
mod authorize;
mod authzen;
mod authzen_interop;
mod authzen_requests;
mod await_approval;
mod bench;
mod bundles;
mod cli;
mod console;
mod console_admin;
mod console_browser;
mod console_measure;
mod console_tls;
mod crash;
mod envoy;
mod findings;
mod fuzz_smoke;
mod hostile;
mod languages;
mod lifecycle;
mod mcp;
mod mcp_example;
mod nul_bytes;
mod pipeline;
mod probes;
mod replay;
mod replica_ids;
mod replica_sets;
mod replicas;
mod sets_admin;
mod state_tls;
mod support;
mod test_cases;
mod tls;
mod validation;
mod webhooks;
