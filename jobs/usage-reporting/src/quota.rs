//! Quotas: how much of each a tenant uses, against which limit, and what state that is.
//!
//! Resource usage comes in as [`Measured`] items — one per resource, already reduced to (project,
//! dimension, amount) — so this module does not depend on where resources are listed from; the
//! thin adapter over the shared inventory lives in [`crate::resources`].
//!
//! States: `exceeded` when usage is above the limit (critical), `near` from `near_ratio` of it
//! up to and including the limit itself (warning), `ok` below, `no_quota` without a limit. A
//! limit of 0 means "none allowed": any usage exceeds it, and its ratio is undefined (absent
//! from the event, the metrics and the PDF alike, never a division by zero).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::controlplane::{Limit, LimitSource};
use crate::forecast::{Forecast, fmt_num};

/// How a quota is measured over time: what its forecast is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Per calendar month (API calls, bandwidth): projected to the month's end.
    Rate,
    /// A level (resources, connectors, tasks): trended over daily maxima.
    Count,
}

/// A quota's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaState {
    /// No limit configured.
    NoQuota,
    /// Below `near_ratio` of the limit.
    Ok,
    /// At least `near_ratio` of the limit, not above it.
    Near,
    /// Above the limit.
    Exceeded,
}

impl QuotaState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaState::NoQuota => "no_quota",
            QuotaState::Ok => "ok",
            QuotaState::Near => "near",
            QuotaState::Exceeded => "exceeded",
        }
    }
}

/// One quota of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaUse {
    /// The dimension (`ec2_instances`, `api_calls_per_month`, …): the metrics' `resource` label.
    pub dimension: String,
    /// For people.
    pub label: String,
    /// `count`, `GB`, `calls`.
    pub unit: String,
    /// Rate or count.
    pub kind: QuotaKind,
    /// Current usage (month to date for rate quotas).
    pub used: f64,
    /// The limit, when one is configured.
    pub limit: Option<f64>,
    /// Where the limit came from.
    pub limit_source: Option<LimitSource>,
    /// `used / limit`; absent without a limit or with a limit of 0.
    pub ratio: Option<f64>,
    /// The state.
    pub state: QuotaState,
    /// When it will be hit.
    pub forecast: Forecast,
}

impl QuotaUse {
    /// Evaluates `used` against `limit` (`near_ratio` from the config).
    pub fn evaluate(
        dimension: &str,
        label: &str,
        unit: &str,
        kind: QuotaKind,
        used: f64,
        limit: Option<Limit>,
        near_ratio: f64,
    ) -> QuotaUse {
        let (ratio, state) = match limit.map(|l| l.value) {
            None => (None, QuotaState::NoQuota),
            Some(l) if l <= 0.0 => (
                None,
                if used > 0.0 {
                    QuotaState::Exceeded
                } else {
                    QuotaState::Ok
                },
            ),
            Some(l) => {
                let r = used / l;
                let state = if used > l {
                    QuotaState::Exceeded
                } else if r >= near_ratio {
                    QuotaState::Near
                } else {
                    QuotaState::Ok
                };
                (Some(r), state)
            }
        };
        QuotaUse {
            dimension: dimension.to_string(),
            label: label.to_string(),
            unit: unit.to_string(),
            kind,
            used,
            limit: limit.map(|l| l.value),
            limit_source: limit.map(|l| l.source),
            ratio,
            state,
            forecast: Forecast::NotApplicable,
        }
    }

    /// `45.2%`, or why there is no percentage.
    pub fn used_percent(&self) -> String {
        match (self.ratio, self.limit) {
            (Some(r), _) => format!("{}%", fmt_num(r * 100.0)),
            (None, Some(_)) if self.used > 0.0 => "over quota 0".to_string(),
            (None, Some(_)) => "quota 0".to_string(),
            (None, None) => "no quota".to_string(),
        }
    }

    /// The limit for people (`—` without one).
    pub fn limit_text(&self) -> String {
        self.limit.map_or("—".to_string(), fmt_num)
    }
}

/// How a resource counts against its dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// One per resource.
    Count,
    /// Its size in GB.
    SizeGb,
}

/// One resource reduced to what quotas need.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The resource id (ARN or `k8s:…`), for messages.
    pub resource: String,
    /// Its `project` tag.
    pub project: String,
    /// The quota dimension of its kind.
    pub dimension: &'static str,
    /// How it counts.
    pub measure: Measure,
    /// What it adds: 1 for a count, its size for `SizeGb` (None: size unknown).
    pub amount: Option<f64>,
}

/// Usage per project and dimension, and the resources whose size was unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUsage {
    /// `project → dimension → used`.
    pub used: BTreeMap<String, BTreeMap<&'static str, f64>>,
    /// `project → resources whose size could not be read` (they count as 0 and are noted).
    pub unknown_size: BTreeMap<String, Vec<String>>,
    /// Every dimension seen or known, with its measure (so a tenant with none shows 0).
    pub dimensions: BTreeMap<&'static str, Measure>,
    /// Dimensions left out because a kind of theirs could not be listed somewhere or a
    /// resource's tags read, with a note for every tenant's report (no resource id, no error
    /// text: those are the run's errors).
    pub missing: BTreeMap<&'static str, String>,
}

/// Sums `items` per project and dimension; `known` are the dimensions every tenant is shown
/// (with 0 when it has none).
pub fn sum_resources(
    items: impl IntoIterator<Item = Measured>,
    known: &[(&'static str, Measure)],
) -> ResourceUsage {
    let mut out = ResourceUsage {
        dimensions: known.iter().copied().collect(),
        ..ResourceUsage::default()
    };
    for m in items {
        out.dimensions.insert(m.dimension, m.measure);
        let slot = out
            .used
            .entry(m.project.clone())
            .or_default()
            .entry(m.dimension)
            .or_insert(0.0);
        match (m.measure, m.amount) {
            (Measure::Count, _) => *slot += 1.0,
            (Measure::SizeGb, Some(gb)) if gb.is_finite() && gb >= 0.0 => *slot += gb,
            (Measure::SizeGb, _) => out
                .unknown_size
                .entry(m.project)
                .or_default()
                .push(m.resource),
        }
    }
    out
}

/// `ec2_instances` → `ec2 instances`; `ebs_volume_gb` → `ebs volume` (the unit says GB).
pub fn label_of(dimension: &str) -> String {
    dimension.trim_end_matches("_gb").replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(v: f64) -> Option<Limit> {
        Some(Limit {
            value: v,
            source: LimitSource::Default,
        })
    }

    fn state(used: f64, l: Option<Limit>) -> (QuotaState, Option<f64>, String) {
        let q = QuotaUse::evaluate("x", "x", "count", QuotaKind::Count, used, l, 0.8);
        (q.state, q.ratio, q.used_percent())
    }

    #[test]
    fn states_and_ratios() {
        assert_eq!(
            state(7.0, limit(10.0)),
            (QuotaState::Ok, Some(0.7), "70%".into())
        );
        assert_eq!(state(8.0, limit(10.0)).0, QuotaState::Near);
        assert_eq!(state(10.0, limit(10.0)).0, QuotaState::Near, "at the limit");
        assert_eq!(
            state(11.0, limit(10.0)),
            (QuotaState::Exceeded, Some(1.1), "110%".into())
        );
        assert_eq!(
            state(3.0, None),
            (QuotaState::NoQuota, None, "no quota".into())
        );
    }

    #[test]
    fn a_quota_of_zero_never_divides_by_zero() {
        assert_eq!(
            state(1.0, limit(0.0)),
            (QuotaState::Exceeded, None, "over quota 0".into())
        );
        assert_eq!(
            state(0.0, limit(0.0)),
            (QuotaState::Ok, None, "quota 0".into())
        );
    }

    #[test]
    fn resources_sum_per_project_and_unknown_sizes_are_kept() {
        let m = |project: &str, dimension, measure, amount| Measured {
            resource: format!("r-{project}-{dimension}"),
            project: project.into(),
            dimension,
            measure,
            amount,
        };
        let usage = sum_resources(
            [
                m("a", "ec2_instances", Measure::Count, Some(1.0)),
                m("a", "ec2_instances", Measure::Count, Some(1.0)),
                m("a", "ebs_volume_gb", Measure::SizeGb, Some(100.0)),
                m("a", "ebs_volume_gb", Measure::SizeGb, None),
                m("b", "s3_buckets", Measure::Count, Some(1.0)),
            ],
            &[("k8s_namespaces", Measure::Count)],
        );
        assert_eq!(usage.used["a"]["ec2_instances"], 2.0);
        assert_eq!(usage.used["a"]["ebs_volume_gb"], 100.0);
        assert_eq!(usage.unknown_size["a"].len(), 1);
        assert_eq!(usage.used["b"]["s3_buckets"], 1.0);
        assert!(usage.dimensions.contains_key("k8s_namespaces"));
        assert_eq!(label_of("ebs_volume_gb"), "ebs volume");
    }
}
