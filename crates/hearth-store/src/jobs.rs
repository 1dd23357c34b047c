//! The durable job queue's table. A job is a row: queued until a worker claims it, running while
//! the claim's lease is renewed, then succeeded, dead (failed for good) or cancelled. What a kind
//! of job does, how long leases are and how retries back off is hearth-jobs' business; this
//! module makes each step atomic on both engines.
//!
//! Invariants: a job has at most one current claim; only the current claim's worker can renew,
//! finish, fail or release it (a worker whose lease ran out and was taken over finds its claim
//! gone); a claim never gives an owner more running jobs than the caller's limit.

use crate::enums::text_enum;
use crate::ids::{ClaimId, JobId, UserId};
use crate::{on_pool, on_writer, Pool, Result, Store, Timestamp};

text_enum!(
    /// Where a job is in its life.
    JobState {
        /// Waiting for `run_at` and a worker.
        Queued = "queued",
        /// Held by a worker's claim until its lease runs out.
        Running = "running",
        /// Done.
        Succeeded = "succeeded",
        /// Failed for good (out of attempts, or a failure not worth retrying): the dead letters,
        /// which can be run again.
        Dead = "dead",
        /// Cancelled before it finished.
        Cancelled = "cancelled",
    }
);

/// A job as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    /// JSON, as the kind's handler reads it.
    pub payload: String,
    /// The user the work is for; `None` for the system's own work.
    pub owner: Option<UserId>,
    /// Higher runs first.
    pub priority: i64,
    /// Its place in the fair order among jobs of its priority (see the migration).
    pub vt: i64,
    pub state: JobState,
    /// Not claimed before this time.
    pub run_at: Timestamp,
    /// Claims so far (a claim is an attempt).
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_until: Option<Timestamp>,
    pub claim_id: Option<ClaimId>,
    /// Who holds the current claim (for operators).
    pub worker: Option<String>,
    pub last_error: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub payload: String,
    pub owner: Option<UserId>,
    pub priority: i64,
    pub run_at: Timestamp,
    pub max_attempts: i64,
    /// With a key, enqueueing the same kind and key again returns the job already there.
    pub idempotency_key: Option<String>,
}

/// What [`Store::enqueue_jobs`] did with one job.
#[derive(Clone, Debug)]
pub enum Enqueued {
    /// Stored.
    New(Job),
    /// A job of this kind with this idempotency key exists: this is it.
    Existing(Job),
}

impl Enqueued {
    /// The job, new or existing.
    pub fn job(&self) -> &Job {
        match self {
            Enqueued::New(j) | Enqueued::Existing(j) => j,
        }
    }
}

/// What a worker asks of [`Store::claim_job`].
#[derive(Clone, Debug)]
pub struct ClaimRequest<'a> {
    /// The kinds it runs.
    pub kinds: &'a [&'a str],
    /// Who is claiming (stored for operators).
    pub worker: &'a str,
    pub lease_until: Timestamp,
    /// Most running jobs of these kinds one owner may have; system jobs are not limited.
    pub per_owner: i64,
}

/// What [`Store::recover_jobs`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveredJobs {
    /// Put back in the queue.
    pub requeued: u64,
    /// Out of attempts: dead.
    pub dead: u64,
}

/// Which jobs [`Store::list_jobs`] returns.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub owner: Option<UserId>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// How many jobs of a kind are in a state.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCount {
    pub kind: String,
    pub state: JobState,
    pub count: i64,
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Enqueues jobs in one transaction. A job whose kind and idempotency key are taken is not
    /// stored again: the existing one is returned. Each new job's place in the fair order is
    /// the later of its owner's next turn and the queue's head.
    pub async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let head: i64 = sqlx::query_scalar(
                "SELECT COALESCE((SELECT MIN(vt) FROM jobs WHERE state = $1), \
                 (SELECT MAX(next_vt) FROM job_turns), 0)",
            )
            .bind(JobState::Queued)
            .fetch_one(&mut *tx)
            .await?;
            let mut turns: std::collections::HashMap<String, i64> = Default::default();
            let mut out = Vec::with_capacity(jobs.len());
            for j in jobs {
                let owner = j.owner.map(|o| o.to_string()).unwrap_or_default();
                let next = match turns.get(&owner) {
                    Some(n) => *n,
                    None => sqlx::query_scalar::<_, i64>(
                        "SELECT next_vt FROM job_turns WHERE owner = $1",
                    )
                    .bind(&owner)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(0),
                };
                let vt = next.max(head);
                let inserted = sqlx::query_as::<_, Job>(
                    "INSERT INTO jobs (id, kind, payload, owner, priority, vt, state, run_at, \
                     attempts, max_attempts, idempotency_key, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $11) \
                     ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
                     RETURNING *",
                )
                .bind(JobId::new())
                .bind(&j.kind)
                .bind(&j.payload)
                .bind(j.owner)
                .bind(j.priority)
                .bind(vt)
                .bind(JobState::Queued)
                .bind(j.run_at)
                .bind(j.max_attempts.max(1))
                .bind(&j.idempotency_key)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                out.push(match inserted {
                    Some(job) => {
                        turns.insert(owner, vt + 1);
                        Enqueued::New(job)
                    }
                    None => {
                        turns.insert(owner, next);
                        Enqueued::Existing(
                            sqlx::query_as::<_, Job>(
                                "SELECT * FROM jobs WHERE kind = $1 AND idempotency_key = $2",
                            )
                            .bind(&j.kind)
                            .bind(&j.idempotency_key)
                            .fetch_one(&mut *tx)
                            .await?,
                        )
                    }
                });
            }
            for (owner, next) in turns {
                sqlx::query(
                    "INSERT INTO job_turns (owner, next_vt) VALUES ($1, $2) \
                     ON CONFLICT (owner) DO UPDATE SET next_vt = CASE \
                     WHEN excluded.next_vt > job_turns.next_vt THEN excluded.next_vt \
                     ELSE job_turns.next_vt END",
                )
                .bind(owner)
                .bind(next)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Claims the next due job of one of `req.kinds`: the highest priority first, then the
    /// lowest virtual time (owners take turns). The job becomes `running` under a new claim until
    /// `req.lease_until`, and its attempts grow by one. Two workers never claim the same job; an
    /// owner at `req.per_owner` running jobs of these kinds is skipped.
    pub async fn claim_job(&self, req: &ClaimRequest<'_>) -> Result<Option<Job>> {
        if req.kinds.is_empty() {
            return Ok(None);
        }
        // $1 running, $2 queued (bound for the update), $3 now, $4 per_owner, then the kinds.
        // The states the pick filters on are written into the text (from the enum) so that
        // PostgreSQL's generic plan still knows them and walks the indexes, not the table.
        let kinds = placeholders(5, req.kinds.len());
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let next = |cols: &str| {
            format!(
                "SELECT {cols} FROM jobs j WHERE j.state = '{queued}' AND j.run_at <= $3 \
                 AND j.kind IN ({kinds}) AND (j.owner IS NULL OR j.owner NOT IN \
                 (SELECT r.owner FROM jobs r WHERE r.state = '{running}' AND r.owner IS NOT NULL \
                 AND r.kind IN ({kinds}) GROUP BY r.owner HAVING COUNT(*) >= $4)) \
                 ORDER BY j.priority DESC, j.vt, j.id LIMIT 1"
            )
        };
        let now = Timestamp::now();
        let claim_id = ClaimId::new();
        macro_rules! bind_next {
            ($q:expr) => {{
                let mut q = $q
                    .bind(JobState::Running)
                    .bind(JobState::Queued)
                    .bind(now)
                    .bind(req.per_owner);
                for k in req.kinds {
                    q = q.bind(*k);
                }
                q
            }};
        }
        let k = 5 + req.kinds.len();
        let set = format!(
            "UPDATE jobs SET state = $1, attempts = attempts + 1, lease_until = ${k}, \
             claim_id = ${}, worker = ${}, updated_at = $3",
            k + 1,
            k + 2
        );
        match &self.pool {
            // SQLite has one writer at a time: one statement picks and claims atomically.
            Pool::Sqlite(readers) => {
                let pool = self.writer.as_ref().unwrap_or(readers);
                let sql = format!("{set} WHERE id = ({}) RETURNING *", next("j.id"));
                Ok(bind_next!(sqlx::query_as::<_, Job>(&sql))
                    .bind(req.lease_until)
                    .bind(claim_id)
                    .bind(req.worker)
                    .fetch_optional(pool)
                    .await?)
            }
            // Two workers can pick jobs of one owner at once: the owner's turn row serializes
            // them and the count is read again behind it; a lost race tries the next job.
            Pool::Postgres(pool) => {
                let pick = format!("{} FOR UPDATE OF j SKIP LOCKED", next("j.id, j.owner"));
                // The update reads the owner's running jobs with a snapshot taken after the
                // turn row was locked, so it sees every claim made before ours.
                let update = format!(
                    "UPDATE jobs SET state = $1, attempts = attempts + 1, lease_until = $2, \
                     claim_id = $3, worker = $4, updated_at = $5 WHERE id = $6 AND ($7 IS NULL OR \
                     (SELECT COUNT(*) FROM jobs r WHERE r.owner = $7 AND r.state = '{running}' \
                     AND r.kind IN ({})) < $8) RETURNING *",
                    placeholders(9, req.kinds.len())
                );
                for _ in 0..4 {
                    // A claim lost in a crash leaves the job queued, which is safe; not waiting
                    // for the WAL flush makes claims several times faster.
                    let mut tx = pool
                        .begin_with("BEGIN; SET LOCAL synchronous_commit TO OFF")
                        .await?;
                    let picked: Option<(JobId, Option<UserId>)> = bind_next!(sqlx::query_as(&pick))
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some((id, owner)) = picked else {
                        return Ok(None);
                    };
                    if let Some(owner) = owner {
                        sqlx::query("SELECT next_vt FROM job_turns WHERE owner = $1 FOR UPDATE")
                            .bind(owner.to_string())
                            .execute(&mut *tx)
                            .await?;
                    }
                    let mut q = sqlx::query_as::<_, Job>(&update)
                        .bind(JobState::Running)
                        .bind(req.lease_until)
                        .bind(claim_id)
                        .bind(req.worker)
                        .bind(now)
                        .bind(id)
                        .bind(owner)
                        .bind(req.per_owner);
                    for kind in req.kinds {
                        q = q.bind(*kind);
                    }
                    match q.fetch_optional(&mut *tx).await? {
                        Some(job) => {
                            tx.commit().await?;
                            return Ok(Some(job));
                        }
                        // Another worker's claim of this owner came first: the next job.
                        None => tx.rollback().await?,
                    }
                }
                Ok(None)
            }
        }
    }

    /// Extends a running job's lease; false when `claim` is no longer its claim (cancelled, or
    /// taken over after the lease ran out): the worker should stop.
    pub async fn renew_job(
        &self,
        id: JobId,
        claim: ClaimId,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let n = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET lease_until = $1, updated_at = $2 \
                 WHERE id = $3 AND claim_id = $4 AND state = $5",
            )
            .bind(lease_until)
            .bind(Timestamp::now())
            .bind(id)
            .bind(claim)
            .bind(JobState::Running)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Marks a job succeeded; false when `claim` is no longer its claim (nothing changes).
    pub async fn complete_job(&self, id: JobId, claim: ClaimId) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = $1, lease_until = NULL, claim_id = NULL, last_error = NULL, \
                 finished_at = $2, updated_at = $2 WHERE id = $3 AND claim_id = $4 AND state = $5",
            )
            .bind(JobState::Succeeded)
            .bind(now)
            .bind(id)
            .bind(claim)
            .bind(JobState::Running)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Records a failed attempt. With `retry_at` and attempts left the job is queued again for
    /// then; otherwise it is dead. Returns the new state, or `None` when `claim` is no longer the
    /// job's claim (nothing changes).
    pub async fn fail_job(
        &self,
        id: JobId,
        claim: ClaimId,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<Option<JobState>> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let held: Option<(i64, i64, Timestamp)> = sqlx::query_as(
                "SELECT attempts, max_attempts, run_at FROM jobs \
                 WHERE id = $1 AND claim_id = $2 AND state = $3",
            )
            .bind(id)
            .bind(claim)
            .bind(JobState::Running)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((attempts, max, run_at)) = held else {
                return Ok(None);
            };
            let (state, run_at, finished) = match retry_at {
                Some(at) if attempts < max => (JobState::Queued, at, None),
                _ => (JobState::Dead, run_at, Some(now)),
            };
            sqlx::query(
                "UPDATE jobs SET state = $1, run_at = $2, finished_at = $3, last_error = $4, \
                 lease_until = NULL, claim_id = NULL, updated_at = $5 WHERE id = $6",
            )
            .bind(state)
            .bind(run_at)
            .bind(finished)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(state))
        })
    }

    /// Puts a job back in the queue without counting the claim (a worker shutting down); false
    /// when `claim` is no longer its claim.
    pub async fn release_job(&self, id: JobId, claim: ClaimId) -> Result<bool> {
        let n = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = $1, lease_until = NULL, claim_id = NULL, updated_at = $2, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $3 AND claim_id = $4 AND state = $5",
            )
            .bind(JobState::Queued)
            .bind(Timestamp::now())
            .bind(id)
            .bind(claim)
            .bind(JobState::Running)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Cancels a queued or running job (a running one's worker learns it at its next renewal);
    /// `None` when the job is missing or already finished.
    pub async fn cancel_job(&self, id: JobId) -> Result<Option<Job>> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Job>(
                "UPDATE jobs SET state = $1, lease_until = NULL, claim_id = NULL, finished_at = $2, \
                 updated_at = $2 WHERE id = $3 AND state IN ($4, $5) RETURNING *",
            )
            .bind(JobState::Cancelled)
            .bind(now)
            .bind(id)
            .bind(JobState::Queued)
            .bind(JobState::Running)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Queues a dead or cancelled job again, with its attempts reset; `None` when the job is
    /// missing or not dead or cancelled.
    pub async fn rerun_job(&self, id: JobId) -> Result<Option<Job>> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Job>(
                "UPDATE jobs SET state = $1, attempts = 0, run_at = $2, last_error = NULL, \
                 finished_at = NULL, updated_at = $2 WHERE id = $3 AND state IN ($4, $5) RETURNING *",
            )
            .bind(JobState::Queued)
            .bind(now)
            .bind(id)
            .bind(JobState::Dead)
            .bind(JobState::Cancelled)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Takes back running jobs whose lease ran out before `expired_before` (their worker
    /// stopped; a process that is the store's only user passes a time past every lease at
    /// start): queued again at once, or dead when they are out of attempts.
    pub async fn recover_jobs(&self, expired_before: Timestamp) -> Result<RecoveredJobs> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let dead = sqlx::query(
                "UPDATE jobs SET state = $1, lease_until = NULL, claim_id = NULL, finished_at = $2, \
                 updated_at = $2, last_error = $3 \
                 WHERE state = $4 AND lease_until < $5 AND attempts >= max_attempts",
            )
            .bind(JobState::Dead)
            .bind(now)
            .bind("its worker stopped (the lease ran out) on every attempt")
            .bind(JobState::Running)
            .bind(expired_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let requeued = sqlx::query(
                "UPDATE jobs SET state = $1, lease_until = NULL, claim_id = NULL, run_at = $2, \
                 updated_at = $2, last_error = $3 WHERE state = $4 AND lease_until < $5",
            )
            .bind(JobState::Queued)
            .bind(now)
            .bind("its worker stopped (the lease ran out); queued again")
            .bind(JobState::Running)
            .bind(expired_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(RecoveredJobs { requeued, dead })
        })
    }

    /// One job.
    pub async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Job>(
                "SELECT * FROM jobs WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2) \
                 AND ($3 IS NULL OR owner = $3) ORDER BY created_at DESC, id DESC LIMIT $4",
            )
            .bind(filter.state)
            .bind(&filter.kind)
            .bind(filter.owner)
            .bind(filter.limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Jobs per kind and state (for metrics).
    pub async fn job_counts(&self) -> Result<Vec<JobCount>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, JobCount>(
                "SELECT kind, state, COUNT(*) AS count FROM jobs GROUP BY kind, state \
                 ORDER BY kind, state",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Deletes finished jobs (succeeded, dead or cancelled) that finished before `before`;
    /// returns how many.
    pub async fn purge_jobs(&self, before: Timestamp) -> Result<u64> {
        Ok(on_writer!(self, |pool| {
            sqlx::query("DELETE FROM jobs WHERE state IN ($1, $2, $3) AND finished_at < $4")
                .bind(JobState::Succeeded)
                .bind(JobState::Dead)
                .bind(JobState::Cancelled)
                .bind(before)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?)
    }
}
