//! Knowledge bases, documents (with where each is on its way into the index) and chunks with their
//! full-text search on PostgreSQL (a generated `tsvector`; on SQLite the embedded index in
//! hearth-rag does it) and pgvector when the extension is there.

use crate::enums::text_enum;
use crate::ids::{ChunkId, DocumentId, KnowledgeBaseId, UserId};
use crate::{on_pool, on_writer, JobState, Pool, Result, Store, Timestamp};

text_enum!(
    /// Where a document is on its way into the index.
    DocumentState {
        /// Waiting for its ingest job.
        Queued = "queued",
        /// Its original is being read into chunks.
        Parsing = "parsing",
        /// Its chunks are being embedded.
        Embedding = "embedding",
        /// Searchable.
        Indexed = "indexed",
        /// Could not be read; `error` says why.
        Failed = "failed",
    }
);

/// A knowledge base as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KnowledgeBase {
    pub id: KnowledgeBaseId,
    pub user_id: UserId,
    pub name: String,
    pub description: String,
    /// The embedder its chunks were embedded with, and its vector length: fixed at creation.
    pub embedding_model: String,
    pub dimensions: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Documents in it (any status).
    pub documents: i64,
    /// Chunks indexed in it.
    pub chunks: i64,
}

/// A knowledge base to insert.
#[derive(Clone, Debug)]
pub struct NewKnowledgeBase {
    pub user_id: UserId,
    pub name: String,
    pub description: String,
    pub embedding_model: String,
    pub dimensions: i64,
}

/// See [`Store::user_document_totals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentTotals {
    pub documents: i64,
    pub bytes: i64,
    pub queued: i64,
}

/// A document as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Document {
    pub id: DocumentId,
    pub kb_id: KnowledgeBaseId,
    pub name: String,
    /// The parser it goes through (`txt`, `md`, `pdf`…).
    pub format: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the original; unique per knowledge base.
    pub content_hash: String,
    /// A JSON object the uploader attached, for search filters.
    pub metadata: String,
    pub status: DocumentState,
    /// Why it failed, for the user.
    pub error: Option<String>,
    /// Times a worker started its current round.
    pub attempts: i64,
    /// Rounds it was queued for, from 0 (a retry starts the next).
    pub ingest_gen: i64,
    pub pages: Option<i64>,
    pub chunks: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub indexed_at: Option<Timestamp>,
}

/// A document to insert (queued).
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub id: DocumentId,
    pub kb_id: KnowledgeBaseId,
    pub name: String,
    pub format: String,
    pub size_bytes: i64,
    pub content_hash: String,
    pub metadata: String,
}

/// A chunk to insert; `embedding` is little-endian f32.
#[derive(Clone, Debug)]
pub struct NewChunk {
    pub position: i64,
    pub headings: String,
    pub text: String,
    pub page: Option<i64>,
    pub tokens: i64,
    pub embedding: Vec<u8>,
}

/// A chunk as read back for search results (without its embedding).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredChunk {
    /// The integer key the vector index knows the chunk by.
    pub seq: i64,
    pub id: ChunkId,
    pub kb_id: KnowledgeBaseId,
    pub document_id: DocumentId,
    pub document_name: String,
    pub position: i64,
    pub headings: String,
    pub text: String,
    pub page: Option<i64>,
    pub tokens: i64,
}

/// Outcome of [`Store::insert_document`].
#[derive(Clone, Debug)]
pub enum Inserted {
    /// Stored and queued.
    New(Document),
    /// The knowledge base already holds a document with the same content.
    Duplicate(Document),
}

/// A document whose ingest round has no live job; see [`Store::unfinished_ingests`].
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UnfinishedIngest {
    pub document: DocumentId,
    pub owner: UserId,
    pub gen: i64,
    /// The round's job's state, `None` when there is no job.
    pub job_state: Option<JobState>,
    pub job_error: Option<String>,
}

const KB_COLUMNS: &str = "k.id, k.user_id, k.name, k.description, k.embedding_model, k.dimensions, \
    k.created_at, k.updated_at, \
    (SELECT COUNT(*) FROM kb_documents d WHERE d.kb_id = k.id) AS documents, \
    (SELECT CAST(COALESCE(SUM(d.chunks), 0) AS BIGINT) FROM kb_documents d WHERE d.kb_id = k.id AND d.status = 'indexed') AS chunks";
// (`'indexed'` above is DocumentState::Indexed; a test checks the two agree.)

const CHUNK_COLUMNS: &str = "c.seq, c.id, c.kb_id, c.document_id, d.name AS document_name, \
    c.position, c.headings, c.text, c.page, c.tokens";

impl Store {
    /// Inserts a knowledge base. A name the user already uses is a conflict.
    pub async fn create_knowledge_base(&self, new: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let id = KnowledgeBaseId::new();
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO knowledge_bases (id, user_id, name, description, embedding_model, dimensions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(new.user_id)
            .bind(&new.name)
            .bind(&new.description)
            .bind(&new.embedding_model)
            .bind(new.dimensions)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.find_knowledge_base(id)
            .await?
            .ok_or(crate::StoreError::NotFound)
    }

    /// A user's knowledge bases, by name; all of them when `user` is `None`.
    pub async fn list_knowledge_bases(&self, user: Option<UserId>) -> Result<Vec<KnowledgeBase>> {
        let sql = format!(
            "SELECT {KB_COLUMNS} FROM knowledge_bases k \
             WHERE ($1 IS NULL OR k.user_id = $1) ORDER BY k.name, k.id"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, KnowledgeBase>(&sql)
                .bind(user)
                .fetch_all(pool)
                .await
        })?)
    }

    /// One knowledge base.
    pub async fn find_knowledge_base(&self, id: KnowledgeBaseId) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLUMNS} FROM knowledge_bases k WHERE k.id = $1");
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, KnowledgeBase>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Renames a knowledge base and/or changes its description.
    pub async fn update_knowledge_base(
        &self,
        id: KnowledgeBaseId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Option<KnowledgeBase>> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE knowledge_bases SET name = COALESCE($2, name), \
                 description = COALESCE($3, description), updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(name)
            .bind(description)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Ok(None);
        }
        self.find_knowledge_base(id).await
    }

    /// Deletes a knowledge base with its documents and chunks.
    pub async fn delete_knowledge_base(&self, id: KnowledgeBaseId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM knowledge_bases WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Queues a document, unless the knowledge base already holds one with the same content.
    pub async fn insert_document(&self, new: NewDocument) -> Result<Inserted> {
        let now = Timestamp::now();
        let row = on_writer!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "INSERT INTO kb_documents (id, kb_id, name, format, size_bytes, content_hash, metadata, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8) \
                 ON CONFLICT (kb_id, content_hash) DO NOTHING RETURNING *",
            )
            .bind(new.id)
            .bind(new.kb_id)
            .bind(&new.name)
            .bind(&new.format)
            .bind(new.size_bytes)
            .bind(&new.content_hash)
            .bind(&new.metadata)
            .bind(now)
            .bind(DocumentState::Queued)
            .fetch_optional(pool)
            .await
        })?;
        if let Some(doc) = row {
            return Ok(Inserted::New(doc));
        }
        let existing = on_pool!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "SELECT * FROM kb_documents WHERE kb_id = $1 AND content_hash = $2",
            )
            .bind(new.kb_id)
            .bind(&new.content_hash)
            .fetch_one(pool)
            .await
        })?;
        Ok(Inserted::Duplicate(existing))
    }

    /// A knowledge base's documents, oldest first.
    pub async fn list_documents(&self, kb: KnowledgeBaseId) -> Result<Vec<Document>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "SELECT * FROM kb_documents WHERE kb_id = $1 ORDER BY created_at, id",
            )
            .bind(kb)
            .fetch_all(pool)
            .await
        })?)
    }

    /// One document.
    pub async fn find_document(&self, id: DocumentId) -> Result<Option<Document>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Document>("SELECT * FROM kb_documents WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Deletes a document and its chunks; returns the keys of the chunks it had (for the
    /// vector index), or `None` when there was no such document.
    pub async fn delete_document(&self, id: DocumentId) -> Result<Option<Vec<i64>>> {
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let seqs: Vec<i64> =
                sqlx::query_scalar("SELECT seq FROM kb_chunks WHERE document_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            let done = sqlx::query("DELETE FROM kb_documents WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(if done == 0 { None } else { Some(seqs) })
        })
    }

    /// A user's documents across their knowledge bases: how many, their bytes, and how many
    /// wait in the ingest queue.
    pub async fn user_document_totals(&self, user: UserId) -> Result<DocumentTotals> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, DocumentTotals>(
                // PostgreSQL sums BIGINTs as NUMERIC: cast back.
                "SELECT CAST(COUNT(*) AS BIGINT) AS documents, \
                 CAST(COALESCE(SUM(d.size_bytes), 0) AS BIGINT) AS bytes, \
                 CAST(COALESCE(SUM(CASE WHEN d.status = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS queued \
                 FROM kb_documents d JOIN knowledge_bases k ON k.id = d.kb_id WHERE k.user_id = $1",
            )
            .bind(user)
            .bind(DocumentState::Queued)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Starts round `gen` of a queued (or interrupted) document: its status becomes `parsing`
    /// and its attempts grow by one. `None` when the document is gone, finished, or queued
    /// again since (a later round's job owns it then).
    pub async fn start_document(&self, id: DocumentId, gen: i64) -> Result<Option<Document>> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "UPDATE kb_documents SET status = $3, attempts = attempts + 1, error = NULL, \
                 updated_at = $4 WHERE id = $1 AND ingest_gen = $2 AND status IN ($5, $3, $6) \
                 RETURNING *",
            )
            .bind(id)
            .bind(gen)
            .bind(DocumentState::Parsing)
            .bind(Timestamp::now())
            .bind(DocumentState::Queued)
            .bind(DocumentState::Embedding)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Moves round `gen` of a started document to `status` (`parsing` or `embedding`). False
    /// when the document is gone, no longer in progress (deleted, or given up on), or in a
    /// later round.
    pub async fn advance_document(
        &self,
        id: DocumentId,
        gen: i64,
        status: DocumentState,
    ) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = $2, updated_at = $3 \
                 WHERE id = $1 AND status IN ($4, $5) AND ingest_gen = $6",
            )
            .bind(id)
            .bind(status)
            .bind(Timestamp::now())
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .bind(gen)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Marks round `gen` of a started document failed with a reason for the user.
    pub async fn fail_document(&self, id: DocumentId, gen: i64, reason: &str) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = $4, error = $2, updated_at = $3 \
                 WHERE id = $1 AND status IN ($5, $6) AND ingest_gen = $7",
            )
            .bind(id)
            .bind(reason)
            .bind(Timestamp::now())
            .bind(DocumentState::Failed)
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .bind(gen)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Gives up on round `gen` of a document still queued or in progress (its job died or was
    /// cancelled): it fails with `reason`. False when it moved on meanwhile.
    pub async fn abandon_document(&self, id: DocumentId, gen: i64, reason: &str) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = $4, error = $3, updated_at = $5 \
                 WHERE id = $1 AND ingest_gen = $2 AND status IN ($6, $7, $8)",
            )
            .bind(id)
            .bind(gen)
            .bind(reason)
            .bind(DocumentState::Failed)
            .bind(Timestamp::now())
            .bind(DocumentState::Queued)
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Puts a failed or indexed document back in the queue as a new round (`ingest_gen` + 1;
    /// its chunks are replaced when it is indexed again); `None` when it is not failed or
    /// indexed.
    pub async fn requeue_document(&self, id: DocumentId) -> Result<Option<Document>> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "UPDATE kb_documents SET status = $3, error = NULL, attempts = 0, \
                 ingest_gen = ingest_gen + 1, updated_at = $2 WHERE id = $1 AND status IN ($4, $5) \
                 RETURNING *",
            )
            .bind(id)
            .bind(Timestamp::now())
            .bind(DocumentState::Queued)
            .bind(DocumentState::Failed)
            .bind(DocumentState::Indexed)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Queues a document again as a new round when round `gen` ended without an outcome (its
    /// job finished but the document is still queued or started); `None` when it moved on.
    pub async fn restart_document(&self, id: DocumentId, gen: i64) -> Result<Option<Document>> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "UPDATE kb_documents SET status = $3, error = NULL, attempts = 0, \
                 ingest_gen = ingest_gen + 1, updated_at = $4 \
                 WHERE id = $1 AND ingest_gen = $2 AND status IN ($3, $5, $6) RETURNING *",
            )
            .bind(id)
            .bind(gen)
            .bind(DocumentState::Queued)
            .bind(Timestamp::now())
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Writes round `gen` of a document's chunks and marks it indexed, in one transaction (replacing chunks it
    /// had). Returns the new chunks' keys in order, or `None` when the document is no longer in
    /// progress (deleted, or given up on) and nothing was written.
    /// With `pgvector` (see [`Store::enable_pgvector`]) each embedding is also written to the
    /// `vector` column its HNSW index covers.
    pub async fn commit_chunks(
        &self,
        id: DocumentId,
        gen: i64,
        pages: Option<i64>,
        chunks: &[NewChunk],
        pgvector: bool,
    ) -> Result<Option<Vec<i64>>> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let kb: Option<KnowledgeBaseId> = sqlx::query_scalar(
                "UPDATE kb_documents SET status = $5, error = NULL, \
                 pages = $2, chunks = $3, indexed_at = $4, updated_at = $4 \
                 WHERE id = $1 AND status IN ($6, $7) AND ingest_gen = $8 RETURNING kb_id",
            )
            .bind(id)
            .bind(pages)
            .bind(i64::try_from(chunks.len()).unwrap_or(i64::MAX))
            .bind(now)
            .bind(DocumentState::Indexed)
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .bind(gen)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(kb) = kb else {
                return Ok(None);
            };
            sqlx::query("DELETE FROM kb_chunks WHERE document_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let mut seqs = Vec::with_capacity(chunks.len());
            for c in chunks {
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO kb_chunks (id, kb_id, document_id, position, headings, text, page, tokens, embedding) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
                )
                .bind(ChunkId::new())
                .bind(kb)
                .bind(id)
                .bind(c.position)
                .bind(&c.headings)
                .bind(&c.text)
                .bind(c.page)
                .bind(c.tokens)
                .bind(&c.embedding)
                .fetch_one(&mut *tx)
                .await?;
                if pgvector {
                    sqlx::query("UPDATE kb_chunks SET embedding_vec = $2::vector WHERE seq = $1")
                        .bind(seq)
                        .bind(vector_literal(&c.embedding))
                        .execute(&mut *tx)
                        .await?;
                }
                seqs.push(seq);
            }
            tx.commit().await?;
            Ok(Some(seqs))
        })
    }

    /// Puts a started document back in the queue without counting the attempt, when its worker
    /// stops for a shutdown (so the next round does not take it for a crash). False when it
    /// was no longer in progress.
    pub async fn release_document(&self, id: DocumentId, gen: i64) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = $3, updated_at = $2, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $1 AND status IN ($4, $5) AND ingest_gen = $6",
            )
            .bind(id)
            .bind(Timestamp::now())
            .bind(DocumentState::Queued)
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .bind(gen)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Documents queued or in progress whose round has no live job of `kind` (keyed
    /// `<document id>:<ingest_gen>`): none was ever stored (a crash between the upload and the
    /// enqueue), or it ended (dead, cancelled, or succeeded without an outcome). Oldest first.
    /// A document without any job is only listed once `settled_before` passed its last change:
    /// an upload stores the row, then the original, then the job.
    pub async fn unfinished_ingests(
        &self,
        kind: &str,
        settled_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<UnfinishedIngest>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, UnfinishedIngest>(
                "SELECT d.id AS document, k.user_id AS owner, d.ingest_gen AS gen, \
                 j.state AS job_state, j.last_error AS job_error \
                 FROM kb_documents d JOIN knowledge_bases k ON k.id = d.kb_id \
                 LEFT JOIN jobs j ON j.kind = $1 \
                   AND j.idempotency_key = d.id || ':' || CAST(d.ingest_gen AS TEXT) \
                 WHERE d.status IN ($2, $3, $4) AND (j.id IS NULL OR j.state NOT IN ($5, $6)) \
                 AND (j.id IS NOT NULL OR d.updated_at < $8) \
                 ORDER BY d.created_at, d.id LIMIT $7",
            )
            .bind(kind)
            .bind(DocumentState::Queued)
            .bind(DocumentState::Parsing)
            .bind(DocumentState::Embedding)
            .bind(JobState::Queued)
            .bind(JobState::Running)
            .bind(limit)
            .bind(settled_before)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Full-text search on PostgreSQL: chunk keys and `ts_rank_cd` scores (higher is better) for
    /// chunks of `kbs` (and of `documents`, when given) matching any of `terms`, best first.
    /// On SQLite the embedded index (hearth-rag) does this.
    pub async fn search_chunks_text(
        &self,
        kbs: &[KnowledgeBaseId],
        documents: Option<&[DocumentId]>,
        terms: &[String],
        limit: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let words: Vec<String> = terms
            .iter()
            .map(|t| {
                t.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
            })
            .filter(|t| !t.is_empty())
            .collect();
        if words.is_empty() || kbs.is_empty() {
            return Ok(Vec::new());
        }
        let kb_ids: Vec<String> = kbs.iter().map(ToString::to_string).collect();
        let doc_ids: Option<Vec<String>> =
            documents.map(|d| d.iter().map(ToString::to_string).collect());
        Ok(match &self.pool {
            Pool::Sqlite(_) => {
                return Err(crate::StoreError::Open(
                    "full-text search of chunks on SQLite is the embedded index (hearth-rag), not the store".into(),
                ))
            }
            Pool::Postgres(pool) => {
                let query = words.join(" | ");
                sqlx::query_as::<_, (i64, f64)>(
                    "SELECT c.seq, ts_rank_cd(c.tsv, q)::float8 AS score \
                     FROM kb_chunks c, to_tsquery('english', $1) q \
                     WHERE c.tsv @@ q AND c.kb_id = ANY($2) \
                       AND ($3::text[] IS NULL OR c.document_id = ANY($3)) \
                     ORDER BY score DESC, c.seq LIMIT $4",
                )
                .bind(query)
                .bind(&kb_ids)
                .bind(doc_ids.as_deref())
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        })
    }

    /// Chunks by key, with their document's name; keys that no longer exist are left out.
    pub async fn chunks_by_seq(&self, seqs: &[i64]) -> Result<Vec<StoredChunk>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match &self.pool {
            Pool::Sqlite(pool) => {
                let json = format!(
                    "[{}]",
                    seqs.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                );
                sqlx::query_as::<_, StoredChunk>(&format!(
                    "SELECT {CHUNK_COLUMNS} FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id \
                     WHERE c.seq IN (SELECT value FROM json_each($1))"
                ))
                .bind(json)
                .fetch_all(pool)
                .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as::<_, StoredChunk>(&format!(
                    "SELECT {CHUNK_COLUMNS} FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id \
                     WHERE c.seq = ANY($1)"
                ))
                .bind(seqs)
                .fetch_all(pool)
                .await?
            }
        })
    }

    /// A document's chunks in order.
    pub async fn document_chunks(&self, id: DocumentId) -> Result<Vec<StoredChunk>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, StoredChunk>(&format!(
                "SELECT {CHUNK_COLUMNS} FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id \
                 WHERE c.document_id = $1 ORDER BY c.position"
            ))
            .bind(id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Keys, documents, headings and texts of a knowledge base's chunks with a key above
    /// `after`, in key order (to build or catch up the full-text index in pages).
    pub async fn chunk_texts(
        &self,
        kb: KnowledgeBaseId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, DocumentId, String, String)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, DocumentId, String, String)>(
                "SELECT seq, document_id, headings, text FROM kb_chunks WHERE kb_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(kb)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Keys and embeddings of a knowledge base's chunks with a key above `after`, in key order
    /// (to build or catch up the vector index in pages).
    pub async fn chunk_vectors(
        &self,
        kb: KnowledgeBaseId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, Vec<u8>)>(
                "SELECT seq, embedding FROM kb_chunks WHERE kb_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(kb)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }
}

impl Store {
    /// Whether this database can hold pgvector columns: PostgreSQL with the `vector` extension
    /// installed or installable.
    pub async fn pgvector_available(&self) -> Result<bool> {
        Ok(match &self.pool {
            Pool::Sqlite(_) => false,
            Pool::Postgres(pool) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'vector'",
                )
                .fetch_one(pool)
                .await?
                    > 0
            }
        })
    }

    /// Installs pgvector and the `vector` column of chunks, then fills it for chunks stored
    /// without it (from their stored embeddings). Returns how many chunks were filled.
    pub async fn enable_pgvector(&self) -> Result<u64> {
        let Pool::Postgres(pool) = &self.pool else {
            return Err(crate::StoreError::Open("pgvector needs PostgreSQL".into()));
        };
        sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
            .execute(pool)
            .await?;
        sqlx::query("ALTER TABLE kb_chunks ADD COLUMN IF NOT EXISTS embedding_vec vector")
            .execute(pool)
            .await?;
        let mut filled = 0;
        loop {
            let page: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, embedding FROM kb_chunks WHERE embedding_vec IS NULL ORDER BY seq LIMIT 1000",
            )
            .fetch_all(pool)
            .await?;
            if page.is_empty() {
                return Ok(filled);
            }
            let mut tx = pool.begin().await?;
            for (seq, bytes) in &page {
                sqlx::query("UPDATE kb_chunks SET embedding_vec = $2::vector WHERE seq = $1")
                    .bind(seq)
                    .bind(vector_literal(bytes))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            filled += page.len() as u64;
        }
    }

    /// Creates the HNSW index (cosine) for vectors of `dimensions`, if missing. One partial
    /// index per vector length, as pgvector indexes need a fixed length. pgvector cannot index
    /// `vector`s longer than [`PGVECTOR_HNSW_MAX_DIMS`]: those are searched exactly, unindexed.
    pub async fn ensure_vector_index(&self, dimensions: i64) -> Result<()> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(());
        };
        if !(1..=PGVECTOR_HNSW_MAX_DIMS).contains(&dimensions) {
            return Ok(());
        }
        // `dimensions` is an integer, so formatting it into DDL is safe.
        sqlx::query(&format!(
            "CREATE INDEX IF NOT EXISTS kb_chunks_hnsw_{dimensions} ON kb_chunks \
             USING hnsw ((embedding_vec::vector({dimensions})) vector_cosine_ops) \
             WHERE vector_dims(embedding_vec) = {dimensions}"
        ))
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Vector search with pgvector: chunk keys and cosine similarity for the chunks of `kbs`
    /// (and `documents`, when given) nearest to `query`, best first.
    pub async fn search_chunks_vector(
        &self,
        kbs: &[KnowledgeBaseId],
        documents: Option<&[DocumentId]>,
        query: &[f32],
        limit: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(Vec::new());
        };
        if kbs.is_empty() || query.is_empty() {
            return Ok(Vec::new());
        }
        let dims = query.len();
        let literal = format!(
            "[{}]",
            query
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let kb_ids: Vec<String> = kbs.iter().map(ToString::to_string).collect();
        let doc_ids: Option<Vec<String>> =
            documents.map(|d| d.iter().map(ToString::to_string).collect());
        let mut tx = pool.begin().await?;
        // Filtered HNSW scans keep going until enough rows pass the filter (pgvector 0.8).
        sqlx::query("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL hnsw.ef_search = 128")
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(i64, f64)> = sqlx::query_as(&format!(
            "SELECT seq, 1 - (embedding_vec::vector({dims}) <=> $1::vector({dims})) AS score \
             FROM kb_chunks \
             WHERE vector_dims(embedding_vec) = {dims} AND kb_id = ANY($2) \
               AND ($3::text[] IS NULL OR document_id = ANY($3)) \
             ORDER BY embedding_vec::vector({dims}) <=> $1::vector({dims}) LIMIT $4"
        ))
        .bind(literal)
        .bind(&kb_ids)
        .bind(doc_ids.as_deref())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Longest vector pgvector's HNSW index takes (its `vector` type limit).
pub const PGVECTOR_HNSW_MAX_DIMS: i64 = 2000;

/// pgvector's text form of a little-endian f32 embedding: `[0.1,0.2,…]`.
fn vector_literal(bytes: &[u8]) -> String {
    let values: Vec<String> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string())
        .collect();
    format!("[{}]", values.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_count_reads_indexed_documents() {
        let clause = format!("d.status = '{}'", DocumentState::Indexed);
        assert!(KB_COLUMNS.contains(&clause), "{KB_COLUMNS}");
    }
}
