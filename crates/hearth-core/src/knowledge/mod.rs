//! Knowledge bases: documents uploaded into them, ingested in the background (parse → chunk →
//! embed → index), and hybrid search over them (full-text and vector rankings fused by
//! reciprocal rank). Originals are kept under the data dir; every other piece of state lives in
//! the store, and the vector index is derived from the store's embeddings.

mod ingest;
mod parser;
mod search;
mod staging;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use hearth_rag::text::{TextEntry, TextIndex, TextIndexes};
use hearth_rag::vectors::{VectorIndex, VectorIndexes};
use hearth_rag::Format;
use hearth_store::ids::{DocumentId, KnowledgeBaseId};
use hearth_store::{Inserted, NewDocument, NewKnowledgeBase, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::access::{self, Area, Owned, Principal};
use crate::embeddings::Embeddings;
use crate::error::{CoreError, Result};

pub use hearth_api::knowledge::{
    CreateKnowledgeBase, DocumentStatus, DocumentView, ExportToKnowledge, Fusion, Hit,
    KnowledgeBaseView, Progress, RejectedFile, SearchMode, SearchRequest, SearchResults,
    UpdateKnowledgeBase, UploadResult,
};
pub use ingest::{ingest_job, Reconciled, INGEST_JOB};
pub use parser::ParserMode;
pub use staging::{StagedFile, Stager};

/// Knowledge settings (`[knowledge]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Largest chunk, in tokens.
    pub chunk_tokens: usize,
    /// Tokens a chunk repeats from the end of the one before, when a section is split.
    pub chunk_overlap: usize,
    /// Largest file accepted, in bytes (larger uploads get 413 while streaming).
    pub max_file_bytes: u64,
    /// Most files in one upload.
    pub max_files_per_upload: usize,
    /// Embedder new knowledge bases use; empty = the first built-in embedder.
    pub embedding_model: String,
    /// Texts per embedding call while ingesting.
    pub embed_batch: usize,
    /// Documents ingested at the same time by this process.
    pub workers: usize,
    /// Weight of the full-text ranking in hybrid search.
    pub bm25_weight: f64,
    /// Weight of the vector ranking in hybrid search.
    pub vector_weight: f64,
    /// How hybrid search fuses its two rankings.
    pub fusion: Fusion,
    /// Reciprocal rank fusion constant.
    pub rrf_k: f64,
    /// Passages retrieved into the prompt of a conversation with knowledge bases attached.
    pub chat_top_k: usize,
    /// Where chunk vectors are searched: `auto` (pgvector when the PostgreSQL store has it,
    /// else embedded), `embedded` (HNSW files in the data dir) or `pgvector` (required).
    pub vector_index: VectorIndexMode,
    /// Where files are read: `process` (a child process per document, under the memory and
    /// CPU limits below) or `in_process` (the server's own threads; budgets only).
    pub parser: ParserMode,
    /// The program run as `PROGRAM parse-worker` for `parser = "process"`; empty = the running
    /// `hearth` binary itself.
    pub parser_program: PathBuf,
    /// Address space a parser process may use, in MiB.
    pub parser_memory_mib: u64,
    /// CPU time a parser process may use, in seconds.
    pub parser_cpu_secs: u64,
    /// Most bytes of text extracted from one file.
    pub max_text_bytes: usize,
    /// Most blocks (paragraphs, rows, records, list items) in one file.
    pub max_blocks: usize,
    /// Deepest element nesting read (HTML, DOCX).
    pub max_depth: usize,
    /// Most bytes inflated out of one file's compressed parts (DOCX entries, PDF streams).
    pub max_unpacked_bytes: u64,
    /// Most pages read from a PDF.
    pub max_pages: u32,
    /// Most documents one user keeps across their knowledge bases (413 past it).
    pub max_documents_per_user: u64,
    /// Most bytes of uploaded files one user keeps (413 past it).
    pub max_bytes_per_user: u64,
    /// Most documents of one user waiting to be ingested (429 past it): the queue is shared,
    /// and turns between users keep it fair, but not free.
    pub max_queued_per_user: u64,
    /// Knowledge-base indexes (of each kind: full-text, vector) kept open at once; past it the
    /// least recently used idle one is closed (and reopened from its files when searched).
    pub max_open_indexes: usize,
}

/// Parses a request's `fusion` field.
pub fn parse_fusion(s: &str) -> Result<Fusion> {
    match s {
        "rrf" => Ok(Fusion::Rrf),
        "convex" => Ok(Fusion::Convex),
        _ => Err(CoreError::invalid(
            "fusion",
            format!("`{s}` is not a fusion method; use rrf or convex"),
        )),
    }
}

/// See [`KnowledgeSettings::vector_index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorIndexMode {
    #[default]
    Auto,
    Embedded,
    Pgvector,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        let parse = hearth_rag::ParseLimits::default();
        Self {
            chunk_tokens: 200,
            chunk_overlap: 32,
            max_file_bytes: 50 * 1024 * 1024,
            max_files_per_upload: 100,
            embedding_model: String::new(),
            embed_batch: 32,
            workers: 1,
            bm25_weight: 1.0,
            vector_weight: 1.0,
            fusion: Fusion::Convex,
            rrf_k: 60.0,
            chat_top_k: 5,
            vector_index: VectorIndexMode::Auto,
            parser: ParserMode::Process,
            parser_program: PathBuf::new(),
            parser_memory_mib: 1024,
            parser_cpu_secs: 60,
            max_text_bytes: parse.max_text_bytes,
            max_blocks: parse.max_blocks,
            max_depth: parse.max_depth,
            max_unpacked_bytes: parse.max_unpacked_bytes,
            max_pages: parse.max_pages,
            max_documents_per_user: 10_000,
            max_bytes_per_user: 10 * 1024 * 1024 * 1024,
            max_queued_per_user: 1_000,
            max_open_indexes: hearth_rag::DEFAULT_MAX_OPEN,
        }
    }
}

impl KnowledgeSettings {
    /// Checks values; the error names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.chunking().validate()?;
        let positive = |key: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("knowledge.{key} must be greater than 0"))
            }
        };
        positive("max_file_bytes", self.max_file_bytes > 0)?;
        positive("max_files_per_upload", self.max_files_per_upload > 0)?;
        positive("embed_batch", self.embed_batch > 0)?;
        positive("workers", self.workers > 0)?;
        positive("rrf_k", self.rrf_k > 0.0)?;
        positive("max_text_bytes", self.max_text_bytes > 0)?;
        positive("max_blocks", self.max_blocks > 0)?;
        positive("max_depth", self.max_depth > 0)?;
        positive("max_unpacked_bytes", self.max_unpacked_bytes > 0)?;
        positive("max_pages", self.max_pages > 0)?;
        positive("max_documents_per_user", self.max_documents_per_user > 0)?;
        positive("max_bytes_per_user", self.max_bytes_per_user > 0)?;
        positive("max_queued_per_user", self.max_queued_per_user > 0)?;
        positive("max_open_indexes", self.max_open_indexes > 0)?;
        // A parse may take 2 x cpu + 10 s of wall time: bounded, so a stuck parser cannot hold
        // an ingest slot for long.
        if !(1..=140).contains(&self.parser_cpu_secs) {
            return Err("knowledge.parser_cpu_secs must be between 1 and 140".into());
        }
        // The child maps the whole binary before it reads a byte.
        if self.parser_memory_mib < 128 {
            return Err("knowledge.parser_memory_mib must be at least 128".into());
        }
        if !(1..=search::MAX_TOP_K).contains(&self.chat_top_k) {
            return Err(format!(
                "knowledge.chat_top_k must be between 1 and {}",
                search::MAX_TOP_K
            ));
        }
        for (key, w) in [
            ("bm25_weight", self.bm25_weight),
            ("vector_weight", self.vector_weight),
        ] {
            if !(w.is_finite() && (0.0..=search::MAX_WEIGHT).contains(&w)) {
                return Err(format!(
                    "knowledge.{key} must be between 0 and {}",
                    search::MAX_WEIGHT
                ));
            }
        }
        if self.bm25_weight == 0.0 && self.vector_weight == 0.0 {
            return Err(
                "knowledge.bm25_weight and knowledge.vector_weight cannot both be 0".into(),
            );
        }
        Ok(())
    }

    fn parse_limits(&self) -> hearth_rag::ParseLimits {
        hearth_rag::ParseLimits {
            max_unpacked_bytes: self.max_unpacked_bytes,
            max_pages: self.max_pages,
            max_text_bytes: self.max_text_bytes,
            max_blocks: self.max_blocks,
            max_depth: self.max_depth,
        }
    }

    fn chunking(&self) -> hearth_rag::ChunkSettings {
        hearth_rag::ChunkSettings {
            max_tokens: self.chunk_tokens,
            overlap_tokens: self.chunk_overlap,
        }
    }
}

/// A file name for a document made from a title: path separators and control characters
/// replaced, at most 100 characters, ending in `.md`.
pub fn markdown_file_name(title: &str) -> String {
    let base: String = title
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .take(100)
        .collect();
    let base = base.trim();
    if base.is_empty() {
        "conversation.md".into()
    } else {
        format!("{base}.md")
    }
}

/// A document's progress, published while it is ingested.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DocumentEvent {
    /// Whose document it is (not sent to clients: it routes the event).
    #[serde(skip)]
    pub user_id: hearth_store::ids::UserId,
    pub document: DocumentView,
    /// Chunks embedded so far, while embedding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// A stored knowledge base as the API shows it.
pub fn kb_view(kb: hearth_store::KnowledgeBase) -> KnowledgeBaseView {
    KnowledgeBaseView {
        id: kb.id,
        name: kb.name,
        description: kb.description,
        embedding_model: kb.embedding_model,
        dimensions: kb.dimensions,
        documents: kb.documents,
        chunks: kb.chunks,
        created_at: kb.created_at.to_datetime(),
        updated_at: kb.updated_at.to_datetime(),
    }
}

/// A stored document state as the API shows it.
pub fn doc_status(s: hearth_store::DocumentState) -> DocumentStatus {
    use hearth_store::DocumentState as S;
    match s {
        S::Queued => DocumentStatus::Queued,
        S::Parsing => DocumentStatus::Parsing,
        S::Embedding => DocumentStatus::Embedding,
        S::Indexed => DocumentStatus::Indexed,
        S::Failed => DocumentStatus::Failed,
    }
}

/// A stored document as the API shows it.
pub fn doc_view(d: hearth_store::Document) -> DocumentView {
    DocumentView {
        id: d.id,
        knowledge_base_id: d.kb_id,
        name: d.name,
        format: d.format,
        size_bytes: d.size_bytes,
        content_hash: d.content_hash,
        status: doc_status(d.status),
        error: d.error,
        pages: d.pages,
        chunks: d.chunks,
        metadata: serde_json::from_str(&d.metadata).unwrap_or_default(),
        duplicate: false,
        created_at: d.created_at.to_datetime(),
        updated_at: d.updated_at.to_datetime(),
        indexed_at: d.indexed_at.map(|t| t.to_datetime()),
    }
}

impl Owned for hearth_store::KnowledgeBase {
    fn owner(&self) -> hearth_store::ids::UserId {
        self.user_id
    }
    const KIND: &'static str = "knowledge base";
}

/// Longest knowledge base name.
const MAX_NAME: usize = 200;
/// Longest description.
const MAX_DESCRIPTION: usize = 2000;
/// Longest metadata JSON attached to a document.
const MAX_METADATA: usize = 8 * 1024;
/// Most knowledge bases attached to one conversation.
const MAX_ATTACHED: usize = 20;

/// The knowledge service. Cheap to clone.
#[derive(Clone)]
pub struct Knowledge(Arc<Inner>);

struct Inner {
    store: Store,
    /// Reads uploaded files into chunks (in a child process by default).
    parser: parser::Parser,
    embeddings: Embeddings,
    settings: KnowledgeSettings,
    /// Originals, one file per document, named by its id.
    files: PathBuf,
    vectors: VectorIndexes,
    /// Full-text indexes, when the store is SQLite (PostgreSQL searches its own tsvector).
    texts: Option<TextIndexes>,
    /// Knowledge bases whose vector index was caught up with the store in this process.
    caught_up: tokio::sync::Mutex<HashSet<KnowledgeBaseId>>,
    /// Knowledge bases whose full-text index was caught up with the store in this process.
    text_caught_up: tokio::sync::Mutex<HashSet<KnowledgeBaseId>>,
    events: broadcast::Sender<DocumentEvent>,
    /// Where ingest jobs go.
    queue: hearth_jobs::Queue,
    /// Vectors live in PostgreSQL (pgvector) rather than in the embedded index.
    pgvector: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("files", &self.0.files)
            .finish_non_exhaustive()
    }
}

impl Knowledge {
    /// The service, keeping originals and vector indexes under `dir` and queueing ingest jobs
    /// on `queue` (a worker pool runs them with [`Knowledge::ingest_handler`]).
    pub fn new(
        store: Store,
        embeddings: Embeddings,
        settings: KnowledgeSettings,
        dir: PathBuf,
        queue: hearth_jobs::Queue,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        let vectors = VectorIndexes::with_max_open(dir.join("vectors"), settings.max_open_indexes);
        let texts = (store.backend() == hearth_store::Backend::Sqlite)
            .then(|| TextIndexes::with_max_open(dir.join("text"), settings.max_open_indexes));
        let program = match settings.parser_program.as_os_str().is_empty() {
            // The running binary serves `parse-worker` (hearth's main does).
            true => std::env::current_exe().unwrap_or_else(|_| PathBuf::from("hearth")),
            false => settings.parser_program.clone(),
        };
        let parser = parser::Parser {
            mode: settings.parser,
            program,
            limits: settings.parse_limits(),
            chunking: settings.chunking(),
            memory_bytes: settings.parser_memory_mib.saturating_mul(1024 * 1024),
            cpu_secs: settings.parser_cpu_secs,
        };
        Self(Arc::new(Inner {
            texts,
            parser,
            text_caught_up: tokio::sync::Mutex::new(HashSet::new()),
            store,
            embeddings,
            settings,
            files: dir.join("files"),
            vectors,
            caught_up: tokio::sync::Mutex::new(HashSet::new()),
            events,
            queue,
            pgvector: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Picks where vectors are searched (`knowledge.vector_index`); call once at start.
    /// Returns true when that is pgvector.
    pub async fn choose_vector_index(&self) -> Result<bool> {
        let store = &self.0.store;
        let use_pgvector = match self.0.settings.vector_index {
            VectorIndexMode::Embedded => false,
            VectorIndexMode::Auto => store.pgvector_available().await?,
            VectorIndexMode::Pgvector => {
                if !store.pgvector_available().await? {
                    return Err(CoreError::invalid(
                        "knowledge.vector_index",
                        "is `pgvector`, but the database is not PostgreSQL with the `vector` extension available",
                    ));
                }
                true
            }
        };
        if use_pgvector {
            let filled = store.enable_pgvector().await?;
            if filled > 0 {
                tracing::info!(filled, "copied stored embeddings into pgvector");
            }
            let mut dims: Vec<i64> = store
                .list_knowledge_bases(None)
                .await?
                .into_iter()
                .map(|kb| kb.dimensions)
                .collect();
            dims.sort_unstable();
            dims.dedup();
            for d in dims {
                store.ensure_vector_index(d).await?;
            }
        } else if store.backend() == hearth_store::Backend::Postgres {
            tracing::warn!(
                "PostgreSQL without pgvector: knowledge vectors are indexed in this instance's data dir, \
                 which other instances do not share"
            );
        }
        self.0
            .pgvector
            .store(use_pgvector, std::sync::atomic::Ordering::Release);
        Ok(use_pgvector)
    }

    fn on_pgvector(&self) -> bool {
        self.0.pgvector.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The settings in force.
    pub fn settings(&self) -> &KnowledgeSettings {
        &self.0.settings
    }

    /// Document progress events of every user; subscribers filter by `user_id`.
    pub fn subscribe(&self) -> broadcast::Receiver<DocumentEvent> {
        self.0.events.subscribe()
    }

    fn publish(
        &self,
        user_id: hearth_store::ids::UserId,
        document: DocumentView,
        progress: Option<Progress>,
    ) {
        // No subscriber is fine: progress is also in the store.
        let _ = self.0.events.send(DocumentEvent {
            user_id,
            document,
            progress,
        });
    }

    /// Creates a knowledge base.
    pub async fn create(
        &self,
        principal: &Principal,
        req: CreateKnowledgeBase,
    ) -> Result<KnowledgeBaseView> {
        let name = clean_name(&req.name)?;
        let description = clean_description(req.description.as_deref().unwrap_or(""))?;
        let model = match req.embedding_model.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => self.default_embedder()?,
        };
        let (model, dimensions) = self
            .0
            .embeddings
            .dimensions(principal.user_id(), &model)
            .await
            .map_err(|e| match e {
                CoreError::ModelNotFound(_) => CoreError::invalid(
                    "embedding_model",
                    format!("no embedding model `{model}` is loaded or enabled"),
                ),
                CoreError::InvalidInput { reason, .. } => {
                    CoreError::invalid("embedding_model", reason)
                }
                CoreError::Upstream(message) => CoreError::invalid(
                    "embedding_model",
                    format!("`{model}` could not be asked for its vector length: {message}"),
                ),
                e => e,
            })?;
        let dimensions = i64::try_from(dimensions).unwrap_or(i64::MAX);
        // The index first: a knowledge base is not created when its vectors cannot be indexed.
        if self.on_pgvector() {
            self.0.store.ensure_vector_index(dimensions).await?;
        }
        let kb = self
            .0
            .store
            .create_knowledge_base(NewKnowledgeBase {
                user_id: principal.user_id(),
                name,
                description,
                embedding_model: model,
                dimensions,
            })
            .await
            .map_err(name_conflict)?;
        Ok(kb_view(kb))
    }

    fn default_embedder(&self) -> Result<String> {
        let configured = self.0.settings.embedding_model.trim();
        if !configured.is_empty() {
            return Ok(configured.to_owned());
        }
        self.0
            .embeddings
            .list()
            .into_iter()
            .next()
            .map(|(name, _)| name)
            .ok_or_else(|| {
                CoreError::invalid(
                    "embedding_model",
                    "no embedding model is loaded: fetch the built-in models (scripts/fetch-models.sh) into the models folder",
                )
            })
    }

    /// The caller's knowledge bases.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<KnowledgeBaseView>> {
        let kbs = self
            .0
            .store
            .list_knowledge_bases(Some(access::list_scope(principal)))
            .await?;
        Ok(kbs.into_iter().map(kb_view).collect())
    }

    /// One of the caller's knowledge bases.
    pub async fn get(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
    ) -> Result<KnowledgeBaseView> {
        Ok(kb_view(self.owned_kb(principal, id).await?))
    }

    async fn owned_kb(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
    ) -> Result<hearth_store::KnowledgeBase> {
        access::owned(principal, self.0.store.find_knowledge_base(id).await?)
    }

    /// Checks that the caller owns every knowledge base in `ids` (404 otherwise); returns them
    /// without repeats, in order.
    pub async fn owned_ids(
        &self,
        principal: &Principal,
        ids: &[KnowledgeBaseId],
    ) -> Result<Vec<KnowledgeBaseId>> {
        // Attaching knowledge to a conversation reads it: an API key needs its scope (detaching
        // all of it, `[]`, does not).
        if !ids.is_empty() {
            principal.may(Area::Knowledge, true)?;
        }
        if ids.len() > MAX_ATTACHED {
            return Err(CoreError::invalid(
                "knowledge_base_ids",
                format!("holds more than {MAX_ATTACHED} knowledge bases"),
            ));
        }
        let mut out: Vec<KnowledgeBaseId> = Vec::with_capacity(ids.len());
        for id in ids {
            if !out.contains(id) {
                self.owned_kb(principal, *id).await?;
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// Adds a text document (an exported conversation, a note) to a knowledge base, as if
    /// uploaded as a file called `name`.
    pub async fn add_text(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        name: &str,
        text: &str,
    ) -> Result<UploadResult> {
        self.owned_kb(principal, id).await?;
        let mut stager = self.stage(name).await?;
        stager.write(text.as_bytes()).await?;
        let file = stager.finish().await?;
        self.add_documents(principal, id, vec![file], None).await
    }

    /// Renames a knowledge base or changes its description.
    pub async fn update(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        req: UpdateKnowledgeBase,
    ) -> Result<KnowledgeBaseView> {
        self.owned_kb(principal, id).await?;
        let name = req.name.as_deref().map(clean_name).transpose()?;
        let description = req
            .description
            .as_deref()
            .map(clean_description)
            .transpose()?;
        let kb = self
            .0
            .store
            .update_knowledge_base(id, name.as_deref(), description.as_deref())
            .await
            .map_err(name_conflict)?
            .ok_or(CoreError::NotFound("knowledge base"))?;
        Ok(kb_view(kb))
    }

    /// Deletes a knowledge base with its documents, originals and index.
    pub async fn delete(&self, principal: &Principal, id: KnowledgeBaseId) -> Result<()> {
        self.owned_kb(principal, id).await?;
        let documents = self.0.store.list_documents(id).await?;
        if !self.0.store.delete_knowledge_base(id).await? {
            return Err(CoreError::NotFound("knowledge base"));
        }
        for doc in documents {
            self.remove_original(doc.id).await;
        }
        self.0.caught_up.lock().await.remove(&id);
        if let Err(e) = self.0.vectors.remove(&id.to_string()) {
            tracing::warn!(error = %e, "could not delete a knowledge base's vector index files");
        }
        self.0.text_caught_up.lock().await.remove(&id);
        if let Some(texts) = &self.0.texts {
            if let Err(e) = texts.remove(&id.to_string()) {
                tracing::warn!(error = %e, "could not delete a knowledge base's full-text index");
            }
        }
        Ok(())
    }

    /// Starts receiving one uploaded file: the caller writes its bytes, then hands the
    /// finished file to [`Knowledge::add_documents`].
    pub async fn stage(&self, name: &str) -> Result<Stager> {
        Stager::create(&self.0.files, name, self.0.settings.max_file_bytes).await
    }

    /// Refuses an upload that would take `user` past their share: documents and bytes kept
    /// (413), or documents waiting in the ingest queue (429). Counted before the upload, so a
    /// burst of concurrent uploads can pass a limit by at most those uploads.
    async fn check_room(
        &self,
        user: hearth_store::ids::UserId,
        files: &[StagedFile],
    ) -> Result<()> {
        let settings = &self.0.settings;
        let totals = self.0.store.user_document_totals(user).await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let adding = files.len() as u64;
        let bytes: u64 = files.iter().map(StagedFile::size).sum();
        if count(totals.documents) + adding > settings.max_documents_per_user {
            return Err(CoreError::TooLarge {
                field: "files".into(),
                message: format!(
                    "would take you past {} documents (knowledge.max_documents_per_user); delete some first",
                    settings.max_documents_per_user
                ),
            });
        }
        if count(totals.bytes) + bytes > settings.max_bytes_per_user {
            return Err(CoreError::TooLarge {
                field: "files".into(),
                message: format!(
                    "would take you past {} bytes of documents (knowledge.max_bytes_per_user); delete some first",
                    settings.max_bytes_per_user
                ),
            });
        }
        Self::queue_room(settings, totals, adding)
    }

    /// Refuses `adding` more queued documents past `user`'s share of the queue (429).
    async fn check_queue(&self, user: hearth_store::ids::UserId, adding: u64) -> Result<()> {
        let totals = self.0.store.user_document_totals(user).await?;
        Self::queue_room(&self.0.settings, totals, adding)
    }

    fn queue_room(
        settings: &KnowledgeSettings,
        totals: hearth_store::DocumentTotals,
        adding: u64,
    ) -> Result<()> {
        let queued = u64::try_from(totals.queued).unwrap_or(0);
        if queued + adding > settings.max_queued_per_user {
            return Err(CoreError::QuotaExceeded {
                message: format!(
                    "you have {queued} documents waiting to be read, and at most {} may wait \
                     (knowledge.max_queued_per_user); add more when they are done",
                    settings.max_queued_per_user
                ),
                retry_after_secs: 60,
            });
        }
        Ok(())
    }

    /// Queues uploaded files as documents of a knowledge base. Files of a type no parser reads
    /// are rejected; content the knowledge base already holds returns the existing document.
    pub async fn add_documents(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        files: Vec<StagedFile>,
        metadata: Option<serde_json::Value>,
    ) -> Result<UploadResult> {
        let kb = self.owned_kb(principal, id).await?;
        if files.is_empty() {
            return Err(CoreError::invalid("files", "attach at least one file"));
        }
        if files.len() > self.0.settings.max_files_per_upload {
            return Err(CoreError::TooLarge {
                field: "files".into(),
                message: format!(
                    "holds {} files; at most {} per upload",
                    files.len(),
                    self.0.settings.max_files_per_upload
                ),
            });
        }
        let metadata = match metadata {
            None => "{}".to_owned(),
            Some(serde_json::Value::Object(map)) => {
                let text = serde_json::Value::Object(map).to_string();
                if text.len() > MAX_METADATA {
                    return Err(CoreError::TooLarge {
                        field: "metadata".into(),
                        message: format!("is longer than {MAX_METADATA} bytes"),
                    });
                }
                text
            }
            Some(_) => return Err(CoreError::invalid("metadata", "must be a JSON object")),
        };
        self.check_room(kb.user_id, &files).await?;
        let mut result = UploadResult {
            documents: Vec::new(),
            rejected: Vec::new(),
        };
        for file in files {
            let Some(format) = Format::from_file_name(file.name()) else {
                result.rejected.push(RejectedFile {
                    name: file.name().to_owned(),
                    code: "unsupported_format".into(),
                    message: format!(
                        "{}: unsupported file type; Hearth reads .txt, .md, .html, .pdf, .docx, .csv and .json",
                        file.name()
                    ),
                });
                continue;
            };
            let doc_id = DocumentId::new();
            let inserted = self
                .0
                .store
                .insert_document(NewDocument {
                    id: doc_id,
                    kb_id: kb.id,
                    name: file.name().to_owned(),
                    format: format.as_str().to_owned(),
                    size_bytes: i64::try_from(file.size()).unwrap_or(i64::MAX),
                    content_hash: file.sha256().to_owned(),
                    metadata: metadata.clone(),
                })
                .await?;
            match inserted {
                Inserted::New(doc) => {
                    if let Err(e) = file.persist(&self.original(doc.id)).await {
                        // Without its original the document cannot be ingested: take it back.
                        let _ = self.0.store.delete_document(doc.id).await;
                        return Err(e);
                    }
                    self.enqueue_ingest(&doc, kb.user_id).await;
                    let view = doc_view(doc);
                    self.publish(principal.user_id(), view.clone(), None);
                    result.documents.push(view);
                }
                Inserted::Duplicate(existing) => {
                    let mut view = doc_view(existing);
                    view.duplicate = true;
                    result.documents.push(view);
                }
            }
        }
        Ok(result)
    }

    /// A knowledge base's documents.
    pub async fn documents(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
    ) -> Result<Vec<DocumentView>> {
        self.owned_kb(principal, id).await?;
        let docs = self.0.store.list_documents(id).await?;
        Ok(docs.into_iter().map(doc_view).collect())
    }

    /// One document of a knowledge base.
    pub async fn document(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<DocumentView> {
        Ok(doc_view(self.owned_document(principal, id, doc).await?.1))
    }

    /// The caller's knowledge base and one of its documents.
    async fn owned_document(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<(hearth_store::KnowledgeBase, hearth_store::Document)> {
        let kb = self.owned_kb(principal, id).await?;
        match self.0.store.find_document(doc).await? {
            Some(d) if d.kb_id == id => Ok((kb, d)),
            _ => Err(CoreError::NotFound("document")),
        }
    }

    /// Deletes a document everywhere: its chunks (text index included), its vectors and its
    /// original.
    pub async fn delete_document(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<()> {
        let (kb, _) = self.owned_document(principal, id, doc).await?;
        let seqs = self
            .0
            .store
            .delete_document(doc)
            .await?
            .ok_or(CoreError::NotFound("document"))?;
        if !self.on_pgvector() {
            let index = self.vectors(&kb).await?;
            index.remove(&seqs).map_err(other)?;
        }
        if let Some(text) = self.text_index(&kb).await? {
            tokio::task::spawn_blocking(move || text.remove(&seqs))
                .await
                .map_err(other)?
                .map_err(other)?;
        }
        self.remove_original(doc).await;
        Ok(())
    }

    /// Queues a failed (or indexed) document again.
    pub async fn retry_document(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<DocumentView> {
        let kb = self.owned_kb(principal, id).await?;
        self.owned_document(principal, id, doc).await?;
        // A retry queues like an upload: within the owner's share of the queue.
        self.check_queue(kb.user_id, 1).await?;
        let Some(queued) = self.0.store.requeue_document(doc).await? else {
            return Err(CoreError::Conflict {
                field: None,
                message: "only a failed or indexed document can be ingested again".into(),
            });
        };
        self.enqueue_ingest(&queued, kb.user_id).await;
        let view = doc_view(queued);
        self.publish(principal.user_id(), view.clone(), None);
        Ok(view)
    }

    /// Saves vector indexes changed since their last save.
    pub async fn save_indexes(&self) -> Result<usize> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.0.vectors.save_changed())
            .await
            .map_err(other)?
            .map_err(other)
    }

    fn original(&self, doc: DocumentId) -> PathBuf {
        self.0.files.join(doc.to_string())
    }

    async fn remove_original(&self, doc: DocumentId) {
        match tokio::fs::remove_file(self.original(doc)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(document = %doc, error = %e, "could not delete a document's original")
            }
        }
    }

    /// The knowledge base's full-text index (`None` on PostgreSQL, which searches its own),
    /// caught up with the store the first time this process uses it.
    async fn text_index(&self, kb: &hearth_store::KnowledgeBase) -> Result<Option<Arc<TextIndex>>> {
        if self.0.texts.is_none() {
            return Ok(None);
        }
        let mut caught_up = self.0.text_caught_up.lock().await;
        let this = self.clone();
        let name = kb.id.to_string();
        let opened = tokio::task::spawn_blocking(move || match &this.0.texts {
            Some(texts) => texts.open_fresh(&name).map(Some),
            None => Ok(None),
        })
        .await
        .map_err(other)?
        .map_err(other)?;
        let Some((index, fresh)) = opened else {
            return Ok(None);
        };
        // Loaded from its files just now (first use, or closed as least recently used): what
        // was committed since its last save is added again.
        if fresh {
            caught_up.remove(&kb.id);
        }
        if caught_up.contains(&kb.id) {
            return Ok(Some(index));
        }
        let mut after = index.upto();
        loop {
            let page = self.0.store.chunk_texts(kb.id, after, 5000).await?;
            let Some(last) = page.last().map(|c| c.0) else {
                break;
            };
            let entries: Vec<TextEntry> = page
                .into_iter()
                .map(|(key, document, headings, text)| TextEntry {
                    key,
                    document: document.to_string(),
                    headings,
                    text,
                })
                .collect();
            let target = index.clone();
            tokio::task::spawn_blocking(move || target.add(&entries))
                .await
                .map_err(other)?
                .map_err(other)?;
            after = last;
        }
        caught_up.insert(kb.id);
        Ok(Some(index))
    }

    /// The knowledge base's vector index, caught up with the store the first time this process
    /// uses it (chunks committed after its last save are added from their stored embeddings).
    async fn vectors(&self, kb: &hearth_store::KnowledgeBase) -> Result<Arc<VectorIndex>> {
        let dims = usize::try_from(kb.dimensions).unwrap_or(0);
        let name = kb.id.to_string();
        let mut caught_up = self.0.caught_up.lock().await;
        let this = self.clone();
        let (index, fresh) =
            tokio::task::spawn_blocking(move || this.0.vectors.open_fresh(&name, dims))
                .await
                .map_err(other)?
                .map_err(other)?;
        if fresh {
            caught_up.remove(&kb.id);
        }
        if caught_up.contains(&kb.id) {
            return Ok(index);
        }
        let mut after = index.upto();
        loop {
            let page = self.0.store.chunk_vectors(kb.id, after, 2048).await?;
            let Some(last) = page.last().map(|(seq, _)| *seq) else {
                break;
            };
            let entries: Vec<(i64, Vec<f32>)> = page
                .into_iter()
                .map(|(seq, bytes)| (seq, hearth_rag::vectors::from_bytes(&bytes)))
                .collect();
            let target = index.clone();
            tokio::task::spawn_blocking(move || target.add(&entries))
                .await
                .map_err(other)?
                .map_err(other)?;
            after = last;
        }
        caught_up.insert(kb.id);
        Ok(index)
    }
}

fn clean_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(CoreError::invalid("name", "must not be empty"));
    }
    if raw.chars().count() > MAX_NAME {
        return Err(CoreError::invalid(
            "name",
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "must not hold control characters",
        ));
    }
    Ok(name.to_owned())
}

fn clean_description(text: &str) -> Result<String> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(CoreError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(text.trim().to_owned())
}

fn name_conflict(err: StoreError) -> CoreError {
    match err {
        StoreError::Conflict(_) => CoreError::Conflict {
            field: Some("name".into()),
            message: "you already have a knowledge base with this name".into(),
        },
        other => other.into(),
    }
}

fn other(err: impl std::error::Error + Send + Sync + 'static) -> CoreError {
    CoreError::Other(Box::new(err))
}
