//! Splitting a [`ParsedDocument`] into token-bounded chunks for embedding and full-text search.
//!
//! The chunker follows the document's structure: blocks under one heading path (and on one page)
//! form a section, and a section's blocks are packed together until the next one would not fit.
//! A heading always starts a new chunk. Tables, code and records stay whole when they fit; one
//! that does not is cut on row or line boundaries (a table repeats its header row in every
//! part), and an oversized paragraph on sentence boundaries, then words, then characters. When a
//! section takes several chunks, each one after the first opens with a little trailing text of the
//! one before (whole sentences or lines where possible), so a fact cut at a boundary can still be
//! found.
//!
//! Every bound is checked with the caller's token counter on the final text, so it holds for
//! counters that do not add up exactly (real tokenizers, [`approx_tokens`]); the bound covers
//! [`Chunk::indexed_text`], which is what the embedder sees.

use unicode_segmentation::UnicodeSegmentation;

use crate::parse::{BlockKind, ParsedDocument};

/// How large chunks are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSettings {
    /// Most tokens in a chunk (heading line included).
    pub max_tokens: usize,
    /// Tokens of trailing text repeated at the start of the next chunk of the same section.
    pub overlap_tokens: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings {
            max_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

impl ChunkSettings {
    /// Check the settings, naming the configuration key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_tokens < 16 {
            return Err(format!(
                "knowledge.chunk_tokens must be at least 16 (it is {})",
                self.max_tokens
            ));
        }
        if self.overlap_tokens >= self.max_tokens / 2 {
            return Err(format!(
                "knowledge.chunk_overlap must be less than half of knowledge.chunk_tokens \
                 ({} / 2 = {}); it is {}",
                self.max_tokens,
                self.max_tokens / 2,
                self.overlap_tokens
            ));
        }
        Ok(())
    }
}

/// A piece of a document, ready to embed and index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// 0-based order in the document.
    pub position: u32,
    /// The content, without the heading line.
    pub text: String,
    /// The heading path the content sits under, outermost first (outer headings are dropped when
    /// the path alone would take more than a quarter of the chunk).
    pub headings: Vec<String>,
    /// 1-based page for paginated documents.
    pub page: Option<u32>,
    /// Tokens in [`Chunk::indexed_text`]; never above `max_tokens` except for a single word that
    /// is itself longer.
    pub tokens: usize,
}

impl Chunk {
    /// Text given to the embedder and full-text index: the heading path ("A > B") on a first
    /// line, then the text.
    pub fn indexed_text(&self) -> String {
        format!("{}{}", heading_line(&self.headings), self.text)
    }
}

/// A cheap token estimate for when the embedder has no tokenizer: the larger of 4/3 tokens per
/// word and one token per 4 characters, rounded up.
pub fn approx_tokens(text: &str) -> usize {
    let words = text.split_whitespace().count();
    let chars = text.chars().count();
    (words * 4).div_ceil(3).max(chars.div_ceil(4))
}

/// Split `document` into chunks of at most `settings.max_tokens` tokens as `count_tokens`
/// counts them.
pub fn chunk(
    document: &ParsedDocument,
    settings: &ChunkSettings,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let max = settings.max_tokens.max(1);
    let mut chunks = Vec::new();
    for section in sections(document) {
        let headings = fit_headings(&section.headings, max, count_tokens);
        let prefix = heading_line(&headings);
        let prefix_tokens = if prefix.is_empty() {
            0
        } else {
            count_tokens(&prefix)
        };
        let packer = Packer {
            count: count_tokens,
            prefix: &prefix,
            max,
            section_max: max.saturating_sub(prefix_tokens).max(1),
            overlap: settings.overlap_tokens,
        };
        for (text, tokens) in packer.pack(&section.blocks) {
            chunks.push(Chunk {
                position: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
                text,
                headings: headings.clone(),
                page: section.page,
                tokens,
            });
        }
    }
    chunks
}

fn heading_line(headings: &[String]) -> String {
    if headings.is_empty() {
        String::new()
    } else {
        format!("{}\n", headings.join(" > "))
    }
}

/// Blocks that share a heading path and page, with no heading between them.
struct Section<'a> {
    headings: std::sync::Arc<[String]>,
    page: Option<u32>,
    blocks: Vec<(BlockKind, &'a str)>,
}

fn sections(document: &ParsedDocument) -> Vec<Section<'_>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut after_heading = true;
    for (i, block) in document.blocks.iter().enumerate() {
        if let BlockKind::Heading(_) = block.kind {
            after_heading = true;
            // A heading lives on in the path of what follows it; one with nothing under it
            // would vanish, so it becomes text of its own.
            let has_content = document.blocks.get(i + 1).is_some_and(|next| {
                next.headings.len() > block.headings.len()
                    && next.headings.starts_with(&block.headings)
                    && next.headings[block.headings.len()]
                        == crate::parse::cut_chars(&block.text, crate::parse::MAX_HEADING_CHARS)
            });
            if !has_content {
                sections.push(Section {
                    headings: block.headings.clone(),
                    page: block.page,
                    blocks: vec![(BlockKind::Paragraph, block.text.as_str())],
                });
            }
            continue;
        }
        let continues = !after_heading
            && sections
                .last()
                .is_some_and(|s| s.headings == block.headings && s.page == block.page);
        if !continues {
            sections.push(Section {
                headings: block.headings.clone(),
                page: block.page,
                blocks: Vec::new(),
            });
        }
        after_heading = false;
        if let Some(section) = sections.last_mut() {
            section.blocks.push((block.kind, block.text.as_str()));
        }
    }
    sections
}

/// Drop outer headings (then cut the innermost) until the heading line takes at most a quarter
/// of a chunk, so the content always has room.
fn fit_headings(headings: &[String], max: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let budget = (max / 4).max(1);
    let mut kept = headings;
    while !kept.is_empty() && count(&kept.join(" > ")) > budget {
        if kept.len() == 1 {
            let cut = char_split(&kept[0], budget, count)
                .into_iter()
                .next()
                .unwrap_or_default();
            return vec![cut];
        }
        kept = &kept[1..];
    }
    kept.to_vec()
}

/// How a piece of text is cut and what trailing text it lends as overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Sentences, then words.
    Prose,
    /// Lines (table rows, code lines, record fields).
    Lines,
    /// A whole record: lent as overlap only whole.
    Record,
}

/// A unit the section packer places whole: a block, or one part of an oversized block.
#[derive(Debug)]
struct Piece {
    text: String,
    tokens: usize,
    shape: Shape,
    /// Joins this piece to the one before it: `"\n\n"` between blocks, `" "` or `"\n"` between
    /// parts of one block.
    separator: &'static str,
    /// Carries its own context (a repeated table header) and takes no overlap.
    self_contained: bool,
}

/// A sentence, word, line or character run, packed into pieces.
#[derive(Debug, Clone)]
struct Unit {
    text: String,
    tokens: usize,
    separator: &'static str,
}

struct Packer<'a> {
    count: &'a dyn Fn(&str) -> usize,
    /// The heading line every chunk of the section is indexed with.
    prefix: &'a str,
    max: usize,
    /// Tokens left for content once the heading line is paid for.
    section_max: usize,
    overlap: usize,
}

impl Packer<'_> {
    /// Tokens of the chunk as indexed (heading line and text), if within `max`.
    fn indexed_tokens(&self, text: &str) -> Option<usize> {
        let tokens = if self.prefix.is_empty() {
            (self.count)(text)
        } else {
            (self.count)(&format!("{}{text}", self.prefix))
        };
        (tokens <= self.max).then_some(tokens)
    }

    fn overlap_budget(&self) -> usize {
        self.overlap.min(self.section_max / 2)
    }

    fn pack(&self, blocks: &[(BlockKind, &str)]) -> Vec<(String, usize)> {
        let mut pieces = Vec::new();
        for &(kind, text) in blocks {
            self.add_block(kind, text, &mut pieces);
        }
        self.pack_pieces(&pieces)
    }

    fn add_block(&self, kind: BlockKind, text: &str, pieces: &mut Vec<Piece>) {
        let text = text.trim_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        let shape = match kind {
            BlockKind::Heading(_) | BlockKind::Paragraph | BlockKind::ListItem => Shape::Prose,
            BlockKind::Code | BlockKind::Table => Shape::Lines,
            BlockKind::Record => Shape::Record,
        };
        let tokens = (self.count)(text);
        if tokens <= self.section_max {
            pieces.push(Piece {
                text: text.to_string(),
                tokens,
                shape,
                separator: "\n\n",
                self_contained: false,
            });
            return;
        }
        // Parts leave room for the overlap that may precede them.
        let budget = self
            .section_max
            .saturating_sub(self.overlap_budget())
            .max(1);
        let (parts, shape, separator) = match kind {
            BlockKind::Table => (self.split_table(text, budget), Shape::Lines, "\n"),
            BlockKind::Code | BlockKind::Record => (
                self.split_units(line_units(text, budget, self.count), budget),
                Shape::Lines,
                "\n",
            ),
            BlockKind::Heading(_) | BlockKind::Paragraph | BlockKind::ListItem => (
                self.split_units(prose_units(text, budget, self.count), budget),
                Shape::Prose,
                " ",
            ),
        };
        for (i, (text, tokens, self_contained)) in parts.into_iter().enumerate() {
            pieces.push(Piece {
                text,
                tokens,
                shape,
                separator: if i == 0 { "\n\n" } else { separator },
                self_contained,
            });
        }
    }

    fn split_units(&self, units: Vec<Unit>, budget: usize) -> Vec<(String, usize, bool)> {
        pack_units(&units, budget, self.count)
            .into_iter()
            .map(|(text, tokens)| (text, tokens, false))
            .collect()
    }

    /// Rows packed under a repeated header row; plain line packing when the header is too big.
    fn split_table(&self, text: &str, budget: usize) -> Vec<(String, usize, bool)> {
        let plain = || self.split_units(line_units(text, budget, self.count), budget);
        let Some((header, rows)) = text.split_once('\n') else {
            return plain();
        };
        let header_tokens = (self.count)(header);
        if header_tokens * 2 > budget {
            return plain();
        }
        let rows_budget = budget - header_tokens - 1;
        let mut parts = Vec::new();
        for (i, (rows, _)) in pack_units(
            &line_units(rows, rows_budget, self.count),
            rows_budget,
            self.count,
        )
        .into_iter()
        .enumerate()
        {
            let text = format!("{header}\n{rows}");
            let tokens = (self.count)(&text);
            if tokens > budget {
                return plain();
            }
            parts.push((text, tokens, i > 0));
        }
        parts
    }

    /// Greedy packing of pieces into chunks, each after the first opening with overlap.
    fn pack_pieces(&self, pieces: &[Piece]) -> Vec<(String, usize)> {
        let mut chunks = Vec::new();
        let mut i = 0;
        let mut previous_last: Option<&Piece> = None;
        while i < pieces.len() {
            let start = i;
            let mut overlap = previous_last
                .filter(|_| !pieces[start].self_contained)
                .and_then(|piece| self.overlap_from(piece))
                .filter(|(_, tokens)| tokens + pieces[start].tokens <= self.section_max);
            let mut estimate = overlap.as_ref().map_or(0, |(_, tokens)| *tokens);
            estimate += pieces[i].tokens;
            i += 1;
            while i < pieces.len() && estimate + pieces[i].tokens <= self.section_max {
                estimate += pieces[i].tokens;
                i += 1;
            }
            // Estimates add token counts; the counter has the last word on the joined text.
            loop {
                let text = assemble(
                    overlap.as_ref().map(|(text, _)| text.as_str()),
                    &pieces[start..i],
                );
                if let Some(tokens) = self.indexed_tokens(&text) {
                    chunks.push((text, tokens));
                    break;
                }
                if i - start > 1 {
                    i -= 1;
                } else if overlap.is_some() {
                    overlap = None;
                } else {
                    chunks.extend(self.force_fit(&pieces[start].text));
                    break;
                }
            }
            previous_last = Some(&pieces[i - 1]);
        }
        chunks
    }

    /// Trailing text of `piece` worth at most the overlap budget, cut where its shape allows.
    fn overlap_from(&self, piece: &Piece) -> Option<(String, usize)> {
        let budget = self.overlap_budget();
        if budget == 0 {
            return None;
        }
        match piece.shape {
            Shape::Record => (piece.tokens <= budget).then(|| (piece.text.clone(), piece.tokens)),
            Shape::Lines => {
                let lines: Vec<&str> = piece.text.lines().collect();
                trailing(&lines, "\n", budget, self.count)
            }
            Shape::Prose => {
                let sentences = sentences(&piece.text);
                trailing(&sentences, " ", budget, self.count).or_else(|| {
                    let words: Vec<&str> = piece.text.split_whitespace().collect();
                    trailing(&words, " ", budget, self.count)
                })
            }
        }
    }

    /// Last resort for a piece that fits the content budget but not beside the heading line
    /// (counters that do not add up): cut it finer until every part fits.
    fn force_fit(&self, text: &str) -> Vec<(String, usize)> {
        let mut budget = self.section_max;
        loop {
            let parts = pack_units(&prose_units(text, budget, self.count), budget, self.count);
            let fitted: Option<Vec<(String, usize)>> = parts
                .iter()
                .map(|(part, _)| {
                    self.indexed_tokens(part)
                        .map(|tokens| (part.clone(), tokens))
                })
                .collect();
            match fitted {
                Some(fitted) => return fitted,
                None if budget > 1 => budget -= (budget / 8).max(1),
                None => {
                    // A single character over the limit: nothing smaller exists.
                    return parts
                        .into_iter()
                        .map(|(part, _)| {
                            let tokens = (self.count)(&format!("{}{part}", self.prefix));
                            (part, tokens)
                        })
                        .collect();
                }
            }
        }
    }
}

fn assemble(overlap: Option<&str>, pieces: &[Piece]) -> String {
    let mut text = String::new();
    if let Some(overlap) = overlap {
        text.push_str(overlap);
    }
    for piece in pieces {
        if !text.is_empty() {
            text.push_str(piece.separator);
        }
        text.push_str(&piece.text);
    }
    text
}

/// The longest run of trailing `parts`, joined by `separator`, within `budget` tokens.
fn trailing(
    parts: &[&str],
    separator: &str,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Option<(String, usize)> {
    let mut start = parts.len();
    let mut estimate = 0;
    while start > 0 {
        let tokens = count(parts[start - 1]);
        if estimate + tokens > budget {
            break;
        }
        estimate += tokens;
        start -= 1;
    }
    while start < parts.len() {
        let text = parts[start..].join(separator);
        let tokens = count(&text);
        if tokens <= budget && !text.trim().is_empty() {
            return Some((text, tokens));
        }
        start += 1;
    }
    None
}

/// Greedily join units into texts of at most `budget` tokens. A unit over the budget on its own
/// stays alone (callers cut units to the budget first).
fn pack_units(
    units: &[Unit],
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<(String, usize)> {
    let mut packed = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let start = i;
        let mut estimate = units[i].tokens;
        i += 1;
        while i < units.len() && estimate + units[i].tokens <= budget {
            estimate += units[i].tokens;
            i += 1;
        }
        loop {
            let mut text = units[start].text.clone();
            for unit in &units[start + 1..i] {
                text.push_str(unit.separator);
                text.push_str(&unit.text);
            }
            let text = text.trim_matches('\n').to_string();
            let tokens = count(&text);
            if tokens <= budget || i - start == 1 {
                if !text.trim().is_empty() {
                    packed.push((text, tokens));
                }
                break;
            }
            i -= 1;
        }
    }
    packed
}

/// Lines as units; a line over the budget is cut as prose.
fn line_units(text: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<Unit> {
    let mut units = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        let tokens = count(line);
        if tokens <= budget {
            units.push(Unit {
                text: line.to_string(),
                tokens,
                separator: "\n",
            });
        } else {
            let mut parts = prose_units(line, budget, count);
            if let Some(first) = parts.first_mut() {
                first.separator = "\n";
            }
            units.extend(parts);
        }
    }
    units
}

/// Sentences as units; a sentence over the budget becomes words, a word over it characters.
fn prose_units(text: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<Unit> {
    let mut units = Vec::new();
    for sentence in sentences(text) {
        let tokens = count(sentence);
        if tokens <= budget {
            units.push(Unit {
                text: sentence.to_string(),
                tokens,
                separator: " ",
            });
            continue;
        }
        for word in sentence.split_whitespace() {
            let tokens = count(word);
            if tokens <= budget {
                units.push(Unit {
                    text: word.to_string(),
                    tokens,
                    separator: " ",
                });
                continue;
            }
            for (i, part) in char_split(word, budget, count).into_iter().enumerate() {
                let tokens = count(&part);
                units.push(Unit {
                    text: part,
                    tokens,
                    separator: if i == 0 { " " } else { "" },
                });
            }
        }
    }
    units
}

fn sentences(text: &str) -> Vec<&str> {
    text.split_sentence_bounds()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Cut a word into runs of characters of at most `budget` tokens (at least one character each),
/// finding each cut by galloping then bisecting so long runs cost few counts.
fn char_split(word: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    // Byte offsets of every character boundary after the first character.
    let ends: Vec<usize> = word
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain(std::iter::once(word.len()))
        .collect();
    let mut parts = Vec::new();
    let mut begin = 0; // index into `ends` of the run's first character
    let mut from = 0; // byte offset where the run starts
    while begin < ends.len() {
        let fits = |chars: usize| count(&word[from..ends[begin + chars - 1]]) <= budget;
        let available = ends.len() - begin;
        // Largest known-good and smallest known-bad run lengths.
        let mut good = 1;
        let mut bad = None;
        let mut step = 1;
        while good < available {
            let probe = (good + step).min(available);
            if fits(probe) {
                good = probe;
                step *= 2;
            } else {
                bad = Some(probe);
                break;
            }
        }
        if let Some(mut bad) = bad {
            while bad - good > 1 {
                let middle = good + (bad - good) / 2;
                if fits(middle) {
                    good = middle;
                } else {
                    bad = middle;
                }
            }
        }
        let to = ends[begin + good - 1];
        parts.push(word[from..to].to_string());
        from = to;
        begin += good;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Block;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn block(kind: BlockKind, text: &str, headings: &[&str]) -> Block {
        Block {
            kind,
            text: text.to_string(),
            headings: headings.iter().map(|h| h.to_string()).collect(),
            page: None,
        }
    }

    fn document(blocks: Vec<Block>) -> ParsedDocument {
        ParsedDocument {
            title: None,
            blocks,
            pages: 1,
        }
    }

    #[test]
    fn validation_names_the_keys() {
        assert_eq!(ChunkSettings::default().validate(), Ok(()));
        let error = ChunkSettings {
            max_tokens: 8,
            overlap_tokens: 0,
        }
        .validate()
        .expect_err("too small");
        assert!(error.contains("knowledge.chunk_tokens"), "{error}");
        let error = ChunkSettings {
            max_tokens: 100,
            overlap_tokens: 50,
        }
        .validate()
        .expect_err("overlap too big");
        assert!(error.contains("knowledge.chunk_overlap"), "{error}");
        assert!(ChunkSettings {
            max_tokens: 100,
            overlap_tokens: 49,
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn approx_tokens_takes_the_larger_estimate() {
        assert_eq!(approx_tokens(""), 0);
        assert_eq!(approx_tokens("one two three"), 4);
        assert_eq!(approx_tokens("a"), 2);
        assert_eq!(approx_tokens(&"x".repeat(40)), 10);
    }

    #[test]
    fn headings_start_new_chunks_and_prefix_indexed_text() {
        let doc = document(vec![
            block(BlockKind::Heading(1), "Guide", &[]),
            block(BlockKind::Paragraph, "Intro.", &["Guide"]),
            block(BlockKind::Heading(2), "Install", &["Guide"]),
            block(BlockKind::Paragraph, "Run it.", &["Guide", "Install"]),
            block(BlockKind::Paragraph, "Then stop.", &["Guide", "Install"]),
            block(BlockKind::Heading(2), "Use", &["Guide"]),
            block(BlockKind::Paragraph, "Ask.", &["Guide", "Use"]),
        ]);
        let chunks = chunk(&doc, &ChunkSettings::default(), &approx_tokens);
        let seen: Vec<_> = chunks
            .iter()
            .map(|c| (c.position, c.text.as_str(), c.headings.join(" > ")))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, "Intro.", "Guide".to_string()),
                (1, "Run it.\n\nThen stop.", "Guide > Install".to_string()),
                (2, "Ask.", "Guide > Use".to_string()),
            ]
        );
        assert_eq!(
            chunks[1].indexed_text(),
            "Guide > Install\nRun it.\n\nThen stop."
        );
        assert_eq!(chunks[1].tokens, approx_tokens(&chunks[1].indexed_text()));
    }

    #[test]
    fn same_named_headings_still_split() {
        let doc = document(vec![
            block(BlockKind::Heading(2), "Notes", &[]),
            block(BlockKind::Paragraph, "first", &["Notes"]),
            block(BlockKind::Heading(2), "Notes", &[]),
            block(BlockKind::Paragraph, "second", &["Notes"]),
        ]);
        let chunks = chunk(&doc, &ChunkSettings::default(), &words);
        assert_eq!(chunks.len(), 2);
    }

    #[test]
    fn empty_headings_are_kept_as_text() {
        let doc = document(vec![
            block(BlockKind::Heading(1), "Appendix", &[]),
            block(BlockKind::Heading(1), "Body", &[]),
            block(BlockKind::Paragraph, "text", &["Body"]),
        ]);
        let chunks = chunk(&doc, &ChunkSettings::default(), &words);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["Appendix", "text"]);
    }

    #[test]
    fn pages_do_not_share_chunks() {
        let mut first = block(BlockKind::Paragraph, "page one", &[]);
        first.page = Some(1);
        let mut second = block(BlockKind::Paragraph, "page two", &[]);
        second.page = Some(2);
        let chunks = chunk(
            &document(vec![first, second]),
            &ChunkSettings::default(),
            &words,
        );
        let pages: Vec<_> = chunks.iter().map(|c| (c.text.as_str(), c.page)).collect();
        assert_eq!(pages, vec![("page one", Some(1)), ("page two", Some(2))]);
    }

    #[test]
    fn long_paragraph_splits_on_sentences_with_overlap() {
        let sentences: Vec<String> = (0..40)
            .map(|i| format!("Sentence number {i} says a thing."))
            .collect();
        let doc = document(vec![block(BlockKind::Paragraph, &sentences.join(" "), &[])]);
        let settings = ChunkSettings {
            max_tokens: 30,
            overlap_tokens: 8,
        };
        let chunks = chunk(&doc, &settings, &words);
        assert!(chunks.len() > 3);
        for chunk in &chunks {
            assert!(chunk.tokens <= 30, "{chunk:?}");
            assert!(
                chunk.text.ends_with('.'),
                "cut mid-sentence: {:?}",
                chunk.text
            );
        }
        for pair in chunks.windows(2) {
            let last_sentence = sentences
                .iter()
                .rev()
                .find(|s| pair[0].text.ends_with(s.as_str()))
                .expect("chunk ends with a sentence");
            assert!(
                pair[1].text.starts_with(last_sentence.as_str()),
                "no overlap between {:?} and {:?}",
                pair[0].text,
                pair[1].text
            );
        }
    }

    #[test]
    fn no_overlap_when_zero() {
        let text = (0..30)
            .map(|i| format!("Word{i} here."))
            .collect::<Vec<_>>()
            .join(" ");
        let doc = document(vec![block(BlockKind::Paragraph, &text, &[])]);
        let settings = ChunkSettings {
            max_tokens: 16,
            overlap_tokens: 0,
        };
        let chunks = chunk(&doc, &settings, &words);
        let rejoined = chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(rejoined, text);
    }

    #[test]
    fn table_that_fits_stays_whole_and_big_one_repeats_its_header() {
        let small = "Name | Age\nAnn | 31\nBo | 40";
        let rows: Vec<String> = (0..60).map(|i| format!("row{i} | value {i}")).collect();
        let big = format!("Key | Value\n{}", rows.join("\n"));
        let doc = document(vec![
            block(BlockKind::Paragraph, &"filler ".repeat(20), &[]),
            block(BlockKind::Table, small, &[]),
            block(BlockKind::Heading(1), "Big", &[]),
            block(BlockKind::Table, &big, &["Big"]),
        ]);
        let settings = ChunkSettings {
            max_tokens: 24,
            overlap_tokens: 4,
        };
        let chunks = chunk(&doc, &settings, &words);
        assert!(
            chunks.iter().any(|c| c.text.ends_with(small)),
            "{chunks:#?}"
        );
        let big_chunks: Vec<_> = chunks.iter().filter(|c| c.headings == ["Big"]).collect();
        assert!(big_chunks.len() > 3);
        let mut seen_rows = Vec::new();
        for chunk in &big_chunks {
            assert!(chunk.tokens <= 24);
            let mut lines = chunk.text.lines();
            assert_eq!(lines.next(), Some("Key | Value"), "{chunk:?}");
            seen_rows.extend(lines.map(str::to_string));
        }
        assert_eq!(seen_rows, rows, "rows lost, duplicated or cut");
    }

    #[test]
    fn code_that_fits_is_not_split_and_big_code_splits_on_lines() {
        let code = "```rust\nfn main() {\n    println!(\"hi\");\n}\n```";
        let lines: Vec<String> = (0..50).map(|i| format!("let x{i} = {i};")).collect();
        let big = format!("```\n{}\n```", lines.join("\n"));
        let doc = document(vec![
            block(BlockKind::Paragraph, &"prose ".repeat(14), &[]),
            block(BlockKind::Code, code, &[]),
            block(BlockKind::Code, &big, &[]),
        ]);
        let settings = ChunkSettings {
            max_tokens: 20,
            overlap_tokens: 0,
        };
        let chunks = chunk(&doc, &settings, &words);
        assert!(chunks.iter().any(|c| c.text == code), "{chunks:#?}");
        for chunk in &chunks {
            assert!(chunk.tokens <= 20);
            for line in chunk.text.lines() {
                assert!(
                    line.starts_with("let ") || line.starts_with("```") || !line.contains("let"),
                    "line cut: {line:?}"
                );
            }
        }
    }

    #[test]
    fn records_are_never_cut_when_they_fit() {
        let blocks: Vec<Block> = (0..30)
            .map(|i| block(BlockKind::Record, &format!("id: {i}\nname: item {i}"), &[]))
            .collect();
        let settings = ChunkSettings {
            max_tokens: 16,
            overlap_tokens: 4,
        };
        let chunks = chunk(&document(blocks), &settings, &words);
        for chunk in &chunks {
            assert!(chunk.tokens <= 16);
            for record in chunk.text.split("\n\n") {
                assert!(
                    record.starts_with("id: ") && record.contains("\nname: item "),
                    "record cut: {record:?}"
                );
            }
        }
    }

    #[test]
    fn a_giant_word_is_cut_by_characters() {
        let word = "x".repeat(1000);
        let doc = document(vec![block(BlockKind::Paragraph, &word, &[])]);
        let chunks = chunk(&doc, &ChunkSettings::default(), &approx_tokens);
        assert!(chunks.iter().all(|c| c.tokens <= 256));
        let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        // Overlap is lent as whole words only, so nothing is repeated for a single word.
        assert_eq!(joined.len(), 1000, "{chunks:?}");
    }

    #[test]
    fn long_heading_paths_are_trimmed_to_leave_room() {
        let long = "heading ".repeat(40);
        let doc = document(vec![block(
            BlockKind::Paragraph,
            "content",
            &["Outer", long.trim(), "Inner"],
        )]);
        let settings = ChunkSettings {
            max_tokens: 32,
            overlap_tokens: 0,
        };
        let chunks = chunk(&doc, &settings, &words);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].headings, vec!["Inner".to_string()]);
        assert!(chunks[0].tokens <= 32);
    }

    #[test]
    fn char_split_respects_budget_and_loses_nothing() {
        let word = "abcdefghij".repeat(37);
        for budget in [1, 2, 3, 7, 50] {
            let parts = char_split(&word, budget, &approx_tokens);
            assert_eq!(parts.concat(), word);
            assert!(parts
                .iter()
                .all(|p| approx_tokens(p) <= budget.max(1) || p.chars().count() == 1));
        }
    }
}
