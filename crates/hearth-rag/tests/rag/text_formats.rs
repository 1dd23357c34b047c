use hearth_rag::{parse, BlockKind, Format, ParseError, ParseLimits};

fn parse_as(format: Format, bytes: &[u8]) -> Result<hearth_rag::ParsedDocument, ParseError> {
    parse(format, bytes, &ParseLimits::default())
}

#[test]
fn empty_files_are_empty_in_every_format() {
    for format in Format::ALL {
        assert_eq!(parse_as(format, b""), Err(ParseError::Empty), "{format}");
        assert_eq!(
            parse_as(format, b" \n\t\r\n"),
            Err(ParseError::Empty),
            "{format}"
        );
    }
    assert_eq!(ParseError::Empty.to_string(), "the file is empty");
}

#[test]
fn binary_content_is_not_text_in_every_text_format() {
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    for format in [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Csv,
        Format::Json,
    ] {
        let error = parse_as(format, &binary).expect_err("binary refused");
        assert_eq!(error, ParseError::NotText, "{format}");
        assert_eq!(error.to_string(), "the file is not text (binary content)");
    }
}

#[test]
fn text_paragraphs_split_on_blank_lines_and_bom_is_stripped() {
    let bytes = "\u{feff}First line\nstill first.\n\n\n  Second paragraph.  \n".as_bytes();
    let doc = parse_as(Format::Text, bytes).expect("text parses");
    let texts: Vec<_> = doc.blocks.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(texts, vec!["First line\nstill first.", "Second paragraph."]);
    assert!(doc.blocks.iter().all(|b| b.kind == BlockKind::Paragraph));
    assert_eq!(doc.pages, 1);
    assert_eq!(doc.title, None);
}

#[test]
fn markdown_markup_without_text_is_empty() {
    assert_eq!(
        parse_as(Format::Markdown, b"---\n\n<!-- comment -->\n"),
        Err(ParseError::Empty)
    );
    assert_eq!(
        parse_as(Format::Html, b"<html><script>alert(1)</script></html>"),
        Err(ParseError::Empty)
    );
}

#[test]
fn markdown_heading_paths_reach_blocks() {
    let doc = parse_as(
        Format::Markdown,
        b"# Title\n\n## Part\n\n### Detail\n\nDeep text.\n\n## Other\n\nShallow.\n",
    )
    .expect("md parses");
    let deep = doc
        .blocks
        .iter()
        .find(|b| b.text == "Deep text.")
        .expect("deep block");
    assert_eq!(deep.headings[..], ["Title", "Part", "Detail"]);
    let shallow = doc
        .blocks
        .iter()
        .find(|b| b.text == "Shallow.")
        .expect("shallow block");
    assert_eq!(shallow.headings[..], ["Title", "Other"]);
}

#[test]
fn csv_rows_become_records() {
    let doc = parse_as(
        Format::Csv,
        b"name,city,note\nAnn,Oslo,\"likes, commas\"\nBo,Rome,\n",
    )
    .expect("csv parses");
    let records: Vec<_> = doc
        .blocks
        .iter()
        .map(|b| (b.kind, b.text.as_str()))
        .collect();
    assert_eq!(
        records,
        vec![
            (
                BlockKind::Record,
                "name: Ann\ncity: Oslo\nnote: likes, commas"
            ),
            (BlockKind::Record, "name: Bo\ncity: Rome"),
        ]
    );
}

#[test]
fn bad_csv_names_the_line() {
    let error = parse_as(Format::Csv, b"a,b\n1,2\n3,4,5\n6,7\n").expect_err("ragged csv");
    assert_eq!(
        error,
        ParseError::Corrupt("CSV line 3: expected 2 fields like the header, found 3".to_string())
    );
}

#[test]
fn csv_with_only_a_header_is_empty() {
    assert_eq!(parse_as(Format::Csv, b"a,b,c\n"), Err(ParseError::Empty));
}

#[test]
fn bad_json_names_line_and_column() {
    let error = parse_as(Format::Json, b"[\n  {\"a\": 1},\n  {\"b\": }\n]").expect_err("bad json");
    match error {
        ParseError::Corrupt(message) => {
            assert!(
                message.starts_with("invalid JSON at line 3 column "),
                "{message}"
            )
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn json_records() {
    let doc = parse_as(
        Format::Json,
        br#"[{"q":"Why?","a":"Because."},{"q":"How?"}]"#,
    )
    .expect("json parses");
    let texts: Vec<_> = doc.blocks.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(texts, vec!["a: Because.\nq: Why?", "q: How?"]);
    assert_eq!(parse_as(Format::Json, b"[]"), Err(ParseError::Empty));
}
