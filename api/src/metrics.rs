//! Prometheus metrics: request counts and latency histograms for HTTP routes and
//! gRPC methods, and the state of the database pool, read at scrape time.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use sea_orm::DatabaseConnection;

/// Latency buckets in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    grpc_requests: IntCounterVec,
    grpc_latency: HistogramVec,
    pool_connections: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status code."),
            &["method", "route", "status"],
        )
        .expect("metric options are valid");
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency in seconds.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("metric options are valid");
        let grpc_requests = IntCounterVec::new(
            Opts::new("grpc_server_handled_total", "gRPC calls by method and status code."),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("metric options are valid");
        let grpc_latency = HistogramVec::new(
            HistogramOpts::new("grpc_server_handling_seconds", "gRPC call latency in seconds.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["grpc_service", "grpc_method"],
        )
        .expect("metric options are valid");
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state: idle, in_use, or max (the configured limit).",
            ),
            &["state"],
        )
        .expect("metric options are valid");

        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_latency.clone()),
            Box::new(grpc_requests.clone()),
            Box::new(grpc_latency.clone()),
            Box::new(pool_connections.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Self { registry, http_requests, http_latency, grpc_requests, grpc_latency, pool_connections }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_grpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let service = crate::grpc::SERVICE_NAME;
        self.grpc_requests
            .with_label_values(&[service, method, &format!("{code:?}")])
            .inc();
        self.grpc_latency
            .with_label_values(&[service, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Renders every metric in the Prometheus text format, after reading the pool state.
    pub fn render(&self, db: &DatabaseConnection, max_connections: u32) -> String {
        let (size, idle) = pool_state(db);
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections.with_label_values(&["in_use"]).set(size - idle);
        self.pool_connections
            .with_label_values(&["max"])
            .set(i64::from(max_connections));

        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("the text encoder writes to memory");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Returns the number of open and of idle connections in the pool.
fn pool_state(db: &DatabaseConnection) -> (i64, i64) {
    use sea_orm::DbBackend;

    match db.get_database_backend() {
        DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            (i64::from(pool.size()), pool.num_idle() as i64)
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (i64::from(pool.size()), pool.num_idle() as i64)
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (i64::from(pool.size()), pool.num_idle() as i64)
        }
        _ => (0, 0),
    }
}
