//! Quarantine as a circuit breaker: a plugin that keeps failing stops running (it
//! fails closed without being instantiated), and after a back-off one trial evaluation
//! is let through (half-open). A success closes the breaker; a failure opens it again
//! for twice as long. So a burst that made a good plugin fail recovers by itself,
//! while a broken plugin costs one evaluation per back-off period instead of a
//! deadline per request. An operator can still release it at once.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// First back-off after a plugin is quarantined: long enough that a plugin failing on
/// every request costs one evaluation a second, short enough that a plugin that failed
/// only during a burst is back almost at once.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest back-off: a plugin that stays broken is retried every five minutes, so it
/// recovers by itself within that time once its cause (a data source, a limit) is gone.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the breaker lets an evaluation do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Closed: run normally.
    Run,
    /// Half-open: run as the one trial; its outcome decides.
    Trial,
    /// Open: fail closed without running.
    Refuse,
}

/// Why and since when a plugin is quarantined, for status and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The failure that opened the breaker (kind and detail).
    pub cause: String,
    /// Consecutive failures that led to it.
    pub failures_in_a_row: u32,
    /// Time until the next trial evaluation (zero: the next request is the trial).
    pub retry_in: Duration,
    /// How many times the breaker has opened since the set was loaded.
    pub times: u64,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    origin: Instant,
    after: u32,
    consecutive: AtomicU32,
    open: AtomicBool,
    /// Nanoseconds since `origin` when the next trial may run.
    retry_at: AtomicU64,
    backoff: AtomicU64,
    trial: AtomicBool,
    times: AtomicU64,
    cause: Mutex<String>,
    /// The distinct callers whose requests failed in the current run of failures (up
    /// to [`MAX_NAMED_CALLERS`]): one caller alone cannot quarantine a plugin for
    /// everyone with crafted inputs.
    streak: Mutex<Vec<String>>,
}

/// Callers a quarantine's cause names at most.
const MAX_NAMED_CALLERS: usize = 8;

/// Distinct callers whose failures it takes to quarantine a plugin. An in-process
/// caller (`arbiter test`, `replay`), who has no name, is trusted: its failures alone
/// may quarantine.
pub(crate) const CALLERS_TO_QUARANTINE: usize = 2;

impl Breaker {
    pub(crate) fn new(after: u32) -> Self {
        Self {
            origin: Instant::now(),
            after: after.max(1),
            consecutive: AtomicU32::new(0),
            open: AtomicBool::new(false),
            retry_at: AtomicU64::new(0),
            backoff: AtomicU64::new(nanos(FIRST_BACKOFF)),
            trial: AtomicBool::new(false),
            times: AtomicU64::new(0),
            cause: Mutex::new(String::new()),
            streak: Mutex::new(Vec::new()),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.origin.elapsed())
    }

    pub(crate) fn admit(&self) -> Admit {
        if !self.open.load(Ordering::Acquire) {
            return Admit::Run;
        }
        if self.now() < self.retry_at.load(Ordering::Acquire) {
            return Admit::Refuse;
        }
        match self
            .trial
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::Trial,
            Err(_) => Admit::Refuse,
        }
    }

    /// Records a success; returns true when it closed an open breaker.
    pub(crate) fn success(&self, admit: Admit) -> bool {
        self.consecutive.store(0, Ordering::Relaxed);
        self.streak
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if admit == Admit::Trial {
            self.backoff.store(nanos(FIRST_BACKOFF), Ordering::Relaxed);
            self.open.store(false, Ordering::Release);
            self.trial.store(false, Ordering::Release);
            return true;
        }
        false
    }

    /// Records a failure that is the plugin's own doing; returns the consecutive count
    /// and whether this failure opened the breaker (or re-opened it after a trial).
    /// `caller` names who sent the request (empty: in-process); the breaker opens only
    /// once failures in a row came from [`CALLERS_TO_QUARANTINE`] distinct callers (or
    /// from in-process), and the cause names them.
    pub(crate) fn failure(
        &self,
        admit: Admit,
        caller: &str,
        cause: impl FnOnce() -> String,
    ) -> (u32, bool) {
        let in_a_row = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        let (callers, named) = {
            let mut streak = self.streak.lock().unwrap_or_else(PoisonError::into_inner);
            let who = if caller.is_empty() {
                "in-process".to_string()
            } else {
                caller.to_string()
            };
            if !streak.contains(&who) && streak.len() < MAX_NAMED_CALLERS {
                streak.push(who);
            }
            (streak.len(), streak.join(", "))
        };
        let cause = || {
            if caller.is_empty() {
                cause()
            } else {
                format!("{} (failing for: {named})", cause())
            }
        };
        match admit {
            Admit::Trial => {
                let backoff = self.backoff.load(Ordering::Relaxed);
                let next = backoff.saturating_mul(2).min(nanos(MAX_BACKOFF));
                self.backoff.store(next, Ordering::Relaxed);
                self.retry_at
                    .store(self.now().saturating_add(next), Ordering::Release);
                *self.cause.lock().unwrap_or_else(PoisonError::into_inner) = cause();
                self.trial.store(false, Ordering::Release);
                (in_a_row, true)
            }
            Admit::Run
                if in_a_row >= self.after
                    && (callers >= CALLERS_TO_QUARANTINE || caller.is_empty())
                    && !self.open.load(Ordering::Acquire) =>
            {
                *self.cause.lock().unwrap_or_else(PoisonError::into_inner) = cause();
                self.retry_at.store(
                    self.now()
                        .saturating_add(self.backoff.load(Ordering::Relaxed)),
                    Ordering::Release,
                );
                self.times.fetch_add(1, Ordering::Relaxed);
                self.open.store(true, Ordering::Release);
                (in_a_row, true)
            }
            _ => (in_a_row, false),
        }
    }

    /// A trial that ended without saying anything about the plugin (overload): the
    /// next request may try again.
    pub(crate) fn inconclusive(&self, admit: Admit) {
        if admit == Admit::Trial {
            self.trial.store(false, Ordering::Release);
        }
    }

    /// Holds a trial admission for one evaluation: if the evaluation ends without an
    /// outcome (its request was cancelled and the future dropped), the next request
    /// may be the trial, instead of the breaker staying open for good.
    pub(crate) fn guard(&self, admit: Admit) -> TrialGuard<'_> {
        TrialGuard {
            breaker: self,
            admit,
        }
    }

    /// Closes the breaker at an operator's request; returns whether it was open.
    pub(crate) fn release(&self) -> bool {
        self.consecutive.store(0, Ordering::Relaxed);
        self.backoff.store(nanos(FIRST_BACKOFF), Ordering::Relaxed);
        self.trial.store(false, Ordering::Release);
        self.open.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn consecutive(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    pub(crate) fn quarantine(&self) -> Option<Quarantine> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        let retry_at = self.retry_at.load(Ordering::Acquire);
        Some(Quarantine {
            cause: self
                .cause
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            failures_in_a_row: self.consecutive(),
            retry_in: Duration::from_nanos(retry_at.saturating_sub(self.now())),
            times: self.times.load(Ordering::Relaxed),
        })
    }

    /// How many times the breaker has opened.
    pub(crate) fn times(&self) -> u64 {
        self.times.load(Ordering::Relaxed)
    }

    /// The current back-off (for messages).
    pub(crate) fn backoff(&self) -> Duration {
        Duration::from_nanos(self.backoff.load(Ordering::Relaxed))
    }
}

/// See [`Breaker::guard`].
#[derive(Debug)]
pub(crate) struct TrialGuard<'a> {
    breaker: &'a Breaker,
    admit: Admit,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        // After a success or failure the flag is already down; lowering it again is
        // harmless, since no other trial can start before the back-off passes.
        if self.admit == Admit::Trial {
            self.breaker.trial.store(false, Ordering::Release);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_configured_failures_and_half_opens_after_the_backoff() {
        let b = Breaker::new(3);
        for i in 1..3 {
            assert_eq!(b.admit(), Admit::Run);
            assert_eq!(b.failure(Admit::Run, "", || "trap".into()), (i, false));
        }
        assert_eq!(b.failure(Admit::Run, "", || "trap".into()), (3, true));
        assert_eq!(b.admit(), Admit::Refuse);
        let q = b.quarantine().expect("open");
        assert_eq!(q.cause, "trap");
        assert_eq!(q.times, 1);
        assert!(q.retry_in <= FIRST_BACKOFF);
        // Pretend the back-off has passed.
        b.retry_at.store(0, Ordering::Release);
        assert_eq!(b.admit(), Admit::Trial);
        // Only one trial at a time.
        assert_eq!(b.admit(), Admit::Refuse);
        assert!(b.success(Admit::Trial));
        assert_eq!(b.admit(), Admit::Run);
        assert!(b.quarantine().is_none());
    }

    #[test]
    fn a_failed_trial_doubles_the_backoff_up_to_the_maximum() {
        let b = Breaker::new(1);
        assert!(b.failure(Admit::Run, "", String::new).1);
        for _ in 0..20 {
            b.retry_at.store(0, Ordering::Release);
            assert_eq!(b.admit(), Admit::Trial);
            assert!(b.failure(Admit::Trial, "", || "still broken".into()).1);
        }
        assert_eq!(b.backoff(), MAX_BACKOFF);
        assert_eq!(b.admit(), Admit::Refuse);
        assert!(b.release());
        assert_eq!(b.admit(), Admit::Run);
        assert_eq!(b.backoff(), FIRST_BACKOFF);
    }

    #[test]
    fn a_cancelled_trial_lets_the_next_request_try() {
        let b = Breaker::new(1);
        b.failure(Admit::Run, "", String::new);
        b.retry_at.store(0, Ordering::Release);
        let admit = b.admit();
        assert_eq!(admit, Admit::Trial);
        assert_eq!(b.admit(), Admit::Refuse, "one trial at a time");
        // The trial's request is cancelled: its evaluation never reports.
        drop(b.guard(admit));
        assert_eq!(b.admit(), Admit::Trial);
    }

    #[test]
    fn an_inconclusive_trial_lets_the_next_request_try() {
        let b = Breaker::new(1);
        b.failure(Admit::Run, "", String::new);
        b.retry_at.store(0, Ordering::Release);
        assert_eq!(b.admit(), Admit::Trial);
        b.inconclusive(Admit::Trial);
        assert_eq!(b.admit(), Admit::Trial);
    }
}
