//! ARN patterns in AWS's `ArnLike` convention, and the glob matching that both matchers share.
//!
//! An ARN has six colon-separated parts, `arn:partition:service:region:account:resource`; the
//! resource part is everything after the fifth colon, so it may itself contain `:` and `/`. A
//! pattern is split the same way and each part is matched separately: `*` matches any run of
//! characters (including none) and `?` exactly one character, both *within* their part, so a
//! `*` in the region part never swallows a colon. Every other character is literal and matching
//! is case-sensitive, as in IAM.

use std::fmt;

/// The fixed shape of an ARN, quoted in error messages.
pub const ARN_SHAPE: &str = "arn:partition:service:region:account:resource";

/// Names of the six parts, used to say which part of a pattern a warning is about.
pub(crate) const PART_NAMES: [&str; 6] = [
    "prefix",
    "partition",
    "service",
    "region",
    "account",
    "resource",
];

/// Splits an ARN (or ARN pattern) into its six parts: five colons separate the first five parts
/// and everything after the fifth colon is the resource part.
///
/// Returns the number of parts found instead when there are fewer than six.
pub fn split_arn(arn: &str) -> Result<[&str; 6], usize> {
    let mut parts = [""; 6];
    let mut rest = arn;
    for (found, part) in parts.iter_mut().take(5).enumerate() {
        match rest.split_once(':') {
            Some((head, tail)) => {
                *part = head;
                rest = tail;
            }
            None => return Err(found + 1),
        }
    }
    parts[5] = rest;
    Ok(parts)
}

/// Matches `text` against one glob part: `*` is any run of characters, `?` one character, all
/// else literal and case-sensitive.
///
/// This is the reference implementation (the naive matcher and the property tests use it); the
/// compiled matcher translates the same globs to regular expressions instead. It runs in
/// O(|pattern| x |text|) at worst: on a mismatch after a `*` it only ever retries from the most
/// recent `*`, which is enough because a later `*` can absorb anything an earlier one could.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Works on bytes without allocating (the naive matcher calls it millions of times), but
    // steps over whole UTF-8 characters so that `?` is one character, as in the regex version.
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` in the pattern and the text position it is being tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        let t_len = utf8_len(t[ti]);
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    backtrack = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += t_len;
                    continue;
                }
                c => {
                    let p_len = utf8_len(c);
                    if p[pi..pi + p_len] == t[ti..ti + t_len] {
                        pi += p_len;
                        ti += t_len;
                        continue;
                    }
                }
            }
        }
        match backtrack {
            // Let the last `*` absorb one more character and retry after it.
            Some((star, at)) => {
                let at = at + utf8_len(t[at]);
                backtrack = Some((star, at));
                pi = star + 1;
                ti = at;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence starting with byte `b` (input is valid UTF-8).
fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// True when the glob has no `*` or `?`, so it matches exactly one string (itself).
pub(crate) fn is_literal(glob: &str) -> bool {
    !glob.contains(['*', '?'])
}

/// True when the glob matches every string: it is non-empty and made only of `*`.
pub(crate) fn is_match_all(glob: &str) -> bool {
    !glob.is_empty() && glob.chars().all(|c| c == '*')
}

/// Rewrites a glob to a canonical spelling that matches the same strings: within every run of
/// wildcards the `?`s come first and several `*` collapse into one (`*?*` and `?*` are the same
/// glob). Two patterns with equal normal forms protect exactly the same resources.
pub(crate) fn normalize_glob(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' || c == '?' {
            let (mut questions, mut star) = (usize::from(c == '?'), c == '*');
            while let Some(&n) = chars.peek() {
                match n {
                    '?' => questions += 1,
                    '*' => star = true,
                    _ => break,
                }
                chars.next();
            }
            out.extend(std::iter::repeat_n('?', questions));
            if star {
                out.push('*');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Translates one glob part to a regular expression matching the same strings in full (the
/// caller anchors the search at the start; `\z` anchors the end).
pub(crate) fn glob_to_regex(glob: &str) -> String {
    let mut re = String::with_capacity(glob.len() * 2 + 8);
    // `s` lets `.` match a newline too: a glob's `*` means "anything", with no exception.
    re.push_str("(?s:");
    let mut literal = String::new();
    for c in glob.chars() {
        match c {
            '*' | '?' => {
                re.push_str(&regex_syntax_escape(&literal));
                literal.clear();
                re.push_str(if c == '*' { ".*" } else { "." });
            }
            _ => literal.push(c),
        }
    }
    re.push_str(&regex_syntax_escape(&literal));
    re.push_str(")\\z");
    re
}

fn regex_syntax_escape(literal: &str) -> String {
    regex::escape(literal)
}

/// A validated ARN pattern, kept split into its six parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnPattern {
    text: String,
    /// Byte offsets of the five separating colons, so `part()` can slice `text`.
    colons: [usize; 5],
}

/// Why a string is not a valid ARN pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArnPatternError {
    /// The pattern is the empty string.
    Empty,
    /// The pattern has fewer than six colon-separated parts.
    TooFewParts(usize),
    /// The first part is not the literal `arn`.
    BadPrefix(String),
    /// The pattern contains whitespace or a control character, which no ARN contains.
    BadCharacter(char),
}

impl fmt::Display for ArnPatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty ARN pattern"),
            Self::TooFewParts(n) => {
                write!(f, "ARN pattern has {n} parts, expected 6 ({ARN_SHAPE})")
            }
            Self::BadPrefix(p) => write!(
                f,
                "ARN pattern must start with `arn:`, found `{p}:` ({ARN_SHAPE})"
            ),
            Self::BadCharacter(c) => write!(
                f,
                "ARN pattern contains {c:?}; ARNs never contain whitespace or control characters"
            ),
        }
    }
}

impl ArnPattern {
    /// Parses and validates a pattern: six parts, the literal `arn` prefix, no whitespace or
    /// control characters.
    pub fn parse(text: &str) -> Result<Self, ArnPatternError> {
        if text.is_empty() {
            return Err(ArnPatternError::Empty);
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(ArnPatternError::BadCharacter(c));
        }
        let parts = split_arn(text).map_err(ArnPatternError::TooFewParts)?;
        if parts[0] != "arn" {
            return Err(ArnPatternError::BadPrefix(parts[0].to_owned()));
        }
        let mut colons = [0; 5];
        let mut offset = 0;
        for (i, part) in parts.iter().take(5).enumerate() {
            offset += part.len();
            colons[i] = offset;
            offset += 1;
        }
        Ok(Self {
            text: text.to_owned(),
            colons,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Part `i` of the pattern (0 = the `arn` prefix, 5 = the resource part).
    ///
    /// # Panics
    /// When `i > 5`.
    pub fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.colons[i - 1] + 1 };
        let end = if i == 5 {
            self.text.len()
        } else {
            self.colons[i]
        };
        &self.text[start..end]
    }

    /// Matches an ARN part by part with [`glob_match`]; an ARN with fewer than six parts matches
    /// no pattern.
    pub fn matches(&self, arn: &str) -> bool {
        match split_arn(arn) {
            Ok(parts) => (0..6).all(|i| glob_match(self.part(i), parts[i])),
            Err(_) => false,
        }
    }

    /// The pattern with every part normalised (see `normalize_glob`); equal normal forms
    /// protect the same resources.
    pub(crate) fn normalized(&self) -> String {
        (0..6)
            .map(|i| normalize_glob(self.part(i)))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl fmt::Display for ArnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_colons_and_slashes_in_the_resource_part() {
        assert_eq!(
            split_arn("arn:aws:rds:eu-west-1:123456789012:db:stoa-prod-1"),
            Ok([
                "arn",
                "aws",
                "rds",
                "eu-west-1",
                "123456789012",
                "db:stoa-prod-1"
            ])
        );
        assert_eq!(
            split_arn("arn:aws:s3:::bucket/key/with:colon"),
            Ok(["arn", "aws", "s3", "", "", "bucket/key/with:colon"])
        );
        assert_eq!(split_arn("arn:aws:s3"), Err(3));
        assert_eq!(split_arn(""), Err(1));
        assert_eq!(
            split_arn("arn:aws:s3:::"),
            Ok(["arn", "aws", "s3", "", "", ""])
        );
    }

    #[test]
    fn glob_star_question_and_literals() {
        assert!(glob_match("i-stoa-*", "i-stoa-"));
        assert!(glob_match("i-stoa-*", "i-stoa-0abc"));
        assert!(!glob_match("i-stoa-*", "i-stob-0abc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
        assert!(glob_match("?", "x"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("?", "xy"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*a*a*", "banana"));
        // Metacharacters of regular expressions are literal.
        assert!(glob_match("a.b", "a.b"));
        assert!(!glob_match("a.b", "axb"));
        assert!(glob_match("a+(b)", "a+(b)"));
        assert!(!glob_match("a+", "aa"));
        // Case-sensitive.
        assert!(!glob_match("Stoa", "stoa"));
        // `?` is one character, not one byte.
        assert!(glob_match("?", "é"));
    }

    #[test]
    fn pattern_errors() {
        assert_eq!(
            ArnPattern::parse("arn:aws:ec2:instance"),
            Err(ArnPatternError::TooFewParts(4))
        );
        assert_eq!(
            ArnPatternError::TooFewParts(4).to_string(),
            "ARN pattern has 4 parts, expected 6 (arn:partition:service:region:account:resource)"
        );
        assert_eq!(
            ArnPattern::parse("arm:aws:s3:::b"),
            Err(ArnPatternError::BadPrefix("arm".into()))
        );
        assert_eq!(ArnPattern::parse(""), Err(ArnPatternError::Empty));
        assert_eq!(
            ArnPattern::parse("arn:aws:s3:::my bucket"),
            Err(ArnPatternError::BadCharacter(' '))
        );
    }

    #[test]
    fn parts_of_a_pattern() {
        let p = ArnPattern::parse("arn:aws:rds:*:*:db:stoa-prod-*").unwrap();
        let parts: Vec<_> = (0..6).map(|i| p.part(i)).collect();
        assert_eq!(parts, ["arn", "aws", "rds", "*", "*", "db:stoa-prod-*"]);
        let s3 = ArnPattern::parse("arn:aws:s3:::stoa-artifacts").unwrap();
        assert_eq!(s3.part(3), "");
        assert_eq!(s3.part(4), "");
        assert_eq!(s3.part(5), "stoa-artifacts");
    }

    #[test]
    fn arn_like_edge_cases() {
        let m = |p: &str, a: &str| ArnPattern::parse(p).unwrap().matches(a);
        // Resource paths with `/` are matched by `*` within the resource part.
        assert!(m(
            "arn:aws:ec2:*:*:instance/i-stoa-*",
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-stoa-0abc"
        ));
        assert!(m(
            "arn:aws:s3:::stoa-*",
            "arn:aws:s3:::stoa-logs/2025/01/x.gz"
        ));
        // S3 ARNs have an empty region and account: an empty pattern part matches only empty,
        // `*` matches empty too.
        assert!(m(
            "arn:aws:s3:::stoa-artifacts",
            "arn:aws:s3:::stoa-artifacts"
        ));
        assert!(m(
            "arn:aws:s3:*:*:stoa-artifacts",
            "arn:aws:s3:::stoa-artifacts"
        ));
        assert!(!m(
            "arn:aws:s3:::stoa-artifacts",
            "arn:aws:s3:eu-west-1::stoa-artifacts"
        ));
        // `*` stays within its part: the region `*` cannot absorb the account's colon.
        // (A whole-string glob would let it span `eu-west-1:extra` and match.)
        assert!(!m(
            "arn:aws:ec2:*:123456789012:instance/i-1",
            "arn:aws:ec2:eu-west-1:extra:123456789012:instance/i-1"
        ));
        assert_eq!(
            ArnPattern::parse("arn:aws:ec2:*:instance/i-1"),
            Err(ArnPatternError::TooFewParts(5))
        );
        assert!(m(
            "arn:aws:ec2:*:1234567890??:instance/*",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-9"
        ));
        assert!(!m(
            "arn:aws:ec2:*:1234567890?:instance/*",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-9"
        ));
        // The resource part may contain colons; `*` there does cross them.
        assert!(m(
            "arn:aws:rds:*:*:db:*",
            "arn:aws:rds:eu-west-1:123456789012:db:stoa-prod-1"
        ));
        assert!(m(
            "arn:aws:logs:*:*:log-group:*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/x:*"
        ));
        // Regex metacharacters are literal.
        assert!(m("arn:aws:s3:::stoa.data", "arn:aws:s3:::stoa.data"));
        assert!(!m("arn:aws:s3:::stoa.data", "arn:aws:s3:::stoaXdata"));
        assert!(m(
            "arn:aws:s3:::a+(b)[c]{1}^$|\\",
            "arn:aws:s3:::a+(b)[c]{1}^$|\\"
        ));
        assert!(!m("arn:aws:s3:::a+", "arn:aws:s3:::aa"));
        // Case-sensitive in every part.
        assert!(!m("arn:aws:s3:::Stoa", "arn:aws:s3:::stoa"));
        assert!(!m("arn:AWS:s3:::stoa", "arn:aws:s3:::stoa"));
        // A malformed ARN matches nothing, not even the broadest pattern.
        assert!(!m("arn:*:*:*:*:*", "arn:aws:s3"));
    }

    #[test]
    fn normalisation_keeps_meaning() {
        assert_eq!(normalize_glob("a**b"), "a*b");
        assert_eq!(normalize_glob("*?*x?"), "?*x?");
        assert_eq!(normalize_glob("?*?"), "??*");
        assert_eq!(normalize_glob("abc"), "abc");
        let p = ArnPattern::parse("arn:aws:ec2:**:*:instance/i-*?").unwrap();
        assert_eq!(p.normalized(), "arn:aws:ec2:*:*:instance/i-?*");
    }

    #[test]
    fn regex_translation_escapes() {
        assert_eq!(glob_to_regex("a.b*"), r"(?s:a\.b.*)\z");
        assert_eq!(glob_to_regex("?"), r"(?s:.)\z");
        assert_eq!(glob_to_regex(""), r"(?s:)\z");
    }
}
