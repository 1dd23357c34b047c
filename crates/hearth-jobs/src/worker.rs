//! The workers: slots that claim due jobs and run them under a renewed lease, and the loop that
//! takes back jobs whose worker died.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_store::{ClaimRequest, Job, Timestamp};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{retry_delay, Handler, Handlers, JobContext, JobError, Queue};

/// Counts since the workers started, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    claimed: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    panicked: AtomicU64,
    /// Claims lost while running (cancelled, or taken over after a missed renewal).
    lost: AtomicU64,
    /// Put back at shutdown.
    released: AtomicU64,
    /// Taken back from workers whose lease ran out.
    recovered: AtomicU64,
    /// Sum of claim round trips, in microseconds (with `claimed`, the mean).
    claim_micros: AtomicU64,
    /// Sum of the time claimed jobs waited past their `run_at`, in milliseconds.
    wait_millis: AtomicU64,
    /// Runs whose handler ended (any outcome), and the sum of their durations.
    ran: AtomicU64,
    run_micros: AtomicU64,
    /// Bumped after every count changes, so a caller can wait for an outcome.
    changed: tokio::sync::watch::Sender<u64>,
}

/// A copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub claimed: u64,
    pub succeeded: u64,
    pub retried: u64,
    pub dead: u64,
    pub panicked: u64,
    pub lost: u64,
    pub released: u64,
    pub recovered: u64,
    pub claim_micros: u64,
    pub wait_millis: u64,
    pub ran: u64,
    pub run_micros: u64,
}

impl Stats {
    /// Waits until the counts satisfy `done` (checked after each change).
    pub async fn wait_until(&self, done: impl Fn(&StatsSnapshot) -> bool) {
        let mut rx = self.changed.subscribe();
        loop {
            if done(&self.snapshot()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            claimed: get(&self.claimed),
            succeeded: get(&self.succeeded),
            retried: get(&self.retried),
            dead: get(&self.dead),
            panicked: get(&self.panicked),
            lost: get(&self.lost),
            released: get(&self.released),
            recovered: get(&self.recovered),
            claim_micros: get(&self.claim_micros),
            wait_millis: get(&self.wait_millis),
            ran: get(&self.ran),
            run_micros: get(&self.run_micros),
        }
    }
}

/// Runs the jobs of the kinds it has handlers for. Cheap to clone (clones share their stats).
#[derive(Clone)]
pub struct Workers {
    queue: Queue,
    handlers: Arc<Handlers>,
    kinds: Arc<Vec<String>>,
    name: String,
    stats: Arc<Stats>,
    /// Jobs run at the same time.
    slots: usize,
    /// Whether [`Workers::run`] also takes back abandoned jobs.
    maintain: bool,
}

/// How one run ended.
enum Outcome {
    Finished(Result<Result<(), JobError>, tokio::task::JoinError>),
    /// The claim is gone (cancelled or taken over): nothing to record.
    Lost,
    /// Shutdown came first and the handler did not stop in time.
    Stopped,
}

impl Workers {
    /// Workers named `name` (shown on the jobs they hold) for `handlers`' kinds.
    pub fn new(queue: Queue, name: impl Into<String>, handlers: Vec<Arc<dyn Handler>>) -> Self {
        let handlers: Handlers = handlers
            .into_iter()
            .map(|h| (h.kind().to_owned(), h))
            .collect();
        let mut kinds: Vec<String> = handlers.keys().cloned().collect();
        kinds.sort();
        let slots = queue.settings.workers;
        Self {
            queue,
            handlers: Arc::new(handlers),
            kinds: Arc::new(kinds),
            name: name.into(),
            stats: Arc::new(Stats::default()),
            slots,
            maintain: true,
        }
    }

    /// Runs `n` jobs at the same time instead of `jobs.workers` (a pool for one heavy kind).
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = n.max(1);
        self
    }

    /// Leaves taking back abandoned jobs to another pool of the process (one is enough).
    pub fn without_maintenance(mut self) -> Self {
        self.maintain = false;
        self
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs its slots and the recovery loop until `shutdown` fires, then stops claiming, gives
    /// running handlers `jobs.shutdown_grace_secs` to finish, puts back the jobs of those that
    /// did not, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut set = JoinSet::new();
        for slot in 0..this.slots {
            let this = this.clone();
            let shutdown = shutdown.clone();
            set.spawn(async move { this.slot(slot, shutdown).await });
        }
        if this.maintain {
            let this = this.clone();
            let shutdown = shutdown.clone();
            set.spawn(async move { this.maintain(shutdown).await });
        }
        while let Some(done) = set.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a job worker task ended abnormally");
            }
        }
    }

    async fn slot(&self, slot: usize, shutdown: CancellationToken) {
        let settings = &self.queue.settings;
        let kinds: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        let worker = format!("{}#{slot}", self.name);
        let poll = Duration::from_millis(settings.poll_ms);
        while !shutdown.is_cancelled() {
            let asked = Instant::now();
            let lease_until = Timestamp::now().plus_secs(settings.lease_secs);
            let claimed = self
                .queue
                .store
                .claim_job(&ClaimRequest {
                    kinds: &kinds,
                    worker: &worker,
                    lease_until,
                    per_owner: i64::from(settings.per_owner),
                })
                .await;
            match claimed {
                Ok(Some(job)) => {
                    self.stats.bump(&self.stats.claimed);
                    let micros = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.stats.claim_micros.fetch_add(micros, Ordering::Relaxed);
                    let waited = Timestamp::now()
                        .millis()
                        .saturating_sub(job.run_at.millis());
                    self.stats
                        .wait_millis
                        .fetch_add(u64::try_from(waited).unwrap_or(0), Ordering::Relaxed);
                    self.run_one(job, &shutdown).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.queue.wake.notified() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn run_one(&self, job: Job, shutdown: &CancellationToken) {
        let settings = &self.queue.settings;
        let (Some(claim), Some(handler)) = (job.claim_id, self.handlers.get(&job.kind)) else {
            tracing::error!(job = %job.id, kind = %job.kind, "claimed a job it cannot run");
            return;
        };
        let cancelled = shutdown.child_token();
        let ctx = JobContext {
            id: job.id,
            kind: job.kind.clone(),
            owner: job.owner,
            attempt: u32::try_from(job.attempts).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(job.max_attempts).unwrap_or(u32::MAX),
            payload: job.payload.clone(),
            cancelled: cancelled.clone(),
        };
        let started = Instant::now();
        let mut task = tokio::spawn(handler.run(ctx));
        let renew_every = settings.lease() / 3;
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        let store = &self.queue.store;
        let outcome = loop {
            tokio::select! {
                res = &mut task => break Outcome::Finished(res),
                _ = renew.tick() => {
                    let until = Timestamp::now().plus_secs(settings.lease_secs);
                    match store.renew_job(job.id, claim, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Cancelled or taken over: the handler may clean up, briefly.
                            cancelled.cancel();
                            let grace = Duration::from_secs(settings.shutdown_grace_secs);
                            if tokio::time::timeout(grace, &mut task).await.is_err() {
                                task.abort();
                            }
                            break Outcome::Lost;
                        }
                        // The lease may still hold; the next tick tries again.
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "renewing a job's lease failed"),
                    }
                }
                _ = shutdown.cancelled() => {
                    cancelled.cancel();
                    let grace = Duration::from_secs(settings.shutdown_grace_secs);
                    match tokio::time::timeout(grace, &mut task).await {
                        Ok(res) => break Outcome::Finished(res),
                        Err(_) => {
                            task.abort();
                            break Outcome::Stopped;
                        }
                    }
                }
            }
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.run_micros.fetch_add(micros, Ordering::Relaxed);
        self.stats.ran.fetch_add(1, Ordering::Relaxed);
        let recorded = match outcome {
            Outcome::Lost => {
                self.stats.bump(&self.stats.lost);
                return;
            }
            Outcome::Finished(Ok(Ok(()))) => store.complete_job(job.id, claim).await.map(|held| {
                if held {
                    self.stats.bump(&self.stats.succeeded);
                } else {
                    self.stats.bump(&self.stats.lost);
                }
            }),
            // A handler that gave up because of the shutdown is not a failure: put it back.
            Outcome::Stopped | Outcome::Finished(Ok(Err(_))) if shutdown.is_cancelled() => {
                store.release_job(job.id, claim).await.map(|held| {
                    if held {
                        self.stats.bump(&self.stats.released);
                    }
                })
            }
            Outcome::Stopped => Ok(()),
            Outcome::Finished(Ok(Err(JobError::Fatal(error)))) => {
                self.fail(&job, claim, &error, false).await
            }
            Outcome::Finished(Ok(Err(JobError::Retry(error)))) => {
                self.fail(&job, claim, &error, true).await
            }
            Outcome::Finished(Err(e)) => {
                self.stats.bump(&self.stats.panicked);
                tracing::error!(job = %job.id, kind = %job.kind, error = %e, "a job's handler panicked");
                self.fail(&job, claim, "the job's handler panicked", true)
                    .await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the job is taken back: it runs again, never lost.
            tracing::warn!(job = %job.id, error = %e, "recording a job's outcome failed");
        }
    }

    async fn fail(
        &self,
        job: &Job,
        claim: hearth_store::ids::ClaimId,
        error: &str,
        retry: bool,
    ) -> Result<(), hearth_store::StoreError> {
        let settings = &self.queue.settings;
        let retry_at = retry.then(|| {
            let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
            let delay = retry_delay(
                attempt,
                Duration::from_millis(settings.retry_base_ms),
                Duration::from_secs(settings.retry_max_secs),
                &mut rand::thread_rng(),
            );
            let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            Timestamp::from_millis(Timestamp::now().millis().saturating_add(millis))
        });
        let state = self
            .queue
            .store
            .fail_job(job.id, claim, error, retry_at)
            .await?;
        match state {
            Some(hearth_store::JobState::Queued) => self.stats.bump(&self.stats.retried),
            Some(_) => {
                self.stats.bump(&self.stats.dead);
                tracing::warn!(job = %job.id, kind = %job.kind, error, "a job failed for good (dead letter)");
            }
            None => self.stats.bump(&self.stats.lost),
        }
        Ok(())
    }

    /// Takes back jobs whose worker stopped renewing.
    async fn maintain(&self, shutdown: CancellationToken) {
        let settings = &self.queue.settings;
        let every = (settings.lease() / 2).max(Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            match self.queue.recover(false).await {
                Ok(r) => {
                    if r.requeued + r.dead > 0 {
                        tracing::warn!(
                            requeued = r.requeued,
                            dead = r.dead,
                            "took back jobs whose worker stopped"
                        );
                        self.stats
                            .recovered
                            .fetch_add(r.requeued + r.dead, Ordering::Relaxed);
                        self.stats.changed.send_modify(|v| *v += 1);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "recovering jobs failed"),
            }
        }
    }
}
