//! Running `hearth_rag::extract` on an uploaded file where a hostile file cannot end the server:
//! by default in a child process of the server's own binary (`hearth parse-worker`) that limits
//! its own address space and CPU time (see `hearth_rag::isolate`), with a wall-clock deadline
//! here. A child that dies is a failed document with a reason naming the limit, never a dead
//! server. `in_process` runs it on the blocking pool instead (for embedders of the library
//! without the binary, and tests); the parsers' budgets still hold there, but a crash inside a
//! parser crate would take the process with it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hearth_rag::isolate::{self, Request, Response};
use hearth_rag::{ChunkSettings, Extracted, Format, ParseLimits};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// See [`super::KnowledgeSettings::parser`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParserMode {
    /// A child process per document, under memory and CPU limits.
    #[default]
    Process,
    /// On the server's blocking threads.
    InProcess,
}

/// How documents are read: where, and within which limits.
#[derive(Clone, Debug)]
pub(super) struct Parser {
    pub mode: ParserMode,
    /// The program run as `PROGRAM parse-worker` in process mode.
    pub program: PathBuf,
    pub limits: ParseLimits,
    pub chunking: ChunkSettings,
    pub memory_bytes: u64,
    pub cpu_secs: u64,
}

/// Most bytes of stderr kept from a child that failed (the allocator's last words).
const STDERR_KEPT: u64 = 4096;

impl Parser {
    /// Reads `bytes` as `format` into chunks; `Err` is the reason shown to the user.
    pub async fn extract(&self, format: Format, bytes: Vec<u8>) -> Result<Extracted, String> {
        match self.mode {
            ParserMode::InProcess => {
                let (limits, chunking) = (self.limits.clone(), self.chunking.clone());
                tokio::task::spawn_blocking(move || {
                    hearth_rag::extract(format, &bytes, &limits, &chunking)
                })
                .await
                .map_err(|_| "the file could not be read (its parser failed)".to_string())?
                .map_err(|e| e.to_string())
            }
            ParserMode::Process => self.in_child(format, bytes).await,
        }
    }

    async fn in_child(&self, format: Format, bytes: Vec<u8>) -> Result<Extracted, String> {
        let request = Request {
            format: format.as_str().into(),
            limits: self.limits.clone(),
            chunk_tokens: self.chunking.max_tokens,
            chunk_overlap: self.chunking.overlap_tokens,
            memory_bytes: self.memory_bytes,
            cpu_secs: self.cpu_secs,
            len: bytes.len() as u64,
        };
        let input = isolate::request_bytes(&request, &bytes);
        drop(bytes);
        let mut child = tokio::process::Command::new(&self.program)
            .arg("parse-worker")
            // The child needs nothing of the server's environment (database URL, secrets).
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                tracing::error!(program = %self.program.display(), error = %e, "could not start the parser process");
                "the parser process could not be started; see the server log".to_string()
            })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the parser process could not be started; see the server log".into());
        };
        // The answer is at most the text budget a few times over (chunk overlap, headings, JSON
        // escapes); a child writing more is broken and is cut off.
        let answer_cap = (self.limits.max_text_bytes as u64).saturating_mul(4) + (1 << 20);
        let write = async move {
            // A child that died early closes its stdin: its exit status says why.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let read = async move {
            let mut answer = Vec::new();
            let _ = stdout.take(answer_cap).read_to_end(&mut answer).await;
            answer
        };
        let read_err = async move {
            let mut text = Vec::new();
            let _ = stderr.take(STDERR_KEPT).read_to_end(&mut text).await;
            text
        };
        // The CPU limit stops a spinning child; this also stops one that sleeps or blocks.
        let deadline = Duration::from_secs(self.cpu_secs.saturating_mul(2).saturating_add(10));
        let run = async {
            let ((), answer, errors) = tokio::join!(write, read, read_err);
            let status = child.wait().await;
            (answer, errors, status)
        };
        let (answer, errors, status) = match tokio::time::timeout(deadline, run).await {
            Ok(done) => done,
            Err(_) => {
                return Err(format!(
                    "reading the file took longer than {} s (the limit)",
                    deadline.as_secs()
                ))
            }
        };
        let status = status.map_err(|e| format!("the parser process was lost ({e})"))?;
        if status.success() {
            return match serde_json::from_slice::<Response>(&answer) {
                Ok(Response::Extracted(extracted)) => Ok(extracted),
                Ok(Response::Failed(error)) => Err(error.to_string()),
                Err(e) => {
                    tracing::error!(error = %e, "the parser process answered something unreadable");
                    Err("the parser's answer could not be read; see the server log".into())
                }
            };
        }
        let errors = String::from_utf8_lossy(&errors);
        tracing::warn!(status = %status, stderr = %errors.trim(), "a document stopped its parser process");
        Err(self.death_reason(status, &errors))
    }

    /// Why a child ended badly, in the user's terms.
    fn death_reason(&self, status: std::process::ExitStatus, stderr: &str) -> String {
        use std::os::unix::process::ExitStatusExt as _;
        const SIGKILL: i32 = 9;
        const SIGXCPU: i32 = 24;
        let memory_mib = self.memory_bytes / (1024 * 1024);
        if stderr.contains("memory allocation") || stderr.contains("out of memory") {
            return format!(
                "reading the file needed more than {memory_mib} MiB of memory (the limit, \
                 knowledge.parser_memory_mib); the file crashed the parser"
            );
        }
        match status.signal() {
            Some(SIGXCPU) | Some(SIGKILL) => format!(
                "reading the file used more than {} s of CPU (the limit, knowledge.parser_cpu_secs)",
                self.cpu_secs
            ),
            Some(signal) => format!("the file crashed the parser (signal {signal})"),
            None => format!(
                "the file crashed the parser (exit status {})",
                status.code().unwrap_or(-1)
            ),
        }
    }
}
