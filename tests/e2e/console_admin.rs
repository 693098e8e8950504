//! The console's admin pages over HTTP on loopback: audit search, policy sets.
