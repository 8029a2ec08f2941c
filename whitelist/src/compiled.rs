//! The compiled matcher: indexes built once per file so a verdict costs a few hash lookups, a
//! few direct checks and at most a handful of regular-expression searches, whatever the number
//! of rules.
//!
//! ARN rules: for each of the five variable parts (partition, service, region, account,
//! resource) the globs of all patterns are split three ways — globs made only of `*` (match
//! anything), literal globs (a hash map from text to rules) and the rest, compiled into one
//! multi-pattern regex that reports every glob matching the part in one pass. Each part yields
//! the set of rules it allows; a rule matches when all five parts allow it, so the candidates
//! are the intersection of five sets, kept as fixed-size bitsets. Parts with cheap lookups go
//! first and an empty intersection stops early, the common case for an unprotected resource.
//!
//! One refinement: a multi-pattern regex over hundreds of `*` globs costs a few hundred
//! nanoseconds per search, while checking one glob costs a few. So when few surviving
//! candidates have a wildcard glob in a part (at most `direct_limit`), those few globs are
//! checked directly instead of searching the regex. Either way the result is the same set.
//!
//! Tags, namespaces and accounts are exact, so they are hash maps. Label selectors are indexed
//! by one `key=value` / `key in (..)` requirement where they have one (only selectors whose
//! anchor label is present are evaluated); the others are evaluated for every object.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use regex_automata::meta::{self, Regex};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};

use crate::arn::{self, glob_match, split_arn};
use crate::load::Sections;
use crate::rule::{Matcher, Section};

/// How many surviving candidates with a wildcard glob in a part are checked one by one before
/// the part's multi-pattern regex is searched instead (see the module docs).
pub(crate) const DIRECT_LIMIT: usize = 32;

/// Bitsets up to this many words (64 rules each) live on the stack.
const STACK_WORDS: usize = 32;

/// FxHash, the hash rustc uses: a multiply and a rotate per word, several times faster than the
/// default SipHash on short keys. SipHash protects maps whose keys an adversary inserts; these
/// maps hold only keys from the reviewed whitelist file, and lookups cannot add to them.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

fn set_bit(bits: &mut [u64], id: usize) {
    bits[id / 64] |= 1 << (id % 64);
}

/// Calls `f` with each set bit of `bits`, ascending.
fn for_each_bit(bits: &[u64], mut f: impl FnMut(usize)) {
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            f(w * 64 + word.trailing_zeros() as usize);
            word &= word - 1;
        }
    }
}

/// A set of rule indices, sparse or dense depending on its size.
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
                set_bit(&mut bits, id as usize);
            }
            RuleSet::Dense(bits)
        } else {
            RuleSet::Sparse(ids)
        }
    }

    fn add_to(&self, bits: &mut [u64]) {
        match self {
            RuleSet::Sparse(ids) => ids.iter().for_each(|&id| set_bit(bits, id as usize)),
            RuleSet::Dense(other) => {
                for (b, o) in bits.iter_mut().zip(other) {
                    *b |= o;
                }
            }
        }
    }
}

/// One wildcard glob prepared for a direct check: cheap literal prefix and suffix tests reject
/// most texts before the full glob match runs.
#[derive(Clone, Debug)]
struct GlobCheck {
    glob: Box<str>,
    prefix: usize,
    suffix: usize,
}

impl GlobCheck {
    fn new(glob: &str) -> Self {
        let prefix = glob.find(['*', '?']).unwrap_or(glob.len());
        let suffix = glob.len() - glob.rfind(['*', '?']).map_or(0, |i| i + 1);
        Self {
            glob: glob.into(),
            prefix,
            suffix,
        }
    }

    fn matches(&self, text: &str) -> bool {
        let g = self.glob.as_bytes();
        let t = text.as_bytes();
        t.len() >= self.prefix + self.suffix
            && t.starts_with(&g[..self.prefix])
            && t.ends_with(&g[g.len() - self.suffix..])
            && glob_match(&self.glob, text)
    }
}

/// The index of one ARN part over all ARN rules.
#[derive(Clone, Debug)]
struct PartIndex {
    /// Rules whose glob for this part matches anything.
    always: Vec<u64>,
    /// Literal globs → the rules using them.
    exact: FxMap<Box<str>, RuleSet>,
    /// Rules whose glob has a wildcard (and is not all `*`).
    wild_mask: Vec<u64>,
    /// Per rule, its glob prepared for a direct check (used for rules in `wild_mask` only).
    checks: Vec<Option<GlobCheck>>,
    /// The distinct wildcard globs as one multi-pattern regex; pattern i belongs to
    /// `wild_rules[i]`.
    wild: Option<Regex>,
    wild_rules: Vec<RuleSet>,
}

impl PartIndex {
    fn build(globs: &[&str], words: usize) -> Result<Self, Box<meta::BuildError>> {
        let mut always = vec![0u64; words];
        let mut wild_mask = vec![0u64; words];
        let mut checks = Vec::with_capacity(globs.len());
        let mut exact: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut wild: HashMap<&str, Vec<u32>> = HashMap::new();
        for (id, glob) in globs.iter().enumerate() {
            let id32 = u32::try_from(id).expect("fewer than 2^32 rules");
            if arn::is_match_all(glob) {
                set_bit(&mut always, id);
                checks.push(None);
            } else if arn::is_literal(glob) {
                exact.entry(glob).or_default().push(id32);
                checks.push(None);
            } else {
                wild.entry(glob).or_default().push(id32);
                set_bit(&mut wild_mask, id);
                checks.push(Some(GlobCheck::new(glob)));
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
                            // Hundreds of `*` globs make many DFA states: with the default 2 MB
                            // cache the lazy DFA thrashes and a search costs 5x more. The cache
                            // grows only as far as the inputs need.
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
            wild_mask,
            checks,
            wild: regex,
            wild_rules: wild
                .into_iter()
                .map(|(_, ids)| RuleSet::new(ids, words))
                .collect(),
        })
    }

    /// Writes into `out` the rules whose glob matches `part` — all of them, or, when
    /// `candidates` is given, at least those among the candidates (the caller intersects).
    fn allowed(
        &self,
        part: &str,
        candidates: Option<&[u64]>,
        direct_limit: usize,
        out: &mut [u64],
    ) {
        out.copy_from_slice(&self.always);
        if let Some(set) = self.exact.get(part) {
            set.add_to(out);
        }
        let Some(re) = &self.wild else {
            return;
        };
        if let Some(cand) = candidates {
            let wild_candidates: usize = cand
                .iter()
                .zip(&self.wild_mask)
                .map(|(c, w)| (c & w).count_ones() as usize)
                .sum();
            if wild_candidates <= direct_limit {
                for (w, (c, m)) in cand.iter().zip(&self.wild_mask).enumerate() {
                    let mut word = c & m;
                    while word != 0 {
                        let id = w * 64 + word.trailing_zeros() as usize;
                        if self.checks[id].as_ref().is_some_and(|g| g.matches(part)) {
                            set_bit(out, id);
                        }
                        word &= word - 1;
                    }
                }
                return;
            }
        }
        let mut matched = PatternSet::new(re.pattern_len());
        re.which_overlapping_matches(&Input::new(part).anchored(Anchored::Yes), &mut matched);
        for pid in matched.iter() {
            self.wild_rules[pid.as_usize()].add_to(out);
        }
    }
}

/// Tag rules for one key.
#[derive(Clone, Debug, Default)]
struct TagIndex {
    any_value: Option<usize>,
    by_value: FxMap<String, usize>,
}

/// Every index of one whitelist.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    words: usize,
    direct_limit: usize,
    /// Index of ARN parts 1..=5, in the order they are evaluated.
    parts: Vec<(usize, PartIndex)>,
    accounts: FxMap<String, usize>,
    tags: FxMap<String, TagIndex>,
    namespaces: FxMap<String, usize>,
    /// Label selectors by anchor: key → value → selector indices.
    selectors_by_label: FxMap<String, FxMap<String, Vec<usize>>>,
    /// Selectors with no anchor, evaluated for every object.
    selectors_unanchored: Vec<usize>,
}

/// The order ARN parts are checked in: services and accounts are usually literal (hash
/// lookups) and the most selective; the resource part, the costliest, goes last.
const PART_ORDER: [usize; 5] = [2, 4, 3, 1, 5];

impl Compiled {
    /// Fails only when the ARN patterns exceed the regex size limits (far beyond any real
    /// whitelist); the caller refuses the file then, rather than matching wrongly.
    pub(crate) fn build(sections: &Sections) -> Result<Self, Box<meta::BuildError>> {
        Self::build_with_limit(sections, DIRECT_LIMIT)
    }

    /// `build` with another `direct_limit`: 0 always searches the regexes, `usize::MAX` never
    /// does; the tests use both to check each path against the reference.
    pub(crate) fn build_with_limit(
        sections: &Sections,
        direct_limit: usize,
    ) -> Result<Self, Box<meta::BuildError>> {
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
        let mut compiled = Self {
            words,
            direct_limit,
            parts,
            accounts: FxMap::default(),
            tags: FxMap::default(),
            namespaces: FxMap::default(),
            selectors_by_label: FxMap::default(),
            selectors_unanchored: Vec::new(),
        };
        for rule in sections.iter().flatten() {
            match &rule.matcher {
                Matcher::Account(id) => {
                    compiled.accounts.insert(id.clone(), rule.index);
                }
                Matcher::Tag { key, value } => {
                    let entry = compiled.tags.entry(key.clone()).or_default();
                    match value {
                        None => entry.any_value = Some(rule.index),
                        Some(v) => {
                            entry.by_value.insert(v.clone(), rule.index);
                        }
                    }
                }
                Matcher::Namespace(name) => {
                    compiled.namespaces.insert(name.clone(), rule.index);
                }
                Matcher::Labels(selector) => match selector.equality_anchor() {
                    Some((key, values)) => {
                        let by_value = compiled
                            .selectors_by_label
                            .entry(key.to_owned())
                            .or_default();
                        for v in values {
                            by_value.entry(v.to_owned()).or_default().push(rule.index);
                        }
                    }
                    None => compiled.selectors_unanchored.push(rule.index),
                },
                Matcher::Arn(_) => {}
            }
        }
        Ok(compiled)
    }

    /// Pushes the indices of the ARN rules matching `arn_parts` onto `out`, ascending.
    pub(crate) fn arn_candidates(&self, arn_parts: &[&str; 6], out: &mut Vec<usize>) {
        let (mut cand_stack, mut scratch_stack) = ([0u64; STACK_WORDS], [0u64; STACK_WORDS]);
        let (mut cand_heap, mut scratch_heap);
        let (cand, scratch): (&mut [u64], &mut [u64]) = if self.words <= STACK_WORDS {
            (
                &mut cand_stack[..self.words],
                &mut scratch_stack[..self.words],
            )
        } else {
            cand_heap = vec![0u64; self.words];
            scratch_heap = vec![0u64; self.words];
            (&mut cand_heap, &mut scratch_heap)
        };
        for (n, (i, index)) in self.parts.iter().enumerate() {
            if n == 0 {
                index.allowed(arn_parts[*i], None, self.direct_limit, cand);
            } else {
                index.allowed(arn_parts[*i], Some(cand), self.direct_limit, scratch);
                for (c, s) in cand.iter_mut().zip(scratch.iter()) {
                    *c &= s;
                }
            }
            if cand.iter().all(|&w| w == 0) {
                return;
            }
        }
        for_each_bit(cand, |id| out.push(id));
    }

    pub(crate) fn account(&self, id: &str) -> Option<usize> {
        self.accounts.get(id).copied()
    }

    /// Pushes the indices of the tag rules matching one tag (any-value and exact-value rule).
    pub(crate) fn tag(&self, key: &str, value: &str, out: &mut Vec<usize>) {
        if let Some(t) = self.tags.get(key) {
            out.extend(t.any_value);
            out.extend(t.by_value.get(value).copied());
        }
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<usize> {
        self.namespaces.get(name).copied()
    }

    /// Pushes the indices of the selectors that may match `labels` (a superset: the caller
    /// evaluates them), in no particular order.
    pub(crate) fn selector_candidates<'a>(
        &self,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        out: &mut Vec<usize>,
    ) {
        for (key, value) in labels {
            if let Some(ids) = self
                .selectors_by_label
                .get(key.as_str())
                .and_then(|by_value| by_value.get(value.as_str()))
            {
                out.extend(ids);
            }
        }
    }

    /// Selectors without an anchor, which every object is checked against.
    pub(crate) fn unanchored_selectors(&self) -> &[usize] {
        &self.selectors_unanchored
    }
}

/// Splits a resource's ARN for matching; `None` when it is not a six-part ARN starting with
/// `arn`, which no rule can match and which the verdict treats as protected.
pub(crate) fn resource_arn_parts(arn: &str) -> Option<[&str; 6]> {
    split_arn(arn).ok().filter(|p| p[0] == "arn")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arn::ArnPattern;

    fn glob() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(&['a', 'b', '*', '?', '.'][..]), 0..4)
            .prop_map(String::from_iter)
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(&['a', 'b', '.', '/', ':'][..]), 0..5)
            .prop_map(String::from_iter)
    }

    proptest! {
        /// Both ways of evaluating wildcard globs — the regex search and the direct checks —
        /// give exactly the rules the reference `ArnPattern::matches` gives. (The public
        /// property tests have too few rules to reach the regex path.)
        #[test]
        fn regex_and_direct_paths_agree_with_the_reference(
            globs in prop::collection::vec((glob(), glob(), glob()), 1..40),
            arns in prop::collection::vec((text(), text(), text()), 1..20),
        ) {
            let mut yaml = String::from("never_delete:\n  aws_resources:\n");
            let mut seen = std::collections::BTreeSet::new();
            for (s, a, r) in &globs {
                let p = format!("arn:aws:{s}:*:{a}:{r}");
                if seen.insert(p.clone()) {
                    yaml += &format!("    - \"{p}\"\n");
                }
            }
            let sections = crate::load::load(&yaml, "t").unwrap();
            let rules = &sections[Section::AwsResources.slot()];
            let via_regex = Compiled::build_with_limit(&sections, 0).unwrap();
            let direct = Compiled::build_with_limit(&sections, usize::MAX).unwrap();
            for (s, a, r) in &arns {
                let arn = format!("arn:aws:{s}:eu-west-1:{a}:{r}");
                let parts = resource_arn_parts(&arn).unwrap();
                let expected: Vec<usize> = rules
                    .iter()
                    .filter(|rule| match &rule.matcher {
                        Matcher::Arn(p) => ArnPattern::matches(p, &arn),
                        _ => false,
                    })
                    .map(|rule| rule.index)
                    .collect();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                via_regex.arn_candidates(&parts, &mut a);
                direct.arn_candidates(&parts, &mut b);
                prop_assert_eq!(&a, &expected, "regex path, {}", arn);
                prop_assert_eq!(&b, &expected, "direct path, {}", arn);
            }
        }
    }

    #[test]
    fn glob_checks_use_prefix_and_suffix() {
        let g = GlobCheck::new("db:stoa-*-prod");
        assert_eq!((g.prefix, g.suffix), (8, 5));
        assert!(g.matches("db:stoa-1-prod"));
        assert!(g.matches("db:stoa--prod"));
        assert!(!g.matches("db:stoa-prod"));
        assert!(!g.matches("db:stoa-1-dev"));
        let q = GlobCheck::new("a?");
        assert_eq!((q.prefix, q.suffix), (1, 0));
        assert!(q.matches("ab") && !q.matches("a"));
    }

    #[test]
    fn fx_hasher_separates_short_keys() {
        let h = |s: &str| {
            let mut hasher = FxHasher::default();
            std::hash::Hash::hash(s, &mut hasher);
            hasher.finish()
        };
        assert_ne!(h("ec2"), h("rds"));
        assert_ne!(h(""), h("a"));
        assert_ne!(h("abcdefgh1"), h("abcdefgh2"));
    }
}
