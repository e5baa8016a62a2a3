//! The `idempotency_keys` table: one row per create request that carried a key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Client-chosen key, 1 to 255 characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    /// Hex SHA-256 of the normalised request, to tell a retry from a reuse.
    pub request_hash: String,
    pub user_id: super::user::Id,
    /// The user as first returned, as JSON, so a retry returns the same result.
    pub response: String,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
