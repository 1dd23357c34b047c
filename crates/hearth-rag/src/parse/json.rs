//! JSON through `serde_json`, flattened into records of `path.to.key: value` lines.
//!
//! An array gives one record per element. An object gives one record per top-level key that
//! holds an object (or one per element of a top-level array of objects), under that key as a
//! heading; its plain top-level values are gathered into records of their own. A bare scalar is
//! a paragraph. Each leaf line repeats its key path, so lines are charged to the text budget as
//! they are written, and the path is never built longer than the budget left.
//! Nesting is bounded by `serde_json`'s own recursion limit (128), which this walk inherits.

use serde_json::Value;

use super::{BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

/// `serde_json`'s nesting limit, named in the error it causes.
const SERDE_JSON_DEPTH: usize = 128;

pub(super) fn parse(text: &str, limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| syntax_error(&e))?;
    let mut sink = BlockSink::new(limits);
    let mut title = None;
    match &value {
        Value::Array(items) => records(&mut sink, items, ""),
        Value::Object(map) => {
            title = map
                .get("title")
                .and_then(Value::as_str)
                .map(super::squash_whitespace)
                .filter(|t| !t.is_empty());
            let mut plain = Lines::new(&sink);
            for (key, value) in map {
                match value {
                    Value::Object(_) => {
                        flush_plain(&mut sink, &mut plain);
                        sink.set_path(vec![(
                            1,
                            super::cut_chars(key, super::MAX_HEADING_CHARS).to_string(),
                        )]);
                        let mut lines = Lines::new(&sink);
                        lines.flatten(value, "");
                        lines.push_into(&mut sink);
                        sink.set_path(Vec::new());
                    }
                    Value::Array(items) if items.iter().any(is_container) => {
                        flush_plain(&mut sink, &mut plain);
                        sink.set_path(vec![(
                            1,
                            super::cut_chars(key, super::MAX_HEADING_CHARS).to_string(),
                        )]);
                        records(&mut sink, items, "");
                        sink.set_path(Vec::new());
                    }
                    _ => {
                        plain.room = plain.room.min(sink.text_left);
                        plain.flatten(value, key);
                    }
                }
                if sink.exhausted() || plain.over {
                    break;
                }
            }
            flush_plain(&mut sink, &mut plain);
        }
        Value::Null => {}
        scalar => sink.push(BlockKind::Paragraph, &scalar_text(scalar)),
    }
    sink.finish(title, 1)
}

fn records(sink: &mut BlockSink, items: &[Value], prefix: &str) {
    for item in items {
        let mut lines = Lines::new(sink);
        lines.flatten(item, prefix);
        lines.push_into(sink);
        if sink.exhausted() {
            return;
        }
    }
}

fn flush_plain(sink: &mut BlockSink, plain: &mut Lines) {
    if !plain.text.is_empty() || plain.over {
        std::mem::replace(plain, Lines::new(sink)).push_into(sink);
    }
}

/// One record's `path: value` lines, within the text budget left when it began.
struct Lines {
    text: String,
    room: usize,
    /// A line did not fit: the record is not pushed and the budget error is recorded.
    over: bool,
}

impl Lines {
    fn new(sink: &BlockSink) -> Self {
        Lines {
            text: String::new(),
            room: sink.text_left,
            over: false,
        }
    }

    fn push_into(self, sink: &mut BlockSink) {
        if self.over {
            sink.fits(usize::MAX);
        } else {
            sink.push(BlockKind::Record, &self.text);
        }
    }

    /// Appends `path: value`; false (and `over`) when it does not fit.
    fn line(&mut self, path: &str, value: &str) -> bool {
        let size = path.len() + value.len() + 3;
        if self.over || self.text.len() + size > self.room {
            self.over = true;
            return false;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        if !path.is_empty() {
            self.text.push_str(path);
            self.text.push_str(": ");
        }
        self.text.push_str(value);
        true
    }

    /// Appends lines for every leaf under `value`; arrays of plain values stay on one line,
    /// nulls are dropped. Stops at the first line that does not fit.
    fn flatten(&mut self, value: &Value, path: &str) -> bool {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if path.len() + key.len() + 1 > self.room {
                        self.over = true;
                        return false;
                    }
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if !self.flatten(value, &path) {
                        return false;
                    }
                }
                true
            }
            Value::Array(items) if items.iter().any(is_container) => {
                for (i, item) in items.iter().enumerate() {
                    if path.len() + 24 > self.room {
                        self.over = true;
                        return false;
                    }
                    if !self.flatten(item, &format!("{path}[{i}]")) {
                        return false;
                    }
                }
                true
            }
            Value::Array(items) => {
                let values: Vec<String> = items
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(scalar_text)
                    .collect();
                values.is_empty() || self.line(path, &values.join(", "))
            }
            Value::Null => true,
            scalar => self.line(path, &scalar_text(scalar)),
        }
    }
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn syntax_error(error: &serde_json::Error) -> ParseError {
    if error.to_string().starts_with("recursion limit exceeded") {
        return ParseError::TooDeep {
            limit: SERDE_JSON_DEPTH,
        };
    }
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

    fn parse(text: &str) -> Result<ParsedDocument, ParseError> {
        super::parse(text, &ParseLimits::default())
    }

    #[test]
    fn deep_nesting_names_the_limit() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&deep), Err(ParseError::TooDeep { limit: 128 }));
    }

    #[test]
    fn a_long_key_path_repeated_per_leaf_stops_at_the_text_budget() {
        // A 100 KB key over 10,000 leaves would be a gigabyte of lines.
        let leaves: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":1")).collect();
        let json = format!("[{{\"{}\":{{{}}}}}]", "p".repeat(100_000), leaves.join(","));
        assert_eq!(
            parse(&json),
            Err(ParseError::TooMuchText {
                limit: 32 * 1024 * 1024
            })
        );
    }

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
