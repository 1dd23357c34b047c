//! CSV through the `csv` crate: the first row is the header, every other row one record of
//! `header: value` lines. The delimiter (comma, semicolon or tab) is guessed from the header.
//! Every record repeats the column names, so names are cut to [`MAX_NAME_CHARS`] and each
//! record is measured against the text budget before it is written.

use super::{cut_chars, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

/// Longest column name repeated in records.
const MAX_NAME_CHARS: usize = 100;

pub(super) fn parse(text: &str, limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
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
            name => cut_chars(name, MAX_NAME_CHARS).to_string(),
        })
        .collect();
    let mut sink = BlockSink::new(limits);
    let mut record = ::csv::StringRecord::new();
    let mut text = String::new();
    while reader.read_record(&mut record).map_err(|e| row_error(&e))? {
        let fields = || {
            headers
                .iter()
                .zip(record.iter())
                .map(|(name, value)| (name, value.trim()))
                .filter(|(_, value)| !value.is_empty())
        };
        let size: usize = fields()
            .map(|(name, value)| name.len() + value.len() + 3)
            .sum();
        if !sink.fits(size) {
            break;
        }
        text.clear();
        for (name, value) in fields() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
        }
        sink.push(BlockKind::Record, &text);
    }
    sink.finish(None, 1)
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

    fn parse(text: &str) -> Result<ParsedDocument, ParseError> {
        super::parse(text, &ParseLimits::default())
    }

    #[test]
    fn a_huge_header_is_not_repeated_into_every_row() {
        // One 500 KB column name, then 250,000 rows: 125 GB if the name were copied per row.
        let mut csv = "n".repeat(500_000);
        csv.push('\n');
        csv.push_str(&"1\n".repeat(250_000));
        assert_eq!(
            parse(&csv),
            Err(ParseError::TooManyBlocks { limit: 200_000 })
        );
        let rows = csv.len() - 100_000 * 2;
        let doc = parse(&csv[..rows]).expect("150,000 rows fit the budgets");
        assert_eq!(doc.blocks.len(), 150_000);
        assert_eq!(doc.blocks[0].text.len(), MAX_NAME_CHARS + 3);
    }

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
