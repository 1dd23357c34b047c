//! The supervised runtime: every background loop of a process runs under it. A loop that panics
//! or ends on its own is restarted after a back-off (doubling, reset once it has run a while)
//! and counted; its status feeds `/metrics` and `/ready`. Shutdown stops every loop and waits
//! for them within a bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A loop that ran this long is healthy again: its next restart waits the shortest back-off.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// One loop's state as shown to operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopStatus {
    pub name: &'static str,
    /// `/ready` is false while a required loop is down.
    pub required: bool,
    /// Running now (false while it waits to be restarted).
    pub up: bool,
    /// Times it panicked or ended and was started again.
    pub restarts: u64,
    /// Ticks of a periodic loop that returned an error.
    pub failed_ticks: u64,
}

#[derive(Debug)]
struct LoopState {
    name: &'static str,
    required: bool,
    up: AtomicBool,
    restarts: AtomicU64,
    failed_ticks: AtomicU64,
}

/// Owns the process's background loops. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    stop: CancellationToken,
    loops: Mutex<Vec<Arc<LoopState>>>,
    tasks: Mutex<JoinSet<()>>,
    backoff: (Duration, Duration),
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime whose loops restart after 1 s, doubling up to 60 s.
    pub fn new() -> Self {
        Self::with_backoff(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// A runtime with its own restart back-off (tests use a short one).
    pub fn with_backoff(min: Duration, max: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                stop: CancellationToken::new(),
                loops: Mutex::new(Vec::new()),
                tasks: Mutex::new(JoinSet::new()),
                backoff: (min, max.max(min)),
            }),
        }
    }

    /// Fires when the runtime shuts down; loops stop when it does.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Runs `run` under supervision until shutdown. `run` gets the shutdown token and should
    /// return soon after it fires; returning earlier (or panicking) restarts it.
    pub fn spawn<F>(&self, name: &'static str, required: bool, run: F)
    where
        F: Fn(CancellationToken) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        let state = self.register(name, required);
        self.supervise(state, run);
    }

    fn register(&self, name: &'static str, required: bool) -> Arc<LoopState> {
        let state = Arc::new(LoopState {
            name,
            required,
            up: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            failed_ticks: AtomicU64::new(0),
        });
        lock(&self.inner.loops).push(state.clone());
        state
    }

    fn supervise<F>(&self, state: Arc<LoopState>, run: F)
    where
        F: Fn(CancellationToken) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        let name = state.name;
        let stop = self.inner.stop.clone();
        let (min, max) = self.inner.backoff;
        lock(&self.inner.tasks).spawn(async move {
            let mut backoff = min;
            loop {
                state.up.store(true, Ordering::SeqCst);
                let started = Instant::now();
                let task = tokio::spawn(run(stop.clone()));
                // Aborting the supervisor (a shutdown past its bound) aborts the loop too.
                let _abort = AbortOnDrop(task.abort_handle());
                let ended = task.await;
                state.up.store(false, Ordering::SeqCst);
                if stop.is_cancelled() {
                    return;
                }
                match ended {
                    Err(e) if e.is_panic() => {
                        tracing::error!(task = name, error = %e, "a background loop panicked; restarting it")
                    }
                    _ => tracing::error!(task = name, "a background loop ended; restarting it"),
                }
                state.restarts.fetch_add(1, Ordering::SeqCst);
                if started.elapsed() >= HEALTHY_AFTER {
                    backoff = min;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(max);
            }
        });
    }

    /// Runs `tick` every `period` (the first after one period) until shutdown. A tick's error
    /// is logged and counted; a panicking tick restarts the loop like [`Runtime::spawn`].
    pub fn every<F>(&self, name: &'static str, required: bool, period: Duration, tick: F)
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        let tick = Arc::new(tick);
        let state = self.register(name, required);
        let counted = state.clone();
        self.supervise(state, move |stop| {
            let tick = tick.clone();
            let counted = counted.clone();
            Box::pin(async move {
                let mut every =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        _ = stop.cancelled() => return,
                    }
                    if let Err(e) = tick().await {
                        tracing::warn!(task = name, error = %e, "a background tick failed");
                        counted.failed_ticks.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        });
    }

    /// Every loop's status, in the order they were started.
    pub fn status(&self) -> Vec<LoopStatus> {
        lock(&self.inner.loops)
            .iter()
            .map(|s| LoopStatus {
                name: s.name,
                required: s.required,
                up: s.up.load(Ordering::SeqCst),
                restarts: s.restarts.load(Ordering::SeqCst),
                failed_ticks: s.failed_ticks.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// `Err` naming the first required loop that is down.
    pub fn ready(&self) -> Result<(), String> {
        match self.status().into_iter().find(|s| s.required && !s.up) {
            Some(down) => Err(format!("background task {} is down", down.name)),
            None => Ok(()),
        }
    }

    /// Stops every loop and waits up to `within` for them; loops still running then are
    /// aborted. True when all stopped in time.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.inner.stop.cancel();
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        let drained =
            tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_ok();
        if !drained {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        drained
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A poisoned lock only means a panic elsewhere while it was held; the data is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn fast() -> Runtime {
        Runtime::with_backoff(Duration::from_millis(5), Duration::from_millis(20))
    }

    async fn until(rt: &Runtime, done: impl Fn(&[LoopStatus]) -> bool) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !done(&rt.status()) {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the runtime did not get there");
    }

    #[tokio::test]
    async fn a_panicking_loop_is_restarted_and_counted() {
        let rt = fast();
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        rt.spawn("flaky", true, move |stop| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n < 2 {
                    panic!("loop bug {n}");
                }
                stop.cancelled().await;
            })
        });
        until(&rt, |s| s[0].restarts == 2 && s[0].up).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(rt.ready(), Ok(()));
        assert!(rt.shutdown(Duration::from_secs(5)).await);
        assert!(!rt.status()[0].up);
    }

    #[tokio::test]
    async fn a_required_loop_that_keeps_failing_makes_the_process_unready() {
        let rt = Runtime::with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        rt.spawn("optional", false, |stop| {
            Box::pin(async move { stop.cancelled().await })
        });
        rt.spawn("needed", true, |_| Box::pin(async { panic!("always") }));
        until(&rt, |s| s[1].restarts == 1).await;
        assert_eq!(rt.ready(), Err("background task needed is down".into()));
        assert!(rt.status()[0].up);
        // Shutdown does not wait out the hour-long back-off.
        assert!(rt.shutdown(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn failed_ticks_are_counted_and_do_not_restart() {
        let rt = fast();
        let ticks = Arc::new(AtomicU32::new(0));
        let counter = ticks.clone();
        rt.every("tick", true, Duration::from_millis(5), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n.is_multiple_of(2) {
                    Err(format!("tick {n} failed"))
                } else {
                    Ok(())
                }
            })
        });
        until(&rt, |s| s[0].failed_ticks >= 3).await;
        let s = &rt.status()[0];
        assert_eq!((s.restarts, s.up), (0, true));
        assert!(rt.shutdown(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn shutdown_is_bounded_by_loops_that_ignore_it() {
        let rt = fast();
        rt.spawn("stubborn", false, |_| Box::pin(std::future::pending()));
        rt.spawn("polite", false, |stop| {
            Box::pin(async move { stop.cancelled().await })
        });
        until(&rt, |s| s.iter().all(|l| l.up)).await;
        let started = Instant::now();
        assert!(!rt.shutdown(Duration::from_millis(100)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
