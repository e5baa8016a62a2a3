//! SeaORM entities for the tables that the `migration` crate creates. The service
//! reads and writes through these; the migrations never use them, so each schema
//! version stays defined by its own migration.

pub mod idempotency_key;
pub mod user;
