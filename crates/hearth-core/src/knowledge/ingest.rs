//! The ingest pipeline, as background workers: claim a queued document (a lease in the store),
//! parse it, chunk it, embed the chunks in batches, then write chunks and the `indexed` status
//! in one transaction and add the vectors to the index. A document that cannot be read ends
//! `failed` with a reason for the user; a worker that dies leaves a lease that recovery takes
//! back, so every document ends indexed or failed.

use std::time::Duration;

use hearth_store::{Document, NewChunk, Timestamp};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Knowledge, Progress};
use crate::embeddings::Purpose;
use crate::error::{CoreError, Result};

/// How long a claim lasts without being renewed (each pipeline step renews it).
const LEASE_SECS: u64 = 300;
/// Queue check when no wake-up came (another instance may have queued documents).
const POLL: Duration = Duration::from_secs(5);
/// Vector indexes are saved this often when they changed.
const SAVE_EVERY: Duration = Duration::from_secs(30);

/// The running workers.
#[derive(Debug)]
pub struct Worker {
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Waits for the workers to finish (after their shutdown token was cancelled).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Why a document stopped, short of an infrastructure error.
enum Outcome {
    Indexed,
    Failed(String),
    /// Deleted or taken back while being processed: nothing to record.
    Gone,
}

impl Knowledge {
    /// Starts `knowledge.workers` ingest workers and the periodic index saver; they stop when
    /// `shutdown` is cancelled (the indexes are saved once more on the way out).
    pub fn start_workers(&self, shutdown: CancellationToken) -> Worker {
        let mut tasks = Vec::new();
        for _ in 0..self.0.settings.workers {
            let this = self.clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move { this.work(stop).await }));
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAVE_EVERY);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                if let Err(e) = this.save_indexes().await {
                    tracing::error!(error = %e, "could not save vector indexes");
                }
            }
            if let Err(e) = this.save_indexes().await {
                tracing::error!(error = %e, "could not save vector indexes at shutdown");
            }
        }));
        Worker { tasks }
    }

    async fn work(&self, shutdown: CancellationToken) {
        loop {
            // Register for a wake-up before looking, so a document queued in between is seen.
            let queued = self.0.queued.notified();
            let claimed = self
                .0
                .store
                .claim_document(Timestamp::now().plus_secs(LEASE_SECS))
                .await;
            match claimed {
                Ok(Some(doc)) => {
                    let id = doc.id;
                    tokio::select! {
                        result = self.ingest(doc) => {
                            if let Err(e) = result {
                                tracing::error!(document = %id, error = %e, "ingest failed on an internal error");
                                let _ = self.finish_failed(id, "internal error while ingesting; try again").await;
                            }
                        }
                        // Back to the queue, so the next start does not take it for a crash.
                        () = shutdown.cancelled() => {
                            if let Err(e) = self.0.store.release_document(id).await {
                                tracing::warn!(document = %id, error = %e, "could not release a document at shutdown");
                            }
                            return;
                        }
                    }
                }
                Ok(None) => {
                    // Vector indexes are saved by the timer, not each time the queue empties:
                    // a large graph is written whole, and a lost save only means a catch-up.
                    tokio::select! {
                        () = queued => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not claim a document to ingest");
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn ingest(&self, doc: Document) -> Result<()> {
        let id = doc.id;
        let Some(kb) = self.0.store.find_knowledge_base(doc.kb_id).await? else {
            return Ok(());
        };
        let user = kb.user_id;
        self.publish(user, super::doc_view(doc.clone()), None);
        match self.process(&kb, &doc).await? {
            Outcome::Indexed => {}
            Outcome::Failed(reason) => {
                self.finish_failed(id, &reason).await?;
            }
            Outcome::Gone => return Ok(()),
        }
        if let Some(done) = self.0.store.find_document(id).await? {
            self.publish(user, super::doc_view(done), None);
        }
        Ok(())
    }

    async fn finish_failed(&self, id: hearth_store::ids::DocumentId, reason: &str) -> Result<()> {
        self.0.store.fail_document(id, reason).await?;
        Ok(())
    }

    async fn process(&self, kb: &hearth_store::KnowledgeBase, doc: &Document) -> Result<Outcome> {
        let Some(format) = hearth_rag::Format::parse_str(&doc.format) else {
            return Ok(Outcome::Failed(format!(
                "unsupported format `{}`",
                doc.format
            )));
        };
        let bytes = match tokio::fs::read(self.original(doc.id)).await {
            Ok(b) => b,
            Err(e) => {
                return Ok(Outcome::Failed(format!(
                    "the uploaded file is missing from the data directory ({e})"
                )))
            }
        };
        let extracted = match self.0.parser.extract(format, bytes).await {
            Ok(extracted) => extracted,
            Err(reason) => return Ok(Outcome::Failed(reason)),
        };
        if extracted.chunks.is_empty() {
            return Ok(Outcome::Failed("no text found in the file".into()));
        }
        let pages = Some(i64::from(extracted.pages));
        let chunks = extracted.chunks;
        if !self
            .0
            .store
            .advance_document(doc.id, "embedding", Timestamp::now().plus_secs(LEASE_SECS))
            .await?
        {
            return Ok(Outcome::Gone);
        }
        let user = kb.user_id;
        let mut embedding_view = super::doc_view(doc.clone());
        embedding_view.status = super::DocumentStatus::Embedding;
        let total = chunks.len();
        self.publish(
            user,
            embedding_view.clone(),
            Some(Progress { done: 0, total }),
        );

        let mut rows = Vec::with_capacity(total);
        let mut vectors = Vec::with_capacity(total);
        for batch in chunks.chunks(self.0.settings.embed_batch) {
            let texts: Vec<String> = batch.iter().map(|c| c.indexed_text()).collect();
            let embedded = match self
                .0
                .embeddings
                .embed_for(user, Purpose::Ingest, &kb.embedding_model, texts)
                .await
            {
                Ok(e) => e,
                Err(CoreError::ModelNotFound(model)) => {
                    return Ok(Outcome::Failed(format!(
                    "the embedding model `{model}` of this knowledge base is not loaded or enabled"
                )))
                }
                Err(e) => return Ok(Outcome::Failed(format!("embedding failed: {e}"))),
            };
            if embedded.vectors.len() != batch.len() {
                return Ok(Outcome::Failed(
                    "embedding failed: the model returned the wrong number of vectors".into(),
                ));
            }
            if let Some(v) = embedded
                .vectors
                .iter()
                .find(|v| i64::try_from(v.len()).ok() != Some(kb.dimensions))
            {
                return Ok(Outcome::Failed(format!(
                    "embedding failed: `{}` answered vectors of {} dimensions; this knowledge base holds {}",
                    kb.embedding_model,
                    v.len(),
                    kb.dimensions
                )));
            }
            for (chunk, vector) in batch.iter().zip(embedded.vectors) {
                rows.push(NewChunk {
                    position: i64::from(chunk.position),
                    headings: chunk.headings.join(" > "),
                    text: chunk.text.clone(),
                    page: chunk.page.map(i64::from),
                    tokens: i64::try_from(chunk.tokens).unwrap_or(i64::MAX),
                    embedding: hearth_rag::vectors::to_bytes(&vector),
                });
                vectors.push(vector);
            }
            // Renewing the lease also notices a document deleted meanwhile.
            if !self
                .0
                .store
                .advance_document(doc.id, "embedding", Timestamp::now().plus_secs(LEASE_SECS))
                .await?
            {
                return Ok(Outcome::Gone);
            }
            self.publish(
                user,
                embedding_view.clone(),
                Some(Progress {
                    done: rows.len(),
                    total,
                }),
            );
        }

        let pgvector = self.on_pgvector();
        let Some(seqs) = self
            .0
            .store
            .commit_chunks(doc.id, pages, &rows, pgvector)
            .await?
        else {
            return Ok(Outcome::Gone);
        };
        if let Some(text) = self.text_index(kb).await? {
            let entries: Vec<hearth_rag::text::TextEntry> = seqs
                .iter()
                .zip(&rows)
                .map(|(key, row)| hearth_rag::text::TextEntry {
                    key: *key,
                    document: doc.id.to_string(),
                    headings: row.headings.clone(),
                    text: row.text.clone(),
                })
                .collect();
            tokio::task::spawn_blocking(move || text.add(&entries))
                .await
                .map_err(|e| CoreError::Other(Box::new(e)))?
                .map_err(|e| CoreError::Other(Box::new(e)))?;
        }
        if pgvector {
            return Ok(Outcome::Indexed);
        }
        let index = self.vectors(kb).await?;
        let entries: Vec<(i64, Vec<f32>)> = seqs.into_iter().zip(vectors).collect();
        tokio::task::spawn_blocking(move || index.add(&entries))
            .await
            .map_err(|e| CoreError::Other(Box::new(e)))?
            .map_err(|e| CoreError::Other(Box::new(e)))?;
        Ok(Outcome::Indexed)
    }
}
