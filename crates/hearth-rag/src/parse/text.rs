//! Plain text: paragraphs separated by blank lines.

use super::{decode_text, paragraphs, BlockKind, BlockSink, ParseError, ParsedDocument};

pub(super) fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    let text = decode_text(bytes)?;
    let mut sink = BlockSink::default();
    for paragraph in paragraphs(&text) {
        sink.push(BlockKind::Paragraph, &paragraph);
    }
    Ok(ParsedDocument {
        title: None,
        blocks: sink.blocks,
        pages: 1,
    })
}
