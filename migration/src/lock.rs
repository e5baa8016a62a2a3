//! Runs migrations under a database-wide lock, so that two migration Jobs started
//! at once apply each migration exactly once: the second waits for the first and
//! then finds nothing pending.
//!
//! MySQL uses `GET_LOCK` and PostgreSQL an advisory lock, both held on one pooled
//! connection that stays checked out for the whole run, while the migrations use
//! the other connections. SQLite runs the migrations inside one exclusive
//! transaction instead, which blocks other writers until it commits.

use std::time::{Duration, Instant};

use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait, sqlx,
};
use sea_orm_migration::MigratorTrait;

use crate::{Direction, Migrator};

/// Name of the MySQL lock, and the text behind the PostgreSQL lock key.
pub const LOCK_NAME: &str = "usersvc_schema_migration";

/// PostgreSQL advisory lock key: the first eight bytes of "usersvc_schema_migration".
const POSTGRES_LOCK_KEY: i64 = i64::from_be_bytes(*b"usersvc_");

const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Applies every pending migration (`Up`) or reverts the last one (`Down`) while
/// holding the migration lock. Waits at most `lock_timeout` for another run to
/// release the lock.
pub async fn run(db: &DatabaseConnection, direction: Direction, lock_timeout: Duration) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::MySql => {
            let mut lock_connection = db.get_mysql_connection_pool().acquire().await.map_err(sqlx_error)?;
            let seconds = lock_timeout.as_secs().max(1);
            let acquired: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
                .bind(LOCK_NAME)
                .bind(seconds)
                .fetch_one(&mut *lock_connection)
                .await
                .map_err(sqlx_error)?;
            if acquired != Some(1) {
                return Err(lock_timed_out(lock_timeout));
            }

            let result = migrate(db, direction).await;
            sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(LOCK_NAME)
                .execute(&mut *lock_connection)
                .await
                .map_err(sqlx_error)?;
            result
        }
        DbBackend::Postgres => {
            let mut lock_connection = db.get_postgres_connection_pool().acquire().await.map_err(sqlx_error)?;
            let deadline = Instant::now() + lock_timeout;
            loop {
                let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(POSTGRES_LOCK_KEY)
                    .fetch_one(&mut *lock_connection)
                    .await
                    .map_err(sqlx_error)?;
                if acquired {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(lock_timed_out(lock_timeout));
                }
                tracing::info!("waiting for the migration lock, which another run has");
                tokio::time::sleep(LOCK_POLL_INTERVAL).await;
            }

            let result = migrate(db, direction).await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(POSTGRES_LOCK_KEY)
                .execute(&mut *lock_connection)
                .await
                .map_err(sqlx_error)?;
            result
        }
        DbBackend::Sqlite => {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Exclusive),
                ..TransactionOptions::default()
            };
            let transaction = db.begin_with_options(options).await?;
            match direction {
                Direction::Up => {
                    if check_up_needed(&transaction).await? {
                        Migrator::up(&transaction, None).await?;
                    }
                }
                Direction::Down => Migrator::down(&transaction, Some(1)).await?,
            }
            transaction.commit().await
        }
        other => Err(DbErr::Migration(format!("unsupported database backend {other:?}"))),
    }
}

async fn migrate(db: &DatabaseConnection, direction: Direction) -> Result<(), DbErr> {
    match direction {
        Direction::Up => {
            if check_up_needed(db).await? {
                Migrator::up(db, None).await?;
            }
            Ok(())
        }
        Direction::Down => Migrator::down(db, Some(1)).await,
    }
}

/// Decides whether `up` has work to do. A database that a newer release already
/// migrated further is left alone, so rolling back to an older release works.
async fn check_up_needed<C>(db: &C) -> Result<bool, DbErr>
where
    C: sea_orm::ConnectionTrait,
    for<'c> &'c C: sea_orm_migration::IntoSchemaManagerConnection<'c>,
{
    let state = crate::schema_state(db).await?;
    match (state.pending.is_empty(), state.unknown.is_empty()) {
        (true, true) => Ok(false),
        (true, false) => {
            tracing::info!(
                newer = state.unknown.join(", "),
                "the database schema is newer than this binary; nothing to apply"
            );
            Ok(false)
        }
        (false, true) => Ok(true),
        (false, false) => Err(DbErr::Migration(format!(
            "the database has migrations this binary does not know ({}) but lacks some it knows ({}); \
             run the usersvc-migration of the release that applied them",
            state.unknown.join(", "),
            state.pending.join(", ")
        ))),
    }
}

fn lock_timed_out(lock_timeout: Duration) -> DbErr {
    DbErr::Migration(format!(
        "timed out after {} waiting for the migration lock {LOCK_NAME:?} held by another run",
        humantime::format_duration(lock_timeout)
    ))
}

fn sqlx_error(error: sqlx::Error) -> DbErr {
    DbErr::Migration(format!("migration lock: {error}"))
}
