//! Compiled matcher vs the naive rule-by-rule loop, on 1,000 synthetic rules.
//!
//! First one full pass of each over 1,000,000 synthetic resources, timed with `Instant` and
//! printed (the figure the issue asks for: compiled under 1 s on one core); then a small
//! criterion group per resource. Under `cargo test --benches` (no `--bench` flag) the full pass
//! shrinks to 10,000 resources so that the test run stays quick.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use jiff::Timestamp;
use whitelist::{Protection, Resource, Whitelist, naive};

const SERVICES: [(&str, &str); 12] = [
    ("ec2", "instance/"),
    ("ec2", "volume/"),
    ("rds", "db:"),
    ("rds", "cluster:"),
    ("s3", ""),
    ("eks", "cluster/"),
    ("lambda", "function:"),
    ("dynamodb", "table/"),
    ("sqs", ""),
    ("elasticache", "cluster:"),
    ("logs", "log-group:/aws/"),
    ("ecr", "repository/"),
];
const REGIONS: [&str; 5] = [
    "eu-west-1",
    "us-east-1",
    "us-west-2",
    "eu-central-1",
    "ap-southeast-1",
];
const TEAMS: [&str; 8] = [
    "stoa", "payments", "search", "ml", "web", "data", "infra", "edge",
];
const TAG_KEYS: [&str; 6] = ["team", "env", "critical", "cost-center", "owner", "tier"];

/// A small deterministic generator (xorshift64*), so every run measures the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn account(i: usize) -> String {
    format!("{:012}", 100_000_000_000 + i * 7919)
}

/// 1,000 rules: 800 ARN patterns of several shapes, 120 tags, 40 namespaces, 30 selectors,
/// 10 accounts. Returns the YAML and the ARN patterns (to make matching resources from).
fn rules(rng: &mut Rng) -> (String, Vec<String>) {
    let mut yaml = String::from("never_delete:\n  aws_resources:\n");
    let mut patterns = Vec::new();
    for i in 0..800 {
        let (service, prefix) = SERVICES[rng.below(SERVICES.len())];
        let region = if rng.chance(50) {
            "*".to_owned()
        } else {
            rng.pick(&REGIONS).to_owned()
        };
        let acct = if rng.chance(40) {
            "*".to_owned()
        } else {
            account(rng.below(100))
        };
        let (region, acct) = if service == "s3" {
            (String::new(), String::new())
        } else {
            (region, acct)
        };
        let team = rng.pick(&TEAMS);
        let resource = match rng.below(5) {
            0 => format!("{prefix}{team}-{i}-*"),
            1 => format!("{prefix}{team}-prod-{i}"),
            2 => format!("{prefix}*-{team}-{i}"),
            3 => format!("{prefix}{team}-{i}-??"),
            _ => format!("{prefix}{team}-{i}-*-blue"),
        };
        let pattern = format!("arn:aws:{service}:{region}:{acct}:{resource}");
        writeln!(yaml, "    - {{arn: \"{pattern}\", reason: rule {i}}}").unwrap();
        patterns.push(pattern);
    }
    yaml.push_str("  tags:\n");
    for i in 0..120 {
        let key = rng.pick(&TAG_KEYS);
        writeln!(yaml, "    - {{key: {key}, value: \"protected-{i}\"}}").unwrap();
    }
    yaml.push_str("  accounts:\n");
    for i in 0..10 {
        writeln!(yaml, "    - \"{}\"", account(1000 + i)).unwrap();
    }
    yaml.push_str("  kubernetes:\n    namespaces:\n");
    for i in 0..40 {
        writeln!(yaml, "      - ns-{i}").unwrap();
    }
    yaml.push_str("    labels:\n");
    for i in 0..30 {
        let team = TEAMS[i % TEAMS.len()];
        writeln!(yaml, "      - \"team={team},tier in (core-{i},db-{i})\"").unwrap();
    }
    (yaml, patterns)
}

/// A resource: 1 in 10 a Kubernetes object; of the AWS ones about 1 in 20 is derived from a rule's pattern, so that a few percent end up
/// protected and the matcher does real work on both paths.
fn resource(rng: &mut Rng, patterns: &[String]) -> Resource {
    if rng.chance(10) {
        let ns = format!("ns-{}", rng.below(400));
        let team = rng.pick(&TEAMS);
        let tier = format!("core-{}", rng.below(60));
        return Resource::kubernetes("Deployment", Some(&ns), format!("app-{}", rng.below(1000)))
            .with_label("team", team)
            .with_namespace_label("tier", tier);
    }
    let mut r = if rng.chance(5) {
        let p = &patterns[rng.below(patterns.len())];
        let region = rng.pick(&REGIONS);
        let acct = account(rng.below(100));
        let mut arn = String::new();
        for (i, part) in p.splitn(6, ':').enumerate() {
            if i > 0 {
                arn.push(':');
            }
            let filled = match (i, part) {
                (3, "*") => region.to_owned(),
                (4, "*") => acct.clone(),
                _ => part.replace('*', "x1").replace('?', "7"),
            };
            arn.push_str(&filled);
        }
        Resource::aws(arn)
    } else {
        let (service, prefix) = SERVICES[rng.below(SERVICES.len())];
        let team = rng.pick(&TEAMS);
        let n = rng.below(5000);
        if service == "s3" {
            Resource::aws(format!("arn:aws:s3:::{team}-bucket-{n}"))
        } else {
            Resource::aws(format!(
                "arn:aws:{service}:{}:{}:{prefix}{team}-{n}-{}",
                rng.pick(&REGIONS),
                account(rng.below(200)),
                rng.next() % 100_000
            ))
        }
    };
    for _ in 0..rng.below(4) {
        let key = rng.pick(&TAG_KEYS);
        let value = if rng.chance(1) {
            format!("protected-{}", rng.below(120))
        } else {
            format!("v{}", rng.below(50))
        };
        r = r.with_tag(key, value);
    }
    r
}

fn label(p: &Option<Protection>) -> Option<(&'static str, usize)> {
    p.as_ref()
        .map(|p| (p.kind(), p.rule().map_or(usize::MAX, |r| r.index())))
}

fn full_pass(whitelist: &Whitelist, resources: &[Resource], now: Timestamp) {
    let n = resources.len();
    let rules = whitelist.len();

    let start = Instant::now();
    let compiled: Vec<_> = resources
        .iter()
        .map(|r| label(&whitelist.verdict(r, now)))
        .collect();
    let compiled_time = start.elapsed();

    let start = Instant::now();
    let reference: Vec<_> = resources
        .iter()
        .map(|r| label(&naive::verdict(whitelist, r, now)))
        .collect();
    let naive_time = start.elapsed();

    let protected = compiled.iter().filter(|v| v.is_some()).count();
    let disagree = compiled
        .iter()
        .zip(&reference)
        .filter(|(a, b)| a != b)
        .count();
    println!(
        "compiled: {:.2} s for {} resources x {} rules ({} protected); naive: {:.2} s ({:.0}x slower); verdicts that differ: {disagree}",
        compiled_time.as_secs_f64(),
        thousands(n),
        thousands(rules),
        thousands(protected),
        naive_time.as_secs_f64(),
        naive_time.as_secs_f64() / compiled_time.as_secs_f64(),
    );
    assert_eq!(
        disagree, 0,
        "the compiled matcher must agree with the naive one"
    );
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let (yaml, patterns) = rules(&mut rng);
    let whitelist = Whitelist::from_yaml_str(&yaml, "bench.yaml").expect("bench rules load");
    assert_eq!(whitelist.len(), 1000);
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let n = if benching { 1_000_000 } else { 10_000 };
    let resources: Vec<Resource> = (0..n).map(|_| resource(&mut rng, &patterns)).collect();

    full_pass(&whitelist, &resources, now);

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("verdict per resource, 1,000 rules");
    let sample = &resources[..1000.min(resources.len())];
    let mut i = 0;
    group.bench_function("compiled", |b| {
        b.iter(|| {
            i = (i + 1) % sample.len();
            black_box(whitelist.verdict(&sample[i], now))
        })
    });
    group.bench_function("naive", |b| {
        b.iter(|| {
            i = (i + 1) % sample.len();
            black_box(naive::verdict(&whitelist, &sample[i], now))
        })
    });
    group.finish();
    c.final_summary();
}
