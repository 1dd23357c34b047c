//! Knowledge bases, documents (which double as the ingest queue) and chunks with their
//! full-text search on PostgreSQL (a generated `tsvector`; on SQLite the embedded index in
//! hearth-rag does it) and pgvector when the extension is there.

use crate::ids::{ChunkId, DocumentId, KnowledgeBaseId, UserId};
use crate::{on_pool, on_writer, Pool, Result, Store, Timestamp};

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
    /// `queued`, `parsing`, `embedding`, `indexed` or `failed`.
    pub status: String,
    /// Why it failed, for the user.
    pub error: Option<String>,
    /// Times a worker claimed it.
    pub attempts: i64,
    /// Until when the claiming worker owns it.
    pub lease_until: Option<Timestamp>,
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

/// What [`Store::recover_documents`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Put back in the queue.
    pub requeued: u64,
    /// Given up on: claimed too often.
    pub failed: u64,
}

const KB_COLUMNS: &str = "k.id, k.user_id, k.name, k.description, k.embedding_model, k.dimensions, \
    k.created_at, k.updated_at, \
    (SELECT COUNT(*) FROM kb_documents d WHERE d.kb_id = k.id) AS documents, \
    (SELECT CAST(COALESCE(SUM(d.chunks), 0) AS BIGINT) FROM kb_documents d WHERE d.kb_id = k.id AND d.status = 'indexed') AS chunks";

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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8) \
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
                 CAST(COALESCE(SUM(CASE WHEN d.status = 'queued' THEN 1 ELSE 0 END), 0) AS BIGINT) AS queued \
                 FROM kb_documents d JOIN knowledge_bases k ON k.id = d.kb_id WHERE k.user_id = $1",
            )
            .bind(user)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Claims a queued document for a worker until `lease_until`: its status becomes `parsing`
    /// and its attempts grow by one. Owners take turns (`ingest_turns`): the claim goes to the
    /// oldest queued document of the owner served longest ago (or never), so queues of different
    /// users interleave. Two workers never claim the same document.
    pub async fn claim_document(&self, lease_until: Timestamp) -> Result<Option<Document>> {
        let now = Timestamp::now();
        const NEXT: &str = "SELECT d.id, k.user_id FROM kb_documents d \
             JOIN knowledge_bases k ON k.id = d.kb_id \
             LEFT JOIN ingest_turns t ON t.user_id = k.user_id \
             WHERE d.status = 'queued' \
             ORDER BY COALESCE(t.served_at, 0), d.created_at, d.id LIMIT 1";
        const CLAIM: &str = "UPDATE kb_documents SET status = 'parsing', attempts = attempts + 1, \
             lease_until = $1, error = NULL, updated_at = $2 WHERE id = $3 RETURNING *";
        // A counter, not a clock: claims within one millisecond still take turns.
        const TURN: &str = "INSERT INTO ingest_turns (user_id, served_at) \
             VALUES ($1, (SELECT COALESCE(MAX(served_at), 0) + 1 FROM ingest_turns)) \
             ON CONFLICT (user_id) DO UPDATE SET served_at = excluded.served_at";
        macro_rules! claim {
            ($pool:expr, $next:expr) => {{
                let mut tx = $pool.begin().await?;
                let next: Option<(DocumentId, UserId)> =
                    sqlx::query_as($next).fetch_optional(&mut *tx).await?;
                let Some((id, owner)) = next else {
                    return Ok(None);
                };
                let doc = sqlx::query_as::<_, Document>(CLAIM)
                    .bind(lease_until)
                    .bind(now)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(TURN).bind(owner).execute(&mut *tx).await?;
                tx.commit().await?;
                Some(doc)
            }};
        }
        Ok(match &self.pool {
            // SQLite has one writer at a time, so the pick and the update are atomic.
            Pool::Sqlite(readers) => claim!(self.writer.as_ref().unwrap_or(readers), NEXT),
            Pool::Postgres(pool) => {
                claim!(pool, &format!("{NEXT} FOR UPDATE OF d SKIP LOCKED"))
            }
        })
    }

    /// Moves a claimed document to `status` (`parsing` or `embedding`) and renews its lease.
    /// False when the document is gone or no longer in progress (deleted, or recovered).
    pub async fn advance_document(
        &self,
        id: DocumentId,
        status: &str,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = $2, lease_until = $3, updated_at = $4 \
                 WHERE id = $1 AND status IN ('parsing', 'embedding')",
            )
            .bind(id)
            .bind(status)
            .bind(lease_until)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Marks a document failed with a reason for the user.
    pub async fn fail_document(&self, id: DocumentId, reason: &str) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = 'failed', error = $2, lease_until = NULL, \
                 updated_at = $3 WHERE id = $1 AND status IN ('parsing', 'embedding')",
            )
            .bind(id)
            .bind(reason)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Puts a failed or indexed document back in the queue (its chunks are replaced when it is
    /// indexed again); `None` when it is not failed or indexed.
    pub async fn requeue_document(&self, id: DocumentId) -> Result<Option<Document>> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Document>(
                "UPDATE kb_documents SET status = 'queued', error = NULL, attempts = 0, \
                 lease_until = NULL, updated_at = $2 WHERE id = $1 AND status IN ('failed', 'indexed') \
                 RETURNING *",
            )
            .bind(id)
            .bind(Timestamp::now())
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Writes a document's chunks and marks it indexed, in one transaction (replacing chunks it
    /// had). Returns the new chunks' keys in order, or `None` when the document is no longer in
    /// progress (deleted, or taken back by recovery) and nothing was written.
    /// With `pgvector` (see [`Store::enable_pgvector`]) each embedding is also written to the
    /// `vector` column its HNSW index covers.
    pub async fn commit_chunks(
        &self,
        id: DocumentId,
        pages: Option<i64>,
        chunks: &[NewChunk],
        pgvector: bool,
    ) -> Result<Option<Vec<i64>>> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let kb: Option<KnowledgeBaseId> = sqlx::query_scalar(
                "UPDATE kb_documents SET status = 'indexed', error = NULL, lease_until = NULL, \
                 pages = $2, chunks = $3, indexed_at = $4, updated_at = $4 \
                 WHERE id = $1 AND status IN ('parsing', 'embedding') RETURNING kb_id",
            )
            .bind(id)
            .bind(pages)
            .bind(i64::try_from(chunks.len()).unwrap_or(i64::MAX))
            .bind(now)
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

    /// Takes back documents whose worker stopped (lease expired, or every lease when `all`,
    /// which a single embedded process uses at start). One that was being parsed fails: the
    /// parser may be what stopped the worker, and running it again at every start would loop;
    /// retrying it is the user's explicit act. One that was being embedded goes back to the
    /// queue, or fails once it has been claimed `max_attempts` times.
    pub async fn recover_documents(&self, all: bool, max_attempts: i64) -> Result<Recovered> {
        let now = Timestamp::now();
        let expired = if all {
            Timestamp::from_millis(i64::MAX)
        } else {
            now
        };
        let crashed = "the server stopped while reading this file (it may have crashed the \
                       parser); retry to read it again";
        let reason = format!(
            "ingest was interrupted {max_attempts} times (the server stopped while processing it)"
        );
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut failed = sqlx::query(
                "UPDATE kb_documents SET status = 'failed', error = $2, lease_until = NULL, updated_at = $3 \
                 WHERE status = 'parsing' AND (lease_until IS NULL OR lease_until < $1)",
            )
            .bind(expired)
            .bind(crashed)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            failed += sqlx::query(
                "UPDATE kb_documents SET status = 'failed', error = $3, lease_until = NULL, updated_at = $4 \
                 WHERE status = 'embedding' AND (lease_until IS NULL OR lease_until < $1) \
                 AND attempts >= $2",
            )
            .bind(expired)
            .bind(max_attempts)
            .bind(&reason)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let requeued = sqlx::query(
                "UPDATE kb_documents SET status = 'queued', lease_until = NULL, updated_at = $2 \
                 WHERE status = 'embedding' AND (lease_until IS NULL OR lease_until < $1)",
            )
            .bind(expired)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(Recovered { requeued, failed })
        })
    }

    /// Puts a document a worker holds back in the queue without counting the claim, when the
    /// worker stops for a shutdown (so the next start does not take it for a crash). False when
    /// it was no longer in progress.
    pub async fn release_document(&self, id: DocumentId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE kb_documents SET status = 'queued', lease_until = NULL, updated_at = $2, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $1 AND status IN ('parsing', 'embedding')",
            )
            .bind(id)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
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
