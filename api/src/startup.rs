//! Builds the service from its settings and runs both listeners until a
//! shutdown signal: readiness off first, then a pause so load balancers notice,
//! then a bounded drain of in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sea_orm::{Database, DatabaseConnection, DbBackend};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::grpc::{GrpcUserService, UserServiceServer};
use crate::health::Health;
use crate::http::{self, HttpState};
use crate::metrics::Metrics;
use crate::service::UserService;
use crate::store::Store;

/// How often expired idempotency keys are deleted.
const KEY_PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Hard cap on a decoded gRPC message; smaller limits are checked by the service
/// itself so that clients get RESOURCE_EXHAUSTED.
const GRPC_DECODING_LIMIT: usize = 4 * 1024 * 1024;
/// Maximum wait for the migration lock when the embedded database migrates at start.
const STARTUP_MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A built service with both listeners bound.
pub struct Application {
    settings: Settings,
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    db: Arc<DatabaseConnection>,
    service: Arc<UserService>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl Application {
    /// Connects to the database (lazily for server databases, so the process
    /// starts and reports not-ready while the database is away), applies the
    /// migrations on the embedded SQLite database, and binds both listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let database = &settings.database;
        database.warn_about_gaps();
        let mut options = database.connect_options();
        options.connect_lazy(database.backend != DbBackend::Sqlite);
        let db = Database::connect(options)
            .await
            .with_context(|| format!("failed to open the database {}", database.masked_url))?;

        if database.backend == DbBackend::Sqlite {
            tracing::info!(database = %database.masked_url, "applying migrations to the embedded database");
            migration::run(&db, migration::Direction::Up, STARTUP_MIGRATION_TIMEOUT)
                .await
                .with_context(|| format!("failed to migrate {}", database.masked_url))?;
        }

        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("failed to listen on HTTP_ADDR {}", settings.http_addr))?;
        let grpc_listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("failed to listen on GRPC_ADDR {}", settings.grpc_addr))?;

        let reporter = tonic_health::server::HealthReporter::new();
        let db = Arc::new(db);
        let health = Arc::new(Health::new(reporter));
        health.check(&db, &settings.database).await;

        Ok(Self {
            service: Arc::new(UserService::new(Store::new(Arc::clone(&db)))),
            metrics: Arc::new(Metrics::new()),
            settings,
            http_listener,
            grpc_listener,
            db,
            health,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener.local_addr().expect("a bound listener has an address")
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then shuts down gracefully.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ShutdownSignal> + Send + 'static,
    {
        let (http_addr, grpc_addr) = (self.http_addr(), self.grpc_addr());
        let Self { settings, http_listener, grpc_listener, db, service, health, metrics } = self;

        let watcher = health.spawn_watcher(Arc::clone(&db), settings.database.clone());
        let purger = spawn_key_purger(Arc::clone(&service));

        // Listeners stop when this flips to true, after readiness is off and the delay has passed.
        let (stop_sender, stop_receiver) = watch::channel(false);
        let stop = move || {
            let mut receiver = stop_receiver.clone();
            async move {
                let _ = receiver.wait_for(|stopped| *stopped).await;
            }
        };

        let http_app = http::app(HttpState {
            service: Arc::clone(&service),
            health: Arc::clone(&health),
            metrics: Arc::clone(&metrics),
            db: Arc::clone(&db),
            max_connections: settings.database.max_connections,
            body_limit: settings.body_limit,
        });
        let http_server = poem::Server::new_with_acceptor(poem::listener::TcpAcceptor::from_tokio(http_listener)?)
            .run_with_graceful_shutdown(http_app, stop(), Some(settings.shutdown_timeout));

        let grpc_server = grpc_router(&service, &metrics, &health, settings.body_limit)?
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(grpc_listener), stop());
        let shutdown_timeout = settings.shutdown_timeout;
        let grpc_stopped = stop();
        let grpc_server = async move {
            tokio::pin!(grpc_server);
            tokio::pin!(grpc_stopped);
            tokio::select! {
                result = &mut grpc_server => result.map_err(anyhow::Error::from),
                () = &mut grpc_stopped => {
                    // Listeners are closing: give in-flight calls at most the shutdown timeout.
                    match tokio::time::timeout(shutdown_timeout, grpc_server).await {
                        Ok(result) => result.map_err(anyhow::Error::from),
                        Err(_) => {
                            tracing::warn!("gRPC calls still running after SHUTDOWN_TIMEOUT were cut off");
                            Ok(())
                        }
                    }
                }
            }
        };

        let coordinator = {
            let health = Arc::clone(&health);
            let delay = settings.shutdown_delay;
            async move {
                let delay = match shutdown.await {
                    ShutdownSignal::Terminate => delay,
                    // Ctrl-C comes from a person at a terminal, not a load balancer that needs time.
                    ShutdownSignal::Interrupt => Duration::ZERO,
                };
                tracing::info!(delay_ms = delay.as_millis() as u64, "shutdown requested: readiness off, waiting before closing listeners");
                health.begin_shutdown().await;
                tokio::time::sleep(delay).await;
                tracing::info!("closing listeners and draining in-flight requests");
                let _ = stop_sender.send(true);
            }
        };

        tracing::info!(http = %http_addr, grpc = %grpc_addr, database = %settings.database.masked_url, "usersvc listening");
        let (http_result, grpc_result, ()) = tokio::join!(
            async { http_server.await.map_err(anyhow::Error::from) },
            grpc_server,
            coordinator
        );

        watcher.abort();
        purger.abort();
        db.as_ref().clone().close().await.ok();
        http_result.context("HTTP server failed")?;
        grpc_result.context("gRPC server failed")?;
        tracing::info!("usersvc stopped");
        Ok(())
    }
}

/// Builds the gRPC services: health, reflection (v1, and v1alpha for grpcurl
/// releases before 1.9) and the user service.
fn grpc_router(
    service: &Arc<UserService>,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    message_limit: usize,
) -> anyhow::Result<tonic::transport::server::Router> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::grpc::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let users = UserServiceServer::new(GrpcUserService::new(
        Arc::clone(service),
        Arc::clone(metrics),
        Arc::clone(health),
        message_limit,
    ))
    .max_decoding_message_size(message_limit.max(GRPC_DECODING_LIMIT));

    Ok(tonic::transport::Server::builder()
        .add_service(tonic_health::pb::health_server::HealthServer::new(health.grpc_service()))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(users))
}

fn spawn_key_purger(service: Arc<UserService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(KEY_PURGE_INTERVAL);
        loop {
            interval.tick().await;
            match service.purge_expired_keys().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "deleted expired idempotency keys"),
                Err(error) => tracing::warn!(
                    error = crate::telemetry::cause_chain(&error),
                    "failed to delete expired idempotency keys"
                ),
            }
        }
    })
}

/// The signal that asked the service to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGTERM, as Kubernetes sends: readiness goes off for `SHUTDOWN_DELAY` first.
    Terminate,
    /// SIGINT (Ctrl-C): the service stops without the delay.
    Interrupt,
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() -> ShutdownSignal {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => ShutdownSignal::Interrupt,
        () = terminate => ShutdownSignal::Terminate,
    }
}
