//! The adversarial corpus: hostile files for every format (size, nesting, repetition and
//! compression bombs, and malformed files), each with the reason its parse must fail with.
//! Generated rather than stored, so the repository stays small while the bombs stay exact; the
//! parser tests, the upload tests (API and the real binary), the fuzz seeds and the memory
//! benchmark all read this one list. Sizes are chosen for [`limits`], small budgets that keep
//! the bombs a few MB; each bomb is far past a budget, not near it.

use std::io::{Cursor, Write};

use crate::parse::ParseLimits;

/// One hostile file.
#[derive(Debug, Clone)]
pub struct Bomb {
    /// A file name with the format's extension, saying what the bomb is.
    pub name: String,
    pub bytes: Vec<u8>,
    /// A piece of the reason the document must fail with.
    pub reason: &'static str,
}

/// The budgets the corpus is built for.
pub fn limits() -> ParseLimits {
    ParseLimits {
        max_unpacked_bytes: 16 * 1024 * 1024,
        max_pages: 500,
        max_text_bytes: 2 * 1024 * 1024,
        max_blocks: 20_000,
        max_depth: 256,
    }
}

const TEXT: &str = "of text (the limit)";
const BLOCKS: &str = "paragraphs, rows or records (the limit)";
const DEEP: &str = "levels deep (the limit)";
const UNPACKED: &str = "unpacks to more than";

/// Every bomb of the corpus.
pub fn bombs() -> Vec<Bomb> {
    let bomb = |name: &str, bytes: Vec<u8>, reason: &'static str| Bomb {
        name: name.to_string(),
        bytes,
        reason,
    };
    let big_text = "word ".repeat(600_000); // 3 MB, past the 2 MiB text budget
    let mut bombs = vec![
        // Plain text.
        bomb("size.txt", big_text.clone().into_bytes(), TEXT),
        bomb(
            "paragraphs.txt",
            "a\n\n".repeat(30_000).into_bytes(),
            BLOCKS,
        ),
        bomb("binary.txt", binary_junk(7), "not text"),
        bomb("blank.txt", b" \n\t\n ".to_vec(), "empty"),
        // Markdown.
        bomb(
            "size.md",
            format!("# Big\n\n{big_text}\n").into_bytes(),
            TEXT,
        ),
        bomb("items.md", "- a\n".repeat(30_000).into_bytes(), BLOCKS),
        bomb(
            // A 100 KB heading over 30,000 paragraphs: the path is shared, the blocks are not.
            "heading-path.md",
            format!("# {}\n\n{}", "h".repeat(100_000), "p\n\n".repeat(30_000)).into_bytes(),
            BLOCKS,
        ),
        bomb("binary.md", binary_junk(11), "not text"),
        // HTML.
        bomb(
            "nesting.html",
            format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000)).into_bytes(),
            DEEP,
        ),
        bomb(
            "unclosed.html",
            "<span><b><i>".repeat(40_000).into_bytes(),
            DEEP,
        ),
        bomb(
            // An end tag that cannot close past a `div` leaves both open.
            "misnested.html",
            "<span><div></span>".repeat(40_000).into_bytes(),
            DEEP,
        ),
        bomb("size.html", format!("<p>{big_text}</p>").into_bytes(), TEXT),
        bomb(
            "paragraphs.html",
            "<p>a</p>".repeat(30_000).into_bytes(),
            BLOCKS,
        ),
        // CSV.
        bomb("header.csv", header_bomb(), BLOCKS),
        bomb(
            "cell.csv",
            format!("a,b\n1,{big_text}\n").into_bytes(),
            TEXT,
        ),
        bomb(
            "ragged.csv",
            b"a,b,c\n1,2,3\n4,5\n".to_vec(),
            "expected 3 fields",
        ),
        // JSON.
        bomb(
            "nesting.json",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            DEEP,
        ),
        bomb("key-path.json", key_path_bomb(), TEXT),
        bomb(
            "records.json",
            format!("[{}1]", "1,".repeat(30_000)).into_bytes(),
            BLOCKS,
        ),
        bomb("truncated.json", br#"{"a": [1, 2"#.to_vec(), "invalid JSON"),
        // PDF.
        bomb("double-flate.pdf", double_flate_pdf(), UNPACKED),
        bomb(
            "pages.pdf",
            many_pages_pdf(600),
            "more than the limit of 500",
        ),
        bomb(
            "garbage.pdf",
            b"%PDF-1.7\n\x00\x01garbage".to_vec(),
            "damaged",
        ),
        // A page that is its own parent: text extraction would follow it forever (found by
        // the parse_pdf fuzz target).
        bomb("self-parent.pdf", self_parent_pdf(), "page tree loops"),
        bomb("not-a.pdf", b"hello".to_vec(), "not a PDF"),
        // DOCX.
        bomb("zip-bomb.docx", zip_bomb_docx(), UNPACKED),
        bomb("nesting.docx", nested_docx(), DEEP),
        bomb("paragraphs.docx", many_paragraphs_docx(30_000), BLOCKS),
        bomb("not-a-zip.docx", b"PK\x03\x04broken".to_vec(), "damaged"),
    ];
    bombs.sort_by(|a, b| a.name.cmp(&b.name));
    bombs
}

/// A file of every format that must read fine under [`limits`], proving the limits leave
/// ordinary documents alone.
pub fn ordinary() -> Bomb {
    Bomb {
        name: "ordinary.md".into(),
        bytes: b"# Lighthouse keeping\n\nThe lamp is lit at dusk and put out at dawn.\n".to_vec(),
        reason: "",
    }
}

/// Bytes no text file holds; `step` makes each file distinct (uploads deduplicate by content).
fn binary_junk(step: u32) -> Vec<u8> {
    (0..4096u32).map(|i| (i * step % 251) as u8).collect()
}

/// One 500 KB column name, then 250,000 rows: 125 GB if the name were copied into each row.
pub fn header_bomb() -> Vec<u8> {
    let mut csv = "n".repeat(500_000).into_bytes();
    csv.push(b'\n');
    csv.extend_from_slice("1\n".repeat(250_000).as_bytes());
    csv
}

/// A 100 KB key over 10,000 leaves: a gigabyte of `path: value` lines if paths were repeated
/// without a budget.
fn key_path_bomb() -> Vec<u8> {
    let leaves: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":1")).collect();
    format!("[{{\"{}\":{{{}}}}}]", "p".repeat(100_000), leaves.join(",")).into_bytes()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A one-page PDF whose content streams are compressed twice: a few KB that inflate to 384 MiB
/// (twice the ratio one layer allows; real bombs stack more layers and reach gigabytes).
fn double_flate_pdf() -> Vec<u8> {
    let spaces = vec![b' '; 24 * 1024 * 1024];
    let inner = zlib(&spaces);
    drop(spaces);
    let outer = zlib(&inner);
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, body: &[u8]| {
        offsets.push(pdf.len());
        let n = offsets.len();
        pdf.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    };
    let streams = 16;
    let first_stream = 4;
    let contents: Vec<String> = (0..streams)
        .map(|i| format!("{} 0 R", first_stream + i))
        .collect();
    object(&mut pdf, b"<< /Type /Catalog /Pages 2 0 R >>");
    object(&mut pdf, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    object(
        &mut pdf,
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents [{}] >>",
            contents.join(" ")
        )
        .as_bytes(),
    );
    for _ in 0..streams {
        let mut body = format!(
            "<< /Length {} /Filter [/FlateDecode /FlateDecode] >>\nstream\n",
            outer.len()
        )
        .into_bytes();
        body.extend_from_slice(&outer);
        body.extend_from_slice(b"\nendstream");
        object(&mut pdf, &body);
    }
    finish_pdf(pdf, &offsets)
}

/// A PDF of `pages` empty pages, with a correct cross-reference table.
fn many_pages_pdf(pages: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, body: &str| {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", offsets.len()).as_bytes());
    };
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", i + 3)).collect();
    object(&mut pdf, "<< /Type /Catalog /Pages 2 0 R >>");
    object(
        &mut pdf,
        &format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            kids.join(" ")
        ),
    );
    for _ in 0..pages {
        object(
            &mut pdf,
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        );
    }
    finish_pdf(pdf, &offsets)
}

/// One page whose `/Parent` is itself.
fn self_parent_pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    for body in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 3 0 R /MediaBox [0 0 595 842] >>",
    ] {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", offsets.len()).as_bytes());
    }
    finish_pdf(pdf, &offsets)
}

/// Appends the cross-reference table and trailer for objects 1.. at `offsets`.
fn finish_pdf(mut pdf: Vec<u8>, offsets: &[usize]) -> Vec<u8> {
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn docx(document_xml: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    // Writing to memory cannot fail but for sizes far beyond these.
    let _ = writer.start_file("word/document.xml", options);
    let _ = writer.write_all(document_xml);
    writer.finish().map(Cursor::into_inner).unwrap_or_default()
}

fn document_xml(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    )
}

/// 24 MiB of XML whitespace inside the body, deflated to ~24 KB.
fn zip_bomb_docx() -> Vec<u8> {
    let mut xml = document_xml("<w:p><w:r><w:t>x</w:t></w:r></w:p>").into_bytes();
    let tail = xml.split_off(xml.len() - "</w:body></w:document>".len());
    xml.resize(xml.len() + 24 * 1024 * 1024, b' ');
    xml.extend_from_slice(&tail);
    docx(&xml)
}

fn nested_docx() -> Vec<u8> {
    let body = format!(
        "{}<w:r><w:t>deep</w:t></w:r>{}",
        "<w:p>".repeat(50_000),
        "</w:p>".repeat(50_000)
    );
    docx(document_xml(&body).as_bytes())
}

fn many_paragraphs_docx(paragraphs: usize) -> Vec<u8> {
    docx(document_xml(&"<w:p><w:r><w:t>a</w:t></w:r></w:p>".repeat(paragraphs)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse, Format};

    #[test]
    fn every_bomb_fails_with_its_reason_and_ordinary_files_pass() {
        let limits = limits();
        for bomb in bombs() {
            let format = Format::from_file_name(&bomb.name).expect("known extension");
            match parse(format, &bomb.bytes, &limits) {
                Ok(doc) => panic!("{} parsed into {} blocks", bomb.name, doc.blocks.len()),
                Err(e) => assert!(
                    e.to_string().contains(bomb.reason),
                    "{}: {e} (wanted {:?})",
                    bomb.name,
                    bomb.reason
                ),
            }
        }
        let fine = ordinary();
        let doc = parse(Format::Markdown, &fine.bytes, &limits).expect("ordinary parses");
        assert_eq!(doc.title.as_deref(), Some("Lighthouse keeping"));
    }

    #[test]
    fn the_corpus_covers_every_format_with_three_bombs_or_more() {
        let bombs = bombs();
        for format in Format::ALL {
            let count = bombs
                .iter()
                .filter(|b| Format::from_file_name(&b.name) == Some(format))
                .count();
            assert!(count >= 3, "{format}: {count} bombs");
        }
    }
}
