//! Warnings about a valid whitelist: things a reviewer should look at, which do not make the
//! file unsafe to use (a warning never removes protection that the author could have meant).

use std::collections::HashMap;

use jiff::Timestamp;

use crate::arn::{ArnPattern, PART_NAMES, glob_match, is_literal, is_match_all};
use crate::error::{Diagnostic, Severity};
use crate::rule::{Matcher, Rule};
use crate::whitelist::Whitelist;

/// The AWS partitions; a pattern whose partition part matches none of them can never match.
pub(crate) const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

pub(crate) fn warnings(whitelist: &Whitelist, now: Timestamp) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if whitelist.is_empty() {
        out.push(Diagnostic {
            severity: Severity::Warning,
            origin: whitelist.origin().to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            message: "the whitelist has no rules: it protects nothing".into(),
        });
    }
    let mut normal_forms: [HashMap<String, &Rule>; 5] = Default::default();
    for rule in whitelist.all_rules() {
        let mut warn = |message: String| {
            out.push(Diagnostic {
                severity: Severity::Warning,
                origin: whitelist.origin().to_owned(),
                line: rule.line(),
                column: rule.column(),
                path: format!("never_delete.{}[{}]", rule.section(), rule.index()),
                message,
            });
        };
        if let Some(expires) = rule.expires()
            && !rule.is_active(now)
        {
            warn(format!(
                "protection lapsed at {expires}: the rule no longer protects anything (remove it or extend `expires`)"
            ));
        }
        let normal = match &rule.matcher {
            Matcher::Arn(pattern) => {
                arn_warnings(pattern, &mut warn);
                Some(pattern.normalized())
            }
            Matcher::Labels(selector) => {
                if !selector.has_positive_requirement() {
                    warn(
                        "selector only says which labels must be absent or different, so it protects nearly every object".into(),
                    );
                }
                Some(selector.canonical())
            }
            Matcher::Tag { key, value } => {
                // AWS limits; longer keys or values cannot exist.
                if key.chars().count() > 128 {
                    warn("tag key is longer than 128 characters: this rule can never match".into());
                }
                if value.as_ref().is_some_and(|v| v.chars().count() > 256) {
                    warn(
                        "tag value is longer than 256 characters: this rule can never match".into(),
                    );
                }
                None
            }
            Matcher::Account(_) | Matcher::Namespace(_) => None,
        };
        if let Some(normal) = normal {
            let seen = &mut normal_forms[rule.section().slot()];
            match seen.get(&normal) {
                Some(first) => warn(format!(
                    "protects the same resources as {}[{}] at line {} (equal after normalisation: {normal:?})",
                    first.section(),
                    first.index(),
                    first.line()
                )),
                None => {
                    seen.insert(normal, rule);
                }
            }
        }
    }
    out
}

fn arn_warnings(pattern: &ArnPattern, warn: &mut impl FnMut(String)) {
    let part = |i| pattern.part(i);
    if !PARTITIONS.iter().any(|p| glob_match(part(1), p)) {
        warn(format!(
            "partition `{}` matches no AWS partition ({}): this rule can never match",
            part(1),
            PARTITIONS.join(", ")
        ));
    }
    let ok_chars =
        |glob: &str, ok: fn(char) -> bool| glob.chars().all(|c| c == '*' || c == '?' || ok(c));
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if part(2).is_empty() || !ok_chars(part(2), lower) {
        warn(format!(
            "service `{}` is not a service name as AWS writes it (lowercase letters, digits, `-`); matching is case-sensitive, so this rule can never match",
            part(2)
        ));
    }
    let region = part(3);
    if !ok_chars(region, lower) || (is_literal(region) && !region.is_empty() && !is_region(region))
    {
        warn(format!(
            "region `{region}` is not a region name such as eu-west-1 (or empty for global services): this rule can never match"
        ));
    }
    let account = part(4);
    // `aws` is the account of AWS-managed resources, e.g. arn:aws:iam::aws:policy/....
    let account_ok = account == "aws"
        || (ok_chars(account, |c| c.is_ascii_digit())
            && (!is_literal(account) || account.is_empty() || account.len() == 12));
    if !account_ok {
        warn(format!(
            "account `{account}` is not a 12-digit account id (or empty, or `aws`): this rule can never match"
        ));
    }
    if pattern.as_str().contains("${") {
        warn(
            "`${...}` policy variables are not expanded here: the text is matched literally".into(),
        );
    }
    let all = |i| is_match_all(part(i));
    if all(2) && all(5) {
        let scope: Vec<String> = [1, 3, 4]
            .into_iter()
            .filter(|&i| !all(i))
            .map(|i| format!("{} `{}`", PART_NAMES[i], part(i)))
            .collect();
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!(" in {}", scope.join(", "))
        };
        warn(format!(
            "pattern protects every resource of every service{scope}: is that intended?"
        ));
    } else if all(3) && all(4) && all(5) {
        warn(format!(
            "pattern protects every `{}` resource in every account and region: is that intended?",
            part(2)
        ));
    }
}

/// `eu-west-1`, `us-gov-east-1`, `cn-north-1`, `us-isob-east-1`.
fn is_region(s: &str) -> bool {
    let pieces: Vec<&str> = s.split('-').collect();
    pieces.len() >= 3
        && pieces[0].len() == 2
        && pieces[..pieces.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && pieces[pieces.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !pieces[pieces.len() - 1].is_empty()
}
