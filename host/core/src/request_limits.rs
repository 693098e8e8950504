//! How large a request may be, whichever door it comes through: nothing oversized
//! reaches a sandbox, and every door refuses the same things.

/// Bytes of an id (principal, resource). SPIFFE ids and ARNs fit in well under 1 KiB.
pub const MAX_ID_BYTES: usize = 1024;
/// Bytes of a name (action, resource kind, purpose, ticket, task id, set name).
pub const MAX_NAME_BYTES: usize = 256;
/// Bytes of the free-text justification.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Attributes per map. Rules read a handful; 64 leaves room without letting a caller
/// make every plugin copy megabytes per decision.
pub const MAX_ATTRIBUTES: usize = 64;
/// Bytes of an attribute name.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 128;
/// Bytes of a string attribute value (JSON-encoded nested data included).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4096;
/// Items of a list-of-strings attribute.
pub const MAX_LIST_ITEMS: usize = 64;
/// Links in a delegation chain. Real chains are human -> agent -> sub-agent; 16 is
/// already a design problem.
pub const MAX_DELEGATION: usize = 16;
