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

/// The migrations a database has applied, compared with the ones this binary was
/// built with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaState {
    /// Migrations of this binary that the database has applied.
    pub applied: Vec<String>,
    /// Migrations of this binary that the database has not applied yet.
    pub pending: Vec<String>,
    /// Migrations the database has applied that this binary does not know, because
    /// a newer release migrated it. Migrations must only add to the schema that
    /// older releases use, so that an older binary can still serve it.
    pub unknown: Vec<String>,
}

/// Reads the schema state without creating the migration table, so it works with
/// a read-only database user and never writes.
pub async fn schema_state<C>(db: &C) -> Result<SchemaState, DbErr>
where
    C: sea_orm::ConnectionTrait,
    for<'c> &'c C: IntoSchemaManagerConnection<'c>,
{
    use sea_orm::Statement;

    let known: Vec<String> = Migrator::migrations().iter().map(|migration| migration.name().to_owned()).collect();
    let manager = SchemaManager::new(db);
    if !manager.has_table("seaql_migrations").await? {
        return Ok(SchemaState { pending: known, ..SchemaState::default() });
    }

    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT version FROM seaql_migrations"))
        .await?;
    let recorded: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect::<Result<_, _>>()?;

    let (applied, pending) = known.into_iter().partition(|name| recorded.contains(name));
    let applied_list: &Vec<String> = &applied;
    let unknown = recorded
        .iter()
        .filter(|name| !applied_list.contains(name))
        .cloned()
        .collect();
    Ok(SchemaState { applied, pending, unknown })
}

/// Returns the names of this binary's migrations that the database has not
/// applied yet, without creating the migration table.
pub async fn pending_migrations(db: &sea_orm::DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(schema_state(db).await?.pending)
}
