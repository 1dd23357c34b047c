//! JSON through `serde_json`, flattened into records of `path.to.key: value` lines.
//!
//! An array gives one record per element. An object gives one record per top-level key that
//! holds an object (or one per element of a top-level array of objects), under that key as a
//! heading; its plain top-level values are gathered into records of their own. A bare scalar is
//! a paragraph.

use serde_json::Value;

use super::{BlockKind, BlockSink, ParseError, ParsedDocument};

pub(super) fn parse(text: &str) -> Result<ParsedDocument, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| syntax_error(&e))?;
    let mut sink = BlockSink::default();
    let mut title = None;
    match &value {
        Value::Array(items) => records(&mut sink, items, ""),
        Value::Object(map) => {
            title = map
                .get("title")
                .and_then(Value::as_str)
                .map(super::squash_whitespace)
                .filter(|t| !t.is_empty());
            let mut plain = Vec::new();
            for (key, value) in map {
                match value {
                    Value::Object(_) => {
                        flush_plain(&mut sink, &mut plain);
                        sink.path = vec![(1, key.clone())];
                        let mut lines = Vec::new();
                        flatten(value, "", &mut lines);
                        sink.push(BlockKind::Record, &lines.join("\n"));
                        sink.path.clear();
                    }
                    Value::Array(items) if items.iter().any(is_container) => {
                        flush_plain(&mut sink, &mut plain);
                        sink.path = vec![(1, key.clone())];
                        records(&mut sink, items, "");
                        sink.path.clear();
                    }
                    _ => flatten(value, key, &mut plain),
                }
            }
            flush_plain(&mut sink, &mut plain);
        }
        Value::Null => {}
        scalar => sink.push(BlockKind::Paragraph, &scalar_text(scalar)),
    }
    Ok(ParsedDocument {
        title,
        blocks: sink.blocks,
        pages: 1,
    })
}

fn records(sink: &mut BlockSink, items: &[Value], prefix: &str) {
    for item in items {
        let mut lines = Vec::new();
        flatten(item, prefix, &mut lines);
        sink.push(BlockKind::Record, &lines.join("\n"));
    }
}

fn flush_plain(sink: &mut BlockSink, plain: &mut Vec<String>) {
    if !plain.is_empty() {
        sink.push(BlockKind::Record, &plain.join("\n"));
        plain.clear();
    }
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

/// Append `path: value` lines for every leaf under `value`; arrays of plain values stay on one
/// line, nulls are dropped.
fn flatten(value: &Value, path: &str, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(value, &path, lines);
            }
        }
        Value::Array(items) if items.iter().any(is_container) => {
            for (i, item) in items.iter().enumerate() {
                flatten(item, &format!("{path}[{i}]"), lines);
            }
        }
        Value::Array(items) => {
            let values: Vec<String> = items
                .iter()
                .filter(|v| !v.is_null())
                .map(scalar_text)
                .collect();
            if !values.is_empty() {
                lines.push(line(path, &values.join(", ")));
            }
        }
        Value::Null => {}
        scalar => lines.push(line(path, &scalar_text(scalar))),
    }
}

fn line(path: &str, value: &str) -> String {
    if path.is_empty() {
        value.to_string()
    } else {
        format!("{path}: {value}")
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn syntax_error(error: &serde_json::Error) -> ParseError {
    // serde_json ends its message with " at line L column C"; say the position first instead.
    let message = error.to_string();
    let cause = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(cause, _)| cause);
    ParseError::Corrupt(format!(
        "invalid JSON at line {} column {}: {cause}",
        error.line(),
        error.column()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_of_objects_gives_one_record_each() {
        let doc = parse(r#"[{"name":"Ann","address":{"city":"Oslo"},"tags":["a","b"]},{"name":"Bo","age":null}]"#)
            .expect("parses");
        let texts: Vec<_> = doc.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["address.city: Oslo\nname: Ann\ntags: a, b", "name: Bo"]
        );
        assert!(doc.blocks.iter().all(|b| b.kind == BlockKind::Record));
    }

    #[test]
    fn object_keys_become_headed_records() {
        let doc = parse(
            r#"{"title":"Config","version":2,"server":{"port":80,"hosts":["a","b"]},"users":[{"id":1},{"id":2}]}"#,
        )
        .expect("parses");
        assert_eq!(doc.title.as_deref(), Some("Config"));
        let blocks: Vec<_> = doc
            .blocks
            .iter()
            .map(|b| (b.text.as_str(), b.headings.join(" > ")))
            .collect();
        assert_eq!(
            blocks,
            vec![
                ("hosts: a, b\nport: 80", "server".to_string()),
                ("title: Config", String::new()),
                ("id: 1", "users".to_string()),
                ("id: 2", "users".to_string()),
                ("version: 2", String::new()),
            ]
        );
    }

    #[test]
    fn scalar_is_a_paragraph() {
        let doc = parse("\"just a string\"").expect("parses");
        assert_eq!(doc.blocks[0].kind, BlockKind::Paragraph);
        assert_eq!(doc.blocks[0].text, "just a string");
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let error = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "invalid JSON at line 3 column 7: expected `:`"
        );
    }
}
