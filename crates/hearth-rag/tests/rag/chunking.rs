use hearth_rag::{approx_tokens, chunk, parse, ChunkSettings, Format, ParseLimits, ParsedDocument};
use proptest::prelude::*;

/// A markdown document of `sections` sections mixing prose, lists, a table and code.
fn markdown(sections: usize, sentences: usize) -> String {
    let mut md = String::from("# Manual\n\n");
    for s in 0..sections {
        md.push_str(&format!("## Section {s}\n\n"));
        let paragraph: Vec<String> = (0..sentences)
            .map(|i| format!("Section {s} sentence {i} explains one detail of the system."))
            .collect();
        md.push_str(&paragraph.join(" "));
        md.push_str("\n\n- a short item\n- another item with more words in it\n\n");
        md.push_str("| key | value |\n|---|---|\n");
        for r in 0..(s % 4) * 6 {
            md.push_str(&format!("| k{r} | value number {r} |\n"));
        }
        md.push_str("\n```sh\n");
        for l in 0..(s % 3) * 10 {
            md.push_str(&format!("echo line {l}\n"));
        }
        md.push_str("```\n\n");
    }
    md
}

fn parsed(sections: usize, sentences: usize) -> ParsedDocument {
    parse(
        Format::Markdown,
        markdown(sections, sentences).as_bytes(),
        &ParseLimits::default(),
    )
    .expect("markdown parses")
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Whitespace-normalised text without the table header rows that split tables repeat.
fn normalised(text: &str) -> String {
    text.lines()
        .filter(|line| line.trim() != "key | value")
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn bounds_hold_across_sizes() {
    let doc = parsed(12, 30);
    for max_tokens in [16, 17, 24, 40, 64, 100, 256, 512] {
        for overlap_tokens in [0, 1, max_tokens / 8, max_tokens / 2 - 1] {
            let settings = ChunkSettings {
                max_tokens,
                overlap_tokens,
            };
            settings.validate().expect("valid settings");
            for counter in [&approx_tokens as &dyn Fn(&str) -> usize, &words] {
                let chunks = chunk(&doc, &settings, counter);
                assert!(!chunks.is_empty());
                for (i, c) in chunks.iter().enumerate() {
                    assert_eq!(c.position as usize, i);
                    assert!(!c.text.trim().is_empty(), "empty chunk at {i}");
                    assert_eq!(c.tokens, counter(&c.indexed_text()));
                    assert!(
                        c.tokens <= max_tokens,
                        "max {max_tokens} overlap {overlap_tokens}: chunk {i} has {} tokens: {:?}",
                        c.tokens,
                        c.indexed_text()
                    );
                }
            }
        }
    }
}

#[test]
fn every_word_of_the_document_survives_chunking() {
    let doc = parsed(6, 25);
    let settings = ChunkSettings {
        max_tokens: 48,
        overlap_tokens: 0,
    };
    let chunks = chunk(&doc, &settings, &approx_tokens);
    assert!(
        chunks
            .iter()
            .filter(|c| c.text.starts_with("key | value"))
            .count()
            > 6,
        "big tables should have been split with their header repeated"
    );
    let chunked = normalised(
        &chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let original = normalised(
        &doc.blocks
            .iter()
            .filter(|b| !matches!(b.kind, hearth_rag::BlockKind::Heading(_)))
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert_eq!(chunked, original);
}

#[test]
fn default_settings_keep_small_sections_whole() {
    let doc = parsed(3, 3);
    let chunks = chunk(&doc, &ChunkSettings::default(), &approx_tokens);
    // One chunk per section: each is far below 256 tokens.
    assert_eq!(chunks.len(), 3);
    for (s, c) in chunks.iter().enumerate() {
        assert_eq!(
            c.headings,
            vec!["Manual".to_string(), format!("Section {s}")]
        );
        assert!(c
            .indexed_text()
            .starts_with(&format!("Manual > Section {s}\n")));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn chunks_never_exceed_the_limit(
        text in "([a-z]{1,12}[ .!?\n]{1,3}){0,400}",
        max_tokens in 16usize..200,
        overlap_ratio in 0usize..50,
    ) {
        let overlap_tokens = max_tokens * overlap_ratio / 100;
        let settings = ChunkSettings { max_tokens, overlap_tokens };
        prop_assume!(settings.validate().is_ok());
        if let Ok(doc) = parse(Format::Text, text.as_bytes(), &ParseLimits::default()) {
            let chunks = chunk(&doc, &settings, &approx_tokens);
            prop_assert!(!chunks.is_empty());
            for c in &chunks {
                prop_assert!(c.tokens <= max_tokens, "{} > {}: {:?}", c.tokens, max_tokens, c.text);
                prop_assert!(!c.text.trim().is_empty());
            }
        }
    }
}
