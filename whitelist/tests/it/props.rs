//! Property tests: the compiled matcher agrees with the rule-by-rule reference on random rules
//! and resources.

use std::collections::BTreeSet;

use proptest::prelude::*;
use whitelist::{KubeObject, Resource, Whitelist, naive};

use crate::ts;

/// A glob over a small alphabet, so that random ARNs often match. `:` only in the resource part.
fn glob(resource: bool) -> impl Strategy<Value = String> {
    let alphabet: &'static [char] = if resource {
        &['a', 'b', '*', '?', '/', ':', '.', '+']
    } else {
        &['a', 'b', '*', '?', '.', '-']
    };
    prop::collection::vec(prop::sample::select(alphabet), 0..5).prop_map(String::from_iter)
}

fn text(resource: bool) -> impl Strategy<Value = String> {
    let alphabet: &'static [char] = if resource {
        &['a', 'b', '/', ':', '.', '+', '*']
    } else {
        &['a', 'b', '.', '-', '?']
    };
    prop::collection::vec(prop::sample::select(alphabet), 0..6).prop_map(String::from_iter)
}

fn pattern() -> impl Strategy<Value = String> {
    (
        glob(false),
        glob(false),
        glob(false),
        glob(false),
        glob(true),
    )
        .prop_map(|(p, s, r, a, res)| format!("arn:{p}:{s}:{r}:{a}:{res}"))
}

/// Fills a pattern's wildcards to get an ARN that matches it (or nearly, after mutation).
fn instantiate(pattern: &str, fill: &str, one: char) -> String {
    pattern
        .chars()
        .map(|c| match c {
            '*' => fill.to_owned(),
            '?' => one.to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn random_arn() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (text(false), text(false), text(false), text(false), text(true))
            .prop_map(|(p, s, r, a, res)| format!("arn:{p}:{s}:{r}:{a}:{res}")),
        1 => text(true),
    ]
}

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const KEYS: [&str; 2] = ["k1", "k2"];
const VALUES: [&str; 3] = ["v1", "v2", ""];
const NAMESPACES: [&str; 3] = ["n1", "n2", "n3"];
const SELECTORS: [&str; 6] = [
    "k1=v1",
    "k1!=v1",
    "k2 in (v1,v2)",
    "k2 notin (v2),k1",
    "!k1",
    "k1,k2=v2",
];
/// Expiry choices relative to the evaluation instant (2026-06-01).
const EXPIRES: [Option<&str>; 3] = [
    None,
    Some("2026-01-01T00:00:00Z"),
    Some("2027-01-01T00:00:00Z"),
];

#[derive(Debug, Clone)]
struct Rules {
    arns: Vec<(String, usize)>,
    tags: Vec<(usize, Option<usize>, usize)>,
    accounts: Vec<(usize, usize)>,
    namespaces: Vec<(usize, usize)>,
    selectors: Vec<(usize, usize)>,
}

fn rules() -> impl Strategy<Value = Rules> {
    (
        prop::collection::vec((pattern(), 0..3usize), 0..25),
        prop::collection::vec((0..2usize, prop::option::of(0..3usize), 0..3usize), 0..5),
        prop::collection::vec((0..3usize, 0..3usize), 0..3),
        prop::collection::vec((0..3usize, 0..3usize), 0..3),
        prop::collection::vec((0..6usize, 0..3usize), 0..4),
    )
        .prop_map(|(arns, tags, accounts, namespaces, selectors)| Rules {
            arns,
            tags,
            accounts,
            namespaces,
            selectors,
        })
}

fn expires(e: usize) -> String {
    EXPIRES[e].map_or(String::new(), |t| format!(", expires: \"{t}\""))
}

/// The YAML for `rules`, with duplicates left out (they are errors, tested elsewhere).
fn yaml(rules: &Rules) -> String {
    let mut out = String::from("never_delete:\n  aws_resources:\n");
    let mut seen = BTreeSet::new();
    for (p, e) in &rules.arns {
        if seen.insert(p.clone()) {
            out += &format!("    - {{arn: \"{p}\"{}}}\n", expires(*e));
        }
    }
    out += "  tags:\n";
    let mut seen = BTreeSet::new();
    for (k, v, e) in &rules.tags {
        if seen.insert((k, v)) {
            let value = v.map_or(String::new(), |v| format!(", value: \"{}\"", VALUES[v]));
            out += &format!("    - {{key: {}{value}{}}}\n", KEYS[*k], expires(*e));
        }
    }
    out += "  accounts:\n";
    let mut seen = BTreeSet::new();
    for (a, e) in &rules.accounts {
        if seen.insert(a) {
            out += &format!("    - {{id: \"{}\"{}}}\n", ACCOUNTS[*a], expires(*e));
        }
    }
    out += "  kubernetes:\n    namespaces:\n";
    let mut seen = BTreeSet::new();
    for (n, e) in &rules.namespaces {
        if seen.insert(n) {
            out += &format!("      - {{name: {}{}}}\n", NAMESPACES[*n], expires(*e));
        }
    }
    out += "    labels:\n";
    let mut seen = BTreeSet::new();
    for (s, e) in &rules.selectors {
        if seen.insert(s) {
            out += &format!(
                "      - {{selector: \"{}\"{}}}\n",
                SELECTORS[*s],
                expires(*e)
            );
        }
    }
    out
}

fn labels() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..2usize, 0..3usize), 0..3)
}

fn resource(patterns: Vec<String>) -> impl Strategy<Value = Resource> {
    let arn = if patterns.is_empty() {
        random_arn().boxed()
    } else {
        prop_oneof![
            random_arn(),
            (
                prop::sample::select(patterns),
                prop::sample::select(&["", "a", "b/:", "ab"][..]),
                prop::sample::select(&['a', '/', ':'][..])
            )
                .prop_map(|(p, fill, one)| instantiate(&p, fill, one)),
        ]
        .boxed()
    };
    (
        prop::option::of(arn),
        prop::option::of(0..3usize),
        labels(),
        any::<bool>(),
        prop::option::of((
            prop::option::of(0..4usize),
            any::<bool>(),
            labels(),
            labels(),
        )),
    )
        .prop_map(|(arn, account, tags, unreadable, kube)| Resource {
            arn,
            account: account.map(|a| ACCOUNTS[a].to_owned()),
            tags: tags
                .into_iter()
                .map(|(k, v)| (KEYS[k].to_owned(), VALUES[v].to_owned()))
                .collect(),
            tags_unreadable: unreadable.then(|| "denied".to_owned()),
            kubernetes: kube.map(|(ns, is_namespace, own, of_ns)| {
                let ns = ns.map(|n| ["n1", "n2", "n3", "other"][n].to_owned());
                let to_map = |l: Vec<(usize, usize)>| {
                    l.into_iter()
                        .map(|(k, v)| (KEYS[k].to_owned(), VALUES[v].to_owned()))
                        .collect()
                };
                KubeObject {
                    kind: if is_namespace { "Namespace" } else { "Pod" }.to_owned(),
                    name: ns.clone().unwrap_or_else(|| "x".to_owned()),
                    namespace: if is_namespace { None } else { ns },
                    labels: to_map(own),
                    namespace_labels: to_map(of_ns),
                }
            }),
        })
}

fn case() -> impl Strategy<Value = (Rules, Vec<Resource>)> {
    rules().prop_flat_map(|rules| {
        let patterns: Vec<String> = rules.arns.iter().map(|(p, _)| p.clone()).collect();
        (
            Just(rules),
            prop::collection::vec(resource(patterns), 1..16),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compiled_agrees_with_naive((rules, resources) in case()) {
        let yaml = yaml(&rules);
        let w = Whitelist::from_yaml_str(&yaml, "prop.yaml")
            .unwrap_or_else(|e| panic!("generated whitelist should load:\n{e}\n{yaml}"));
        let now = ts("2026-06-01T00:00:00Z");
        for r in &resources {
            prop_assert_eq!(w.verdict(r, now), naive::verdict(&w, r, now), "resource {:?}\n{}", r, yaml);
            prop_assert_eq!(w.matching_rules(r), naive::matching_rules(&w, r), "resource {:?}\n{}", r, yaml);
        }
    }

    /// The regex translation of a glob part and the reference glob matcher agree, for every
    /// part position (including the resource part with `:` and `/`).
    #[test]
    fn one_pattern_one_arn(p in pattern(), arn in random_arn(), fill in "[ab/:]{0,3}") {
        let w = Whitelist::from_yaml_str(
            &format!("never_delete:\n  aws_resources: [\"{p}\"]\n"),
            "prop.yaml",
        ).unwrap();
        let now = ts("2026-06-01T00:00:00Z");
        for candidate in [arn, instantiate(&p, &fill, 'a')] {
            let r = Resource::aws(candidate.clone());
            let compiled = w.verdict(&r, now);
            prop_assert_eq!(&compiled, &naive::verdict(&w, &r, now));
            let pattern = whitelist::arn::ArnPattern::parse(&p).unwrap();
            prop_assert_eq!(
                compiled.as_ref().is_some_and(|v| v.rule().is_some()),
                pattern.matches(&candidate)
            );
        }
    }
}

#[test]
fn instantiated_patterns_do_match() {
    // Guards the generator: filling wildcards of a pattern must give a matching ARN, or the
    // properties above would mostly test non-matches.
    let p = "arn:a*:b?:*::a/*:b";
    let arn = instantiate(p, "ab", 'a');
    assert!(whitelist::arn::ArnPattern::parse(p).unwrap().matches(&arn));
}
