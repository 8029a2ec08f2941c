//! Sharding a run over Kubernetes Indexed-Job pods.
//!
//! A sharded run is one of `count` pods, each with its `index` (`--shard i/N`, or the
//! `JOB_COMPLETION_INDEX` Kubernetes sets in an Indexed Job's pods plus `GOV_SHARD_COUNT`, which
//! the chart sets). A shard takes every `count`-th element of a sorted list of units of work —
//! the (account, region) pairs of the `aws:` section for the inventory — starting at `index`:
//! the same config always gives a unit to the same shard, and the shards' slices are disjoint and
//! cover the list. What is not a list of pairs (the Kubernetes cluster) belongs to shard 0.
//!
//! Everything a shard publishes carries it: the result event and the envelopes (`shard`), the
//! Pushgateway group (`…/shard/<i>`), the run lock's Lease (`<name>-shard-<i>`), so shards never
//! overwrite each other and run in parallel, while two runs of the same shard never do.

use serde::{Deserialize, Serialize};

/// The environment variable Kubernetes sets in each pod of an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The number of shards, set by the chart next to [`INDEX_ENV`].
pub const COUNT_ENV: &str = "GOV_SHARD_COUNT";

/// One shard of a run: `index` in `0..count`, `count` ≥ 2 (a run of one shard is not sharded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
}

/// Why a shard setting is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// Not `i/N`.
    #[error("--shard {0:?}: expected INDEX/COUNT such as 0/3")]
    Syntax(String),
    /// An index outside `0..count`, or no shards.
    #[error("shard {index}/{count}: the index must be in 0..{count} and the count at least 1")]
    Range {
        /// The index given.
        index: u64,
        /// The count given.
        count: u64,
    },
    /// An environment variable that is not a number.
    #[error("{name}={value:?}: not a number")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `GOV_SHARD_COUNT` without `JOB_COMPLETION_INDEX`.
    #[error(
        "{COUNT_ENV} is set but {INDEX_ENV} is not: not an Indexed Job's pod (use --shard i/N by hand)"
    )]
    NoIndex,
}

impl Shard {
    /// `index/count`, e.g. `0/3`; a count of 1 means "not sharded" (`None`).
    pub fn parse(s: &str) -> Result<Option<Shard>, ShardError> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| ShardError::Syntax(s.to_string()))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| ShardError::Syntax(s.to_string()))
        };
        Self::checked(parse(i)?, parse(n)?)
    }

    /// The shard of an Indexed Job's pod, from `JOB_COMPLETION_INDEX` and `GOV_SHARD_COUNT`
    /// (read through `var`); `None` when `GOV_SHARD_COUNT` is unset or 1.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, ShardError> {
        let number = |name: &'static str| -> Result<Option<u64>, ShardError> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ShardError::Env { name, value: v }),
            }
        };
        match (number(COUNT_ENV)?, number(INDEX_ENV)?) {
            (None, _) | (Some(1), None) => Ok(None),
            (Some(_), None) => Err(ShardError::NoIndex),
            (Some(n), Some(i)) => Self::checked(i, n),
        }
    }

    fn checked(index: u64, count: u64) -> Result<Option<Shard>, ShardError> {
        if count == 0 || index >= count || count > u64::from(u32::MAX) {
            return Err(ShardError::Range { index, count });
        }
        Ok((count > 1).then_some(Shard {
            index: index as u32,
            count: count as u32,
        }))
    }

    /// Whether the unit at `position` of the sorted list of units is this shard's.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }

    /// Whether this shard owns what is not split (the Kubernetes cluster): shard 0.
    pub fn owns_unsplit(&self) -> bool {
        self.index == 0
    }

    /// This shard's slice of `sorted` (every `count`-th unit from `index`).
    pub fn select<T>(&self, sorted: impl IntoIterator<Item = T>) -> Vec<T> {
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.owns(*i))
            .map(|(_, t)| t)
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_reasons() {
        assert_eq!(Shard::parse("1/3"), Ok(Some(Shard { index: 1, count: 3 })));
        assert_eq!(Shard::parse("0/1"), Ok(None));
        assert!(matches!(Shard::parse("3/3"), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::parse("0/0"), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::parse("a/3"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("2"), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn an_indexed_jobs_environment_names_the_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Shard::from_env(env(&[(COUNT_ENV, "3"), (INDEX_ENV, "2")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        assert_eq!(Shard::from_env(env(&[(INDEX_ENV, "2")])), Ok(None));
        assert_eq!(Shard::from_env(env(&[(COUNT_ENV, "1")])), Ok(None));
        assert_eq!(
            Shard::from_env(env(&[(COUNT_ENV, "3")])),
            Err(ShardError::NoIndex)
        );
        assert!(matches!(
            Shard::from_env(env(&[(COUNT_ENV, "x"), (INDEX_ENV, "0")])),
            Err(ShardError::Env { .. })
        ));
    }

    #[test]
    fn the_slices_are_disjoint_cover_the_list_and_are_stable() {
        let units: Vec<usize> = (0..7).collect();
        let mut seen = Vec::new();
        for index in 0..3 {
            let shard = Shard { index, count: 3 };
            let mine = shard.select(units.iter().copied());
            assert_eq!(mine, shard.select(units.iter().copied()), "stable");
            seen.extend(mine);
        }
        seen.sort();
        assert_eq!(seen, units, "each unit in exactly one shard");
    }
}
