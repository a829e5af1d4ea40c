//! Prometheus metrics, in one registry: requests and latency by route (recorded by the HTTP
//! layer), retrieval latency by mode, provider latency and errors, tokens.

use std::sync::OnceLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    pub retrieval_seconds: HistogramVec,
    pub provider_first_token_seconds: HistogramVec,
    pub provider_errors: IntCounterVec,
    pub tokens: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Registry::new_custom(Some("lariat".into()), None)
                .unwrap_or_else(|e| panic!("registry: {e}")),
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by method, route and status",
                &["method", "route", "status"],
            ),
            http_seconds: histogram(
                "http_request_duration_seconds",
                "HTTP request latency (to the response head) by method and route",
                &["method", "route"],
            ),
            retrieval_seconds: histogram(
                "retrieval_duration_seconds",
                "Search latency by mode",
                &["mode"],
            ),
            provider_first_token_seconds: histogram(
                "provider_first_token_seconds",
                "Time from a provider request to its first token",
                &["provider"],
            ),
            provider_errors: counter(
                "provider_errors_total",
                "Failed provider attempts (each retry counts)",
                &["provider"],
            ),
            tokens: counter("tokens_total", "Model tokens by kind", &["kind"]),
        };
        for c in [&m.http_requests, &m.provider_errors, &m.tokens] {
            m.registry
                .register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("register: {e}"));
        }
        for h in [
            &m.http_seconds,
            &m.retrieval_seconds,
            &m.provider_first_token_seconds,
        ] {
            m.registry
                .register(Box::new(h.clone()))
                .unwrap_or_else(|e| panic!("register: {e}"));
        }
        m
    }

    /// The process's metrics.
    pub fn get() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(Metrics::new)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
