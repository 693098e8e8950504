//! Placeholder docs.

mod chain;
mod clock;
mod error;
mod log;
mod query;
mod record;
mod report;
mod schema;
mod verify;
mod writer;

pub use chain::Hash;
pub use clock::now_micros;
pub use error::AuditError;
pub use log::{
    AuditConfig, AuditLog, DEFAULT_CHECKPOINT_EVERY, DEFAULT_MAX_BATCH, DEFAULT_QUEUE_CAPACITY,
    Observer,
};
pub use query::{DEFAULT_LIMIT, Filter, query};
pub use record::{Durability, Kind, Record, StoredRecord, UnknownKind};
pub use report::{Broken, Verification, Why};
pub use verify::verify;
