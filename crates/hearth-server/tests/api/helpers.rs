use hearth_client::Client;
use hearth_core::access::KeyScope;
use hearth_core::api::{AuthResponse, CreateApiKeyRequest, CreatedApiKey, RegisterRequest};
use hearth_core::passwords::Argon2Cost;
use hearth_server::settings::Settings;
use hearth_server::Application;
use hearth_store::testing::TempPostgres;

pub const PASSWORD: &str = "correct-horse-battery";

/// What a key for a user's own work gets: everything but `admin`.
pub const USER_SCOPES: &[KeyScope] = &[KeyScope::Read, KeyScope::Chat, KeyScope::Knowledge];

/// Creates an API key with these scopes for a user registered with [`PASSWORD`].
pub async fn api_key(client: &Client, name: &str, scopes: &[KeyScope]) -> CreatedApiKey {
    client
        .create_api_key(&CreateApiKeyRequest {
            name: name.into(),
            expires_in_days: None,
            scopes: scopes.to_vec(),
            password: PASSWORD.into(),
        })
        .await
        .expect("create API key")
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub client: Client,
    pub data_dir: std::path::PathBuf,
    /// The PostgreSQL database of this app, when the suite runs on PostgreSQL.
    pg: Option<TempPostgres>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Test settings: temp data dir, port 0, cheap hashing, generous throttling.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        data_dir: dir.join("data"),
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    settings.auth.argon2 = Argon2Cost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    settings.auth.login.per_ip_per_minute = 10_000;
    // This test binary is not `hearth`, so it cannot be the parser process: files are read on
    // the server's threads here (the CLI tests drive the real binary's parser processes).
    settings.knowledge.parser = hearth_core::knowledge::ParserMode::InProcess;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    let data_dir = settings.data_dir.clone();
    let pg = match postgres_url() {
        Some(admin_url) => {
            let db = TempPostgres::create(&admin_url)
                .await
                .expect("create database");
            settings.database.url = Some(hearth_core::Secret::new(db.url.clone()));
            Some(db)
        }
        None => None,
    };
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let client = Client::new(format!("http://{}", app.local_addr()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        client,
        data_dir,
        pg,
        _shutdown: tx,
        _dir: dir,
    }
}

/// The suite runs on PostgreSQL when `HEARTH_TEST_API_ON_POSTGRES=1` and
/// `HEARTH_TEST_POSTGRES_URL` are set (`.ci/run` does a second pass that way); on SQLite otherwise.
fn postgres_url() -> Option<String> {
    let on = std::env::var("HEARTH_TEST_API_ON_POSTGRES").is_ok_and(|v| v == "1");
    on.then(|| {
        std::env::var("HEARTH_TEST_POSTGRES_URL")
            .expect("HEARTH_TEST_API_ON_POSTGRES=1 needs HEARTH_TEST_POSTGRES_URL")
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Dropping a database needs async I/O, and Drop cannot await: do it on a thread of its own.
        if let Some(db) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(db.drop_now())
            })
            .join();
        }
    }
}

impl TestApp {
    /// Every byte the database holds: the SQLite files, or a plain `pg_dump` of the data.
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(db) = &self.pg {
            let out = std::process::Command::new("pg_dump")
                .args(["--data-only", "--no-password", "--dbname", &db.url])
                .output()
                .expect("run pg_dump");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return out.stdout;
        }
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&self.data_dir).expect("data dir") {
            let path = entry.expect("entry").path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hearth.db"))
            {
                bytes.extend(std::fs::read(&path).expect("read"));
            }
        }
        bytes
    }

    /// Registers a user and returns their tokens and a client signed in with them.
    pub async fn register(&self, email: &str) -> (AuthResponse, Client) {
        let req = RegisterRequest {
            email: email.into(),
            password: PASSWORD.into(),
            name: None,
            invite_token: None,
        };
        let auth = self.client.register(&req).await.expect("register");
        let client = self.client.with_token(&auth.access_token);
        (auth, client)
    }

    /// The first user (admin) and a second (user), on an open-registration server.
    pub async fn admin_and_user(&self) -> (Client, Client, AuthResponse, AuthResponse) {
        let (admin_auth, admin) = self.register("admin@example.com").await;
        let (user_auth, user) = self.register("user@example.com").await;
        (admin, user, admin_auth, user_auth)
    }
}

pub async fn spawn_open() -> TestApp {
    spawn_with(|s| s.auth.registration = hearth_core::api::Registration::Open).await
}

/// A fake upstream registered by `admin` as an OpenAI-compatible provider named `fake`, synced.
pub async fn fake_provider(admin: &Client) -> hearth_fake_llm::FakeLlm {
    let fake = hearth_fake_llm::FakeLlm::start()
        .await
        .expect("fake upstream");
    let provider = admin
        .create_provider(&hearth_core::providers::CreateProviderRequest {
            kind: hearth_core::providers::ProviderKind::Openai,
            name: "fake".into(),
            base_url: Some(fake.openai_url()),
            api_key: Some("sk-fake-upstream-key".into()),
        })
        .await
        .expect("create provider");
    admin.sync_provider(provider.id).await.expect("sync");
    fake
}

/// Names of the models `client` may use.
pub async fn model_names(client: &Client) -> Vec<String> {
    client
        .models()
        .await
        .expect("models")
        .into_iter()
        .map(|m| m.name)
        .collect()
}
