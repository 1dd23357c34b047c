//! PDF: loaded with `lopdf`, text extracted page by page with `pdf-extract`.
//!
//! `pdf-extract` panics on some malformed input (it unwraps inside), so every call into it runs
//! under `catch_unwind`: a damaged page is skipped, and a document none of whose pages can be
//! read is reported as damaged rather than taking the process down.
//!
//! Neither crate bounds what it inflates, and a stream compressed twice (`[/FlateDecode
//! /FlateDecode]`) turns kilobytes into gigabytes. So before `lopdf` sees the file, every
//! Flate stream that is not an image (images are never decoded for text) is inflated once here,
//! through its whole filter chain (more than four layers is refused outright), into a counter
//! charged to `max_unpacked_bytes`. The scan reads dictionaries as text, so a file crafted to
//! hide its filters from it (a filter by reference, an LZW layer) gets past it; that is what the
//! parser process's memory limit is for (`isolate.rs`).

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

use flate2::read::ZlibDecoder;
use memchr::memmem;

use lopdf::Document;

use super::{paragraphs, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

pub(super) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    // A PDF may have junk before its header, but not much (readers look at the first KiB).
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(damaged("this is not a PDF file (no %PDF header)"));
    }
    check_inflated_size(bytes, limits.max_unpacked_bytes)?;
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
    for (&number, &page) in &pages {
        let text = if parents_loop(&document, page) {
            Err(format!(
                "page {number} could not be read (its page tree loops)"
            ))
        } else {
            page_text(&document, number)
        };
        match text {
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

/// Whether the page's chain of `/Parent`s loops (or is absurdly long): `pdf-extract` follows it
/// to find inherited resources and would never return.
fn parents_loop(document: &Document, page: lopdf::ObjectId) -> bool {
    const MAX_DEPTH: usize = 64;
    let mut seen = std::collections::HashSet::new();
    let mut id = page;
    loop {
        if !seen.insert(id) || seen.len() > MAX_DEPTH {
            return true;
        }
        let Ok(dictionary) = document.get_dictionary(id) else {
            return false;
        };
        match dictionary.get(b"Parent") {
            Ok(lopdf::Object::Reference(parent)) => id = *parent,
            _ => return false,
        }
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

/// Most Flate layers decoded on one stream; real files use one.
const MAX_LAYERS: usize = 4;
/// How far before a `stream` keyword its dictionary is looked for.
const DICTIONARY_WINDOW: usize = 64 * 1024;

/// Fails with `TooLarge` when the file's non-image Flate streams inflate to more than `limit`
/// bytes in all. Streams that do not inflate (encrypted, damaged) count what they gave.
fn check_inflated_size(bytes: &[u8], limit: u64) -> Result<(), ParseError> {
    let mut left = limit;
    let mut from = 0;
    let keyword = memmem::Finder::new(b"stream");
    while let Some(found) = keyword.find(&bytes[from..]) {
        let at = from + found;
        from = at + 6;
        // `endstream` ends a stream; only `stream` followed by an end of line starts one.
        if at >= 3 && &bytes[at - 3..at] == b"end" {
            continue;
        }
        let data_start = match bytes.get(from..from + 2) {
            Some([b'\r', b'\n']) => from + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => from + 1,
            _ => continue,
        };
        let dictionary = &bytes[at.saturating_sub(DICTIONARY_WINDOW)..at];
        let dictionary = match memmem::rfind(dictionary, b"obj") {
            Some(start) => &dictionary[start..],
            None => dictionary,
        };
        let layers = memmem::find_iter(dictionary, b"/FlateDecode").count();
        let image = [b"/Subtype /Image".as_slice(), b"/Subtype/Image"]
            .iter()
            .any(|marker| memmem::find(dictionary, marker).is_some());
        if layers == 0 || image {
            continue;
        }
        if layers > MAX_LAYERS {
            return Err(ParseError::TooLarge { limit });
        }
        let data = &bytes[data_start..];
        let used = inflated_size(data, layers, left);
        if used > left {
            return Err(ParseError::TooLarge { limit });
        }
        left -= used;
    }
    Ok(())
}

/// Bytes `data` gives after `layers` rounds of zlib inflation, counting at most `budget + 1`.
/// A damaged stream counts what it gave before the damage.
fn inflated_size(data: &[u8], layers: usize, budget: u64) -> u64 {
    let cap = budget.saturating_add(1);
    let mut inner: Option<Vec<u8>> = None;
    let mut charged = 0u64;
    for layer in 1..=layers {
        let input = inner.as_deref().unwrap_or(data);
        let mut decoder = ZlibDecoder::new(input).take(cap);
        if layer == layers {
            return charged.saturating_add(count_bytes(&mut decoder));
        }
        let mut output = Vec::new();
        let _ = decoder.read_to_end(&mut output);
        // Every layer is memory spent, not only the last.
        let spent = u64::try_from(output.len()).unwrap_or(u64::MAX);
        if spent > budget {
            return cap;
        }
        charged = charged.saturating_add(spent);
        inner = Some(output);
    }
    0
}

fn count_bytes(reader: &mut impl Read) -> u64 {
    let mut buffer = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n as u64,
        }
    }
}

fn damaged(cause: &str) -> ParseError {
    ParseError::Corrupt(format!("the PDF is damaged: {cause}"))
}
