use hearth_client::Client;
use hearth_core::api::{AuthResponse, RegisterRequest};
use hearth_core::passwords::Argon2Cost;
use hearth_server::settings::Settings;
use hearth_server::Application;

pub const PASSWORD: &str = "correct-horse-battery";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub client: Client,
    pub data_dir: std::path::PathBuf,
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
        _shutdown: tx,
        _dir: dir,
    }
}

impl TestApp {
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
