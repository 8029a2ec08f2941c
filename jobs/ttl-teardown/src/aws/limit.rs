//! A client-side rate limit: at most one call per interval, per provider (so per account and
//! region), shared by every task of the provider.
//!
//! AWS throttles per account and region, and the job shares that budget with everything else
//! running in the account (consoles, Terraform, other controllers). Pacing our own calls keeps us
//! from eating it; the SDK's retry handles the throttling that happens anyway. A few lines of
//! our own instead of a crate: the rule is simple (space calls `interval` apart, first come first
//! served) and has no burst to reason about.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces calls at least `interval` apart.
#[derive(Debug)]
pub(super) struct RateLimiter {
    interval: Duration,
    /// The earliest time the next call may start.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` calls per second (at least one).
    pub fn per_second(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// Waits for this call's slot. Slots are handed out in call order; the lock is held only to
    /// reserve a slot, never across the wait.
    pub async fn acquire(&self) {
        let slot = {
            // A poisoned lock only means another task panicked while holding a plain Instant.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_spaced_by_the_interval() {
        let limiter = RateLimiter::per_second(20);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        // The first call is immediate, the next five 50 ms apart each.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[tokio::test]
    async fn concurrent_callers_share_the_budget() {
        let limiter = std::sync::Arc::new(RateLimiter::per_second(20));
        let start = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert!(start.elapsed() >= Duration::from_millis(250));
    }
}
