//! JSON shapes of the REST API as they appear in the OpenAPI document.

use std::borrow::Cow;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
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

/// Kind of user account that a request may set. Requests may also send the
/// protobuf enum numbers, 1 for `USER_TYPE_ADMIN` and 2 for `USER_TYPE_USER`,
/// as grpc-gateway clients do.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "UserTypeInput", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserTypeInput {
    UserTypeAdmin,
    UserTypeUser,
}

/// Pattern of a valid name: optional whitespace, then a first and a last
/// character that are neither whitespace nor control characters, with no control
/// characters between them, then optional whitespace. The whitespace class lists
/// Unicode's White_Space characters, which Rust's `str::trim` removes before the
/// checks; the control class is Unicode's Cc category, which `char::is_control` tests.
const NAME_PATTERN: &str = concat!(
    r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
    r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"(?:[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?",
    r"[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
);

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
    /// Display name, 1 to 255 characters. Users adopted from the previous service
    /// may have an empty name.
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
#[oai(rename_all = "camelCase", example)]
pub struct ListUsersResponse {
    /// Users of this page in creation order; empty when there are none.
    pub users: Vec<UserBody>,
    /// Pass as `pageToken` to get the next page; empty on the last page.
    pub next_page_token: String,
}

impl poem_openapi::types::Example for ListUsersResponse {
    fn example() -> Self {
        Self {
            users: vec![<UserBody as poem_openapi::types::Example>::example()],
            next_page_token: "djE6MDE5NDFmMjktN2MzZS03YjZhLTlmNTEtMGMyZDNlNGY1YTZiOjA".to_owned(),
        }
    }
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
    /// Display name: 1 to 255 characters after trimming surrounding whitespace, not blank.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub name: String,
    /// `USER_TYPE_ADMIN` or `USER_TYPE_USER`; the numbers 1 and 2 are accepted too.
    #[oai(rename = "type")]
    pub user_type: UserTypeInput,
}

impl poem_openapi::types::Example for UserCreate {
    fn example() -> Self {
        Self { name: "John".to_owned(), user_type: UserTypeInput::UserTypeAdmin }
    }
}

impl RequestSchema for UserCreate {
    fn refine(schema: &mut MetaSchema) {
        require_not_blank(schema, "name");
    }
}

/// Fields to change: at least one of `name` and `type`. Absent fields and fields
/// set to `null` keep their values, as in protobuf's JSON mapping. Unknown fields
/// are ignored.
#[derive(Object, Clone, Debug)]
#[oai(rename = "UpdateUserRequest", example)]
pub struct UserUpdate {
    /// Display name: 1 to 255 characters after trimming surrounding whitespace, not blank.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub name: Option<String>,
    /// `USER_TYPE_ADMIN` or `USER_TYPE_USER`; the numbers 1 and 2 are accepted too.
    #[oai(rename = "type")]
    pub user_type: Option<UserTypeInput>,
}

impl poem_openapi::types::Example for UserUpdate {
    fn example() -> Self {
        Self { name: Some("Jane".to_owned()), user_type: Some(UserTypeInput::UserTypeUser) }
    }
}

impl RequestSchema for UserUpdate {
    fn refine(schema: &mut MetaSchema) {
        require_not_blank(schema, "name");
        for (_, property) in &mut schema.properties {
            if let MetaSchemaRef::Inline(property) = property {
                property.nullable = true;
                // OpenAPI 3.0 needs `type` beside `nullable`; both fields are strings.
                property.ty = "string";
            }
        }

        // An update that sets neither field is rejected. `minProperties` states
        // the common case, `{}`. It cannot state the rest, since unknown fields
        // are ignored and null means unchanged, and an `anyOf` of required
        // fields would turn this model into a wrapper in generated SDKs.
        schema.min_properties = Some(1);
        if let Some(example) = schema.example.as_mut().and_then(serde_json::Value::as_object_mut) {
            example.retain(|_, value| !value.is_null());
        }
    }
}

/// A request body whose published schema needs constraints that poem-openapi's
/// derive macros cannot express. The handlers validate the raw JSON themselves,
/// so these constraints only document what the domain enforces.
pub trait RequestSchema: Type {
    fn refine(schema: &mut MetaSchema);
}

/// Adds the name pattern to a string property.
fn require_not_blank(schema: &mut MetaSchema, field: &str) {
    let property = schema.properties.iter_mut().find(|(name, _)| *name == field);
    if let Some((_, MetaSchemaRef::Inline(property))) = property {
        property.pattern = Some(NAME_PATTERN.to_owned());
    }
}

/// A JSON request body documented with the schema of `T` but kept as raw JSON,
/// so the domain can validate every field at once and report each violation,
/// instead of stopping at the first mismatch as typed deserialisation does.
pub struct JsonBody<T>(pub Value, PhantomData<fn() -> T>);

impl<T: RequestSchema> Type for JsonBody<T> {
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
        if let Some(schema) = registry.schemas.get_mut(T::name().as_ref()) {
            T::refine(schema);
        }
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<T: RequestSchema> ParseFromJSON for JsonBody<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self(value.unwrap_or(Value::Null), PhantomData))
    }
}

impl<T: RequestSchema> ToJSON for JsonBody<T> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// The `type` query parameter, documented as [`UserTypeInput`] but kept as raw
/// text, so the domain parses it like the body field and also accepts 1 and 2.
pub struct UserTypeFilter(pub String);

impl Type for UserTypeFilter {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        UserTypeInput::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        UserTypeInput::schema_ref()
    }

    fn register(registry: &mut Registry) {
        UserTypeInput::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromParameter for UserTypeFilter {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
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
