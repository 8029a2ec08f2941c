//! Latency quantiles from histogram buckets, the way Prometheus' `histogram_quantile` computes
//! them, and the bucket each quantile falls in.
//!
//! When the gateway labels its metrics by application, a tenant's quantile must come from the
//! *sum of its applications' buckets*; averaging per-application quantiles gives a number that
//! is no quantile of anything. [`merge`] sums buckets, [`quantile`] interpolates like Prometheus
//! 2.x (`bucketQuantile` in `promql/quantile.go`), so both modes report the same figure.

use serde::Serialize;

/// One cumulative bucket: observations `<= le`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Upper bound (`+Inf` for the last).
    pub le: f64,
    /// Cumulative count.
    pub count: f64,
}

/// A quantile and the bucket it falls in, which bounds its accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantile {
    /// The interpolated value, in the histogram's unit.
    pub value: f64,
    /// The bucket's lower bound (exclusive).
    pub lower: f64,
    /// The bucket's upper bound (inclusive; `+Inf` for the overflow bucket, serialised as null).
    #[serde(serialize_with = "finite_or_null")]
    pub upper: f64,
}

fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// Sums bucket lists (the same `le` added together), sorted by `le`.
pub fn merge<'a>(lists: impl IntoIterator<Item = &'a [Bucket]>) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for list in lists {
        for b in list {
            match out.iter_mut().find(|o| o.le == b.le) {
                Some(o) => o.count += b.count,
                None => out.push(*b),
            }
        }
    }
    out.sort_by(|a, b| a.le.total_cmp(&b.le));
    out
}

/// The `q`-quantile of cumulative `buckets` (any order), or `None` where Prometheus returns NaN:
/// no `+Inf` bucket, fewer than two buckets, no observations, or `q` outside `[0, 1]`.
pub fn quantile(q: f64, buckets: &[Bucket]) -> Option<Quantile> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut b = merge([buckets]);
    if b.len() < 2 || b.last().is_none_or(|l| l.le != f64::INFINITY) {
        return None;
    }
    // Prometheus makes the counts monotonic first (scrape races can break it).
    let mut max = 0.0_f64;
    for x in &mut b {
        max = max.max(x.count);
        x.count = max;
    }
    let observations = b[b.len() - 1].count;
    if observations <= 0.0 {
        return None;
    }
    let mut rank = q * observations;
    let last = b.len() - 1;
    let i = b[..last]
        .iter()
        .position(|x| x.count >= rank)
        .unwrap_or(last);
    if i == last {
        let lower = b[last - 1].le;
        return Some(Quantile {
            value: lower,
            lower,
            upper: f64::INFINITY,
        });
    }
    if i == 0 && b[0].le <= 0.0 {
        return Some(Quantile {
            value: b[0].le,
            lower: f64::NEG_INFINITY,
            upper: b[0].le,
        });
    }
    let (start, mut count) = (if i > 0 { b[i - 1].le } else { 0.0 }, b[i].count);
    if i > 0 {
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    Some(Quantile {
        value: start + (b[i].le - start) * (rank / count),
        lower: start,
        upper: b[i].le,
    })
}

/// The bucket `(lower, upper]` of `buckets` that contains `value` (for a quantile Prometheus
/// computed itself).
pub fn bucket_of(value: f64, buckets: &[Bucket]) -> Option<(f64, f64)> {
    let b = merge([buckets]);
    let mut lower = 0.0;
    for x in &b {
        if value <= x.le {
            return Some((lower, x.le));
        }
        lower = x.le;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, count)| Bucket { le, count })
            .collect()
    }

    #[test]
    fn interpolates_inside_the_bucket_like_prometheus() {
        // 100 observations: 50 <= 0.1, 90 <= 0.25, 99 <= 0.5, 100 <= +Inf.
        let b = buckets(&[
            (0.1, 50.0),
            (0.25, 90.0),
            (0.5, 99.0),
            (f64::INFINITY, 100.0),
        ]);
        let p50 = quantile(0.5, &b).expect("p50");
        assert_eq!((p50.value, p50.lower, p50.upper), (0.1, 0.0, 0.1));
        let p95 = quantile(0.95, &b).expect("p95");
        // rank 95 is 5 of the 9 observations in (0.25, 0.5].
        assert!(
            (p95.value - (0.25 + 0.25 * 5.0 / 9.0)).abs() < 1e-12,
            "{p95:?}"
        );
        assert_eq!((p95.lower, p95.upper), (0.25, 0.5));
        // Beyond the last finite bucket Prometheus answers that bucket's bound.
        let p999 = quantile(0.999, &b).expect("p99.9");
        assert_eq!((p999.value, p999.lower), (0.5, 0.5));
        assert!(p999.upper.is_infinite());
    }

    #[test]
    fn nan_cases_are_none() {
        assert!(quantile(0.5, &buckets(&[(0.1, 1.0)])).is_none(), "no +Inf");
        assert!(quantile(0.5, &buckets(&[(0.1, 0.0), (f64::INFINITY, 0.0)])).is_none());
        assert!(quantile(1.5, &buckets(&[(0.1, 1.0), (f64::INFINITY, 1.0)])).is_none());
    }

    #[test]
    fn merging_applications_is_not_averaging_their_quantiles() {
        // A fast application with many calls and a slow one with few.
        let fast = buckets(&[(0.1, 900.0), (1.0, 1000.0), (f64::INFINITY, 1000.0)]);
        let slow = buckets(&[(0.1, 0.0), (1.0, 50.0), (f64::INFINITY, 50.0)]);
        let merged = merge([fast.as_slice(), slow.as_slice()]);
        assert_eq!(
            merged,
            buckets(&[(0.1, 900.0), (1.0, 1050.0), (f64::INFINITY, 1050.0)])
        );
        // rank 997.5 is 97.5 of the 150 observations in (0.1, 1].
        let p95 = quantile(0.95, &merged).expect("p95");
        assert!(
            (p95.value - (0.1 + 0.9 * 97.5 / 150.0)).abs() < 1e-12,
            "{p95:?}"
        );
        let mean = (quantile(0.95, &fast).expect("fast").value
            + quantile(0.95, &slow).expect("slow").value)
            / 2.0;
        assert!(
            (p95.value - mean).abs() > 0.05,
            "p95 {p95:?} vs mean of quantiles {mean}"
        );
        assert_eq!(bucket_of(p95.value, &merged), Some((0.1, 1.0)));
    }

    #[test]
    fn non_monotonic_counts_are_made_monotonic() {
        let b = buckets(&[(0.1, 10.0), (0.2, 9.0), (f64::INFINITY, 10.0)]);
        let q = quantile(0.5, &b).expect("q");
        assert_eq!((q.lower, q.upper), (0.0, 0.1));
    }
}
