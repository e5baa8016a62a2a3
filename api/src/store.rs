//! Storage of users and idempotency keys through SeaORM, on any of the three
//! backends. Ids are bound through [`Id::to_value`] because their storage form
//! differs between backends; everything else is plain SeaORM.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::idempotency_key;
use entity::user::{self, Id};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, RuntimeErr, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{Error, ListQuery, Page, PageToken, User, UserPatch, UserType};

/// An idempotency record to store with a new user.
pub struct IdempotencyRecord<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub response: &'a str,
}

/// A stored idempotency key.
pub struct StoredKey {
    pub request_hash: String,
    pub response: String,
    pub create_time: DateTime<Utc>,
}

/// Outcome of an insert that carried an idempotency key.
pub enum InsertOutcome {
    Inserted,
    /// Another request stored the same key first.
    KeyTaken,
}

/// Users and idempotency keys in one database.
#[derive(Clone)]
pub struct Store {
    db: Arc<DatabaseConnection>,
}

impl Store {
    pub fn new(db: Arc<DatabaseConnection>) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Inserts a user and, in the same transaction, its idempotency record.
    pub async fn insert(&self, user: &User, record: Option<IdempotencyRecord<'_>>) -> Result<InsertOutcome, Error> {
        let backend = self.backend();
        let transaction = self.db.begin().await.map_err(classify)?;

        let insert_user = Query::insert()
            .into_table(user::Entity)
            .columns([
                user::Column::Id,
                user::Column::Name,
                user::Column::Type,
                user::Column::CreateTime,
                user::Column::UpdateTime,
            ])
            .values_panic([
                Id(user.id).to_value(backend).into(),
                user.name.clone().into(),
                user.user_type.number().into(),
                user.create_time.into(),
                user.update_time.into(),
            ])
            .to_owned();
        transaction.execute(&insert_user).await.map_err(classify)?;

        if let Some(record) = record {
            let insert_key = Query::insert()
                .into_table(idempotency_key::Entity)
                .columns([
                    idempotency_key::Column::IdempotencyKey,
                    idempotency_key::Column::RequestHash,
                    idempotency_key::Column::UserId,
                    idempotency_key::Column::Response,
                    idempotency_key::Column::CreateTime,
                ])
                .values_panic([
                    record.key.into(),
                    record.request_hash.into(),
                    Id(user.id).to_value(backend).into(),
                    record.response.into(),
                    user.create_time.into(),
                ])
                .to_owned();
            if let Err(error) = transaction.execute(&insert_key).await {
                transaction.rollback().await.ok();
                return match error.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => Ok(InsertOutcome::KeyTaken),
                    _ => Err(classify(error)),
                };
            }
        }

        transaction.commit().await.map_err(classify)?;
        Ok(InsertOutcome::Inserted)
    }

    pub async fn find(&self, id: Uuid) -> Result<Option<User>, Error> {
        let model = user::Entity::find()
            .filter(user::Column::Id.eq(Id(id).to_value(self.backend())))
            .one(self.connection())
            .await
            .map_err(classify)?;
        Ok(model.map(to_user))
    }

    /// Returns one page in id order, which is creation order for UUIDv7 ids. The
    /// query seeks past the previous page's last id, so its cost does not grow with
    /// the page number.
    pub async fn list(&self, query: ListQuery) -> Result<Page, Error> {
        let mut select = user::Entity::find().order_by_asc(user::Column::Id);
        if let Some(user_type) = query.filter {
            select = select.filter(user::Column::Type.eq(user_type.number()));
        }
        if let Some(after) = query.after {
            select = select.filter(user::Column::Id.gt(Id(after).to_value(self.backend())));
        }

        // Fetching one row more than the page shows whether another page follows.
        let mut models = select
            .limit(query.page_size + 1)
            .all(self.connection())
            .await
            .map_err(classify)?;
        let has_more = models.len() as u64 > query.page_size;
        models.truncate(query.page_size as usize);

        let users: Vec<User> = models.into_iter().map(to_user).collect();
        let next_page_token = match users.last() {
            Some(last) if has_more => PageToken { after: last.id, filter: query.filter }.encode(),
            _ => String::new(),
        };
        Ok(Page { users, next_page_token })
    }

    /// Applies a patch; returns `None` when the user does not exist.
    pub async fn update(&self, id: Uuid, patch: &UserPatch, now: DateTime<Utc>) -> Result<Option<User>, Error> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdateTime, Expr::value(now))
            .filter(user::Column::Id.eq(Id(id).to_value(self.backend())));
        if let Some(name) = &patch.name {
            update = update.col_expr(user::Column::Name, Expr::value(name.as_str()));
        }
        if let Some(user_type) = patch.user_type {
            update = update.col_expr(user::Column::Type, Expr::value(user_type.number()));
        }
        update.exec(self.connection()).await.map_err(classify)?;
        self.find(id).await
    }

    /// Deletes a user; returns whether it existed.
    pub async fn delete(&self, id: Uuid) -> Result<bool, Error> {
        let result = user::Entity::delete_many()
            .filter(user::Column::Id.eq(Id(id).to_value(self.backend())))
            .exec(self.connection())
            .await
            .map_err(classify)?;
        Ok(result.rows_affected > 0)
    }

    pub async fn find_key(&self, key: &str) -> Result<Option<StoredKey>, Error> {
        let model = idempotency_key::Entity::find_by_id(key.to_owned())
            .one(self.connection())
            .await
            .map_err(classify)?;
        Ok(model.map(|model| StoredKey {
            request_hash: model.request_hash,
            response: model.response,
            create_time: model.create_time,
        }))
    }

    /// Deletes idempotency keys created before `cutoff`; returns how many.
    pub async fn delete_keys_before(&self, cutoff: DateTime<Utc>) -> Result<u64, Error> {
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreateTime.lt(cutoff))
            .exec(self.connection())
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    pub async fn delete_key(&self, key: &str) -> Result<(), Error> {
        idempotency_key::Entity::delete_by_id(key.to_owned())
            .exec(self.connection())
            .await
            .map_err(classify)?;
        Ok(())
    }
}

fn to_user(model: user::Model) -> User {
    User {
        id: model.id.0,
        name: model.name,
        user_type: UserType::from_stored(model.r#type),
        create_time: model.create_time,
        update_time: model.update_time,
    }
}

/// Sorts a database error into "unavailable" (connection and pool trouble, worth a
/// retry) and "internal" (everything else). Either keeps the cause for the log;
/// neither exposes it to clients.
pub fn classify(error: DbErr) -> Error {
    if is_unavailable(&error) {
        Error::Unavailable(error.into())
    } else {
        Error::Internal(error.into())
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as SqlxError;

    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => matches!(
            inner.as_ref(),
            SqlxError::Io(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed
                | SqlxError::Tls(_)
                | SqlxError::Protocol(_)
        ),
        _ => false,
    }
}
