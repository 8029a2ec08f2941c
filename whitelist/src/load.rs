//! Reading the YAML file into validated rules, collecting *every* problem on the way.
//!
//! Why not `#[derive(Deserialize)]` with `#[serde(deny_unknown_fields)]`, as the house style
//! suggests for config? Serde stops at the first error, and a reviewer of a whitelist pull
//! request should see every problem at once. So the file is first read into a loose tree
//! ([`Node`]) that keeps each node's line and column and accepts any shape, and then a
//! schema walker checks it, treating unknown keys, wrong shapes and bad values alike as
//! located problems. Only YAML *syntax* errors (and duplicate mapping keys, which the YAML
//! reader rejects) stop early, because past them there is no tree to walk.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::arn::ArnPattern;
use crate::error::{Diagnostic, Severity};
use crate::rule::{Matcher, Rule, Section};
use crate::selector::Selector;

/// A YAML node of any shape, with the locations of its children.
#[derive(Debug)]
pub(crate) enum Node {
    Null,
    /// A string scalar (quoted, or plain text that YAML does not read as anything else).
    Str(String),
    /// A plain scalar YAML reads as a boolean or number (`true`, `123456789012`); where a
    /// string is expected, its source text is used, as a typed `String` field would.
    Other(&'static str),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other("a number"))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Other("a number"))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other("a number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Other("binary data"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// The rules of one file, per section, in file order.
pub(crate) type Sections = [Vec<Arc<Rule>>; 5];

/// Parses and validates `src`; `Err` carries every problem found, in file order.
pub(crate) fn load(src: &str, origin: &str) -> Result<Sections, Vec<Diagnostic>> {
    let mut options = serde_saphyr::Options::default();
    // The message is rendered by us as `file:line:column: ...`; no source snippet.
    options.with_snippet = false;
    let root = match serde_saphyr::from_str_with_options::<Spanned<Node>>(src, options) {
        Ok(root) => root,
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            return Err(vec![Diagnostic {
                severity: Severity::Error,
                origin: origin.to_owned(),
                line,
                column,
                path: String::new(),
                message: yaml_message(&e, line, column),
            }]);
        }
    };
    let mut walker = Walker {
        src,
        origin,
        problems: Vec::new(),
        sections: Default::default(),
        seen: Default::default(),
    };
    walker.root(&root);
    if walker.problems.is_empty() {
        Ok(walker.sections)
    } else {
        walker
            .problems
            .sort_by_key(|d| (d.line == 0, d.line, d.column));
        Err(walker.problems)
    }
}

/// The YAML reader's message without its own "at line L, column C" suffix (we print the
/// location in front) and without hints aimed at Rust developers.
fn yaml_message(e: &serde_saphyr::Error, line: u64, column: u64) -> String {
    let mut msg = e.without_snippet().to_string();
    let suffix = format!(" at line {line}, column {column}");
    if let Some(stripped) = msg.strip_suffix(&suffix) {
        msg = stripped.to_owned();
    }
    msg = msg.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    msg = msg.replace("; use Option<String>", "");
    if let Some(first) = msg.get(..1) {
        msg = first.to_lowercase() + &msg[1..];
    }
    msg.trim_end_matches('.').to_owned()
}

const META_KEYS: [&str; 3] = ["reason", "owner", "expires"];

struct Walker<'s> {
    src: &'s str,
    origin: &'s str,
    problems: Vec<Diagnostic>,
    sections: Sections,
    /// Per section, the identity of every rule seen so far → (index, line), for duplicates.
    seen: [HashMap<String, (usize, u64)>; 5],
}

/// Who asked for a protection, why, and until when.
#[derive(Default)]
struct Meta {
    reason: Option<String>,
    owner: Option<String>,
    expires: Option<Timestamp>,
}

impl Walker<'_> {
    fn problem(&mut self, at: &Location, path: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            severity: Severity::Error,
            origin: self.origin.to_owned(),
            line: at.line(),
            column: at.column(),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The source text of a node (for plain scalars YAML read as numbers or booleans).
    fn source_text(&self, at: &Location) -> Option<String> {
        let span = at.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.src.get(start..start + len).map(str::to_owned)
    }

    /// A string value; anything else is a problem. Empty strings are returned as they are.
    fn string(&mut self, node: &Spanned<Node>, path: &str) -> Option<String> {
        match &node.value {
            Node::Str(s) => Some(s.clone()),
            Node::Other(kind) => match self.source_text(&node.referenced) {
                Some(text) => Some(text),
                None => {
                    self.problem(
                        &node.referenced,
                        path,
                        format!("expected a string, found {kind}; quote it"),
                    );
                    None
                }
            },
            Node::Null => {
                self.problem(&node.referenced, path, "empty value");
                None
            }
            Node::Seq(_) => {
                self.problem(&node.referenced, path, "expected a string, found a list");
                None
            }
            Node::Map(_) => {
                self.problem(&node.referenced, path, "expected a string, found a mapping");
                None
            }
        }
    }

    /// A non-empty string with no surrounding whitespace.
    fn nonempty(&mut self, node: &Spanned<Node>, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.problem(&node.referenced, path, "empty value");
            None
        } else if s.trim() != s {
            self.problem(
                &node.referenced,
                path,
                format!("{s:?} has leading or trailing whitespace"),
            );
            None
        } else {
            Some(s)
        }
    }

    /// The entries of a mapping whose keys are all in `allowed`; unknown keys are problems (and
    /// are left out), as is a node that is not a mapping.
    fn mapping<'n>(
        &mut self,
        node: &'n Spanned<Node>,
        path: &str,
        allowed: &[&str],
    ) -> Option<HashMap<&'n str, &'n Spanned<Node>>> {
        let Node::Map(entries) = &node.value else {
            let found = match &node.value {
                Node::Seq(_) => "a list",
                Node::Null => "an empty value",
                _ => "a scalar",
            };
            self.problem(
                &node.referenced,
                path,
                format!("expected a mapping, found {found}"),
            );
            return None;
        };
        let mut fields = HashMap::new();
        for (key, value) in entries {
            if allowed.contains(&key.value.as_str()) {
                fields.insert(key.value.as_str(), value);
            } else {
                self.problem(
                    &key.referenced,
                    path,
                    format!(
                        "unknown key `{}`, expected one of: {}",
                        key.value,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(fields)
    }

    /// The items of a list; an empty value counts as an empty list (a section whose rules were
    /// all removed).
    fn list<'n>(&mut self, node: &'n Spanned<Node>, path: &str) -> &'n [Spanned<Node>] {
        match &node.value {
            Node::Seq(items) => items,
            Node::Null => &[],
            _ => {
                self.problem(&node.referenced, path, "expected a list");
                &[]
            }
        }
    }

    fn root(&mut self, root: &Spanned<Node>) {
        if let Node::Null = root.value {
            self.problem(
                &root.referenced,
                "",
                "empty whitelist file: expected a `never_delete` mapping",
            );
            return;
        }
        let Some(top) = self.mapping(root, "", &["never_delete"]) else {
            return;
        };
        let Some(never) = top.get("never_delete") else {
            self.problem(&root.referenced, "", "missing `never_delete` mapping");
            return;
        };
        if let Node::Null = never.value {
            return;
        }
        let path = "never_delete";
        let Some(sections) = self.mapping(
            never,
            path,
            &["accounts", "aws_resources", "tags", "kubernetes"],
        ) else {
            return;
        };
        if let Some(node) = sections.get("accounts") {
            self.section(node, Section::Accounts);
        }
        if let Some(node) = sections.get("aws_resources") {
            self.section(node, Section::AwsResources);
        }
        if let Some(node) = sections.get("tags") {
            self.section(node, Section::Tags);
        }
        if let Some(kube) = sections.get("kubernetes") {
            if let Node::Null = kube.value {
                return;
            }
            let Some(kube) =
                self.mapping(kube, "never_delete.kubernetes", &["namespaces", "labels"])
            else {
                return;
            };
            if let Some(node) = kube.get("namespaces") {
                self.section(node, Section::Namespaces);
            }
            if let Some(node) = kube.get("labels") {
                self.section(node, Section::Labels);
            }
        }
    }

    fn section(&mut self, node: &Spanned<Node>, section: Section) {
        let path = format!("never_delete.{}", section.name());
        for (index, item) in self.list(node, &path).iter().enumerate() {
            let path = format!("{path}[{index}]");
            if let Some(rule) = self.rule(item, &path, section, index) {
                self.sections[section.slot()].push(Arc::new(rule));
            }
        }
    }

    /// The optional `reason`, `owner` and `expires` of a mapping-form rule.
    fn meta(&mut self, fields: &HashMap<&str, &Spanned<Node>>, path: &str) -> Option<Meta> {
        let mut meta = Meta::default();
        let mut ok = true;
        if let Some(node) = fields.get("reason") {
            meta.reason = self.nonempty(node, &format!("{path}.reason"));
            ok &= meta.reason.is_some();
        }
        if let Some(node) = fields.get("owner") {
            meta.owner = self.nonempty(node, &format!("{path}.owner"));
            ok &= meta.owner.is_some();
        }
        if let Some(node) = fields.get("expires") {
            let path = format!("{path}.expires");
            match self.nonempty(node, &path) {
                Some(text) => match text.parse::<Timestamp>() {
                    Ok(t) => meta.expires = Some(t),
                    Err(e) => {
                        ok = false;
                        self.problem(
                            &node.referenced,
                            &path,
                            format!(
                                "bad expires timestamp {text:?}, expected RFC 3339 such as 2027-01-01T00:00:00Z ({e})"
                            ),
                        );
                    }
                },
                None => ok = false,
            }
        }
        ok.then_some(meta)
    }

    /// One rule in either form. The plain form is a string (not for tags); the mapping form
    /// has the section's main key plus `reason`, `owner`, `expires`.
    fn rule(
        &mut self,
        item: &Spanned<Node>,
        path: &str,
        section: Section,
        index: usize,
    ) -> Option<Rule> {
        let main_key = match section {
            Section::Accounts => "id",
            Section::AwsResources => "arn",
            Section::Tags => "key",
            Section::Namespaces => "name",
            Section::Labels => "selector",
        };
        let (main, main_path, meta, tag_value) = match &item.value {
            Node::Map(_) => {
                let mut allowed = vec![main_key];
                if section == Section::Tags {
                    allowed.push("value");
                }
                allowed.extend(META_KEYS);
                let fields = self.mapping(item, path, &allowed)?;
                let meta = self.meta(&fields, path);
                let Some(main) = fields.get(main_key).copied() else {
                    self.problem(&item.referenced, path, format!("missing `{main_key}`"));
                    return None;
                };
                // `None` when `value` is present but bad: reported, and the rule is dropped
                // after its other fields were checked too.
                let tag_value = match fields.get("value") {
                    Some(v) => self.tag_value(v, &format!("{path}.value")).map(Some),
                    None => Some(None),
                };
                (main, format!("{path}.{main_key}"), meta, tag_value)
            }
            _ if section == Section::Tags => {
                self.problem(
                    &item.referenced,
                    path,
                    "a tag rule is a mapping: {key: ..., value: ...} (leave out `value` to protect any value of the key)",
                );
                return None;
            }
            _ => (item, path.to_owned(), Some(Meta::default()), None),
        };
        let text = self.nonempty(main, &main_path)?;
        let at = &main.referenced;
        let matcher = match section {
            Section::Accounts => {
                if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
                    self.problem(
                        at,
                        &main_path,
                        format!("account id {text:?} is not 12 digits"),
                    );
                    return None;
                }
                Matcher::Account(text.clone())
            }
            Section::AwsResources => match ArnPattern::parse(&text) {
                Ok(p) => Matcher::Arn(p),
                Err(e) => {
                    self.problem(at, &main_path, e.to_string());
                    return None;
                }
            },
            Section::Tags => Matcher::Tag {
                key: text.clone(),
                value: tag_value?,
            },
            Section::Namespaces => {
                if !is_dns_label(&text) {
                    self.problem(
                        at,
                        &main_path,
                        format!(
                            "{text:?} is not a valid namespace name (at most 63 characters: lowercase letters, digits and `-`, starting and ending with a letter or digit)"
                        ),
                    );
                    return None;
                }
                Matcher::Namespace(text.clone())
            }
            Section::Labels => match Selector::parse(&text) {
                Ok(s) => Matcher::Labels(s),
                Err(e) => {
                    self.problem(at, &main_path, format!("bad label selector {text:?}: {e}"));
                    return None;
                }
            },
        };
        // The rule's identity for duplicate detection, and its text as reported.
        let text = match &matcher {
            Matcher::Tag {
                key,
                value: Some(v),
            } => format!("{key}={v}"),
            _ => text,
        };
        let identity = match &matcher {
            Matcher::Tag { key, value } => format!("{key}\0{value:?}"),
            _ => text.clone(),
        };
        let meta = meta?;
        let (line, column) = (at.line(), at.column());
        if let Some(&(first, first_line)) = self.seen[section.slot()].get(&identity) {
            self.problem(
                at,
                path,
                format!(
                    "duplicate rule: same as never_delete.{}[{first}] at line {first_line}",
                    section.name()
                ),
            );
            return None;
        }
        self.seen[section.slot()].insert(identity, (index, line));
        Some(Rule {
            section,
            index,
            text,
            reason: meta.reason,
            owner: meta.owner,
            expires: meta.expires,
            line,
            column,
            matcher,
        })
    }

    /// A tag rule's `value`: any string, including the empty string (AWS allows empty tag
    /// values), but not an empty YAML value, which is more likely a mistake than a wish to
    /// match the empty string.
    fn tag_value(&mut self, node: &Spanned<Node>, path: &str) -> Option<String> {
        if let Node::Null = node.value {
            self.problem(
                &node.referenced,
                path,
                "empty value: leave out `value` to protect any value of the key, or write \"\" for the empty tag value",
            );
            return None;
        }
        self.string(node, path)
    }
}

/// A Kubernetes namespace name (RFC 1123 label).
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
