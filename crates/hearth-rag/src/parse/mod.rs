//! Turning an uploaded file's bytes into a [`ParsedDocument`]: a title and a list of structured
//! blocks (headings, paragraphs, list items, code, tables, records), each with the heading path it
//! sits under and, for paginated formats, its page.
//!
//! Every format goes through a real parser crate; this module only maps their output onto blocks
//! and their failures onto [`ParseError`], whose messages are shown to the user as the reason a
//! document failed.
//!
//! Every upload may be hostile, so parsing is bounded by [`ParseLimits`]: bytes inflated out of
//! compressed streams, text extracted, blocks, and nesting depth. Budgets are charged before the
//! text is built (a CSV row or JSON record is measured, then written), and context that repeats
//! (the heading path every block sits under) is shared, not copied, so no input grows the
//! output much beyond its own size before a limit stops it. Nothing here recurses on the input's
//! nesting, except `htmd`'s walk over HTML, which runs only on trees checked against
//! `max_depth` first.

mod csv;
mod docx;
mod html;
mod json;
mod markdown;
mod pdf;
mod text;

pub use html::html_to_markdown;

use std::fmt;
use std::sync::Arc;

/// A file format Hearth can read into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Csv,
    Json,
}

impl Format {
    /// Every supported format, in a stable order.
    pub const ALL: [Format; 7] = [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Pdf,
        Format::Docx,
        Format::Csv,
        Format::Json,
    ];

    /// From the file name's extension (case-insensitive: txt/text/log, md/markdown, html/htm,
    /// pdf, docx, csv, json); `None` when unsupported.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "txt" | "text" | "log" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            "pdf" => Some(Format::Pdf),
            "docx" => Some(Format::Docx),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Short stable name, as stored alongside a document.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// Inverse of [`Format::as_str`].
    pub fn parse_str(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.as_str() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds that protect the parser from hostile files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParseLimits {
    /// Most bytes inflated out of compressed data (DOCX zip entries, PDF streams other than
    /// images); more is a compression bomb.
    pub max_unpacked_bytes: u64,
    /// Most pages read from a PDF.
    pub max_pages: u32,
    /// Most bytes of text extracted from one file (all blocks together).
    pub max_text_bytes: usize,
    /// Most blocks (paragraphs, rows, records, list items...) in one file.
    pub max_blocks: usize,
    /// Deepest nesting of elements (HTML, DOCX XML) read.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_unpacked_bytes: 128 * 1024 * 1024,
            max_pages: 2000,
            max_text_bytes: 32 * 1024 * 1024,
            max_blocks: 200_000,
            max_depth: 256,
        }
    }
}

/// A file read into structured blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDocument {
    /// The document's own title (HTML `<title>`, DOCX core properties, first H1, ...), if any.
    pub title: Option<String>,
    /// The content, in reading order; never empty for a successful parse.
    pub blocks: Vec<Block>,
    /// Number of pages; 1 for formats without pages.
    pub pages: u32,
}

/// One structural unit of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    /// The text, trimmed; tables have one row per line with cells joined by `" | "`.
    pub text: String,
    /// The heading path this block sits under, outermost first. A heading's own path holds its
    /// parents only, not itself. Shared by every block under the same path; each entry is cut
    /// to [`MAX_HEADING_CHARS`].
    pub headings: Arc<[String]>,
    /// 1-based page number for paginated formats (PDF).
    pub page: Option<u32>,
}

/// What a [`Block`] is; the chunker keeps tables, code and records whole when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A heading of the given level (1 is outermost).
    Heading(u8),
    Paragraph,
    ListItem,
    /// A code block, verbatim (fenced with its language when the source said one).
    Code,
    /// A table, one row per line.
    Table,
    /// One record of structured data (a CSV row, a JSON object), as `key: value` lines.
    Record,
}

/// Longest heading kept in the heading path of the blocks under it (the heading's own block keeps
/// it whole): a path is context for search, and a huge "heading" would be repeated into every
/// chunk under it.
pub const MAX_HEADING_CHARS: usize = 200;

/// Why a file could not be read. The `Display` text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ParseError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not text (binary content)")]
    NotText,
    #[error("the file is encrypted (password-protected); remove the password and upload it again")]
    Encrypted,
    #[error("no extractable text (an image-only PDF needs OCR, which Hearth does not do)")]
    NoText,
    #[error("the file unpacks to more than {} (the limit); it may be a zip bomb", human_bytes(*limit))]
    TooLarge { limit: u64 },
    #[error("the PDF has {pages} pages, more than the limit of {limit}")]
    TooManyPages { pages: u32, limit: u32 },
    #[error("the file holds more than {} of text (the limit)", human_bytes(*limit as u64))]
    TooMuchText { limit: usize },
    #[error("the file has more than {limit} paragraphs, rows or records (the limit)")]
    TooManyBlocks { limit: usize },
    #[error("the file nests elements more than {limit} levels deep (the limit)")]
    TooDeep { limit: usize },
    #[error("{0}")]
    Corrupt(String),
}

/// Parse `bytes` as `format`.
pub fn parse(
    format: Format,
    bytes: &[u8],
    limits: &ParseLimits,
) -> Result<ParsedDocument, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let document = match format {
        Format::Text => text::parse(bytes, limits)?,
        Format::Markdown => markdown::parse(&decode_text(bytes)?, limits)?,
        Format::Html => html::parse(&decode_text(bytes)?, limits)?,
        Format::Pdf => pdf::parse(bytes, limits)?,
        Format::Docx => docx::parse(bytes, limits)?,
        Format::Csv => csv::parse(&decode_text(bytes)?, limits)?,
        Format::Json => json::parse(&decode_text(bytes)?, limits)?,
    };
    if document.blocks.is_empty() {
        // Markup with nothing but tags, a CSV with only a header, an empty JSON array...
        return Err(ParseError::Empty);
    }
    Ok(document)
}

/// Decode a text file: UTF-8 (BOM stripped) or UTF-16 with a BOM; anything binary is refused.
fn decode_text(bytes: &[u8]) -> Result<String, ParseError> {
    let text = if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        utf8(rest)?
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        utf16(rest, u16::from_be_bytes)?
    } else {
        utf8(bytes)?
    };
    if looks_binary(&text) {
        return Err(ParseError::NotText);
    }
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(text)
}

fn utf8(bytes: &[u8]) -> Result<String, ParseError> {
    if bytes.contains(&0) {
        return Err(ParseError::NotText);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| ParseError::NotText)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, ParseError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseError::NotText);
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| ParseError::NotText)
}

/// Valid UTF-8 can still be binary junk: a text file has almost no control characters.
fn looks_binary(text: &str) -> bool {
    let mut chars = 0usize;
    let mut control = 0usize;
    for c in text.chars() {
        chars += 1;
        if c == '\0' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c')) {
            control += 1;
        }
    }
    control > 0 && control * 32 > chars
}

fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const KIB: u64 = 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Collapse runs of whitespace into single spaces and trim.
fn squash_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Split text into paragraphs on blank lines, trimming each and dropping empty ones.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n").trim().to_string());
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n").trim().to_string());
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Builds blocks while tracking the heading path they sit under, within the text and block
/// budgets of [`ParseLimits`]. Over a budget it records the error, ignores what follows and
/// [`BlockSink::finish`] reports it; [`BlockSink::exhausted`] lets a format stop reading early.
#[derive(Debug)]
struct BlockSink {
    blocks: Vec<Block>,
    /// Open headings, outermost first: (level, text cut to [`MAX_HEADING_CHARS`]).
    path: Vec<(u8, String)>,
    /// `path`'s texts, shared by every block pushed under it.
    shared_path: Arc<[String]>,
    page: Option<u32>,
    text_left: usize,
    limits: ParseLimits,
    error: Option<ParseError>,
}

impl Default for BlockSink {
    fn default() -> Self {
        BlockSink::new(&ParseLimits::default())
    }
}

impl BlockSink {
    fn new(limits: &ParseLimits) -> Self {
        BlockSink {
            blocks: Vec::new(),
            path: Vec::new(),
            shared_path: Arc::from(Vec::new()),
            page: None,
            text_left: limits.max_text_bytes,
            limits: limits.clone(),
            error: None,
        }
    }

    /// Whether a budget ran out: nothing more will be kept.
    fn exhausted(&self) -> bool {
        self.error.is_some()
    }

    /// Whether `bytes` more of text fit the budget; records the error when they do not.
    fn fits(&mut self, bytes: usize) -> bool {
        if self.error.is_some() {
            return false;
        }
        if bytes > self.text_left {
            self.error = Some(ParseError::TooMuchText {
                limit: self.limits.max_text_bytes,
            });
            return false;
        }
        if self.blocks.len() >= self.limits.max_blocks {
            self.error = Some(ParseError::TooManyBlocks {
                limit: self.limits.max_blocks,
            });
            return false;
        }
        true
    }

    fn set_path(&mut self, path: Vec<(u8, String)>) {
        self.path = path;
        self.shared_path = self.path.iter().map(|(_, text)| text.clone()).collect();
    }

    /// A heading closes every open heading of the same or a deeper level.
    fn heading(&mut self, level: u8, text: &str) {
        let text = squash_whitespace(text);
        if text.is_empty() || !self.fits(text.len()) {
            return;
        }
        let mut path = std::mem::take(&mut self.path);
        while path.last().is_some_and(|(open, _)| *open >= level) {
            path.pop();
        }
        self.set_path(path);
        let entry = cut_chars(&text, MAX_HEADING_CHARS).to_string();
        self.text_left -= text.len();
        self.blocks.push(Block {
            kind: BlockKind::Heading(level),
            text,
            headings: Arc::clone(&self.shared_path),
            page: self.page,
        });
        let mut path = std::mem::take(&mut self.path);
        path.push((level, entry));
        self.set_path(path);
    }

    fn push(&mut self, kind: BlockKind, text: &str) {
        let text = if kind == BlockKind::Code {
            text.trim_matches('\n')
        } else {
            text.trim()
        };
        if text.trim().is_empty() || !self.fits(text.len()) {
            return;
        }
        self.text_left -= text.len();
        self.blocks.push(Block {
            kind,
            text: text.to_string(),
            headings: Arc::clone(&self.shared_path),
            page: self.page,
        });
    }

    fn first_heading(&self, level: u8) -> Option<String> {
        self.blocks
            .iter()
            .find(|block| block.kind == BlockKind::Heading(level))
            .map(|block| block.text.clone())
    }

    /// The document, or the budget that ran out.
    fn finish(self, title: Option<String>, pages: u32) -> Result<ParsedDocument, ParseError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(ParsedDocument {
                title,
                blocks: self.blocks,
                pages,
            }),
        }
    }
}

/// The first `max` characters of `text`.
pub(crate) fn cut_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_file_names() {
        assert_eq!(Format::from_file_name("notes.TXT"), Some(Format::Text));
        assert_eq!(Format::from_file_name("server.log"), Some(Format::Text));
        assert_eq!(
            Format::from_file_name("a.b.Markdown"),
            Some(Format::Markdown)
        );
        assert_eq!(Format::from_file_name("page.htm"), Some(Format::Html));
        assert_eq!(Format::from_file_name("Report.PDF"), Some(Format::Pdf));
        assert_eq!(Format::from_file_name("x.docx"), Some(Format::Docx));
        assert_eq!(Format::from_file_name("x.doc"), None);
        assert_eq!(Format::from_file_name("README"), None);
        assert_eq!(Format::from_file_name("archive.tar.gz"), None);
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::parse_str(format.as_str()), Some(format));
        }
        assert_eq!(Format::parse_str("exe"), None);
    }

    #[test]
    fn binary_detection() {
        assert_eq!(decode_text(b"hello\x00world"), Err(ParseError::NotText));
        assert_eq!(decode_text(&[0xC3, 0x28, b'a']), Err(ParseError::NotText));
        assert_eq!(
            decode_text("\x01\x02\x03\x04 abc".as_bytes()),
            Err(ParseError::NotText)
        );
        assert_eq!(
            decode_text("caf\u{e9}\tok\r\n".as_bytes()).as_deref(),
            Ok("caf\u{e9}\tok\r\n")
        );
    }

    #[test]
    fn utf16_with_bom_is_text() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "h\u{e9}llo".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode_text(&bytes).as_deref(), Ok("h\u{e9}llo"));
    }

    #[test]
    fn limit_messages_are_readable() {
        let message = ParseError::TooLarge {
            limit: 64 * 1024 * 1024,
        }
        .to_string();
        assert!(message.contains("64 MiB"), "{message}");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn headings_nest_and_close() {
        let mut sink = BlockSink::default();
        sink.heading(1, "A");
        sink.heading(2, "B");
        sink.push(BlockKind::Paragraph, "under b");
        sink.heading(2, "C");
        sink.push(BlockKind::Paragraph, "under c");
        sink.heading(1, "D");
        sink.push(BlockKind::Paragraph, "under d");
        let paths: Vec<_> = sink
            .blocks
            .iter()
            .map(|b| (b.text.as_str(), b.headings.join(" > ")))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("A", String::new()),
                ("B", "A".to_string()),
                ("under b", "A > B".to_string()),
                ("C", "A".to_string()),
                ("under c", "A > C".to_string()),
                ("D", String::new()),
                ("under d", "D".to_string()),
            ]
        );
    }

    #[test]
    fn blocks_under_one_path_share_it_and_long_headings_are_cut_in_it() {
        let mut sink = BlockSink::default();
        let long = "h".repeat(MAX_HEADING_CHARS * 3);
        sink.heading(1, &long);
        sink.push(BlockKind::Paragraph, "one");
        sink.push(BlockKind::Paragraph, "two");
        assert_eq!(
            sink.blocks[0].text.len(),
            long.len(),
            "the heading block is whole"
        );
        assert!(Arc::ptr_eq(
            &sink.blocks[1].headings,
            &sink.blocks[2].headings
        ));
        assert_eq!(
            sink.blocks[1].headings[0].chars().count(),
            MAX_HEADING_CHARS
        );
    }

    #[test]
    fn text_and_block_budgets_stop_the_sink() {
        let limits = ParseLimits {
            max_text_bytes: 10,
            ..ParseLimits::default()
        };
        let mut sink = BlockSink::new(&limits);
        sink.push(BlockKind::Paragraph, "12345");
        sink.push(BlockKind::Paragraph, "123456");
        assert!(sink.exhausted());
        sink.push(BlockKind::Paragraph, "1");
        assert_eq!(sink.blocks.len(), 1);
        assert_eq!(
            sink.finish(None, 1),
            Err(ParseError::TooMuchText { limit: 10 })
        );

        let limits = ParseLimits {
            max_blocks: 2,
            ..ParseLimits::default()
        };
        let mut sink = BlockSink::new(&limits);
        for text in ["a", "b", "c"] {
            sink.push(BlockKind::Paragraph, text);
        }
        assert_eq!(
            sink.finish(None, 1),
            Err(ParseError::TooManyBlocks { limit: 2 })
        );
    }
}
