//! `hearth ingest` and `hearth search`: knowledge bases from the terminal, through a running
//! server's API (authenticated by an API key), so files go through the same pipeline as
//! uploads from the web UI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use hearth_client::{Client, ClientError, Upload};
use hearth_core::ids::{DocumentId, KnowledgeBaseId};
use hearth_core::knowledge::{CreateKnowledgeBase, DocumentStatus, SearchRequest};
use indicatif::{ProgressBar, ProgressStyle};

/// Where the server is and how to sign in to it.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's URL.
    #[arg(long, env = "HEARTH_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API key (create one under Settings → API keys in the web UI).
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    api_key: String,
}

/// `hearth ingest`.
#[derive(Args)]
pub struct IngestArgs {
    /// Files or folders (read recursively).
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// The knowledge base, by name; created when it does not exist.
    #[arg(long, value_name = "NAME")]
    kb: String,
    /// Metadata attached to every document (a JSON object), for search filters.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// Return once uploaded, without waiting for the documents to be indexed.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    remote: Remote,
}

/// `hearth search`.
#[derive(Args)]
pub struct SearchArgs {
    /// What to look for.
    #[arg(value_name = "QUERY", required = true)]
    query: Vec<String>,
    /// The knowledge base, by name.
    #[arg(long, value_name = "NAME")]
    kb: String,
    /// `hybrid`, `bm25` or `vector`.
    #[arg(long, default_value = "hybrid")]
    mode: String,
    /// Hits to show (1–50).
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) fn client(remote: &Remote) -> Client {
    Client::new(remote.server.trim_end_matches('/')).with_token(&remote.api_key)
}

pub(crate) fn api_error(err: ClientError) -> String {
    match err {
        ClientError::Transport(e) if e.is_connect() => {
            format!("cannot reach the server ({e}); is `hearth serve` running? (set --server or HEARTH_URL)")
        }
        other => other.to_string(),
    }
}

pub(crate) async fn find_kb(
    client: &Client,
    name: &str,
) -> Result<Option<KnowledgeBaseId>, String> {
    let bases = client.list_knowledge_bases().await.map_err(api_error)?;
    Ok(bases.into_iter().find(|b| b.name == name).map(|b| b.id))
}

/// Files under `paths`, recursively, in a stable order; hidden entries are skipped.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_file() {
            out.push(path.to_path_buf());
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        entries.sort();
        for entry in entries {
            walk(&entry, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        walk(path, &mut out)?;
    }
    Ok(out)
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Uploads every file, then (unless `--no-wait`) follows the documents until each is indexed
/// or failed. Fails when any file could not be uploaded or ingested.
pub async fn ingest(args: IngestArgs) -> Result<(), String> {
    let metadata = args
        .metadata
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .map_err(|e| format!("--metadata is not JSON: {e}"))?;
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err("--metadata must be a JSON object".into());
    }
    let files = collect(&args.paths)?;
    let (readable, unsupported): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| hearth_rag::Format::from_file_name(n).is_some())
    });
    if readable.is_empty() {
        return Err(format!(
            "no file to ingest under the given paths ({} of unsupported types); Hearth reads .txt, .md, .html, .pdf, .docx, .csv and .json",
            unsupported.len()
        ));
    }
    let client = client(&args.remote);
    let kb = match find_kb(&client, &args.kb).await? {
        Some(id) => id,
        None => {
            let created = client
                .create_knowledge_base(&CreateKnowledgeBase {
                    name: args.kb.clone(),
                    ..Default::default()
                })
                .await
                .map_err(api_error)?;
            say!("created knowledge base \"{}\"", created.name);
            created.id
        }
    };

    let uploading = bar(
        readable.len() as u64,
        "uploading [{bar:30}] {pos}/{len} {wide_msg}",
    );
    let mut queued: HashMap<DocumentId, String> = HashMap::new();
    let mut duplicates = 0usize;
    let mut problems: Vec<String> = Vec::new();
    for path in &readable {
        uploading.set_message(path.display().to_string());
        match client
            .upload_documents(kb, vec![Upload::path(path)], metadata.as_ref())
            .await
        {
            Ok(result) => {
                for doc in result.documents {
                    if doc.duplicate {
                        duplicates += 1;
                    } else {
                        queued.insert(doc.id, path.display().to_string());
                    }
                }
                problems.extend(
                    result
                        .rejected
                        .into_iter()
                        .map(|r| format!("{}: {}", path.display(), r.message)),
                );
            }
            Err(e) if e.status().is_some() => {
                problems.push(format!("{}: {}", path.display(), api_error(e)));
            }
            Err(e) => {
                uploading.abandon();
                return Err(api_error(e));
            }
        }
        uploading.inc(1);
    }
    uploading.finish_and_clear();
    say!(
        "uploaded {} of {} files to \"{}\" ({duplicates} already there, {} of unsupported types skipped)",
        queued.len() + duplicates,
        readable.len(),
        args.kb,
        unsupported.len()
    );
    if args.no_wait || queued.is_empty() {
        return finish(problems);
    }

    let indexing = bar(
        queued.len() as u64,
        "indexing  [{bar:30}] {pos}/{len} {wide_msg}",
    );
    let mut indexed = 0usize;
    loop {
        let docs = client.documents(kb).await.map_err(api_error)?;
        let mut done = 0;
        let mut embedding = None;
        for doc in docs.iter().filter(|d| queued.contains_key(&d.id)) {
            match doc.status {
                DocumentStatus::Indexed | DocumentStatus::Failed => done += 1,
                DocumentStatus::Embedding | DocumentStatus::Parsing => {
                    embedding = Some(doc.name.clone());
                }
                DocumentStatus::Queued => {}
            }
        }
        indexing.set_position(done as u64);
        indexing.set_message(embedding.unwrap_or_default());
        if done == queued.len() {
            for doc in docs.iter().filter(|d| queued.contains_key(&d.id)) {
                match doc.status {
                    DocumentStatus::Indexed => indexed += 1,
                    _ => problems.push(format!(
                        "{}: {}",
                        queued[&doc.id],
                        doc.error.as_deref().unwrap_or("failed")
                    )),
                }
            }
            break;
        }
        // A terminal program polls: the documents list is cheap and this runs for minutes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    indexing.finish_and_clear();
    say!("indexed {indexed} of {} new documents", queued.len());
    finish(problems)
}

fn finish(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("  {p}");
    }
    Err(format!(
        "{} files could not be ingested (listed above)",
        problems.len()
    ))
}

/// Prints the best passages for a query.
pub async fn search(args: SearchArgs) -> Result<(), String> {
    let client = client(&args.remote);
    let kb = find_kb(&client, &args.kb)
        .await?
        .ok_or_else(|| format!("no knowledge base named \"{}\"", args.kb))?;
    let results = client
        .search(
            kb,
            &SearchRequest {
                query: args.query.join(" "),
                top_k: Some(args.top_k),
                mode: Some(args.mode.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(api_error)?;
    if results.hits.is_empty() {
        say!("no matches");
        return Ok(());
    }
    for (i, hit) in results.hits.iter().enumerate() {
        let mut place = hit.document_name.clone();
        if !hit.headings.is_empty() {
            place.push_str(" › ");
            place.push_str(&hit.headings);
        }
        if let Some(page) = hit.page {
            place.push_str(&format!(" (page {page})"));
        }
        say!("{}. {place}  [score {:.4}]", i + 1, hit.score);
        for line in hit.text.lines().filter(|l| !l.trim().is_empty()) {
            say!("   {line}");
        }
    }
    Ok(())
}
