//! Hearth's HTTP surface: settings, the axum router, handlers, the error mapping, extractors,
//! metrics, the OpenAPI document and the embedded web UI. The only crate that knows HTTP.
//!
//! [`Application::build`] opens the store, migrates it, binds the listener (port 0 in tests)
//! and returns a server ready to run; tests drive it with `hearth-client`.

pub mod error;
pub mod extract;
pub mod handlers;
pub mod metrics;
mod middleware;
pub mod openapi;
pub mod settings;
pub mod sse;
pub mod state;
pub mod telemetry;
mod ui;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hearth_core::access::Area;
use hearth_core::accounts::Accounts;
use hearth_core::chat::Chat;
use hearth_core::crypto::Crypto;
use hearth_core::limits::MemoryLoginLimiter;
use hearth_core::providers::Providers;
use hearth_store::{Store, StoreError, StoreOptions};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::Metrics;
use crate::settings::{ensure_data_dir, Settings};
use crate::state::{AppState, Services};

/// Why the server could not start. Each message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("secret file {path}: {reason}")]
    Secret { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Core(#[from] hearth_core::CoreError),
    /// A combination of roles this store cannot run.
    #[error("{0}")]
    Roles(String),
}

/// What a process runs: the HTTP API and UI, the background jobs, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub http: bool,
    pub jobs: bool,
}

impl Roles {
    /// `hearth serve`: both.
    pub const ALL: Roles = Roles {
        http: true,
        jobs: true,
    };
    /// `hearth serve --no-jobs`: HTTP only; workers elsewhere run the jobs.
    pub const HTTP: Roles = Roles {
        http: true,
        jobs: false,
    };
    /// `hearth worker`: jobs only.
    pub const WORKER: Roles = Roles {
        http: false,
        jobs: true,
    };
}

/// Opens the store named by the settings and applies pending migrations (backing up SQLite first).
pub async fn open_store(settings: &Settings) -> Result<Store, StartupError> {
    prepare_data_dir(settings)?;
    let store = Store::open(&settings.database_url(), &store_options(settings)).await?;
    let report = store.migrate(&settings.backup_dir()).await?;
    if report.applied > 0 {
        tracing::info!(applied = report.applied, backup = ?report.backup, database = store.location(), "migrations applied");
    }
    Ok(store)
}

/// Pool options from the settings.
pub fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions {
        max_connections: settings.database.max_connections,
        acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_secs),
        create_if_missing: true,
    }
}

/// Creates the data directory (0700) if needed.
pub fn prepare_data_dir(settings: &Settings) -> Result<(), StartupError> {
    ensure_data_dir(&settings.data_dir).map_err(|source| StartupError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })
}

/// The accounts service for these settings and store.
pub fn accounts(settings: &Settings, store: Store) -> Result<Accounts, StartupError> {
    let secret = match &settings.auth.jwt_secret {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => load_or_create_secret(&settings.data_dir.join("jwt-secret"))?,
    };
    let limiter = Arc::new(MemoryLoginLimiter::new(settings.auth.login));
    Ok(Accounts::new(
        store,
        settings.auth.clone(),
        &secret,
        limiter,
    )?)
}

/// The encryption-at-rest codec: the master key from settings, or `<data_dir>/master-key`
/// (created on first start). Keys left by an interrupted or finished `rotate-key`
/// (`master-key.next`, `master-key.previous`) and `crypto.previous_master_keys` still decrypt.
pub fn crypto(settings: &Settings) -> Result<Crypto, StartupError> {
    let dir = &settings.data_dir;
    let mut previous: Vec<Vec<u8>> = Vec::new();
    let master = match &settings.crypto.master_key {
        Some(k) => k.expose().as_bytes().to_vec(),
        None => {
            for name in ["master-key.next", "master-key.previous"] {
                if let Some(key) = read_secret_if_present(&dir.join(name))? {
                    previous.push(key);
                }
            }
            load_or_create_secret(&dir.join("master-key"))?
        }
    };
    previous.extend(
        settings
            .crypto
            .previous_master_keys
            .iter()
            .map(|k| k.expose().as_bytes().to_vec()),
    );
    let previous: Vec<&[u8]> = previous.iter().map(Vec::as_slice).collect();
    Ok(Crypto::new(&master, &previous)?)
}

/// Re-encrypts everything stored with the current master key. With a generated key file, a new
/// key is made first (`master-key.next`), everything is re-encrypted with it, then it replaces
/// `master-key` (the old one is kept as `master-key.previous`). Interrupted, it can be run again.
pub async fn rotate_master_key(
    settings: &Settings,
    store: &Store,
) -> Result<hearth_core::crypto::RotationReport, StartupError> {
    let dir = &settings.data_dir;
    let generated = settings.crypto.master_key.is_none();
    let next = dir.join("master-key.next");
    if generated && !next.exists() {
        write_secret(&next)?;
    }
    let crypto = if generated {
        let new = read_secret_if_present(&next)?.ok_or_else(|| StartupError::Secret {
            path: next.display().to_string(),
            reason: "disappeared during rotation".into(),
        })?;
        let mut old = Vec::new();
        for name in ["master-key", "master-key.previous"] {
            if let Some(key) = read_secret_if_present(&dir.join(name))? {
                old.push(key);
            }
        }
        old.extend(
            settings
                .crypto
                .previous_master_keys
                .iter()
                .map(|k| k.expose().as_bytes().to_vec()),
        );
        let old: Vec<&[u8]> = old.iter().map(Vec::as_slice).collect();
        Crypto::new(&new, &old)?
    } else {
        crypto(settings)?
    };
    let report = hearth_core::crypto::rotate(store, &crypto).await?;
    if !report.complete {
        // Swapping the key files now could retire a key some values still need.
        return Err(StartupError::Core(hearth_core::CoreError::other(
            "values kept changing while they were re-encrypted (is a server of an earlier \
             version still running?); stop it and run rotate-key again",
        )));
    }
    if generated {
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|e| StartupError::Secret {
                path: from.display().to_string(),
                reason: format!("cannot rename to {}: {e}", to.display()),
            })
        };
        let current = dir.join("master-key");
        if current.exists() {
            rename(&current, &dir.join("master-key.previous"))?;
        }
        rename(&next, &current)?;
    }
    Ok(report)
}

fn read_secret_if_present(path: &Path) -> Result<Option<Vec<u8>>, StartupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().as_bytes().to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartupError::Secret {
            path: path.display().to_string(),
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// Loads the models folder (on a blocking thread: it reads weights). A broken model is logged
/// and skipped; the server starts with the rest.
async fn load_local_models(settings: &Settings) -> hearth_local::LocalModels {
    if !settings.local.enabled {
        return hearth_local::LocalModels::default();
    }
    let dir = settings.models_dir();
    let mut config = settings.local.clone();
    config.cache_dir = Some(settings.data_dir.join("cache").join("models"));
    let loaded =
        tokio::task::spawn_blocking(move || hearth_local::LocalModels::load(&dir, &config))
            .await
            .unwrap_or_default();
    for problem in &loaded.problems {
        tracing::warn!(path = %problem.path.display(), reason = %problem.reason, "skipped a model in the models folder");
    }
    loaded
}

/// How often documents without a live ingest job are put right.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// How often changed vector indexes are saved.
const SAVE_INDEXES_EVERY: Duration = Duration::from_secs(30);

fn log_reconciled(r: hearth_core::knowledge::Reconciled) {
    if r.enqueued + r.failed + r.restarted > 0 {
        tracing::warn!(
            enqueued = r.enqueued,
            failed = r.failed,
            restarted = r.restarted,
            "documents without a live ingest job were put right"
        );
    }
}

fn jobs_startup(e: hearth_jobs::JobsError) -> StartupError {
    match e {
        hearth_jobs::JobsError::Store(e) => e.into(),
        other => StartupError::Core(hearth_core::CoreError::Other(Box::new(other))),
    }
}

/// A server bound to its port, ready to run.
pub struct Application {
    /// `None` for a worker, which serves no HTTP.
    listener: Option<tokio::net::TcpListener>,
    roles: Roles,
    router: Router,
    store: Store,
    chat: Chat,
    knowledge: hearth_core::knowledge::Knowledge,
    runtime: hearth_jobs::Runtime,
    queue: hearth_jobs::Queue,
    /// The worker pool that ingests documents (`knowledge.workers` at once).
    ingest: hearth_jobs::Workers,
    /// The worker pool for every other kind (`jobs.workers` at once).
    general: hearth_jobs::Workers,
    /// How long shutdown waits for the background loops (handlers get `jobs.shutdown_grace_secs`).
    shutdown_bound: Duration,
}

impl Application {
    /// Opens and migrates the store, builds the services and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Roles::ALL).await
    }

    /// Like [`Application::build`] for a process with only some roles. Splitting roles needs
    /// PostgreSQL: an embedded SQLite store belongs to one process, which runs both.
    pub async fn build_with(settings: Settings, roles: Roles) -> Result<Self, StartupError> {
        if roles != Roles::ALL && !settings.database_url().starts_with("postgres") {
            return Err(StartupError::Roles(
                "serving without jobs, or running a separate worker, needs PostgreSQL \
                 (database.url): an embedded SQLite store belongs to one process, which runs \
                 both"
                    .into(),
            ));
        }
        let store = open_store(&settings).await?;
        let accounts = accounts(&settings, store.clone())?;
        let crypto = crypto(&settings)?;
        if let Some(report) = hearth_core::crypto::upgrade(&store, &crypto).await? {
            let resealed = report.columns.iter().map(|c| c.1).sum::<u64>();
            if report.unreadable > 0 {
                tracing::warn!(
                    unreadable = report.unreadable,
                    "sealed values no configured key opens were left as they are"
                );
            }
            if report.complete {
                tracing::info!(
                    resealed,
                    unreadable = report.unreadable,
                    "bound every sealed value to its column, row and owner"
                );
            } else {
                tracing::warn!(
                    resealed,
                    "sealed values kept changing while they were bound to their rows (is a \
                     server of an earlier version still running?); the next start tries again"
                );
            }
        }
        let local = load_local_models(&settings).await;
        let mut providers = Providers::new(store.clone(), crypto.clone(), settings.chat.timeouts())
            .with_local(Arc::new(local.provider.clone()));
        let names = providers.register_local().await?;
        if !names.is_empty() || !local.embedders.is_empty() {
            tracing::info!(
                chat = ?names,
                embeddings = ?local.embedders.iter().map(|e| e.name().to_owned()).collect::<Vec<_>>(),
                "built-in models ready"
            );
        }
        let recorder = hearth_core::usage::Recorder::start(store.clone());
        let embeddings = hearth_core::embeddings::Embeddings::new(local.embedders)
            .with_providers(providers.clone(), recorder.clone());
        let queue = hearth_jobs::Queue::new(store.clone(), settings.jobs.clone());
        let knowledge = hearth_core::knowledge::Knowledge::new(
            store.clone(),
            embeddings.clone(),
            settings.knowledge.clone(),
            settings.knowledge_dir(),
            queue.clone(),
        );
        let pgvector = knowledge.choose_vector_index().await?;
        // Each process keeps its own embedded vector index, caught up from the store when it
        // first opens it: a server that does not ingest would never see what workers add.
        if roles != Roles::ALL && !pgvector {
            return Err(StartupError::Roles(
                "serving without jobs, or running a separate worker, needs the pgvector \
                 extension in PostgreSQL (knowledge vectors must live in the database all \
                 processes share)"
                    .into(),
            ));
        }
        tracing::info!(
            vector_index = if pgvector { "pgvector" } else { "embedded" },
            "knowledge vector index"
        );
        // Embedded SQLite has one process: every job left running was this server's.
        if store.backend() == hearth_store::Backend::Sqlite && roles.jobs {
            let recovered = queue.recover(true).await.map_err(jobs_startup)?;
            if recovered.requeued + recovered.dead > 0 {
                tracing::warn!(
                    requeued = recovered.requeued,
                    dead = recovered.dead,
                    "jobs cut off by the previous shutdown were taken back"
                );
            }
        }
        if roles.jobs {
            // The loop runs it again every minute: a failure here only delays it.
            match knowledge.reconcile_ingest().await {
                Ok(r) => log_reconciled(r),
                Err(e) => {
                    tracing::warn!(error = %e, "could not put documents' ingest right at start")
                }
            }
        }
        let memory_embedder = Some(settings.knowledge.embedding_model.trim())
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .or_else(|| embeddings.list().into_iter().next().map(|(name, _)| name));
        let memories = hearth_core::memory::Memories::new(
            store.clone(),
            crypto.clone(),
            embeddings.clone(),
            settings.memory.clone(),
            memory_embedder,
        );
        let chat = Chat::new(
            store.clone(),
            crypto,
            providers.clone(),
            hearth_tools::Registry::builtin(&settings.tools),
            settings.chat.clone(),
            recorder,
        )
        .with_knowledge(knowledge.clone())
        .with_memory(memories.clone());
        let interrupted = chat.recover().await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "answers cut off by the previous shutdown were marked as failed"
            );
        }
        let listen = settings.server.listen;
        let runtime = hearth_jobs::Runtime::new();
        let instance = chat.instance().to_owned();
        let ingest = hearth_jobs::Workers::new(
            queue.clone(),
            format!("{instance}/ingest"),
            vec![knowledge.ingest_handler()],
        )
        .slots(settings.knowledge.workers)
        .without_maintenance();
        // Every other kind of job; this pool also takes back jobs whose worker died.
        let general = hearth_jobs::Workers::new(queue.clone(), instance, queue.system_handlers());
        queue
            .install_system_schedules()
            .await
            .map_err(jobs_startup)?;
        let shutdown_bound =
            Duration::from_secs(settings.jobs.shutdown_grace_secs.saturating_add(5));
        let state = AppState::new(Services {
            settings,
            store: store.clone(),
            accounts,
            providers,
            chat: chat.clone(),
            embeddings,
            knowledge: knowledge.clone(),
            memories,
            usage: hearth_core::usage::Usage::new(store.clone()),
            metrics: Arc::new(Metrics::new()),
            sockets: crate::ws::Sockets::default(),
            runtime: runtime.clone(),
            queue: queue.clone(),
            job_pools: vec![("ingest", ingest.stats()), ("general", general.stats())],
        });
        let router = router(state);
        let listener = match roles.http {
            true => Some(
                tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|source| StartupError::Listen {
                        addr: listen,
                        source,
                    })?,
            ),
            false => None,
        };
        Ok(Self {
            listener,
            roles,
            router,
            store,
            chat,
            knowledge,
            runtime,
            queue,
            ingest,
            general,
            shutdown_bound,
        })
    }

    /// The address actually bound (the real port when 0 was asked for); port 0 for a worker.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts the background loops under the runtime.
    fn start_loops(&self) {
        // Other instances fail the runs of an instance that stops beating (and this one fails
        // theirs): without the beat, a peer's restart would fail this instance's live runs.
        let chat = self.chat.clone();
        self.runtime.every(
            "heartbeat",
            true,
            hearth_core::chat::HEARTBEAT_EVERY,
            move || {
                let chat = chat.clone();
                Box::pin(async move {
                    let failed = chat.heartbeat().await.map_err(|e| e.to_string())?;
                    if failed > 0 {
                        tracing::warn!(
                            failed,
                            "answers of a stopped instance were marked as failed"
                        );
                    }
                    Ok(())
                })
            },
        );
        if !self.roles.jobs {
            return;
        }
        let ingest = self.ingest.clone();
        self.runtime.spawn("jobs-ingest", true, move |stop| {
            Box::pin(ingest.clone().run(stop))
        });
        let general = self.general.clone();
        self.runtime.spawn("jobs-general", true, move |stop| {
            Box::pin(general.clone().run(stop))
        });
        // Cron ticks: every instance looks; each tick fires once.
        let queue = self.queue.clone();
        self.runtime
            .every("job-scheduler", true, Duration::from_secs(1), move || {
                let queue = queue.clone();
                Box::pin(async move {
                    queue
                        .fire_due(hearth_store::Timestamp::now())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(())
                })
            });
        // A document whose job never got stored, or died, is put right here.
        let knowledge = self.knowledge.clone();
        self.runtime
            .every("kb-reconcile", true, RECONCILE_EVERY, move || {
                let knowledge = knowledge.clone();
                Box::pin(async move {
                    log_reconciled(
                        knowledge
                            .reconcile_ingest()
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                    Ok(())
                })
            });
        // Vector indexes are saved on a timer, not each time the queue empties: a large graph is
        // written whole, and a lost save only means a catch-up from the store.
        let knowledge = self.knowledge.clone();
        self.runtime
            .every("kb-index-save", false, SAVE_INDEXES_EVERY, move || {
                let knowledge = knowledge.clone();
                Box::pin(async move {
                    knowledge.save_indexes().await.map_err(|e| e.to_string())?;
                    Ok(())
                })
            });
    }

    /// Serves (and runs its jobs) until `shutdown` completes, then drains connections, stops
    /// the background loops and closes the store.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt as _;
        self.start_loops();
        // On shutdown, runs stop (their partial answers are kept as `stopped`), which also ends
        // the SSE streams that graceful shutdown waits for.
        let hub = self.chat.hub().clone();
        // Background loops stop taking work at the signal, not after the last connection.
        let loops = self.runtime.stopping();
        let result = match self.listener.take() {
            Some(listener) => {
                let service = self
                    .router
                    .clone()
                    .into_make_service_with_connect_info::<SocketAddr>();
                // Streamed answers are many small writes; Nagle's algorithm would hold each one
                // back until the previous is acknowledged (40 ms with delayed ACKs).
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, service)
                    .with_graceful_shutdown(async move {
                        shutdown.await;
                        hub.cancel_all();
                        loops.cancel();
                    })
                    .await
            }
            None => {
                shutdown.await;
                hub.cancel_all();
                loops.cancel();
                Ok(())
            }
        };
        // Job handlers get their grace to finish; a job cut off is put back in the queue.
        if !self.runtime.shutdown(self.shutdown_bound).await {
            tracing::warn!(
                bound = ?self.shutdown_bound,
                "background loops did not stop in time and were aborted"
            );
        }
        if let Err(e) = self.knowledge.save_indexes().await {
            tracing::error!(error = %e, "could not save vector indexes at shutdown");
        }
        // Let stopping runs store what they have before the store closes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.chat.hub().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.store.close().await;
        result
    }
}

/// The whole router: API, system endpoints, docs, UI fallback, and the layers around them.
pub fn router(state: AppState) -> Router {
    let settings = &state.settings;
    let (api, doc) = api_router().split_for_parts();
    let api = api.with_state(state.clone());
    let docs: Router = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", doc)
        .into();

    let mut app = api
        .merge(docs)
        .fallback(ui::serve)
        .method_not_allowed_fallback(ui::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            middleware::observe,
        ))
        .layer(DefaultBodyLimit::max(settings.server.body_limit_bytes));
    for (name, value) in SECURITY_HEADERS {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if !settings.server.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .server
            .cors_allowed_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PATCH,
                    Method::PUT,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-request-id"),
                ])
                .allow_credentials(true)
                .max_age(Duration::from_secs(600)),
        );
    }
    app
}

/// The OpenAPI document: what [`api_router`] serves, read from the same declarations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// Every route, declared once: the router and the OpenAPI document both come from here (each
/// documented handler's `#[utoipa::path]` names its method and path).
///
/// Every route that authenticates belongs to an area, which decides the scope an API key needs
/// for it (`Principal::may`); the `Auth` extractor refuses keys on a route without one.
fn api_router() -> OpenApiRouter<AppState> {
    use handlers::{admin, api_keys, auth, conversations as conv, knowledge as kb, me, memories};
    use handlers::{openai, providers, system};
    let area = |area: Area, routes: OpenApiRouter<AppState>| routes.route_layer(Extension(area));
    let public = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::ready))
        .routes(routes!(system::metrics))
        .routes(routes!(auth::status))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        // The socket authenticates itself (bearer or first frame) and checks each frame's area;
        // its frames are described in ARCHITECTURE.md.
        .route("/api/v1/ws", get(ws::upgrade));
    let account = OpenApiRouter::new()
        .routes(routes!(me::get))
        .routes(routes!(me::change_password))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::get, api_keys::delete));
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::reset_password))
        .routes(routes!(admin::create_invite))
        .routes(routes!(providers::list, providers::create))
        .routes(routes!(
            providers::get,
            providers::update,
            providers::delete
        ))
        .routes(routes!(providers::sync))
        .routes(routes!(providers::list_models))
        .routes(routes!(providers::update_model))
        .routes(routes!(admin::traces))
        .routes(routes!(admin::usage));
    // The OpenAI-compatible API follows OpenAI's contract, not this document.
    let models = OpenApiRouter::new()
        .routes(routes!(providers::user_models))
        .route("/v1/models", get(openai::models));
    // Uploads stream to disk under a per-file limit (knowledge.max_file_bytes) and a file count
    // limit, so the whole-body limit does not apply to them.
    let uploads = OpenApiRouter::new()
        .routes(routes!(kb::upload))
        .route_layer(DefaultBodyLimit::disable());
    let knowledge = OpenApiRouter::new()
        .routes(routes!(kb::list, kb::create))
        .routes(routes!(kb::get, kb::update, kb::delete))
        .routes(routes!(kb::documents))
        .merge(uploads)
        .routes(routes!(kb::document, kb::delete_document))
        .routes(routes!(kb::retry));
    let knowledge_search = OpenApiRouter::new().routes(routes!(kb::search));
    let chat = OpenApiRouter::new()
        .routes(routes!(memories::list, memories::create))
        .routes(routes!(memories::update, memories::delete))
        .routes(routes!(conv::list, conv::create))
        .routes(routes!(conv::get, conv::update, conv::delete))
        .routes(routes!(conv::export))
        .routes(routes!(conv::send))
        .routes(routes!(conv::regenerate))
        .routes(routes!(conv::events))
        .routes(routes!(conv::stop))
        .routes(routes!(conv::approve))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/chat/completions", post(openai::chat_completions));
    let chat_to_knowledge = OpenApiRouter::new().routes(routes!(conv::export_to_knowledge));
    let mut router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(public)
        .merge(area(Area::Account, account))
        .merge(area(Area::Admin, admin))
        .merge(area(Area::Models, models))
        .merge(area(Area::Knowledge, knowledge))
        .merge(area(Area::KnowledgeSearch, knowledge_search))
        .merge(area(Area::Chat, chat))
        .merge(area(Area::ChatToKnowledge, chat_to_knowledge));
    openapi::finish(router.get_openapi_mut());
    router
}

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    ),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
];

/// Reads a generated secret (signing secret, master key), or creates it (0600) on first start.
fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, StartupError> {
    let err = |reason: String| StartupError::Secret {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().as_bytes().to_vec();
            if secret.len() < 32 {
                return Err(err("is shorter than 32 bytes".into()));
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_secret(path),
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

/// Writes a new random secret to `path` (0600, never overwriting) and returns it.
fn write_secret(path: &Path) -> Result<Vec<u8>, StartupError> {
    let err = |reason: String| StartupError::Secret {
        path: path.display().to_string(),
        reason,
    };
    let secret = hearth_core::tokens::hex(&hearth_core::tokens::random_bytes(48));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write as _;
    let mut file = options
        .open(path)
        .map_err(|e| err(format!("cannot create: {e}")))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| err(format!("cannot write: {e}")))?;
    Ok(secret.into_bytes())
}
