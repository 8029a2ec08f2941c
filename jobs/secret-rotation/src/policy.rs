//! Step 1, classify: a secret's age against its type's policy, as of the run's instant. Pure
//! functions of their inputs (no clock, no I/O), so the 100,000-secret classification of the
//! bench is this module alone.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::Policy;

/// Where a secret stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Younger than `period - notice_before`.
    Ok,
    /// Within `notice_before` of its due date: the owner is told (once per due date).
    Notice,
    /// At or past its due date.
    Due,
    /// Past its due date by more than `overdue_after`.
    Overdue,
}

impl Phase {
    /// The lowercase name used in findings and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Notice => "notice",
            Phase::Due => "due",
            Phase::Overdue => "overdue",
        }
    }
}

/// A secret's age and due date as of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// When it was last rotated (or created).
    pub rotated_at: Timestamp,
    /// `now - rotated_at` (negative if the record is from the future).
    pub age: SignedDuration,
    /// `rotated_at + period`.
    pub due_at: Timestamp,
    /// Where it stands.
    pub phase: Phase,
}

impl Classification {
    /// Whole days of age (rounded down).
    pub fn age_days(&self) -> i64 {
        self.age.as_secs().div_euclid(86_400)
    }
}

/// A `Duration` as a signed one, saturating (config durations are far below the limit).
fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// `t + d`, saturating at the end of time instead of failing (a huge configured period must not
/// make anything due).
fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(signed(d)).unwrap_or(Timestamp::MAX)
}

/// Classifies a secret last rotated at `rotated_at`.
pub fn classify(
    rotated_at: Timestamp,
    policy: &Policy,
    overdue_after: Duration,
    now: Timestamp,
) -> Classification {
    let due_at = add(rotated_at, policy.period);
    let notice_from = due_at
        .checked_sub(signed(policy.notice_before))
        .unwrap_or(Timestamp::MIN);
    let phase = if now >= add(due_at, overdue_after) && due_at != Timestamp::MAX {
        Phase::Overdue
    } else if now >= due_at {
        Phase::Due
    } else if now >= notice_from {
        Phase::Notice
    } else {
        Phase::Ok
    };
    Classification {
        rotated_at,
        age: now.duration_since(rotated_at),
        due_at,
        phase,
    }
}

/// Whether this run rotates the secret: an automatic type that is due, or, in the forced run,
/// one that would become due before the next forced run (`now + horizon`).
pub fn should_rotate(
    c: &Classification,
    policy: &Policy,
    forced: bool,
    horizon: Duration,
    now: Timestamp,
) -> bool {
    policy.auto && (c.phase >= Phase::Due || (forced && c.due_at <= add(now, horizon)))
}

/// Whether the owner should get a notice now: a manual type from its notice date on (action
/// required), an automatic one during its notice window; once per due date (`sent_for` is the
/// due date of the last notice sent).
pub fn needs_notice(c: &Classification, policy: &Policy, sent_for: Option<Timestamp>) -> bool {
    let window = if policy.auto {
        c.phase == Phase::Notice
    } else {
        c.phase >= Phase::Notice
    };
    window && sent_for != Some(c.due_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretType;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    const NOW: &str = "2026-12-01T00:00:00Z";

    fn days_ago(d: i64) -> Timestamp {
        at(NOW) - SignedDuration::from_hours(24 * d)
    }

    #[test]
    fn phases_follow_the_api_key_policy() {
        let p = SecretType::ApiKey.default_policy();
        let week = Duration::from_secs(7 * 86_400);
        let phase = |d| classify(days_ago(d), &p, week, at(NOW)).phase;
        assert_eq!(phase(0), Phase::Ok);
        assert_eq!(phase(22), Phase::Ok);
        assert_eq!(phase(23), Phase::Notice, "7 days before day 30");
        assert_eq!(phase(29), Phase::Notice);
        assert_eq!(phase(30), Phase::Due);
        assert_eq!(phase(36), Phase::Due);
        assert_eq!(phase(37), Phase::Overdue);
        let c = classify(days_ago(10), &p, week, at(NOW));
        assert_eq!(c.age_days(), 10);
        assert_eq!(c.due_at, days_ago(10) + SignedDuration::from_hours(24 * 30));
    }

    #[test]
    fn the_forced_run_rotates_what_would_become_due_before_the_next_one() {
        let p = SecretType::ApiKey.default_policy();
        let week = Duration::from_secs(7 * 86_400);
        let horizon = Duration::from_secs(31 * 86_400);
        let c = classify(days_ago(5), &p, week, at(NOW));
        assert!(!should_rotate(&c, &p, false, horizon, at(NOW)));
        assert!(
            should_rotate(&c, &p, true, horizon, at(NOW)),
            "due in 25 days"
        );
        let db = SecretType::DatabasePassword.default_policy();
        let young = classify(days_ago(5), &db, week, at(NOW));
        assert!(
            !should_rotate(&young, &db, true, horizon, at(NOW)),
            "due in 85 days"
        );
        let manual = SecretType::EncryptionKey.default_policy();
        let old = classify(days_ago(400), &manual, week, at(NOW));
        assert_eq!(old.phase, Phase::Overdue);
        assert!(
            !should_rotate(&old, &manual, true, horizon, at(NOW)),
            "manual: never"
        );
    }

    #[test]
    fn notices_go_once_per_due_date() {
        let p = SecretType::ApiKey.default_policy();
        let week = Duration::from_secs(7 * 86_400);
        let c = classify(days_ago(25), &p, week, at(NOW));
        assert!(needs_notice(&c, &p, None));
        assert!(
            !needs_notice(&c, &p, Some(c.due_at)),
            "already sent for this due date"
        );
        assert!(needs_notice(
            &c,
            &p,
            Some(c.due_at - SignedDuration::from_hours(24 * 30))
        ));
        let due = classify(days_ago(31), &p, week, at(NOW));
        assert!(
            !needs_notice(&due, &p, None),
            "an automatic type is rotated, not noticed"
        );
        let manual = SecretType::EncryptionKey.default_policy();
        let m = classify(days_ago(370), &manual, week, at(NOW));
        assert!(needs_notice(&m, &manual, None), "manual: action required");
    }

    #[test]
    fn a_huge_period_saturates_instead_of_wrapping() {
        let p = Policy {
            period: Duration::from_secs(u64::MAX / 4),
            auto: true,
            notice_before: Duration::from_secs(86_400),
        };
        let c = classify(days_ago(1000), &p, Duration::from_secs(1), at(NOW));
        assert_eq!(c.phase, Phase::Ok);
    }
}
