//! What the run does with each secret, decided before anything is done: the same plan for a dry
//! run (printed) and an `--execute` run (carried out). Pure: items, policies and the instant in,
//! decisions out.

use std::time::Duration;

use jiff::Timestamp;

use crate::config::{Caps, Policies};
use crate::inventory::Item;
use crate::journal::{Journal, Step};
use crate::policy::{self, Classification, Phase};

/// The decision for one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    None,
    /// Tell the owner (it will be due soon).
    Notice,
    /// Rotate it.
    Rotate,
    /// Finish the interrupted rotation at this step.
    Resume(Step),
    /// Retire the old credential of the last rotation (grace period over).
    Retire,
    /// A manual type that needs its owner: notices and an "action required" finding only.
    Manual,
    /// Due, but not this run: why.
    Deferred(String),
    /// Cannot be handled: why.
    Problem(String),
}

impl Action {
    /// The finding's `action`: `rotate`, `notice`, `none` or `manual` (a resumed rotation and a
    /// deferred one are rotations; retiring is the rotation's last step).
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Rotate | Action::Resume(_) | Action::Retire | Action::Deferred(_) => "rotate",
            Action::Notice => "notice",
            Action::Manual => "manual",
            Action::None | Action::Problem(_) => "none",
        }
    }
}

/// One secret's line in the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The secret.
    pub item: Item,
    /// Its journal.
    pub journal: Journal,
    /// Its age and due date (when its rotation time is known).
    pub class: Option<Classification>,
    /// What to do.
    pub action: Action,
    /// Whether the owner gets a notice this run.
    pub notice: bool,
}

impl Planned {
    /// Whether this line starts or resumes a rotation.
    pub fn rotates(&self) -> bool {
        matches!(self.action, Action::Rotate | Action::Resume(_))
    }
}

/// How the run is asked to work.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// The monthly forced run.
    pub forced: bool,
    /// How far ahead the forced run looks.
    pub horizon: Duration,
    /// Past-due margin for overdue.
    pub overdue_after: Duration,
}

/// Decides every secret's action (before the cap, see [`cap`]).
pub fn plan(items: Vec<Item>, policies: &Policies, mode: Mode, now: Timestamp) -> Vec<Planned> {
    items
        .into_iter()
        .map(|item| {
            let journal = item
                .meta
                .as_ref()
                .map(|m| Journal::from_metadata(&m.custom))
                .unwrap_or_else(|| Journal::from_metadata(&Default::default()));
            let policy = policies[&item.decl.kind];
            let class = item
                .rotated_at
                .map(|t| policy::classify(t, &policy, mode.overdue_after, now));
            let notice = class
                .as_ref()
                .is_some_and(|c| policy::needs_notice(c, &policy, journal.notice_sent_for));
            let action = match (&item.problem, &class) {
                (Some(p), _) => Action::Problem(p.clone()),
                (None, None) => Action::Problem("its last rotation time is unknown".into()),
                (None, Some(c)) => {
                    if let Some(step) = journal.in_progress() {
                        if policy.auto {
                            Action::Resume(step)
                        } else {
                            Action::Problem(format!(
                                "a rotation is journaled in progress ({step}) on a manual type: left for its owner"
                            ))
                        }
                    } else if !policy.auto {
                        if c.phase >= Phase::Notice {
                            Action::Manual
                        } else {
                            Action::None
                        }
                    } else if journal.retire_due(now) {
                        Action::Retire
                    } else if policy::should_rotate(c, &policy, mode.forced, mode.horizon, now) {
                        if journal.retire_state.as_deref() == Some("pending") {
                            Action::Deferred(
                                "the previous rotation's old credential is still in its grace period"
                                    .into(),
                            )
                        } else {
                            Action::Rotate
                        }
                    } else if c.phase == Phase::Notice {
                        Action::Notice
                    } else {
                        Action::None
                    }
                }
            };
            // Only a secret that is not being rotated needs telling.
            let notice = notice && matches!(action, Action::Notice | Action::Manual);
            Planned {
                item,
                journal,
                class,
                action,
                notice,
            }
        })
        .collect()
}

/// The cap on rotations per run: interrupted rotations first (they hold consumers between two
/// values), then the longest overdue; past `caps.max_rotations_per_run` the rest are deferred to
/// the next run. Applied after the consumers were checked, so a rotation refused for its
/// consumers takes no one's place.
pub fn cap(lines: &mut [Planned], caps: &Caps) {
    let mut order: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].rotates()).collect();
    let key = |i: usize| {
        let l = &lines[i];
        (
            !matches!(l.action, Action::Resume(_)),
            l.class.map(|c| c.due_at),
            l.item.decl.name.as_str(),
        )
    };
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    for &i in order.iter().skip(caps.max_rotations_per_run) {
        lines[i].action = Action::Deferred(format!(
            "job.caps.max_rotations_per_run ({}) reached",
            caps.max_rotations_per_run
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::SignedDuration;

    use super::*;
    use crate::config::{SecretDecl, SecretType, VaultPath};
    use crate::inventory::Origin;
    use crate::vault::Metadata;

    const NOW: &str = "2026-12-01T00:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().expect("now")
    }

    fn item(name: &str, kind: SecretType, days: i64, custom: &[(&str, &str)]) -> Item {
        Item {
            decl: SecretDecl {
                name: name.into(),
                kind,
                owner: common::config::Email::parse("o@example.com").expect("email"),
                vault: VaultPath::parse(&format!("secret/{name}")).expect("path"),
                field: None,
                length: None,
                target: None,
                kubernetes: vec![],
                consumers: vec![],
            },
            origin: Origin::Config,
            meta: Some(Metadata {
                current_version: 1,
                custom: custom
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                metadata_version: None,
                versions: BTreeMap::new(),
            }),
            rotated_at: Some(now() - SignedDuration::from_hours(24 * days)),
            problem: None,
        }
    }

    fn mode(forced: bool) -> Mode {
        Mode {
            forced,
            horizon: Duration::from_secs(31 * 86_400),
            overdue_after: Duration::from_secs(7 * 86_400),
        }
    }

    fn actions(lines: &[Planned]) -> Vec<(String, Action)> {
        lines
            .iter()
            .map(|l| (l.item.decl.name.clone(), l.action.clone()))
            .collect()
    }

    #[test]
    fn each_secret_gets_one_action() {
        let policies = crate::config::RotationConfig::policies(
            &common::config::parse_str("{}", "t").expect("empty config"),
        );
        let lines = plan(
            vec![
                item("fresh", SecretType::ApiKey, 1, &[]),
                item("soon", SecretType::ApiKey, 25, &[]),
                item("due", SecretType::ApiKey, 31, &[]),
                item("manual", SecretType::EncryptionKey, 400, &[]),
                item(
                    "cut",
                    SecretType::ApiKey,
                    31,
                    &[("rotation_id", "r1"), ("rotation_state", "restart")],
                ),
                item(
                    "retire",
                    SecretType::ApiKey,
                    10,
                    &[
                        ("rotation_state", "finished"),
                        ("retire_state", "pending"),
                        ("retire_after", "2026-11-30T00:00:00Z"),
                    ],
                ),
            ],
            &policies,
            mode(false),
            now(),
        );
        assert_eq!(
            actions(&lines),
            [
                ("fresh".to_string(), Action::None),
                ("soon".to_string(), Action::Notice),
                ("due".to_string(), Action::Rotate),
                ("manual".to_string(), Action::Manual),
                ("cut".to_string(), Action::Resume(Step::Restart)),
                ("retire".to_string(), Action::Retire),
            ]
        );
        assert!(lines[1].notice && lines[3].notice && !lines[2].notice);
    }

    #[test]
    fn the_cap_defers_the_least_overdue_and_never_a_resume() {
        let policies = crate::config::RotationConfig::policies(
            &common::config::parse_str("{}", "t").expect("empty config"),
        );
        let caps = Caps {
            max_rotations_per_run: 2,
            max_restarts_per_wave: 1,
        };
        let mut lines = plan(
            vec![
                item("a", SecretType::ApiKey, 31, &[]),
                item("b", SecretType::ApiKey, 60, &[]),
                item(
                    "c",
                    SecretType::ApiKey,
                    31,
                    &[("rotation_id", "r"), ("rotation_state", "set")],
                ),
            ],
            &policies,
            mode(false),
            now(),
        );
        cap(&mut lines, &caps);
        assert_eq!(lines[2].action, Action::Resume(Step::Set));
        assert_eq!(
            lines[1].action,
            Action::Rotate,
            "the most overdue goes first"
        );
        assert!(
            matches!(&lines[0].action, Action::Deferred(why) if why.contains("max_rotations_per_run"))
        );
    }

    #[test]
    fn the_forced_run_pulls_in_what_would_be_due_before_the_next() {
        let policies = crate::config::RotationConfig::policies(
            &common::config::parse_str("{}", "t").expect("empty config"),
        );
        let items = || {
            vec![
                item("young", SecretType::ApiKey, 5, &[]),
                item("db", SecretType::DatabasePassword, 5, &[]),
            ]
        };
        let weekly = plan(items(), &policies, mode(false), now());
        assert_eq!(weekly[0].action, Action::None);
        let forced = plan(items(), &policies, mode(true), now());
        assert_eq!(
            forced[0].action,
            Action::Rotate,
            "due in 25 days, before the next forced run"
        );
        assert_eq!(forced[1].action, Action::None, "due in 85 days");
    }

    #[test]
    fn a_manual_type_is_never_rotated_even_when_forced_or_journaled() {
        let policies = crate::config::RotationConfig::policies(
            &common::config::parse_str("policies: {encryption-key: {auto: true}}", "t")
                .expect("parses"),
        );
        let lines = plan(
            vec![
                item("k", SecretType::EncryptionKey, 400, &[]),
                item(
                    "j",
                    SecretType::EncryptionKey,
                    400,
                    &[("rotation_id", "x"), ("rotation_state", "set")],
                ),
            ],
            &policies,
            mode(true),
            now(),
        );
        assert_eq!(lines[0].action, Action::Manual);
        assert!(matches!(lines[1].action, Action::Problem(_)));
    }
}
