//! The rules: from certificates seen at places and endpoint probes to findings.
//!
//! One `certificate_expiry` finding per distinct certificate (SHA-256 fingerprint), listing every
//! location it was seen at. The other problems are separate findings so that each can be routed
//! and counted on its own:
//!
//! | type | severity | per |
//! |---|---|---|
//! | `certificate_expiry` | by days remaining and [`Thresholds`] | certificate |
//! | `weak_key` (RSA < 2048 bits) | warning | certificate |
//! | `sha1_signature` (not on self-signed roots) | warning | certificate |
//! | `invalid_certificate` (data that is not a certificate) | warning | location |
//! | `hostname_mismatch` | critical | endpoint |
//! | `untrusted_chain` | critical | endpoint |
//! | `handshake_failed` | warning | endpoint |

use std::collections::BTreeMap;

use common::event::{Finding, Severity};
use jiff::Timestamp;
use serde_json::json;

use crate::cert::CertInfo;
use crate::config::Thresholds;
use crate::sources::{Sighting, Source};
use crate::tls::{self, Probe, Trust};

/// Smallest RSA modulus that is not a `weak_key`.
pub const MIN_RSA_BITS: usize = 2048;

/// Whole days from `now` to `not_after`, rounded down (negative once expired).
pub fn days_remaining(not_after: Timestamp, now: Timestamp) -> i64 {
    (not_after.as_second() - now.as_second()).div_euclid(86_400)
}

/// The expiry rule: expired or fewer than `critical_days` left is critical, fewer than
/// `warning_days` a warning, fewer than `info_days` info, otherwise ok.
pub fn expiry_severity(not_after: Timestamp, now: Timestamp, t: &Thresholds) -> Severity {
    let days = days_remaining(not_after, now);
    if not_after <= now || days < t.critical_days {
        Severity::Critical
    } else if days < t.warning_days {
        Severity::Warning
    } else if days < t.info_days {
        Severity::Info
    } else {
        Severity::Ok
    }
}

/// One distinct certificate, with where it was seen and its expiry verdict.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Its facts.
    pub info: CertInfo,
    /// Every place (source, resource), sorted by resource and unique.
    pub locations: Vec<(Source, String)>,
    /// The expiry verdict.
    pub severity: Severity,
    /// Whole days left (negative once expired).
    pub days_remaining: i64,
}

/// The outcome of the rules over one run's observations.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Findings, most urgent first.
    pub findings: Vec<Finding>,
    /// Distinct certificates.
    pub certificates: Vec<Evaluated>,
}

/// Applies every rule. Endpoint chains join the certificate pool, so a certificate served by an
/// endpoint and stored in a Secret is one finding with both locations.
pub fn evaluate(
    sightings: Vec<Sighting>,
    probes: &[Probe],
    trust: &Trust,
    thresholds: &Thresholds,
    now: Timestamp,
) -> Outcome {
    let mut findings = Vec::new();
    let mut all = sightings;
    for p in probes {
        findings.extend(endpoint_findings(p, trust, now));
        all.extend(p.chain.iter().map(|der| Sighting {
            source: Source::Endpoint,
            resource: p.endpoint.resource(),
            der: Ok(der.clone()),
        }));
    }

    let mut by_fingerprint: BTreeMap<String, Evaluated> = BTreeMap::new();
    for s in all {
        let der = match s.der {
            Ok(der) => der,
            Err(e) => {
                findings.push(
                    Finding::new(
                        "invalid_certificate",
                        Severity::Warning,
                        &s.resource,
                        format!("{} holds data that is not a certificate ({e})", s.resource),
                    )
                    .with("locations", json!([s.resource])),
                );
                continue;
            }
        };
        let fp = crate::cert::fingerprint(&der);
        if let Some(e) = by_fingerprint.get_mut(&fp) {
            e.locations.push((s.source, s.resource));
            continue;
        }
        match CertInfo::from_der(&der) {
            Ok(info) => {
                let severity = expiry_severity(info.not_after, now, thresholds);
                let days_remaining = days_remaining(info.not_after, now);
                by_fingerprint.insert(
                    fp,
                    Evaluated {
                        info,
                        locations: vec![(s.source, s.resource)],
                        severity,
                        days_remaining,
                    },
                );
            }
            Err(e) => findings.push(
                Finding::new(
                    "invalid_certificate",
                    Severity::Warning,
                    &s.resource,
                    format!(
                        "{} holds a certificate that cannot be parsed ({e})",
                        s.resource
                    ),
                )
                .with("locations", json!([s.resource])),
            ),
        }
    }

    let mut certificates: Vec<Evaluated> = by_fingerprint.into_values().collect();
    for c in &mut certificates {
        // By resource text, so `resource` (the first location) does not depend on the source.
        c.locations
            .sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        c.locations.dedup();
    }
    for c in &certificates {
        findings.extend(certificate_findings(c));
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| {
                let days = |f: &Finding| f.fields.get("days_remaining").and_then(|d| d.as_i64());
                days(a)
                    .unwrap_or(i64::MAX)
                    .cmp(&days(b).unwrap_or(i64::MAX))
            })
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.resource.cmp(&b.resource))
    });
    Outcome {
        findings,
        certificates,
    }
}

fn certificate_findings(c: &Evaluated) -> Vec<Finding> {
    let info = &c.info;
    let locations: Vec<&str> = c.locations.iter().map(|(_, r)| r.as_str()).collect();
    let resource = locations.first().copied().unwrap_or_default();
    let base = |kind: &str, severity: Severity, message: String| {
        Finding::new(kind, severity, resource, message)
            .with("subject", info.subject.clone())
            .with("issuer", info.issuer.clone())
            .with("serial", info.serial.clone())
            .with("not_after", info.not_after.to_string())
            .with("days_remaining", c.days_remaining)
            // Self-describing, as tools print it (`sha256:` then 64 hex digits).
            .with("fingerprint", format!("sha256:{}", info.fingerprint))
            .with("locations", json!(locations))
    };
    let when = if c.days_remaining < 0 {
        format!("expired {} day(s) ago", -c.days_remaining)
    } else {
        format!("expires in {} day(s)", c.days_remaining)
    };
    let places = if locations.len() > 1 {
        format!(" (seen at {} places)", locations.len())
    } else {
        String::new()
    };
    let mut out = vec![base(
        "certificate_expiry",
        c.severity,
        format!(
            "certificate {} {when}, on {}{places}",
            info.short_subject(),
            info.not_after
        ),
    )];
    if let Some(bits) = info.rsa_bits.filter(|b| *b < MIN_RSA_BITS) {
        out.push(
            base(
                "weak_key",
                Severity::Warning,
                format!(
                    "certificate {} has a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required",
                    info.short_subject()
                ),
            )
            .with("key_bits", bits),
        );
    }
    if info.sha1_signature() && !info.self_signed_ca {
        out.push(
            base(
                "sha1_signature",
                Severity::Warning,
                format!(
                    "certificate {} is signed with SHA-1, which clients reject",
                    info.short_subject()
                ),
            )
            .with("signature_algorithm", info.signature_oid.clone()),
        );
    }
    out
}

/// Findings about an endpoint itself: the handshake, the name, the trust path.
pub fn endpoint_findings(p: &Probe, trust: &Trust, now: Timestamp) -> Vec<Finding> {
    let resource = p.endpoint.resource();
    let name = p.endpoint.server_name().to_string();
    let mut out = Vec::new();
    if let Some(e) = &p.error
        && p.chain.is_empty()
    {
        out.push(
            Finding::new(
                "handshake_failed",
                Severity::Warning,
                &resource,
                format!("no certificate from {resource}: {e}"),
            )
            .with("server_name", name)
            .with("error", e.clone()),
        );
        return out;
    }
    let Some(leaf) = p.chain.first() else {
        return out;
    };
    if let Err(e) = tls::valid_for_name(leaf, &name) {
        let subject = CertInfo::from_der(leaf)
            .map(|i| i.subject)
            .unwrap_or_default();
        out.push(
            Finding::new(
                "hostname_mismatch",
                Severity::Critical,
                &resource,
                format!("the certificate of {resource} is not valid for {name}"),
            )
            .with("server_name", name.clone())
            .with("subject", subject)
            .with("error", e),
        );
    }
    // Trust is judged when the leaf is valid, so an expired certificate from a trusted CA is an
    // expiry finding only, not also an "untrusted" one.
    let at = match CertInfo::from_der(leaf) {
        Ok(i) if i.not_after <= now || i.not_before > now => Timestamp::from_second(
            i.not_before.as_second() + (i.not_after.as_second() - i.not_before.as_second()) / 2,
        )
        .unwrap_or(now),
        _ => now,
    };
    if let Err(e) = trust.verify(&p.chain, at) {
        out.push(
            Finding::new(
                "untrusted_chain",
                Severity::Critical,
                &resource,
                format!("the chain of {resource} does not lead to a configured root ({e})"),
            )
            .with("server_name", name)
            .with("error", e)
            .with("chain_length", p.chain.len()),
        );
    }
    if let Some(e) = &p.error {
        // The chain was recorded but the handshake failed after it (e.g. client auth required).
        out.push(
            Finding::new(
                "handshake_failed",
                Severity::Warning,
                &resource,
                format!("handshake with {resource} failed after the certificate: {e}"),
            )
            .with("error", e.clone()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcerts::{self, days_from_now, now};
    use common::config::HostPort;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn thresholds_at_their_boundaries() {
        let t = Thresholds::default();
        let n = now();
        let sev = |days: i64| expiry_severity(days_from_now(days), n, &t);
        assert_eq!(sev(-1), Severity::Critical);
        assert_eq!(sev(0), Severity::Critical, "expires now");
        assert_eq!(sev(3), Severity::Critical);
        assert_eq!(sev(6), Severity::Critical);
        assert_eq!(sev(7), Severity::Warning);
        assert_eq!(sev(20), Severity::Warning);
        assert_eq!(sev(29), Severity::Warning);
        assert_eq!(sev(30), Severity::Info);
        assert_eq!(sev(45), Severity::Info);
        assert_eq!(sev(60), Severity::Ok);
        assert_eq!(sev(90), Severity::Ok);
        let strict = Thresholds {
            critical_days: 30,
            warning_days: 60,
            info_days: 90,
        };
        assert_eq!(
            expiry_severity(days_from_now(45), n, &strict),
            Severity::Warning
        );
    }

    #[test]
    fn days_round_down_and_go_negative() {
        let n = ts("2026-12-01T00:00:00Z");
        assert_eq!(days_remaining(ts("2026-12-03T23:59:59Z"), n), 2);
        assert_eq!(days_remaining(ts("2026-11-30T23:00:00Z"), n), -1);
    }

    fn seen(resource: &str, der: &[u8]) -> Sighting {
        Sighting {
            source: Source::Kubernetes,
            resource: resource.into(),
            der: Ok(der.to_vec()),
        }
    }

    #[test]
    fn one_certificate_in_two_places_is_one_finding_with_both() {
        let ca = testcerts::ca("Dedup Root");
        let leaf = testcerts::leaf(&ca, "shared.example", days_from_now(20));
        let out = evaluate(
            vec![
                seen("k8s:secret/b/two", leaf.der()),
                seen("k8s:secret/a/one", leaf.der()),
                seen("k8s:secret/a/one", leaf.der()),
            ],
            &[],
            &Trust::new(false, &[]).expect("trust"),
            &Thresholds::default(),
            now(),
        );
        assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
        let f = &out.findings[0];
        assert_eq!(f.kind, "certificate_expiry");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.resource, "k8s:secret/a/one");
        assert_eq!(
            f.fields["locations"],
            json!(["k8s:secret/a/one", "k8s:secret/b/two"])
        );
        assert_eq!(f.fields["days_remaining"], 20);
        assert_eq!(f.fields["not_after"], days_from_now(20).to_string());
        assert!(
            f.fields["subject"]
                .as_str()
                .unwrap_or("")
                .contains("shared.example")
        );
    }

    #[test]
    fn weak_keys_sha1_and_garbage_each_get_their_finding() {
        let weak = crate::cert::pem_certificates(testcerts::RSA1024_PEM.as_bytes()).expect("pem");
        let sha1 = crate::cert::pem_certificates(testcerts::SHA1_PEM.as_bytes()).expect("pem");
        let out = evaluate(
            vec![
                seen("k8s:secret/x/weak", &weak[0]),
                seen("k8s:secret/x/sha1", &sha1[0]),
                Sighting {
                    source: Source::Kubernetes,
                    resource: "k8s:secret/x/junk".into(),
                    der: Err("tls.crt: no CERTIFICATE block".into()),
                },
            ],
            &[],
            &Trust::new(false, &[]).expect("trust"),
            &Thresholds::default(),
            now(),
        );
        let kinds: Vec<(&str, &str, Severity)> = out
            .findings
            .iter()
            .map(|f| (f.kind.as_str(), f.resource.as_str(), f.severity))
            .collect();
        assert!(
            kinds.contains(&("weak_key", "k8s:secret/x/weak", Severity::Warning)),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("sha1_signature", "k8s:secret/x/sha1", Severity::Warning)),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(
                "invalid_certificate",
                "k8s:secret/x/junk",
                Severity::Warning
            )),
            "{kinds:?}"
        );
        assert!(!kinds.contains(&("weak_key", "k8s:secret/x/sha1", Severity::Warning)));
        let weak_finding = out
            .findings
            .iter()
            .find(|f| f.kind == "weak_key")
            .expect("weak");
        assert_eq!(weak_finding.fields["key_bits"], 1024);
        assert_eq!(out.certificates.len(), 2);
    }

    #[test]
    fn endpoint_problems_are_findings() {
        let root = testcerts::ca("Endpoint Root");
        let good = testcerts::leaf(&root, "localhost", days_from_now(90));
        let trust = Trust::new(false, &[root.cert.der().to_vec()]).expect("trust");
        let probe = |chain: Vec<Vec<u8>>, error: Option<&str>| Probe {
            endpoint: crate::config::Endpoint {
                address: HostPort::parse("127.0.0.1:8443").expect("hp"),
                sni: Some("localhost".into()),
            },
            chain,
            error: error.map(String::from),
        };
        assert!(
            endpoint_findings(&probe(vec![good.der().to_vec()], None), &trust, now()).is_empty()
        );

        let expired = testcerts::leaf(&root, "localhost", days_from_now(-3));
        assert!(
            endpoint_findings(&probe(vec![expired.der().to_vec()], None), &trust, now()).is_empty(),
            "an expired certificate from a trusted root is only an expiry finding"
        );

        let wrong = testcerts::leaf(&root, "wrong.example", days_from_now(90));
        let f = endpoint_findings(&probe(vec![wrong.der().to_vec()], None), &trust, now());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind.as_str(), f[0].severity),
            ("hostname_mismatch", Severity::Critical)
        );

        let selfsigned = testcerts::self_signed("localhost", days_from_now(90));
        let f = endpoint_findings(&probe(vec![selfsigned.der().to_vec()], None), &trust, now());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind.as_str(), f[0].severity),
            ("untrusted_chain", Severity::Critical)
        );

        let f = endpoint_findings(&probe(vec![], Some("connect: refused")), &trust, now());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind.as_str(), f[0].severity),
            ("handshake_failed", Severity::Warning)
        );
        assert_eq!(f[0].resource, "https://127.0.0.1:8443");
    }
}
