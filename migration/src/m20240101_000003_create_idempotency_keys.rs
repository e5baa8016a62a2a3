//! Creates `idempotency_keys`, which maps a create request's idempotency key to
//! the user it created and the response it returned.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (user_id, timestamp, text) = match manager.get_database_backend() {
            DbBackend::MySql => ("VARCHAR(36)", "DATETIME(6)", "TEXT"),
            DbBackend::Postgres => ("uuid", "TIMESTAMPTZ", "TEXT"),
            _ => ("TEXT", "TEXT", "TEXT"),
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE TABLE idempotency_keys (\
             idempotency_key VARCHAR(255) NOT NULL PRIMARY KEY, \
             request_hash CHAR(64) NOT NULL, \
             user_id {user_id} NOT NULL, \
             response {text} NOT NULL, \
             create_time {timestamp} NOT NULL)"
))
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idempotency_keys_create_time ON idempotency_keys (create_time)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("idempotency_keys").to_owned())
            .await
    }
}
