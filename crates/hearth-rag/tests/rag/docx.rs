use std::io::{Cursor, Write};

use hearth_rag::{parse, BlockKind, Format, ParseError, ParseLimits};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"#;

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).expect("entry starts");
        writer.write_all(content).expect("entry writes");
    }
    writer.finish().expect("zip finishes").into_inner()
}

fn paragraph(style: Option<&str>, text: &str) -> String {
    let properties = style
        .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
        .unwrap_or_default();
    format!(r#"<w:p>{properties}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

fn cell(text: &str) -> String {
    format!("<w:tc><w:tcPr/>{}</w:tc>", paragraph(None, text))
}

fn document_xml(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}<w:sectPr/></w:body></w:document>"#
    )
}

fn sample_body() -> String {
    [
        paragraph(Some("Title"), "Employee Handbook"),
        paragraph(Some("Heading1"), "Leave"),
        paragraph(None, "Everyone gets 25 days &amp; public holidays."),
        r#"<w:p><w:r><w:t>Tab</w:t><w:tab/><w:t>and</w:t><w:br/><w:t>break</w:t></w:r></w:p>"#
            .to_string(),
        paragraph(Some("Heading2"), "Carry-over"),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Up to five days</w:t></w:r></w:p>"#
            .to_string(),
        format!(
            "<w:tbl><w:tr>{}{}</w:tr><w:tr>{}{}</w:tr></w:tbl>",
            cell("Year"),
            cell("Days"),
            cell("2024"),
            cell("25")
        ),
        paragraph(Some("Heading1"), "Expenses"),
        r#"<w:p><w:r><w:instrText>PAGE \* MERGEFORMAT</w:instrText></w:r><w:r><w:t>Keep receipts.</w:t></w:r></w:p>"#
            .to_string(),
    ]
    .concat()
}

#[test]
fn headings_paragraphs_lists_and_tables() {
    let bytes = zip(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", document_xml(&sample_body()).as_bytes()),
    ]);
    let doc = parse(Format::Docx, &bytes, &ParseLimits::default()).expect("docx parses");
    assert_eq!(doc.title.as_deref(), Some("Employee Handbook"));
    assert_eq!(doc.pages, 1);
    let blocks: Vec<_> = doc
        .blocks
        .iter()
        .map(|b| (b.kind, b.text.as_str(), b.headings.join(" > ")))
        .collect();
    assert_eq!(
        blocks,
        vec![
            (BlockKind::Heading(1), "Employee Handbook", String::new()),
            (BlockKind::Heading(1), "Leave", String::new()),
            (
                BlockKind::Paragraph,
                "Everyone gets 25 days & public holidays.",
                "Leave".to_string()
            ),
            (BlockKind::Paragraph, "Tab\tand\nbreak", "Leave".to_string()),
            (BlockKind::Heading(2), "Carry-over", "Leave".to_string()),
            (
                BlockKind::ListItem,
                "- Up to five days",
                "Leave > Carry-over".to_string()
            ),
            (
                BlockKind::Table,
                "Year | Days\n2024 | 25",
                "Leave > Carry-over".to_string()
            ),
            (BlockKind::Heading(1), "Expenses", String::new()),
            (
                BlockKind::Paragraph,
                "Keep receipts.",
                "Expenses".to_string()
            ),
        ]
    );
}

#[test]
fn core_properties_title_wins() {
    let core = r#"<?xml version="1.0" encoding="UTF-8"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Policies &amp; Rules</dc:title><dc:creator>HR</dc:creator></cp:coreProperties>"#;
    let bytes = zip(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", document_xml(&sample_body()).as_bytes()),
        ("docProps/core.xml", core.as_bytes()),
    ]);
    let doc = parse(Format::Docx, &bytes, &ParseLimits::default()).expect("docx parses");
    assert_eq!(doc.title.as_deref(), Some("Policies & Rules"));
}

#[test]
fn footnotes_and_endnotes_follow_the_body_and_headers_do_not() {
    let notes = |root: &str, note: &str, text: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:{root} xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:{note} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{note}><w:{note} w:id="1">{}</w:{note}></w:{root}>"#,
            paragraph(Some("FootnoteText"), text)
        )
    };
    let footnotes = notes(
        "footnotes",
        "footnote",
        "Days carried over expire in March.",
    );
    let endnotes = notes("endnotes", "endnote", "Source: HR policy 2024.");
    let header = format!(
        r#"<w:hdr xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">{}</w:hdr>"#,
        paragraph(None, "CONFIDENTIAL page header")
    );
    let bytes = zip(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", document_xml(&sample_body()).as_bytes()),
        ("word/footnotes.xml", footnotes.as_bytes()),
        ("word/endnotes.xml", endnotes.as_bytes()),
        ("word/header1.xml", header.as_bytes()),
    ]);
    let doc = parse(Format::Docx, &bytes, &ParseLimits::default()).expect("docx parses");
    assert_eq!(doc.title.as_deref(), Some("Employee Handbook"));
    let tail: Vec<_> = doc
        .blocks
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|b| (b.kind, b.text.as_str(), b.headings.join(" > ")))
        .collect();
    assert_eq!(
        tail,
        vec![
            (BlockKind::Heading(1), "Footnotes", String::new()),
            (
                BlockKind::Paragraph,
                "Days carried over expire in March.",
                "Footnotes".to_string()
            ),
            (BlockKind::Heading(1), "Endnotes", String::new()),
            (
                BlockKind::Paragraph,
                "Source: HR policy 2024.",
                "Endnotes".to_string()
            ),
        ]
    );
    assert!(!doc.blocks.iter().any(|b| b.text.contains("CONFIDENTIAL")));

    // Broken notes are skipped; the body is still read.
    let bytes = zip(&[
        ("word/document.xml", document_xml(&sample_body()).as_bytes()),
        ("word/footnotes.xml", b"<w:footnotes><w:p></w:footnotes>"),
    ]);
    let doc = parse(Format::Docx, &bytes, &ParseLimits::default()).expect("docx parses");
    assert_eq!(
        doc.blocks.last().map(|b| b.text.as_str()),
        Some("Keep receipts.")
    );
}

#[test]
fn a_zip_bomb_stops_at_the_limit() {
    let huge = document_xml(&paragraph(None, &"a".repeat(2 * 1024 * 1024)));
    let bytes = zip(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", huge.as_bytes()),
    ]);
    assert!(bytes.len() < 64 * 1024, "deflate should squeeze the bomb");
    let limits = ParseLimits {
        max_unpacked_bytes: 1024 * 1024,
        ..ParseLimits::default()
    };
    let error = parse(Format::Docx, &bytes, &limits).expect_err("bomb refused");
    assert_eq!(error, ParseError::TooLarge { limit: 1024 * 1024 });
    assert!(error.to_string().contains("1 MiB"), "{error}");
    // The same file is fine under the default limit.
    assert!(parse(Format::Docx, &bytes, &ParseLimits::default()).is_ok());
}

#[test]
fn damaged_docx_files_say_so() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"this is definitely not a zip file".to_vec(),
            "the DOCX is damaged: it is not a valid zip archive",
        ),
        (
            zip(&[("[Content_Types].xml", CONTENT_TYPES.as_bytes())]),
            "the DOCX is damaged: word/document.xml is missing",
        ),
        (
            zip(&[("word/document.xml", b"<w:document><w:body><w:p></w:body>")]),
            "the DOCX is damaged: word/document.xml is not valid XML",
        ),
    ];
    for (bytes, expected) in cases {
        match parse(Format::Docx, &bytes, &ParseLimits::default()) {
            Err(ParseError::Corrupt(message)) => {
                assert!(message.starts_with(expected), "{message:?} vs {expected:?}")
            }
            other => panic!("expected Corrupt({expected:?}), got {other:?}"),
        }
    }
}

#[test]
fn compound_files_are_encrypted_docx_or_old_doc() {
    let magic = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    let mut encrypted = magic.to_vec();
    encrypted.extend(std::iter::repeat_n(0u8, 512));
    encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(
        parse(Format::Docx, &encrypted, &ParseLimits::default()),
        Err(ParseError::Encrypted)
    );
    let mut old_doc = magic.to_vec();
    old_doc.extend(std::iter::repeat_n(0u8, 512));
    old_doc.extend("WordDocument".encode_utf16().flat_map(u16::to_le_bytes));
    match parse(Format::Docx, &old_doc, &ParseLimits::default()) {
        Err(ParseError::Corrupt(message)) => assert!(message.contains(".doc"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
