//! Wall-clock time as audit records store it: microseconds since the Unix epoch.

pub(crate) use arbiter_core::clock::rfc3339;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the Unix epoch (0 if the clock is set before 1970).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2020() {
        assert!(now_micros() > 1_577_836_800_000_000);
    }
}
