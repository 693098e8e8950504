//! End-to-end tests: the real server on 127.0.0.1:0, a real tonic client, real
//! plugins built from this repository, and the real `arbiter` binary.

mod approvals;
mod authorize;
mod cli;
mod crash;
mod fuzz_smoke;
mod hostile;
mod languages;
mod lifecycle;
mod support;
mod test_cases;
mod validation;
