//! PDF: loaded with `lopdf`, text extracted page by page with `pdf-extract`.
//!
//! `pdf-extract` panics on some malformed input (it unwraps inside), so every call into it runs
//! under `catch_unwind`: a damaged page is skipped, and a document none of whose pages can be
//! read is reported as damaged rather than taking the process down.

use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::Document;

use super::{paragraphs, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

pub(super) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    // A PDF may have junk before its header, but not much (readers look at the first KiB).
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(damaged("this is not a PDF file (no %PDF header)"));
    }
    let document = match catch_unwind(|| Document::load_mem(bytes)) {
        Ok(Ok(document)) => document,
        Ok(Err(lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword)) => {
            return Err(ParseError::Encrypted)
        }
        Ok(Err(e)) => return Err(damaged(&e.to_string())),
        Err(_) => return Err(damaged("its structure could not be read")),
    };
    // lopdf opens documents encrypted with an empty user password by itself (the common
    // "owner password only" case); the Encrypt entry is still there when it could not.
    if document.trailer.get(b"Encrypt").is_ok() || document.is_encrypted() {
        return Err(ParseError::Encrypted);
    }

    let pages = document.get_pages();
    let page_count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    if page_count == 0 {
        return Err(damaged("it has no pages"));
    }
    if page_count > limits.max_pages {
        return Err(ParseError::TooManyPages {
            pages: page_count,
            limit: limits.max_pages,
        });
    }

    let mut sink = BlockSink::default();
    let mut failures = 0u32;
    let mut first_failure = None;
    for &number in pages.keys() {
        match page_text(&document, number) {
            Ok(text) => {
                sink.page = Some(number);
                for paragraph in paragraphs(&text) {
                    sink.push(BlockKind::Paragraph, &paragraph);
                }
            }
            Err(cause) => {
                failures += 1;
                first_failure.get_or_insert(cause);
            }
        }
    }
    if failures == page_count {
        let cause = first_failure.unwrap_or_else(|| "its pages could not be read".to_string());
        return Err(damaged(&cause));
    }
    if sink.blocks.is_empty() {
        return Err(ParseError::NoText);
    }
    Ok(ParsedDocument {
        title: info_title(&document),
        blocks: sink.blocks,
        pages: page_count,
    })
}

fn page_text(document: &Document, number: u32) -> Result<String, String> {
    let extracted = catch_unwind(AssertUnwindSafe(|| {
        let mut text = String::new();
        let mut output = pdf_extract::PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(document, &mut output, number).map(|()| text)
    }));
    match extracted {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("page {number} could not be read ({e})")),
        Err(_) => Err(format!("page {number} could not be read")),
    }
}

/// The document information dictionary's /Title, when it holds real text.
fn info_title(document: &Document) -> Option<String> {
    let info = document.trailer.get(b"Info").ok()?;
    let info = match info {
        lopdf::Object::Reference(id) => document.get_dictionary(*id).ok()?,
        lopdf::Object::Dictionary(dict) => dict,
        _ => return None,
    };
    let title = lopdf::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = super::squash_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

fn damaged(cause: &str) -> ParseError {
    ParseError::Corrupt(format!("the PDF is damaged: {cause}"))
}
