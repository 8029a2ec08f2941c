//! The compiled matcher: indexes built once per file so a verdict costs a few hash lookups and
//! at most five regular-expression searches, whatever the number of rules.
//!
//! ARN rules: for each of the five variable parts (partition, service, region, account,
//! resource) the distinct globs of all patterns are split three ways — globs made only of `*`
//! (match anything), literal globs (a hash map from text to rules) and the rest, compiled into
//! one multi-pattern regex that reports every glob matching the part in one pass. Each part
//! yields the set of rules it allows; a rule matches when all five parts allow it, so the
//! candidates are the intersection of five sets, kept as fixed-size bitsets. Parts with cheap
//! lookups go first and an empty intersection stops early, which is the common case for an
//! unprotected resource.
//!
//! Tags, namespaces and accounts are exact, so they are hash maps. Label selectors are checked
//! one by one: they are few, and a selector with `!=`/`notin` cannot be indexed by the labels
//! present.

use std::collections::HashMap;

use regex_automata::meta::{self, Regex};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};

use crate::arn::{self, split_arn};
use crate::load::Sections;
use crate::rule::{Matcher, Section};

/// A set of rule indices within the ARN section, sparse or dense depending on its size.
#[derive(Clone, Debug)]
enum RuleSet {
    Sparse(Vec<u32>),
    Dense(Vec<u64>),
}

impl RuleSet {
    fn new(ids: Vec<u32>, words: usize) -> Self {
        // A dense set costs `words` operations to merge, a sparse one one per member.
        if ids.len() > words {
            let mut bits = vec![0u64; words];
            for id in ids {
                bits[id as usize / 64] |= 1 << (id % 64);
            }
            RuleSet::Dense(bits)
        } else {
            RuleSet::Sparse(ids)
        }
    }

    fn add_to(&self, bits: &mut [u64]) {
        match self {
            RuleSet::Sparse(ids) => {
                for &id in ids {
                    bits[id as usize / 64] |= 1 << (id % 64);
                }
            }
            RuleSet::Dense(other) => {
                for (b, o) in bits.iter_mut().zip(other) {
                    *b |= o;
                }
            }
        }
    }
}

/// The index of one ARN part over all ARN rules.
#[derive(Clone, Debug)]
struct PartIndex {
    /// Rules whose glob for this part matches anything.
    always: Vec<u64>,
    /// Literal globs → the rules using them.
    exact: HashMap<Box<str>, RuleSet>,
    /// The other globs as one multi-pattern regex; pattern i belongs to `wild_rules[i]`.
    wild: Option<Regex>,
    wild_rules: Vec<RuleSet>,
}

impl PartIndex {
    fn build(globs: &[&str], words: usize) -> Result<Self, Box<meta::BuildError>> {
        let mut always = vec![0u64; words];
        let mut exact: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut wild: HashMap<&str, Vec<u32>> = HashMap::new();
        for (id, glob) in globs.iter().enumerate() {
            let id = u32::try_from(id).expect("fewer than 2^32 rules");
            if arn::is_match_all(glob) {
                always[id as usize / 64] |= 1 << (id % 64);
            } else if arn::is_literal(glob) {
                exact.entry(glob).or_default().push(id);
            } else {
                wild.entry(glob).or_default().push(id);
            }
        }
        let mut wild: Vec<(&str, Vec<u32>)> = wild.into_iter().collect();
        wild.sort();
        let regex = if wild.is_empty() {
            None
        } else {
            let patterns: Vec<String> = wild.iter().map(|(g, _)| arn::glob_to_regex(g)).collect();
            Some(
                Regex::builder()
                    .configure(
                        meta::Config::new()
                            // Report every pattern that matches, not just the leftmost-first.
                            .match_kind(MatchKind::All)
                            // Thousands of `.*` tails make many DFA states; a bigger cache keeps
                            // the lazy DFA from thrashing and falling back to slower engines.
                            .hybrid_cache_capacity(64 << 20)
                            .nfa_size_limit(Some(256 << 20)),
                    )
                    .build_many(&patterns)
                    .map_err(Box::new)?,
            )
        };
        Ok(Self {
            always,
            exact: exact
                .into_iter()
                .map(|(g, ids)| (Box::from(g), RuleSet::new(ids, words)))
                .collect(),
            wild: regex,
            wild_rules: wild
                .into_iter()
                .map(|(_, ids)| RuleSet::new(ids, words))
                .collect(),
        })
    }

    /// Writes the set of rules whose glob matches `part` into `out`.
    fn allowed(&self, part: &str, out: &mut [u64]) {
        out.copy_from_slice(&self.always);
        if let Some(set) = self.exact.get(part) {
            set.add_to(out);
        }
        if let Some(re) = &self.wild {
            let mut matched = PatternSet::new(re.pattern_len());
            re.which_overlapping_matches(&Input::new(part).anchored(Anchored::Yes), &mut matched);
            for pid in matched.iter() {
                self.wild_rules[pid.as_usize()].add_to(out);
            }
        }
    }
}

/// Tag rules for one key.
#[derive(Clone, Debug, Default)]
struct TagIndex {
    any_value: Option<usize>,
    by_value: HashMap<String, usize>,
}

/// Every index of one whitelist.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    words: usize,
    /// Index of ARN parts 1..=5, in the order they are evaluated.
    parts: Vec<(usize, PartIndex)>,
    accounts: HashMap<String, usize>,
    tags: HashMap<String, TagIndex>,
    namespaces: HashMap<String, usize>,
}

/// The order ARN parts are checked in: services and accounts are usually literal (hash
/// lookups) and the most selective; the resource part, the costliest regex, goes last.
const PART_ORDER: [usize; 5] = [2, 4, 3, 1, 5];

impl Compiled {
    /// Fails only when the ARN patterns exceed the regex size limits (far beyond any real
    /// whitelist); the caller refuses the file then, rather than matching wrongly.
    pub(crate) fn build(sections: &Sections) -> Result<Self, Box<meta::BuildError>> {
        let arn_rules = &sections[Section::AwsResources.slot()];
        let words = arn_rules.len().div_ceil(64).max(1);
        let patterns: Vec<_> = arn_rules
            .iter()
            .map(|r| match &r.matcher {
                Matcher::Arn(p) => p,
                _ => unreachable!("aws_resources holds ARN rules only"),
            })
            .collect();
        let parts = PART_ORDER
            .iter()
            .map(|&i| {
                let globs: Vec<&str> = patterns.iter().map(|p| p.part(i)).collect();
                PartIndex::build(&globs, words).map(|index| (i, index))
            })
            .collect::<Result<_, _>>()?;
        let mut accounts = HashMap::new();
        let mut tags: HashMap<String, TagIndex> = HashMap::new();
        let mut namespaces = HashMap::new();
        for section in &sections[..] {
            for rule in section {
                match &rule.matcher {
                    Matcher::Account(id) => {
                        accounts.insert(id.clone(), rule.index);
                    }
                    Matcher::Tag { key, value } => {
                        let entry = tags.entry(key.clone()).or_default();
                        match value {
                            None => entry.any_value = Some(rule.index),
                            Some(v) => {
                                entry.by_value.insert(v.clone(), rule.index);
                            }
                        }
                    }
                    Matcher::Namespace(name) => {
                        namespaces.insert(name.clone(), rule.index);
                    }
                    Matcher::Arn(_) | Matcher::Labels(_) => {}
                }
            }
        }
        Ok(Self {
            words,
            parts,
            accounts,
            tags,
            namespaces,
        })
    }

    /// Indices of the ARN rules matching `arn_parts`, ascending.
    pub(crate) fn arn_candidates(&self, arn_parts: &[&str; 6], out: &mut Vec<usize>) {
        let mut cand = vec![0u64; self.words];
        let mut scratch = vec![0u64; self.words];
        for (n, (i, index)) in self.parts.iter().enumerate() {
            if n == 0 {
                index.allowed(arn_parts[*i], &mut cand);
            } else {
                index.allowed(arn_parts[*i], &mut scratch);
                for (c, s) in cand.iter_mut().zip(&scratch) {
                    *c &= s;
                }
            }
            if cand.iter().all(|&w| w == 0) {
                return;
            }
        }
        for (w, &word) in cand.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                out.push(w * 64 + bit);
                word &= word - 1;
            }
        }
    }

    pub(crate) fn account(&self, id: &str) -> Option<usize> {
        self.accounts.get(id).copied()
    }

    /// Indices of the tag rules matching one tag (any-value rule and exact-value rule).
    pub(crate) fn tag(&self, key: &str, value: &str, out: &mut Vec<usize>) {
        if let Some(t) = self.tags.get(key) {
            out.extend(t.any_value);
            out.extend(t.by_value.get(value).copied());
        }
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<usize> {
        self.namespaces.get(name).copied()
    }
}

/// Splits a resource's ARN for matching; `None` when it is not a six-part ARN starting with
/// `arn`, which no rule can match and which the verdict treats as protected.
pub(crate) fn resource_arn_parts(arn: &str) -> Option<[&str; 6]> {
    split_arn(arn).ok().filter(|p| p[0] == "arn")
}
