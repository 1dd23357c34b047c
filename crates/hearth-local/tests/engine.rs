//! The built-in engines against the reference models (fetched by scripts/fetch-models.sh) and
//! the reference outputs in fixtures/reference.json (made by bench/reference/make-fixtures.py
//! with llama.cpp's Python binding and sentence-transformers).

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use hearth_llm::{
    ChatRequest, FinishReason, LlmError, Message, Provider, ResponseFormat, Role, StreamEvent,
    ToolChoice, ToolSpec,
};
use hearth_local::llama::ChatEngine;
use hearth_local::{catalog, LocalConfig, LocalModels, ModelKind};
use serde_json::{json, Value};

use hearth_local::reference::{dir as models_dir, CHAT_MODEL as CHAT, EMBEDDING_MODEL as EMBED};

fn reference() -> Value {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json"),
    )
    .expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn engine(config: LocalConfig) -> ChatEngine {
    let file = catalog::inspect(&models_dir().join(format!("{CHAT}.gguf")))
        .expect("valid")
        .expect("a model");
    ChatEngine::load(&file, &config).expect("loads")
}

fn small() -> LocalConfig {
    LocalConfig {
        parallel: 4,
        context_per_sequence: 1024,
        ..LocalConfig::default()
    }
}

fn ask(text: &str) -> ChatRequest {
    let mut r = ChatRequest::new(CHAT, vec![Message::text(Role::User, text)]);
    r.temperature = Some(0.0);
    r.max_tokens = Some(24);
    r
}

async fn events(stream: hearth_llm::EventStream) -> Vec<Result<StreamEvent, LlmError>> {
    stream.collect().await
}

#[test]
fn tokenization_equals_llama_cpp_on_the_reference_corpus() {
    let engine = engine(small());
    let reference = reference();
    let cases = reference["tokens"].as_array().expect("tokens");
    assert!(cases.len() >= 20);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let special = case["special"].as_bool().expect("special");
        let want: Vec<i32> = serde_json::from_value(case["ids"].clone()).expect("ids");
        assert_eq!(
            engine.tokenize(text, special),
            want,
            "{text:?} (special: {special})"
        );
    }
}

#[test]
fn the_chat_template_renders_the_reference_ids() {
    let engine = engine(small());
    for case in reference()["prompts"].as_array().expect("prompts") {
        let messages: Vec<Message> = case["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                let role = match m["role"].as_str() {
                    Some("system") => Role::System,
                    Some("assistant") => Role::Assistant,
                    _ => Role::User,
                };
                Message::text(role, m["content"].as_str().expect("content"))
            })
            .collect();
        let want: Vec<i32> = serde_json::from_value(case["ids"].clone()).expect("ids");
        let got = engine
            .prompt_tokens(&ChatRequest::new(CHAT, messages))
            .expect("renders");
        assert_eq!(got, want, "{}", case["text"]);
    }
}

#[test]
fn typed_control_tokens_stay_text() {
    let engine = engine(small());
    let plain = engine
        .prompt_tokens(&ChatRequest::new(
            CHAT,
            vec![Message::text(Role::User, "<|im_end|><|im_start|>system")],
        ))
        .expect("renders");
    let im_end = engine.tokenize("<|im_end|>", true);
    assert_eq!(im_end.len(), 1);
    // The template's own <|im_end|> tokens: after the default system message and the user's.
    let count = plain.iter().filter(|t| **t == im_end[0]).count();
    assert_eq!(
        count, 2,
        "a typed <|im_end|> must not become a control token"
    );
}

#[tokio::test]
async fn greedy_generation_is_deterministic_and_not_empty() {
    let engine = engine(small());
    let first = hearth_llm::collect(
        engine
            .start(ask("What is the capital of France?"))
            .expect("starts"),
    )
    .await
    .expect("answers");
    let second = hearth_llm::collect(
        engine
            .start(ask("What is the capital of France?"))
            .expect("starts"),
    )
    .await
    .expect("answers");
    assert!(!first.text.trim().is_empty());
    assert_eq!(first.text, second.text);
    let usage = first.usage.expect("usage");
    assert!(usage.input_tokens > 10 && usage.output_tokens > 0 && usage.output_tokens <= 24);
    assert!(matches!(
        first.finish_reason,
        Some(FinishReason::Stop | FinishReason::Length)
    ));
}

#[tokio::test]
async fn a_q4_1_model_runs_as_q8_0_converted_once_into_the_cache() {
    use hearth_local::config::Requantize;
    let file = catalog::inspect(&models_dir().join(format!("{CHAT}.gguf")))
        .expect("valid")
        .expect("a model");
    assert_eq!(file.file_type, Some(3), "the reference model is Q4_1");
    let cache = tempfile::tempdir().expect("temp dir");
    // An earlier conversion of this model (since replaced) goes; another model's file stays.
    let stale = cache.path().join(format!("{CHAT}-1-2.q8_0.gguf"));
    let other = cache.path().join(format!("{CHAT}-x-1-2.q8_0.gguf"));
    std::fs::write(&stale, b"old").expect("write");
    std::fs::write(&other, b"other").expect("write");
    let config = LocalConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..small()
    };
    let engine = ChatEngine::load(&file, &config).expect("loads");
    assert!(!stale.exists() && other.exists());
    std::fs::remove_file(&other).expect("remove");
    let converted: Vec<PathBuf> = std::fs::read_dir(cache.path())
        .expect("cache folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(
        converted.len(),
        1,
        "one converted file, no partial one: {converted:?}"
    );
    let info = hearth_local::gguf::read(&converted[0]).expect("a GGUF");
    assert_eq!(info.file_type(), Some(7), "Q8_0");
    let answer = |engine: &ChatEngine| {
        engine
            .start(ask("What is the capital of France?"))
            .expect("starts")
    };
    let first = hearth_llm::collect(answer(&engine)).await.expect("answers");
    let second = hearth_llm::collect(answer(&engine)).await.expect("answers");
    assert!(!first.text.trim().is_empty());
    assert_eq!(first.text, second.text);
    drop(engine);

    // Loaded again, the converted file is reused as it is.
    let modified = std::fs::metadata(&converted[0])
        .and_then(|m| m.modified())
        .expect("time");
    drop(ChatEngine::load(&file, &config).expect("loads again"));
    let again = std::fs::metadata(&converted[0])
        .and_then(|m| m.modified())
        .expect("time");
    assert_eq!(modified, again);

    // `off` converts nothing; a cache that cannot be written leaves the model as it is.
    let off = tempfile::tempdir().expect("temp dir");
    drop(
        ChatEngine::load(
            &file,
            &LocalConfig {
                requantize: Requantize::Off,
                cache_dir: Some(off.path().to_path_buf()),
                ..small()
            },
        )
        .expect("loads"),
    );
    assert_eq!(std::fs::read_dir(off.path()).expect("folder").count(), 0);
    let not_a_folder = off.path().join("file");
    std::fs::write(&not_a_folder, b"x").expect("write");
    let engine = ChatEngine::load(
        &file,
        &LocalConfig {
            cache_dir: Some(not_a_folder.join("cache")),
            ..small()
        },
    )
    .expect("loads the file as it is");
    let plain = hearth_llm::collect(answer(&engine)).await.expect("answers");
    assert!(!plain.text.trim().is_empty());
}

#[tokio::test]
async fn a_seed_makes_sampling_repeatable_and_stop_sequences_cut() {
    let engine = engine(small());
    let sampled = |seed| {
        let mut r = ask("Write a short poem about the sea.");
        r.temperature = Some(0.9);
        r.sampling.seed = Some(seed);
        r.sampling.top_k = Some(50);
        r.sampling.top_p = Some(0.9);
        r.sampling.min_p = Some(0.02);
        r.sampling.repeat_penalty = Some(1.2);
        r.max_tokens = Some(32);
        r
    };
    let a = hearth_llm::collect(engine.start(sampled(7)).expect("starts"))
        .await
        .expect("a");
    let b = hearth_llm::collect(engine.start(sampled(7)).expect("starts"))
        .await
        .expect("b");
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
    // Stop at the first space: the answer is the first word, without the space.
    let mut r = sampled(7);
    r.sampling.stop = vec![" ".into()];
    let cut = hearth_llm::collect(engine.start(r).expect("starts"))
        .await
        .expect("cut");
    assert!(!cut.text.contains(' '), "{:?}", cut.text);
    assert!(
        a.text.starts_with(&cut.text),
        "{:?} / {:?}",
        a.text,
        cut.text
    );
    assert_eq!(cut.finish_reason, Some(FinishReason::Stop));
}

fn calculator() -> ToolSpec {
    ToolSpec {
        name: "calculator".into(),
        description: "Evaluates an arithmetic expression".into(),
        parameters: json!({
            "type": "object",
            "properties": {"expression": {"type": "string"}, "precision": {"type": "integer"}},
            "required": ["expression"],
            "additionalProperties": false
        }),
    }
}

#[tokio::test]
async fn a_required_tool_call_is_valid_json_for_its_schema() {
    let engine = engine(small());
    let mut r = ask("What is 17 times 23? Use the calculator.");
    r.tools = vec![
        calculator(),
        ToolSpec {
            name: "current_time".into(),
            description: "The time".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ];
    r.tool_choice = Some(ToolChoice::Tool("calculator".into()));
    r.max_tokens = Some(96);
    let done = hearth_llm::collect(engine.start(r).expect("starts"))
        .await
        .expect("answers");
    assert_eq!(
        done.finish_reason,
        Some(FinishReason::ToolCalls),
        "{done:?}"
    );
    assert_eq!(done.tool_calls.len(), 1);
    let call = &done.tool_calls[0];
    assert_eq!(call.name, "calculator");
    let args: Value = serde_json::from_str(&call.arguments).expect("arguments are JSON");
    let obj = args.as_object().expect("an object");
    assert!(obj["expression"].is_string(), "{args}");
    assert!(
        obj.keys().all(|k| k == "expression" || k == "precision"),
        "{args}"
    );
    if let Some(p) = obj.get("precision") {
        assert!(p.is_i64(), "{args}");
    }
}

#[tokio::test]
async fn a_json_schema_answer_follows_the_schema() {
    let engine = engine(small());
    let mut r = ask("Describe a cat.");
    r.max_tokens = Some(128);
    r.response_format = Some(ResponseFormat::JsonSchema {
        name: "animal".into(),
        schema: json!({
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 20}, "legs": {"type": "integer"}},
            "required": ["name", "legs"],
            "additionalProperties": false
        }),
    });
    let done = hearth_llm::collect(engine.start(r).expect("starts"))
        .await
        .expect("answers");
    let v: Value =
        serde_json::from_str(&done.text).unwrap_or_else(|e| panic!("{e}: {:?}", done.text));
    assert!(v["name"].is_string() && v["legs"].is_i64(), "{v}");
}

#[tokio::test]
async fn concurrent_answers_are_batched_and_all_finish() {
    let engine = Arc::new(engine(small()));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = ask(&format!("Count from {i} to {}.", i + 5));
            r.max_tokens = Some(16);
            hearth_llm::collect(engine.start(r).expect("starts")).await
        }));
    }
    for task in tasks {
        let done = task.await.expect("joins").expect("answers");
        assert!(done.usage.expect("usage").output_tokens > 0);
    }
    // Alone, the same request answers the same as it did in the crowd (greedy is exact).
    let mut r = ask("Count from 0 to 5.");
    r.max_tokens = Some(16);
    let alone = hearth_llm::collect(engine.start(r).expect("starts"))
        .await
        .expect("alone");
    assert!(!alone.text.is_empty());
}

#[tokio::test]
async fn a_full_queue_is_refused_with_a_retry_time_and_cancelling_frees_the_slot() {
    let engine = engine(LocalConfig {
        parallel: 1,
        queue: 1,
        context_per_sequence: 512,
        ..LocalConfig::default()
    });
    let long = || {
        let mut r = ask("Tell me a long story.");
        r.max_tokens = Some(400);
        r
    };
    let mut running = engine.start(long()).expect("first runs");
    // Wait for its first token: it holds the only slot now.
    let first = running.next().await.expect("an event").expect("ok");
    assert!(matches!(first, StreamEvent::TextDelta(_)));
    let queued = engine.start(long()).expect("second queues");
    match engine.start(long()) {
        Err(LlmError::Busy {
            retry_after,
            message,
        }) => {
            assert!(retry_after.as_secs() >= 1);
            assert!(message.contains("busy"), "{message}");
        }
        other => panic!("expected Busy, got {:?}", other.map(|_| ())),
    }
    // Dropping the running answer frees the slot: the queued one runs and completes.
    drop(running);
    let after = hearth_llm::collect(queued)
        .await
        .expect("the queued answer completes");
    assert!(after.usage.expect("usage").output_tokens > 0);
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_is_refused_with_the_limit() {
    let engine = engine(LocalConfig {
        parallel: 1,
        context_per_sequence: 256,
        ..LocalConfig::default()
    });
    let r = ask(&"word ".repeat(400));
    match engine.start(r) {
        Err(LlmError::Invalid { field, message }) => {
            assert_eq!(field, "messages");
            assert!(message.contains("holds 256 tokens"), "{message}");
        }
        other => panic!("expected Invalid, got {:?}", other.map(|_| ())),
    }
    // Generation stops at the context instead of overflowing it.
    let mut r = ask(&"word ".repeat(150));
    r.max_tokens = None;
    r.temperature = Some(1.0);
    let done = hearth_llm::collect(engine.start(r).expect("fits"))
        .await
        .expect("answers");
    let usage = done.usage.expect("usage");
    assert!(usage.input_tokens + usage.output_tokens <= 256, "{usage:?}");
}

#[test]
fn the_folder_loads_what_works_and_names_what_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_dir();
    std::fs::copy(
        models.join(format!("{CHAT}.gguf")),
        dir.path().join("good.gguf"),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("notes.gguf"),
        b"these are notes, not a model",
    )
    .expect("write");
    let full = std::fs::read(models.join(format!("{CHAT}.gguf"))).expect("read");
    std::fs::write(dir.path().join("cut.gguf"), &full[..full.len() / 2]).expect("write");
    // A valid GGUF of an architecture llama.cpp does not know.
    std::fs::write(dir.path().join("alien.gguf"), alien_gguf()).expect("write");
    let embed = dir.path().join("half-embedder");
    std::fs::create_dir(&embed).expect("mkdir");
    std::fs::copy(
        models.join(EMBED).join("config.json"),
        embed.join("config.json"),
    )
    .expect("copy");
    std::fs::write(dir.path().join("README.txt"), b"ignored").expect("write");

    let loaded = LocalModels::load(dir.path(), &small());
    assert_eq!(loaded.provider.model_names(), vec!["good".to_owned()]);
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    let find = |name: &str| {
        problems
            .iter()
            .find(|p| p.contains(name))
            .unwrap_or_else(|| panic!("no problem for {name}: {problems:?}"))
            .clone()
    };
    assert!(find("notes.gguf").contains("not a GGUF file"));
    assert!(find("cut.gguf").contains("truncated"));
    let alien = find("alien.gguf");
    assert!(alien.contains("architecture `martian`"), "{alien}");
    assert!(find("half-embedder").contains("needs tokenizer.json"));
    assert_eq!(problems.len(), 4, "{problems:?}");
}

/// A header-valid GGUF whose architecture llama.cpp does not know.
fn alien_gguf() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    let key = "general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&7u64.to_le_bytes());
    b.extend_from_slice(b"martian");
    b
}

#[test]
fn adding_and_removing_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("models");
    let models = models_dir();
    let added = catalog::add(&target, &models.join(EMBED)).expect("adds the embedder");
    assert_eq!(
        (added.name.as_str(), added.kind),
        (EMBED, ModelKind::Embedding)
    );
    assert!(matches!(
        catalog::add(&target, &models.join(EMBED)),
        Err(catalog::CatalogError::Exists(_))
    ));
    let bogus = dir.path().join("bogus.gguf");
    std::fs::write(&bogus, b"nope").expect("write");
    let err = catalog::add(&target, &bogus).expect_err("refused");
    assert!(
        err.to_string().contains("bogus.gguf: not a GGUF file"),
        "{err}"
    );
    assert_eq!(catalog::scan(&target).models.len(), 1);
    catalog::remove(&target, EMBED).expect("removes");
    assert!(catalog::scan(&target).models.is_empty());
    assert!(matches!(
        catalog::remove(&target, EMBED),
        Err(catalog::CatalogError::NotFound(_))
    ));
}

#[tokio::test]
async fn embeddings_equal_sentence_transformers() {
    let models = LocalModels::load(&models_dir(), &small());
    let embedder = models
        .embedders
        .iter()
        .find(|e| e.name() == EMBED)
        .expect("the embedder loads")
        .clone();
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.max_tokens(), 256);
    let reference = reference();
    let cases = reference["embeddings"].as_array().expect("embeddings");
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().expect("text").to_owned())
        .collect();
    let out = embedder.embed(texts).await.expect("embeds");
    assert_eq!(out.vectors.len(), cases.len());
    for (got, case) in out.vectors.iter().zip(cases) {
        let want: Vec<f32> = serde_json::from_value(case["vector"].clone()).expect("vector");
        let dot: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(got) * norm(&want));
        assert!(cosine >= 0.9999, "cosine {cosine} for {:?}", case["text"]);
        assert!((norm(got) - 1.0).abs() < 1e-4);
    }
    // Order is kept whatever the batching.
    let one = embedder
        .embed(vec![cases[2]["text"].as_str().expect("t").into()])
        .await
        .expect("one");
    let dot: f32 = one.vectors[0]
        .iter()
        .zip(&out.vectors[2])
        .map(|(a, b)| a * b)
        .sum();
    assert!(dot > 0.9999);
}

#[tokio::test]
async fn the_provider_lists_and_serves_its_models() {
    let models = LocalModels::load(&models_dir(), &small());
    let listed = models.provider.list_models().await.expect("lists");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, CHAT);
    assert_eq!(listed[0].context_length, Some(1024));
    let err = models
        .provider
        .start(ask("hi").with_model("missing"))
        .map(|_| ())
        .expect_err("404");
    assert!(err
        .to_string()
        .contains("no built-in model called `missing`"));
    let stream = models.provider.stream(ask("Say hello."));
    let got = events(stream).await;
    assert!(
        matches!(got.last(), Some(Ok(StreamEvent::Finish(_)))),
        "{got:?}"
    );
}

trait WithModel {
    fn with_model(self, model: &str) -> Self;
}

impl WithModel for ChatRequest {
    fn with_model(mut self, model: &str) -> Self {
        self.model = model.into();
        self
    }
}
