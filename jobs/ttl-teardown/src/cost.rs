//! Cost avoided: what a deleted resource would have cost over a horizon had it stayed.
//!
//! Prices come from the config (the platform's negotiated rates differ from list prices, so
//! nothing is hard-coded): hourly price per instance type and DB class, a Multi-AZ factor, and
//! per-GB-month prices for EBS volumes and snapshots. Cost avoided = hourly price × horizon hours
//! (default 720 h, one month). An unknown type prices at zero and says so, never guesses.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::inventory::Resource;

/// Hours in a month, for per-GB-month prices.
const HOURS_PER_MONTH: f64 = 730.0;

/// The pricing table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pricing {
    /// Hours of avoided running per deleted resource (default 720).
    pub horizon_hours: f64,
    /// USD per hour by EC2 instance type.
    pub instance_hourly: BTreeMap<String, f64>,
    /// USD per hour by RDS instance class (single-AZ).
    pub db_hourly: BTreeMap<String, f64>,
    /// Multiplier for Multi-AZ RDS (default 2).
    pub multi_az_factor: f64,
    /// USD per GB-month of EBS volume (default 0.08, gp3).
    pub ebs_gb_month: f64,
    /// USD per GB-month of snapshot storage (default 0.095).
    pub snapshot_gb_month: f64,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            horizon_hours: 720.0,
            instance_hourly: BTreeMap::new(),
            db_hourly: BTreeMap::new(),
            multi_az_factor: 2.0,
            ebs_gb_month: 0.08,
            snapshot_gb_month: 0.095,
        }
    }
}

/// The price of one resource over the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// USD per hour.
    pub hourly_usd: f64,
    /// USD over the horizon, rounded to cents.
    pub avoided_usd: f64,
    /// Why it is zero, when it is.
    pub note: Option<String>,
}

impl Pricing {
    /// Checks the table: non-negative prices, a positive horizon.
    pub fn validate(&self) -> Result<(), String> {
        let negative = self
            .instance_hourly
            .iter()
            .chain(self.db_hourly.iter())
            .find(|(_, p)| !(p.is_finite() && **p >= 0.0));
        if let Some((k, p)) = negative {
            return Err(format!(
                "price of {k:?} must be a non-negative number, got {p}"
            ));
        }
        for (name, v) in [
            ("horizon_hours", self.horizon_hours),
            ("multi_az_factor", self.multi_az_factor),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        for (name, v) in [
            ("ebs_gb_month", self.ebs_gb_month),
            ("snapshot_gb_month", self.snapshot_gb_month),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be non-negative, got {v}"));
            }
        }
        Ok(())
    }

    /// Prices `r` over the horizon.
    pub fn estimate(&self, r: &Resource) -> Estimate {
        let (hourly, note) = match r.kind {
            "ec2-instance" => lookup(
                &self.instance_hourly,
                r.cost.instance_type.as_deref(),
                "instance type",
            ),
            "rds-instance" => {
                let (h, note) = lookup(&self.db_hourly, r.cost.db_class.as_deref(), "db class");
                (
                    if r.cost.multi_az {
                        h * self.multi_az_factor
                    } else {
                        h
                    },
                    note,
                )
            }
            "ebs-volume" => per_gb(r.cost.size_gb, self.ebs_gb_month),
            "rds-snapshot" => per_gb(r.cost.size_gb, self.snapshot_gb_month),
            _ => (0.0, None),
        };
        Estimate {
            hourly_usd: hourly,
            avoided_usd: (hourly * self.horizon_hours * 100.0).round() / 100.0,
            note,
        }
    }
}

fn lookup(table: &BTreeMap<String, f64>, key: Option<&str>, what: &str) -> (f64, Option<String>) {
    match key {
        None => (0.0, Some(format!("{what} unknown: priced at 0"))),
        Some(k) => match table.get(k) {
            Some(p) => (*p, None),
            None => (
                0.0,
                Some(format!("{what} {k} not in the pricing table: priced at 0")),
            ),
        },
    }
}

fn per_gb(size: Option<f64>, gb_month: f64) -> (f64, Option<String>) {
    match size {
        Some(gb) => (gb * gb_month / HOURS_PER_MONTH, None),
        None => (0.0, Some("size unknown: priced at 0".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{CostBasis, Scope};

    fn resource(kind: &'static str, cost: CostBasis) -> Resource {
        Resource {
            id: "x".into(),
            kind,
            name: "x".into(),
            scope: Scope::Aws {
                account: "1".into(),
                region: "r".into(),
            },
            namespace: None,
            tags: Default::default(),
            labels: Default::default(),
            namespace_labels: Default::default(),
            created_fallback: None,
            state: None,
            wait_for: vec![],
            cost,
            tags_unreadable: None,
        }
    }

    fn pricing() -> Pricing {
        Pricing {
            instance_hourly: [("t3.large".to_string(), 0.0832)].into(),
            db_hourly: [("db.t3.medium".to_string(), 0.068)].into(),
            ..Pricing::default()
        }
    }

    #[test]
    fn instance_price_times_horizon() {
        let e = pricing().estimate(&resource(
            "ec2-instance",
            CostBasis {
                instance_type: Some("t3.large".into()),
                ..CostBasis::default()
            },
        ));
        assert_eq!(e.avoided_usd, 59.9); // 0.0832 × 720 = 59.904
        assert_eq!(e.note, None);
    }

    #[test]
    fn multi_az_doubles_and_unknown_class_is_zero_with_a_note() {
        let p = pricing();
        let db = |class: &str, multi_az| {
            p.estimate(&resource(
                "rds-instance",
                CostBasis {
                    db_class: Some(class.into()),
                    multi_az,
                    ..CostBasis::default()
                },
            ))
        };
        assert_eq!(db("db.t3.medium", true).avoided_usd, 97.92); // 0.068 × 2 × 720
        let unknown = db("db.r6g.16xlarge", false);
        assert_eq!(unknown.avoided_usd, 0.0);
        assert!(
            unknown
                .note
                .as_deref()
                .is_some_and(|n| n.contains("not in the pricing table"))
        );
    }

    #[test]
    fn volume_is_priced_per_gb_month() {
        let e = pricing().estimate(&resource(
            "ebs-volume",
            CostBasis {
                size_gb: Some(100.0),
                ..CostBasis::default()
            },
        ));
        // 100 GB × 0.08 $/GB-month = 8 $/month; over 720 of 730 hours.
        assert_eq!(e.avoided_usd, 7.89);
    }

    #[test]
    fn validation_rejects_negative_prices() {
        let mut p = pricing();
        p.instance_hourly.insert("bad".into(), -1.0);
        assert!(p.validate().expect_err("negative").contains("\"bad\""));
        assert!(pricing().validate().is_ok());
    }
}
