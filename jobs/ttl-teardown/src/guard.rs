//! The last word before a removal: one rule for AWS and Kubernetes, applied by the inventory to
//! the resource as it is *now* (re-read just before the delete call).
//!
//! The plan was made minutes ago from a snapshot (time of check); the delete happens now (time
//! of use). [`RemovalGuard`] refuses when the current tags:
//! - say production (`environment` ∈ `prod_environments`), restricted data (`data-class` ∈
//!   `restricted_data_classes`) — keys and values compared without regard to ASCII case, so
//!   `Environment=Prod` is refused too — or an environment or data class that is not an accepted
//!   value, or are missing either;
//! - have `auto-teardown` other than exactly `true`;
//! - differ from the tags the plan saw (other than the job's own notified-stage tag): someone
//!   snoozed, re-tagged or opted out since. The next run re-plans from the new tags.
//!
//! For what a removal would take along (the objects in a namespace), only the first two apply:
//! those objects were not necessarily planned.

use std::collections::{BTreeMap, BTreeSet};

use inventory::{Current, Guard, Resource};

use crate::tags::TagPolicy;

/// The TTL job's [`Guard`].
#[derive(Debug, Clone)]
pub struct RemovalGuard<'a> {
    policy: &'a TagPolicy,
}

impl<'a> RemovalGuard<'a> {
    /// The guard of `policy`.
    pub fn new(policy: &'a TagPolicy) -> Self {
        RemovalGuard { policy }
    }

    /// Why these tags forbid removal on their own, if they do.
    fn ineligible(&self, tags: &BTreeMap<String, String>) -> Option<String> {
        let p = self.policy;
        let k = &p.keys;
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        for (key, value) in tags {
            if same(key, &k.environment) && p.prod_environments.iter().any(|e| same(e, value)) {
                return Some(format!(
                    "current tag {key}={value} marks it production; refusing to delete"
                ));
            }
            if same(key, &k.data_class) && p.restricted_data_classes.iter().any(|c| same(c, value))
            {
                return Some(format!(
                    "current tag {key}={value} marks restricted data; refusing to delete"
                ));
            }
        }
        for (key, accepted) in [
            (&k.environment, &p.allowed_environments),
            (&k.data_class, &p.allowed_data_classes),
        ] {
            match tags.get(key) {
                None => {
                    return Some(format!(
                        "current tags have no {key} tag; refusing to delete"
                    ));
                }
                Some(v) if !accepted.contains(v) => {
                    return Some(format!(
                        "current tag {key}={v} is not an accepted value; refusing to delete"
                    ));
                }
                Some(_) => {}
            }
        }
        match tags.get(&k.auto_teardown).map(String::as_str) {
            Some("true") => None,
            Some(other) => Some(format!(
                "current tag {}={other} is not \"true\"; refusing to delete",
                k.auto_teardown
            )),
            None => Some(format!(
                "current tags have no {} tag; refusing to delete",
                k.auto_teardown
            )),
        }
    }
}

impl Guard for RemovalGuard<'_> {
    fn refuses(&self, planned: &Resource, current: &Current) -> Option<String> {
        let tags = match &current.tags {
            Ok(t) => t,
            Err(e) => return Some(format!("current tags could not be read ({e})")),
        };
        if let Some(why) = self.ineligible(tags) {
            return Some(why);
        }
        let ignore = self.policy.keys.notified_stage.as_str();
        let changed: BTreeSet<String> = tags
            .keys()
            .chain(planned.tags.keys())
            .filter(|k| k.as_str() != ignore)
            .filter(|k| tags.get(*k) != planned.tags.get(*k))
            .map(|k| {
                let show = |v: Option<&String>| v.map_or("(absent)".to_string(), |v| v.clone());
                format!(
                    "{k}: {} -> {}",
                    show(planned.tags.get(k)),
                    show(tags.get(k))
                )
            })
            .collect();
        (!changed.is_empty()).then(|| {
            format!(
                "tags changed since the plan ({}); refusing to delete, the next run re-plans",
                changed.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
    }

    fn refuses_contained(&self, _id: &str, tags: &BTreeMap<String, String>) -> Option<String> {
        self.ineligible(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::Scope;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok() -> BTreeMap<String, String> {
        tags(&[
            ("environment", "dev"),
            ("data-class", "internal"),
            ("auto-teardown", "true"),
        ])
    }

    fn planned(t: BTreeMap<String, String>) -> Resource {
        let mut r = Resource::new(
            "ec2-instance",
            "arn:aws:ec2:us-east-1:111111111111:instance/i-1".into(),
            "i-1".into(),
            Scope::Aws {
                account: "111111111111".into(),
                region: "us-east-1".into(),
            },
        );
        r.tags = t;
        r
    }

    fn current(t: BTreeMap<String, String>) -> Current {
        Current {
            state: "running".into(),
            tags: Ok(t),
            never: None,
            attributes: None,
        }
    }

    #[test]
    fn refuses_prod_restricted_unknown_and_opted_out_whatever_the_case() {
        let policy = TagPolicy::default();
        let g = RemovalGuard::new(&policy);
        assert_eq!(g.refuses(&planned(ok()), &current(ok())), None);
        for (key, value, says) in [
            ("environment", "prod", "production"),
            ("Environment", " Prod", "production"),
            ("data-class", "RESTRICTED", "restricted"),
            ("environment", "Dev", "not an accepted value"),
            ("auto-teardown", "false", "not \"true\""),
            ("auto-teardown", "TRUE", "not \"true\""),
        ] {
            let mut t = ok();
            t.insert(key.into(), value.into());
            let why = g
                .refuses(&planned(t.clone()), &current(t))
                .expect("refused");
            assert!(why.contains(says), "{key}={value}: {why}");
        }
        for key in ["environment", "data-class", "auto-teardown"] {
            let mut t = ok();
            t.remove(key);
            let why = g
                .refuses(&planned(t.clone()), &current(t))
                .expect("refused");
            assert!(why.contains(&format!("no {key} tag")), "{why}");
        }
    }

    #[test]
    fn refuses_tags_changed_since_the_plan_except_the_notified_stage() {
        let policy = TagPolicy::default();
        let g = RemovalGuard::new(&policy);
        let mut snoozed = ok();
        snoozed.insert("ttl-extended-days".into(), "7".into());
        let why = g
            .refuses(&planned(ok()), &current(snoozed))
            .expect("refused");
        assert!(why.contains("ttl-extended-days: (absent) -> 7"), "{why}");
        let mut notified = ok();
        notified.insert(
            "ttl-notified-stage".into(),
            "warn-24h@2026-01-01T00:00:00Z".into(),
        );
        assert_eq!(g.refuses(&planned(ok()), &current(notified)), None);
        let unreadable = Current {
            tags: Err("AccessDenied".into()),
            ..current(ok())
        };
        assert!(g.refuses(&planned(ok()), &unreadable).is_some());
    }

    #[test]
    fn contained_objects_are_judged_by_their_own_tags_only() {
        let policy = TagPolicy::default();
        let g = RemovalGuard::new(&policy);
        assert_eq!(g.refuses_contained("k8s:deployment/a/b", &ok()), None);
        let mut keep = ok();
        keep.insert("auto-teardown".into(), "false".into());
        assert!(g.refuses_contained("k8s:deployment/a/b", &keep).is_some());
    }
}
