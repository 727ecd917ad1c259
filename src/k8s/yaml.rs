//! JSON values written as block YAML, the way Kubernetes manifests are read by people:
//! maps as `key: value`, lists as `- item`, strings quoted unless plainly safe, multi-line
//! strings as literal blocks. Deterministic, so rendered manifests can be compared byte for
//! byte.

use serde_json::Value;

/// One YAML document of `value` (a map), ending in a newline.
pub fn document(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                pad(out, indent);
                out.push_str(&scalar_key(key));
                out.push(':');
                write_child(out, v, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                pad(out, indent);
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The map's first line goes after the dash; the rest line up with it.
                        let mut inner = String::new();
                        write_value(&mut inner, item, indent + 2);
                        out.push(' ');
                        out.push_str(&inner[indent + 2..]);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        write_value(out, item, indent + 2);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&inline(item, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            pad(out, indent);
            out.push_str(&inline(other, indent));
            out.push('\n');
        }
    }
}

/// What follows `key:`: a nested block on the next lines, or a scalar on the same line.
fn write_child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_value(out, v, indent + 2);
        }
        // Lists sit at their key's indentation, as kubectl writes them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_value(out, v, indent);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v, indent + 2));
            out.push('\n');
        }
    }
}

/// A scalar (or empty collection) on one line; a multi-line string as a literal block
/// indented to `indent`.
fn inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && !s.starts_with([' ', '\n']) && !s.contains('\r') {
        let chomp = if s.ends_with('\n') { "|" } else { "|-" };
        let mut block = chomp.to_string();
        for line in s.trim_end_matches('\n').split('\n') {
            block.push('\n');
            if !line.is_empty() {
                block.push_str(&" ".repeat(indent));
                block.push_str(line);
            }
        }
        return block;
    }
    if is_plain(s) {
        s.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn scalar_key(key: &str) -> String {
    if is_plain(key) {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

/// Plain (unquoted) only when YAML cannot read it as anything but this string: no
/// indicator characters, not a number, boolean or null in any YAML version.
fn is_plain(s: &str) -> bool {
    let safe_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "nan", "inf",
    ]
    .contains(&s.to_ascii_lowercase().as_str());
    safe_chars && first_ok && !reserved && !s.ends_with('.')
}

fn pad(out: &mut String, indent: usize) {
    out.push_str(&" ".repeat(indent));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifests_read_as_kubectl_writes_them() {
        let v = json!({
            "apiVersion": "batch/v1",
            "metadata": {"name": "load", "labels": {"app.kubernetes.io/name": "inferbench"}},
            "spec": {
                "completions": 3,
                "containers": [{"name": "c", "args": ["load", "--plan", "-c 8"], "env": []}],
                "empty": {}
            },
            "data": {"plan.json": "{\n  \"a\": 1\n}\n"},
            "odd": ["true", "1.5", "", "a: b", "on"]
        });
        // Keys in sorted order, as `kubectl get -o yaml` writes them.
        let want = r#"apiVersion: batch/v1
data:
  plan.json: |
    {
      "a": 1
    }
metadata:
  labels:
    app.kubernetes.io/name: inferbench
  name: load
odd:
- "true"
- "1.5"
- ""
- "a: b"
- "on"
spec:
  completions: 3
  containers:
  - args:
    - load
    - "--plan"
    - "-c 8"
    env: []
    name: c
  empty: {}
"#;
        assert_eq!(document(&v), want);
    }
}
