//! One durable queue for every kind of background work, the workers that run it, and the
//! supervised [`Runtime`] that owns every background loop of a process.
//!
//! A job is a row of the store's `jobs` table, so the queue is as durable as the store and works
//! the same on SQLite (claims go through the one writer connection) and PostgreSQL (`FOR UPDATE
//! SKIP LOCKED`). [`Queue`] enqueues jobs (an idempotency key makes a second enqueue return the
//! first job), cancels, re-runs and lists them. [`Workers`] claim due jobs of the kinds they
//! have a [`Handler`] for and run them:
//!
//! - while a handler runs, its claim's lease is renewed; a worker that dies stops renewing, and
//!   any worker takes the job back once the lease has run out (the dead worker's late result is
//!   refused by the store, since its claim is no longer the job's);
//! - [`JobError::Retry`] (and a panic) tries the job again after an exponential back-off with
//!   jitter until its attempts run out; then, or at once for [`JobError::Fatal`], it is *dead*:
//!   kept with its last error until someone re-runs it;
//! - a cancelled job's handler sees its [`JobContext::cancelled`] token fire at the next renewal;
//! - schedules (cron in a time zone, see [`ScheduleSpec`]) enqueue a job per tick, once per tick
//!   however many instances fire them;
//! - owners take turns, and one owner never has more than `per_owner` running jobs, so one user's
//!   thousand jobs do not hold up another user's one.
//!
//! Handlers must be idempotent: a job can run again after a worker died mid-way. Payloads hold
//! ids and small parameters, never secrets or documents (they are stored in plain text).
//!
//! The queue is this crate's own (small, tested by the store's conformance suite on both
//! engines) rather than a queue crate: those bring their own schemas and migrations per engine
//! and have no owner turns or limits.

mod backoff;
mod runtime;
mod schedule;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hearth_store::ids::{JobId, UserId};
use hearth_store::{Enqueued, Job, JobFilter, JobState, NewJob, Store, StoreError, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use backoff::retry_delay;
pub use runtime::{LoopStatus, Runtime};
pub use schedule::{Cron, ScheduleSpec, MAX_SCHEDULE_NAME};
pub use worker::{Stats, StatsSnapshot, Workers};

/// Largest payload, as JSON text: payloads carry ids and parameters, not data.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 200;
/// Longest kind name.
pub const MAX_KIND_CHARS: usize = 64;
/// Most attempts a job may ask for.
pub const MAX_ATTEMPTS: u32 = 100;

/// Job queue settings (`[jobs]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSettings {
    /// Jobs this process runs at the same time.
    pub workers: usize,
    /// How long a claim holds a job without being renewed (renewed every third of it).
    pub lease_secs: u64,
    /// How often idle workers look for due jobs enqueued elsewhere, in milliseconds.
    pub poll_ms: u64,
    /// Attempts a job gets unless it asks for another number.
    pub max_attempts: u32,
    /// The first retry's delay, in milliseconds; each retry doubles it (with jitter).
    pub retry_base_ms: u64,
    /// The longest delay between retries, in seconds.
    pub retry_max_secs: u64,
    /// Most running jobs one owner may have across this process's kinds.
    pub per_owner: u32,
    /// How long a handler may take to stop at shutdown before its job is put back, in seconds.
    pub shutdown_grace_secs: u64,
    /// Finished jobs (succeeded, dead, cancelled) are deleted this many hours after they end.
    pub retention_hours: u64,
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_secs: 30,
            poll_ms: 1000,
            max_attempts: 5,
            retry_base_ms: 1000,
            retry_max_secs: 3600,
            per_owner: 2,
            shutdown_grace_secs: 10,
            retention_hours: 24 * 7,
        }
    }
}

impl JobsSettings {
    /// Checks values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |key: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("jobs.{key} must be greater than 0"))
            }
        };
        positive("workers", self.workers > 0)?;
        positive("poll_ms", self.poll_ms > 0)?;
        positive("retry_base_ms", self.retry_base_ms > 0)?;
        positive("retry_max_secs", self.retry_max_secs > 0)?;
        positive("per_owner", self.per_owner > 0)?;
        positive("retention_hours", self.retention_hours > 0)?;
        if !(3..=3600).contains(&self.lease_secs) {
            return Err("jobs.lease_secs must be between 3 and 3600".into());
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(format!(
                "jobs.max_attempts must be between 1 and {MAX_ATTEMPTS}"
            ));
        }
        Ok(())
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

/// What went wrong with a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// A job spec that cannot be enqueued; `field` names the part at fault.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a job's handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (an upstream was down, a lock was busy).
    #[error("{0}")]
    Retry(String),
    /// Will fail the same way every time (bad payload, the thing it works on is gone): dead now.
    #[error("{0}")]
    Fatal(String),
}

/// A job handed to its handler.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    pub owner: Option<UserId>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Its last attempt's number: a handler may record a failure for good on it.
    pub max_attempts: u32,
    payload: String,
    /// Fires when the job is cancelled, taken over, or the worker shuts down: stop soon.
    pub cancelled: CancellationToken,
}

impl JobContext {
    /// The payload as `T`; a payload that does not parse is a fatal error.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.payload)
            .map_err(|e| JobError::Fatal(format!("the job's payload does not parse: {e}")))
    }
}

/// Runs the jobs of one kind.
pub trait Handler: Send + Sync + 'static {
    /// The kind it runs.
    fn kind(&self) -> &str;
    /// Runs one job. The future is spawned, so a panic fails the attempt, not the worker.
    fn run(&self, job: JobContext) -> BoxFuture<'static, Result<(), JobError>>;
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub kind: String,
    pub payload: serde_json::Value,
    pub owner: Option<UserId>,
    /// Higher runs first (default 0).
    pub priority: i64,
    /// Not run before this time (default: now).
    pub run_at: Option<Timestamp>,
    /// Default: `jobs.max_attempts`.
    pub max_attempts: Option<u32>,
    /// Enqueueing the same kind and key again returns the job already there.
    pub idempotency_key: Option<String>,
}

impl JobSpec {
    /// A job of `kind` with `payload`, for the system, due now.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            owner: None,
            priority: 0,
            run_at: None,
            max_attempts: None,
            idempotency_key: None,
        }
    }

    /// For `owner`: it takes turns with other owners and counts toward their limit.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    fn into_new(self, settings: &JobsSettings) -> Result<NewJob, JobsError> {
        let invalid = |field, message: String| Err(JobsError::Invalid { field, message });
        let kind_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if self.kind.is_empty()
            || self.kind.len() > MAX_KIND_CHARS
            || !self.kind.chars().all(kind_ok)
        {
            return invalid(
                "kind",
                format!("must be 1 to {MAX_KIND_CHARS} of a-z, 0-9, `_`, `.` and `-`"),
            );
        }
        let payload = self.payload.to_string();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return invalid(
                "payload",
                format!("must be at most {MAX_PAYLOAD_BYTES} bytes of JSON"),
            );
        }
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
                return invalid(
                    "idempotency_key",
                    format!("must be 1 to {MAX_KEY_CHARS} characters"),
                );
            }
        }
        let max_attempts = self.max_attempts.unwrap_or(settings.max_attempts);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return invalid(
                "max_attempts",
                format!("must be between 1 and {MAX_ATTEMPTS}"),
            );
        }
        Ok(NewJob {
            kind: self.kind,
            payload,
            owner: self.owner,
            priority: self.priority,
            run_at: self.run_at.unwrap_or_else(Timestamp::now),
            max_attempts: i64::from(max_attempts),
            idempotency_key: self.idempotency_key,
        })
    }
}

/// The queue: enqueue, cancel, re-run and inspect jobs. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    settings: Arc<JobsSettings>,
    /// Wakes this process's idle workers when a job is enqueued here (others poll).
    wake: Arc<Notify>,
}

impl Queue {
    pub fn new(store: Store, settings: JobsSettings) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn settings(&self) -> &JobsSettings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Enqueues one job.
    pub async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued, JobsError> {
        let mut out = self.enqueue_all(vec![spec]).await?;
        Ok(out.remove(0))
    }

    /// Enqueues jobs in one transaction: all or none. Every spec is checked first.
    pub async fn enqueue_all(&self, specs: Vec<JobSpec>) -> Result<Vec<Enqueued>, JobsError> {
        let jobs = specs
            .into_iter()
            .map(|s| s.into_new(&self.settings))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.store.enqueue_jobs(&jobs).await?;
        let new = out.iter().filter(|e| matches!(e, Enqueued::New(_))).count();
        for _ in 0..new.min(self.settings.workers) {
            self.wake.notify_one();
        }
        Ok(out)
    }

    /// Cancels a queued or running job; `None` when it is missing or already finished.
    pub async fn cancel(&self, id: JobId) -> Result<Option<Job>, JobsError> {
        Ok(self.store.cancel_job(id).await?)
    }

    /// Queues a dead or cancelled job again with fresh attempts; `None` when it is missing or
    /// not dead or cancelled.
    pub async fn rerun(&self, id: JobId) -> Result<Option<Job>, JobsError> {
        let job = self.store.rerun_job(id).await?;
        if job.is_some() {
            self.wake.notify_one();
        }
        Ok(job)
    }

    /// Takes back running jobs whose lease ran out (the workers' maintenance does this
    /// periodically). With `all`, every running job, whatever its lease: only for a process
    /// that is the store's one user (embedded SQLite) at start, when they are all its own
    /// jobs from before a crash.
    pub async fn recover(&self, all: bool) -> Result<hearth_store::RecoveredJobs, JobsError> {
        let expired_before = if all {
            Timestamp::from_millis(i64::MAX)
        } else {
            Timestamp::now()
        };
        let recovered = self.store.recover_jobs(expired_before).await?;
        for _ in 0..recovered.requeued.min(self.settings.workers as u64) {
            self.wake.notify_one();
        }
        Ok(recovered)
    }

    pub async fn get(&self, id: JobId) -> Result<Option<Job>, JobsError> {
        Ok(self.store.get_job(id).await?)
    }

    /// Dead jobs, newest first: what failed for good and may be re-run.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<Job>, JobsError> {
        Ok(self
            .store
            .list_jobs(&JobFilter {
                state: Some(JobState::Dead),
                limit,
                ..JobFilter::default()
            })
            .await?)
    }
}

/// The kind of the job that deletes finished jobs past `jobs.retention_hours`.
pub const PURGE_JOB: &str = "jobs.purge";

/// Deletes finished jobs (succeeded, dead, cancelled) past retention.
struct Purge(Queue);

impl Handler for Purge {
    fn kind(&self) -> &str {
        PURGE_JOB
    }

    fn run(&self, _job: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
        let queue = self.0.clone();
        Box::pin(async move {
            let keep = queue.settings.retention_hours.saturating_mul(3_600_000);
            let before = Timestamp::from_millis(
                Timestamp::now()
                    .millis()
                    .saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX)),
            );
            let purged = queue
                .store
                .purge_jobs(before)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            if purged > 0 {
                tracing::info!(purged, "deleted finished jobs past retention");
            }
            Ok(())
        })
    }
}

impl Queue {
    /// The queue's own jobs' handlers (the purge), for a worker pool.
    pub fn system_handlers(&self) -> Vec<Arc<dyn Handler>> {
        vec![Arc::new(Purge(self.clone()))]
    }

    /// Schedules the queue's own jobs (the hourly purge); every instance may call it at start
    /// (a tick already due keeps its place, and an operator's `enabled = false` is kept).
    pub async fn install_system_schedules(&self) -> Result<(), JobsError> {
        let enabled = match self.store.get_schedule(PURGE_JOB).await? {
            Some(s) => s.enabled,
            None => true,
        };
        self.put_schedule(
            ScheduleSpec::new(
                PURGE_JOB,
                "17 * * * *",
                JobSpec::new(PURGE_JOB, serde_json::json!({})),
            )
            .enabled(enabled),
        )
        .await?;
        Ok(())
    }
}

/// Handlers by kind, as the workers look them up.
type Handlers = std::collections::HashMap<String, Arc<dyn Handler>>;
