//! What the service counts, and its rendering in the Prometheus text exposition format (0.0.4).
//!
//! Hand-written rather than a metrics crate: a handful of counters, one histogram and a few
//! gauges read at scrape time do not justify a registry with global state, and tests can start
//! many applications in one process, each with its own [`Metrics`].
//!
//! Cardinality is bounded by construction: requests are labelled by the route *template*
//! (`/v1/merchants/{merchant_id}/payments`), never the raw path, by one of a fixed set of
//! methods, and by status; decisions by outcome and grade. No label holds client data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The counters of one application.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String), RouteStats>>,
    decisions: Mutex<BTreeMap<(String, String), u64>>,
    payments_accepted: AtomicU64,
    payments_duplicates: AtomicU64,
    batches_rejected: AtomicU64,
}

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative: `buckets[i]` counts durations in `(LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]`.
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum_secs: f64,
    count: u64,
}

/// One database connection pool's usage, read when scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// `writer` or `reader` for SQLite, `main` for PostgreSQL.
    pub pool: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// What is read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub active_model: Option<String>,
    pub pools: Vec<PoolUsage>,
}

/// A method label from a fixed set, so a client inventing methods adds no series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One answered request. `route` is the matched route template, or `None` if none matched.
    pub fn observe_request(
        &self,
        method: &str,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        let key = (method_label(method), route.unwrap_or(UNMATCHED).to_string());
        let secs = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let stats = requests.entry(key).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| secs <= le) {
            stats.buckets[i] += 1;
        }
        stats.sum_secs += secs;
        stats.count += 1;
    }

    /// One credit decision made (and handed to the audit log).
    pub fn observe_decision(&self, outcome: &str, grade: &str) {
        let mut decisions = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        *decisions
            .entry((outcome.to_string(), grade.to_string()))
            .or_default() += 1;
    }

    /// One batch of payments stored.
    pub fn observe_batch_stored(&self, accepted: u64, duplicates: u64) {
        self.payments_accepted
            .fetch_add(accepted, Ordering::Relaxed);
        self.payments_duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
    }

    /// One batch of payments refused (invalid or conflicting): nothing of it was stored.
    pub fn observe_batch_rejected(&self) {
        self.batches_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Every series, in the Prometheus text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            header(
                &mut out,
                "smecredit_http_requests_total",
                "counter",
                "HTTP requests answered, by method, route template and status.",
            );
            for ((method, route), stats) in requests.iter() {
                for (status, n) in &stats.by_status {
                    let _ = writeln!(
                        out,
                        "smecredit_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                        escape(route)
                    );
                }
            }
            header(
                &mut out,
                "smecredit_http_request_duration_seconds",
                "histogram",
                "Time from receiving a request to answering it, by method and route template.",
            );
            for ((method, route), stats) in requests.iter() {
                let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
                let mut cumulative = 0;
                for (le, n) in LATENCY_BUCKETS.iter().zip(stats.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "smecredit_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "smecredit_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    stats.count
                );
                let _ = writeln!(
                    out,
                    "smecredit_http_request_duration_seconds_sum{{{labels}}} {}",
                    stats.sum_secs
                );
                let _ = writeln!(
                    out,
                    "smecredit_http_request_duration_seconds_count{{{labels}}} {}",
                    stats.count
                );
            }
        }
        header(
            &mut out,
            "smecredit_decisions_total",
            "counter",
            "Credit decisions made (POST /v1/scores), by outcome and grade.",
        );
        for ((outcome, grade), n) in self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "smecredit_decisions_total{{outcome=\"{}\",grade=\"{}\"}} {n}",
                escape(outcome),
                escape(grade)
            );
        }
        header(
            &mut out,
            "smecredit_payments_ingested_total",
            "counter",
            "Payments in stored batches: accepted (new) or duplicate (already stored, identical).",
        );
        let _ = writeln!(
            out,
            "smecredit_payments_ingested_total{{result=\"accepted\"}} {}",
            self.payments_accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "smecredit_payments_ingested_total{{result=\"duplicate\"}} {}",
            self.payments_duplicates.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "smecredit_payment_batches_rejected_total",
            "counter",
            "Batches of payments refused (unreadable, invalid, conflicting, or for an unknown merchant); nothing of them was stored.",
        );
        let _ = writeln!(
            out,
            "smecredit_payment_batches_rejected_total {}",
            self.batches_rejected.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "smecredit_active_model",
            "gauge",
            "1 for the model version new requests are scored with; absent when none is loaded.",
        );
        if let Some(version) = &gauges.active_model {
            let _ = writeln!(
                out,
                "smecredit_active_model{{version=\"{}\"}} 1",
                escape(version)
            );
        }
        header(
            &mut out,
            "smecredit_store_connections",
            "gauge",
            "Open database connections per pool, in use or idle.",
        );
        for p in &gauges.pools {
            let _ = writeln!(
                out,
                "smecredit_store_connections{{pool=\"{}\",state=\"in_use\"}} {}",
                p.pool, p.in_use
            );
            let _ = writeln!(
                out,
                "smecredit_store_connections{{pool=\"{}\",state=\"idle\"}} {}",
                p.pool, p.idle
            );
        }
        header(
            &mut out,
            "smecredit_store_connections_max",
            "gauge",
            "The most connections each pool opens.",
        );
        for p in &gauges.pools {
            let _ = writeln!(
                out,
                "smecredit_store_connections_max{{pool=\"{}\"}} {}",
                p.pool, p.max
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_ends_with_the_count() {
        let m = Metrics::new();
        let route = Some("/v1/merchants/{merchant_id}");
        m.observe_request("GET", route, 200, Duration::from_millis(3));
        m.observe_request("GET", route, 404, Duration::from_millis(30));
        m.observe_request("GET", route, 200, Duration::from_secs(20));
        let text = m.render(&Gauges::default());
        let labels = r#"method="GET",route="/v1/merchants/{merchant_id}""#;
        // 3 ms falls in le=0.005; 30 ms in le=0.05; 20 s only in +Inf.
        for (le, n) in [
            ("0.001", 0),
            ("0.005", 1),
            ("0.05", 2),
            ("10", 2),
            ("+Inf", 3),
        ] {
            let line = format!(
                "smecredit_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains(&format!(
            "smecredit_http_requests_total{{{labels},status=\"200\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "smecredit_http_request_duration_seconds_count{{{labels}}} 3\n"
        )));
    }

    #[test]
    fn unknown_methods_and_unmatched_paths_add_no_series_of_their_own() {
        let m = Metrics::new();
        m.observe_request("BREW", None, 404, Duration::ZERO);
        m.observe_request("FOO", None, 404, Duration::ZERO);
        let text = m.render(&Gauges::default());
        assert!(text.contains(
            "smecredit_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 2\n"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
