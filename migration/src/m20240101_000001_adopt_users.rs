//! Creates the `users` table in the shape the Go service created it, unless that
//! service already did. Either way the next migration starts from the same table,
//! so a database the Go service used is adopted with every row in place.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // PostgreSQL and SQLite have no unsigned integers, and a signed SMALLINT fits 0..=2 too.
        let type_column = match manager.get_database_backend() {
            DbBackend::MySql => "SMALLINT UNSIGNED",
            _ => "SMALLINT",
        };
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS users (id VARCHAR(40), name VARCHAR(255), type {type_column})"
        );
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("users").if_exists().to_owned())
            .await
    }
}
