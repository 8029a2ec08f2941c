//! JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902), written out here rather than pulled in
//! as a crate so that every failure maps to the `Status` the API server would send.
//!
//! Strategic merge patch and server-side apply are served as merge patches (see the module doc of
//! `fakekube`): lists are replaced whole, `$patch` directives are not understood.

use serde_json::{Map, Value};

/// Applies an RFC 7386 merge patch: objects merge recursively, `null` removes a key, anything
/// else replaces the target.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("target was just made an object")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Why a JSON Patch could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonPatchError {
    /// The patch document is not an array of well-formed operations (upstream: 400).
    Malformed(String),
    /// An operation could not be applied, or a `test` failed (upstream: 422).
    Failed(String),
}

/// Applies an RFC 6902 patch document to `doc`; on error `doc` is left unchanged.
pub(crate) fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        JsonPatchError::Malformed("a JSON patch must be an array of operations".into())
    })?;
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, op).map_err(|e| match e {
            JsonPatchError::Malformed(m) => {
                JsonPatchError::Malformed(format!("operation {i}: {m}"))
            }
            JsonPatchError::Failed(m) => JsonPatchError::Failed(format!("operation {i}: {m}")),
        })?;
    }
    *doc = work;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), JsonPatchError> {
    let field = |name: &str| -> Result<&Value, JsonPatchError> {
        op.get(name)
            .ok_or_else(|| JsonPatchError::Malformed(format!("missing {name:?}")))
    };
    let string_field = |name: &str| -> Result<Vec<String>, JsonPatchError> {
        let s = field(name)?
            .as_str()
            .ok_or_else(|| JsonPatchError::Malformed(format!("{name:?} must be a string")))?;
        parse_pointer(s)
    };
    let kind = field("op")?
        .as_str()
        .ok_or_else(|| JsonPatchError::Malformed("\"op\" must be a string".into()))?;
    let path = string_field("path")?;
    match kind {
        "add" => add(doc, &path, field("value")?.clone()),
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = field("value")?.clone();
            let target = resolve_mut(doc, &path)?;
            *target = value;
            Ok(())
        }
        "move" => {
            let from = string_field("from")?;
            if path.len() > from.len() && path.starts_with(&from) {
                return Err(JsonPatchError::Failed(format!(
                    "cannot move {} into its own child {}",
                    render(&from),
                    render(&path)
                )));
            }
            let value = remove(doc, &from)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = string_field("from")?;
            let value = resolve(doc, &from)?.clone();
            add(doc, &path, value)
        }
        "test" => {
            let expected = field("value")?;
            let actual = resolve(doc, &path)?;
            if actual == expected {
                Ok(())
            } else {
                Err(JsonPatchError::Failed(format!(
                    "test failed: {} is {actual}, not {expected}",
                    render(&path)
                )))
            }
        }
        other => Err(JsonPatchError::Malformed(format!("unknown op {other:?}"))),
    }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        JsonPatchError::Malformed(format!("path {pointer:?} must start with '/'"))
    })?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn render(path: &[String]) -> String {
    path.iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// An array index token: digits without leading zeros, below `len`.
fn index(token: &str, len: usize, path: &[String]) -> Result<usize, JsonPatchError> {
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    match token.parse::<usize>() {
        Ok(i) if valid && i < len => Ok(i),
        _ => Err(JsonPatchError::Failed(format!(
            "{}: no array element {token:?}",
            render(path)
        ))),
    }
}

fn resolve<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, JsonPatchError> {
    let mut current = doc;
    for (depth, token) in path.iter().enumerate() {
        current = match current {
            Value::Object(map) => map.get(token),
            Value::Array(items) => Some(&items[index(token, items.len(), &path[..=depth])?]),
            _ => None,
        }
        .ok_or_else(|| {
            JsonPatchError::Failed(format!("{}: no such path", render(&path[..=depth])))
        })?;
    }
    Ok(current)
}

fn resolve_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, JsonPatchError> {
    let mut current = doc;
    for (depth, token) in path.iter().enumerate() {
        let here = &path[..=depth];
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => {
                let i = index(token, items.len(), here)?;
                items.get_mut(i)
            }
            _ => None,
        }
        .ok_or_else(|| JsonPatchError::Failed(format!("{}: no such path", render(here))))?;
    }
    Ok(current)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), JsonPatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match resolve_mut(doc, parent_path)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let at = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1, path)?
            };
            items.insert(at, value);
            Ok(())
        }
        _ => Err(JsonPatchError::Failed(format!(
            "{}: parent is not an object or array",
            render(path)
        ))),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, JsonPatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err(JsonPatchError::Failed(
            "cannot remove the whole document".into(),
        ));
    };
    match resolve_mut(doc, parent_path)? {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| JsonPatchError::Failed(format!("{}: no such path", render(path)))),
        Value::Array(items) => {
            let i = index(last, items.len(), path)?;
            Ok(items.remove(i))
        }
        _ => Err(JsonPatchError::Failed(format!(
            "{}: no such path",
            render(path)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        // The table in RFC 7386, appendix A (a selection).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn json_patch_follows_rfc_6902() {
        let mut doc = json!({"a": {"b": [1, 2]}, "c": "x", "k/e~y": 1});
        let patch = json!([
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "remove", "path": "/c"},
            {"op": "replace", "path": "/k~1e~0y", "value": 2},
            {"op": "copy", "from": "/a/b", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
            {"op": "test", "path": "/moved/0", "value": 1},
        ]);
        json_patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"a": {"b": [1, 9, 2, 3]}, "k/e~y": 2, "moved": [1, 9, 2, 3]})
        );
    }

    #[test]
    fn failures_leave_the_document_unchanged() {
        let original = json!({"a": 1});
        for patch in [
            json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}]),
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "replace", "path": "/missing", "value": 1}]),
            json!([{"op": "add", "path": "/x/y", "value": 1}]),
            json!([{"op": "move", "from": "/a", "path": "/a/b"}]),
        ] {
            let mut doc = original.clone();
            let err = json_patch(&mut doc, &patch).unwrap_err();
            assert!(matches!(err, JsonPatchError::Failed(_)), "{patch}: {err:?}");
            assert_eq!(doc, original);
        }
        for patch in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"path": "/a"}]),
        ] {
            let err = json_patch(&mut original.clone(), &patch).unwrap_err();
            assert!(
                matches!(err, JsonPatchError::Malformed(_)),
                "{patch}: {err:?}"
            );
        }
    }

    #[test]
    fn array_indices_are_strict() {
        let mut doc = json!({"a": [1]});
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "add", "path": "/a/01", "value": 0}])
            )
            .is_err()
        );
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "add", "path": "/a/2", "value": 0}])
            )
            .is_err()
        );
        json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/a/1", "value": 2}]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": [1, 2]}));
    }
}
