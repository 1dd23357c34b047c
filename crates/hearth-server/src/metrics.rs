//! Prometheus metrics: requests and latency by route template, background loops, and the job
//! queue (depth by kind and state, each worker pool's outcomes and latencies).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoopLabels {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    pool: String,
    outcome: &'static str,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    loop_up: Family<LoopLabels, Gauge>,
    loop_restarts: Family<LoopLabels, Gauge>,
    loop_failed_ticks: Family<LoopLabels, Gauge>,
    queue_depth: Family<QueueLabels, Gauge>,
    job_outcomes: Family<OutcomeLabels, Gauge>,
    job_wait: Family<PoolLabels, SecondsGauge>,
    job_run: Family<PoolLabels, SecondsGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hearth");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            latency.clone(),
        );
        let loop_up = Family::<LoopLabels, Gauge>::default();
        let loop_restarts = Family::<LoopLabels, Gauge>::default();
        let loop_failed_ticks = Family::<LoopLabels, Gauge>::default();
        registry.register(
            "background_task_up",
            "1 while a background loop runs, 0 while it waits to be restarted",
            loop_up.clone(),
        );
        registry.register(
            "background_task_restarts",
            "Times a background loop panicked or ended and was restarted",
            loop_restarts.clone(),
        );
        registry.register(
            "background_task_failed_ticks",
            "Ticks of a periodic background loop that failed",
            loop_failed_ticks.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "job_queue_jobs",
            "Jobs in the queue by kind and state (queued, running, and finished ones kept: \
             succeeded, dead letters, cancelled)",
            queue_depth.clone(),
        );
        let job_outcomes = Family::<OutcomeLabels, Gauge>::default();
        registry.register(
            "job_outcomes",
            "Jobs this process's worker pools claimed, and how their runs ended (succeeded, \
             retried, dead, panicked, lost, released, recovered), since start",
            job_outcomes.clone(),
        );
        let job_wait = Family::<PoolLabels, SecondsGauge>::default();
        registry.register(
            "job_wait_seconds_sum",
            "Time claimed jobs waited past their due time, summed (divide by the claimed \
             outcome for the mean)",
            job_wait.clone(),
        );
        let job_run = Family::<PoolLabels, SecondsGauge>::default();
        registry.register(
            "job_run_seconds_sum",
            "Time jobs' handlers ran, summed (divide by the ran outcome for the mean)",
            job_run.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            loop_up,
            loop_restarts,
            loop_failed_ticks,
            queue_depth,
            job_outcomes,
            job_wait,
            job_run,
        }
    }

    /// Counts one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format, with the background loops' current status, the queue's
    /// depth and each worker pool's counts.
    pub fn render(
        &self,
        loops: &[hearth_jobs::LoopStatus],
        queue: &[hearth_store::JobCount],
        pools: &[(&str, hearth_jobs::StatsSnapshot)],
    ) -> String {
        let as_gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for l in loops {
            let labels = LoopLabels {
                task: l.name.to_owned(),
            };
            self.loop_up.get_or_create(&labels).set(i64::from(l.up));
            self.loop_restarts
                .get_or_create(&labels)
                .set(as_gauge(l.restarts));
            self.loop_failed_ticks
                .get_or_create(&labels)
                .set(as_gauge(l.failed_ticks));
        }
        let mut kinds: Vec<&str> = queue.iter().map(|c| c.kind.as_str()).collect();
        kinds.dedup();
        for kind in kinds {
            // Every state of a kind, so a state that emptied reads 0 rather than its last value.
            for state in hearth_store::JobState::ALL {
                let count = queue
                    .iter()
                    .find(|c| c.kind == kind && c.state == *state)
                    .map_or(0, |c| c.count);
                self.queue_depth
                    .get_or_create(&QueueLabels {
                        kind: kind.to_owned(),
                        state: state.as_str().to_owned(),
                    })
                    .set(count);
            }
        }
        for (pool, s) in pools {
            for (outcome, n) in [
                ("claimed", s.claimed),
                ("ran", s.ran),
                ("succeeded", s.succeeded),
                ("retried", s.retried),
                ("dead", s.dead),
                ("panicked", s.panicked),
                ("lost", s.lost),
                ("released", s.released),
                ("recovered", s.recovered),
            ] {
                self.job_outcomes
                    .get_or_create(&OutcomeLabels {
                        pool: (*pool).to_owned(),
                        outcome,
                    })
                    .set(as_gauge(n));
            }
            let labels = PoolLabels {
                pool: (*pool).to_owned(),
            };
            self.job_wait
                .get_or_create(&labels)
                .set(s.wait_millis as f64 / 1e3);
            self.job_run
                .get_or_create(&labels)
                .set(s.run_micros as f64 / 1e6);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
