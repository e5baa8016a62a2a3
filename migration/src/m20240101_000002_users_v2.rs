//! Brings the Go service's `users` table to the current schema: a UUID primary
//! key, NOT NULL columns, signed `type`, creation and update times, and an index
//! for listing by type.
//!
//! Adopted rows keep their values. A NULL or empty id gets a new UUIDv7, a NULL
//! name becomes empty text and a NULL type becomes 0. An id that is not a UUID
//! stops the migration before anything changes, because dropping or rewriting it
//! would break the clients that hold it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TryGetable, Value};
use uuid::Uuid;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();

        reject_non_uuid_ids(db, backend).await?;
        assign_missing_ids(db, backend).await?;
        db.execute_unprepared(
            "UPDATE users SET id = LOWER(TRIM(id)), name = COALESCE(name, ''), type = COALESCE(type, 0)",
        )
        .await?;

        match backend {
            DbBackend::MySql => {
                db.execute_unprepared(
                    "ALTER TABLE users \
                     MODIFY id VARCHAR(36) NOT NULL, \
                     MODIFY name VARCHAR(255) NOT NULL, \
                     MODIFY type SMALLINT NOT NULL, \
                     ADD COLUMN create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
                     ADD COLUMN update_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
                     ADD PRIMARY KEY (id), \
                     ADD INDEX users_type_id (type, id)",
                )
                .await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE users \
                     ALTER COLUMN id TYPE uuid USING id::uuid, \
                     ALTER COLUMN id SET NOT NULL, \
                     ALTER COLUMN name SET NOT NULL, \
                     ALTER COLUMN type SET NOT NULL, \
                     ADD COLUMN create_time TIMESTAMPTZ NOT NULL DEFAULT now(), \
                     ADD COLUMN update_time TIMESTAMPTZ NOT NULL DEFAULT now(), \
                     ADD PRIMARY KEY (id)",
                )
                .await?;
                db.execute_unprepared("CREATE INDEX users_type_id ON users (type, id)")
                    .await?;
            }
            DbBackend::Sqlite => {
                // SQLite cannot change a column's type or constraints, so the table is rebuilt.
                db.execute_unprepared(
                    "CREATE TABLE users_v2 (\
                     id TEXT NOT NULL PRIMARY KEY, \
                     name VARCHAR(255) NOT NULL, \
                     type SMALLINT NOT NULL, \
                     create_time TEXT NOT NULL, \
                     update_time TEXT NOT NULL)",
                )
                .await?;
                let now = chrono::Utc::now();
                db.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "INSERT INTO users_v2 (id, name, type, create_time, update_time) \
                     SELECT id, name, type, ?, ? FROM users",
                    [Value::from(now), Value::from(now)],
                ))
                .await?;
                db.execute_unprepared("DROP TABLE users").await?;
                db.execute_unprepared("ALTER TABLE users_v2 RENAME TO users").await?;
                db.execute_unprepared("CREATE INDEX users_type_id ON users (type, id)")
                    .await?;
            }
            other => return Err(unsupported(other)),
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::MySql => {
                db.execute_unprepared(
                    "ALTER TABLE users \
                     DROP INDEX users_type_id, \
                     DROP PRIMARY KEY, \
                     DROP COLUMN create_time, \
                     DROP COLUMN update_time, \
                     MODIFY id VARCHAR(40) NULL, \
                     MODIFY name VARCHAR(255) NULL, \
                     MODIFY type SMALLINT UNSIGNED NULL",
                )
                .await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared("DROP INDEX users_type_id").await?;
                db.execute_unprepared(
                    "ALTER TABLE users \
                     DROP CONSTRAINT users_pkey, \
                     DROP COLUMN create_time, \
                     DROP COLUMN update_time, \
                     ALTER COLUMN id TYPE VARCHAR(40) USING id::text, \
                     ALTER COLUMN id DROP NOT NULL, \
                     ALTER COLUMN name DROP NOT NULL, \
                     ALTER COLUMN type DROP NOT NULL",
                )
                .await?;
            }
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE TABLE users_v1 (id VARCHAR(40), name VARCHAR(255), type SMALLINT)",
                )
                .await?;
                db.execute_unprepared("INSERT INTO users_v1 (id, name, type) SELECT id, name, type FROM users")
                    .await?;
                db.execute_unprepared("DROP TABLE users").await?;
                db.execute_unprepared("ALTER TABLE users_v1 RENAME TO users").await?;
            }
            other => return Err(unsupported(other)),
        }
        Ok(())
    }
}

fn unsupported(backend: DbBackend) -> DbErr {
    DbErr::Migration(format!("unsupported database backend {backend:?}"))
}

/// Fails, changing nothing, when a row contains an id that is neither empty nor a UUID.
async fn reject_non_uuid_ids<C: ConnectionTrait>(db: &C, backend: DbBackend) -> Result<(), DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id FROM users WHERE id IS NOT NULL AND TRIM(id) <> ''",
        ))
        .await?;

    let mut invalid = Vec::new();
    for row in &rows {
        let id = String::try_get_by(row, 0usize).map_err(|error| DbErr::Migration(format!("{error:?}")))?;
        if Uuid::try_parse(id.trim()).is_err() {
            invalid.push(id);
        }
    }
    if invalid.is_empty() {
        return Ok(());
    }

    let first_invalid: Vec<&str> = invalid.iter().take(5).map(String::as_str).collect();
    Err(DbErr::Migration(format!(
        "{} row(s) in users have an id that is not a UUID (first: {first_invalid:?}); \
         change or remove them, then run the migration again",
        invalid.len()
    )))
}

/// Gives each row whose id is NULL or empty a new UUIDv7, one row at a time,
/// because such rows have no other column that distinguishes them.
async fn assign_missing_ids<C: ConnectionTrait>(db: &C, backend: DbBackend) -> Result<(), DbErr> {
    let sql = match backend {
        DbBackend::MySql => "UPDATE users SET id = ? WHERE id IS NULL OR TRIM(id) = '' LIMIT 1",
        DbBackend::Postgres => {
            "UPDATE users SET id = $1 WHERE ctid = \
             (SELECT ctid FROM users WHERE id IS NULL OR TRIM(id) = '' LIMIT 1)"
        }
        DbBackend::Sqlite => {
            "UPDATE users SET id = ? WHERE rowid = \
             (SELECT rowid FROM users WHERE id IS NULL OR TRIM(id) = '' LIMIT 1)"
        }
        other => return Err(unsupported(other)),
    };
    loop {
        let id = Uuid::now_v7().hyphenated().to_string();
        let result = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(id)]))
            .await?;
        if result.rows_affected() == 0 {
            return Ok(());
        }
    }
}
