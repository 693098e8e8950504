//! How long to wait before trying a notice again: exponential, capped, jittered.

use std::time::Duration;

/// The wait after the first failed attempt: a receiver that dropped one connection is
/// usually back at once, and a test or a restarting receiver should not wait long.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between attempts, `Retry-After` included: a receiver that asks for
/// an hour is answered after a minute, and gives up sooner if it keeps failing.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The wait after `failed` attempts (1 or more): [`FIRST_RETRY`] doubling per attempt
/// up to [`MAX_RETRY`], the receiver's `Retry-After` if longer (within the cap), then
/// "equal jitter": half of it fixed, the other half scaled by `random`, so that many
/// servers retrying one receiver after its outage do not all arrive together.
pub fn delay(failed: u32, retry_after: Option<Duration>, random: u64) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    let base = FIRST_RETRY
        .saturating_mul(1 << doublings)
        .max(retry_after.unwrap_or_default())
        .min(MAX_RETRY);
    let half = base / 2;
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(random % millis.saturating_add(1))
}

/// A random number for [`delay`]; 0 if the system has none to give (no jitter is
/// better than no retry).
pub fn random() -> u64 {
    getrandom::u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_double_from_the_first_retry_to_the_cap() {
        // Whatever the jitter, the wait is between half the step and the step.
        let top: Vec<Duration> = (1..=10).map(|n| delay(n, None, u64::MAX - 1)).collect();
        let lowest: Vec<Duration> = (1..=10).map(|n| delay(n, None, 0)).collect();
        assert_eq!(
            lowest,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map(ms)
        );
        for (l, t) in lowest.iter().zip(&top) {
            assert!(l <= t && *t <= *l * 2, "{l:?} {t:?}");
        }
        assert_eq!(delay(u32::MAX, None, 0), MAX_RETRY / 2);
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        for r in [0, 1, 249, 250, 251, 12_345, u64::MAX] {
            let d = delay(1, None, r);
            assert!(d >= ms(250) && d <= ms(500), "{r}: {d:?}");
        }
    }

    #[test]
    fn retry_after_lengthens_the_wait_but_never_past_the_cap() {
        assert_eq!(delay(1, Some(Duration::from_secs(10)), 0), ms(5000));
        assert_eq!(delay(1, Some(Duration::from_secs(3600)), 0), MAX_RETRY / 2);
        // A shorter Retry-After does not shorten the back-off.
        assert_eq!(delay(5, Some(ms(1)), 0), ms(4000));
    }
}
