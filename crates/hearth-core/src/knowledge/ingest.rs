//! The ingest pipeline, run as `kb.ingest` jobs on the durable queue: a job takes one round of
//! one document (`<id>:<ingest_gen>`), parses it, chunks it, embeds the chunks in batches,
//! then writes chunks and the `indexed` status in one transaction and adds the vectors to the
//! index. A document that cannot be read ends `failed` with a reason for the user.
//!
//! The queue holds the lease (renewed while a job runs, taken back when its worker dies) and
//! the owners' turns, so one user's thousand files do not hold up another user's one. What
//! keeps every document moving is [`Knowledge::reconcile_ingest`]: a queued or started
//! document whose round has no live job gets one (a crash between the upload and the enqueue),
//! or fails with the job's last error when its job died; so every document ends indexed or
//! failed.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use hearth_jobs::{Handler, JobContext, JobError, JobSpec, Queue};
use hearth_store::ids::{DocumentId, UserId};
use hearth_store::{Document, DocumentState, JobState, NewChunk, Timestamp, UnfinishedIngest};
use serde::{Deserialize, Serialize};

use super::{Knowledge, Progress};
use crate::embeddings::Purpose;
use crate::error::{CoreError, Result};

/// The job kind that ingests a document.
pub const INGEST_JOB: &str = "kb.ingest";
/// Attempts one round gets: a worker that dies (or an internal error) costs one.
const ATTEMPTS: u32 = 3;
/// Documents looked at per reconciliation pass.
const RECONCILE_BATCH: i64 = 500;
/// How long a document without a job is left alone (its upload may still be enqueueing it).
const SETTLE_MILLIS: i64 = 60_000;

/// A `kb.ingest` job's payload.
#[derive(Debug, Serialize, Deserialize)]
struct IngestPayload {
    document: DocumentId,
    gen: i64,
}

/// The job for round `gen` of `document`, owned by `owner` (whose turn it takes).
pub fn ingest_job(document: DocumentId, gen: i64, owner: UserId) -> JobSpec {
    JobSpec::new(
        INGEST_JOB,
        serde_json::json!({ "document": document, "gen": gen }),
    )
    .owner(owner)
    .max_attempts(ATTEMPTS)
    .idempotency_key(format!("{document}:{gen}"))
}

/// What [`Knowledge::reconcile_ingest`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Documents that had no job and got one.
    pub enqueued: u64,
    /// Documents whose job died or was cancelled: failed.
    pub failed: u64,
    /// Documents whose job ended without an outcome: queued as a new round.
    pub restarted: u64,
}

/// Why a document stopped, short of an infrastructure error.
enum Outcome {
    Indexed,
    Failed(String),
    /// Deleted or given up on while being processed: nothing to record.
    Gone,
}

/// Runs `kb.ingest` jobs.
struct IngestHandler(Knowledge);

impl Handler for IngestHandler {
    fn kind(&self) -> &str {
        INGEST_JOB
    }

    fn run(&self, job: JobContext) -> BoxFuture<'static, std::result::Result<(), JobError>> {
        let this = self.0.clone();
        Box::pin(async move { this.run_job(job).await })
    }
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl Knowledge {
    /// The handler of `kb.ingest` jobs, for a worker pool.
    pub fn ingest_handler(&self) -> Arc<dyn Handler> {
        Arc::new(IngestHandler(self.clone()))
    }

    /// Queues round `doc.ingest_gen` of a document. A failure is logged, not returned: the
    /// document is stored, and [`Knowledge::reconcile_ingest`] enqueues it later.
    pub(super) async fn enqueue_ingest(&self, doc: &Document, owner: UserId) {
        if let Err(e) = self
            .queue()
            .enqueue(ingest_job(doc.id, doc.ingest_gen, owner))
            .await
        {
            tracing::warn!(document = %doc.id, error = %e, "could not queue a document's ingest job; reconciliation will");
        }
    }

    fn queue(&self) -> &Queue {
        &self.0.queue
    }

    /// Gives every queued or started document a live job: one that never got a job gets one,
    /// one whose job died or was cancelled fails with the job's last error, and one whose job
    /// ended without an outcome is queued again as a new round. Runs at start and
    /// periodically; safe on any number of instances at once (the job's idempotency key makes
    /// their enqueues one job, and each document change is conditional).
    pub async fn reconcile_ingest(&self) -> Result<Reconciled> {
        let store = &self.0.store;
        let mut done = Reconciled::default();
        // An upload stores the row, then the original, then the job: leave it a moment.
        let settled = Timestamp::from_millis(Timestamp::now().millis() - SETTLE_MILLIS);
        let rows = store
            .unfinished_ingests(INGEST_JOB, settled, RECONCILE_BATCH)
            .await?;
        for row in rows {
            // One document's trouble must not hold up the others behind it.
            if let Err(e) = self.reconcile_one(&row, &mut done).await {
                tracing::warn!(document = %row.document, error = %e, "could not put a document's ingest right; next pass tries again");
            }
        }
        Ok(done)
    }

    async fn reconcile_one(&self, row: &UnfinishedIngest, done: &mut Reconciled) -> Result<()> {
        let store = &self.0.store;
        match row.job_state {
            None | Some(JobState::Queued | JobState::Running) => {
                let spec = ingest_job(row.document, row.gen, row.owner);
                self.queue().enqueue(spec).await.map_err(jobs_error)?;
                done.enqueued += 1;
            }
            Some(JobState::Dead | JobState::Cancelled) => {
                let why = row.job_error.as_deref().unwrap_or("it was cancelled");
                let reason = format!(
                    "ingest was interrupted and given up on ({why}); retry to read it again"
                );
                if store
                    .abandon_document(row.document, row.gen, &reason)
                    .await?
                {
                    done.failed += 1;
                    if let Some(doc) = store.find_document(row.document).await? {
                        self.publish(row.owner, super::doc_view(doc), None);
                    }
                }
            }
            Some(JobState::Succeeded) => {
                if let Some(doc) = store.restart_document(row.document, row.gen).await? {
                    self.enqueue_ingest(&doc, row.owner).await;
                    done.restarted += 1;
                }
            }
        }
        Ok(())
    }

    async fn run_job(&self, job: JobContext) -> std::result::Result<(), JobError> {
        let payload: IngestPayload = job.payload()?;
        let store = &self.0.store;
        let Some(doc) = store.find_document(payload.document).await.map_err(retry)? else {
            return Ok(()); // deleted
        };
        let in_progress = matches!(
            doc.status,
            DocumentState::Queued | DocumentState::Parsing | DocumentState::Embedding
        );
        if doc.ingest_gen != payload.gen || !in_progress {
            return Ok(()); // a later round owns it, or it is done
        }
        let Some(kb) = store.find_knowledge_base(doc.kb_id).await.map_err(retry)? else {
            return Ok(());
        };
        let user = kb.user_id;
        // A shutdown or a failed attempt puts a started document back in the queue, so one
        // still being parsed at a later attempt was cut off mid-parse: perhaps by the file
        // itself. Parsing it again at every start would loop; retrying is the user's act.
        if doc.status == DocumentState::Parsing && job.attempt > 1 {
            let reason = "the server stopped while reading this file (it may have crashed the \
                          parser); retry to read it again";
            if store
                .fail_document(doc.id, doc.ingest_gen, reason)
                .await
                .map_err(retry)?
            {
                if let Some(done) = store.find_document(doc.id).await.map_err(retry)? {
                    self.publish(user, super::doc_view(done), None);
                }
            }
            return Ok(());
        }
        let Some(doc) = store
            .start_document(doc.id, payload.gen)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        let id = doc.id;
        let gen = doc.ingest_gen;
        let result = tokio::select! {
            result = self.ingest(&kb, doc) => result,
            // Back to the queue, so the next attempt does not take it for a crash.
            () = job.cancelled.cancelled() => {
                if let Err(e) = store.release_document(id, gen).await {
                    tracing::warn!(document = %id, error = %e, "could not put back a document whose ingest stopped");
                }
                return Err(JobError::Retry("stopped before it finished".into()));
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if job.attempt >= job.max_attempts => {
                tracing::error!(document = %id, error = %e, "ingest failed on an internal error");
                match store
                    .fail_document(id, gen, "internal error while ingesting; try again")
                    .await
                {
                    Ok(_) => {
                        if let Ok(Some(done)) = store.find_document(id).await {
                            self.publish(user, super::doc_view(done), None);
                        }
                    }
                    // Its job is dead now: reconciliation fails the document.
                    Err(e) => {
                        tracing::warn!(document = %id, error = %e, "could not record a failed ingest")
                    }
                }
                Err(JobError::Fatal(e.to_string()))
            }
            Err(e) => {
                tracing::warn!(document = %id, error = %e, "ingest failed on an internal error; it will be retried");
                if let Err(e) = store.release_document(id, gen).await {
                    tracing::warn!(document = %id, error = %e, "could not put back a document for its retry");
                }
                Err(retry(e))
            }
        }
    }

    async fn ingest(&self, kb: &hearth_store::KnowledgeBase, doc: Document) -> Result<()> {
        let id = doc.id;
        let user = kb.user_id;
        self.publish(user, super::doc_view(doc.clone()), None);
        match self.process(kb, &doc).await? {
            Outcome::Indexed => {}
            Outcome::Failed(reason) => {
                self.0
                    .store
                    .fail_document(id, doc.ingest_gen, &reason)
                    .await?;
            }
            Outcome::Gone => return Ok(()),
        }
        if let Some(done) = self.0.store.find_document(id).await? {
            self.publish(user, super::doc_view(done), None);
        }
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
            .advance_document(doc.id, doc.ingest_gen, DocumentState::Embedding)
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
                .advance_document(doc.id, doc.ingest_gen, DocumentState::Embedding)
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
            .commit_chunks(doc.id, doc.ingest_gen, pages, &rows, pgvector)
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

fn jobs_error(e: hearth_jobs::JobsError) -> CoreError {
    match e {
        hearth_jobs::JobsError::Store(e) => e.into(),
        other => CoreError::Other(Box::new(other)),
    }
}
