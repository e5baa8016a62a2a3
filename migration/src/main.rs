//! `usersvc-migration`: applies, reverts or lists the schema migrations. It is the
//! entrypoint of the Kubernetes migration Job, so it waits for the database to
//! accept connections, with capped exponential backoff up to a deadline, before it
//! gives up.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use migration::settings::{DatabaseArgs, DatabaseSettings, SettingsError, parse_duration};
use migration::{Direction, Migrator, MigratorTrait};
use sea_orm::{Database, DatabaseConnection};

const MAX_BACKOFF: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Applies, reverts or lists the users service's schema migrations.
#[derive(Parser, Debug)]
#[command(name = "usersvc-migration", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Maximum wait for the database to accept connections and for the migration lock,
    /// e.g. 30s or 2m
    #[arg(long = "database-wait-timeout", env = "DATABASE_WAIT_TIMEOUT", default_value = "120s", global = true)]
    wait_timeout: String,

    /// Log format: text or json [default: text on a terminal, json otherwise]
    #[arg(long, env = "LOG_FORMAT", global = true)]
    log_format: Option<String>,

    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Apply every pending migration (the default)
    Up,
    /// Print each migration and whether it is applied
    Status,
    /// Revert the last applied migration
    Down,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match configure(&cli) {
        Ok((settings, wait_timeout)) => {
            let runtime = tokio::runtime::Runtime::new().expect("failed to start the tokio runtime");
            match runtime.block_on(run(cli.command.unwrap_or(Command::Up), &settings, wait_timeout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    tracing::error!("{message}");
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn configure(cli: &Cli) -> Result<(DatabaseSettings, Duration), SettingsError> {
    let json = match cli.log_format.as_deref().map(str::trim) {
        None | Some("") => !std::io::stderr().is_terminal(),
        Some("json") => true,
        Some("text") => false,
        Some(other) => {
            return Err(SettingsError(format!("invalid LOG_FORMAT {other:?}: expected text or json")));
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }

    let mut settings = cli.database.resolve()?;
    // One connection holds the migration lock while the others run the migrations.
    settings.max_connections = settings.max_connections.max(2);
    let wait_timeout = parse_duration("DATABASE_WAIT_TIMEOUT", &cli.wait_timeout)?;
    Ok((settings, wait_timeout))
}

async fn run(command: Command, settings: &DatabaseSettings, wait_timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    settings.warn_about_gaps();
    let db = wait_for_database(settings, wait_timeout).await?;
    let lock_timeout = wait_timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));

    let outcome = match command {
        Command::Up => {
            tracing::info!(database = %settings.masked_url, "applying pending migrations");
            migration::run(&db, Direction::Up, lock_timeout).await.map(|()| {
                tracing::info!("schema is up to date");
            })
        }
        Command::Down => {
            tracing::info!(database = %settings.masked_url, "reverting the last applied migration");
            migration::run(&db, Direction::Down, lock_timeout).await
        }
        Command::Status => print_status(&db).await,
    };
    db.close().await.ok();
    outcome.map_err(|error| format!("migration failed on {}: {}", settings.masked_url, one_line(&error)))
}

async fn print_status(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    for migration in Migrator::get_migration_with_status_read_only(db).await? {
        println!("{}\t{}", migration.name(), migration.status());
    }
    Ok(())
}

/// Connects until the database accepts a connection, doubling the pause after each
/// failure up to `MAX_BACKOFF`. Fails once `wait_timeout` has passed, or at once
/// when the server rejects the credentials.
async fn wait_for_database(settings: &DatabaseSettings, wait_timeout: Duration) -> Result<DatabaseConnection, String> {
    let deadline = Instant::now() + wait_timeout;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let error = match settings.probe(remaining.min(MAX_BACKOFF)).await {
            Ok(()) => match Database::connect(settings.connect_options()).await {
                Ok(db) => return Ok(db),
                Err(error) => one_line(&error),
            },
            Err(error) if error.credentials_rejected => {
                return Err(format!(
                    "database {} rejected the user name or password: {error}",
                    settings.masked_url
                ));
            }
            Err(error) => error.message,
        };

        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "database {} not reachable after {}: {error}",
                settings.masked_url,
                humantime::format_duration(wait_timeout)
            ));
        }
        let pause = backoff.min(deadline - now);
        tracing::warn!(
            database = %settings.masked_url,
            retry_in_ms = pause.as_millis() as u64,
            error = %error,
            "database not reachable yet"
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Renders an error on one line, so a pod log shows it whole.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}
