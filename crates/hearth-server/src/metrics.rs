//! Prometheus metrics: requests and latency by route template.

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

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    loop_up: Family<LoopLabels, Gauge>,
    loop_restarts: Family<LoopLabels, Gauge>,
    loop_failed_ticks: Family<LoopLabels, Gauge>,
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
        Self {
            registry,
            requests,
            latency,
            loop_up,
            loop_restarts,
            loop_failed_ticks,
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

    /// The text exposition format, with the background loops' current status.
    pub fn render(&self, loops: &[hearth_jobs::LoopStatus]) -> String {
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
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
