//! CSV through the `csv` crate: the first row is the header, every other row one record of
//! `header: value` lines. The delimiter (comma, semicolon or tab) is guessed from the header.

use super::{BlockKind, BlockSink, ParseError, ParsedDocument};

pub(super) fn parse(text: &str) -> Result<ParsedDocument, ParseError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(guess_delimiter(text))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| row_error(&e))?
        .iter()
        .enumerate()
        .map(|(i, name)| match name.trim() {
            "" => format!("column {}", i + 1),
            name => name.to_string(),
        })
        .collect();
    let mut sink = BlockSink::default();
    for record in reader.records() {
        let record = record.map_err(|e| row_error(&e))?;
        let lines: Vec<String> = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}: {}", value.trim()))
            .collect();
        sink.push(BlockKind::Record, &lines.join("\n"));
    }
    Ok(ParsedDocument {
        title: None,
        blocks: sink.blocks,
        pages: 1,
    })
}

fn guess_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| header.bytes().filter(|&b| b == d).count())
        .filter(|&d| header.as_bytes().contains(&d))
        .unwrap_or(b',')
}

fn row_error(error: &::csv::Error) -> ParseError {
    let line = error.position().map(|pos| pos.line());
    let cause = match error.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields like the header, found {len}"),
        ::csv::ErrorKind::Utf8 { .. } => "the text is not UTF-8".to_string(),
        _ => error.to_string(),
    };
    match line {
        Some(line) => ParseError::Corrupt(format!("CSV line {line}: {cause}")),
        None => ParseError::Corrupt(format!("CSV: {cause}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_and_tabs_are_recognised() {
        let doc = parse("a;b\n1;2\n").expect("parses");
        assert_eq!(doc.blocks[0].text, "a: 1\nb: 2");
        let doc = parse("a\tb\n1\t2\n").expect("parses");
        assert_eq!(doc.blocks[0].text, "a: 1\nb: 2");
        let doc = parse("only\nx\n").expect("parses");
        assert_eq!(doc.blocks[0].text, "only: x");
    }

    #[test]
    fn empty_values_and_blank_headers() {
        let doc = parse("name,,note\nAnn,7,\n").expect("parses");
        assert_eq!(doc.blocks[0].text, "name: Ann\ncolumn 2: 7");
    }
}
