//! DOCX: a zip (`zip`) holding WordprocessingML, read with `quick-xml`.
//!
//! Read: `word/document.xml` (the body), `word/footnotes.xml` and `word/endnotes.xml` (as
//! "Footnotes" and "Endnotes" sections after the body) and `docProps/core.xml` (the title).
//! Page headers and footers are not: they repeat on every page and say little. Every entry
//! goes through one byte budget, `ParseLimits::max_unpacked_bytes`, enforced while decompressing
//! rather than trusted from the zip's declared sizes, so a zip bomb stops at the limit.

use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zip::result::ZipError;
use zip::ZipArchive;

use super::{squash_whitespace, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

/// The first bytes of an OLE compound file: a password-protected DOCX, or an old `.doc`.
const COMPOUND_FILE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

pub(super) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    if bytes.starts_with(&COMPOUND_FILE_MAGIC) {
        // Office stores an encrypted DOCX inside a compound file with an "EncryptedPackage"
        // stream (names are UTF-16LE there).
        let marker: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
            return Err(ParseError::Encrypted);
        }
        return Err(damaged(
            "this is an old Word .doc file, not a .docx (save it as .docx first)",
        ));
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| damaged(&format!("it is not a valid zip archive ({e})")))?;
    let mut budget = limits.max_unpacked_bytes;
    let body = match read_entry(&mut archive, "word/document.xml", &mut budget, limits)? {
        Some(body) => body,
        None => return Err(damaged("word/document.xml is missing")),
    };
    let mut walker = Walker::new(limits);
    walker
        .read(&body)
        .map_err(|e| damaged(&format!("word/document.xml is not valid XML ({e})")))?;
    if let Some(error) = walker.too_deep.take() {
        return Err(error);
    }
    // The title is a nicety: a missing or odd core.xml never fails the document, a bomb does.
    let core_title = match read_entry(&mut archive, "docProps/core.xml", &mut budget, limits) {
        Ok(Some(core)) => core_title(&core),
        Err(ParseError::TooLarge { limit }) => return Err(ParseError::TooLarge { limit }),
        Ok(None) | Err(_) => None,
    };
    let title = core_title
        .or_else(|| walker.title.clone())
        .or_else(|| walker.sink.first_heading(1));
    for (entry, heading) in [
        ("word/footnotes.xml", "Footnotes"),
        ("word/endnotes.xml", "Endnotes"),
    ] {
        // Notes, like the title, never fail the document unless they are a bomb.
        let xml = match read_entry(&mut archive, entry, &mut budget, limits) {
            Ok(Some(xml)) => xml,
            Err(ParseError::TooLarge { limit }) => return Err(ParseError::TooLarge { limit }),
            Ok(None) | Err(_) => continue,
        };
        let mut notes = Walker::new(limits);
        if notes.read(&xml).is_err() || notes.sink.blocks.is_empty() {
            continue;
        }
        if let Some(error) = notes.too_deep.take().or(notes.sink.error.take()) {
            return Err(error);
        }
        walker.sink.heading(1, heading);
        for block in notes.sink.blocks {
            let kind = match block.kind {
                BlockKind::Heading(_) => BlockKind::Paragraph,
                kind => kind,
            };
            walker.sink.push(kind, &block.text);
        }
    }
    walker.sink.finish(title, 1)
}

/// Read one entry as UTF-8, charging it to `budget`; `None` when the entry does not exist.
fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
    limits: &ParseLimits,
) -> Result<Option<String>, ParseError> {
    let too_large = ParseError::TooLarge {
        limit: limits.max_unpacked_bytes,
    };
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED)) => {
            return Err(ParseError::Encrypted)
        }
        Err(e) => return Err(damaged(&format!("{name} cannot be opened ({e})"))),
    };
    // The declared size can lie; it only lets an honest bomb fail before any inflating.
    if entry.size() > *budget {
        return Err(too_large);
    }
    let mut content = Vec::new();
    entry
        .take(budget.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|e| damaged(&format!("{name} cannot be unpacked ({e})")))?;
    let read = u64::try_from(content.len()).unwrap_or(u64::MAX);
    if read > *budget {
        return Err(too_large);
    }
    *budget -= read;
    String::from_utf8(content)
        .map(Some)
        .map_err(|_| damaged(&format!("{name} is not UTF-8 text")))
}

/// Walks `word/document.xml`: paragraphs (`w:p`) with their runs' text (`w:t`, `w:tab`,
/// `w:br`), heading styles, list numbering, and tables (`w:tbl`) flattened into row lines.
#[derive(Debug, Default)]
struct Walker {
    sink: BlockSink,
    /// Open paragraphs, innermost last (text boxes nest paragraphs inside runs).
    paragraphs: Vec<Paragraph>,
    /// Depth of open tables; only the outermost one becomes a block.
    table_depth: usize,
    rows: Vec<String>,
    row: Vec<String>,
    cell: Option<String>,
    /// Inside `w:t` (text we keep) as opposed to field codes or deleted text.
    in_text: bool,
    /// Inside `mc:Fallback`, which repeats what `mc:Choice` already said.
    fallback_depth: usize,
    title: Option<String>,
    /// Open elements, checked against `max_depth`.
    depth: usize,
    max_depth: usize,
    too_deep: Option<ParseError>,
}

#[derive(Debug, Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    numbered: bool,
}

impl Walker {
    fn new(limits: &ParseLimits) -> Self {
        Walker {
            sink: BlockSink::new(limits),
            max_depth: limits.max_depth,
            ..Walker::default()
        }
    }

    /// Reads the XML; stops early (without an error here) when too deep or over a budget,
    /// which `too_deep` and the sink then report.
    fn read(&mut self, xml: &str) -> Result<(), quick_xml::Error> {
        let mut reader = Reader::from_str(xml);
        loop {
            if self.sink.exhausted() {
                return Ok(());
            }
            match reader.read_event()? {
                Event::Start(element) => {
                    self.depth += 1;
                    if self.depth > self.max_depth {
                        self.too_deep = Some(ParseError::TooDeep {
                            limit: self.max_depth,
                        });
                        return Ok(());
                    }
                    self.start(&element, false);
                }
                Event::Empty(element) => self.start(&element, true),
                Event::End(element) => {
                    self.depth = self.depth.saturating_sub(1);
                    self.end(element.local_name().as_ref());
                }
                Event::Text(text) if self.in_text => self.append(&text.xml10_content()),
                Event::CData(text) if self.in_text => self.append(&text.into_inner()),
                Event::GeneralRef(reference) if self.in_text => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => quick_xml::escape::resolve_predefined_entity(&reference)
                            .map(str::to_string),
                    };
                    if let Some(text) = resolved {
                        self.append(&text);
                    }
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn start(&mut self, element: &BytesStart<'_>, empty: bool) {
        let name = element.local_name();
        let name = name.as_ref();
        if name == "Fallback" {
            if !empty {
                self.fallback_depth += 1;
            }
            return;
        }
        if self.fallback_depth > 0 {
            return;
        }
        match name {
            "p" if !empty => self.paragraphs.push(Paragraph::default()),
            "t" if !empty => self.in_text = true,
            "tab" => self.append("\t"),
            "br" | "cr" => self.append("\n"),
            "pStyle" => {
                let style = attribute(element, "val");
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.style = style;
                }
            }
            "numPr" => {
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.numbered = true;
                }
            }
            "tbl" if !empty => {
                self.table_depth += 1;
                if self.table_depth == 1 {
                    self.rows.clear();
                }
            }
            "tr" if !empty && self.table_depth == 1 => self.row.clear(),
            "tc" if !empty && self.table_depth == 1 => self.cell = Some(String::new()),
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        if name == "Fallback" {
            self.fallback_depth = self.fallback_depth.saturating_sub(1);
            return;
        }
        if self.fallback_depth > 0 {
            return;
        }
        match name {
            "t" => self.in_text = false,
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    self.finish_paragraph(paragraph);
                }
            }
            "tc" if self.table_depth == 1 => {
                if let Some(cell) = self.cell.take() {
                    self.row.push(squash_whitespace(&cell));
                }
            }
            "tr" if self.table_depth == 1 => {
                let row = std::mem::take(&mut self.row);
                if row.iter().any(|cell| !cell.is_empty()) {
                    self.rows.push(row.join(" | "));
                }
            }
            "tbl" => {
                if self.table_depth == 1 {
                    let rows = std::mem::take(&mut self.rows);
                    self.sink.push(BlockKind::Table, &rows.join("\n"));
                }
                self.table_depth = self.table_depth.saturating_sub(1);
            }
            _ => {}
        }
    }

    fn append(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn finish_paragraph(&mut self, paragraph: Paragraph) {
        if self.table_depth > 0 {
            // Paragraphs in a cell make up the cell's text.
            if let Some(cell) = &mut self.cell {
                if !cell.is_empty() && !paragraph.text.trim().is_empty() {
                    cell.push(' ');
                }
                cell.push_str(&paragraph.text);
            }
            return;
        }
        let text = paragraph.text.trim();
        if text.is_empty() {
            return;
        }
        let style = paragraph.style.as_deref().unwrap_or_default();
        if style == "Title" {
            self.title.get_or_insert_with(|| squash_whitespace(text));
            self.sink.heading(1, text);
        } else if let Some(level) = heading_level(style) {
            self.sink.heading(level, text);
        } else if paragraph.numbered || style == "ListParagraph" || style.starts_with("ListBullet")
        {
            self.sink.push(BlockKind::ListItem, &format!("- {text}"));
        } else {
            self.sink.push(BlockKind::Paragraph, text);
        }
    }
}

/// `Heading1`..`Heading9` (the style ids Word writes for its built-in heading styles).
fn heading_level(style: &str) -> Option<u8> {
    let digits = style
        .strip_prefix("Heading")
        .or_else(|| style.strip_prefix("heading"))?;
    let level: u8 = digits.trim().parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}

/// The value of the attribute whose local name is `name` (Word prefixes them: `w:val`).
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find_map(|attr| {
        (attr.key.local_name().as_ref() == name)
            .then(|| {
                attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|value| value.into_owned())
            })
            .flatten()
    })
}

/// `dc:title` from `docProps/core.xml`.
fn core_title(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut in_title = false;
    let mut title = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(element) if element.local_name().as_ref() == "title" => in_title = true,
            Event::End(element) if element.local_name().as_ref() == "title" => break,
            Event::Text(text) if in_title => title.push_str(&text.xml10_content()),
            Event::GeneralRef(reference) if in_title => {
                if let Some(text) = quick_xml::escape::resolve_predefined_entity(&reference) {
                    title.push_str(text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let title = squash_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

fn damaged(cause: &str) -> ParseError {
    ParseError::Corrupt(format!("the DOCX is damaged: {cause}"))
}
