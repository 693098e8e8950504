//! Arbiter's MCP gateway: a policy enforcement point between an MCP client (an AI
//! agent) and an MCP server. Every message the agent sends is mapped to AuthZEN
//! evaluations by the COAZ-MCP binding (the server's declared mapping for a tool, else
//! the method's default mapping), refined with the tool catalog (privilege, resource,
//! credential) and decided by Arbiter over its gRPC API with the gateway's own
//! enforcer identity. Allowed messages go on, denied ones are answered with the
//! binding's JSON-RPC errors, held ones wait for a human. Stdio ([`stdio`]) and
//! Streamable HTTP ([`http`]). See `docs/mcp.md`.

pub mod catalog;
pub mod coaz;
pub mod gate;
mod hold;
pub mod http;
pub mod jsonrpc;
pub mod jwt;
pub mod pdp;
pub mod request;
pub mod stdio;
mod tools;

pub use catalog::Catalog;
pub use gate::{Gateway, Session, Settings};
pub use pdp::Pdp;
