//! Where a field is in the YAML text, for cross-field validation errors: serde reports the
//! position of a value it could not parse, but a rule that spans fields ("`auto: true` is not
//! allowed for a manual type") is checked after parsing, when positions are gone. This parses the
//! same text a second time into a tree of nodes that keep their line and column
//! (serde-saphyr's `Spanned`), and looks a dotted field path up in it.
//!
//! Kept local to this crate until `common::config` has a shared helper for it.

use std::path::Path;

use common::config::ConfigError;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML node with the position of its first character (1-based; 0 when unknown).
#[derive(Debug)]
pub struct Node {
    line: u64,
    column: u64,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Entries with the position of each key.
    Map(Vec<(String, u64, u64, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(d)?;
        Ok(Node {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            kind: spanned.value,
        })
    }
}

/// A scalar map key, whatever its YAML type.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Key>>()? {
                    let value: Node = map.next_value()?;
                    entries.push((
                        key.value.0,
                        key.referenced.line(),
                        key.referenced.column(),
                        value,
                    ));
                }
                Ok(Kind::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Kind::Seq(items))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

/// The located tree of a YAML text; `None` when it does not parse (the typed parse reports why).
pub fn parse(text: &str) -> Option<Node> {
    serde_saphyr::from_str::<Node>(text).ok()
}

/// `job.secrets[2].target.kind` → `["job", "secrets", "[2]", "target", "kind"]`.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

impl Node {
    /// The line and column of `path`: of the key for a map entry, of the item for a sequence
    /// element. When the path goes further than the YAML does (a defaulted field), the deepest
    /// node that exists.
    pub fn locate(&self, path: &str) -> (u64, u64) {
        let mut node = self;
        let mut at = (self.line, self.column);
        for seg in segments(path) {
            let next = match (&node.kind, seg.strip_prefix('[')) {
                (Kind::Seq(items), Some(index)) => index
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|n| (n, (n.line, n.column))),
                (Kind::Map(entries), None) => entries
                    .iter()
                    .find(|(k, ..)| *k == seg)
                    .map(|(_, line, column, n)| (n, (*line, *column))),
                _ => None,
            };
            match next {
                Some((n, position)) => {
                    node = n;
                    at = position;
                }
                None => break,
            }
        }
        at
    }
}

/// Config errors for `(field path, message)` problems of `file`, positioned when the text is at
/// hand.
pub fn config_errors(
    file: &Path,
    text: Option<&str>,
    problems: &[(String, String)],
) -> Vec<ConfigError> {
    let tree = text.and_then(parse);
    problems
        .iter()
        .map(|(field, message)| {
            let position = tree
                .as_ref()
                .map(|t| t.locate(field))
                .filter(|(line, _)| *line > 0);
            ConfigError {
                file: file.display().to_string(),
                line: position.map(|p| p.0),
                column: position.map(|p| p.1),
                field: Some(field.clone()),
                message: message.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
kafka:
  brokers: [a:1]
job:
  policies:
    encryption-key:
      auto: true
  secrets:
    - name: a
      type: api-key
    - name: b
      target: {kind: rds, instance: x}
";

    #[test]
    fn keys_and_items_are_found_by_path() {
        let t = parse(TEXT).expect("parses");
        assert_eq!(t.locate("job.policies.encryption-key.auto"), (6, 7));
        assert_eq!(t.locate("job.secrets[1]").0, 10);
        assert_eq!(t.locate("job.secrets[1].target.instance").0, 11);
        assert_eq!(t.locate("job.secrets[0].type"), (9, 7));
        // Deeper than the text: the deepest existing node.
        assert_eq!(t.locate("job.secrets[0].length").0, 8);
        assert_eq!(t.locate("job.caps.max_rotations_per_run").0, 3);
    }

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            segments("job.secrets[2].target.roles[1]"),
            ["job", "secrets", "[2]", "target", "roles", "[1]"]
        );
    }

    #[test]
    fn errors_carry_file_line_and_field() {
        let e = config_errors(
            Path::new("c.yaml"),
            Some(TEXT),
            &[("job.policies.encryption-key.auto".into(), "never".into())],
        );
        assert_eq!(
            e[0].to_string(),
            "c.yaml:6:7: job.policies.encryption-key.auto: never"
        );
    }
}
