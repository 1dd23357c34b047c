//! Live runs: each answer is produced by a task that publishes sequenced events into a buffer
//! owned by the run. Subscribers hold a cursor into that buffer and are woken by a watch
//! channel, so a slow subscriber costs one cursor (never a growing queue) and never delays the
//! run or the other subscribers. A finished run's events are stored, then it leaves the hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::Stream;
use hearth_store::ids::{ConversationId, RunId, UserId};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::api::{RunEvent, RunEventKind};

/// One event with its JSON, serialized once for every subscriber.
#[derive(Debug)]
pub struct Published {
    pub event: RunEvent,
    pub json: String,
}

#[derive(Default)]
struct Buffer {
    events: Vec<Arc<Published>>,
    finished: bool,
}

/// A run in progress.
pub struct LiveRun {
    pub id: RunId,
    pub owner: UserId,
    pub conversation: ConversationId,
    buffer: Mutex<Buffer>,
    notify: watch::Sender<u64>,
    pub(crate) cancel: CancellationToken,
    approvals: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    /// Whether the run still counts toward its owner's share (until it has answered).
    counted: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for LiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRun")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveRun {
    pub(crate) fn new(id: RunId, owner: UserId, conversation: ConversationId) -> Self {
        Self {
            id,
            owner,
            conversation,
            buffer: Mutex::default(),
            notify: watch::channel(0).0,
            cancel: CancellationToken::new(),
            approvals: Mutex::default(),
            counted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Appends an event and wakes subscribers; returns its sequence number.
    pub(crate) fn publish(&self, kind: RunEventKind) -> u64 {
        let seq = {
            let mut buf = lock(&self.buffer);
            let seq = buf.events.len() as u64 + 1;
            let event = RunEvent { seq, kind };
            let json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
            buf.events.push(Arc::new(Published { event, json }));
            seq
        };
        self.notify.send_replace(seq);
        seq
    }

    /// Marks the run finished: subscribers end once they have read everything.
    pub(crate) fn finish(&self) {
        lock(&self.buffer).finished = true;
        self.notify.send_modify(|_| {});
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<RunEvent> {
        lock(&self.buffer)
            .events
            .iter()
            .map(|p| p.event.clone())
            .collect()
    }

    /// Events after `after`, then live ones until the run finishes.
    pub fn subscribe(
        self: &Arc<Self>,
        after: u64,
    ) -> impl Stream<Item = Arc<Published>> + Send + 'static {
        // Subscribe before reading so no publish between the read and the wait is missed.
        let rx = self.notify.subscribe();
        let run = self.clone();
        futures_util::stream::unfold(
            (run, after as usize, rx),
            |(run, mut cursor, mut rx)| async move {
                loop {
                    {
                        let buf = lock(&run.buffer);
                        if let Some(e) = buf.events.get(cursor) {
                            let e = e.clone();
                            cursor += 1;
                            drop(buf);
                            return Some((e, (run, cursor, rx)));
                        }
                        if buf.finished {
                            return None;
                        }
                    }
                    if rx.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
    }

    /// Registers a pending approval; the answer arrives through the receiver.
    pub(crate) fn await_approval(&self, call_id: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        lock(&self.approvals).insert(call_id.to_owned(), tx);
        rx
    }

    /// Forgets a pending approval (timed out or cancelled).
    pub(crate) fn drop_approval(&self, call_id: &str) {
        lock(&self.approvals).remove(call_id);
    }

    /// Answers a pending approval; `false` when none is waiting under that id.
    pub(crate) fn answer(&self, call_id: &str, approved: bool) -> bool {
        match lock(&self.approvals).remove(call_id) {
            Some(tx) => tx.send(approved).is_ok(),
            None => false,
        }
    }
}

/// A `/v1` completion's place in its owner's share (see [`RunHub::hold`]).
pub(crate) struct HubSlot {
    hub: RunHub,
    owner: UserId,
}

impl Drop for HubSlot {
    fn drop(&mut self) {
        let mut runs = lock(&self.hub.runs);
        if let Some(owned) = runs.per_owner.get_mut(&self.owner) {
            *owned = owned.saturating_sub(1);
            if *owned == 0 {
                runs.per_owner.remove(&self.owner);
            }
        }
    }
}

/// The runs in progress on this instance.
#[derive(Clone, Default)]
pub struct RunHub {
    runs: Arc<Mutex<Runs>>,
}

#[derive(Default)]
struct Runs {
    by_id: HashMap<RunId, Arc<LiveRun>>,
    /// Live runs per owner, for the per-user share.
    per_owner: HashMap<UserId, usize>,
}

impl std::ops::Deref for Runs {
    type Target = HashMap<RunId, Arc<LiveRun>>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl RunHub {
    /// Adds `run` unless its owner already has `max_per_owner` runs in progress here.
    pub(crate) fn insert_within(&self, run: Arc<LiveRun>, max_per_owner: usize) -> bool {
        let mut runs = lock(&self.runs);
        let owned = runs.per_owner.get(&run.owner).copied().unwrap_or(0);
        if owned >= max_per_owner {
            return false;
        }
        runs.per_owner.insert(run.owner, owned + 1);
        run.counted.store(true, std::sync::atomic::Ordering::SeqCst);
        runs.by_id.insert(run.id, run);
        true
    }

    /// Counts a call that is not a run (a `/v1` completion) toward `owner`'s share, unless they
    /// have `max_per_owner` answers in progress here; the slot is given back when dropped.
    pub(crate) fn hold(&self, owner: UserId, max_per_owner: usize) -> Option<HubSlot> {
        let mut runs = lock(&self.runs);
        let owned = runs.per_owner.entry(owner).or_insert(0);
        if *owned >= max_per_owner {
            return None;
        }
        *owned += 1;
        Some(HubSlot {
            hub: self.clone(),
            owner,
        })
    }

    /// The run has answered: it stops counting toward its owner's share, although it stays
    /// in the hub until its log is stored (so the next answer need not wait for that write).
    pub(crate) fn release_share(&self, run: &LiveRun) {
        let mut runs = lock(&self.runs);
        Self::uncount(&mut runs, run);
    }

    fn uncount(runs: &mut Runs, run: &LiveRun) {
        if !run.counted.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Some(owned) = runs.per_owner.get_mut(&run.owner) {
            *owned = owned.saturating_sub(1);
            if *owned == 0 {
                runs.per_owner.remove(&run.owner);
            }
        }
    }

    /// The live run, whoever owns it (callers check ownership).
    pub(crate) fn get(&self, id: RunId) -> Option<Arc<LiveRun>> {
        lock(&self.runs).get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: RunId) {
        let mut runs = lock(&self.runs);
        if let Some(run) = runs.by_id.remove(&id) {
            Self::uncount(&mut runs, &run);
        }
    }

    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        lock(&self.runs).len()
    }

    /// Whether no run is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels the runs of a conversation (it is being deleted).
    pub fn cancel_conversation(&self, conversation: ConversationId) {
        for run in lock(&self.runs)
            .values()
            .filter(|r| r.conversation == conversation)
        {
            run.cancel.cancel();
        }
    }

    /// Cancels every run (shutdown).
    pub fn cancel_all(&self) {
        for run in lock(&self.runs).values() {
            run.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    #[tokio::test]
    async fn subscribers_resume_after_a_sequence_and_end_with_the_run() {
        let run = Arc::new(LiveRun::new(
            RunId::new(),
            UserId::new(),
            ConversationId::new(),
        ));
        run.publish(RunEventKind::TextDelta { text: "a".into() });
        let late = run.subscribe(1);
        let all = run.subscribe(0);
        run.publish(RunEventKind::TextDelta { text: "b".into() });
        run.finish();
        let seqs: Vec<u64> = all.map(|e| e.event.seq).collect().await;
        assert_eq!(seqs, vec![1, 2]);
        let seqs: Vec<u64> = late.map(|e| e.event.seq).collect().await;
        assert_eq!(seqs, vec![2]);
        let after_end: Vec<u64> = run.subscribe(2).map(|e| e.event.seq).collect().await;
        assert!(after_end.is_empty());
    }
}
