//! Kubernetes label selectors, in the syntax `kubectl -l` accepts.
//!
//! A selector is a comma-separated list of requirements that must all hold:
//!
//! | requirement          | holds when                                       |
//! |----------------------|--------------------------------------------------|
//! | `key=value`, `key==value` | the label is present with that value        |
//! | `key!=value`         | the label is absent, or present with another value |
//! | `key in (a,b)`       | the label is present with one of the values      |
//! | `key notin (a,b)`    | the label is absent, or present with none of them |
//! | `key`                | the label is present (any value)                 |
//! | `!key`               | the label is absent                              |
//!
//! Unlike Kubernetes, an empty selector is rejected: in Kubernetes it selects everything, which
//! in a never-delete list would be a silent "protect every object".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parsed, validated label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    /// Sorted and deduplicated; one value for `=`/`!=`, none for `exists`/`!`.
    values: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }

    /// Requirements that only say what must be absent select almost everything.
    fn is_positive(&self) -> bool {
        matches!(self.op, Op::Equals | Op::In | Op::Exists)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = || self.values.iter().next().map_or("", String::as_str);
        let list = || self.values.iter().cloned().collect::<Vec<_>>().join(",");
        match self.op {
            Op::Equals => write!(f, "{}={}", self.key, first()),
            Op::NotEquals => write!(f, "{}!={}", self.key, first()),
            Op::In => write!(f, "{} in ({})", self.key, list()),
            Op::NotIn => write!(f, "{} notin ({})", self.key, list()),
            Op::Exists => write!(f, "{}", self.key),
            Op::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// Why a selector string was rejected; the message names the offending token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError(String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Not => f.write_str("`!`"),
            Token::Eq => f.write_str("`=`"),
            Token::DoubleEq => f.write_str("`==`"),
            Token::NotEq => f.write_str("`!=`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::Comma => f.write_str("`,`"),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::NotEq);
                } else {
                    tokens.push(Token::Not);
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::DoubleEq);
                } else {
                    tokens.push(Token::Eq);
                }
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '<' | '>' => {
                return Err(SelectorError(format!(
                    "operator `{c}` is not supported in label selectors (use =, ==, !=, in, notin, key or !key)"
                )));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "!=(),<>".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Word(k)) => {
                validate_key(&k)?;
                Ok(k)
            }
            Some(t) => Err(SelectorError(format!("expected a label key, found {t}"))),
            None => Err(SelectorError("expected a label key, found the end".into())),
        }
    }

    fn value(&mut self, key: &str) -> Result<String, SelectorError> {
        match self.peek() {
            Some(Token::Word(_)) => {
                let Some(Token::Word(v)) = self.next() else {
                    unreachable!("peeked a word")
                };
                validate_value(&v)?;
                Ok(v)
            }
            Some(t) => Err(SelectorError(format!(
                "expected a value for `{key}`, found {t}"
            ))),
            None => Err(SelectorError(format!(
                "expected a value for `{key}`, found the end"
            ))),
        }
    }

    fn set(&mut self, key: &str) -> Result<BTreeSet<String>, SelectorError> {
        match self.next() {
            Some(Token::Open) => {}
            Some(t) => {
                return Err(SelectorError(format!(
                    "expected `(` after the operator for `{key}`, found {t}"
                )));
            }
            None => {
                return Err(SelectorError(format!(
                    "expected `(` after the operator for `{key}`, found the end"
                )));
            }
        }
        let mut values = BTreeSet::new();
        loop {
            values.insert(self.value(key)?);
            match self.next() {
                Some(Token::Comma) => continue,
                Some(Token::Close) => return Ok(values),
                Some(t) => {
                    return Err(SelectorError(format!(
                        "expected `,` or `)` in the values for `{key}`, found {t}"
                    )));
                }
                None => {
                    return Err(SelectorError(format!(
                        "unclosed `(` in the values for `{key}`"
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: BTreeSet::new(),
            });
        }
        let key = self.key()?;
        let (op, values) = match self.peek() {
            None | Some(Token::Comma) => (Op::Exists, BTreeSet::new()),
            Some(Token::Eq | Token::DoubleEq) => {
                self.next();
                (Op::Equals, BTreeSet::from([self.value(&key)?]))
            }
            Some(Token::NotEq) => {
                self.next();
                (Op::NotEquals, BTreeSet::from([self.value(&key)?]))
            }
            Some(Token::Word(w)) if w == "in" => {
                self.next();
                (Op::In, self.set(&key)?)
            }
            Some(Token::Word(w)) if w == "notin" => {
                self.next();
                (Op::NotIn, self.set(&key)?)
            }
            Some(t) => {
                return Err(SelectorError(format!(
                    "expected an operator (=, ==, !=, in, notin) or `,` after `{key}`, found {t}"
                )));
            }
        };
        Ok(Requirement { key, op, values })
    }
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_` and `.` inside.
fn validate_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(SelectorError(format!(
                "label key `{key}` has an invalid prefix (expected a DNS subdomain such as example.com/)"
            )));
        }
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(SelectorError(format!(
            "invalid label key `{key}` (at most 63 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit)"
        )));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "invalid label value `{value}` (at most 63 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit)"
        )))
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

impl Selector {
    /// Parses a selector such as `team=platform,tier in (core,db),!canary`.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let tokens = lex(input)?;
        if tokens.is_empty() {
            return Err(SelectorError(
                "empty label selector (it would protect every object)".into(),
            ));
        }
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => break,
                Some(Token::Comma) => continue,
                Some(t) => {
                    return Err(SelectorError(format!(
                        "expected `,` between requirements, found {t}"
                    )));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector has at least one requirement that a label must be present for
    /// (`=`, `in`, `key`); a selector made only of `!=`, `notin` and `!key` matches every object
    /// that lacks the named labels, which is nearly everything.
    pub fn has_positive_requirement(&self) -> bool {
        self.requirements.iter().any(Requirement::is_positive)
    }

    /// A requirement every matching label set must satisfy by having `key` with one of the
    /// values (`key=v` or `key in (..)`), if the selector has one; the compiled matcher indexes
    /// selectors by it so that only selectors whose anchor label is present are evaluated.
    pub(crate) fn equality_anchor(&self) -> Option<(&str, impl Iterator<Item = &str>)> {
        self.requirements
            .iter()
            .find(|r| matches!(r.op, Op::Equals | Op::In))
            .map(|r| (r.key.as_str(), r.values.iter().map(String::as_str)))
    }

    /// A canonical spelling: requirements and set values sorted, `==` written `=`. Two selectors
    /// with the same canonical form select the same objects.
    pub fn canonical(&self) -> String {
        let mut reqs: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        reqs.sort();
        reqs.dedup();
        reqs.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("team", "platform"), ("tier", "db")]);
        let yes = |s: &str| Selector::parse(s).unwrap().matches(&l);
        assert!(yes("team=platform"));
        assert!(yes("team==platform"));
        assert!(!yes("team=payments"));
        assert!(yes("team!=payments"));
        assert!(!yes("team!=platform"));
        assert!(yes("absent!=x"));
        assert!(yes("tier in (core,db)"));
        assert!(!yes("tier in (core)"));
        assert!(!yes("absent in (x)"));
        assert!(yes("tier notin (core)"));
        assert!(!yes("tier notin (db, core)"));
        assert!(yes("absent notin (x)"));
        assert!(yes("team"));
        assert!(!yes("absent"));
        assert!(yes("!absent"));
        assert!(!yes("!team"));
        assert!(yes("team=platform,tier in (core,db)"));
        assert!(!yes("team=platform,tier in (core)"));
        assert!(yes(" team = platform , tier  in(core , db) "));
        assert!(yes("example.com/x!=1"));
    }

    #[test]
    fn rejects_bad_selectors() {
        let err = |s: &str| Selector::parse(s).unwrap_err().to_string();
        assert_eq!(
            err(""),
            "empty label selector (it would protect every object)"
        );
        assert_eq!(err("team="), "expected a value for `team`, found the end");
        assert_eq!(
            err("tier in core"),
            "expected `(` after the operator for `tier`, found `core`"
        );
        assert_eq!(err("tier in (a,b"), "unclosed `(` in the values for `tier`");
        assert!(err("a>1").contains("operator `>` is not supported"));
        assert!(err("-bad=x").contains("invalid label key `-bad`"));
        assert!(err("k=v v").contains("expected `,` between requirements"));
        assert!(err("k=bad value!").contains("expected `,`"));
        assert!(err("Bad_Prefix/x=1").contains("invalid prefix"));
        assert!(err(",").contains("expected a label key"));
    }

    #[test]
    fn canonical_form_and_positivity() {
        let a = Selector::parse("tier in (db,core),team==platform").unwrap();
        let b = Selector::parse("team=platform, tier in (core,db,core)").unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), "team=platform,tier in (core,db)");
        assert!(a.has_positive_requirement());
        assert!(
            !Selector::parse("tier notin (dev),!canary,x!=y")
                .unwrap()
                .has_positive_requirement()
        );
    }
}
