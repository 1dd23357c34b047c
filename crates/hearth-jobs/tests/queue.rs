//! The queue and its workers on a real store: SQLite always, PostgreSQL too when
//! `HEARTH_TEST_POSTGRES_URL` is set (each test on a fresh database).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use hearth_jobs::{
    Handler, JobContext, JobError, JobSpec, JobsError, JobsSettings, Queue, ScheduleSpec, Workers,
};
use hearth_store::testing::TestStore;
use hearth_store::{Enqueued, JobState, Store, StoreOptions, Timestamp};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Fixture {
    store: Store,
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
        let Ok(admin) = std::env::var("HEARTH_TEST_POSTGRES_URL") else {
            eprintln!("skipping the PostgreSQL run: HEARTH_TEST_POSTGRES_URL is unset");
            return None;
        };
        let db = TestStore::postgres(&admin, &StoreOptions::default())
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

macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = super::Fixture::sqlite().await;
                    super::$name(&fx.store).await;
                    fx.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = super::Fixture::postgres().await else { return };
                    super::$name(&fx.store).await;
                    fx.finish().await;
                }
            )+
        }
    };
}

both!(
    a_job_runs_once_and_succeeds,
    retries_back_off_then_succeed,
    fatal_errors_and_exhausted_retries_are_dead_letters_that_rerun,
    a_panicking_handler_fails_its_attempt_not_the_worker,
    cancelling_a_running_job_stops_its_handler,
    a_dead_workers_job_is_taken_over,
    shutdown_puts_unfinished_jobs_back,
    bad_specs_are_refused_with_the_field,
    a_tick_fires_once_however_many_instances_fire_it,
    missed_ticks_coalesce_and_disabled_schedules_wait,
);

/// Settings for tests: quick retries, short leases, and a poll so slow that only a wake-up
/// (or recovery) gets a job run in time.
fn settings() -> JobsSettings {
    JobsSettings {
        workers: 2,
        lease_secs: 3,
        poll_ms: 3_600_000,
        retry_base_ms: 1,
        retry_max_secs: 1,
        shutdown_grace_secs: 1,
        ..JobsSettings::default()
    }
}

/// What a test handler does with attempt `n` of a job.
type Script = dyn Fn(u32, JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync;

struct Scripted {
    kind: &'static str,
    script: Box<Script>,
    /// Each attempt's (job id, attempt number).
    seen: mpsc::UnboundedSender<(hearth_store::ids::JobId, u32)>,
}

impl Handler for Scripted {
    fn kind(&self) -> &str {
        self.kind
    }
    fn run(&self, job: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
        let _ = self.seen.send((job.id, job.attempt));
        (self.script)(job.attempt, job)
    }
}

fn scripted(
    kind: &'static str,
    script: impl Fn(u32, JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync + 'static,
) -> (
    Arc<dyn Handler>,
    mpsc::UnboundedReceiver<(hearth_store::ids::JobId, u32)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Arc::new(Scripted {
            kind,
            script: Box::new(script),
            seen: tx,
        }),
        rx,
    )
}

/// Starts workers; returns their stats, the shutdown switch and the task.
fn start(
    queue: &Queue,
    name: &str,
    handlers: Vec<Arc<dyn Handler>>,
) -> (
    Arc<hearth_jobs::Stats>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let workers = Workers::new(queue.clone(), name, handlers);
    let stats = workers.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(workers.run(stop.clone()));
    (stats, stop, task)
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn state(queue: &Queue, id: hearth_store::ids::JobId) -> hearth_store::Job {
    queue.get(id).await.expect("get").expect("job")
}

async fn a_job_runs_once_and_succeeds(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let (h, mut seen) = scripted("echo", |_, ctx| {
        async move {
            let p: serde_json::Value = ctx.payload()?;
            assert_eq!(p["n"], 7);
            Ok(())
        }
        .boxed()
    });
    let (stats, stop, task) = start(&queue, "w1", vec![h]);
    // Enqueued after the workers went idle: the wake-up, not the hour-long poll, runs it.
    let job = queue
        .enqueue(JobSpec::new("echo", json!({"n": 7})).idempotency_key("once"))
        .await
        .expect("enqueue");
    let id = job.job().id;
    within("the job", stats.wait_until(|s| s.succeeded == 1)).await;
    assert_eq!(seen.recv().await, Some((id, 1)));
    let done = state(&queue, id).await;
    assert_eq!((done.state, done.attempts), (JobState::Succeeded, 1));
    assert_eq!(
        done.worker.as_deref().map(|w| w.starts_with("w1#")),
        Some(true)
    );
    // The same key again is the same job, and it does not run again.
    let again = queue
        .enqueue(JobSpec::new("echo", json!({"n": 7})).idempotency_key("once"))
        .await
        .expect("enqueue again");
    assert!(matches!(again, Enqueued::Existing(ref j) if j.id == id));
    stop.cancel();
    within("shutdown", task).await.expect("workers");
    assert!(seen.try_recv().is_err(), "ran once");
    assert_eq!(stats.snapshot().claimed, 1);
}

async fn retries_back_off_then_succeed(store: &Store) {
    // Retries come due after their back-off; idle workers find them by polling.
    let queue = Queue::new(
        store.clone(),
        JobsSettings {
            poll_ms: 20,
            ..settings()
        },
    );
    let (h, mut seen) = scripted("flaky", |attempt, _| {
        async move {
            if attempt < 3 {
                Err(JobError::Retry(format!("upstream down ({attempt})")))
            } else {
                Ok(())
            }
        }
        .boxed()
    });
    let (stats, stop, task) = start(&queue, "w", vec![h]);
    let id = queue
        .enqueue(JobSpec::new("flaky", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    within("success", stats.wait_until(|s| s.succeeded == 1)).await;
    let attempts: Vec<_> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert_eq!(attempts, vec![(id, 1), (id, 2), (id, 3)]);
    let snap = stats.snapshot();
    assert_eq!((snap.retried, snap.dead), (2, 0));
    let j = state(&queue, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Succeeded, 3));
    stop.cancel();
    within("shutdown", task).await.expect("workers");
}

async fn fatal_errors_and_exhausted_retries_are_dead_letters_that_rerun(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let fixed = Arc::new(AtomicU32::new(0));
    let fixed2 = fixed.clone();
    let (h, _seen) = scripted("strict", move |_, ctx| {
        let fixed = fixed2.load(Ordering::SeqCst) == 1;
        async move {
            #[derive(serde::Deserialize)]
            struct P {
                #[allow(dead_code)]
                path: String,
            }
            let _: P = ctx.payload()?;
            if fixed {
                Ok(())
            } else {
                Err(JobError::Fatal("the file is gone".into()))
            }
        }
        .boxed()
    });
    let (stats, stop, task) = start(&queue, "w", vec![h]);
    let gone = queue
        .enqueue(JobSpec::new("strict", json!({"path": "/x"})).max_attempts(5))
        .await
        .expect("enqueue")
        .job()
        .id;
    let malformed = queue
        .enqueue(JobSpec::new("strict", json!({"nope": 1})))
        .await
        .expect("enqueue")
        .job()
        .id;
    within("two dead letters", stats.wait_until(|s| s.dead == 2)).await;
    let g = state(&queue, gone).await;
    assert_eq!(
        (g.state, g.attempts),
        (JobState::Dead, 1),
        "fatal: no retries"
    );
    assert_eq!(g.last_error.as_deref(), Some("the file is gone"));
    let m = state(&queue, malformed).await;
    assert!(m
        .last_error
        .as_deref()
        .is_some_and(|e| e.starts_with("the job's payload does not parse")));
    let dead: Vec<_> = queue
        .dead_letters(10)
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert!(dead.contains(&gone) && dead.contains(&malformed));

    // Fixed, the dead letter runs again from a fresh attempt count.
    fixed.store(1, Ordering::SeqCst);
    queue.rerun(gone).await.expect("rerun").expect("was dead");
    within("the re-run", stats.wait_until(|s| s.succeeded == 1)).await;
    let g = state(&queue, gone).await;
    assert_eq!((g.state, g.attempts), (JobState::Succeeded, 1));
    assert!(
        queue.rerun(gone).await.expect("rerun").is_none(),
        "only dead or cancelled jobs rerun"
    );
    stop.cancel();
    within("shutdown", task).await.expect("workers");
}

async fn a_panicking_handler_fails_its_attempt_not_the_worker(store: &Store) {
    let queue = Queue::new(
        store.clone(),
        JobsSettings {
            workers: 1,
            ..settings()
        },
    );
    let (boom, _) = scripted("boom", |_, _| async { panic!("handler bug") }.boxed());
    let (fine, _) = scripted("fine", |_, _| async { Ok(()) }.boxed());
    let (stats, stop, task) = start(&queue, "w", vec![boom, fine]);
    let b = queue
        .enqueue(JobSpec::new("boom", json!({})).max_attempts(1).priority(1))
        .await
        .expect("enqueue")
        .job()
        .id;
    let f = queue
        .enqueue(JobSpec::new("fine", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    within(
        "both",
        stats.wait_until(|s| s.dead == 1 && s.succeeded == 1),
    )
    .await;
    assert_eq!(stats.snapshot().panicked, 1);
    let b = state(&queue, b).await;
    assert_eq!(b.state, JobState::Dead);
    assert_eq!(b.last_error.as_deref(), Some("the job's handler panicked"));
    assert_eq!(state(&queue, f).await.state, JobState::Succeeded);
    stop.cancel();
    within("shutdown", task).await.expect("workers");
}

async fn cancelling_a_running_job_stops_its_handler(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let (stopped_tx, mut stopped_rx) = mpsc::unbounded_channel();
    let (h, mut seen) = scripted("long", move |_, ctx| {
        let stopped = stopped_tx.clone();
        async move {
            ctx.cancelled.cancelled().await;
            let _ = stopped.send(ctx.id);
            Ok(())
        }
        .boxed()
    });
    let (stats, stop, task) = start(&queue, "w", vec![h]);
    let id = queue
        .enqueue(JobSpec::new("long", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    within("the start", seen.recv()).await;
    queue
        .cancel(id)
        .await
        .expect("cancel")
        .expect("was running");
    // The worker learns at its next renewal (a third of the 3 s lease).
    assert_eq!(
        within("the handler to stop", stopped_rx.recv()).await,
        Some(id)
    );
    within("the lost claim", stats.wait_until(|s| s.lost == 1)).await;
    let j = state(&queue, id).await;
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(stats.snapshot().succeeded, 0);
    stop.cancel();
    within("shutdown", task).await.expect("workers");
}

async fn a_dead_workers_job_is_taken_over(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    // Worker A hangs on its first attempt, then dies without a word (its task is aborted).
    let (hang, mut a_seen) = scripted("work", |_, _| std::future::pending().boxed());
    let (_, _a_stop, a_task) = start(&queue, "a", vec![hang]);
    let id = queue
        .enqueue(JobSpec::new("work", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    assert_eq!(within("A's start", a_seen.recv()).await, Some((id, 1)));
    a_task.abort();
    let _ = a_task.await;

    // Worker B takes it back once A's lease runs out, and finishes it.
    let (ok, mut b_seen) = scripted("work", |_, _| async { Ok(()) }.boxed());
    let (b_stats, b_stop, b_task) = start(&queue, "b", vec![ok]);
    assert_eq!(within("B's takeover", b_seen.recv()).await, Some((id, 2)));
    within("B's success", b_stats.wait_until(|s| s.succeeded == 1)).await;
    assert_eq!(b_stats.snapshot().recovered, 1);
    let j = state(&queue, id).await;
    assert_eq!((j.state, j.attempts), (JobState::Succeeded, 2));
    assert!(j.worker.as_deref().is_some_and(|w| w.starts_with("b#")));
    b_stop.cancel();
    within("shutdown", b_task).await.expect("workers");
}

async fn shutdown_puts_unfinished_jobs_back(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    // One handler stops when asked (and reports an error); one ignores the request.
    let (polite, mut p_seen) = scripted("polite", |_, ctx| {
        async move {
            ctx.cancelled.cancelled().await;
            Err(JobError::Retry("interrupted".into()))
        }
        .boxed()
    });
    let (stubborn, mut s_seen) = scripted("stubborn", |_, _| std::future::pending().boxed());
    let (stats, stop, task) = start(&queue, "w", vec![polite, stubborn]);
    let p = queue
        .enqueue(JobSpec::new("polite", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    let s = queue
        .enqueue(JobSpec::new("stubborn", json!({})))
        .await
        .expect("enqueue")
        .job()
        .id;
    within("both start", async {
        p_seen.recv().await;
        s_seen.recv().await;
    })
    .await;
    stop.cancel();
    // Within the grace period (1 s) and a bit: the workers return.
    within("shutdown", task).await.expect("workers");
    assert_eq!(stats.snapshot().released, 2);
    for id in [p, s] {
        let j = state(&queue, id).await;
        assert_eq!(
            (j.state, j.attempts),
            (JobState::Queued, 0),
            "put back, attempt not counted"
        );
        assert!(j.claim_id.is_none());
    }
}

async fn bad_specs_are_refused_with_the_field(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let field = |r: Result<Enqueued, JobsError>| match r {
        Err(JobsError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid spec, got {other:?}"),
    };
    assert_eq!(
        field(queue.enqueue(JobSpec::new("", json!({}))).await),
        "kind"
    );
    assert_eq!(
        field(queue.enqueue(JobSpec::new("Bad Kind", json!({}))).await),
        "kind"
    );
    let big = "x".repeat(hearth_jobs::MAX_PAYLOAD_BYTES);
    assert_eq!(
        field(queue.enqueue(JobSpec::new("k", json!({ "b": big }))).await),
        "payload"
    );
    assert_eq!(
        field(
            queue
                .enqueue(JobSpec::new("k", json!({})).idempotency_key(""))
                .await
        ),
        "idempotency_key"
    );
    assert_eq!(
        field(
            queue
                .enqueue(JobSpec::new("k", json!({})).max_attempts(0))
                .await
        ),
        "max_attempts"
    );
    // One bad spec refuses the whole batch: nothing is stored.
    let batch = queue
        .enqueue_all(vec![
            JobSpec::new("k", json!({})),
            JobSpec::new("k", json!({})).max_attempts(1000),
        ])
        .await;
    assert!(matches!(
        batch,
        Err(JobsError::Invalid {
            field: "max_attempts",
            ..
        })
    ));
    assert!(store.job_counts().await.expect("counts").is_empty());
}

/// The jobs a schedule's tick enqueued.
async fn tick_jobs(store: &Store, kind: &str) -> Vec<hearth_store::Job> {
    store
        .list_jobs(&hearth_store::JobFilter {
            kind: Some(kind.into()),
            limit: 100,
            ..hearth_store::JobFilter::default()
        })
        .await
        .expect("list")
}

async fn a_tick_fires_once_however_many_instances_fire_it(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let spec = ScheduleSpec::new(
        "digest",
        "*/5 * * * *",
        JobSpec::new("digest.send", json!({"to": "team"})),
    )
    .timezone("Europe/Paris");
    let schedule = queue.put_schedule(spec).await.expect("schedule");
    let tick = schedule.next_at;
    assert_eq!(tick.millis() % 300_000, 0, "on a five-minute boundary");
    // Not due yet: nothing fires a moment before the tick.
    let before = Timestamp::from_millis(tick.millis() - 1);
    assert_eq!(queue.fire_due(before).await.expect("fire"), 0);

    // Eight instances (each its own queue on the same store) fire the due tick at once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let instance = Queue::new(store.clone(), settings());
        tasks.push(tokio::spawn(async move {
            instance.fire_due(tick).await.expect("fire")
        }));
    }
    let mut fired = 0;
    for t in tasks {
        fired += t.await.expect("join");
    }
    assert_eq!(fired, 1);
    let jobs = tick_jobs(store, "digest.send").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].payload, r#"{"to":"team"}"#);
    assert_eq!(jobs[0].run_at, tick);
    assert_eq!(
        jobs[0].idempotency_key.as_deref(),
        Some(format!("schedule:digest:{}", tick.millis()).as_str())
    );
    let moved = store
        .get_schedule("digest")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(moved.next_at.millis(), tick.millis() + 300_000);
    assert_eq!(moved.last_at, Some(tick));
    // The same moment again fires nothing; the next tick fires the next job.
    assert_eq!(queue.fire_due(tick).await.expect("again"), 0);
    assert_eq!(queue.fire_due(moved.next_at).await.expect("next"), 1);
    assert_eq!(tick_jobs(store, "digest.send").await.len(), 2);
}

async fn missed_ticks_coalesce_and_disabled_schedules_wait(store: &Store) {
    let queue = Queue::new(store.clone(), settings());
    let hourly = queue
        .put_schedule(ScheduleSpec::new(
            "hourly",
            "0 * * * *",
            JobSpec::new("report.hourly", json!({})),
        ))
        .await
        .expect("schedule");
    // Down for five hours: one job for the missed ticks, then the first tick after now.
    let later = Timestamp::from_millis(hourly.next_at.millis() + 5 * 3_600_000 + 60_000);
    assert_eq!(queue.fire_due(later).await.expect("fire"), 1);
    assert_eq!(tick_jobs(store, "report.hourly").await.len(), 1);
    let moved = store
        .get_schedule("hourly")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(
        moved.next_at.millis(),
        hourly.next_at.millis() + 6 * 3_600_000
    );

    let paused = queue
        .put_schedule(
            ScheduleSpec::new("paused", "* * * * *", JobSpec::new("noop", json!({})))
                .enabled(false),
        )
        .await
        .expect("schedule");
    let far = Timestamp::from_millis(paused.next_at.millis() + 3_600_000);
    queue.fire_due(far).await.expect("fire");
    assert!(tick_jobs(store, "noop").await.is_empty());
    assert!(queue.delete_schedule("paused").await.expect("delete"));
    assert!(!queue.delete_schedule("paused").await.expect("gone"));

    // Bad schedules are refused with the field, and store nothing.
    let refused = |spec: ScheduleSpec| {
        let queue = queue.clone();
        async move {
            match queue.put_schedule(spec).await {
                Err(JobsError::Invalid { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        }
    };
    let job = || JobSpec::new("noop", json!({}));
    assert_eq!(
        refused(ScheduleSpec::new("Bad Name", "* * * * *", job())).await,
        "name"
    );
    assert_eq!(
        refused(ScheduleSpec::new("x", "* * * *", job())).await,
        "cron"
    );
    assert_eq!(
        refused(ScheduleSpec::new("x", "* * * * *", job()).timezone("Nowhere/Land")).await,
        "timezone"
    );
    assert_eq!(
        refused(ScheduleSpec::new(
            "x",
            "* * * * *",
            JobSpec::new("", json!({}))
        ))
        .await,
        "kind"
    );
    let names: Vec<String> = queue
        .schedules()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["hourly"]);
}
