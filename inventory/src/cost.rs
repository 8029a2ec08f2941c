//! What a resource costs while it runs, from a pricing table: the basis of "cost avoided".
//!
//! Prices come from the config (a platform's negotiated rates differ from list prices, so no
//! instance or DB price is built in): hourly price per instance type and DB class, a Multi-AZ
//! factor, per-GB-month prices for EBS volumes, snapshots and S3 storage (defaults: AWS list
//! prices for gp3, snapshots and S3 Standard). Each kind says how it is priced
//! ([`Kind::cost`](crate::Kind::cost)); a resource whose price is not in the table is
//! [`Cost::Unknown`], never zero: "unknown" and "free" must not read alike.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::resource::Resource;

/// Hours in a month, for per-GB-month prices.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The pricing table (the `job.pricing` section of the jobs that report cost).
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
    /// USD per GB-month of S3 storage (default 0.023, S3 Standard).
    pub s3_gb_month: f64,
    /// USD per hour of a load balancer, when the platform wants it counted (default: unknown).
    pub load_balancer_hourly: Option<f64>,
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
            s3_gb_month: 0.023,
            load_balancer_hourly: None,
        }
    }
}

/// How much a resource costs per hour, as far as the table knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Cost {
    /// It costs nothing by itself (an IAM role, a security group; an Auto Scaling group's cost
    /// is its instances').
    Free,
    /// USD per hour.
    Hourly(f64),
    /// Not in the table, or an input is missing: why.
    Unknown(String),
}

impl Cost {
    /// USD per hour when known (free is 0).
    pub fn hourly(&self) -> Option<f64> {
        match self {
            Cost::Free => Some(0.0),
            Cost::Hourly(h) => Some(*h),
            Cost::Unknown(_) => None,
        }
    }
}

/// The price of one resource over the pricing horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// USD per hour, `None` when unknown.
    pub hourly_usd: Option<f64>,
    /// USD over the horizon, rounded to cents; `None` when unknown (sums count it as 0 and say
    /// so).
    pub avoided_usd: Option<f64>,
    /// Why it is unknown, when it is.
    pub note: Option<String>,
}

impl Estimate {
    /// The avoided cost, 0 when unknown (for sums that mark unknowns separately).
    pub fn avoided_or_zero(&self) -> f64 {
        self.avoided_usd.unwrap_or(0.0)
    }
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
            ("s3_gb_month", self.s3_gb_month),
            (
                "load_balancer_hourly",
                self.load_balancer_hourly.unwrap_or(0.0),
            ),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be non-negative, got {v}"));
            }
        }
        Ok(())
    }

    /// Prices `r` over the horizon, by what its kind says about its cost.
    pub fn estimate(&self, r: &Resource) -> Estimate {
        let cost = match crate::kinds::by_name(r.kind) {
            Some(kind) => kind.cost(r, self),
            None => Cost::Unknown(format!("kind {} is not registered", r.kind)),
        };
        match cost {
            Cost::Unknown(note) => Estimate {
                hourly_usd: None,
                avoided_usd: None,
                note: Some(note),
            },
            known => {
                let hourly = known.hourly().unwrap_or(0.0);
                Estimate {
                    hourly_usd: Some(hourly),
                    avoided_usd: Some(round_cents(hourly * self.horizon_hours)),
                    note: None,
                }
            }
        }
    }

    /// The hourly price of `key` in `table` (`what` names the column for the note).
    pub fn lookup(table: &BTreeMap<String, f64>, key: Option<&str>, what: &str) -> Cost {
        match key {
            None => Cost::Unknown(format!("{what} unknown")),
            Some(k) => match table.get(k) {
                Some(p) => Cost::Hourly(*p),
                None => Cost::Unknown(format!("{what} {k} is not in the pricing table")),
            },
        }
    }

    /// The hourly price of `size` GB at `gb_month` USD per GB-month.
    pub fn per_gb(size: Option<f64>, gb_month: f64) -> Cost {
        match size {
            Some(gb) => Cost::Hourly(gb * gb_month / HOURS_PER_MONTH),
            None => Cost::Unknown("size unknown".to_string()),
        }
    }
}

/// Rounds to cents, never to a negative zero (which prints as `-0.00`).
pub fn round_cents(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Attributes, Scope};

    fn resource(kind: &'static str, attributes: Attributes) -> Resource {
        let mut r = Resource::new(
            kind,
            "x".into(),
            "x".into(),
            Scope::Aws {
                account: "1".into(),
                region: "r".into(),
            },
        );
        r.attributes = attributes;
        r
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
            Attributes {
                instance_type: Some("t3.large".into()),
                ..Attributes::default()
            },
        ));
        assert_eq!(e.avoided_usd, Some(59.9)); // 0.0832 × 720 = 59.904
        assert_eq!(e.note, None);
    }

    #[test]
    fn multi_az_doubles_and_an_unknown_class_is_unknown_not_zero() {
        let p = pricing();
        let db = |class: &str, multi_az| {
            p.estimate(&resource(
                "rds-instance",
                Attributes {
                    db_class: Some(class.into()),
                    multi_az,
                    ..Attributes::default()
                },
            ))
        };
        assert_eq!(db("db.t3.medium", true).avoided_usd, Some(97.92)); // 0.068 × 2 × 720
        let unknown = db("db.r6g.16xlarge", false);
        assert_eq!(unknown.avoided_usd, None);
        assert_eq!(unknown.avoided_or_zero(), 0.0);
        assert!(
            unknown
                .note
                .as_deref()
                .is_some_and(|n| n.contains("not in the pricing table")),
            "{unknown:?}"
        );
    }

    #[test]
    fn storage_is_priced_per_gb_month() {
        let gb = |kind, size| {
            pricing()
                .estimate(&resource(
                    kind,
                    Attributes {
                        size_gb: Some(size),
                        ..Attributes::default()
                    },
                ))
                .avoided_usd
        };
        // 100 GB × 0.08 $/GB-month = 8 $/month; over 720 of 730 hours.
        assert_eq!(gb("ebs-volume", 100.0), Some(7.89));
        // 1,000 GB of S3 Standard at 0.023 $/GB-month.
        assert_eq!(gb("s3-bucket", 1000.0), Some(22.68));
    }

    #[test]
    fn free_kinds_cost_zero_and_rounding_never_gives_negative_zero() {
        let e = pricing().estimate(&resource("iam-role", Attributes::default()));
        assert_eq!(e.avoided_usd, Some(0.0));
        assert_eq!(format!("{:.2}", round_cents(-0.001)), "0.00");
    }

    #[test]
    fn validation_rejects_negative_prices() {
        let mut p = pricing();
        p.instance_hourly.insert("bad".into(), -1.0);
        assert!(p.validate().expect_err("negative").contains("\"bad\""));
        assert!(pricing().validate().is_ok());
        let p = Pricing {
            s3_gb_month: -1.0,
            ..pricing()
        };
        assert!(p.validate().expect_err("negative").contains("s3_gb_month"));
    }
}
