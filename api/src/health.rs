//! Readiness: the service is ready only while the database accepts queries, every
//! migration the binary was built with is applied, and no shutdown has begun.
//! A background task re-checks this and mirrors it into the gRPC health service
//! (for `""` and the user service), while `/healthz` only reports that the process runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use migration::settings::DatabaseSettings;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::Mutex;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

const CHECK_INTERVAL_READY: Duration = Duration::from_secs(5);
const CHECK_INTERVAL_NOT_READY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared readiness state.
pub struct Health {
    ready: AtomicBool,
    /// Whether the last check found every migration applied; requests are
    /// refused with 503 until it has, so none runs against an old schema.
    schema_current: AtomicBool,
    shutting_down: AtomicBool,
    /// Reason the service is not ready, in words safe to show to any caller.
    reason: Mutex<String>,
    reporter: HealthReporter,
}

impl Health {
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            ready: AtomicBool::new(false),
            schema_current: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            reason: Mutex::new("starting".to_owned()),
            reporter,
        }
    }

    /// Builds the gRPC health service that reports this state.
    pub fn grpc_service(&self) -> tonic_health::server::HealthService {
        tonic_health::server::HealthService::from_health_reporter(self.reporter.clone())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn is_schema_current(&self) -> bool {
        self.schema_current.load(Ordering::Acquire)
    }

    pub async fn reason(&self) -> String {
        self.reason.lock().await.clone()
    }

    /// Turns readiness off for good, so load balancers stop sending traffic
    /// before the listeners close.
    pub async fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.set(Err("shutting down".to_owned())).await;
    }

    async fn set(&self, state: Result<(), String>) {
        let ready = state.is_ok() && !self.shutting_down.load(Ordering::Acquire);
        let mut reason = self.reason.lock().await;
        let new_reason = match state {
            Ok(()) if ready => String::new(),
            Ok(()) => "shutting down".to_owned(),
            Err(reason) => reason,
        };
        let changed = self.ready.swap(ready, Ordering::AcqRel) != ready || *reason != new_reason;
        *reason = new_reason;
        drop(reason);

        if changed {
            let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            self.reporter.set_service_status("", status).await;
            self.reporter.set_service_status(crate::grpc::SERVICE_NAME, status).await;
        }
    }

    /// Checks the database and the schema once and updates the state. Logs every
    /// change, with the detailed cause only in the log.
    pub async fn check(&self, db: &DatabaseConnection, database: &DatabaseSettings) {
        let was_ready = self.is_ready();
        let previous_reason = self.reason().await;

        let state = check_database(db, database).await;
        if let Err((reason, _)) = &state
            && reason.starts_with(SCHEMA_REASON_PREFIX)
        {
            self.schema_current.store(false, Ordering::Release);
        } else if state.is_ok() {
            self.schema_current.store(true, Ordering::Release);
        }
        if let Err((reason, detail)) = &state
            && (was_ready || *reason != previous_reason)
        {
            tracing::warn!(reason = %reason, error = %detail, "not ready");
        }
        self.set(state.map_err(|(reason, _)| reason)).await;
        if self.is_ready() && !was_ready {
            tracing::info!("ready: database reachable and schema up to date");
        }
    }

    /// Re-checks readiness until shutdown begins.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        db: Arc<DatabaseConnection>,
        database: DatabaseSettings,
    ) -> tokio::task::JoinHandle<()> {
        let health = Arc::clone(self);
        tokio::spawn(async move {
            while !health.shutting_down.load(Ordering::Acquire) {
                health.check(&db, &database).await;
                let interval = if health.is_ready() { CHECK_INTERVAL_READY } else { CHECK_INTERVAL_NOT_READY };
                tokio::time::sleep(interval).await;
            }
        })
    }
}

const SCHEMA_REASON_PREFIX: &str = "database schema";

/// Returns a public reason and a detailed cause when the database is not usable.
async fn check_database(db: &DatabaseConnection, database: &DatabaseSettings) -> Result<(), (String, String)> {
    if let Err(error) = db.execute_unprepared("SELECT 1").await {
        // A pool timeout hides the cause, so one direct connection finds it for the log.
        let cause = match database.probe(PROBE_TIMEOUT).await {
            Err(cause) => cause.message,
            Ok(()) => one_line(&error),
        };
        return Err(("database unreachable".to_owned(), cause));
    }
    match migration::pending_migrations(db).await {
        Ok(pending) if pending.is_empty() => Ok(()),
        Ok(pending) => Err((
            format!("database schema is out of date: {} migration(s) pending", pending.len()),
            format!("pending migrations: {}; run usersvc-migration up", pending.join(", ")),
        )),
        Err(error) => Err(("database schema could not be read".to_owned(), one_line(&error))),
    }
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}
