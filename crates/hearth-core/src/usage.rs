//! Usage and traces of model calls, for admins: each call's tokens, latency, time to first
//! token, cost, tool calls and error, and sums per user and model.

use chrono::{DateTime, Utc};
use hearth_store::ids::{LlmCallId, RunId, UserId};
use std::sync::Arc;

use hearth_store::{LlmCallFilter, Store, Timestamp};

use crate::access::Admin;
use crate::error::{CoreError, Result};

pub use hearth_api::usage::{Trace, TraceQuery, UsageQuery, UsageSummary};

const MAX_LIMIT: i64 = 1000;

/// Tokens estimated at four characters each, for a call whose upstream reported no usage
/// (stopped or broken): counting nothing would let stopped answers escape the quota.
pub fn estimate(input_chars: usize, output_chars: usize) -> hearth_llm::Usage {
    hearth_llm::Usage {
        input_tokens: input_chars.div_ceil(4) as u64,
        output_tokens: output_chars.div_ceil(4) as u64,
    }
}

/// What one model call did, whichever path made it (chat run or `/v1`).
pub struct CallOutcome {
    pub user: UserId,
    pub run: Option<RunId>,
    /// `chat` or `openai_api`.
    pub source: &'static str,
    pub usage: hearth_llm::Usage,
    pub latency: std::time::Duration,
    pub ttft: Option<std::time::Duration>,
    pub tool_calls: usize,
    pub error: Option<String>,
}

impl CallOutcome {
    /// The stored record of this call to `model` (with its cost at the model's prices).
    pub fn record_for(self, model: &crate::providers::ResolvedModel) -> hearth_store::LlmCall {
        hearth_store::LlmCall {
            id: LlmCallId::new(),
            user_id: Some(self.user),
            run_id: self.run,
            source: self.source.into(),
            model: model.model.name.clone(),
            provider_id: Some(model.model.provider_id),
            input_tokens: self.usage.input_tokens as i64,
            output_tokens: self.usage.output_tokens as i64,
            latency_ms: self.latency.as_millis() as i64,
            ttft_ms: self.ttft.map(|d| d.as_millis() as i64),
            cost_usd: model.cost(self.usage.input_tokens, self.usage.output_tokens),
            tool_calls: self.tool_calls as i64,
            error: self.error,
            created_at: Timestamp::now(),
        }
    }
}

/// Writes model-call records in batches: concurrent callers share one transaction, so a burst
/// of finishing streams costs a few writes instead of one per stream (SQLite has one writer).
/// `record` returns once the record is committed.
#[derive(Clone)]
pub struct Recorder {
    tx: tokio::sync::mpsc::Sender<(hearth_store::LlmCall, tokio::sync::oneshot::Sender<()>)>,
}

/// Records committed in one transaction at most.
const BATCH: usize = 256;

impl Recorder {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(store: Store) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(
            hearth_store::LlmCall,
            tokio::sync::oneshot::Sender<()>,
        )>(4 * BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (calls, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                if let Err(e) = store.record_llm_calls(&calls).await {
                    tracing::warn!(error = %e, records = calls.len(), "could not record LLM calls");
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        });
        Self { tx }
    }

    /// Queues a record and waits until it is committed (or dropped after a failure, logged).
    pub async fn record(&self, call: hearth_store::LlmCall) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.tx.send((call, ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The daily token quota (`chat.daily_token_quota`), enforced by reservation: before a model
/// call, what it may spend (its prompt, estimated, plus its capped `max_tokens`) is reserved
/// against what the user spent today plus what their calls in progress reserved; the
/// reservation is given back once the call's real usage is committed. Concurrent calls at the
/// boundary therefore cannot pass together: the quota is overshot at most by how much one call
/// spends beyond its estimate. Reservations are per instance (in memory).
#[derive(Clone)]
pub struct Quota {
    store: Store,
    daily: u64,
    reserved: Arc<std::sync::Mutex<std::collections::HashMap<UserId, Held>>>,
}

/// One user's reservations: held now, and given back so far (a count that only grows). A
/// reservation given back while another call reads today's usage may or may not be in that
/// read, so the reader counts it as spent: at worst a call is refused a little early.
#[derive(Default)]
struct Held {
    now: u64,
    given_back: u64,
}

/// Tokens reserved for a call in progress; dropping it gives them back.
#[must_use = "the reservation is given back when it is dropped"]
pub struct Reservation {
    quota: Option<Quota>,
    user: UserId,
    tokens: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(quota) = &self.quota {
            let mut reserved = quota.lock();
            if let Some(held) = reserved.get_mut(&self.user) {
                held.now = held.now.saturating_sub(self.tokens);
                held.given_back = held.given_back.saturating_add(self.tokens);
            }
        }
    }
}

impl Quota {
    /// `daily` tokens per user per UTC day; 0 for no limit.
    pub fn new(store: Store, daily: u64) -> Self {
        Self {
            store,
            daily,
            reserved: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<UserId, Held>> {
        self.reserved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves `tokens` for a call of `user`, or refuses it (429) when today's usage, the
    /// user's reservations in progress and this one together pass the quota.
    pub async fn reserve(&self, user: UserId, tokens: u64) -> Result<Reservation> {
        if self.daily == 0 {
            return Ok(Reservation {
                quota: None,
                user,
                tokens: 0,
            });
        }
        let now = chrono::Utc::now();
        let day_start = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or(now);
        let given_back_before = self.lock().get(&user).map_or(0, |h| h.given_back);
        let used = self
            .store
            .tokens_used_since(user, Timestamp::from_millis(day_start.timestamp_millis()))
            .await?;
        let mut reserved = self.lock();
        let entry = reserved.entry(user).or_default();
        // Given back during the read: perhaps not in `used` yet, so counted as spent.
        let used = u64::try_from(used)
            .unwrap_or(0)
            .saturating_add(entry.given_back.saturating_sub(given_back_before));
        let held = entry.now;
        if used.saturating_add(held).saturating_add(tokens) > self.daily {
            let renews = (day_start + chrono::Duration::days(1) - now)
                .num_seconds()
                .max(1) as u64;
            let quota = self.daily;
            let message = if used >= quota {
                format!("daily token quota of {quota} tokens is used up ({used} used); it renews at 00:00 UTC")
            } else {
                format!(
                    "daily token quota of {quota} tokens: {used} used and {held} held by calls in \
                     progress leave too little for this call (up to {tokens}); it renews at 00:00 UTC"
                )
            };
            return Err(CoreError::QuotaExceeded {
                message,
                retry_after_secs: renews,
            });
        }
        entry.now = held + tokens;
        Ok(Reservation {
            quota: Some(self.clone()),
            user,
            tokens,
        })
    }
}

/// The usage service.
#[derive(Clone)]
pub struct Usage {
    store: Store,
}

impl Usage {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Traces matching the query, newest first.
    pub async fn traces(&self, _admin: &Admin, q: TraceQuery) -> Result<Vec<Trace>> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let ts = |d: Option<DateTime<Utc>>| d.map(|d| Timestamp::from_millis(d.timestamp_millis()));
        let rows = self
            .store
            .list_llm_calls(&LlmCallFilter {
                user_id: q.user_id,
                model: q.model.filter(|m| !m.is_empty()),
                since: ts(q.since),
                until: ts(q.until),
                errors_only: q.errors_only,
                limit,
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| Trace {
                id: c.id,
                user_id: c.user_id,
                run_id: c.run_id,
                source: c.source,
                model: c.model,
                provider_id: c.provider_id,
                input_tokens: c.input_tokens,
                output_tokens: c.output_tokens,
                latency_ms: c.latency_ms,
                ttft_ms: c.ttft_ms,
                cost_usd: c.cost_usd,
                tool_calls: c.tool_calls,
                error: c.error,
                created_at: c.created_at.to_datetime(),
            })
            .collect())
    }

    /// Sums per user and model over the last `days`.
    pub async fn summary(&self, _admin: &Admin, q: UsageQuery) -> Result<Vec<UsageSummary>> {
        let days = q.days.unwrap_or(30);
        if !(1..=3660).contains(&days) {
            return Err(CoreError::invalid("days", "must be between 1 and 3660"));
        }
        let since = Timestamp::from_millis(
            (Utc::now() - chrono::Duration::days(i64::from(days))).timestamp_millis(),
        );
        Ok(self
            .store
            .usage_summary(since, q.user_id)
            .await?
            .into_iter()
            .map(|r| UsageSummary {
                user_id: r.user_id,
                model: r.model,
                calls: r.calls,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_usd: r.cost_usd,
            })
            .collect())
    }
}
