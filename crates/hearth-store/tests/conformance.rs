//! One storage conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `HEARTH_TEST_POSTGRES_URL` is set (each test gets its own fresh database).

use hearth_store::ids::{ClaimId, JobId, SessionId, UserId};
use hearth_store::testing::TestStore;
use hearth_store::{
    Backend, ClaimRequest, Enqueued, Inserted, Job, JobFilter, JobState, NewApiKey, NewChunk,
    NewDocument, NewInvite, NewJob, NewKnowledgeBase, NewRefreshToken, NewUser, NewUserRole,
    RecoveredJobs, Store, StoreError, StoreOptions, Timestamp, UserPatch,
};

/// A store on a fresh database, and what keeps that database alive.
pub struct Fixture {
    pub store: Store,
    db: TestStore,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestStore::sqlite(dir.path()).await.expect("sqlite store");
        Self {
            store: db.store.clone(),
            db,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var("HEARTH_TEST_POSTGRES_URL") else {
            eprintln!("skipping the PostgreSQL conformance run: HEARTH_TEST_POSTGRES_URL is unset");
            return None;
        };
        let db = TestStore::postgres(&admin_url, &StoreOptions::default())
            .await
            .expect("postgres store");
        Some(Self {
            store: db.store.clone(),
            db,
            _dir: None,
        })
    }

    async fn finish(self) {
        self.db.finish().await.expect("close and drop");
    }
}

macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fx = super::Fixture::sqlite().await;
                    super::$name(&fx.store).await;
                    fx.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(fx) = super::Fixture::postgres().await else { return };
                    super::$name(&fx.store).await;
                    fx.finish().await;
                }
            )+
        }
    };
}

conformance!(
    migrations_are_applied_once,
    first_user_is_admin_then_users,
    emails_are_unique,
    users_get_find_update_list,
    sessions_and_refresh_tokens,
    api_keys_crud,
    invites_are_claimed_once,
    concurrent_first_users_make_one_admin,
    the_last_admin_stays,
    refresh_rotation_is_all_or_nothing,
    a_database_from_a_newer_binary_is_refused,
    deleting_a_user_cascades,
    providers_and_model_sync,
    conversations_messages_and_runs,
    llm_calls_filters_and_sums,
    sealed_columns_page_and_compare_and_set,
    knowledge_bases_documents_and_duplicates,
    ingest_rounds_move_by_condition,
    chunks_commit_atomically_and_search_by_text,
    pgvector_backfills_indexes_and_searches,
    jobs_claim_renew_complete_and_idempotency,
    jobs_retry_then_dead_then_rerun,
    jobs_whose_lease_ran_out_are_taken_over,
    jobs_cancel_queued_and_running,
    jobs_order_turns_and_owner_limits,
    concurrent_job_claims_take_each_job_once,
);

fn new_user(email: &str, role: NewUserRole) -> NewUser {
    NewUser {
        email: email.into(),
        name: "N".into(),
        password_hash: "$argon2id$x".into(),
        role,
    }
}

async fn migrations_are_applied_once(store: &Store) {
    assert_eq!(store.pending_migrations().await.expect("pending"), 0);
    let again = store
        .migrate(std::path::Path::new("/nonexistent"))
        .await
        .expect("no-op migrate");
    assert_eq!(again.applied, 0);
    store.ping().await.expect("ping");
    assert!(matches!(
        store.backend(),
        Backend::Sqlite | Backend::Postgres
    ));
}

async fn first_user_is_admin_then_users(store: &Store) {
    let first = store
        .create_user(new_user("a@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("first");
    assert_eq!(first.role, "admin");
    let second = store
        .create_user(new_user("b@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("second");
    assert_eq!(second.role, "user");
    assert_eq!(store.count_users().await.expect("count"), 2);
    assert_eq!(store.count_active_admins().await.expect("admins"), 1);
}

async fn emails_are_unique(store: &Store) {
    store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("first");
    let err = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.count_users().await.expect("count"), 1);
}

async fn users_get_find_update_list(store: &Store) {
    let u = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    assert_eq!(store.get_user(u.id).await.expect("get").email, "a@x.io");
    assert!(matches!(
        store.get_user(UserId::new()).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .find_user(UserId::new())
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store
            .find_user_by_email("a@x.io")
            .await
            .expect("by email")
            .map(|x| x.id),
        Some(u.id)
    );
    let updated = store
        .update_user(
            u.id,
            UserPatch {
                role: Some("admin".into()),
                disabled: Some(true),
                name: None,
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (
            updated.role.as_str(),
            updated.disabled,
            updated.name.as_str()
        ),
        ("admin", true, "N")
    );
    assert!(updated.updated_at >= u.updated_at);
    assert!(matches!(
        store.update_user(UserId::new(), UserPatch::default()).await,
        Err(StoreError::NotFound)
    ));
    store
        .set_password_hash(u.id, "$argon2id$new")
        .await
        .expect("set hash");
    assert_eq!(
        store.get_user(u.id).await.expect("get").password_hash,
        "$argon2id$new"
    );
    assert!(matches!(
        store.set_password_hash(UserId::new(), "h").await,
        Err(StoreError::NotFound)
    ));
    store
        .create_user(new_user("b@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("second");
    let all = store.list_users().await.expect("list");
    assert_eq!(
        all.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["a@x.io", "b@x.io"]
    );
}

async fn sessions_and_refresh_tokens(store: &Store) {
    let u = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    let s1 = store.create_session(u.id).await.expect("s1");
    let s2 = store.create_session(u.id).await.expect("s2");
    let auth = store
        .find_session_auth(s1.id)
        .await
        .expect("auth read")
        .expect("found");
    assert_eq!(
        (
            auth.user_id,
            auth.email.as_str(),
            auth.revoked_at,
            auth.scopes
        ),
        (u.id, "a@x.io", None, None)
    );
    let t = store
        .create_refresh_token(NewRefreshToken {
            session_id: s1.id,
            token_hash: "h1".into(),
            expires_at: Timestamp::now().plus_secs(60),
        })
        .await
        .expect("token");
    assert_eq!(
        store
            .find_refresh_token_by_hash("h1")
            .await
            .expect("find")
            .map(|x| x.id),
        Some(t.id)
    );
    assert!(store
        .find_refresh_token_by_hash("nope")
        .await
        .expect("find")
        .is_none());
    assert!(store.revoke_session(s1.id).await.expect("revoke"));
    assert!(
        !store.revoke_session(s1.id).await.expect("revoke twice"),
        "already revoked"
    );
    assert!(store
        .find_session(s1.id)
        .await
        .expect("find")
        .expect("exists")
        .revoked_at
        .is_some());
    assert_eq!(
        store
            .revoke_user_sessions(u.id, Some(s2.id))
            .await
            .expect("others"),
        0,
        "s2 kept, s1 already revoked"
    );
    assert_eq!(
        store.revoke_user_sessions(u.id, None).await.expect("all"),
        1
    );
    assert!(store
        .find_session(SessionId::new())
        .await
        .expect("find")
        .is_none());
}

async fn api_keys_crud(store: &Store) {
    let u = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    let other = store
        .create_user(new_user("b@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    let k = store
        .create_api_key(NewApiKey {
            user_id: u.id,
            name: "k".into(),
            prefix: "hk_abc".into(),
            key_hash: "kh".into(),
            expires_at: None,
            scopes: "read chat".into(),
        })
        .await
        .expect("key");
    store
        .create_api_key(NewApiKey {
            user_id: other.id,
            name: "o".into(),
            prefix: "hk_def".into(),
            key_hash: "kh2".into(),
            expires_at: None,
            scopes: "read chat".into(),
        })
        .await
        .expect("other key");
    assert_eq!(store.list_api_keys(u.id).await.expect("list").len(), 1);
    assert_eq!(
        store
            .find_api_key(k.id)
            .await
            .expect("find")
            .expect("key")
            .scopes,
        "read chat"
    );
    assert_eq!(
        store
            .find_api_key_by_hash("kh")
            .await
            .expect("by hash")
            .map(|x| x.id),
        Some(k.id)
    );
    let auth = store
        .find_api_key_auth("kh")
        .await
        .expect("auth read")
        .expect("found");
    assert_eq!(
        (
            auth.credential_id,
            auth.user_id,
            auth.disabled,
            auth.revoked_at,
            auth.scopes.as_deref()
        ),
        (k.id.to_string(), u.id, false, None, Some("read chat"))
    );
    assert!(store
        .find_api_key_auth("nope")
        .await
        .expect("read")
        .is_none());
    let at = Timestamp::now();
    store.touch_api_key(k.id, at).await.expect("touch");
    assert_eq!(
        store
            .find_api_key(k.id)
            .await
            .expect("find")
            .expect("exists")
            .last_used_at,
        Some(at)
    );
    let dup = store
        .create_api_key(NewApiKey {
            user_id: u.id,
            name: "d".into(),
            prefix: "p".into(),
            key_hash: "kh".into(),
            expires_at: None,
            scopes: "read chat".into(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    store.delete_api_key(k.id).await.expect("delete");
    assert!(matches!(
        store.delete_api_key(k.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_api_keys(other.id).await.expect("list").len(),
        1,
        "other user's key untouched"
    );
}

async fn invites_are_claimed_once(store: &Store) {
    let admin = store
        .create_user(new_user("a@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("admin");
    let invite = store
        .create_invite(NewInvite {
            token_hash: "ih".into(),
            email: Some("b@x.io".into()),
            created_by: admin.id,
            expires_at: Timestamp::now().plus_secs(60),
        })
        .await
        .expect("invite");
    let user = NewUserRole::Exact("user".into());
    let (b, c) = tokio::join!(
        store.create_invited_user(new_user("b@x.io", user.clone()), invite.id),
        store.create_invited_user(new_user("c@x.io", user), invite.id),
    );
    let winners: Vec<_> = [b.expect("b"), c.expect("c")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one registration claims the invite"
    );
    assert_eq!(
        store.count_users().await.expect("count"),
        2,
        "the loser was not inserted"
    );
    let stored = store
        .find_invite_by_hash("ih")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(stored.used_by, Some(winners[0].id));
}

async fn concurrent_first_users_make_one_admin(store: &Store) {
    let (a, b) = tokio::join!(
        store.create_user(new_user("a@x.io", NewUserRole::AdminIfFirst)),
        store.create_user(new_user("b@x.io", NewUserRole::AdminIfFirst)),
    );
    let roles = [a.expect("a").role, b.expect("b").role];
    assert_eq!(
        roles.iter().filter(|r| *r == "admin").count(),
        1,
        "{roles:?}"
    );
}

async fn the_last_admin_stays(store: &Store) {
    let a = store
        .create_user(new_user("a@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("a");
    let b = store
        .create_user(new_user("b@x.io", NewUserRole::Exact("admin".into())))
        .await
        .expect("b");
    // Two admins demoting each other at once: one must fail.
    let demote = || UserPatch {
        role: Some("user".into()),
        ..UserPatch::default()
    };
    let (x, y) = tokio::join!(
        store.update_user(a.id, demote()),
        store.update_user(b.id, demote())
    );
    let failed: Vec<_> = [x, y].into_iter().filter_map(Result::err).collect();
    assert_eq!(failed.len(), 1, "exactly one demotion is refused");
    assert!(matches!(&failed[0], StoreError::Conflict(what) if what == "last_admin"));
    assert_eq!(store.count_active_admins().await.expect("admins"), 1);
    let admin = if store.get_user(a.id).await.expect("a").role == "admin" {
        a.id
    } else {
        b.id
    };
    let disable = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    assert!(matches!(
        store.update_user(admin, disable).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        !store.get_user(admin).await.expect("admin").disabled,
        "nothing changed"
    );
}

async fn refresh_rotation_is_all_or_nothing(store: &Store) {
    let u = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    let s = store.create_session(u.id).await.expect("session");
    let first = store
        .create_refresh_token(NewRefreshToken {
            session_id: s.id,
            token_hash: "h1".into(),
            expires_at: Timestamp::now().plus_secs(60),
        })
        .await
        .expect("token");
    let next = |hash: &str| NewRefreshToken {
        session_id: s.id,
        token_hash: hash.into(),
        expires_at: Timestamp::now().plus_secs(60),
    };
    let (a, b) = tokio::join!(
        store.rotate_refresh_token(first.id, next("h2")),
        store.rotate_refresh_token(first.id, next("h3"))
    );
    assert_eq!(
        [a.expect("a"), b.expect("b")]
            .iter()
            .filter(|won| **won)
            .count(),
        1
    );
    let successors = [
        store.find_refresh_token_by_hash("h2").await.expect("h2"),
        store.find_refresh_token_by_hash("h3").await.expect("h3"),
    ];
    assert_eq!(
        successors.iter().flatten().count(),
        1,
        "only the winner stored a successor"
    );
}

async fn a_database_from_a_newer_binary_is_refused(store: &Store) {
    assert!(store.is_migrated().await.expect("is_migrated"));
    let blob = match store.backend() {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    store
        .execute_admin(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'from the future', TRUE, {blob}, 1)"
        ))
        .await
        .expect("insert a migration this binary does not know");
    let err = store
        .migrate(std::path::Path::new("/nonexistent"))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("newer Hearth"), "{err}");
}

async fn deleting_a_user_cascades(store: &Store) {
    let u = store
        .create_user(new_user("a@x.io", NewUserRole::Exact("user".into())))
        .await
        .expect("create");
    let s = store.create_session(u.id).await.expect("session");
    store
        .create_refresh_token(NewRefreshToken {
            session_id: s.id,
            token_hash: "h".into(),
            expires_at: Timestamp::now().plus_secs(60),
        })
        .await
        .expect("token");
    store
        .create_api_key(NewApiKey {
            user_id: u.id,
            name: "k".into(),
            prefix: "p".into(),
            key_hash: "kh".into(),
            expires_at: None,
            scopes: "read chat".into(),
        })
        .await
        .expect("key");
    store.delete_user(u.id).await.expect("delete");
    assert!(store.find_session(s.id).await.expect("find").is_none());
    assert!(store
        .find_refresh_token_by_hash("h")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_api_key_by_hash("kh")
        .await
        .expect("find")
        .is_none());
}

#[tokio::test]
async fn sqlite_backup_is_a_consistent_copy_and_migrate_backs_up_first() {
    let fx = Fixture::sqlite().await;
    fx.store
        .create_user(new_user("a@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("copy.db");
    fx.store.backup(&copy).await.expect("backup");
    assert!(
        matches!(fx.store.backup(&copy).await, Err(StoreError::Open(_))),
        "never overwrites"
    );
    let restored = Store::open(
        &format!("sqlite://{}", copy.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("open copy");
    assert_eq!(restored.count_users().await.expect("count"), 1);
    restored.close().await;
    fx.finish().await;
}

#[tokio::test]
async fn backups_never_create_a_missing_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.db");
    let options = StoreOptions {
        create_if_missing: false,
        ..StoreOptions::default()
    };
    let err = Store::open(&format!("sqlite://{}", missing.display()), &options)
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("missing.db"), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn bad_urls_and_files_give_one_clear_error() {
    let err = Store::open("mysql://localhost/x", &StoreOptions::default())
        .await
        .expect_err("scheme");
    assert!(
        err.to_string()
            .contains("unsupported database URL scheme `mysql`"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hearth.db");
    let garbage =
        b"this is not a database, it is a text file with enough bytes to look like a header...."
            .repeat(20);
    std::fs::write(&path, &garbage).expect("write");
    let err = Store::open(
        &format!("sqlite://{}", path.display()),
        &StoreOptions::default(),
    )
    .await
    .expect_err("corrupt");
    assert!(err.to_string().contains("not a database"), "{err}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        garbage,
        "the file is untouched"
    );
    let quick = StoreOptions {
        create_if_missing: true,
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(2),
    };
    let err = Store::open("postgres://nobody@127.0.0.1:1/none", &quick)
        .await
        .expect_err("unreachable");
    assert!(
        err.to_string()
            .contains("cannot connect to PostgreSQL database none at 127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_migrate_backs_up_an_existing_database_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("hearth.db").display());
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open");
    // A database that holds data but predates this binary's migrations.
    store
        .execute_admin("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
        .await
        .expect("seed");
    let pending = store.pending_migrations().await.expect("pending");
    assert!(pending >= 1);
    let report = store
        .migrate(&dir.path().join("backups"))
        .await
        .expect("migrate");
    assert_eq!(report.applied, pending);
    let backup = report.backup.expect("a backup was made");
    let copy = Store::open(
        &format!("sqlite://{}", backup.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("open backup");
    assert_eq!(
        copy.pending_migrations().await.expect("pending in copy"),
        pending,
        "the copy is the pre-migration state"
    );
    copy.close().await;
    // A brand-new database has nothing to protect: no backup.
    let fresh = Fixture::sqlite().await;
    let dir2 = tempfile::tempdir().expect("tempdir");
    let url2 = format!("sqlite://{}", dir2.path().join("new.db").display());
    let new_store = Store::open(&url2, &StoreOptions::default())
        .await
        .expect("open");
    assert!(new_store
        .migrate(&dir2.path().join("backups"))
        .await
        .expect("migrate")
        .backup
        .is_none());
    new_store.close().await;
    fresh.finish().await;
    store.close().await;
}

#[tokio::test]
async fn postgres_backup_uses_pg_dump() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    fx.store
        .create_user(new_user("a@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("hearth.dump");
    fx.store.backup(&dest).await.expect("pg_dump backup");
    let bytes = std::fs::read(&dest).expect("read dump");
    assert!(bytes.starts_with(b"PGDMP"), "a custom-format dump");
    fx.finish().await;
}

async fn providers_and_model_sync(store: &Store) {
    use hearth_store::{ModelPatch, NewProvider, ProviderPatch, SyncedModel};
    let p = store
        .create_provider(NewProvider {
            id: hearth_store::ids::ProviderId::new(),
            kind: "openai".into(),
            name: "p".into(),
            base_url: Some("http://x/v1".into()),
            api_key_enc: Some("v1.k.abc".into()),
        })
        .await
        .expect("provider");
    let dup = store
        .create_provider(NewProvider {
            id: hearth_store::ids::ProviderId::new(),
            kind: "openai".into(),
            name: "p".into(),
            base_url: None,
            api_key_enc: None,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let cleared = store
        .update_provider(
            p.id,
            ProviderPatch {
                api_key_enc: Some(None),
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert!(cleared.api_key_enc.is_none() && !cleared.enabled);
    assert_eq!(
        cleared.base_url.as_deref(),
        Some("http://x/v1"),
        "untouched fields stay"
    );

    let found = |ctx: Option<i64>| {
        vec![SyncedModel {
            upstream_id: "m1".into(),
            name: "m1".into(),
            display_name: "M1".into(),
            context_length: ctx,
            supports_embeddings: false,
        }]
    };
    let models = store
        .sync_models(p.id, &found(Some(4096)))
        .await
        .expect("sync");
    assert_eq!(models.len(), 1);
    store
        .update_model(
            models[0].id,
            ModelPatch {
                enabled: Some(false),
                aliases: Some("[\"a\"]".into()),
                input_price_per_mtok: Some(Some(2.5)),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    // A second sync keeps admin choices and refreshes what the upstream reports.
    let again = store
        .sync_models(p.id, &found(Some(8192)))
        .await
        .expect("resync");
    assert_eq!(again.len(), 1);
    assert!(!again[0].enabled);
    assert_eq!(again[0].aliases, "[\"a\"]");
    assert_eq!(again[0].input_price_per_mtok, Some(2.5));
    assert_eq!(again[0].context_length, Some(8192));
    assert!(store.model_name_taken("m1").await.expect("taken"));

    // An embedding model: no streaming or tools by default; its vector length is kept.
    let embed = store
        .sync_models(
            p.id,
            &[SyncedModel {
                upstream_id: "e1".into(),
                name: "e1".into(),
                display_name: "E1".into(),
                context_length: None,
                supports_embeddings: true,
            }],
        )
        .await
        .expect("sync embedder");
    let e1 = embed.iter().find(|m| m.name == "e1").expect("e1");
    assert!(e1.supports_embeddings && !e1.supports_streaming && !e1.supports_tools);
    assert_eq!(e1.embedding_dimensions, None);
    store
        .set_embedding_dimensions(e1.id, 1536)
        .await
        .expect("dims");
    let e1 = store.find_model(e1.id).await.expect("find").expect("e1");
    assert_eq!(e1.embedding_dimensions, Some(1536));
    let patched = store
        .update_model(
            e1.id,
            ModelPatch {
                supports_embeddings: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("patch embedder");
    assert!(!patched.supports_embeddings);
    assert!(store.delete_provider(p.id).await.expect("delete"));
    assert!(
        store.list_models(None).await.expect("models").is_empty(),
        "models cascade"
    );
}

async fn conversations_messages_and_runs(store: &Store) {
    use hearth_store::ids::{MessageId, RunId};
    use hearth_store::NewMessage;
    let user = store
        .create_user(new_user("c@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("user");
    let conv = store
        .create_conversation(
            hearth_store::ids::ConversationId::new(),
            user.id,
            "t",
            Some("m"),
        )
        .await
        .expect("conv");
    let (q, a) = (MessageId::new(), MessageId::new());
    let msg = |id, parent, role: &str, status: &str| NewMessage {
        id,
        conversation_id: conv.id,
        parent_id: parent,
        role: role.into(),
        content_enc: "c".into(),
        model: None,
        status: status.into(),
    };
    store
        .append_messages(&[
            msg(q, None, "user", "complete"),
            msg(a, Some(q), "assistant", "streaming"),
        ])
        .await
        .expect("append");
    assert_eq!(
        store
            .find_conversation(conv.id)
            .await
            .expect("find")
            .expect("some")
            .active_leaf_id,
        Some(a)
    );
    let run = RunId::new();
    store
        .create_run(run, user.id, conv.id, a, "old-instance")
        .await
        .expect("run");
    assert_eq!(
        store.find_run_for_message(a).await.expect("by message"),
        Some(run)
    );
    // A live instance keeps its runs; a starting sole process takes everyone else's as left.
    store
        .heartbeat_instance("old-instance")
        .await
        .expect("beat");
    let alive_since = Timestamp::from_millis(Timestamp::now().millis() - 60_000);
    assert_eq!(
        store
            .fail_orphaned_runs("restarted", alive_since, None)
            .await
            .expect("sweep"),
        0,
        "the instance is alive"
    );
    assert_eq!(
        store.list_messages(conv.id).await.expect("list")[1].status,
        "streaming"
    );
    assert_eq!(
        store
            .fail_orphaned_runs("restarted", alive_since, Some("new-instance"))
            .await
            .expect("sole process"),
        1
    );
    let messages = store.list_messages(conv.id).await.expect("list");
    assert_eq!(messages[1].status, "error");
    assert_eq!(
        store
            .find_run(run)
            .await
            .expect("run")
            .expect("some")
            .status,
        "error"
    );
    store
        .update_message(a, Some("c2"), "complete", None)
        .await
        .expect("update");
    store
        .finish_run(run, "complete", "log")
        .await
        .expect("finish");
    let all = store
        .list_user_messages(user.id, None, 10)
        .await
        .expect("user messages");
    assert_eq!(all.len(), 2);
    // Page by page, newest first, each message once.
    let first = store
        .list_user_messages(user.id, None, 1)
        .await
        .expect("page 1");
    let rest = store
        .list_user_messages(user.id, Some((first[0].created_at, first[0].id)), 10)
        .await
        .expect("page 2");
    assert_eq!(
        first.iter().chain(&rest).map(|m| m.id).collect::<Vec<_>>(),
        all.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    assert!(store.delete_conversation(conv.id).await.expect("delete"));
    assert!(
        store.find_run(run).await.expect("run").is_none(),
        "runs cascade"
    );
}

async fn llm_calls_filters_and_sums(store: &Store) {
    use hearth_store::ids::LlmCallId;
    use hearth_store::{LlmCall, LlmCallFilter};
    let user = store
        .create_user(new_user("u@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("user");
    let call = |model: &str, tokens: i64, error: Option<&str>, at: i64| LlmCall {
        id: LlmCallId::new(),
        user_id: Some(user.id),
        run_id: None,
        source: "chat".into(),
        model: model.into(),
        provider_id: None,
        input_tokens: tokens,
        output_tokens: tokens,
        latency_ms: 5,
        ttft_ms: Some(1),
        cost_usd: Some(0.5),
        tool_calls: 0,
        error: error.map(str::to_owned),
        created_at: Timestamp::from_millis(at),
    };
    let now = Timestamp::now().millis();
    for c in [
        call("a", 10, None, now),
        call("a", 5, Some("down"), now),
        call("b", 1, None, now - 86_400_000 * 2),
    ] {
        store.record_llm_call(&c).await.expect("record");
    }
    let all = |f: LlmCallFilter| async move {
        store
            .list_llm_calls(&LlmCallFilter { limit: 100, ..f })
            .await
            .expect("list")
    };
    assert_eq!(all(LlmCallFilter::default()).await.len(), 3);
    assert_eq!(
        all(LlmCallFilter {
            model: Some("a".into()),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        all(LlmCallFilter {
            errors_only: true,
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    let since = Timestamp::from_millis(now - 86_400_000);
    assert_eq!(
        all(LlmCallFilter {
            since: Some(since),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        store
            .tokens_used_since(user.id, since)
            .await
            .expect("tokens"),
        30
    );
    // Built-in embedders' calls are free of the quota; a provider's count.
    let provider = store
        .create_provider(hearth_store::NewProvider {
            id: hearth_store::ids::ProviderId::new(),
            kind: "openai".into(),
            name: "paid".into(),
            base_url: Some("http://x/v1".into()),
            api_key_enc: None,
        })
        .await
        .expect("provider");
    let embed = |provider_id, tokens| LlmCall {
        source: "embed_ingest".into(),
        provider_id,
        input_tokens: tokens,
        output_tokens: 0,
        model: "e".into(),
        ..call("e", 0, None, now)
    };
    store
        .record_llm_calls(&[embed(None, 1000), embed(Some(provider.id), 7)])
        .await
        .expect("record embeddings");
    assert_eq!(
        store
            .tokens_used_since(user.id, since)
            .await
            .expect("tokens"),
        37
    );
    let sums = store
        .usage_summary(since, Some(user.id))
        .await
        .expect("sums");
    let sums: Vec<_> = sums.into_iter().filter(|s| s.model == "a").collect();
    assert_eq!(sums.len(), 1);
    assert_eq!((sums[0].calls, sums[0].input_tokens), (2, 15));
    assert_eq!(sums[0].cost_usd, Some(1.0));
}

async fn sealed_columns_page_and_compare_and_set(store: &Store) {
    use hearth_store::Sealed;
    let user = store
        .create_user(new_user("s@x.io", NewUserRole::AdminIfFirst))
        .await
        .expect("user");
    for i in 0..5 {
        store
            .create_conversation(
                hearth_store::ids::ConversationId::new(),
                user.id,
                &format!("t{i}"),
                None,
            )
            .await
            .expect("conv");
    }
    let first = store
        .sealed_page(Sealed::ConversationTitle, "", 3)
        .await
        .expect("page");
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|r| r.owner == Some(user.id)));
    let rest = store
        .sealed_page(Sealed::ConversationTitle, &first[2].id, 3)
        .await
        .expect("page");
    assert_eq!(rest.len(), 2);
    let row = &first[0];
    assert!(store
        .reseal(Sealed::ConversationTitle, &row.id, &row.value, "new")
        .await
        .expect("reseal"));
    assert!(
        !store
            .reseal(Sealed::ConversationTitle, &row.id, &row.value, "newer")
            .await
            .expect("stale"),
        "compare-and-set"
    );
    assert!(store
        .sealed_page(Sealed::ProviderKey, "", 10)
        .await
        .expect("none")
        .is_empty());
    assert_eq!(store.sealed_format().await.expect("format"), None);
    store.mark_sealed_format("v2").await.expect("mark");
    store.mark_sealed_format("v3").await.expect("mark again");
    assert_eq!(
        store.sealed_format().await.expect("format").as_deref(),
        Some("v3")
    );
}

async fn knowledge_owner(store: &Store, email: &str) -> UserId {
    store
        .create_user(new_user(email, NewUserRole::AdminIfFirst))
        .await
        .expect("user")
        .id
}

fn new_kb(user: UserId, name: &str) -> NewKnowledgeBase {
    NewKnowledgeBase {
        user_id: user,
        name: name.into(),
        description: String::new(),
        embedding_model: "all-MiniLM-L6-v2".into(),
        dimensions: 4,
    }
}

fn new_doc(kb: hearth_store::ids::KnowledgeBaseId, name: &str, hash: &str) -> NewDocument {
    NewDocument {
        id: hearth_store::ids::DocumentId::new(),
        kb_id: kb,
        name: name.into(),
        format: "txt".into(),
        size_bytes: 10,
        content_hash: hash.into(),
        metadata: "{}".into(),
    }
}

fn chunk(position: i64, text: &str) -> NewChunk {
    NewChunk {
        position,
        headings: "Intro".into(),
        text: text.into(),
        page: None,
        tokens: 3,
        embedding: [1.0f32, 0.0, 0.0, 0.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect(),
    }
}

async fn knowledge_bases_documents_and_duplicates(store: &Store) {
    let alice = knowledge_owner(store, "kb-a@x.io").await;
    let bob = knowledge_owner(store, "kb-b@x.io").await;
    let kb = store
        .create_knowledge_base(new_kb(alice, "Docs"))
        .await
        .expect("kb");
    assert_eq!((kb.documents, kb.chunks), (0, 0));
    assert!(matches!(
        store.create_knowledge_base(new_kb(alice, "Docs")).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_knowledge_base(new_kb(bob, "Docs"))
        .await
        .expect("same name, other user");
    assert_eq!(
        store
            .list_knowledge_bases(Some(alice))
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        store.list_knowledge_bases(None).await.expect("all").len(),
        2
    );

    let first = match store
        .insert_document(new_doc(kb.id, "a.txt", "h1"))
        .await
        .expect("doc")
    {
        Inserted::New(d) => d,
        Inserted::Duplicate(_) => panic!("first upload is new"),
    };
    assert_eq!(first.status, hearth_store::DocumentState::Queued);
    match store
        .insert_document(new_doc(kb.id, "copy.txt", "h1"))
        .await
        .expect("dup")
    {
        Inserted::Duplicate(d) => assert_eq!(d.id, first.id),
        Inserted::New(_) => panic!("same content is a duplicate"),
    }
    let renamed = store
        .update_knowledge_base(kb.id, Some("Manuals"), Some("how-tos"))
        .await
        .expect("rename")
        .expect("exists");
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("Manuals", "how-tos")
    );
    assert_eq!(renamed.documents, 1);
    assert_eq!(store.list_documents(kb.id).await.expect("docs").len(), 1);

    assert!(store.delete_knowledge_base(kb.id).await.expect("delete"));
    assert!(store.find_document(first.id).await.expect("find").is_none());
    assert!(!store.delete_knowledge_base(kb.id).await.expect("again"));
}

async fn ingest_rounds_move_by_condition(store: &Store) {
    use hearth_store::DocumentState as D;
    let user = knowledge_owner(store, "kb-q@x.io").await;
    let kb = store
        .create_knowledge_base(new_kb(user, "Q"))
        .await
        .expect("kb");
    let mut ids = Vec::new();
    for i in 0..3 {
        let Inserted::New(d) = store
            .insert_document(new_doc(kb.id, &format!("{i}.txt"), &format!("h{i}")))
            .await
            .expect("doc")
        else {
            panic!("new")
        };
        assert_eq!((d.status, d.ingest_gen, d.attempts), (D::Queued, 0, 0));
        ids.push(d.id);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);

    // A round starts only at its own generation; starting again (a later attempt) counts.
    assert!(store.start_document(a, 1).await.expect("start").is_none());
    let started = store.start_document(a, 0).await.expect("start").expect("a");
    assert_eq!((started.status, started.attempts), (D::Parsing, 1));
    assert!(store
        .advance_document(a, 0, D::Embedding)
        .await
        .expect("advance"));
    let again = store.start_document(a, 0).await.expect("start").expect("a");
    assert_eq!((again.status, again.attempts), (D::Parsing, 2));

    // A failed document stays failed: nothing advances or starts it.
    store.start_document(b, 0).await.expect("start").expect("b");
    assert!(store
        .fail_document(b, 0, "the file is empty")
        .await
        .expect("fail"));
    assert!(!store
        .advance_document(b, 0, D::Embedding)
        .await
        .expect("stays failed"));
    assert!(store.start_document(b, 0).await.expect("start").is_none());
    // A queued document cannot be advanced or failed as if started.
    assert!(!store
        .advance_document(c, 0, D::Embedding)
        .await
        .expect("queued"));
    assert!(!store.fail_document(c, 0, "no").await.expect("queued"));

    // A shutdown releases a started document without counting the attempt.
    assert!(store.release_document(a, 0).await.expect("release"));
    let released = store.find_document(a).await.expect("a").expect("a");
    assert_eq!((released.status, released.attempts), (D::Queued, 1));
    assert!(!store.release_document(a, 0).await.expect("not started"));

    // A retry is a new round: the old round's generation no longer starts it.
    let requeued = store
        .requeue_document(b)
        .await
        .expect("requeue")
        .expect("was failed");
    assert_eq!(
        (requeued.status, requeued.attempts, requeued.ingest_gen),
        (D::Queued, 0, 1)
    );
    assert!(store.requeue_document(b).await.expect("again").is_none());
    assert!(store
        .start_document(b, 0)
        .await
        .expect("old round")
        .is_none());

    // Rounds without a live job: none stored yet for any of the three.
    let kind = "kb.ingest";
    let key = |id: hearth_store::ids::DocumentId, gen: i64| format!("{id}:{gen}");
    let mut unfinished: Vec<_> = store
        .unfinished_ingests(kind, Timestamp::from_millis(i64::MAX), 100)
        .await
        .expect("unfinished")
        .into_iter()
        .map(|u| (u.document, u.gen, u.job_state, u.owner))
        .collect();
    unfinished.sort_by_key(|u| u.0);
    let mut want = vec![(a, 0, None, user), (b, 1, None, user), (c, 0, None, user)];
    want.sort_by_key(|u| u.0);
    assert_eq!(unfinished, want);
    // A live job hides its round; a job of an earlier round does not; a dead one shows.
    let keyed = |id, gen| NewJob {
        idempotency_key: Some(key(id, gen)),
        ..job(kind, Some(user))
    };
    enqueue(store, keyed(a, 0)).await;
    enqueue(store, keyed(b, 0)).await;
    let dead = enqueue(store, keyed(c, 0)).await;
    let lease = Timestamp::now().plus_secs(600);
    let mut claimed = None;
    while let Some(j) = store
        .claim_job(&claim_req(&[kind], lease, 10))
        .await
        .expect("claim")
    {
        if j.id == dead.id {
            claimed = Some(j);
        }
    }
    let claimed = claimed.expect("c's job claimed");
    store
        .fail_job(dead.id, claimed.claim_id.expect("claim"), "boom", None)
        .await
        .expect("fail");
    let unfinished = store
        .unfinished_ingests(kind, Timestamp::from_millis(i64::MAX), 100)
        .await
        .expect("unfinished");
    let mut seen: Vec<_> = unfinished
        .iter()
        .map(|u| (u.document, u.gen, u.job_state, u.job_error.clone()))
        .collect();
    seen.sort_by_key(|u| u.0);
    let mut want = vec![
        (b, 1, None, None),
        (c, 0, Some(JobState::Dead), Some("boom".to_owned())),
    ];
    want.sort_by_key(|u| u.0);
    assert_eq!(seen, want);

    // Giving up is conditional on the round; restarting makes a new round.
    assert!(!store
        .abandon_document(c, 1, "x")
        .await
        .expect("wrong round"));
    assert!(store
        .abandon_document(c, 0, "gave up")
        .await
        .expect("abandon"));
    let gave_up = store.find_document(c).await.expect("c").expect("c");
    assert_eq!(
        (gave_up.status, gave_up.error.as_deref()),
        (D::Failed, Some("gave up"))
    );
    assert!(!store
        .abandon_document(c, 0, "again")
        .await
        .expect("already failed"));
    let restarted = store
        .restart_document(a, 0)
        .await
        .expect("restart")
        .expect("a in progress");
    assert_eq!((restarted.status, restarted.ingest_gen), (D::Queued, 1));
    assert!(store
        .restart_document(a, 0)
        .await
        .expect("old round")
        .is_none());
}

async fn chunks_commit_atomically_and_search_by_text(store: &Store) {
    let user = knowledge_owner(store, "kb-c@x.io").await;
    let kb = store
        .create_knowledge_base(new_kb(user, "C"))
        .await
        .expect("kb");
    let other = store
        .create_knowledge_base(new_kb(user, "Other"))
        .await
        .expect("kb2");
    let Inserted::New(doc) = store
        .insert_document(new_doc(kb.id, "a.md", "ha"))
        .await
        .expect("d")
    else {
        panic!("new")
    };
    let Inserted::New(doc2) = store
        .insert_document(new_doc(other.id, "b.md", "hb"))
        .await
        .expect("d")
    else {
        panic!("new")
    };
    let chunks = [
        chunk(
            0,
            "PostgreSQL vacuum reclaims storage occupied by dead tuples",
        ),
        chunk(1, "The planner chooses an index scan when it is cheaper"),
    ];
    // Not claimed: nothing is written.
    assert!(store
        .commit_chunks(doc.id, 0, Some(1), &chunks, false)
        .await
        .expect("commit")
        .is_none());
    store.start_document(doc.id, 0).await.expect("start");
    store.start_document(doc2.id, 0).await.expect("start");
    let seqs = store
        .commit_chunks(doc.id, 0, Some(1), &chunks, false)
        .await
        .expect("commit")
        .expect("in progress");
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    store
        .commit_chunks(
            doc2.id,
            0,
            None,
            &[chunk(0, "vacuum cleaners for dead tuples")],
            false,
        )
        .await
        .expect("commit 2")
        .expect("in progress");
    let indexed = store.find_document(doc.id).await.expect("f").expect("d");
    assert_eq!(
        (indexed.status, indexed.chunks, indexed.pages),
        (hearth_store::DocumentState::Indexed, 2, Some(1))
    );
    assert_eq!(
        store
            .find_knowledge_base(kb.id)
            .await
            .expect("kb")
            .expect("kb")
            .chunks,
        2
    );

    // Stemmed, any-term text search, only in the knowledge bases asked for (PostgreSQL; on
    // SQLite the embedded index in hearth-rag searches text, and the store says so).
    if store.backend() == Backend::Sqlite {
        assert!(store
            .search_chunks_text(&[kb.id], None, &["vacuum".into()], 10)
            .await
            .is_err());
    } else {
        let hits = store
            .search_chunks_text(&[kb.id], None, &["vacuuming".into(), "tuple".into()], 10)
            .await
            .expect("search");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![seqs[0]]);
        assert!(hits[0].1 > 0.0);
        let both = store
            .search_chunks_text(&[kb.id, other.id], None, &["vacuum".into()], 10)
            .await
            .expect("search both");
        assert_eq!(both.len(), 2);
        let only_doc2 = store
            .search_chunks_text(&[kb.id, other.id], Some(&[doc2.id]), &["vacuum".into()], 10)
            .await
            .expect("search doc");
        assert_eq!(only_doc2.len(), 1);
        // Query syntax in user text is not an error.
        let odd = store
            .search_chunks_text(&[kb.id], None, &["\"OR*(".into(), "index".into()], 10)
            .await
            .expect("odd");
        assert_eq!(odd.iter().map(|h| h.0).collect::<Vec<_>>(), vec![seqs[1]]);
    }

    let read = store
        .chunks_by_seq(&[seqs[1], 999_999])
        .await
        .expect("by seq");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].document_name, "a.md");
    assert_eq!(read[0].position, 1);
    let texts = store.chunk_texts(kb.id, 0, 10).await.expect("texts");
    assert_eq!(texts.len(), 2);
    assert_eq!((texts[1].0, texts[1].1), (seqs[1], doc.id));
    assert_eq!(
        texts[1].3,
        "The planner chooses an index scan when it is cheaper"
    );
    let vectors = store
        .chunk_vectors(kb.id, seqs[0], 10)
        .await
        .expect("vectors");
    assert_eq!(vectors.len(), 1);
    assert_eq!(vectors[0].0, seqs[1]);
    assert_eq!(vectors[0].1.len(), 16);

    // Deleting a document removes its chunks from the text index too.
    let removed = store
        .delete_document(doc.id)
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(removed, seqs);
    if store.backend() == Backend::Postgres {
        assert!(store
            .search_chunks_text(&[kb.id], None, &["vacuum".into()], 10)
            .await
            .expect("search")
            .is_empty());
    }
    assert!(store
        .chunk_texts(kb.id, 0, 10)
        .await
        .expect("texts")
        .is_empty());
    assert!(store
        .delete_document(doc.id)
        .await
        .expect("again")
        .is_none());
}

fn chunk_with(position: i64, text: &str, v: [f32; 4]) -> NewChunk {
    NewChunk {
        embedding: v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ..chunk(position, text)
    }
}

async fn pgvector_backfills_indexes_and_searches(store: &Store) {
    if !store.pgvector_available().await.expect("check") {
        eprintln!(
            "skipping pgvector checks: this database has no `vector` extension \
             (scripts/pgvector.sh starts one that has)"
        );
        assert!(store.backend() == Backend::Sqlite || store.enable_pgvector().await.is_err());
        return;
    }
    let user = knowledge_owner(store, "kb-v@x.io").await;
    let kb = store
        .create_knowledge_base(new_kb(user, "V"))
        .await
        .expect("kb");
    let mut docs = Vec::new();
    for name in ["a", "b"] {
        let Inserted::New(d) = store
            .insert_document(new_doc(kb.id, name, name))
            .await
            .expect("d")
        else {
            panic!("new")
        };
        docs.push(d.id);
    }
    for d in &docs {
        store.start_document(*d, 0).await.expect("start");
    }
    // Chunks stored before pgvector was enabled are filled in by the backfill.
    let early = store
        .commit_chunks(
            docs[0],
            0,
            None,
            &[chunk_with(0, "north", [1.0, 0.0, 0.0, 0.0])],
            false,
        )
        .await
        .expect("commit")
        .expect("in progress");
    assert_eq!(store.enable_pgvector().await.expect("enable"), 1);
    assert_eq!(store.enable_pgvector().await.expect("again"), 0);
    store.ensure_vector_index(4).await.expect("index");
    store.ensure_vector_index(4).await.expect("index again");
    // Longer than pgvector can index: no index, and no error (searched exactly).
    store
        .ensure_vector_index(3072)
        .await
        .expect("3072 dimensions");
    let late = store
        .commit_chunks(
            docs[1],
            0,
            None,
            &[
                chunk_with(0, "east", [0.0, 1.0, 0.0, 0.0]),
                chunk_with(1, "north-east", [0.7, 0.7, 0.0, 0.0]),
            ],
            true,
        )
        .await
        .expect("commit")
        .expect("in progress");
    let hits = store
        .search_chunks_vector(&[kb.id], None, &[0.9, 0.1, 0.0, 0.0], 3)
        .await
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![early[0], late[1], late[0]]
    );
    assert!((hits[0].1 - 0.9939).abs() < 1e-3, "{hits:?}");
    let only_b = store
        .search_chunks_vector(&[kb.id], Some(&docs[1..]), &[1.0, 0.0, 0.0, 0.0], 3)
        .await
        .expect("filtered");
    assert_eq!(only_b.len(), 2);
    store
        .delete_document(docs[0])
        .await
        .expect("delete")
        .expect("existed");
    let after = store
        .search_chunks_vector(&[kb.id], None, &[1.0, 0.0, 0.0, 0.0], 3)
        .await
        .expect("search");
    assert!(after.iter().all(|h| h.0 != early[0]));
}

fn job(kind: &str, owner: Option<UserId>) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: "{}".into(),
        owner,
        priority: 0,
        run_at: Timestamp::now(),
        max_attempts: 3,
        idempotency_key: None,
    }
}

async fn enqueue(store: &Store, j: NewJob) -> Job {
    let mut out = store.enqueue_jobs(&[j]).await.expect("enqueue");
    match out.pop().expect("one") {
        Enqueued::New(j) => j,
        Enqueued::Existing(j) => panic!("expected a new job, got {j:?}"),
    }
}

fn claim_req<'a>(kinds: &'a [&'a str], lease: Timestamp, per_owner: i64) -> ClaimRequest<'a> {
    ClaimRequest {
        kinds,
        worker: "test-worker",
        lease_until: lease,
        per_owner,
    }
}

async fn claim(store: &Store, kinds: &[&str], per_owner: i64) -> Option<Job> {
    let lease = Timestamp::now().plus_secs(600);
    store
        .claim_job(&claim_req(kinds, lease, per_owner))
        .await
        .expect("claim")
}

async fn jobs_claim_renew_complete_and_idempotency(store: &Store) {
    let keyed = NewJob {
        idempotency_key: Some("doc-1".into()),
        ..job("ingest", None)
    };
    let first = store
        .enqueue_jobs(std::slice::from_ref(&keyed))
        .await
        .expect("enqueue");
    let again = store.enqueue_jobs(&[keyed]).await.expect("enqueue again");
    assert!(matches!(first[0], Enqueued::New(_)));
    assert!(matches!(again[0], Enqueued::Existing(_)));
    assert_eq!(first[0].job().id, again[0].job().id);
    assert_eq!(first[0].job().state, JobState::Queued);

    // Other kinds are not claimed; the job is claimed once.
    assert!(claim(store, &["other"], 10).await.is_none());
    let got = claim(store, &["other", "ingest"], 10)
        .await
        .expect("claimed");
    assert_eq!(got.id, first[0].job().id);
    assert_eq!((got.state, got.attempts), (JobState::Running, 1));
    assert_eq!(got.worker.as_deref(), Some("test-worker"));
    assert!(claim(store, &["ingest"], 10).await.is_none());

    let claim_id = got.claim_id.expect("claim id");
    let later = Timestamp::now().plus_secs(900);
    assert!(store
        .renew_job(got.id, claim_id, later)
        .await
        .expect("renew"));
    assert!(!store
        .renew_job(got.id, ClaimId::new(), later)
        .await
        .expect("renew with a stranger's claim"));
    assert!(!store
        .complete_job(got.id, ClaimId::new())
        .await
        .expect("stranger"));
    assert!(store
        .complete_job(got.id, claim_id)
        .await
        .expect("complete"));
    assert!(!store.complete_job(got.id, claim_id).await.expect("twice"));
    let done = store.get_job(got.id).await.expect("get").expect("job");
    assert_eq!(done.state, JobState::Succeeded);
    assert!(done.finished_at.is_some() && done.claim_id.is_none());

    let counts = store.job_counts().await.expect("counts");
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].kind.as_str(), counts[0].state, counts[0].count),
        ("ingest", JobState::Succeeded, 1)
    );
}

async fn jobs_retry_then_dead_then_rerun(store: &Store) {
    let j = enqueue(
        store,
        NewJob {
            max_attempts: 2,
            ..job("flaky", None)
        },
    )
    .await;
    let c1 = claim(store, &["flaky"], 10).await.expect("first");
    // A retry in the future is not claimable before then.
    let far = Timestamp::now().plus_secs(3600);
    let state = store
        .fail_job(j.id, c1.claim_id.expect("claim"), "boom 1", Some(far))
        .await
        .expect("fail");
    assert_eq!(state, Some(JobState::Queued));
    assert!(claim(store, &["flaky"], 10).await.is_none());
    let queued = store.get_job(j.id).await.expect("get").expect("job");
    assert_eq!(queued.run_at, far);
    assert_eq!(queued.last_error.as_deref(), Some("boom 1"));

    // Retried now, it fails its last attempt: dead, whatever the retry asks.
    assert!(store.cancel_job(j.id).await.expect("cancel").is_some());
    store
        .rerun_job(j.id)
        .await
        .expect("rerun")
        .expect("rerun queued");
    let c2 = claim(store, &["flaky"], 10).await.expect("second");
    assert_eq!(c2.attempts, 1, "a re-run starts its attempts again");
    let claim2 = c2.claim_id.expect("claim");
    assert_eq!(
        store
            .fail_job(j.id, claim2, "boom 2", Some(Timestamp::now()))
            .await
            .expect("fail"),
        Some(JobState::Queued)
    );
    let c3 = claim(store, &["flaky"], 10).await.expect("third");
    assert_eq!(c3.attempts, 2);
    // The old claim can no longer fail it.
    assert_eq!(
        store
            .fail_job(j.id, claim2, "late", None)
            .await
            .expect("late"),
        None
    );
    assert_eq!(
        store
            .fail_job(
                j.id,
                c3.claim_id.expect("claim"),
                "boom 3",
                Some(Timestamp::now())
            )
            .await
            .expect("fail"),
        Some(JobState::Dead)
    );
    let dead = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Dead),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("boom 3"));
    // Running and queued jobs are not re-run; dead ones are.
    let rerun = store.rerun_job(j.id).await.expect("rerun").expect("queued");
    assert_eq!((rerun.state, rerun.attempts), (JobState::Queued, 0));
    assert!(store.rerun_job(j.id).await.expect("rerun").is_none());

    // A failure not worth retrying is dead at once.
    let c4 = claim(store, &["flaky"], 10).await.expect("fourth");
    assert_eq!(
        store
            .fail_job(j.id, c4.claim_id.expect("claim"), "bad payload", None)
            .await
            .expect("fail"),
        Some(JobState::Dead)
    );
}

async fn jobs_whose_lease_ran_out_are_taken_over(store: &Store) {
    let a = enqueue(store, job("work", None)).await;
    let b = enqueue(
        store,
        NewJob {
            max_attempts: 1,
            ..job("work", None)
        },
    )
    .await;
    let expired = Timestamp::from_millis(Timestamp::now().millis() - 1);
    let ca = store
        .claim_job(&claim_req(&["work"], expired, 10))
        .await
        .expect("claim")
        .expect("a");
    let cb = store
        .claim_job(&claim_req(&["work"], expired, 10))
        .await
        .expect("claim")
        .expect("b");
    assert_eq!((ca.id, cb.id), (a.id, b.id));
    // A live lease is left alone.
    let live = enqueue(store, job("work", None)).await;
    let cl = claim(store, &["work"], 10).await.expect("live");
    assert_eq!(cl.id, live.id);

    let recovered = store.recover_jobs(Timestamp::now()).await.expect("recover");
    assert_eq!(
        recovered,
        RecoveredJobs {
            requeued: 1,
            dead: 1
        }
    );
    assert_eq!(
        store.get_job(b.id).await.expect("get").expect("b").state,
        JobState::Dead
    );
    // The stopped worker's claim is gone; the next worker takes the job over.
    assert!(!store
        .complete_job(a.id, ca.claim_id.expect("claim"))
        .await
        .expect("stale"));
    let again = claim(store, &["work"], 10).await.expect("taken over");
    assert_eq!((again.id, again.attempts), (a.id, 2));
    assert_eq!(
        store
            .get_job(live.id)
            .await
            .expect("get")
            .expect("live")
            .state,
        JobState::Running
    );
    // A release gives the attempt back.
    assert!(store
        .release_job(a.id, again.claim_id.expect("claim"))
        .await
        .expect("release"));
    let released = store.get_job(a.id).await.expect("get").expect("a");
    assert_eq!((released.state, released.attempts), (JobState::Queued, 1));
}

async fn jobs_cancel_queued_and_running(store: &Store) {
    let q = enqueue(store, job("c", None)).await;
    let cancelled = store
        .cancel_job(q.id)
        .await
        .expect("cancel")
        .expect("queued");
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(store.cancel_job(q.id).await.expect("again").is_none());
    assert!(claim(store, &["c"], 10).await.is_none());

    let r = enqueue(store, job("c", None)).await;
    let running = claim(store, &["c"], 10).await.expect("running");
    store
        .cancel_job(r.id)
        .await
        .expect("cancel")
        .expect("running");
    // Its worker learns at the next renewal, and cannot finish it.
    let claim_id = running.claim_id.expect("claim");
    assert!(!store
        .renew_job(r.id, claim_id, Timestamp::now().plus_secs(60))
        .await
        .expect("renew"));
    assert!(!store.complete_job(r.id, claim_id).await.expect("complete"));
    assert_eq!(
        store.get_job(r.id).await.expect("get").expect("r").state,
        JobState::Cancelled
    );
    assert!(store
        .cancel_job(JobId::new())
        .await
        .expect("missing")
        .is_none());
}

async fn jobs_order_turns_and_owner_limits(store: &Store) {
    let a = knowledge_owner(store, "jobs-a@x.io").await;
    let b = knowledge_owner(store, "jobs-b@x.io").await;
    // Priority first; a job not yet due waits.
    enqueue(
        store,
        NewJob {
            run_at: Timestamp::now().plus_secs(3600),
            priority: 100,
            ..job("p", None)
        },
    )
    .await;
    let low = enqueue(store, job("p", None)).await;
    let high = enqueue(
        store,
        NewJob {
            priority: 5,
            ..job("p", None)
        },
    )
    .await;
    assert_eq!(claim(store, &["p"], 10).await.expect("high").id, high.id);
    assert_eq!(claim(store, &["p"], 10).await.expect("low").id, low.id);
    assert!(claim(store, &["p"], 10).await.is_none());

    // Owners take turns: a's three jobs do not hold up b's one.
    let mut a_jobs = Vec::new();
    for _ in 0..3 {
        a_jobs.push(enqueue(store, job("t", Some(a))).await.id);
    }
    let b_job = enqueue(store, job("t", Some(b))).await.id;
    let order: Vec<_> = [
        claim(store, &["t"], 10).await,
        claim(store, &["t"], 10).await,
        claim(store, &["t"], 10).await,
        claim(store, &["t"], 10).await,
    ]
    .into_iter()
    .map(|j| j.expect("claimed").id)
    .collect();
    assert_eq!(order, vec![a_jobs[0], b_job, a_jobs[1], a_jobs[2]]);

    // At the limit, an owner is skipped until one of its jobs finishes.
    let a1 = enqueue(store, job("l", Some(a))).await;
    let a2 = enqueue(store, job("l", Some(a))).await;
    let b1 = enqueue(store, job("l", Some(b))).await;
    let first = claim(store, &["l"], 1).await.expect("first");
    let second = claim(store, &["l"], 1).await.expect("second");
    let mut got = [first.id, second.id];
    got.sort();
    assert_eq!(got, [a1.id, b1.id], "one job of each owner");
    assert!(claim(store, &["l"], 1).await.is_none(), "a is at its limit");
    let a_claim = if first.id == a1.id { &first } else { &second };
    store
        .complete_job(a1.id, a_claim.claim_id.expect("claim"))
        .await
        .expect("complete");
    assert_eq!(claim(store, &["l"], 1).await.expect("a2").id, a2.id);

    // A backlog does not hold up a newcomer: with 40 of a's jobs waiting and 10 served, c's
    // one job is among the next two claims.
    let c = knowledge_owner(store, "jobs-c@x.io").await;
    let backlog: Vec<_> = (0..40).map(|_| job("f", Some(a))).collect();
    store.enqueue_jobs(&backlog).await.expect("backlog");
    for _ in 0..10 {
        claim(store, &["f"], 100).await.expect("backlog job");
    }
    let newcomer = enqueue(store, job("f", Some(c))).await;
    let next_two = [
        claim(store, &["f"], 100).await.expect("next").id,
        claim(store, &["f"], 100).await.expect("next").id,
    ];
    assert!(
        next_two.contains(&newcomer.id),
        "the newcomer waited behind the backlog"
    );

    // Deleting a user deletes their jobs.
    store.delete_user(b).await.expect("delete");
    assert!(store.get_job(b1.id).await.expect("get").is_none());
}

async fn concurrent_job_claims_take_each_job_once(store: &Store) {
    let owner = knowledge_owner(store, "jobs-race@x.io").await;
    let mut jobs = Vec::new();
    for i in 0..30 {
        jobs.push(job("race", if i % 3 == 0 { Some(owner) } else { None }));
    }
    store.enqueue_jobs(&jobs).await.expect("enqueue");
    let mut limited = Vec::new();
    for _ in 0..6 {
        limited.push(job("limited", Some(owner)));
    }
    store.enqueue_jobs(&limited).await.expect("enqueue limited");

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = claim(&store, &["race"], 100).await {
                got.push(j.id);
            }
            let mut limited = Vec::new();
            while let Some(j) = claim(&store, &["limited"], 2).await {
                limited.push(j.id);
            }
            (got, limited)
        }));
    }
    let mut all = Vec::new();
    let mut all_limited = Vec::new();
    for t in tasks {
        let (got, limited) = t.await.expect("join");
        all.extend(got);
        all_limited.extend(limited);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (30, 30), "each job claimed exactly once");
    assert_eq!(
        all_limited.len(),
        2,
        "the owner's limit holds under racing claims"
    );
}
