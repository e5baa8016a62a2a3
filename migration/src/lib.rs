//! Schema migrations for the users service.
//!
//! The same migrations run from the `usersvc-migration` binary (the Kubernetes
//! migration Job), from the service itself on the embedded SQLite default, and from
//! the tests. [`run`] serialises concurrent runs with a database lock, and
//! [`settings`] reads the database settings that the service shares.

mod lock;
mod m20240101_000001_adopt_users;
mod m20240101_000002_users_v2;
mod m20240101_000003_create_idempotency_keys;
pub mod settings;

pub use lock::{LOCK_NAME, run};
pub use sea_orm_migration::prelude::*;

/// The ordered list of migrations the service is built with.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20240101_000001_adopt_users::Migration),
            Box::new(m20240101_000002_users_v2::Migration),
            Box::new(m20240101_000003_create_idempotency_keys::Migration),
        ]
    }
}

/// Direction of a migration run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Apply every pending migration.
    Up,
    /// Revert the last applied migration.
    Down,
}

/// Returns the names of the migrations that the database has not applied yet,
/// without creating the migration table.
pub async fn pending_migrations(db: &sea_orm::DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let pending = Migrator::get_pending_migrations_read_only(db).await?;
    Ok(pending.iter().map(|migration| migration.name().to_owned()).collect())
}
