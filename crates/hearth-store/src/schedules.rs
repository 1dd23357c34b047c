//! Recurring jobs' table: each row names a cron expression, a time zone and the job a tick
//! enqueues (hearth-jobs computes ticks and enqueues). This module makes moving a schedule to
//! its next tick a compare-and-set, so two instances never both fire one tick.

use crate::ids::UserId;
use crate::{on_pool, on_writer, Result, Store, Timestamp};

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Schedule {
    /// Unique; part of each tick's idempotency key.
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week).
    pub cron: String,
    /// IANA time zone the expression is read in (`Europe/Paris`, `UTC`).
    pub timezone: String,
    /// The job each tick enqueues.
    pub kind: String,
    pub payload: String,
    pub owner: Option<UserId>,
    pub priority: i64,
    pub max_attempts: i64,
    pub enabled: bool,
    /// The next tick.
    pub next_at: Timestamp,
    /// The last tick that fired.
    pub last_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A schedule to create or replace.
#[derive(Clone, Debug)]
pub struct NewSchedule {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub kind: String,
    pub payload: String,
    pub owner: Option<UserId>,
    pub priority: i64,
    pub max_attempts: i64,
    pub enabled: bool,
    pub next_at: Timestamp,
}

impl Store {
    /// Creates a schedule, or replaces the one of that name. A replacement with the same cron
    /// expression and time zone keeps its next tick (so a tick that is due, or was missed
    /// while nothing ran, still fires); its last tick is always kept.
    pub async fn put_schedule(&self, s: &NewSchedule) -> Result<Schedule> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Schedule>(
                "INSERT INTO schedules (name, cron, timezone, kind, payload, owner, priority, \
                 max_attempts, enabled, next_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                 ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, \
                 timezone = excluded.timezone, kind = excluded.kind, payload = excluded.payload, \
                 owner = excluded.owner, priority = excluded.priority, \
                 max_attempts = excluded.max_attempts, enabled = excluded.enabled, \
                 next_at = CASE WHEN schedules.cron = excluded.cron \
                   AND schedules.timezone = excluded.timezone \
                   THEN schedules.next_at ELSE excluded.next_at END, \
                 updated_at = excluded.updated_at RETURNING *",
            )
            .bind(&s.name)
            .bind(&s.cron)
            .bind(&s.timezone)
            .bind(&s.kind)
            .bind(&s.payload)
            .bind(s.owner)
            .bind(s.priority)
            .bind(s.max_attempts)
            .bind(s.enabled)
            .bind(s.next_at)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Deletes a schedule; false when there was none (jobs it enqueued stay).
    pub async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let n = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM schedules WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    pub async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Schedule>("SELECT * FROM schedules WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Every schedule, by name.
    pub async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Schedule>("SELECT * FROM schedules ORDER BY name")
                .fetch_all(pool)
                .await
        })?)
    }

    /// Enabled schedules whose next tick is at or before `now`, soonest first.
    pub async fn due_schedules(&self, now: Timestamp, limit: i64) -> Result<Vec<Schedule>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Schedule>(
                "SELECT * FROM schedules WHERE enabled = $1 AND next_at <= $2 \
                 ORDER BY next_at, name LIMIT $3",
            )
            .bind(true)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Moves a schedule from tick `from` (which fired) to tick `to`, only if `from` is still its
    /// next tick; false when another instance moved it first (or it was replaced).
    pub async fn advance_schedule(
        &self,
        name: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        let n = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE schedules SET next_at = $3, last_at = $2, updated_at = $4 \
                 WHERE name = $1 AND next_at = $2",
            )
            .bind(name)
            .bind(from)
            .bind(to)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }
}
