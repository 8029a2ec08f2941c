//! The teardown decision for one resource whose tags parsed cleanly: is it eligible, when is
//! its deadline, which stage is it in, and what should this run do about it.
//!
//! Pure functions of the tags, the [`TagPolicy`] and the run's `now`; nothing here reads the
//! clock or touches a cloud. The whitelist and the account allowlist are checked by the caller.
//!
//! Stages move `ok → warn-48h → warn-24h → expired` as the deadline approaches. Each warning is
//! sent once per deadline: after sending one, the caller records
//! [`Decision::notified_tag_value`] in the notified-stage tag, and a later run that finds that
//! stage (or a later one) recorded for the *same* deadline stays quiet. A snooze moves the
//! deadline, which makes the old record irrelevant, so the warnings start over.
//!
//! Architecture Invariant: [`Action::Delete`] is only produced for an eligible resource whose
//! deadline has passed and (unless `require_warning_before_delete` is off) whose owner was warned
//! for that deadline, at least `notice_period` (24h) before `now` when the warning's time is
//! recorded.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::tags::{ResourceTags, TagPolicy};

pub use crate::stage::{
    NotifiedStage, ParseNotifiedStageError, ParseStageError, Stage, notified_tag_value,
    parse_notified_tag_value,
};

/// What this run should do with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Nothing: not eligible, not due, or already warned for this deadline.
    #[serde(rename = "none")]
    None,
    /// Send the 48-hour warning, then record it.
    #[serde(rename = "warn-48h")]
    Warn48h,
    /// Send the final (24-hour) warning, then record it.
    #[serde(rename = "warn-24h")]
    Warn24h,
    /// Tear the resource down.
    #[serde(rename = "delete")]
    Delete,
}

impl Action {
    /// The stable name: `none`, `warn-48h`, `warn-24h` or `delete` (as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Warn48h => "warn-48h",
            Self::Warn24h => "warn-24h",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `created_at + ttl + extended days`, or the instant the owner released the resource
/// ("Delete now") when that is earlier. Saturates at the latest representable instant rather
/// than failing: a deadline too far away to represent is a deadline that never comes.
pub fn deadline(tags: &ResourceTags) -> Timestamp {
    let natural = tags
        .created_at
        .checked_add(tags.ttl)
        .and_then(|t| t.checked_add(tags.extension()))
        .unwrap_or(Timestamp::MAX);
    match tags.released_at {
        Some(released) => natural.min(released),
        None => natural,
    }
}

/// The stage at `now`: expired when `now >= deadline`, warn-24h when 24 hours or less remain,
/// warn-48h when 48 hours or less remain, ok otherwise.
pub fn stage_at(deadline: Timestamp, now: Timestamp) -> Stage {
    if now >= deadline {
        return Stage::Expired;
    }
    let left = deadline.duration_since(now);
    if left <= SignedDuration::from_hours(24) {
        Stage::Warn24h
    } else if left <= SignedDuration::from_hours(48) {
        Stage::Warn48h
    } else {
        Stage::Ok
    }
}

/// Why a resource is never torn down. Stable and kebab-case, for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ineligible {
    /// The environment is one of `prod_environments`.
    Production,
    /// The environment is not in `allowed_environments` (only possible for tags not built by
    /// `parse_tags`; refusing is the safe answer).
    UnknownEnvironment,
    /// The owner did not opt in: auto-teardown is false.
    AutoTeardownDisabled,
    /// The data class is one of `restricted_data_classes`.
    RestrictedDataClass,
    /// The data class is not in `allowed_data_classes` (as for `UnknownEnvironment`).
    UnknownDataClass,
}

impl Ineligible {
    /// The stable kebab-case name, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::UnknownEnvironment => "unknown-environment",
            Self::AutoTeardownDisabled => "auto-teardown-disabled",
            Self::RestrictedDataClass => "restricted-data-class",
            Self::UnknownDataClass => "unknown-data-class",
        }
    }
}

/// The outcome of [`evaluate`], with the reasons that belong in the log, the plan and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the resource may ever be torn down by this job (before whitelist and allowlist).
    pub eligible: bool,
    /// Why it is or is not eligible, e.g. `environment "prod" is production` or
    /// `eligible: non-prod (dev), auto-teardown=true, data-class=internal`. When several things
    /// block it, all are listed, separated by `; `.
    pub reason: String,
    /// What blocks eligibility, empty when eligible.
    pub blockers: Vec<Ineligible>,
    /// When the resource expires: created_at + ttl + extended days.
    pub deadline: Timestamp,
    /// The stage at `now`, computed whether or not the resource is eligible.
    pub stage: Stage,
    /// What to do this run; always [`Action::None`] when not eligible.
    pub action: Action,
    /// Why this action, e.g. `warn-48h already sent for deadline 2026-11-25T10:00:00Z`.
    pub action_reason: String,
    /// The instant the decision was made for (the run's `now`); a warning sent on this decision
    /// is recorded as sent then.
    pub evaluated_at: Timestamp,
    /// The earliest instant this resource can be deleted: its deadline, or later when the
    /// owner's last warning (sent now, or recorded) was less than `notice_period` before it.
    /// Snooze links sent with a warning stay valid until then.
    pub delete_not_before: Timestamp,
}

impl Decision {
    /// The notified-stage tag value to record once the warning of this decision has been sent,
    /// or `None` when the action is not a warning. Records the warning actually sent, which is
    /// `warn-24h` for the final warning an expired, never-warned resource gets, and when.
    pub fn notified_tag_value(&self) -> Option<String> {
        let stage = match self.action {
            Action::Warn48h => Stage::Warn48h,
            Action::Warn24h => Stage::Warn24h,
            Action::None | Action::Delete => return None,
        };
        Some(notified_tag_value(stage, self.deadline, self.evaluated_at))
    }
}

/// Decides what to do with one resource at `now`.
///
/// Eligible only when the environment is not production, auto-teardown is true and the data
/// class is not restricted. A warning is emitted only when no warning of that stage or a later
/// one was recorded for the current deadline; reaching warn-24h without warn-48h having been
/// sent emits only warn-24h. An expired eligible resource is deleted, except that with
/// `require_warning_before_delete` (the default) one never warned for this deadline gets a final
/// warn-24h first.
pub fn evaluate(tags: &ResourceTags, policy: &TagPolicy, now: Timestamp) -> Decision {
    let keys = &policy.keys;
    let deadline = deadline(tags);
    let stage = stage_at(deadline, now);

    let mut blockers = Vec::new();
    let mut reasons = Vec::new();
    if policy.prod_environments.contains(&tags.environment) {
        blockers.push(Ineligible::Production);
        reasons.push(format!(
            "{} {:?} is production",
            keys.environment, tags.environment
        ));
    } else if !policy.allowed_environments.contains(&tags.environment) {
        blockers.push(Ineligible::UnknownEnvironment);
        reasons.push(format!(
            "{} {:?} is not a known environment",
            keys.environment, tags.environment
        ));
    }
    if !tags.auto_teardown {
        blockers.push(Ineligible::AutoTeardownDisabled);
        reasons.push(format!("{} is false", keys.auto_teardown));
    }
    if policy.restricted_data_classes.contains(&tags.data_class) {
        blockers.push(Ineligible::RestrictedDataClass);
        reasons.push(format!(
            "{} {:?} is never torn down",
            keys.data_class, tags.data_class
        ));
    } else if !policy.allowed_data_classes.contains(&tags.data_class) {
        blockers.push(Ineligible::UnknownDataClass);
        reasons.push(format!(
            "{} {:?} is not a known data class",
            keys.data_class, tags.data_class
        ));
    }

    let eligible = blockers.is_empty();
    let (reason, action, action_reason) = if eligible {
        let reason = format!(
            "eligible: non-prod ({}), {}=true, {}={}",
            tags.environment, keys.auto_teardown, keys.data_class, tags.data_class
        );
        let (action, action_reason) = match tags.released_at {
            // The owner asked for the deletion from a signed link: that is consent, so neither
            // a warning for the new deadline nor the notice period is waited for.
            Some(released) if now >= released => (
                Action::Delete,
                format!(
                    "released for deletion by its owner at {released}: deleted at the next run, \
                     without a further notice period (the release is the owner's consent)"
                ),
            ),
            _ => action_for(stage, deadline, tags.notified, policy, now),
        };
        (reason, action, action_reason)
    } else {
        (
            reasons.join("; "),
            Action::None,
            "not eligible, nothing to do".to_owned(),
        )
    };
    // The owner's last warning: the one this run sends, else the one recorded for this deadline.
    let last_warning = match action {
        Action::Warn48h | Action::Warn24h => Some(now),
        Action::None | Action::Delete => recorded_sent_at(tags.notified, deadline),
    };
    let delete_not_before = last_warning.map_or(deadline, |sent| {
        not_before_after_warning(sent, deadline, policy)
    });
    Decision {
        eligible,
        reason,
        blockers,
        deadline,
        stage,
        action,
        action_reason,
        evaluated_at: now,
        delete_not_before,
    }
}

/// When the warning recorded for this very deadline was sent, if the record says.
fn recorded_sent_at(notified: Option<NotifiedStage>, deadline: Timestamp) -> Option<Timestamp> {
    notified
        .filter(|n| n.deadline == deadline)
        .and_then(|n| n.sent_at)
}

/// The earliest deletion after a warning sent at `sent`: the deadline, or `notice_period` after
/// the warning when that is later. Saturates (never deletes) rather than overflowing.
fn not_before_after_warning(sent: Timestamp, deadline: Timestamp, policy: &TagPolicy) -> Timestamp {
    sent.checked_add(policy.notice_period)
        .unwrap_or(Timestamp::MAX)
        .max(deadline)
}

fn action_for(
    stage: Stage,
    deadline: Timestamp,
    notified: Option<NotifiedStage>,
    policy: &TagPolicy,
    now: Timestamp,
) -> (Action, String) {
    // Only a record about this very deadline counts: a snooze (or any edit) that moved the
    // deadline starts the warnings over.
    let recorded = notified.filter(|n| n.deadline == deadline).map(|n| n.stage);
    let stale = match notified {
        Some(n) if n.deadline != deadline => {
            format!(" (ignoring {n}, recorded for another deadline)")
        }
        _ => String::new(),
    };
    let already = |sent: Stage| format!("{sent} already sent for deadline {deadline}");
    match stage {
        Stage::Ok => (
            Action::None,
            format!("deadline {deadline} is more than 48h away"),
        ),
        Stage::Warn48h if recorded >= Some(Stage::Warn48h) => {
            (Action::None, already(recorded.unwrap_or(stage)))
        }
        Stage::Warn48h => (
            Action::Warn48h,
            format!("deadline {deadline} is within 48h{stale}"),
        ),
        Stage::Warn24h if recorded >= Some(Stage::Warn24h) => {
            (Action::None, already(recorded.unwrap_or(stage)))
        }
        Stage::Warn24h => (
            Action::Warn24h,
            format!("deadline {deadline} is within 24h{stale}"),
        ),
        Stage::Expired if recorded >= Some(Stage::Warn48h) => {
            // Older records carry no time sent: they count as sent long ago.
            let waiting = recorded_sent_at(notified, deadline)
                .map(|sent| (sent, not_before_after_warning(sent, deadline, policy)))
                .filter(|(_, not_before)| now < *not_before);
            match waiting {
                Some((sent, not_before)) => (
                    Action::None,
                    format!(
                        "expired at {deadline}, but the owner's last warning went out at {sent}: \
                         deletion not before {not_before} (notice_period {})",
                        crate::tags::format_duration(policy.notice_period)
                    ),
                ),
                None => (
                    Action::Delete,
                    format!("expired at {deadline}, owner was warned"),
                ),
            }
        }
        Stage::Expired if !policy.require_warning_before_delete => (
            Action::Delete,
            format!("expired at {deadline}, no warning was recorded for this deadline{stale}"),
        ),
        Stage::Expired => (
            Action::Warn24h,
            format!(
                "expired at {deadline} but no warning was recorded for this deadline{stale}: \
                 final warning now, deletion not before {}",
                not_before_after_warning(now, deadline, policy)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::testing::{TagsBuilder, ts};

    /// The valid fixture's deadline: 2026-11-01T10:00:00Z + 7d.
    const DEADLINE: &str = "2026-11-08T10:00:00Z";

    fn at(offset_secs: i64) -> Timestamp {
        ts(DEADLINE)
            .checked_add(SignedDuration::from_secs(offset_secs))
            .unwrap()
    }

    const H: i64 = 3600;

    fn decide(builder: TagsBuilder, now: Timestamp) -> Decision {
        evaluate(&builder.build(), &TagPolicy::default(), now)
    }

    fn notified(stage: Stage, deadline: &str) -> TagsBuilder {
        TagsBuilder::valid().with("ttl-notified-stage", &format!("{stage}@{deadline}"))
    }

    #[test]
    fn deadline_is_created_at_plus_ttl_plus_extensions() {
        assert_eq!(deadline(&TagsBuilder::valid().build()), ts(DEADLINE));
        let snoozed = TagsBuilder::valid()
            .with("ttl", "12h")
            .with("ttl-extension-count", "2")
            .with("ttl-extended-days", "21")
            .build();
        assert_eq!(deadline(&snoozed), ts("2026-11-22T22:00:00Z"));
    }

    #[test]
    fn deadline_saturates_instead_of_overflowing() {
        let mut tags = TagsBuilder::valid().build();
        tags.created_at = Timestamp::MAX;
        assert_eq!(deadline(&tags), Timestamp::MAX);
        assert_eq!(stage_at(deadline(&tags), ts(DEADLINE)), Stage::Ok);
    }

    #[test]
    fn stage_boundaries() {
        let d = ts(DEADLINE);
        let cases = [
            (-30 * 24 * H, Stage::Ok),
            (-48 * H - 1, Stage::Ok),
            (-48 * H, Stage::Warn48h),
            (-24 * H - 1, Stage::Warn48h),
            (-24 * H, Stage::Warn24h),
            (-1, Stage::Warn24h),
            (0, Stage::Expired),
            (1, Stage::Expired),
            (365 * 24 * H, Stage::Expired),
        ];
        for (offset, want) in cases {
            assert_eq!(stage_at(d, at(offset)), want, "deadline {offset:+}s");
        }
        // Sub-second precision is honoured at the boundary.
        let just_before = d.checked_sub(SignedDuration::from_nanos(1)).unwrap();
        assert_eq!(stage_at(d, just_before), Stage::Warn24h);
    }

    #[test]
    fn stage_names_and_serde() {
        let names = ["ok", "warn-48h", "warn-24h", "expired"];
        for (stage, name) in Stage::ALL.into_iter().zip(names) {
            assert_eq!(stage.as_str(), name);
            assert_eq!(stage.to_string(), name);
            assert_eq!(name.parse::<Stage>(), Ok(stage));
            assert_eq!(
                serde_json::to_string(&stage).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<Stage>(&format!("\"{name}\"")).unwrap(),
                stage
            );
        }
        assert!("Warn-48h".parse::<Stage>().is_err());
        assert!(Stage::Ok < Stage::Warn48h && Stage::Warn48h < Stage::Warn24h);
        assert!(Stage::Warn24h < Stage::Expired);
    }

    #[test]
    fn action_names_and_serde() {
        let cases = [
            (Action::None, "none"),
            (Action::Warn48h, "warn-48h"),
            (Action::Warn24h, "warn-24h"),
            (Action::Delete, "delete"),
        ];
        for (action, name) in cases {
            assert_eq!(action.as_str(), name);
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn notified_tag_value_round_trips() {
        let sent = ts("2026-11-23T10:05:00Z");
        let value = notified_tag_value(Stage::Warn48h, ts("2026-11-25T10:00:00Z"), sent);
        assert_eq!(value, "warn-48h@2026-11-25T10:00:00Z@2026-11-23T10:05:00Z");
        let parsed = parse_notified_tag_value(&value).unwrap();
        assert_eq!(parsed.stage, Stage::Warn48h);
        assert_eq!(parsed.deadline, ts("2026-11-25T10:00:00Z"));
        assert_eq!(parsed.sent_at, Some(sent));

        // Fractional deadlines (from a fractional created_at) survive the round trip exactly.
        let fractional = ts("2026-11-25T10:00:00.123456789Z");
        let value = notified_tag_value(Stage::Warn24h, fractional, sent);
        assert_eq!(
            value,
            "warn-24h@2026-11-25T10:00:00.123456789Z@2026-11-23T10:05:00Z"
        );
        assert_eq!(value.parse::<NotifiedStage>().unwrap().deadline, fractional);

        // An offset is the same instant; a record without the time sent (older versions) reads.
        let offset = parse_notified_tag_value("warn-24h@2026-11-25T12:00:00+02:00").unwrap();
        assert_eq!(offset.deadline, ts("2026-11-25T10:00:00Z"));
        assert_eq!(offset.sent_at, None);
    }

    #[test]
    fn notified_tag_value_parse_errors() {
        let cases = [
            ("warn-48h", "expected <stage>@<deadline>"),
            ("", "expected <stage>@<deadline>"),
            ("soon@2026-11-25T10:00:00Z", "unknown stage \"soon\""),
            ("warn-48h@", "invalid timestamp \"\""),
            ("warn-48h@2026-11-25T10:00:00", "invalid timestamp"),
            (
                "warn-48h@2026-11-25T10:00:00Z@yesterday",
                "invalid timestamp \"yesterday\"",
            ),
            (
                "warn-48h @2026-11-25T10:00:00Z",
                "unknown stage \"warn-48h \"",
            ),
        ];
        for (value, want) in cases {
            let err = parse_notified_tag_value(value).unwrap_err().to_string();
            assert!(err.starts_with(want), "{value:?}: {err}");
        }
    }

    #[test]
    fn eligible_reason() {
        let decision = decide(TagsBuilder::valid(), at(-72 * H));
        assert!(decision.eligible);
        assert!(decision.blockers.is_empty());
        assert_eq!(
            decision.reason,
            "eligible: non-prod (dev), auto-teardown=true, data-class=internal"
        );
        assert_eq!(decision.stage, Stage::Ok);
        assert_eq!(decision.action, Action::None);
        assert_eq!(decision.deadline, ts(DEADLINE));
        assert_eq!(
            decision.action_reason,
            "deadline 2026-11-08T10:00:00Z is more than 48h away"
        );
    }

    #[test]
    fn reasons_for_each_ineligibility_even_when_expired() {
        let cases = [
            (
                TagsBuilder::valid().with("environment", "prod"),
                vec![Ineligible::Production],
                r#"environment "prod" is production"#,
            ),
            (
                TagsBuilder::valid().with("auto-teardown", "false"),
                vec![Ineligible::AutoTeardownDisabled],
                "auto-teardown is false",
            ),
            (
                TagsBuilder::valid().with("data-class", "restricted"),
                vec![Ineligible::RestrictedDataClass],
                r#"data-class "restricted" is never torn down"#,
            ),
            (
                TagsBuilder::valid()
                    .with("environment", "prod")
                    .with("auto-teardown", "false")
                    .with("data-class", "restricted"),
                vec![
                    Ineligible::Production,
                    Ineligible::AutoTeardownDisabled,
                    Ineligible::RestrictedDataClass,
                ],
                r#"environment "prod" is production; auto-teardown is false; data-class "restricted" is never torn down"#,
            ),
        ];
        for (builder, blockers, reason) in cases {
            // Long expired and warned: only eligibility can stop the deletion.
            let builder = builder.with("ttl-notified-stage", &format!("warn-24h@{DEADLINE}"));
            let decision = decide(builder, at(30 * 24 * H));
            assert!(!decision.eligible, "{reason}");
            assert_eq!(decision.blockers, blockers);
            assert_eq!(decision.reason, reason);
            assert_eq!(decision.stage, Stage::Expired);
            assert_eq!(decision.action, Action::None, "{reason}");
            assert_eq!(decision.notified_tag_value(), None);
        }
    }

    #[test]
    fn other_prod_environments_are_configurable() {
        let policy = TagPolicy {
            prod_environments: vec!["prod".into(), "demo".into()],
            ..TagPolicy::default()
        };
        let tags = TagsBuilder::valid().with("environment", "demo").build();
        let decision = evaluate(&tags, &policy, at(H));
        assert_eq!(decision.blockers, [Ineligible::Production]);
        assert_eq!(decision.action, Action::None);
    }

    #[test]
    fn hand_built_tags_outside_the_policy_are_refused() {
        let mut tags = TagsBuilder::valid().build();
        tags.environment = "Prod".into();
        tags.data_class = "secret".into();
        let decision = evaluate(&tags, &TagPolicy::default(), at(H));
        assert_eq!(
            decision.blockers,
            [Ineligible::UnknownEnvironment, Ineligible::UnknownDataClass]
        );
        assert_eq!(
            decision.reason,
            r#"environment "Prod" is not a known environment; data-class "secret" is not a known data class"#
        );
        assert_eq!(decision.action, Action::None);
    }

    #[test]
    fn warnings_are_sent_once_per_deadline() {
        use Stage::{Warn24h as W24, Warn48h as W48};
        let warn48 = at(-47 * H);
        let warn24 = at(-23 * H);
        let expired = at(H);
        #[rustfmt::skip]
        let cases: &[(Option<Stage>, Timestamp, Action)] = &[
            // Nothing recorded yet.
            (None, at(-49 * H), Action::None),
            (None, warn48, Action::Warn48h),
            (None, warn24, Action::Warn24h), // warn-48h missed: only warn-24h
            // warn-48h recorded for this deadline.
            (Some(W48), warn48, Action::None),
            (Some(W48), warn24, Action::Warn24h),
            (Some(W48), expired, Action::Delete),
            // warn-24h recorded for this deadline.
            (Some(W24), warn48, Action::None),
            (Some(W24), warn24, Action::None),
            (Some(W24), expired, Action::Delete),
            // An `ok` record is not a warning.
            (Some(Stage::Ok), warn48, Action::Warn48h),
            (Some(Stage::Ok), expired, Action::Warn24h),
        ];
        for (recorded, now, want) in cases {
            let builder = match recorded {
                Some(stage) => notified(*stage, DEADLINE),
                None => TagsBuilder::valid(),
            };
            let decision = decide(builder, *now);
            assert_eq!(decision.action, *want, "recorded {recorded:?} at {now}");
        }
    }

    #[test]
    fn action_reasons() {
        let reason = |builder, now| decide(builder, now).action_reason;
        assert_eq!(
            reason(TagsBuilder::valid(), at(-47 * H)),
            "deadline 2026-11-08T10:00:00Z is within 48h"
        );
        assert_eq!(
            reason(notified(Stage::Warn48h, DEADLINE), at(-47 * H)),
            "warn-48h already sent for deadline 2026-11-08T10:00:00Z"
        );
        assert_eq!(
            reason(notified(Stage::Warn24h, DEADLINE), at(-47 * H)),
            "warn-24h already sent for deadline 2026-11-08T10:00:00Z"
        );
        assert_eq!(
            reason(notified(Stage::Warn24h, DEADLINE), at(0)),
            "expired at 2026-11-08T10:00:00Z, owner was warned"
        );
        assert_eq!(
            reason(TagsBuilder::valid(), at(0)),
            "expired at 2026-11-08T10:00:00Z but no warning was recorded for this deadline: \
             final warning now, deletion not before 2026-11-09T10:00:00Z"
        );
    }

    #[test]
    fn a_record_for_an_old_deadline_is_ignored() {
        // Warned for the original deadline, then snoozed by a week.
        let snoozed = notified(Stage::Warn24h, DEADLINE)
            .with("ttl-extension-count", "1")
            .with("ttl-extended-days", "7");
        let new_deadline = ts("2026-11-15T10:00:00Z");
        assert_eq!(deadline(&snoozed.build()), new_deadline);

        let at_new = |h: i64| {
            new_deadline
                .checked_add(SignedDuration::from_hours(h))
                .unwrap()
        };
        let decision = decide(snoozed.clone(), at_new(-100));
        assert_eq!((decision.stage, decision.action), (Stage::Ok, Action::None));

        let decision = decide(snoozed.clone(), at_new(-47));
        assert_eq!(decision.action, Action::Warn48h);
        assert_eq!(
            decision.action_reason,
            "deadline 2026-11-15T10:00:00Z is within 48h (ignoring \
             warn-24h@2026-11-08T10:00:00Z, recorded for another deadline)"
        );
        assert_eq!(
            decision.notified_tag_value().as_deref(),
            Some("warn-48h@2026-11-15T10:00:00Z@2026-11-13T11:00:00Z")
        );

        // Expired at the new deadline with only the old record: warn before deleting.
        let decision = decide(snoozed.clone(), at_new(1));
        assert_eq!(decision.action, Action::Warn24h);

        // Once the new warning is recorded the old one no longer matters.
        let rewarned = snoozed.with("ttl-notified-stage", "warn-48h@2026-11-15T10:00:00Z");
        assert_eq!(decide(rewarned.clone(), at_new(-30)).action, Action::None);
        assert_eq!(
            decide(rewarned.clone(), at_new(-23)).action,
            Action::Warn24h
        );
        assert_eq!(decide(rewarned, at_new(0)).action, Action::Delete);
    }

    #[test]
    fn a_deadline_moved_earlier_also_resets_the_warnings() {
        // Recorded for a later deadline than the current one (e.g. ttl shortened by hand).
        let builder = notified(Stage::Warn24h, "2026-11-20T10:00:00Z");
        assert_eq!(decide(builder.clone(), at(-47 * H)).action, Action::Warn48h);
        assert_eq!(decide(builder, at(H)).action, Action::Warn24h);
    }

    #[test]
    fn expired_without_any_warning_gets_a_final_warning_first() {
        let decision = decide(TagsBuilder::valid(), at(30 * 24 * H));
        assert_eq!(decision.stage, Stage::Expired);
        assert_eq!(decision.action, Action::Warn24h);
        // Links sent with it stay valid until the resource can go: a day from now.
        assert_eq!(decision.delete_not_before, at(31 * 24 * H));
        let recorded = decision.notified_tag_value().expect("a warning to record");
        assert_eq!(
            recorded,
            format!("warn-24h@{DEADLINE}@2026-12-08T10:00:00Z")
        );

        // The next runs find the record and wait out the notice period, then delete.
        let next = TagsBuilder::valid().with("ttl-notified-stage", &recorded);
        let waiting = decide(next.clone(), at(30 * 24 * H + H));
        assert_eq!(
            (waiting.stage, waiting.action),
            (Stage::Expired, Action::None)
        );
        assert_eq!(
            waiting.action_reason,
            "expired at 2026-11-08T10:00:00Z, but the owner's last warning went out at \
             2026-12-08T10:00:00Z: deletion not before 2026-12-09T10:00:00Z (notice_period 1d)"
        );
        assert_eq!(waiting.delete_not_before, at(31 * 24 * H));
        assert_eq!(
            decide(next.clone(), at(31 * 24 * H - 1)).action,
            Action::None
        );
        assert_eq!(decide(next, at(31 * 24 * H)).action, Action::Delete);
    }

    #[test]
    fn every_owner_gets_the_notice_period_between_last_warning_and_deletion() {
        let with = |value: &str| TagsBuilder::valid().with("ttl-notified-stage", value);
        // Warned on time (48h ahead): deleted at the deadline; links valid until then.
        let on_time = with("warn-48h@2026-11-08T10:00:00Z@2026-11-06T11:00:00Z");
        assert_eq!(decide(on_time.clone(), at(0)).action, Action::Delete);
        let d = decide(TagsBuilder::valid(), at(-47 * H));
        assert_eq!(d.delete_not_before, ts(DEADLINE));
        // First warned 6 hours ahead (the job was down): deleted 18 hours after the deadline.
        let late = with("warn-24h@2026-11-08T10:00:00Z@2026-11-08T04:00:00Z");
        assert_eq!(decide(late.clone(), at(17 * H)).action, Action::None);
        assert_eq!(decide(late.clone(), at(18 * H)).action, Action::Delete);
        let d = decide(TagsBuilder::valid(), at(-6 * H));
        assert_eq!(d.action, Action::Warn24h);
        assert_eq!(d.delete_not_before, at(18 * H));
        // A record without the time sent (an older version) counts as sent long ago.
        assert_eq!(
            decide(with("warn-24h@2026-11-08T10:00:00Z"), at(0)).action,
            Action::Delete
        );
        // A custom period.
        let policy = TagPolicy {
            notice_period: SignedDuration::from_hours(72),
            ..TagPolicy::default()
        };
        let d = evaluate(&on_time.clone().build(), &policy, at(0));
        assert_eq!(d.action, Action::None, "{}", d.action_reason);
        assert_eq!(d.delete_not_before, at(25 * H));
        // A period too long to add saturates: never deleted, rather than deleted at once.
        let policy = TagPolicy {
            notice_period: SignedDuration::MAX,
            ..TagPolicy::default()
        };
        let d = evaluate(&on_time.build(), &policy, at(1000 * 24 * H));
        assert_eq!(d.action, Action::None, "{}", d.action_reason);
        assert_eq!(d.delete_not_before, Timestamp::MAX);
    }

    #[test]
    fn a_release_by_the_owner_is_consent_to_delete_at_the_next_run() {
        // Warned 48h ahead for the natural deadline, then released from the email 40h ahead.
        let released = "2026-11-06T18:00:00Z";
        let builder = notified(Stage::Warn48h, DEADLINE).with("ttl-released-at", released);
        let tags = builder.build();
        assert_eq!(tags.released_at, Some(ts(released)));
        assert_eq!(deadline(&tags), ts(released));
        // The next run deletes: no warning for the new deadline, no notice period.
        let d = decide(builder.clone(), ts("2026-11-06T18:30:00Z"));
        assert_eq!((d.stage, d.action), (Stage::Expired, Action::Delete));
        assert_eq!(d.deadline, ts(released));
        assert_eq!(d.delete_not_before, ts(released));
        assert!(
            d.action_reason.contains("owner's consent"),
            "{}",
            d.action_reason
        );
        // Even with nothing recorded at all.
        let bare = TagsBuilder::valid().with("ttl-released-at", released);
        assert_eq!(
            decide(bare, ts("2026-11-06T18:00:00Z")).action,
            Action::Delete
        );
        // A release after a late first warning (natural deadline passed) still counts.
        let late = TagsBuilder::valid().with("ttl-released-at", "2026-11-08T12:00:00Z");
        assert_eq!(decide(late, at(3 * H)).action, Action::Delete);
        // Never for a resource that is not eligible: production stays.
        let prod = builder.with("environment", "prod");
        let d = decide(prod, at(30 * 24 * H));
        assert_eq!((d.eligible, d.action), (false, Action::None));
        // A malformed value is ignored (with a note): the resource is not released.
        let bad = TagsBuilder::valid().with("ttl-released-at", "soon");
        let tags = bad.build();
        assert_eq!(tags.released_at, None);
        assert!(tags.notes.iter().any(|n| n.contains("not released")));
        assert_eq!(decide(bad, at(-72 * H)).action, Action::None);
    }

    #[test]
    fn expired_without_warning_is_deleted_when_the_guard_is_off() {
        let policy = TagPolicy {
            require_warning_before_delete: false,
            ..TagPolicy::default()
        };
        let decision = evaluate(&TagsBuilder::valid().build(), &policy, at(0));
        assert_eq!(decision.action, Action::Delete);
        assert_eq!(
            decision.action_reason,
            "expired at 2026-11-08T10:00:00Z, no warning was recorded for this deadline"
        );
    }

    #[test]
    fn recorded_value_follows_the_action() {
        let decision = decide(TagsBuilder::valid(), at(-47 * H));
        assert_eq!(
            decision.notified_tag_value().as_deref(),
            Some("warn-48h@2026-11-08T10:00:00Z@2026-11-06T11:00:00Z")
        );
        let decision = decide(TagsBuilder::valid(), at(-H));
        assert_eq!(
            decision.notified_tag_value().as_deref(),
            Some("warn-24h@2026-11-08T10:00:00Z@2026-11-08T09:00:00Z")
        );
        let decision = decide(notified(Stage::Warn24h, DEADLINE), at(0));
        assert_eq!(decision.action, Action::Delete);
        assert_eq!(decision.notified_tag_value(), None);
    }

    #[test]
    fn decision_serializes_for_the_event() {
        let decision = decide(TagsBuilder::valid().with("environment", "prod"), at(0));
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["eligible"], false);
        assert_eq!(json["blockers"][0], "production");
        assert_eq!(json["stage"], "expired");
        assert_eq!(json["action"], "none");
        assert_eq!(json["deadline"], DEADLINE);
    }
}
