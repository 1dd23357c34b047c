//! The binary as an operator meets it: flags, admin commands, and clear one-line failures.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn hearth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HEARTH_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HEARTH_LOG__FORMAT", "pretty")
        .env("HEARTH_AUTH__ARGON2__MEMORY_KIB", "64")
        .env("HEARTH_AUTH__ARGON2__ITERATIONS", "1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run hearth")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The last stderr line, which is the one `main` writes on failure.
fn error_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hearth serve` on port 0 and waits for its ready line.
fn serve(data_dir: &Path) -> Server {
    serve_with(data_dir, &[])
}

/// Starts `hearth serve` on port 0 with extra environment variables.
fn serve_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    serve_args(data_dir, env, &[])
}

/// Starts `hearth serve` on port 0 with extra environment variables and flags.
fn serve_args(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
    let mut child = hearth()
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("Hearth is ready at "));
    let url = line
        .expect("server printed its ready line")
        .trim_start_matches("Hearth is ready at ")
        .to_owned();
    Server { child, url }
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("get");
        (
            response.status().as_u16(),
            response.text().await.expect("text"),
        )
    })
}

#[test]
fn version_and_default_config() {
    let out = run(hearth().arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("hearth {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(hearth().args(["admin", "default-config"]));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("[server]")
            && text.contains("listen = \"127.0.0.1:8080\"")
            && text.contains("[auth.argon2]")
    );
}

#[test]
fn serve_creates_a_private_data_dir_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = serve(&data);
    let (status, body) = get(&format!("{}ready", server.url));
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&data)
                .expect("data dir")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(data.join("jwt-secret"))
                .expect("secret")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    assert!(data.join("hearth.db").is_file());
}

#[test]
fn invalid_settings_stop_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 6] = [
        ("HEARTH_SERVER__LISTEN", "nowhere", "server.listen"),
        ("HEARTH_LOCAL__PARALLEL", "0", "local.parallel"),
        (
            "HEARTH_LOCAL__CONTEXT_PER_SEQUENCE",
            "lots",
            "local.context_per_sequence",
        ),
        ("HEARTH_AUTH__REGISTRATION", "maybe", "auth.registration"),
        (
            "HEARTH_AUTH__ACCESS_TOKEN_TTL_SECS",
            "-5",
            "auth.access_token_ttl_secs",
        ),
        ("HEARTH_DATABASE__URL", "oracle://db", "database.url"),
    ];
    for (key, value, name) in cases {
        let out = run(hearth()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("d"))
            .env(key, value));
        assert!(!out.status.success(), "{key}={value}");
        let line = error_line(&out);
        assert!(
            line.starts_with("hearth: error: invalid configuration") && line.contains(name),
            "{key}={value}: {line}"
        );
    }
    let out = run(hearth().args(["serve", "--listen", "not-an-addr"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));
    let out = run(hearth().args(["--config", "/nonexistent/hearth.toml", "serve"]));
    assert!(error_line(&out).contains("/nonexistent/hearth.toml"));
}

#[test]
fn unknown_variables_are_warned_about_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(hearth()
        .args(["admin", "migrate", "--data-dir"])
        .arg(dir.path())
        .env("HEARTH_SERVR__LISTEN", "x"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HEARTH_SERVR__LISTEN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreachable_or_corrupt_databases_fail_clearly_and_touch_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(hearth()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/hearth"])
        .env("HEARTH_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"));
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("cannot connect to PostgreSQL database hearth at 127.0.0.1:1"),
        "{}",
        error_line(&out)
    );

    let data = dir.path().join("corrupt");
    std::fs::create_dir_all(&data).expect("mkdir");
    let garbage =
        b"definitely not SQLite; a user's precious bytes that must stay as they are.".repeat(30);
    std::fs::write(data.join("hearth.db"), &garbage).expect("write");
    let out = run(hearth()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data));
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(
        line.contains("hearth.db") && line.contains("not a database"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(data.join("hearth.db")).expect("read"),
        garbage
    );
}

#[test]
fn admin_commands_create_reset_migrate_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = run(hearth()
        .args([
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
            "--data-dir",
        ])
        .arg(&data)
        .env("HEARTH_NEW_PASSWORD", "correct-horse-battery"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created ops@example.com (admin)"));
    let out = run(hearth()
        .args([
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--password",
            "correct-horse-battery",
            "--data-dir",
        ])
        .arg(&data));
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("already exists"),
        "{}",
        error_line(&out)
    );
    let out = run(hearth()
        .args([
            "admin",
            "create-user",
            "--email",
            "weak@example.com",
            "--password",
            "short",
            "--data-dir",
        ])
        .arg(&data));
    assert!(
        error_line(&out).contains("password"),
        "{}",
        error_line(&out)
    );

    let out = run(hearth()
        .args([
            "admin",
            "reset-password",
            "--email",
            "ops@example.com",
            "--password",
            "another-good-passphrase",
            "--data-dir",
        ])
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(hearth()
        .args([
            "admin",
            "reset-password",
            "--email",
            "ghost@example.com",
            "--password",
            "another-good-passphrase",
            "--data-dir",
        ])
        .arg(&data));
    assert!(
        error_line(&out).contains("user not found"),
        "{}",
        error_line(&out)
    );

    let out = run(hearth().args(["admin", "migrate", "--data-dir"]).arg(&data));
    assert!(
        out.status.success() && stdout(&out).contains("up to date"),
        "{}",
        stderr(&out)
    );

    // A backup of a live database, taken while the server runs.
    let server = serve(&data);
    let copy = dir.path().join("copy.db");
    let out = run(hearth()
        .args(["admin", "backup"])
        .arg(&copy)
        .arg("--data-dir")
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    drop(server);
    let out = run(hearth()
        .args([
            "admin",
            "reset-password",
            "--email",
            "ops@example.com",
            "--password",
            "correct-horse-battery",
        ])
        .arg("--database-url")
        .arg(format!("sqlite://{}", copy.display()))
        .arg("--data-dir")
        .arg(dir.path().join("other")));
    assert!(
        out.status.success(),
        "the copy holds the user: {}",
        stderr(&out)
    );
    let out = run(hearth()
        .args(["admin", "backup"])
        .arg(&copy)
        .arg("--data-dir")
        .arg(&data));
    assert!(
        !out.status.success() && error_line(&out).contains("already exists"),
        "never overwrites"
    );
}

#[test]
fn a_locked_sqlite_file_fails_clearly_after_the_timeout() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hearth.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Another process holds the write lock of a database that still needs its migrations.
    let mut holder = runtime.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .expect("connect");
        sqlx::query("CREATE TABLE precious (x TEXT)")
            .execute(&mut conn)
            .await
            .expect("create");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("lock");
        conn
    });
    let out = run(hearth()
        .args(["admin", "migrate", "--data-dir"])
        .arg(dir.path())
        .env("HEARTH_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"));
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(line.contains("locked"), "{line}");
    runtime.block_on(async {
        sqlx::query("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("unlock");
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sqlite_master WHERE name = 'users'")
                .fetch_one(&mut holder)
                .await
                .expect("read");
        assert_eq!(n, 0, "nothing was migrated under the lock");
    });
}

#[test]
fn models_are_listed_added_checked_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let models = |args: &[&str]| {
        run(hearth()
            .arg("models")
            .args(args)
            .arg("--data-dir")
            .arg(&data))
    };

    let out = models(&["list"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("no models installed"),
        "{}",
        stdout(&out)
    );

    let source = hearth_local::reference::dir().join(hearth_local::reference::EMBEDDING_MODEL);
    let out = models(&["add", source.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("installed `all-MiniLM-L6-v2`"));

    // Not a model, missing, broken, twice: refused with the path and the reason; nothing added.
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model").expect("write");
    let out = models(&["add", junk.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("junk.gguf: not a GGUF file"),
        "{}",
        error_line(&out)
    );
    let out = models(&["add", "/nonexistent/model.gguf"]);
    assert!(
        error_line(&out).contains("/nonexistent/model.gguf: does not exist"),
        "{}",
        error_line(&out)
    );
    let half = dir.path().join("half");
    std::fs::create_dir(&half).expect("mkdir");
    std::fs::write(half.join("config.json"), b"{}").expect("write");
    let out = models(&["add", half.to_str().expect("utf-8")]);
    assert!(
        error_line(&out).contains("needs tokenizer.json"),
        "{}",
        error_line(&out)
    );
    let out = models(&["add", source.to_str().expect("utf-8")]);
    assert!(
        error_line(&out).contains("already installed"),
        "{}",
        error_line(&out)
    );

    let out = models(&["list"]);
    let listed = stdout(&out);
    assert!(
        listed.contains("all-MiniLM-L6-v2") && listed.contains("embedding"),
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.contains("embedding")).count(),
        1
    );

    let out = models(&["remove", "all-MiniLM-L6-v2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = models(&["remove", "all-MiniLM-L6-v2"]);
    assert!(error_line(&out).contains("no model called `all-MiniLM-L6-v2`"));
    assert!(stdout(&models(&["list"])).contains("no models installed"));
}

/// `POST url` with a JSON body (and a bearer token); the JSON answer.
/// A models folder under `dir` holding only the reference embedder (linked).
fn embedder_models(dir: &Path) -> std::path::PathBuf {
    let models = dir.join("models");
    std::fs::create_dir(&models).expect("models");
    let embedder = hearth_local::reference::EMBEDDING_MODEL;
    std::os::unix::fs::symlink(
        hearth_local::reference::dir().join(embedder),
        models.join(embedder),
    )
    .expect("link embedder");
    models
}

fn post_json(url: &str, token: Option<&str>, body: serde_json::Value) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut req = reqwest::Client::new().post(url).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let response = req.send().await.expect("post");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.json().await.expect("json")
    })
}

/// Registers `email` on an open server and returns an API key with the knowledge scope.
fn knowledge_key(base: &str, email: &str) -> String {
    let auth = post_json(
        &format!("{base}/api/v1/auth/register"),
        None,
        serde_json::json!({"email": email, "password": "correct-horse-battery"}),
    );
    let token = auth["access_token"].as_str().expect("token");
    let key = post_json(
        &format!("{base}/api/v1/api-keys"),
        Some(token),
        serde_json::json!({"name": "cli", "scopes": ["knowledge"], "password": "correct-horse-battery"}),
    );
    key["key"].as_str().expect("key").to_owned()
}

#[test]
fn ingest_uploads_folders_and_search_prints_passages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = embedder_models(dir.path());
    let server = serve_with(
        &dir.path().join("data"),
        &[
            ("HEARTH_LOCAL__MODELS_DIR", models.to_str().expect("utf-8")),
            ("HEARTH_AUTH__REGISTRATION", "open"),
        ],
    );
    let base = server.url.trim_end_matches('/').to_owned();
    let key = knowledge_key(&base, "cli@example.com");

    // A folder tree with readable files, an unsupported one, a hidden one and a broken one.
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("guides/deep")).expect("mkdir");
    std::fs::write(
        docs.join("guides/vacuum.md"),
        "# Vacuum\n\nThe autovacuum daemon automates VACUUM and ANALYZE.\n",
    )
    .expect("write");
    std::fs::write(
        docs.join("guides/deep/bread.txt"),
        "Bread dough rises because yeast ferments sugars.\n",
    )
    .expect("write");
    std::fs::write(docs.join("cities.csv"), "city,country\nTokyo,Japan\n").expect("write");
    std::fs::write(docs.join("logo.png"), [0x89, b'P', b'N', b'G']).expect("write");
    std::fs::write(docs.join(".hidden.md"), "# secret").expect("write");
    std::fs::write(docs.join("empty.txt"), "").expect("write");

    let remote = ["--server", base.as_str(), "--api-key", key.as_str()];
    let out = run(hearth()
        .args(["ingest", "--kb", "Docs"])
        .arg(&docs)
        .args(remote));
    let printed = stdout(&out);
    assert!(
        printed.contains("created knowledge base \"Docs\""),
        "{printed}"
    );
    assert!(
        printed.contains("uploaded 4 of 4 files")
            && printed.contains("1 of unsupported types skipped"),
        "{printed}"
    );
    assert!(
        printed.contains("indexed 3 of 4 new documents"),
        "{printed}"
    );
    // The empty file failed: named with its reason, and the exit status says so.
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("empty.txt: the file is empty"),
        "{}",
        stderr(&out)
    );
    assert!(
        error_line(&out).contains("1 files could not be ingested"),
        "{}",
        error_line(&out)
    );

    // Again: everything is already there.
    let out = run(hearth()
        .args(["ingest", "--kb", "Docs"])
        .arg(docs.join("guides"))
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(2 already there"),
        "{}",
        stdout(&out)
    );

    let out = run(hearth()
        .args(["search", "--kb", "Docs", "autovacuum", "daemon"])
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.starts_with("1. vacuum.md › Vacuum"), "{printed}");
    assert!(
        printed.contains("The autovacuum daemon automates"),
        "{printed}"
    );

    // Retrieval quality on a queries file: each query's relevant document is found first.
    let queries = dir.path().join("queries.jsonl");
    std::fs::write(
        &queries,
        concat!(
            r#"{"query": "autovacuum daemon", "relevant": ["vacuum.md"], "kind": "keyword"}"#,
            "\n",
            r#"{"query": "why does dough rise", "relevant": ["bread.txt"], "kind": "question"}"#,
            "\n",
        ),
    )
    .expect("write");
    let out = run(hearth()
        .args(["eval", "retrieval", "--kb", "Docs", "--queries"])
        .arg(&queries)
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for row in [
        "| all | bm25 | 2 |",
        "| all | vector | 2 |",
        "| all | hybrid | 2 | 1.000 | 1.000 | 1.000 |",
        "| keyword | bm25 | 1 | 1.000 | 1.000 | 1.000 |",
    ] {
        assert!(table.contains(row), "{row} in\n{table}");
    }
    // Fusion weights for this evaluation only; a bad one is refused by the server, named.
    let out = run(hearth()
        .args([
            "eval",
            "retrieval",
            "--kb",
            "Docs",
            "--json",
            "--bm25-weight",
            "1",
        ])
        .args(["--vector-weight", "0", "--queries"])
        .arg(&queries)
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let ndcg = |mode: &str| {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["queries"] == "all" && r["mode"] == mode)
            .map(|r| r["ndcg@10"].clone())
    };
    assert_eq!(ndcg("hybrid"), ndcg("bm25"), "{rows}");
    let out = run(hearth()
        .args([
            "eval",
            "retrieval",
            "--kb",
            "Docs",
            "--bm25-weight=-1",
            "--queries",
        ])
        .arg(&queries)
        .args(remote));
    assert!(
        error_line(&out).contains("bm25_weight"),
        "{}",
        error_line(&out)
    );
    std::fs::write(&queries, "{\"query\": \"x\"}\n").expect("write");
    let out = run(hearth()
        .args(["eval", "retrieval", "--kb", "Docs", "--queries"])
        .arg(&queries)
        .args(remote));
    assert!(error_line(&out).contains("line 1"), "{}", error_line(&out));

    // Clear one-line failures.
    let out = run(hearth().args(["search", "--kb", "Nope", "x"]).args(remote));
    assert!(
        error_line(&out).contains("no knowledge base named \"Nope\""),
        "{}",
        error_line(&out)
    );
    let out = run(hearth()
        .args([
            "search",
            "--kb",
            "Docs",
            "x",
            "--api-key",
            "hk_wrong",
            "--server",
        ])
        .arg(&server.url));
    assert!(error_line(&out).contains("401"), "{}", error_line(&out));
    let out = run(hearth()
        .args(["ingest", "--kb", "Docs", "/nonexistent/folder"])
        .args(remote));
    assert!(
        error_line(&out).contains("/nonexistent/folder"),
        "{}",
        error_line(&out)
    );
    let out = run(hearth().args([
        "search",
        "--kb",
        "Docs",
        "x",
        "--api-key",
        "k",
        "--server",
        "http://127.0.0.1:9",
    ]));
    assert!(
        error_line(&out).contains("cannot reach the server"),
        "{}",
        error_line(&out)
    );
}

/// `GET url` with a bearer token; the JSON answer.
fn get_json(url: &str, token: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.json().await.expect("json")
    })
}

/// A WebSocket watching a user's document events (the server's own progress signal).
struct DocumentWatch {
    runtime: tokio::runtime::Runtime,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl DocumentWatch {
    fn new(base: &str, token: &str) -> Self {
        use futures_util::SinkExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
        let mut socket = runtime
            .block_on(tokio_tungstenite::connect_async(url))
            .expect("connect")
            .0;
        for frame in [
            serde_json::json!({"type": "auth", "token": token}),
            serde_json::json!({"type": "watch_documents"}),
        ] {
            runtime
                .block_on(socket.send(tokio_tungstenite::tungstenite::Message::Text(
                    frame.to_string().into(),
                )))
                .expect("send");
        }
        let mut watch = Self { runtime, socket };
        assert_eq!(watch.next()["type"], "ready");
        assert_eq!(watch.next()["type"], "ack");
        watch
    }

    /// The next JSON frame, which must come within two minutes.
    fn next(&mut self) -> serde_json::Value {
        use futures_util::StreamExt as _;
        loop {
            let socket = &mut self.socket;
            let frame = self
                .runtime
                .block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(120), socket.next()).await
                })
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                return serde_json::from_str(&text).expect("json frame");
            }
        }
    }

    /// Reads document frames until `done` says so.
    fn until(&mut self, mut done: impl FnMut(&serde_json::Value) -> bool) {
        loop {
            let frame = self.next();
            assert_eq!(frame["type"], "document", "{frame}");
            if done(&frame["document"]) {
                return;
            }
        }
    }
}

/// Waits until every document of knowledge base `kb` is indexed or failed (`watch` watches
/// already, so a document not finished in the listing sends an event later); the final list.
fn settled_documents(
    base: &str,
    key: &str,
    kb: &str,
    watch: &mut DocumentWatch,
) -> Vec<serde_json::Value> {
    let documents_url = format!("{base}/api/v1/knowledge-bases/{kb}/documents");
    let terminal = |d: &serde_json::Value| d["status"] == "indexed" || d["status"] == "failed";
    let mut pending: Vec<serde_json::Value> = get_json(&documents_url, key)
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| !terminal(d))
        .map(|d| d["id"].clone())
        .collect();
    if !pending.is_empty() {
        watch.until(|d| {
            if terminal(d) {
                pending.retain(|id| *id != d["id"]);
            }
            pending.is_empty()
        });
    }
    get_json(&documents_url, key)
        .as_array()
        .expect("list")
        .clone()
}

#[test]
fn a_server_killed_mid_ingest_finishes_every_document_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = embedder_models(dir.path());
    let data = dir.path().join("data");
    let env = [
        ("HEARTH_LOCAL__MODELS_DIR", models.to_str().expect("utf-8")),
        ("HEARTH_AUTH__REGISTRATION", "open"),
    ];
    let server = serve_with(&data, &env);
    let base = server.url.trim_end_matches('/').to_owned();
    let auth = post_json(
        &format!("{base}/api/v1/auth/register"),
        None,
        serde_json::json!({"email": "crash@example.com", "password": "correct-horse-battery"}),
    );
    let token = auth["access_token"].as_str().expect("token").to_owned();
    let key = post_json(
        &format!("{base}/api/v1/api-keys"),
        Some(&token),
        serde_json::json!({"name": "cli", "scopes": ["knowledge"], "password": "correct-horse-battery"}),
    )["key"]
        .as_str()
        .expect("key")
        .to_owned();

    // A long document (hundreds of chunks to embed) and two short ones.
    let mut watch = DocumentWatch::new(&base, &key);
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).expect("mkdir");
    let long: String = (0..600)
        .map(|i| format!("Paragraph {i} of the field manual: the lighthouse keeper trims wick number {i} at dusk.\n\n"))
        .collect();
    std::fs::write(docs.join("manual.txt"), &long).expect("write");
    std::fs::write(docs.join("a.md"), "# A\n\nThe first short note.").expect("write");
    std::fs::write(docs.join("b.md"), "# B\n\nThe second short note.").expect("write");
    let out = run(hearth()
        .args(["ingest", "--no-wait", "--kb", "Crash"])
        .arg(&docs)
        .args(["--server", base.as_str(), "--api-key", key.as_str()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let kbs = get_json(&format!("{base}/api/v1/knowledge-bases"), &key);
    let kb = kbs[0]["id"].as_str().expect("kb id").to_owned();

    // Kill the server (SIGKILL: no shutdown at all) while it embeds the long document.
    watch.until(|d| d["name"] == "manual.txt" && d["status"] == "embedding");
    drop(server);

    // Restarted on the same data dir, every document ends indexed, the long one whole.
    let server = serve_with(&data, &env);
    let base = server.url.trim_end_matches('/').to_owned();
    // Watching first, then listing: a document not finished in the list sends an event later.
    let mut watch = DocumentWatch::new(&base, &key);
    let finished = settled_documents(&base, &key, &kb, &mut watch);
    assert_eq!(finished.len(), 3);
    for d in &finished {
        assert_eq!(d["status"], "indexed", "{d}");
    }
    let manual = finished
        .iter()
        .find(|d| d["name"] == "manual.txt")
        .expect("manual");
    let out = run(hearth()
        .args([
            "search", "--kb", "Crash", "--mode", "bm25", "--top-k", "50", "wick", "599",
        ])
        .args(["--server", base.as_str(), "--api-key", key.as_str()]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("trims wick number 599"),
        "{}",
        stdout(&out)
    );
    assert!(manual["chunks"].as_i64().expect("chunks") > 10, "{manual}");
}

#[test]
fn output_into_a_pipe_whose_reader_left_ends_quietly() {
    // `hearth models list | head -0`: the reader is gone before the first line is written.
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = hearth()
        .args(["models", "list", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(writer)
        .output()
        .expect("run hearth");
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn hostile_files_fail_in_their_parser_process_and_the_server_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = embedder_models(dir.path());
    let limits = hearth_rag::corpus::limits();
    let budgets = [
        (
            "HEARTH_KNOWLEDGE__MAX_TEXT_BYTES",
            limits.max_text_bytes.to_string(),
        ),
        (
            "HEARTH_KNOWLEDGE__MAX_BLOCKS",
            limits.max_blocks.to_string(),
        ),
        ("HEARTH_KNOWLEDGE__MAX_DEPTH", limits.max_depth.to_string()),
        (
            "HEARTH_KNOWLEDGE__MAX_UNPACKED_BYTES",
            limits.max_unpacked_bytes.to_string(),
        ),
        ("HEARTH_KNOWLEDGE__MAX_PAGES", limits.max_pages.to_string()),
        // A parser process gets 128 MiB of address space: the binary maps ~60 MiB of it.
        ("HEARTH_KNOWLEDGE__PARSER_MEMORY_MIB", "128".to_string()),
        ("HEARTH_KNOWLEDGE__MAX_FILE_BYTES", (100 << 20).to_string()),
    ];
    let mut env: Vec<(&str, &str)> = budgets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("HEARTH_LOCAL__MODELS_DIR", models.to_str().expect("utf-8")));
    env.push(("HEARTH_AUTH__REGISTRATION", "open"));
    let server = serve_with(&dir.path().join("data"), &env);
    let base = server.url.trim_end_matches('/').to_owned();
    let auth = post_json(
        &format!("{base}/api/v1/auth/register"),
        None,
        serde_json::json!({"email": "bombs@example.com", "password": "correct-horse-battery"}),
    );
    let token = auth["access_token"].as_str().expect("token").to_owned();

    // The corpus, an ordinary file, and a file within every budget that needs more memory to
    // read than its parser process has: only the process limit stops that one.
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).expect("mkdir");
    let bombs = hearth_rag::corpus::bombs();
    for bomb in &bombs {
        std::fs::write(docs.join(&bomb.name), &bomb.bytes).expect("write bomb");
    }
    let ordinary = hearth_rag::corpus::ordinary();
    std::fs::write(docs.join(&ordinary.name), &ordinary.bytes).expect("write");
    std::fs::write(docs.join("memory.txt"), "a\n".repeat(32 << 20)).expect("write");
    let mut watch = DocumentWatch::new(&base, &token);
    let out = run(hearth()
        .args(["ingest", "--no-wait", "--kb", "Hostile"])
        .arg(&docs)
        .args(["--server", base.as_str(), "--api-key", token.as_str()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let kbs = get_json(&format!("{base}/api/v1/knowledge-bases"), &token);
    let kb = kbs[0]["id"].as_str().expect("kb id").to_owned();
    let documents = settled_documents(&base, &token, &kb, &mut watch);
    assert_eq!(documents.len(), bombs.len() + 2);
    let find = |name: &str| {
        documents
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .clone()
    };
    for bomb in &bombs {
        let doc = find(&bomb.name);
        assert_eq!(doc["status"], "failed", "{doc}");
        let reason = doc["error"].as_str().unwrap_or_default();
        assert!(reason.contains(bomb.reason), "{}: {reason}", bomb.name);
    }
    let memory = find("memory.txt");
    assert_eq!(memory["status"], "failed", "{memory}");
    assert!(
        memory["error"]
            .as_str()
            .unwrap_or_default()
            .contains("more than 128 MiB of memory"),
        "{memory}"
    );
    assert_eq!(find(&ordinary.name)["status"], "indexed");
    // The server stayed up throughout.
    assert_eq!(get(&format!("{base}/health")).0, 200);
}

#[test]
fn split_roles_need_postgresql_and_a_worker_ingests_for_a_server_without_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    // On embedded SQLite one process owns the store: both splits are refused, naming why.
    for args in [&["worker"][..], &["serve", "--no-jobs"][..]] {
        let out = run(hearth()
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("lite")));
        assert!(!out.status.success(), "{args:?}");
        assert!(
            error_line(&out).contains("needs PostgreSQL"),
            "{args:?}: {}",
            error_line(&out)
        );
    }

    let Ok(admin) = std::env::var("HEARTH_TEST_POSTGRES_URL") else {
        eprintln!("skipping the split run: HEARTH_TEST_POSTGRES_URL is unset");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime
        .block_on(hearth_store::testing::TempPostgres::create(&admin))
        .expect("database");
    let models = embedder_models(dir.path());
    // The two share the data dir as they would share a volume: the worker reads the originals
    // the server stored.
    let data = dir.path().join("data");
    let env = [
        ("HEARTH_DATABASE__URL", db.url.as_str()),
        ("HEARTH_LOCAL__MODELS_DIR", models.to_str().expect("utf-8")),
        ("HEARTH_AUTH__REGISTRATION", "open"),
        (
            "HEARTH_AUTH__JWT_SECRET",
            "a-secret-the-two-processes-share-000000",
        ),
    ];
    let has_pgvector = runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'vector'",
        )
        .fetch_one(&pool)
        .await
        .expect("extensions");
        pool.close().await;
        n > 0
    });
    if !has_pgvector {
        // Each process would keep its own vector index: refused, naming what is missing.
        let out = run(hearth()
            .envs(env.iter().copied())
            .args(["worker", "--data-dir"])
            .arg(&data));
        runtime.block_on(db.drop_now()).expect("drop database");
        assert!(!out.status.success());
        assert!(
            error_line(&out).contains("pgvector"),
            "{}",
            error_line(&out)
        );
        eprintln!("note: the split run itself needs PostgreSQL with pgvector (.ci/run has one)");
        return;
    }
    let server = serve_args(&data, &env, &["--no-jobs"]);
    let base = server.url.trim_end_matches('/').to_owned();
    let key = knowledge_key(&base, "split@example.com");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let first = write(
        "vacuum.md",
        "# Vacuum\n\nThe autovacuum daemon automates VACUUM and ANALYZE.\n",
    );
    let remote = ["--server", base.as_str(), "--api-key", key.as_str()];
    // Uploaded through the server, which runs no jobs: the document waits in the queue.
    let out = run(hearth()
        .args(["ingest", "--no-wait", "--kb", "Docs"])
        .arg(&first)
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));

    // A worker on the same database takes the jobs, oldest first (one ingest slot): once the
    // second upload is indexed, so is the first.
    let mut worker = hearth()
        .envs(env.iter().copied())
        .args(["worker", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    let ready = BufReader::new(worker.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "Hearth worker is running");
    assert!(ready, "the worker printed its ready line");
    let worker = Server {
        child: worker,
        url: String::new(),
    };
    let second = write(
        "bread.txt",
        "Bread dough rises because yeast ferments sugars.\n",
    );
    let out = run(hearth()
        .args(["ingest", "--kb", "Docs"])
        .arg(&second)
        .args(remote));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("indexed 1 of 1 new documents"),
        "{printed}"
    );
    let bases = get_json(&format!("{base}/api/v1/knowledge-bases"), &key);
    let kb = bases
        .as_array()
        .expect("list")
        .iter()
        .find(|b| b["name"] == "Docs")
        .map(|b| b["id"].as_str().expect("id").to_owned())
        .expect("Docs");
    let docs = get_json(
        &format!("{base}/api/v1/knowledge-bases/{kb}/documents"),
        &key,
    );
    drop((server, worker));
    runtime.block_on(db.drop_now()).expect("drop database");
    let statuses: Vec<&str> = docs
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, vec!["indexed", "indexed"], "{docs}");
}
