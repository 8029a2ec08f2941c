//! A client-side rate limit per (account, region): a token bucket shaped like AWS's own.
//!
//! AWS throttles per account and region with token buckets (EC2: a burst of 100 describe calls,
//! refilled at 20 per second), and the job shares that budget with everything else running in
//! the account (consoles, Terraform, controllers). Spending at most the refill rate after the
//! burst keeps us from eating it; the SDK's retry handles the throttling that happens anyway. A
//! bucket rather than fixed pacing so that a small scan (an empty region: a handful of calls)
//! starts at once and finishes in milliseconds instead of waiting 50 ms before every call.
//!
//! A few lines of our own instead of a crate: one mutex around (tokens, last refill), callers
//! reserve a slot in arrival order and sleep outside the lock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The EC2 describe budget: 100 calls at once, 20 per second after that.
pub const DEFAULT_BURST: u32 = 100;
/// Calls per second once the burst is spent.
pub const DEFAULT_REFILL_PER_SECOND: u32 = 20;

/// A token bucket shared by every task of one scope.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `at` (negative: reserved by callers still waiting).
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A bucket of `burst` tokens refilled at `per_second` (both at least 1).
    pub fn new(burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            burst,
            per_second: f64::from(per_second.max(1)),
            state: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// Waits for this call's token. Tokens are handed out in call order; the lock is held only
    /// to reserve one, never across the wait.
    pub async fn acquire(&self) {
        let wait = {
            // A poisoned lock only means another task panicked while holding two numbers.
            let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refilled = now.duration_since(b.at).as_secs_f64() * self.per_second;
            b.tokens = (b.tokens + refilled).min(self.burst);
            b.at = now;
            b.tokens -= 1.0;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / self.per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_burst_is_free_then_calls_come_at_the_refill_rate() {
        let limiter = RateLimiter::new(5, 20);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the burst waits for nothing"
        );
        for _ in 0..4 {
            limiter.acquire().await;
        }
        // Four more at 20/s: 200 ms (the clock is paused, so this is exact).
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_millis(199)..=Duration::from_millis(201)).contains(&elapsed),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_bucket_and_it_refills_while_idle() {
        let limiter = std::sync::Arc::new(RateLimiter::new(2, 10));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        // Two free, two more at 10/s.
        assert!(start.elapsed() >= Duration::from_millis(199));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(again.elapsed(), Duration::ZERO, "refilled to the burst");
    }
}
