//! Label and field selectors, parsed from the query string as the API server does.
//!
//! Label selectors: comma-separated requirements, all of which must hold: `k=v`, `k==v`, `k!=v`,
//! `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist). As upstream, `!=` and
//! `notin` also match objects without the label. The numeric `>`/`<` forms are not supported.
//!
//! Field selectors: `path=v`, `path==v`, `path!=v` over `metadata.name`, `metadata.namespace` and
//! the per-kind paths listed in the resource table; any other path is rejected, as upstream.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses a selector string; the error explains which requirement is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(input)? {
            let part = part.trim();
            if part.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "unable to parse requirement: empty requirement in {input:?}"
                ));
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self(requirements))
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits on commas that are not inside a parenthesised value set.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => {
                return Err(format!(
                    "unable to parse requirement: nested '(' in {input:?}"
                ));
            }
            ')' if depth == 1 => depth = 0,
            ')' => {
                return Err(format!(
                    "unable to parse requirement: unbalanced ')' in {input:?}"
                ));
            }
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unclosed '(' in {input:?}"
        ));
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(label_key(key.trim(), part)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(
            label_key(k.trim(), part)?,
            label_value(v.trim(), part)?,
        ));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(Requirement::Equals(
            label_key(k.trim(), part)?,
            label_value(v.trim(), part)?,
        ));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(Requirement::Equals(
            label_key(k.trim(), part)?,
            label_value(v.trim(), part)?,
        ));
    }
    if part.contains('<') || part.contains('>') {
        return Err(format!(
            "unable to parse requirement: {part:?}: numeric comparisons are not supported by the fake"
        ));
    }
    // `key in (a,b)`, `key notin (a,b)` or a bare `key`.
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().map(str::trim).unwrap_or_default();
    if rest.is_empty() {
        return Ok(Requirement::Exists(label_key(key, part)?));
    }
    let (op, set) = if let Some(set) = rest.strip_prefix("notin") {
        ("notin", set)
    } else if let Some(set) = rest.strip_prefix("in") {
        ("in", set)
    } else {
        return Err(format!(
            "unable to parse requirement: {part:?}: expected =, ==, !=, in or notin"
        ));
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: {part:?}: {op} needs a set like (a,b)")
        })?;
    let values = inner
        .split(',')
        .map(|v| label_value(v.trim(), part))
        .collect::<Result<Vec<_>, _>>()?;
    let key = label_key(key, part)?;
    Ok(if op == "in" {
        Requirement::In(key, values)
    } else {
        Requirement::NotIn(key, values)
    })
}

fn label_key(key: &str, part: &str) -> Result<String, String> {
    let name = key.rsplit('/').next().unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: {part:?}: invalid label key {key:?}"
        ))
    }
}

fn label_value(value: &str, part: &str) -> Result<String, String> {
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: {part:?}: invalid label value {value:?}"
        ))
    }
}

/// A parsed field selector over dotted paths of the object.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `path=v,path!=v`; `allowed` lists the paths this kind accepts besides metadata.
    pub fn parse(input: &str, allowed: &[&str], kind: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, true, v)
            } else {
                return Err(format!(
                    "invalid field selector {part:?}: expected path=value or path!=value"
                ));
            };
            let path = path.trim();
            if !matches!(path, "metadata.name" | "metadata.namespace") && !allowed.contains(&path) {
                return Err(format!("field label not supported: {path} (kind {kind})"));
            }
            terms.push((path.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// Whether the object is selected; a missing field compares as the empty string.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let actual = path
                .split('.')
                .try_fold(object, |v, segment| v.get(segment))
                .and_then(Value::as_str)
                .unwrap_or_default();
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str, labels: Value) -> bool {
        LabelSelector::parse(s).unwrap().matches(labels.as_object())
    }

    #[test]
    fn each_operator_matches_as_upstream() {
        let l = json!({"app": "web", "tier": "front", "example.com/owner": "team-a"});
        assert!(sel("", l.clone()));
        assert!(sel("app=web", l.clone()));
        assert!(sel("app==web", l.clone()));
        assert!(!sel("app=db", l.clone()));
        assert!(sel("app!=db", l.clone()));
        assert!(
            sel("missing!=x", l.clone()),
            "!= matches objects without the label"
        );
        assert!(sel("app in (db, web)", l.clone()));
        assert!(!sel("missing in (a)", l.clone()));
        assert!(sel("app notin (db)", l.clone()));
        assert!(
            sel("missing notin (db)", l.clone()),
            "notin matches objects without the label"
        );
        assert!(sel("example.com/owner", l.clone()));
        assert!(!sel("!app", l.clone()));
        assert!(sel("!missing", l.clone()));
        assert!(sel("app=web,tier in (front,back),!missing", l.clone()));
        assert!(!sel("app=web,tier=back", l.clone()));
        assert!(!sel("app=web", Value::Null), "no labels at all");
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for bad in [
            "app in (a",
            "app in a",
            "=x",
            "app=web,",
            "a>1",
            "app between (a)",
            "app=bad value",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn field_selectors_cover_metadata_and_listed_paths_only() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n"}, "type": "Opaque"});
        let f = FieldSelector::parse(
            "metadata.name=a,type!=kubernetes.io/tls",
            &["type"],
            "Secret",
        )
        .unwrap();
        assert!(f.matches(&obj));
        let f = FieldSelector::parse("metadata.namespace==other", &[], "Secret").unwrap();
        assert!(!f.matches(&obj));
        assert!(FieldSelector::parse("spec.replicas=1", &[], "Deployment").is_err());
    }
}
