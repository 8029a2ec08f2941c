//! When a quota will be hit: honest, simple, and always with its basis.
//!
//! - **Rate quotas** (per calendar month): month to date plus the median of the last 7 daily
//!   totals × the days left, with the range the smallest and largest of those 7 days give.
//! - **Count quotas** (resources, connectors): a least-squares line through the last 28 daily
//!   maxima. A date only when the slope is positive, there are at least 14 points and R² ≥ 0.5;
//!   otherwise "no upward trend".
//!
//! Suppressed (with the reason) when there are fewer than 7 days of data, or when a counter reset
//! in the window makes the daily totals unreliable.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

/// Days of data below which no forecast is made.
pub const MIN_DAYS: usize = 7;
/// Points a count trend needs before it may give a date.
pub const MIN_TREND_POINTS: usize = 14;
/// Goodness of fit a count trend needs before it may give a date.
pub const MIN_R2: f64 = 0.5;
/// Daily maxima a count trend is fitted on.
pub const TREND_DAYS: usize = 28;

/// A forecast for one quota.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Forecast {
    /// Rate quota: the month's projected total.
    Projected {
        /// Month to date + median × days left.
        projected: f64,
        /// With the smallest of the 7 daily totals.
        low: f64,
        /// With the largest.
        high: f64,
        /// The first day the projection reaches the limit, when it does this month.
        reaches_limit_on: Option<Date>,
        /// How it was computed, in words.
        basis: String,
    },
    /// Count quota: the fitted line reaches the limit on this day.
    Trend {
        /// The day.
        reaches_limit_on: Date,
        /// Slope per day.
        slope_per_day: f64,
        /// Goodness of fit.
        r2: f64,
        /// How it was computed, in words.
        basis: String,
    },
    /// Count quota: no date (slope not positive, too few points, or a poor fit).
    NoUpwardTrend {
        /// Why, in words.
        basis: String,
    },
    /// No forecast: too little data or counter resets.
    Suppressed {
        /// Why, in words.
        reason: String,
    },
    /// The quota has no limit to reach.
    NotApplicable,
}

impl Forecast {
    /// One line for tables and emails.
    pub fn summary(&self) -> String {
        match self {
            Forecast::Projected { basis, .. } | Forecast::Trend { basis, .. } => basis.clone(),
            Forecast::NoUpwardTrend { basis } => format!("no upward trend ({basis})"),
            Forecast::Suppressed { reason } => format!("no forecast: {reason}"),
            Forecast::NotApplicable => "no quota".to_string(),
        }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Figures for people: thousands separated, at most two decimals.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let rounded = (v * 100.0).round() / 100.0;
    let int = rounded.trunc().abs() as u64;
    let frac = ((rounded.abs() - int as f64) * 100.0).round() as u64;
    let digits = int.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded < 0.0 { "-" } else { "" };
    if frac == 0 {
        format!("{sign}{grouped}")
    } else if frac.is_multiple_of(10) {
        format!("{sign}{grouped}.{}", frac / 10)
    } else {
        format!("{sign}{grouped}.{frac:02}")
    }
}

/// The rate forecast: `month_to_date` as of `as_of` (the period's end), the last daily totals
/// (oldest first; only the last 7 are used), `days_left` in the month, `resets` in the window.
pub fn rate(
    month_to_date: f64,
    daily: &[f64],
    days_left: i64,
    resets: u64,
    limit: Option<f64>,
    as_of: Date,
) -> Forecast {
    let Some(limit) = limit else {
        return Forecast::NotApplicable;
    };
    if resets > 0 {
        return Forecast::Suppressed {
            reason: format!(
                "{resets} counter reset{} in the window: daily totals are not reliable enough to project",
                if resets == 1 { "" } else { "s" }
            ),
        };
    }
    if daily.len() < MIN_DAYS {
        return Forecast::Suppressed {
            reason: format!("{} day(s) of data, {MIN_DAYS} needed", daily.len()),
        };
    }
    let mut last: Vec<f64> = daily[daily.len() - MIN_DAYS..].to_vec();
    last.sort_by(f64::total_cmp);
    let (min, med, max) = (last[0], median(&last), last[last.len() - 1]);
    let left = days_left.max(0) as f64;
    let projected = month_to_date + med * left;
    let reaches_limit_on = if month_to_date >= limit {
        Some(as_of)
    } else if med > 0.0 && projected >= limit {
        let days = ((limit - month_to_date) / med).ceil() as i64;
        as_of.checked_add((days - 1).max(0).days()).ok()
    } else {
        None
    };
    let mut basis = format!(
        "month to date {} + median of the last 7 daily totals {} × {} day{} left = {} (range {} to {})",
        fmt_num(month_to_date),
        fmt_num(med),
        days_left.max(0),
        if days_left == 1 { "" } else { "s" },
        fmt_num(projected),
        fmt_num(month_to_date + min * left),
        fmt_num(month_to_date + max * left),
    );
    if let Some(d) = reaches_limit_on {
        basis.push_str(&format!("; reaches the quota of {} on {d}", fmt_num(limit)));
    }
    Forecast::Projected {
        projected,
        low: month_to_date + min * left,
        high: month_to_date + max * left,
        reaches_limit_on,
        basis,
    }
}

/// Least squares through `(x, y)`: `(intercept, slope, r²)`; `r²` is 0 when `y` is constant.
pub fn fit(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return (my, 0.0, 0.0);
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r2 = if syy == 0.0 {
        0.0
    } else {
        (sxy * sxy) / (sxx * syy)
    };
    (intercept, slope, r2)
}

/// The count forecast from daily maxima `(day, value)` (any order; the 28 days before `as_of`,
/// the period's exclusive end, are used) and the current value.
pub fn count(history: &[(Date, f64)], current: f64, limit: Option<f64>, as_of: Date) -> Forecast {
    let Some(limit) = limit else {
        return Forecast::NotApplicable;
    };
    // The 28 full days before `as_of` (the period's exclusive end).
    let first_day = as_of
        .checked_sub((TREND_DAYS as i64).days())
        .unwrap_or(as_of);
    let mut points: Vec<(Date, f64)> = history
        .iter()
        .copied()
        .filter(|(d, v)| *d >= first_day && *d < as_of && v.is_finite())
        .collect();
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    if points.len() < MIN_DAYS {
        return Forecast::Suppressed {
            reason: format!("{} daily maxima, {MIN_DAYS} needed", points.len()),
        };
    }
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|(d, v)| (first_day.until(*d).map_or(0, |s| s.get_days()) as f64, *v))
        .collect();
    let (intercept, slope, r2) = fit(&xy);
    let basis = format!(
        "linear fit over {} daily maxima: {}{} per day, R² {:.2}",
        points.len(),
        if slope >= 0.0 { "+" } else { "" },
        fmt_num(slope),
        r2
    );
    if slope <= 0.0 || points.len() < MIN_TREND_POINTS || r2 < MIN_R2 {
        let why = if slope <= 0.0 {
            "slope not positive".to_string()
        } else if points.len() < MIN_TREND_POINTS {
            format!("{MIN_TREND_POINTS} points needed")
        } else {
            format!("R² below {MIN_R2}")
        };
        return Forecast::NoUpwardTrend {
            basis: format!("{basis}; {why}"),
        };
    }
    let reaches = if current >= limit {
        as_of
    } else {
        let x = ((limit - intercept) / slope).ceil() as i64;
        let today = first_day.until(as_of).map_or(0, |s| s.get_days()) as i64;
        first_day.checked_add(x.max(today).days()).unwrap_or(as_of)
    };
    Forecast::Trend {
        reaches_limit_on: reaches,
        slope_per_day: slope,
        r2,
        basis: format!(
            "{basis}; reaches the quota of {} on {reaches}",
            fmt_num(limit)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn rate_projects_with_the_median_and_a_range() {
        let daily = [5.0, 100.0, 110.0, 90.0, 100.0, 120.0, 80.0, 100.0];
        let f = rate(2_000.0, &daily, 10, 0, Some(3_000.0), d("2026-11-20"));
        let Forecast::Projected {
            projected,
            low,
            high,
            reaches_limit_on,
            basis,
        } = f
        else {
            panic!("{f:?}")
        };
        // The last 7: 100 110 90 100 120 80 100 → median 100, min 80, max 120.
        assert_eq!((projected, low, high), (3_000.0, 2_800.0, 3_200.0));
        assert_eq!(reaches_limit_on, Some(d("2026-11-29")));
        assert!(
            basis.contains("median of the last 7 daily totals 100"),
            "{basis}"
        );
        assert!(basis.contains("range 2,800 to 3,200"), "{basis}");
    }

    #[test]
    fn rate_is_suppressed_by_resets_and_short_history() {
        let week = [1.0; 7];
        assert!(matches!(
            rate(1.0, &week, 3, 1, Some(10.0), d("2026-11-20")),
            Forecast::Suppressed { .. }
        ));
        assert!(matches!(
            rate(1.0, &week[..6], 3, 0, Some(10.0), d("2026-11-20")),
            Forecast::Suppressed { .. }
        ));
        assert_eq!(
            rate(1.0, &week, 3, 0, None, d("2026-11-20")),
            Forecast::NotApplicable
        );
    }

    #[test]
    fn count_gives_a_date_only_for_a_good_upward_fit() {
        let as_of = d("2026-11-28");
        let day = |i: i64| as_of.checked_sub((28 - i).days()).expect("day");
        // 28 points rising by 0.25/day from 2: exactly linear.
        let rising: Vec<(Date, f64)> = (0..28).map(|i| (day(i), 2.0 + 0.25 * i as f64)).collect();
        let f = count(&rising, 8.75, Some(10.0), as_of);
        let Forecast::Trend {
            reaches_limit_on,
            slope_per_day,
            r2,
            ..
        } = f
        else {
            panic!("{f:?}")
        };
        assert!((slope_per_day - 0.25).abs() < 1e-9 && (r2 - 1.0).abs() < 1e-9);
        // 2 + 0.25 x = 10 at x = 32: four days after as_of (x = 28).
        assert_eq!(reaches_limit_on, d("2026-12-02"));

        let flat: Vec<(Date, f64)> = (0..28).map(|i| (day(i), 4.0)).collect();
        assert!(matches!(
            count(&flat, 4.0, Some(10.0), as_of),
            Forecast::NoUpwardTrend { .. }
        ));
        let few: Vec<(Date, f64)> = rising[20..].to_vec();
        let f = count(&few, 8.75, Some(10.0), as_of);
        assert!(
            matches!(&f, Forecast::NoUpwardTrend { basis } if basis.contains("14 points")),
            "{f:?}"
        );
        let noisy: Vec<(Date, f64)> = (0..28)
            .map(|i| (day(i), if i % 2 == 0 { 1.0 } else { 9.0 } + 0.01 * i as f64))
            .collect();
        assert!(matches!(
            count(&noisy, 5.0, Some(10.0), as_of),
            Forecast::NoUpwardTrend { .. }
        ));
        assert!(matches!(
            count(&rising[..6], 3.0, Some(10.0), as_of),
            Forecast::Suppressed { .. }
        ));
    }

    #[test]
    fn numbers_are_grouped_and_trimmed() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(0.125), "0.13");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(f64::INFINITY), "—");
    }
}
