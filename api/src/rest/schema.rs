//! JSON shapes of the REST API as they appear in the OpenAPI document.

use std::borrow::Cow;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{Enum, Object};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::{self, Page, User};

/// Kind of user account. `USER_TYPE_UNKNOWN` appears only on users adopted from
/// the previous service that never had a type; requests cannot set it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "UserType", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserTypeName {
    UserTypeUnknown,
    UserTypeAdmin,
    UserTypeUser,
}

impl From<domain::UserType> for UserTypeName {
    fn from(user_type: domain::UserType) -> Self {
        match user_type {
            domain::UserType::Unknown => Self::UserTypeUnknown,
            domain::UserType::Admin => Self::UserTypeAdmin,
            domain::UserType::User => Self::UserTypeUser,
        }
    }
}

/// A user.
#[derive(Object, Clone, Debug)]
#[oai(rename = "User", rename_all = "camelCase", example)]
pub struct UserBody {
    /// Server-assigned UUID (version 7 for users created by this service).
    pub id: Uuid,
    /// Display name, 1 to 255 characters.
    pub name: String,
    #[oai(rename = "type")]
    pub user_type: UserTypeName,
    /// When the user was created (RFC 3339, UTC).
    pub create_time: Timestamp,
    /// When the user was last changed (RFC 3339, UTC).
    pub update_time: Timestamp,
}

impl poem_openapi::types::Example for UserBody {
    fn example() -> Self {
    let time = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_default();
    UserBody {
        id: Uuid::parse_str("01941f29-7c3e-7b6a-9f51-0c2d3e4f5a6b").unwrap_or_default(),
        name: "John".to_owned(),
        user_type: UserTypeName::UserTypeAdmin,
        create_time: Timestamp(time),
        update_time: Timestamp(time),
    }
    }
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            name: user.name,
            user_type: user.user_type.into(),
            create_time: Timestamp(user.create_time),
            update_time: Timestamp(user.update_time),
        }
    }
}

/// One page of users.
#[derive(Object, Clone, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ListUsersResponse {
    /// Users of this page in creation order; empty when there are none.
    pub users: Vec<UserBody>,
    /// Pass as `pageToken` to get the next page; empty on the last page.
    pub next_page_token: String,
}

impl From<Page> for ListUsersResponse {
    fn from(page: Page) -> Self {
        Self {
            users: page.users.into_iter().map(UserBody::from).collect(),
            next_page_token: page.next_page_token,
        }
    }
}

/// Fields of a new user. Unknown fields are ignored.
#[derive(Object, Clone, Debug)]
#[oai(rename = "CreateUserRequest", example)]
pub struct UserCreate {
    /// Display name: 1 to 255 characters after trimming spaces, not blank.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub name: String,
    /// `USER_TYPE_ADMIN` or `USER_TYPE_USER`; the numbers 1 and 2 are accepted too.
    #[oai(rename = "type")]
    pub user_type: UserTypeName,
}

impl poem_openapi::types::Example for UserCreate {
    fn example() -> Self {
        Self { name: "John".to_owned(), user_type: UserTypeName::UserTypeAdmin }
    }
}

/// Fields to change; absent fields keep their values. Unknown fields are ignored.
#[derive(Object, Clone, Debug)]
#[oai(rename = "UpdateUserRequest", example)]
pub struct UserUpdate {
    /// Display name: 1 to 255 characters after trimming spaces, not blank.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub name: Option<String>,
    /// `USER_TYPE_ADMIN` or `USER_TYPE_USER`; the numbers 1 and 2 are accepted too.
    #[oai(rename = "type")]
    pub user_type: Option<UserTypeName>,
}

impl poem_openapi::types::Example for UserUpdate {
    fn example() -> Self {
        Self { name: Some("Jane".to_owned()), user_type: None }
    }
}

/// A JSON request body documented with the schema of `T` but kept as raw JSON,
/// so the domain can validate every field at once and report each violation,
/// instead of stopping at the first mismatch as typed deserialisation does.
pub struct JsonBody<T>(pub Value, PhantomData<fn() -> T>);

impl<T: Type> Type for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    type RawValueType = Value;

    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<T: Type> ParseFromJSON for JsonBody<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self(value.unwrap_or(Value::Null), PhantomData))
    }
}

impl<T: Type> ToJSON for JsonBody<T> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// A point in time written as RFC 3339 in UTC with a `Z` suffix and 0, 3, 6 or 9
/// fractional digits, as protobuf's JSON mapping (and so grpc-gateway) writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;

    type RawValueType = DateTime<Utc>;

    type RawElementValueType = DateTime<Utc>;

    fn name() -> Cow<'static, str> {
        <DateTime<Utc> as Type>::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        <DateTime<Utc> as Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        <DateTime<Utc> as ParseFromJSON>::parse_from_json(value)
            .map(Self)
            .map_err(poem_openapi::types::ParseError::propagate)
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
    }
}
