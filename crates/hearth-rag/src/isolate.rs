//! Reading one file into chunks, and the child-process side of doing it in isolation.
//!
//! [`extract`] is the whole job: parse, then chunk. A hostile file must not be able to end the
//! server, and budgets alone cannot promise that (a parser crate may still overflow its stack,
//! allocate past any sane size, or spin), so the server runs [`extract`] in a child process of
//! its own binary (`hearth parse-worker`) under an address-space and CPU limit the child sets
//! on itself before it reads the file ([`serve_child`]). The parent writes one [`Request`]
//! line, then the file's bytes, to the child's stdin, and reads one JSON [`Response`] from its
//! stdout. A child that dies or is killed tells the parent nothing, and the parent turns its
//! exit status into the document's failure reason.

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::{Chunk, ChunkSettings, Format, ParseError, ParseLimits};

/// A file read into chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// Pages of the document (1 for formats without pages).
    pub pages: u32,
    pub chunks: Vec<Chunk>,
}

/// Parses `bytes` as `format` and chunks the result with the approximate token counter.
pub fn extract(
    format: Format,
    bytes: &[u8],
    limits: &ParseLimits,
    chunking: &ChunkSettings,
) -> Result<Extracted, ParseError> {
    let document = crate::parse(format, bytes, limits)?;
    let chunks = crate::chunk(&document, chunking, &crate::approx_tokens);
    Ok(Extracted {
        pages: document.pages,
        chunks,
    })
}

/// What the parent asks of a child: the first line on its stdin, followed by `len` bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// [`Format::as_str`].
    pub format: String,
    pub limits: ParseLimits,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    /// Address-space limit the child sets on itself, in bytes.
    pub memory_bytes: u64,
    /// CPU-time limit the child sets on itself, in seconds.
    pub cpu_secs: u64,
    /// Length of the file that follows the line.
    pub len: u64,
}

/// The child's answer, one JSON document on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Extracted(Extracted),
    Failed(ParseError),
}

/// Longest request line a child reads (a request is a few hundred bytes).
const MAX_REQUEST_LINE: u64 = 64 * 1024;

/// The child's side: set the limits, read the request and the file, write the response.
/// Returns a message when the protocol itself failed (the parent reports the exit status).
pub fn serve_child(input: impl Read, mut output: impl Write) -> Result<(), String> {
    let mut input = std::io::BufReader::new(input);
    let mut line = String::new();
    (&mut input)
        .take(MAX_REQUEST_LINE)
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    let request: Request =
        serde_json::from_str(&line).map_err(|e| format!("the request is not valid: {e}"))?;
    limit_self(request.memory_bytes, request.cpu_secs)?;
    let format = Format::parse_str(&request.format)
        .ok_or_else(|| format!("unknown format `{}`", request.format))?;
    let mut bytes = Vec::new();
    input
        .take(request.len)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the file: {e}"))?;
    let chunking = ChunkSettings {
        max_tokens: request.chunk_tokens,
        overlap_tokens: request.chunk_overlap,
    };
    let response = match extract(format, &bytes, &request.limits, &chunking) {
        Ok(extracted) => Response::Extracted(extracted),
        Err(error) => Response::Failed(error),
    };
    drop(bytes);
    serde_json::to_writer(&mut output, &response).map_err(|e| format!("writing: {e}"))?;
    output.flush().map_err(|e| format!("writing: {e}"))
}

/// Sets this process's address-space and CPU-time limits (soft and hard, so they cannot be
/// raised again), and no core dumps (a crash would otherwise write the document to disk).
fn limit_self(memory_bytes: u64, cpu_secs: u64) -> Result<(), String> {
    rlimit::setrlimit(rlimit::Resource::CORE, 0, 0)
        .map_err(|e| format!("turning core dumps off: {e}"))?;
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)
        .map_err(|e| format!("setting the memory limit: {e}"))?;
    // The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
    rlimit::setrlimit(rlimit::Resource::CPU, cpu_secs, cpu_secs.saturating_add(1))
        .map_err(|e| format!("setting the CPU limit: {e}"))
}

/// The request line and the file, as the parent writes them.
pub fn request_bytes(request: &Request, file: &[u8]) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(request).unwrap_or_default();
    bytes.push(b'\n');
    bytes.extend_from_slice(file);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(format: Format, len: usize) -> Request {
        Request {
            format: format.as_str().into(),
            limits: ParseLimits::default(),
            chunk_tokens: 200,
            chunk_overlap: 32,
            // The test process's own hard limits: setting them again changes nothing.
            memory_bytes: rlimit::getrlimit(rlimit::Resource::AS).expect("limit").1,
            cpu_secs: rlimit::getrlimit(rlimit::Resource::CPU).expect("limit").1,
            len: len as u64,
        }
    }

    #[test]
    fn a_child_answers_with_chunks_or_the_parse_error() {
        let file = b"# Title\n\nSome text under it.\n";
        let mut out = Vec::new();
        serve_child(
            &request_bytes(&request(Format::Markdown, file.len()), file)[..],
            &mut out,
        )
        .expect("served");
        match serde_json::from_slice::<Response>(&out).expect("json") {
            Response::Extracted(extracted) => {
                assert_eq!(extracted.chunks.len(), 1);
                assert_eq!(extracted.chunks[0].headings, vec!["Title".to_string()]);
            }
            Response::Failed(e) => panic!("unexpected failure: {e}"),
        }

        let deep = "<div>".repeat(10_000);
        let mut out = Vec::new();
        serve_child(
            &request_bytes(&request(Format::Html, deep.len()), deep.as_bytes())[..],
            &mut out,
        )
        .expect("served");
        assert!(matches!(
            serde_json::from_slice::<Response>(&out).expect("json"),
            Response::Failed(ParseError::TooDeep { limit: 256 })
        ));
    }

    #[test]
    fn a_bad_request_line_is_reported() {
        let error = serve_child(&b"not json\n"[..], Vec::new()).expect_err("refused");
        assert!(error.contains("not valid"), "{error}");
    }
}
