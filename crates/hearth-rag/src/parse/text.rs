//! Plain text: paragraphs separated by blank lines.

use super::{
    decode_text, paragraphs, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument,
};

pub(super) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let text = decode_text(bytes)?;
    let mut sink = BlockSink::new(limits);
    for paragraph in paragraphs(&text) {
        sink.push(BlockKind::Paragraph, &paragraph);
        if sink.exhausted() {
            break;
        }
    }
    sink.finish(None, 1)
}
