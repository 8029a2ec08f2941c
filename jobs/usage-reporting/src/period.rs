//! The reporting period: an explicit `START/END`, or the last full UTC day or ISO week before the
//! evaluation instant.
//!
//! Periods are half-open, `[start, end)`, and whole UTC days: the Prometheus queries are
//! evaluated *at* `end` over a range of exactly the period's length, so the same period always
//! reads the same samples, whenever it is re-rendered.

use std::fmt;

use jiff::civil::{Date, Weekday};
use jiff::{Span, Timestamp, ToSpan, tz::TimeZone};
use serde::{Deserialize, Serialize};

/// How the period was chosen; daily runs differ from weekly ones in what they render and send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// The last full UTC day.
    Daily,
    /// The last full ISO week (Monday 00:00 to Monday 00:00 UTC).
    Weekly,
    /// An explicit `START/END`.
    Custom,
}

impl PeriodKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Daily => "daily",
            PeriodKind::Weekly => "weekly",
            PeriodKind::Custom => "custom",
        }
    }
}

/// A reporting period of whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// How it was chosen.
    pub kind: PeriodKind,
    /// First instant (UTC midnight), inclusive.
    pub start: Timestamp,
    /// End (UTC midnight), exclusive; the instant every query is evaluated at.
    pub end: Timestamp,
}

/// What `--period` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodArg {
    /// `daily` or `weekly`: relative to the evaluation instant.
    Relative(PeriodKind),
    /// `START/END` dates (`2026-11-23/2026-11-30`, END exclusive).
    Explicit(Date, Date),
}

/// Parses `--period`: `daily`, `weekly` or `YYYY-MM-DD/YYYY-MM-DD` (end exclusive).
pub fn parse_period_arg(s: &str) -> Result<PeriodArg, String> {
    match s {
        "daily" => return Ok(PeriodArg::Relative(PeriodKind::Daily)),
        "weekly" => return Ok(PeriodArg::Relative(PeriodKind::Weekly)),
        _ => {}
    }
    let usage = || {
        format!(
            "expected daily, weekly or START/END dates such as 2026-11-23/2026-11-30, got {s:?}"
        )
    };
    let (a, b) = s.split_once('/').ok_or_else(usage)?;
    let start: Date = a.trim().parse().map_err(|_| usage())?;
    let end: Date = b.trim().parse().map_err(|_| usage())?;
    if end <= start {
        return Err(format!(
            "the period's end {end} must be after its start {start} (the end is exclusive)"
        ));
    }
    if start.until(end).map_err(|e| e.to_string())?.get_days() > 366 {
        return Err(format!("a period is at most 366 days, got {s}"));
    }
    Ok(PeriodArg::Explicit(start, end))
}

fn midnight(d: Date) -> Timestamp {
    d.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The UTC date of an instant.
pub fn utc_date(t: Timestamp) -> Date {
    t.to_zoned(TimeZone::UTC).date()
}

impl Period {
    /// The period `arg` names, as of `now`.
    pub fn resolve(arg: &PeriodArg, now: Timestamp) -> Period {
        let today = utc_date(now);
        match arg {
            PeriodArg::Explicit(a, b) => Period {
                kind: PeriodKind::Custom,
                start: midnight(*a),
                end: midnight(*b),
            },
            PeriodArg::Relative(PeriodKind::Daily) => Period {
                kind: PeriodKind::Daily,
                start: midnight(today.yesterday().unwrap_or(today)),
                end: midnight(today),
            },
            PeriodArg::Relative(_) => {
                // The Monday at or before today ends the last full week.
                let back = today.weekday().to_monday_zero_offset();
                let monday = today
                    .checked_sub(Span::new().days(i64::from(back)))
                    .unwrap_or(today);
                debug_assert_eq!(monday.weekday(), Weekday::Monday);
                Period {
                    kind: PeriodKind::Weekly,
                    start: midnight(monday.checked_sub(7.days()).unwrap_or(monday)),
                    end: midnight(monday),
                }
            }
        }
    }

    /// Whole days in the period.
    pub fn days(&self) -> i64 {
        (self.end.as_second() - self.start.as_second()) / 86_400
    }

    /// Length in seconds: the range of every period query (`[604800s]`).
    pub fn seconds(&self) -> i64 {
        self.end.as_second() - self.start.as_second()
    }

    /// The UTC dates of the period's days.
    pub fn dates(&self) -> Vec<Date> {
        let first = utc_date(self.start);
        (0..self.days())
            .filter_map(|i| first.checked_add(i.days()).ok())
            .collect()
    }

    /// The calendar month the period ends in (the month of its last day): its first instant and
    /// its end.
    pub fn month(&self) -> (Timestamp, Timestamp) {
        let last_day = utc_date(self.end).yesterday().unwrap_or(utc_date(self.end));
        let first = last_day.first_of_month();
        let next = first.checked_add(1.month()).unwrap_or(first);
        (midnight(first), midnight(next))
    }

    /// `2026-11-23_2026-11-30`: for file names.
    pub fn slug(&self) -> String {
        format!("{}_{}", utc_date(self.start), utc_date(self.end))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The end is exclusive; people read the last day.
        let last = utc_date(self.end).yesterday().unwrap_or(utc_date(self.end));
        write!(
            f,
            "{} to {} (UTC, {} day{})",
            utc_date(self.start),
            last,
            self.days(),
            if self.days() == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn weekly_is_the_last_full_iso_week() {
        // Monday 2026-11-30 02:00: the week of Monday 23rd to Monday 30th.
        let p = Period::resolve(
            &PeriodArg::Relative(PeriodKind::Weekly),
            t("2026-11-30T02:00:00Z"),
        );
        assert_eq!(
            (p.start, p.end),
            (t("2026-11-23T00:00:00Z"), t("2026-11-30T00:00:00Z"))
        );
        assert_eq!(p.days(), 7);
        // Sunday evening still reports the week before.
        let p = Period::resolve(
            &PeriodArg::Relative(PeriodKind::Weekly),
            t("2026-11-29T23:59:00Z"),
        );
        assert_eq!(p.end, t("2026-11-23T00:00:00Z"));
        assert_eq!(p.to_string(), "2026-11-16 to 2026-11-22 (UTC, 7 days)");
    }

    #[test]
    fn daily_is_yesterday() {
        let p = Period::resolve(
            &PeriodArg::Relative(PeriodKind::Daily),
            t("2026-12-01T01:00:00Z"),
        );
        assert_eq!(
            (p.start, p.end),
            (t("2026-11-30T00:00:00Z"), t("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            p.month(),
            (t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z"))
        );
        assert_eq!(p.seconds(), 86_400);
    }

    #[test]
    fn explicit_periods_parse_and_refuse_nonsense() {
        let arg = parse_period_arg("2026-11-23/2026-11-30").expect("valid");
        let p = Period::resolve(&arg, t("2030-01-01T00:00:00Z"));
        assert_eq!(p.kind, PeriodKind::Custom);
        assert_eq!(p.slug(), "2026-11-23_2026-11-30");
        assert_eq!(p.dates().len(), 7);
        for bad in [
            "monthly",
            "2026-11-30/2026-11-23",
            "2026-11-23",
            "2026-13-01/2026-12-01",
        ] {
            assert!(parse_period_arg(bad).is_err(), "{bad}");
        }
    }
}
