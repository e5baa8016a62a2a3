//! The `users` table.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ArrayType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbBackend, QueryResult, TryFromU64, TryGetError, TryGetable};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// UUIDv7 for new rows; rows adopted from the Go service keep their ids.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub name: String,
    /// `UserType` number: 0 unknown (adopted rows only), 1 admin, 2 user.
    pub r#type: i16,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Primary key of `users`: a native `uuid` on PostgreSQL and lowercase hyphenated
/// text on MySQL and SQLite, as the Go service stored it.
///
/// Reading accepts both forms. Values written to the database must come from
/// [`Id::to_value`], because the plain `Value` conversion cannot know the backend
/// and sqlx would bind a UUID as 16 raw bytes on MySQL and SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub Uuid);

impl Id {
    /// Converts the id into the value that `backend` stores in the `id` column.
    pub fn to_value(self, backend: DbBackend) -> Value {
        match backend {
            DbBackend::Postgres => Value::Uuid(Some(self.0)),
            _ => Value::String(Some(self.0.hyphenated().to_string())),
        }
    }
}

impl From<Id> for Value {
    fn from(id: Id) -> Self {
        Value::Uuid(Some(id.0))
    }
}

impl Nullable for Id {
    fn null() -> Value {
        Value::Uuid(None)
    }
}

impl ValueType for Id {
    fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
        match value {
            Value::Uuid(Some(uuid)) => Ok(Id(uuid)),
            Value::String(Some(text)) => Uuid::parse_str(&text).map(Id).map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }

    fn type_name() -> String {
        "Id".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Uuid
    }

    fn column_type() -> ColumnType {
        ColumnType::Uuid
    }
}

impl TryGetable for Id {
    fn try_get_by<I: ColIdx>(result: &QueryResult, index: I) -> Result<Self, TryGetError> {
        if let Ok(uuid) = Uuid::try_get_by(result, index) {
            return Ok(Id(uuid));
        }
        let text = String::try_get_by(result, index)?;
        Uuid::parse_str(&text).map(Id).map_err(|error| {
            TryGetError::DbErr(DbErr::Type(format!("users.id {text:?} is not a UUID: {error}")))
        })
    }
}

impl TryFromU64 for Id {
    fn try_from_u64(_: u64) -> Result<Self, DbErr> {
        Err(DbErr::ConvertFromU64("users.id is a UUID, not an auto-increment number"))
    }
}
