//! Time is passed in, never read inside domain code.
//!
//! Every job evaluates "now" through a [`Clock`]: the system clock in production, a
//! [`FixedClock`] for `--now <RFC3339>` what-if runs and for tests.

use jiff::Timestamp;

/// A source of the current instant, in UTC.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The instant the job should treat as "now".
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock frozen at one instant (`--now`, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_returns_its_instant() {
        let t: Timestamp = "2026-11-23T10:00:00Z".parse().expect("valid timestamp");
        let clock = FixedClock(t);
        assert_eq!(clock.now(), t);
        assert_eq!(clock.now(), t, "a fixed clock never moves");
    }

    #[test]
    fn system_clock_moves_forward() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
    }
}
