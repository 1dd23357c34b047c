use hearth_rag::{parse, Format, ParseError, ParseLimits};
use lopdf::content::{Content, Operation};
use lopdf::{
    dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream,
};

/// A PDF with one page per entry: `Some(lines)` writes each line as text (lines separated by a
/// blank line's worth of space form paragraphs), `None` draws a rectangle and no text.
fn build(pages: &[Option<&[&str]>]) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for page in pages {
        let operations = match page {
            Some(lines) => {
                let mut operations = vec![
                    Operation::new("BT", vec![]),
                    Operation::new("Tf", vec!["F1".into(), 12.into()]),
                    Operation::new("Td", vec![100.into(), 700.into()]),
                ];
                for line in *lines {
                    if line.is_empty() {
                        // An empty line: move down a second time, leaving a visible gap.
                        operations.push(Operation::new("Td", vec![0.into(), (-28).into()]));
                        continue;
                    }
                    operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
                    operations.push(Operation::new("Td", vec![0.into(), (-14).into()]));
                }
                operations.push(Operation::new("ET", vec![]));
                operations
            }
            None => vec![
                Operation::new("re", vec![10.into(), 10.into(), 100.into(), 100.into()]),
                Operation::new("f", vec![]),
            ],
        };
        let content = Content { operations }.encode().expect("content encodes");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = i64::try_from(kids.len()).expect("few pages");
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    let info_id = doc.add_object(dictionary! {
        "Title" => Object::string_literal("Quarterly Report"),
    });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    doc.trailer.set(
        "ID",
        Object::Array(vec![
            Object::string_literal(b"0123456789abcdef".to_vec()),
            Object::string_literal(b"0123456789abcdef".to_vec()),
        ]),
    );
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("pdf saves");
    bytes
}

fn two_pages() -> Vec<u8> {
    save(build(&[
        Some(&["Hello from page one.", "", "A second paragraph."]),
        Some(&["Page two says goodbye."]),
    ]))
}

#[test]
fn pages_become_numbered_paragraphs() {
    let doc = parse(Format::Pdf, &two_pages(), &ParseLimits::default()).expect("pdf parses");
    assert_eq!(doc.pages, 2);
    assert_eq!(doc.title.as_deref(), Some("Quarterly Report"));
    let blocks: Vec<_> = doc
        .blocks
        .iter()
        .map(|b| (b.page, b.text.as_str()))
        .collect();
    assert_eq!(
        blocks,
        vec![
            (Some(1), "Hello from page one."),
            (Some(1), "A second paragraph."),
            (Some(2), "Page two says goodbye."),
        ]
    );
}

#[test]
fn a_page_without_text_is_skipped_but_no_text_at_all_is_an_error() {
    let mixed = save(build(&[None, Some(&["Only page two has words."])]));
    let doc = parse(Format::Pdf, &mixed, &ParseLimits::default()).expect("pdf parses");
    assert_eq!(doc.pages, 2);
    assert_eq!(doc.blocks.len(), 1);
    assert_eq!(doc.blocks[0].page, Some(2));

    let scanned = save(build(&[None]));
    let error = parse(Format::Pdf, &scanned, &ParseLimits::default()).expect_err("no text");
    assert_eq!(error, ParseError::NoText);
    assert!(error.to_string().contains("OCR"));
}

#[test]
fn too_many_pages_names_the_limit() {
    let bytes = save(build(&[Some(&["a"]), Some(&["b"]), Some(&["c"])]));
    let limits = ParseLimits {
        max_pages: 2,
        ..ParseLimits::default()
    };
    let error = parse(Format::Pdf, &bytes, &limits).expect_err("over the limit");
    assert_eq!(error, ParseError::TooManyPages { pages: 3, limit: 2 });
    assert_eq!(
        error.to_string(),
        "the PDF has 3 pages, more than the limit of 2"
    );
}

#[test]
fn damaged_pdfs_are_errors_never_panics() {
    let valid = two_pages();
    let mut cases: Vec<Vec<u8>> = vec![
        b"%PDF-1.7\n this is not really a pdf at all".to_vec(),
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"
            .to_vec(),
        (0..=255u8).cycle().take(4096).collect(),
    ];
    for cut in [10, 100, valid.len() / 3, valid.len() / 2, valid.len() - 20] {
        cases.push(valid[..cut].to_vec());
    }
    for (i, bytes) in cases.iter().enumerate() {
        match parse(Format::Pdf, bytes, &ParseLimits::default()) {
            Err(ParseError::Corrupt(message)) => {
                assert!(
                    message.starts_with("the PDF is damaged: "),
                    "case {i}: {message}"
                )
            }
            other => panic!("case {i}: expected Corrupt, got {other:?}"),
        }
    }
    let garbage = parse(Format::Pdf, b"GIF89a not a pdf", &ParseLimits::default());
    assert_eq!(
        garbage,
        Err(ParseError::Corrupt(
            "the PDF is damaged: this is not a PDF file (no %PDF header)".to_string()
        ))
    );
}

#[test]
fn a_panic_inside_pdf_extract_becomes_a_damaged_pdf() {
    // pdf-extract `expect`s a MediaBox on every page; without one it panics.
    let mut doc = build(&[Some(&["No media box here."])]);
    let pages_id = doc
        .catalog()
        .and_then(|catalog| catalog.get(b"Pages"))
        .and_then(Object::as_reference)
        .expect("pages reference");
    doc.get_dictionary_mut(pages_id)
        .expect("pages dictionary")
        .remove(b"MediaBox");
    let error = parse(Format::Pdf, &save(doc), &ParseLimits::default()).expect_err("damaged");
    assert_eq!(
        error,
        ParseError::Corrupt("the PDF is damaged: page 1 could not be read".to_string())
    );
}

fn encrypted(user_password: &str) -> Vec<u8> {
    let mut doc = build(&[Some(&["Secret plans."])]);
    let version = EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: Permissions::PRINTABLE,
    };
    let state = EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("document encrypts");
    save(doc)
}

#[test]
fn a_password_protected_pdf_is_encrypted() {
    let error = parse(
        Format::Pdf,
        &encrypted("let-me-in"),
        &ParseLimits::default(),
    )
    .expect_err("needs a password");
    assert_eq!(error, ParseError::Encrypted);
}

#[test]
fn an_owner_password_only_pdf_is_readable() {
    // No user password: any reader opens it, only editing is restricted.
    let doc = parse(Format::Pdf, &encrypted(""), &ParseLimits::default()).expect("readable");
    assert_eq!(doc.blocks[0].text, "Secret plans.");
}
