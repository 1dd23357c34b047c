//! Markdown (CommonMark with GitHub tables) through `pulldown-cmark`.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::{squash_whitespace, BlockKind, BlockSink, ParseError, ParseLimits, ParsedDocument};

pub(super) fn parse(text: &str, limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut walker = Walker {
        sink: BlockSink::new(limits),
        ..Walker::default()
    };
    for event in Parser::new_ext(text, options) {
        walker.event(event);
        if walker.sink.exhausted() {
            break;
        }
    }
    walker.flush_paragraph();
    let title = walker
        .front_matter_title
        .clone()
        .or_else(|| walker.sink.first_heading(1));
    walker.sink.finish(title, 1)
}

#[derive(Debug, Default)]
struct Walker {
    sink: BlockSink,
    /// Inline text of the paragraph being read (outside lists and tables).
    paragraph: String,
    heading: Option<(u8, String)>,
    /// Open list items, innermost last.
    items: Vec<Item>,
    /// Open lists: the next number for ordered ones.
    lists: Vec<Option<u64>>,
    code: Option<String>,
    table: Option<Table>,
    metadata: Option<String>,
    front_matter_title: Option<String>,
}

#[derive(Debug)]
struct Item {
    marker: String,
    text: String,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: Option<String>,
}

impl Walker {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text)
            | Event::Code(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => self.append(&text),
            Event::SoftBreak => self.append(" "),
            Event::HardBreak => self.append("\n"),
            Event::TaskListMarker(done) => self.append(if done { "[x] " } else { "[ ] " }),
            // Raw HTML, footnote markers and rules carry no prose worth indexing.
            Event::Html(_) | Event::InlineHtml(_) | Event::FootnoteReference(_) | Event::Rule => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush_paragraph();
                self.flush_item_text();
                self.heading = Some((heading_level(level), String::new()));
            }
            Tag::Paragraph => {
                if let Some(item) = self.items.last_mut() {
                    if !item.text.is_empty() {
                        item.text.push('\n');
                    }
                }
            }
            Tag::List(start) => {
                self.flush_paragraph();
                self.flush_item_text();
                self.lists.push(start);
            }
            Tag::Item => {
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        let marker = format!("{number}. ");
                        *number += 1;
                        marker
                    }
                    _ => "- ".to_string(),
                };
                self.items.push(Item {
                    marker,
                    text: String::new(),
                });
            }
            Tag::CodeBlock(kind) => {
                self.flush_paragraph();
                self.flush_item_text();
                let fence = match kind {
                    CodeBlockKind::Fenced(lang) => format!("```{}\n", lang.trim()),
                    CodeBlockKind::Indented => "```\n".to_string(),
                };
                self.code = Some(fence);
            }
            Tag::Table(_) => {
                self.flush_paragraph();
                self.flush_item_text();
                self.table = Some(Table::default());
            }
            Tag::TableCell => {
                if let Some(table) = &mut self.table {
                    table.cell = Some(String::new());
                }
            }
            Tag::MetadataBlock(_) => self.metadata = Some(String::new()),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                if let Some((level, text)) = self.heading.take() {
                    self.sink.heading(level, &text);
                }
            }
            TagEnd::Paragraph if self.items.is_empty() && self.table.is_none() => {
                self.flush_paragraph();
            }
            TagEnd::Item => {
                if let Some(item) = self.items.pop() {
                    if !item.text.trim().is_empty() {
                        let text = format!("{}{}", item.marker, item.text.trim());
                        self.sink.push(BlockKind::ListItem, &text);
                    }
                }
            }
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::CodeBlock => {
                if let Some(mut code) = self.code.take() {
                    if !code.ends_with('\n') {
                        code.push('\n');
                    }
                    code.push_str("```");
                    if code.lines().count() > 2 {
                        self.sink.push(BlockKind::Code, &code);
                    }
                }
            }
            TagEnd::TableCell => {
                if let Some(table) = &mut self.table {
                    if let Some(cell) = table.cell.take() {
                        table.row.push(squash_whitespace(&cell));
                    }
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(table) = &mut self.table {
                    let row = std::mem::take(&mut table.row);
                    if row.iter().any(|cell| !cell.is_empty()) {
                        table.rows.push(row);
                    }
                }
            }
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    let text = table
                        .rows
                        .iter()
                        .map(|row| row.join(" | "))
                        .collect::<Vec<_>>()
                        .join("\n");
                    self.sink.push(BlockKind::Table, &text);
                }
            }
            TagEnd::MetadataBlock(_) => {
                if let Some(metadata) = self.metadata.take() {
                    self.front_matter_title = front_matter_title(&metadata);
                }
            }
            _ => {}
        }
    }

    /// Route inline text to the innermost open container.
    fn append(&mut self, text: &str) {
        if let Some(code) = &mut self.code {
            code.push_str(text);
        } else if let Some(metadata) = &mut self.metadata {
            metadata.push_str(text);
        } else if let Some(table) = &mut self.table {
            if let Some(cell) = &mut table.cell {
                cell.push_str(text);
            }
        } else if let Some((_, heading)) = &mut self.heading {
            heading.push_str(text);
        } else if let Some(item) = self.items.last_mut() {
            item.text.push_str(text);
        } else {
            self.paragraph.push_str(text);
        }
    }

    fn flush_paragraph(&mut self) {
        let paragraph = std::mem::take(&mut self.paragraph);
        self.sink.push(BlockKind::Paragraph, &paragraph);
    }

    /// An item's own text is emitted before a nested list, code block or table inside it, so
    /// blocks stay in reading order.
    fn flush_item_text(&mut self) {
        if let Some(item) = self.items.last_mut() {
            let text = std::mem::take(&mut item.text);
            if !text.trim().is_empty() {
                let text = format!("{}{}", item.marker, text.trim());
                self.sink.push(BlockKind::ListItem, &text);
            }
        }
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// `title: ...` in YAML front matter; quotes stripped.
fn front_matter_title(metadata: &str) -> Option<String> {
    metadata.lines().find_map(|line| {
        let value = line.strip_prefix("title:")?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'').trim();
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Block;

    fn parse(text: &str) -> ParsedDocument {
        super::parse(text, &ParseLimits::default()).expect("parses")
    }

    fn kinds(blocks: &[Block]) -> Vec<(BlockKind, &str, String)> {
        blocks
            .iter()
            .map(|b| (b.kind, b.text.as_str(), b.headings.join(" > ")))
            .collect()
    }

    #[test]
    fn structure_kinds_and_heading_paths() {
        let source = "\
# Guide

Intro text
over two lines.

## Install

- first *step*
- second step
  1. nested one
  2. nested two

```bash
cargo run
```

| Name | Value |
|------|-------|
| a    | 1     |
| b    | 2     |

## Use

    indented code

Done.
";
        let doc = parse(source);
        assert_eq!(doc.title.as_deref(), Some("Guide"));
        assert_eq!(doc.pages, 1);
        assert_eq!(
            kinds(&doc.blocks),
            vec![
                (BlockKind::Heading(1), "Guide", String::new()),
                (
                    BlockKind::Paragraph,
                    "Intro text over two lines.",
                    "Guide".into()
                ),
                (BlockKind::Heading(2), "Install", "Guide".into()),
                (
                    BlockKind::ListItem,
                    "- first step",
                    "Guide > Install".into()
                ),
                (
                    BlockKind::ListItem,
                    "- second step",
                    "Guide > Install".into()
                ),
                (
                    BlockKind::ListItem,
                    "1. nested one",
                    "Guide > Install".into()
                ),
                (
                    BlockKind::ListItem,
                    "2. nested two",
                    "Guide > Install".into()
                ),
                (
                    BlockKind::Code,
                    "```bash\ncargo run\n```",
                    "Guide > Install".into()
                ),
                (
                    BlockKind::Table,
                    "Name | Value\na | 1\nb | 2",
                    "Guide > Install".into()
                ),
                (BlockKind::Heading(2), "Use", "Guide".into()),
                (
                    BlockKind::Code,
                    "```\nindented code\n```",
                    "Guide > Use".into()
                ),
                (BlockKind::Paragraph, "Done.", "Guide > Use".into()),
            ]
        );
    }

    #[test]
    fn front_matter_title_wins_and_is_not_text() {
        let doc = parse("---\ntitle: \"Handbook\"\nauthor: x\n---\n\n# Chapter\n\nBody.\n");
        assert_eq!(doc.title.as_deref(), Some("Handbook"));
        assert!(doc.blocks.iter().all(|b| !b.text.contains("author")));
    }

    #[test]
    fn no_h1_means_no_title() {
        let doc = parse("## Only a section\n\ntext\n");
        assert_eq!(doc.title, None);
    }

    #[test]
    fn code_keeps_indentation_verbatim() {
        let doc = parse("```python\ndef f():\n    return 1\n```\n");
        assert_eq!(doc.blocks.len(), 1);
        assert_eq!(doc.blocks[0].text, "```python\ndef f():\n    return 1\n```");
    }
}
