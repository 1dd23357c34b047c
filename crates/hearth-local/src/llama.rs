//! The chat engine: one GGUF model in llama.cpp, served by a scheduler thread that batches every
//! running answer into one decode step (continuous batching: each answer is a sequence id of one
//! context, and a new answer's prompt is read in the same steps that extend the others).
//!
//! Callers tokenize and queue on their own thread ([`ChatEngine::start`]); the scheduler owns the
//! context and the samplers (llama.cpp's are not thread-safe). Dropping an answer's stream frees
//! its sequence at the next step.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hearth_llm::{
    ChatRequest, EventStream, FinishReason, LlmError, ResponseFormat, StreamEvent, ToolCall,
    ToolChoice, ToolSpec, Usage,
};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde_json::json;
use tokio::sync::mpsc;

use crate::catalog::ModelFile;
use crate::config::LocalConfig;
use crate::template::{ChatTemplate, Segment, CHATML, TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::LocalError;

/// llama.cpp's backend is process-wide and may be initialised once; every engine shares it.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor at load; route it to tracing (debug) instead of stderr.
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default().with_logs_enabled(false),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One loaded chat model and its scheduler.
pub struct ChatEngine {
    name: String,
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    jobs: std_mpsc::Sender<Job>,
    /// Answers accepted but not yet given a sequence.
    queued: Arc<AtomicUsize>,
    /// Sequences in use.
    active: Arc<AtomicUsize>,
    /// Answers that may wait beyond the free sequences.
    queue_limit: usize,
    parallel: usize,
    /// Tokens one answer's sequence can hold (prompt and answer).
    context_per_sequence: u32,
    /// Mean duration of recent answers in ms, for `Retry-After`.
    mean_answer_ms: Arc<AtomicU64>,
}

impl std::fmt::Debug for ChatEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEngine")
            .field("name", &self.name)
            .field("parallel", &self.parallel)
            .field("context_per_sequence", &self.context_per_sequence)
            .finish()
    }
}

/// An answer handed to the scheduler.
struct Job {
    prompt: Vec<LlamaToken>,
    params: Params,
    events: mpsc::UnboundedSender<Result<StreamEvent, LlmError>>,
    queued_at: Instant,
}

/// How to generate one answer.
#[derive(Clone, Debug)]
struct Params {
    temperature: f32,
    top_p: f32,
    top_k: i32,
    min_p: f32,
    repeat_penalty: f32,
    seed: u32,
    stop: Vec<String>,
    max_tokens: u32,
    /// Parse `<tool_call>` blocks out of the answer.
    tool_calls: bool,
    grammar: Option<Grammar>,
}

/// A GBNF grammar the answer must follow: from the start, or from the trigger word on.
#[derive(Clone, Debug)]
struct Grammar {
    text: String,
    trigger: Option<String>,
}

impl ChatEngine {
    /// Loads `file` (a chat model from the catalog) and starts its scheduler thread.
    pub fn load(file: &ModelFile, config: &LocalConfig) -> Result<Self, LocalError> {
        let path = &file.path;
        let fail = |reason: String| LocalError::Load {
            path: path.display().to_string(),
            reason,
        };
        // `file` comes from `catalog::inspect`, which read and checked the GGUF header: llama.cpp
        // itself only says "null result" for a bad file.
        let backend = backend().map_err(fail)?;
        let weights = crate::requantize::weights_for(file, config);
        let model = LlamaModel::load_from_file(backend, &weights, &LlamaModelParams::default())
            .map_err(|_| {
                fail(format!(
                    "llama.cpp cannot load it: architecture `{}` is not supported by this build, or its tensors do not match it",
                    file.architecture.as_deref().unwrap_or("?")
                ))
            })?;
        let model = Arc::new(model);
        let vocab = model.vocab();
        let piece = |t: LlamaToken| {
            String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
        };
        let template = ChatTemplate::new(
            file.chat_template.as_deref().unwrap_or(CHATML),
            piece(vocab.bos()),
            piece(vocab.eos()),
        )
        .map_err(fail)?;
        let trained = model.n_ctx_train().max(256);
        let context_per_sequence = config.context_per_sequence.min(trained);
        let parallel = config.parallel.max(1);
        let (jobs, rx) = std_mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let mean_answer_ms = Arc::new(AtomicU64::new(2_000));
        let scheduler = Scheduler {
            model: model.clone(),
            parallel,
            context_per_sequence,
            threads: config.threads(),
            batch: config.batch.max(parallel as u32),
            queued: queued.clone(),
            active: active.clone(),
            mean_answer_ms: mean_answer_ms.clone(),
        };
        // The context is created on the scheduler thread and never leaves it; an error there
        // comes back before `load` returns.
        let (ready_tx, ready_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name(format!("llama-{}", file.name))
            .spawn(move || scheduler.run(rx, ready_tx))
            .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| fail("its scheduler stopped while starting".into()))?
            .map_err(fail)?;
        Ok(Self {
            name: file.name.clone(),
            model,
            template,
            jobs,
            queued,
            active,
            queue_limit: config.queue,
            parallel,
            context_per_sequence,
            mean_answer_ms,
        })
    }

    /// The model's name (its file name without `.gguf`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tokens one answer can hold, prompt included.
    pub fn context_length(&self) -> u32 {
        self.context_per_sequence
    }

    /// Tokenizes `text` as llama.cpp does (`special`: parse control tokens).
    pub fn tokenize(&self, text: &str, special: bool) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, special)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The prompt for `request`: its messages through the model's template, tokenized.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<i32>, LlmError> {
        Ok(self.prompt(request)?.into_iter().map(|t| t.0).collect())
    }

    fn prompt(&self, request: &ChatRequest) -> Result<Vec<LlamaToken>, LlmError> {
        let tools: &[ToolSpec] = if matches!(request.tool_choice, Some(ToolChoice::None)) {
            &[]
        } else {
            &request.tools
        };
        let segments = self
            .template
            .render(&request.messages, tools)
            .map_err(|message| LlmError::Invalid {
                field: "messages".into(),
                message,
            })?;
        let vocab = self.model.vocab();
        let mut tokens = Vec::new();
        if vocab.should_add_bos() {
            tokens.push(vocab.bos());
        }
        for segment in &segments {
            let (text, special) = match segment {
                Segment::Template(t) => (t, true),
                Segment::Content(c) => (c, false),
            };
            vocab.tokenize_into(text.as_bytes(), &mut tokens, false, special);
        }
        // A template that writes the BOS itself must not get a second one.
        if tokens.len() > 1 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        Ok(tokens)
    }

    /// Queues `request`, refusing at once a full queue or a prompt that cannot fit.
    pub fn start(&self, request: ChatRequest) -> Result<EventStream, LlmError> {
        let prompt = self.prompt(&request)?;
        let limit = self.context_per_sequence as usize;
        if prompt.len() >= limit {
            return Err(LlmError::Invalid {
                field: "messages".into(),
                message: format!(
                    "the prompt is {} tokens; model `{}` holds {limit} tokens per answer (prompt and answer together). Shorten the conversation or raise local.context_per_sequence",
                    prompt.len(),
                    self.name
                ),
            });
        }
        let params = self.params(&request, limit - prompt.len())?;
        let queued = self.queued.fetch_add(1, Ordering::SeqCst);
        let free = self
            .parallel
            .saturating_sub(self.active.load(Ordering::SeqCst));
        if queued >= self.queue_limit + free {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            let waves = (queued / self.parallel + 1) as u64;
            let secs = (self.mean_answer_ms.load(Ordering::Relaxed) * waves).div_ceil(1000);
            return Err(LlmError::Busy {
                message: format!(
                    "model `{}` is busy: {} answers are running and {queued} are queued (local.queue); try again shortly",
                    self.name, self.parallel
                ),
                retry_after: Duration::from_secs(secs.clamp(1, 60)),
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let job = Job {
            prompt,
            params,
            events: tx,
            queued_at: Instant::now(),
        };
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(LlmError::Upstream(format!(
                "the engine of model `{}` has stopped",
                self.name
            )));
        }
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )))
    }

    fn params(&self, request: &ChatRequest, room: usize) -> Result<Params, LlmError> {
        let s = &request.sampling;
        let max_tokens = request
            .max_completion_tokens
            .or(request.max_tokens)
            .map_or(room, |m| (m as usize).min(room));
        let offer_tools =
            !request.tools.is_empty() && !matches!(request.tool_choice, Some(ToolChoice::None));
        let grammar = match (&request.response_format, offer_tools) {
            (Some(format), _) => {
                let schema = match format {
                    ResponseFormat::JsonObject => json!({"type": "object"}),
                    ResponseFormat::JsonSchema { schema, .. } => schema.clone(),
                };
                Some(Grammar {
                    text: schema_grammar(&schema, "response_format")?,
                    trigger: None,
                })
            }
            (None, true) => {
                let text = tool_call_grammar(&request.tools, request.tool_choice.as_ref())?;
                let forced = matches!(
                    request.tool_choice,
                    Some(ToolChoice::Required | ToolChoice::Tool(_))
                );
                Some(Grammar {
                    text,
                    trigger: (!forced).then(|| TOOL_CALL_OPEN.to_owned()),
                })
            }
            (None, false) => None,
        };
        let check = |field: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(LlmError::Invalid {
                    field: field.into(),
                    message: "is out of range".into(),
                })
            }
        };
        let temperature = request.temperature.unwrap_or(0.7);
        check("temperature", (0.0..=5.0).contains(&temperature))?;
        let top_p = s.top_p.unwrap_or(0.95);
        check("top_p", (0.0..=1.0).contains(&top_p))?;
        let min_p = s.min_p.unwrap_or(0.05);
        check("min_p", (0.0..=1.0).contains(&min_p))?;
        let repeat_penalty = s.repeat_penalty.unwrap_or(1.1);
        check(
            "repeat_penalty",
            (0.0..=10.0).contains(&repeat_penalty) && repeat_penalty > 0.0,
        )?;
        check(
            "stop",
            s.stop.len() <= 16 && s.stop.iter().all(|w| !w.is_empty() && w.len() <= 200),
        )?;
        Ok(Params {
            temperature,
            top_p,
            top_k: s.top_k.map_or(40, |k| k.min(i32::MAX as u32) as i32),
            min_p,
            repeat_penalty,
            // llama.cpp's seeds are 32-bit; without one, each answer gets its own.
            seed: s.seed.map_or_else(rand_seed, |v| (v ^ (v >> 32)) as u32),
            stop: s.stop.clone(),
            max_tokens: max_tokens as u32,
            tool_calls: offer_tools && request.response_format.is_none(),
            grammar,
        })
    }
}

fn rand_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ uuid::Uuid::now_v7().as_u128() as u32
}

/// A GBNF grammar for JSON valid against `schema`.
fn schema_grammar(schema: &serde_json::Value, field: &str) -> Result<String, LlmError> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| LlmError::Invalid {
        field: field.into(),
        message: format!("the JSON schema cannot be turned into a grammar: {e}"),
    })
}

/// The grammar of one Hermes-format tool call to one of `tools`:
/// `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`.
fn tool_call_grammar(tools: &[ToolSpec], choice: Option<&ToolChoice>) -> Result<String, LlmError> {
    let allowed: Vec<&ToolSpec> = match choice {
        Some(ToolChoice::Tool(name)) => {
            let t: Vec<_> = tools.iter().filter(|t| &t.name == name).collect();
            if t.is_empty() {
                return Err(LlmError::Invalid {
                    field: "tool_choice".into(),
                    message: format!("names `{name}`, which is not among the tools"),
                });
            }
            t
        }
        _ => tools.iter().collect(),
    };
    let variants: Vec<serde_json::Value> = allowed
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let schema = if variants.len() == 1 {
        variants[0].clone()
    } else {
        json!({"anyOf": variants})
    };
    let json_grammar = schema_grammar(&schema, "tools")?;
    let renamed = json_grammar
        .lines()
        .map(|l| match l.strip_prefix("root ::=") {
            Some(rest) => format!("tool-call-json ::={rest}"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(format!(
        "root ::= \"{TOOL_CALL_OPEN}\" \"\\n\"? tool-call-json \"\\n\"? \"{TOOL_CALL_CLOSE}\"\n{renamed}\n"
    ))
}

/// The scheduler's share of the engine.
struct Scheduler {
    model: Arc<LlamaModel>,
    parallel: usize,
    context_per_sequence: u32,
    threads: i32,
    batch: u32,
    queued: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    mean_answer_ms: Arc<AtomicU64>,
}

/// An answer being generated.
struct Slot {
    seq: i32,
    job: Job,
    sampler: LlamaSampler,
    /// Prompt tokens not read yet.
    pending: std::collections::VecDeque<LlamaToken>,
    /// Tokens in this sequence's cache.
    pos: i32,
    /// The last sampled token, to be read at the next step.
    next: Option<LlamaToken>,
    generated: u32,
    /// Where this slot's logits are in the current batch.
    logits_at: Option<i32>,
    output: Output,
}

impl Scheduler {
    fn run(self, jobs: std_mpsc::Receiver<Job>, ready: std_mpsc::Sender<Result<(), String>>) {
        let backend = match backend() {
            Ok(b) => b,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let total = self
            .context_per_sequence
            .saturating_mul(self.parallel as u32);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(total))
            .with_n_batch(self.batch)
            .with_n_ubatch(self.batch)
            .with_n_seq_max(self.parallel as u32)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = match self.model.new_context(backend, params) {
            Ok(ctx) => ctx,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot create a llama.cpp context: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut batch = LlamaBatch::new(self.batch as usize, 1);
        let mut slots: Vec<Slot> = Vec::with_capacity(self.parallel);
        // Free sequence ids, highest first, so an answer takes the lowest (see `step`).
        let mut free: Vec<i32> = (0..self.parallel as i32).rev().collect();
        loop {
            free.sort_unstable_by(|a, b| b.cmp(a));
            // Admit queued answers while sequences are free; wait only when nothing runs.
            while let Some(&seq) = free.last() {
                let job = if slots.is_empty() {
                    match jobs.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                } else {
                    match jobs.try_recv() {
                        Ok(job) => job,
                        Err(std_mpsc::TryRecvError::Empty) => break,
                        Err(std_mpsc::TryRecvError::Disconnected) => return,
                    }
                };
                // Counted as running before it stops counting as queued, so `start` never sees
                // more room than there is.
                self.active.fetch_add(1, Ordering::SeqCst);
                self.queued.fetch_sub(1, Ordering::SeqCst);
                if job.events.is_closed() {
                    self.active.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                match self.sampler(&job.params) {
                    Ok(sampler) => {
                        free.pop();
                        slots.push(Slot {
                            seq,
                            pending: job.prompt.iter().copied().collect(),
                            output: Output::new(&job.params),
                            job,
                            sampler,
                            pos: 0,
                            next: None,
                            generated: 0,
                            logits_at: None,
                        });
                    }
                    Err(e) => {
                        self.active.fetch_sub(1, Ordering::SeqCst);
                        let _ = job.events.send(Err(e));
                    }
                }
            }
            // Answers whose stream was dropped stop here.
            slots.retain(|s| {
                let keep = !s.job.events.is_closed();
                if !keep {
                    let _ = ctx.clear_kv_cache_seq(Some(s.seq as u32), None, None);
                    free.push(s.seq);
                    self.active.fetch_sub(1, Ordering::SeqCst);
                }
                keep
            });
            if slots.is_empty() {
                continue;
            }
            slots.sort_unstable_by_key(|s| s.seq);
            self.step(&mut ctx, &mut batch, &mut slots);
            // Finished answers give back their sequence.
            slots.retain(|s| {
                let done = s.output.done;
                if done {
                    let _ = ctx.clear_kv_cache_seq(Some(s.seq as u32), None, None);
                    free.push(s.seq);
                    self.active.fetch_sub(1, Ordering::SeqCst);
                    let ms = s.job.queued_at.elapsed().as_millis() as u64;
                    let mean = self.mean_answer_ms.load(Ordering::Relaxed);
                    self.mean_answer_ms
                        .store((mean * 7 + ms) / 8, Ordering::Relaxed);
                }
                !done
            });
        }
    }

    /// One decode: each generating answer's last token, then prompt tokens of new answers in
    /// the room left, then one sampled token for every answer whose logits were computed.
    /// `slots` come in order of sequence id: with a cache per sequence, llama.cpp computes
    /// together only the sequences whose ids follow each other in the batch (0, 1, 2…) and
    /// splits the step at every other place, so answers in another order, or with free ids
    /// between them, each cost a pass of their own (seen as half the 8-chat throughput).
    fn step(&self, ctx: &mut LlamaContext<'_>, batch: &mut LlamaBatch<'_>, slots: &mut [Slot]) {
        batch.clear();
        let capacity = self.batch as usize;
        let mut used = 0usize;
        for slot in slots.iter_mut() {
            slot.logits_at = None;
            if let Some(token) = slot.next.take() {
                if batch.add(token, slot.pos, &[slot.seq], true).is_ok() {
                    slot.logits_at = Some(used as i32);
                    slot.pos += 1;
                    used += 1;
                }
            }
        }
        for slot in slots.iter_mut() {
            while used < capacity {
                let Some(token) = slot.pending.pop_front() else {
                    break;
                };
                let last = slot.pending.is_empty();
                if batch.add(token, slot.pos, &[slot.seq], last).is_err() {
                    slot.pending.push_front(token);
                    break;
                }
                if last {
                    slot.logits_at = Some(used as i32);
                }
                slot.pos += 1;
                used += 1;
            }
        }
        if used == 0 {
            return;
        }
        if let Err(e) = ctx.decode(batch) {
            for slot in slots.iter_mut() {
                slot.output.fail(
                    &slot.job.events,
                    LlmError::Upstream(format!("llama.cpp could not decode: {e}")),
                );
            }
            return;
        }
        let vocab = self.model.vocab();
        for slot in slots.iter_mut() {
            let Some(at) = slot.logits_at else { continue };
            let token = slot.sampler.sample(ctx, at);
            slot.generated += 1;
            let prompt_tokens = slot.job.prompt.len() as u64;
            let usage = || Usage {
                input_tokens: prompt_tokens,
                output_tokens: u64::from(slot.generated),
            };
            if vocab.is_eog(token) {
                slot.output
                    .finish(&slot.job.events, FinishReason::Stop, usage());
                continue;
            }
            let piece = vocab.token_to_piece(token, false, None);
            slot.output.push(&slot.job.events, &piece);
            if slot.output.done {
                slot.output
                    .finish(&slot.job.events, FinishReason::Stop, usage());
                continue;
            }
            if slot.generated >= slot.job.params.max_tokens
                || slot.pos as u32 + 1 >= self.context_per_sequence
            {
                slot.output
                    .finish(&slot.job.events, FinishReason::Length, usage());
                continue;
            }
            slot.next = Some(token);
        }
    }

    fn sampler(&self, p: &Params) -> Result<LlamaSampler, LlmError> {
        let mut chain = Vec::new();
        if let Some(g) = &p.grammar {
            let grammar = match &g.trigger {
                None => LlamaSampler::grammar(&self.model, &g.text, "root"),
                Some(word) => {
                    LlamaSampler::grammar_lazy(&self.model, &g.text, "root", [word.as_bytes()], &[])
                }
            }
            .map_err(|e| LlmError::Invalid {
                field: "response_format".into(),
                message: format!("llama.cpp rejected the grammar: {e}"),
            })?;
            chain.push(grammar);
        }
        if (p.repeat_penalty - 1.0).abs() > f32::EPSILON {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
                64,
                p.repeat_penalty,
                0.0,
                0.0,
            ));
        }
        if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.push(LlamaSampler::top_k(p.top_k.max(1)));
            chain.push(LlamaSampler::top_p(p.top_p, 1));
            chain.push(LlamaSampler::min_p(p.min_p, 1));
            chain.push(LlamaSampler::temp(p.temperature));
            chain.push(LlamaSampler::dist(p.seed));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}

/// Turns sampled bytes into events: whole UTF-8 characters only, nothing past a stop sequence,
/// and `<tool_call>` blocks as tool calls instead of text.
struct Output {
    stop: Vec<String>,
    tool_calls: bool,
    bytes: Vec<u8>,
    /// Text decoded but not sent (it may begin a stop sequence or a tool call).
    held: String,
    /// Inside a `<tool_call>` block: its text so far.
    call: Option<String>,
    calls: usize,
    done: bool,
}

impl Output {
    fn new(p: &Params) -> Self {
        Self {
            stop: p.stop.clone(),
            tool_calls: p.tool_calls,
            bytes: Vec::new(),
            held: String::new(),
            call: None,
            calls: 0,
            done: false,
        }
    }

    fn send(events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>, text: &str) {
        if !text.is_empty() {
            let _ = events.send(Ok(StreamEvent::TextDelta(text.to_owned())));
        }
    }

    /// Adds a token's bytes; sets `done` when a stop sequence was reached.
    fn push(
        &mut self,
        events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>,
        piece: &[u8],
    ) {
        self.bytes.extend_from_slice(piece);
        let valid = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Not UTF-8 and never will be: replace it rather than stall.
            Err(_) => {
                let lossy = String::from_utf8_lossy(&self.bytes).into_owned();
                self.bytes.clear();
                self.held.push_str(&lossy);
                return self.flush(events);
            }
        };
        let text: Vec<u8> = self.bytes.drain(..valid).collect();
        self.held.push_str(&String::from_utf8_lossy(&text));
        self.flush(events);
    }

    fn flush(&mut self, events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>) {
        loop {
            if let Some(call) = &mut self.call {
                call.push_str(&std::mem::take(&mut self.held));
                let Some(end) = call.find(TOOL_CALL_CLOSE) else {
                    return;
                };
                let body = call[..end].to_owned();
                self.held = call[end + TOOL_CALL_CLOSE.len()..].trim_start().to_owned();
                self.call = None;
                self.emit_call(events, &body);
                continue;
            }
            if let Some(at) = self
                .stop
                .iter()
                .filter_map(|s| self.held.find(s.as_str()))
                .min()
            {
                Self::send(events, &self.held[..at]);
                self.held.clear();
                self.done = true;
                return;
            }
            if self.tool_calls {
                if let Some(at) = self.held.find(TOOL_CALL_OPEN) {
                    Self::send(events, self.held[..at].trim_end());
                    self.call = Some(String::new());
                    self.held = self.held[at + TOOL_CALL_OPEN.len()..].to_owned();
                    continue;
                }
            }
            // Keep back what could still grow into a stop sequence or a tool call.
            let mut keep = 0;
            let markers = self
                .stop
                .iter()
                .map(String::as_str)
                .chain(self.tool_calls.then_some(TOOL_CALL_OPEN));
            for marker in markers {
                for (i, _) in self.held.char_indices() {
                    if marker.starts_with(&self.held[i..]) {
                        keep = keep.max(self.held.len() - i);
                        break;
                    }
                }
            }
            let cut = self.held.len() - keep;
            Self::send(events, &self.held[..cut]);
            self.held.drain(..cut);
            return;
        }
    }

    fn emit_call(
        &mut self,
        events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>,
        body: &str,
    ) {
        let parsed: Option<(String, String)> =
            serde_json::from_str::<serde_json::Value>(body.trim())
                .ok()
                .and_then(|v| {
                    let name = v.get("name")?.as_str()?.to_owned();
                    let args = v.get("arguments").cloned().unwrap_or(json!({}));
                    Some((name, args.to_string()))
                });
        match parsed {
            Some((name, arguments)) => {
                let id = format!("call_{}", &uuid::Uuid::now_v7().simple().to_string()[8..32]);
                let _ = events.send(Ok(StreamEvent::ToolCallDelta {
                    index: self.calls,
                    id: Some(id.clone()),
                    name: Some(name.clone()),
                    arguments: arguments.clone(),
                }));
                let _ = events.send(Ok(StreamEvent::ToolCall(ToolCall {
                    id,
                    name,
                    arguments,
                })));
                self.calls += 1;
            }
            // Not a call after all: it is answer text.
            None => Self::send(events, &format!("{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}")),
        }
    }

    fn finish(
        &mut self,
        events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>,
        reason: FinishReason,
        usage: Usage,
    ) {
        if let Some(call) = self.call.take() {
            // Cut off inside a call: show what was written.
            Self::send(events, &format!("{TOOL_CALL_OPEN}{call}"));
        }
        let rest = std::mem::take(&mut self.held) + &String::from_utf8_lossy(&self.bytes);
        Self::send(events, &rest);
        let reason = if self.calls > 0 && reason == FinishReason::Stop {
            FinishReason::ToolCalls
        } else {
            reason
        };
        let _ = events.send(Ok(StreamEvent::Usage(usage)));
        let _ = events.send(Ok(StreamEvent::Finish(reason)));
        self.done = true;
    }

    fn fail(
        &mut self,
        events: &mpsc::UnboundedSender<Result<StreamEvent, LlmError>>,
        error: LlmError,
    ) {
        let _ = events.send(Err(error));
        self.done = true;
    }
}
