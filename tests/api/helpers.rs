//! Test harness: a fresh database per test on the chosen backend, migrated by the
//! real migrator and dropped afterwards, and the whole service started on free
//! loopback ports with real HTTP and gRPC clients pointed at it.
//!
//! MySQL and PostgreSQL tests run when `TEST_MYSQL_URL` or `TEST_POSTGRES_URL`
//! contains a server URL with rights to create databases, such as
//! `mysql://root@127.0.0.1:3306` or `postgres://postgres@127.0.0.1:5432`.
//! Without it they print that they were skipped and pass.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use migration::settings::DatabaseArgs;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use usersvc_api::config::Settings;
use usersvc_api::grpc::proto::com::example::user::service::v1::user_service_client::UserServiceClient;
use usersvc_api::startup::Application;
use usersvc_api::telemetry::LogFormat;

pub const MYSQL_URL_VAR: &str = "TEST_MYSQL_URL";
pub const POSTGRES_URL_VAR: &str = "TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

/// A uniquely named database that is dropped (or, for SQLite, deleted) on drop.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    name: String,
    admin_url: Option<String>,
    sqlite_path: Option<PathBuf>,
}

impl TestDatabase {
    /// Creates an empty database, or returns `None` when the backend's server URL is unset.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!("usersvc_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join("usersvc-tests");
                std::fs::create_dir_all(&dir).expect("failed to create the test directory");
                let path = dir.join(format!("{name}.db"));
                Some(Self {
                    backend,
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    name,
                    admin_url: None,
                    sqlite_path: Some(path),
                })
            }
            Backend::MySql | Backend::Postgres => {
                let variable = if backend == Backend::MySql { MYSQL_URL_VAR } else { POSTGRES_URL_VAR };
                let Some(admin_url) = std::env::var(variable).ok().filter(|url| !url.is_empty()) else {
                    eprintln!("skipped: {variable} is not set, so this {backend:?} test did not run");
                    return None;
                };
                let admin_url = admin_url.trim_end_matches('/').to_owned();
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .unwrap_or_else(|error| panic!("failed to connect to {variable}: {error}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("failed to create the test database");
                admin.close().await.ok();
                Some(Self { backend, url: format!("{admin_url}/{name}"), name, admin_url: Some(admin_url), sqlite_path: None })
            }
        }
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str()).await.expect("failed to connect to the test database")
    }

    /// Applies every migration with the real migrator.
    pub async fn migrate(&self) {
        let db = self.connect().await;
        migration::run(&db, migration::Direction::Up, Duration::from_secs(30))
            .await
            .expect("failed to migrate the test database");
        db.close().await.ok();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            return;
        }
        let (Some(admin_url), name, backend) = (self.admin_url.clone(), self.name.clone(), self.backend) else {
            return;
        };
        // Drop runs outside async code, so the database is dropped on a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await?;
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                admin.execute_unprepared(&sql).await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
            .map_err(|error| error.to_string())
        })
        .join();
        if let Ok(Err(error)) | Err(error) = dropped.map_err(|_| "panicked".to_owned()) {
            eprintln!("failed to drop test database {}: {error}", self.name);
        }
    }
}

/// A running service with clients and a direct database connection for checks.
pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub db: DatabaseConnection,
    pub database: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    /// The server task; its error is rendered as text.
    server: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

/// Options of a test service.
pub struct AppOptions {
    /// Apply the migrations before the service starts (SQLite always migrates itself).
    pub migrate: bool,
    pub body_limit: usize,
    pub max_connections: u32,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self { migrate: true, body_limit: 64 * 1024, max_connections: 5 }
    }
}

/// Starts the service on a fresh, migrated database; `None` when the backend is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, AppOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: AppOptions) -> Option<TestApp> {
    let database = TestDatabase::create(backend).await?;
    if options.migrate && backend != Backend::Sqlite {
        database.migrate().await;
    }
    Some(start(database, options).await)
}

/// Starts the service on an existing database.
pub async fn start(database: TestDatabase, options: AppOptions) -> TestApp {
    let database_settings = DatabaseArgs {
        database_url: Some(database.url.clone()),
        database_max_connections: options.max_connections.to_string(),
        database_acquire_timeout: "2s".to_owned(),
        ..DatabaseArgs::default()
    }
    .resolve()
    .expect("test database settings are valid");
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        body_limit: options.body_limit,
        log_format: LogFormat::Json,
        shutdown_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(5),
        database: database_settings,
    };

    let application = Application::build(settings).await.expect("failed to build the service");
    let address = format!("http://{}", application.http_addr());
    let grpc_address = format!("http://{}", application.grpc_addr());
    let (sender, receiver) = oneshot::channel();
    let server = tokio::spawn(async move {
        application
            .run_until(async {
                let _ = receiver.await;
                usersvc_api::startup::ShutdownSignal::Terminate
            })
            .await
            .map_err(|error| format!("{error:#}"))
    });

    let db = database.connect().await;
    TestApp {
        address,
        grpc_address,
        http: reqwest::Client::new(),
        db,
        database,
        shutdown: Some(sender),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn grpc(&self) -> UserServiceClient<Channel> {
        UserServiceClient::connect(self.grpc_address.clone())
            .await
            .expect("failed to connect to the gRPC port")
    }

    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(self.grpc_address.clone())
            .unwrap()
            .connect()
            .await
            .expect("failed to connect to the gRPC port")
    }

    /// Waits until `/readyz` returns `status`, failing the test after `timeout`.
    pub async fn wait_for_readiness(&self, status: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let current = self.http.get(self.url("/readyz")).send().await.map(|response| response.status().as_u16());
            if current.as_ref().ok() == Some(&status) {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz did not return {status} within {timeout:?}; last: {current:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn post_json(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/v1/users")).json(body).send().await.expect("request failed")
    }

    /// Creates a user over REST and returns the response body.
    pub async fn create_user(&self, name: &str, user_type: &str) -> Value {
        let response = self.post_json(&serde_json::json!({"name": name, "type": user_type})).await;
        assert_eq!(response.status().as_u16(), 201, "create {name:?} failed");
        response.json().await.unwrap()
    }

    /// Counts rows in `users` directly in the database.
    pub async fn user_count(&self) -> i64 {
        count_rows(&self.db, "users").await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub async fn count_rows(db: &DatabaseConnection, table: &str) -> i64 {
    let backend: DbBackend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .expect("count query failed")
        .expect("count returns a row");
    row.try_get::<i64>("", "n").expect("count is an integer")
}

/// Fails when an error body leaks database internals.
pub fn assert_no_internals(body: &str) {
    let lower = body.to_lowercase();
    for word in ["sql", "select ", "insert ", "syntax", "constraint", "duplicate", "mysql", "postgres", "stack", "panicked"] {
        assert!(!lower.contains(word), "response leaks {word:?}: {body}");
    }
}

/// Generates one test per backend for each async test function that takes a [`Backend`].
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::helpers::Backend;

                #[tokio::test]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await
                }

                #[tokio::test]
                async fn mysql() {
                    super::$name(Backend::MySql).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(Backend::Postgres).await
                }
            }
        )*
    };
}
