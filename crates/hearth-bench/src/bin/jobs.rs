//! The job queue's figures (bench/jobs.sh): no-op jobs per second through the workers, and the
//! claim round trip (p50/p99) of 4 workers claiming and completing at once, on SQLite and,
//! given a PostgreSQL URL, on PostgreSQL.
//!
//! Usage: jobs [--jobs N] [--workers W] [--postgres URL]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use hearth_jobs::{Handler, JobContext, JobError, JobSpec, JobsSettings, Queue, Workers};
use hearth_store::testing::TestStore;
use hearth_store::{ClaimRequest, Store, StoreOptions, Timestamp};
use tokio_util::sync::CancellationToken;

struct Noop;

impl Handler for Noop {
    fn kind(&self) -> &str {
        "noop"
    }
    fn run(&self, _job: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
        async { Ok(()) }.boxed()
    }
}

struct Args {
    jobs: usize,
    workers: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        jobs: 20_000,
        workers: 4,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--jobs" => out.jobs = value().parse().expect("--jobs: a number"),
            "--workers" => out.workers = value().parse().expect("--workers: a number"),
            "--postgres" => out.postgres = Some(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    out
}

async fn enqueue(queue: &Queue, n: usize, owners: &[hearth_store::ids::UserId]) -> f64 {
    let started = Instant::now();
    let mut left = n;
    let mut i = 0usize;
    while left > 0 {
        let batch = left.min(500);
        let specs = (0..batch)
            .map(|_| {
                i += 1;
                let spec = JobSpec::new("noop", serde_json::json!({ "i": i }));
                match owners.get(i % (owners.len() + 1)) {
                    Some(o) => spec.owner(*o),
                    None => spec,
                }
            })
            .collect();
        queue.enqueue_all(specs).await.expect("enqueue");
        left -= batch;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn owners(store: &Store, n: usize) -> Vec<hearth_store::ids::UserId> {
    let mut out = Vec::new();
    for i in 0..n {
        let user = store
            .create_user(hearth_store::NewUser {
                email: format!("bench{i}@example.com"),
                name: format!("Bench {i}"),
                password_hash: "x".into(),
                role: hearth_store::NewUserRole::AdminIfFirst,
            })
            .await
            .expect("user");
        out.push(user.id);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn measure(engine: &str, store: Store, args: &Args) {
    let settings = JobsSettings {
        workers: args.workers,
        per_owner: u32::MAX,
        ..JobsSettings::default()
    };
    let queue = Queue::new(store.clone(), settings);
    let users = owners(&store, 8).await;

    // Through the workers: enqueue everything, then time until every job has succeeded.
    let enqueue_rate = enqueue(&queue, args.jobs, &users).await;
    let workers = Workers::new(queue.clone(), "bench", vec![Arc::new(Noop)]);
    let stats = workers.stats();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(workers.run(stop.clone()));
    let n = args.jobs as u64;
    stats.wait_until(|s| s.succeeded >= n).await;
    let through = args.jobs as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    task.await.expect("workers");

    // Claim round trips: `workers` tasks claiming and completing as fast as they can.
    enqueue(&queue, args.jobs, &users).await;
    let kinds = ["noop"];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("bench#{w}");
            let mut samples = Vec::new();
            loop {
                let t = Instant::now();
                let job = store
                    .claim_job(&ClaimRequest {
                        kinds: &kinds,
                        worker: &worker,
                        lease_until: Timestamp::now().plus_secs(30),
                        per_owner: i64::MAX,
                    })
                    .await
                    .expect("claim");
                samples.push(t.elapsed());
                let Some(job) = job else { break };
                store
                    .complete_job(job.id, job.claim_id.expect("claim id"))
                    .await
                    .expect("complete");
            }
            samples
        }));
    }
    let mut claims = Vec::new();
    for t in tasks {
        claims.extend(t.await.expect("join"));
    }
    let raw = args.jobs as f64 / started.elapsed().as_secs_f64();
    claims.sort();
    println!(
        "| {engine} | {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        args.jobs,
        args.workers,
        enqueue_rate,
        through,
        raw,
        percentile(&claims, 0.50),
        percentile(&claims, 0.99),
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    println!(
        "| engine | jobs | workers | enqueued/s (batches of 500) | no-op jobs/s through workers | claim+complete/s | claim p50 ms | claim p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestStore::sqlite(dir.path()).await.expect("sqlite store");
    measure("SQLite", db.store.clone(), &args).await;
    db.finish().await.expect("close");

    if let Some(admin) = &args.postgres {
        let options = StoreOptions {
            max_connections: 16,
            ..StoreOptions::default()
        };
        let db = TestStore::postgres(admin, &options)
            .await
            .expect("postgres store");
        measure("PostgreSQL", db.store.clone(), &args).await;
        db.finish().await.expect("close and drop");
    }
}
