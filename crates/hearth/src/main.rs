//! The `hearth` binary: `serve`, the operator's `admin` and `models` commands, and the
//! terminal client's `ingest` and `search`.

/// Prints a line to stdout. When stdout is a pipe whose reader has gone (`hearth search … |
/// head -1`), the reader has what it wanted: the command ends quietly with success, where
/// `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod eval;
mod knowledge;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_core::access::{Admin, Role};
use hearth_core::api::CreateUserRequest;
use hearth_server::settings::{Loaded, Overrides, Settings};
use hearth_server::{Application, Roles, StartupError};

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Self-hosted AI workspace in one binary"
)]
struct Cli {
    /// TOML config file (also HEARTH_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct Common {
    /// Data directory (settings key `data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… (settings key `database.url`).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, web UI and background work.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (settings key `server.listen`).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        /// Serve HTTP only and leave background jobs (ingest, schedules) to `hearth worker`
        /// processes on the same PostgreSQL database.
        #[arg(long)]
        no_jobs: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run background jobs (ingest, schedules) without serving HTTP, beside `hearth serve`
    /// instances on the same PostgreSQL database.
    Worker {
        #[command(flatten)]
        common: Common,
    },
    /// Operator commands; they act on the database directly.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The built-in models: files in the models folder (`<data_dir>/models`, or `local.models_dir`),
    /// loaded when the server starts.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Upload files and folders (recursively) into a knowledge base of a running server, and
    /// follow them until they are indexed.
    Ingest(knowledge::IngestArgs),
    /// Search a knowledge base of a running server.
    Search(knowledge::SearchArgs),
    /// Measure search quality on your own corpus.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Print the HTTP API's OpenAPI document (what the server serves at /openapi.json).
    Openapi,
    /// Internal: read one file into chunks for the server (request on stdin, answer on stdout),
    /// under the memory and CPU limits the request names. The server starts these itself.
    #[command(hide = true)]
    ParseWorker,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// nDCG@10, recall@10 and MRR@10 of BM25, vector and hybrid search of a knowledge base,
    /// for a JSON Lines file of queries with their relevant documents.
    Retrieval(eval::RetrievalArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List the installed models, and entries that cannot be used (with the reason).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Check and install a model: a `.gguf` chat model, or a sentence-transformers folder
    /// (config.json, tokenizer.json, model.safetensors) for embeddings. Restart the server to
    /// load it.
    Add {
        #[arg(value_name = "PATH")]
        path: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Delete an installed model by name (as `list` shows it).
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user.
    CreateUser {
        #[arg(long)]
        email: String,
        /// The password; read from HEARTH_NEW_PASSWORD when omitted, so it stays out of shell history.
        #[arg(long, env = "HEARTH_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum, default_value_t = CliRole::User)]
        role: CliRole,
        #[command(flatten)]
        common: Common,
    },
    /// Set a user's password and end their sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// The new password; read from HEARTH_NEW_PASSWORD when omitted.
        #[arg(long, env = "HEARTH_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        common: Common,
    },
    /// Apply pending database migrations (a SQLite file is backed up first).
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Write a consistent copy of the live database to FILE.
    Backup {
        /// Where to write the copy; must not exist.
        #[arg(value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Re-encrypt stored secrets and conversations with a new master key. With the generated
    /// key file a new key is made; with `crypto.master_key` set, data is re-encrypted with it
    /// (keep the old key in `crypto.previous_master_keys` until this has run). Stop the server
    /// first, or restart it afterwards.
    RotateKey {
        #[command(flatten)]
        common: Common,
    },
    /// Print the documented default configuration (TOML).
    DefaultConfig,
}

#[derive(Clone, Copy, ValueEnum)]
enum CliRole {
    Admin,
    User,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ParseWorker = cli.command {
        // Before any runtime: the child stays one thread, inside its address-space limit.
        return match hearth_rag::isolate::serve_child(
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("hearth parse-worker: {message}");
                ExitCode::FAILURE
            }
        };
    }
    // A busy worker looks at the network and at tasks woken from other threads (the database
    // and model threads) every 4 polls instead of 61 and 31: with 63 streams saturating a core,
    // the time a new request's first token waits in Hearth fell from 0.6-1.1 ms to 0.1-0.4 ms
    // at the median and from 1.5-2.5 ms to ~0.5 ms at p90 (bench/README.md, issue 3).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(4)
        .global_queue_interval(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hearth: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hearth: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config_file = cli.config;
    let load = |listen: Option<SocketAddr>, common: Common| -> Result<Settings, String> {
        let overrides = Overrides {
            config_file: config_file.clone(),
            listen,
            data_dir: common.data_dir,
            database_url: common.database_url,
        };
        let Loaded { settings, warnings } =
            Settings::load(hearth_env()?, &overrides).map_err(|e| e.to_string())?;
        hearth_server::telemetry::init(&settings.log);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        Ok(settings)
    };
    match cli.command {
        Command::Serve {
            listen,
            no_jobs,
            common,
        } => {
            let roles = match no_jobs {
                true => Roles::HTTP,
                false => Roles::ALL,
            };
            serve(load(listen, common)?, roles).await
        }
        Command::Worker { common } => worker(load(None, common)?).await,
        Command::Models(command) => models(command, load),
        Command::Ingest(args) => knowledge::ingest(args).await,
        Command::Search(args) => knowledge::search(args).await,
        Command::Eval(EvalCommand::Retrieval(args)) => eval::retrieval(args).await,
        Command::Openapi => match serde_json::to_string_pretty(&hearth_server::openapi()) {
            Ok(json) => {
                say!("{json}");
                Ok(())
            }
            Err(e) => Err(format!("could not write the document: {e}")),
        },
        Command::ParseWorker => Err("parse-worker runs before the runtime starts".into()),
        Command::Admin(AdminCommand::DefaultConfig) => {
            say!(
                "{}",
                hearth_server::settings::DEFAULT_CONFIG.trim_end_matches('\n')
            );
            Ok(())
        }
        Command::Admin(AdminCommand::Migrate { common }) => {
            let settings = load(None, common)?;
            let store = hearth_server::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            say!("{} is up to date", store.location());
            store.close().await;
            Ok(())
        }
        Command::Admin(AdminCommand::Backup { output, common }) => {
            let settings = load(None, common)?;
            // No migration and no file creation: a backup must not change what it copies, and
            // a wrong path must fail rather than back up a new empty database.
            let options = hearth_store::StoreOptions {
                create_if_missing: false,
                ..hearth_server::store_options(&settings)
            };
            let store = hearth_store::Store::open(&settings.database_url(), &options)
                .await
                .map_err(|e| e.to_string())?;
            store.backup(&output).await.map_err(|e| e.to_string())?;
            say!("backed up {} to {}", store.location(), output.display());
            store.close().await;
            Ok(())
        }
        Command::Admin(AdminCommand::RotateKey { common }) => {
            let settings = load(None, common)?;
            let store = hearth_server::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let report = hearth_server::rotate_master_key(&settings, &store)
                .await
                .map_err(|e| e.to_string())?;
            for (name, changed, current) in report.columns {
                say!("{name}: {changed} re-encrypted, {current} already current");
            }
            if report.unreadable > 0 {
                say!(
                    "{} values no configured key opens were left as they are (see the log)",
                    report.unreadable
                );
            }
            store.close().await;
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser {
            email,
            password,
            name,
            role,
            common,
        }) => {
            let settings = load(None, common)?;
            let (accounts, store) = accounts(&settings).await?;
            let role = match role {
                CliRole::Admin => Role::Admin,
                CliRole::User => Role::User,
            };
            let req = CreateUserRequest {
                email,
                password,
                name,
                role: Some(role),
            };
            let user = accounts
                .create_user(&Admin::local_operator(), req)
                .await
                .map_err(|e| e.to_string())?;
            say!(
                "created {} ({}) with id {}",
                user.email,
                user.role.as_str(),
                user.id
            );
            store.close().await;
            Ok(())
        }
        Command::Admin(AdminCommand::ResetPassword {
            email,
            password,
            common,
        }) => {
            let settings = load(None, common)?;
            let (accounts, store) = accounts(&settings).await?;
            accounts
                .reset_password_by_email(&Admin::local_operator(), &email, &password)
                .await
                .map_err(|e| e.to_string())?;
            say!("password of {email} reset; their sessions have ended");
            store.close().await;
            Ok(())
        }
    }
}

fn models(
    command: ModelsCommand,
    load: impl Fn(Option<SocketAddr>, Common) -> Result<Settings, String>,
) -> Result<(), String> {
    use hearth_local::catalog;
    match command {
        ModelsCommand::List { common } => {
            let settings = load(None, common)?;
            let dir = settings.models_dir();
            let scan = catalog::scan(&dir);
            say!("models folder: {}", dir.display());
            if scan.models.is_empty() {
                say!("no models installed (scripts/fetch-models.sh fetches the reference ones)");
            }
            for m in &scan.models {
                let kind = match m.kind {
                    hearth_local::ModelKind::Chat => "chat",
                    hearth_local::ModelKind::Embedding => "embedding",
                };
                let detail = match (&m.architecture, m.context_length) {
                    (Some(arch), Some(ctx)) => format!("{arch}, trained context {ctx}"),
                    (Some(arch), None) => arch.clone(),
                    _ => String::new(),
                };
                say!(
                    "{:<40} {:<10} {:>8.1} MiB  {detail}",
                    m.name,
                    kind,
                    m.bytes as f64 / (1024.0 * 1024.0)
                );
            }
            for p in &scan.problems {
                say!("unusable: {p}");
            }
            Ok(())
        }
        ModelsCommand::Add { path, common } => {
            let settings = load(None, common)?;
            if !path.exists() {
                return Err(format!("{}: does not exist", path.display()));
            }
            let file = catalog::inspect(&path)
                .map_err(|reason| format!("{}: {reason}", path.display()))?
                .ok_or_else(|| {
                    format!(
                        "{}: is neither a .gguf file nor a folder with config.json, tokenizer.json and model.safetensors",
                        path.display()
                    )
                })?;
            // Load it once, so a model the engines cannot run is refused here, not at start.
            hearth_local::verify(&file, &settings.local).map_err(|e| e.to_string())?;
            let added = catalog::add(&settings.models_dir(), &path).map_err(|e| e.to_string())?;
            say!(
                "installed `{}` in {}; restart the server to load it",
                added.name,
                settings.models_dir().display()
            );
            Ok(())
        }
        ModelsCommand::Remove { name, common } => {
            let settings = load(None, common)?;
            let removed =
                catalog::remove(&settings.models_dir(), &name).map_err(|e| e.to_string())?;
            say!("removed `{}` ({})", removed.name, removed.path.display());
            Ok(())
        }
    }
}

/// The `HEARTH_*` environment. Other variables may hold anything; ours must be UTF-8.
fn hearth_env() -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key
            .to_str()
            .filter(|k| k.starts_with("HEARTH_"))
            .map(str::to_owned)
        else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| format!("environment variable {key} is not valid UTF-8"))?;
        vars.push((key, value));
    }
    Ok(vars)
}

async fn accounts(
    settings: &Settings,
) -> Result<(hearth_core::accounts::Accounts, hearth_store::Store), String> {
    let store = hearth_server::open_store(settings)
        .await
        .map_err(|e| e.to_string())?;
    let accounts = hearth_server::accounts(settings, store.clone())
        .map_err(|e: StartupError| e.to_string())?;
    Ok((accounts, store))
}

async fn serve(settings: Settings, roles: Roles) -> Result<(), String> {
    let app = Application::build_with(settings, roles)
        .await
        .map_err(|e| e.to_string())?;
    let addr = app.local_addr();
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    tracing::info!(listen = %addr, version = env!("CARGO_PKG_VERSION"), "hearth started");
    // One plain line on stdout that people and scripts (tests, benchmarks) wait for.
    // A server whose stdout is gone keeps serving.
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "Hearth is ready at http://{shown}/");
    }
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))
}

async fn worker(settings: Settings) -> Result<(), String> {
    let app = Application::build_with(settings, Roles::WORKER)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "hearth worker started");
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "Hearth worker is running");
    }
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| format!("worker failed: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
