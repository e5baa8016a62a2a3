//! Domain types of the users service and the rules that turn client input into
//! them. Both transports parse their requests into these types once, at the edge,
//! and get back the same [`Error`] values, which each maps to its own status codes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Longest accepted name, in Unicode characters after trimming.
pub const NAME_MAX_CHARS: usize = 255;
/// Page size used when a request gives none or 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Longest accepted idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// Kind of user account, with the numbers of the protobuf enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    /// Only rows adopted from the Go service can hold it; new input never does.
    Unknown = 0,
    Admin = 1,
    User = 2,
}

impl UserType {
    pub const ACCEPTED: &'static str = "USER_TYPE_ADMIN (1) or USER_TYPE_USER (2)";

    /// Maps a stored number back to the enum; unknown numbers read as `Unknown`.
    pub fn from_stored(number: i16) -> Self {
        match number {
            1 => Self::Admin,
            2 => Self::User,
            _ => Self::Unknown,
        }
    }

    pub fn number(self) -> i16 {
        self as i16
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "USER_TYPE_UNKNOWN",
            Self::Admin => "USER_TYPE_ADMIN",
            Self::User => "USER_TYPE_USER",
        }
    }

    /// Parses client input, which may be the enum name or its number.
    /// `USER_TYPE_UNKNOWN` and 0 are rejected, since a user always has a type.
    pub fn parse_input(value: &Value) -> Result<Self, String> {
        let parsed = match value {
            Value::String(name) => match name.as_str() {
                "USER_TYPE_ADMIN" => Some(Self::Admin),
                "USER_TYPE_USER" => Some(Self::User),
                _ => None,
            },
            Value::Number(number) => match number.as_i64() {
                Some(1) => Some(Self::Admin),
                Some(2) => Some(Self::User),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| format!("must be {}, got {}", Self::ACCEPTED, describe(value)))
    }

    /// Parses a protobuf enum number.
    pub fn parse_number(number: i32) -> Result<Self, String> {
        Self::parse_input(&Value::from(number))
    }
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub user_type: UserType,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A validated user name: trimmed, not blank, at most [`NAME_MAX_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err("must not be blank".to_owned());
        }
        if trimmed.chars().any(char::is_control) {
            // PostgreSQL cannot store NUL in text, and no display name needs a control character.
            return Err("must not contain control characters such as NUL, tab or line breaks".to_owned());
        }
        if chars > NAME_MAX_CHARS {
            return Err(format!("must be at most {NAME_MAX_CHARS} characters, got {chars}"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    fn parse_input(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::parse(text),
            other => Err(format!("must be a string, got {}", describe(other))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Input of a create request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub name: UserName,
    pub user_type: UserType,
}

impl NewUser {
    /// Parses a JSON request body, collecting a violation for every bad field.
    /// Unknown fields are ignored.
    pub fn from_json(body: &Value) -> Result<Self, Error> {
        let object = as_object(body)?;
        let mut violations = Vec::new();

        let name = match object.get("name") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(value) => UserName::parse_input(value),
        };
        let user_type = match object.get("type") {
            None | Some(Value::Null) => Err(format!("is required: {}", UserType::ACCEPTED)),
            Some(value) => UserType::parse_input(value),
        };

        let name = collect(&mut violations, "name", name);
        let user_type = collect(&mut violations, "type", user_type);
        match (name, user_type) {
            (Some(name), Some(user_type)) => Ok(Self { name, user_type }),
            _ => Err(Error::invalid(violations)),
        }
    }

    /// Returns the hex SHA-256 of the normalised input, which distinguishes an
    /// idempotent retry (same hash) from a reused key (different hash).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};

        let mut hasher = Sha256::new();
        hasher.update(self.name.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(self.user_type.number().to_be_bytes());
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Input of an update request: the fields to change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub name: Option<UserName>,
    pub user_type: Option<UserType>,
}

impl UserPatch {
    /// Parses a JSON request body; absent and null fields stay unchanged.
    pub fn from_json(body: &Value) -> Result<Self, Error> {
        let object = as_object(body)?;
        let mut violations = Vec::new();

        let name = object
            .get("name")
            .filter(|value| !value.is_null())
            .and_then(|value| collect(&mut violations, "name", UserName::parse_input(value)));
        let user_type = object
            .get("type")
            .filter(|value| !value.is_null())
            .and_then(|value| collect(&mut violations, "type", UserType::parse_input(value)));

        if !violations.is_empty() {
            return Err(Error::invalid(violations));
        }
        let patch = Self { name, user_type };
        patch.require_change()?;
        Ok(patch)
    }

    /// Rejects a patch that changes nothing.
    pub fn require_change(&self) -> Result<(), Error> {
        if self.name.is_none() && self.user_type.is_none() {
            return Err(Error::invalid(vec![FieldViolation::new(
                "body",
                "must set at least one of name or type",
            )]));
        }
        Ok(())
    }
}

/// Cursor of a listing: the last id of the previous page and the filter it was
/// made for. Clients see it only as the opaque `pageToken`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageToken {
    pub after: Uuid,
    pub filter: Option<UserType>,
}

const PAGE_TOKEN_VERSION: &str = "v1";

impl PageToken {
    pub fn encode(&self) -> String {
        use base64::Engine;

        let filter = self.filter.map_or(0, UserType::number);
        let plain = format!("{PAGE_TOKEN_VERSION}:{}:{filter}", self.after);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
    }

    /// Decodes a token and checks that it was made for the same filter.
    pub fn decode(token: &str, filter: Option<UserType>) -> Result<Self, Error> {
        use base64::Engine;

        let invalid = || {
            Error::invalid(vec![FieldViolation::new(
                "pageToken",
                "is not a token returned by a previous page of this listing",
            )])
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        let plain = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = plain.split(':');
        let (Some(PAGE_TOKEN_VERSION), Some(after), Some(token_filter), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let after = Uuid::try_parse(after).map_err(|_| invalid())?;
        let token_filter: i16 = token_filter.parse().map_err(|_| invalid())?;
        if token_filter != filter.map_or(0, UserType::number) {
            return Err(Error::invalid(vec![FieldViolation::new(
                "pageToken",
                "was made for a different type filter; repeat the request that returned it",
            )]));
        }
        Ok(Self { after, filter })
    }
}

/// A validated list request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub page_size: u64,
    pub after: Option<Uuid>,
    pub filter: Option<UserType>,
}

impl ListQuery {
    /// Builds a list request from raw parameters: a negative page size is
    /// rejected, 0 or none means the default, and sizes over the maximum are clamped.
    pub fn parse(page_size: Option<i64>, page_token: Option<&str>, filter: Option<UserType>) -> Result<Self, Error> {
        let page_size = match page_size {
            None | Some(0) => DEFAULT_PAGE_SIZE,
            Some(size) if size < 0 => {
                return Err(Error::invalid(vec![FieldViolation::new(
                    "pageSize",
                    format!("must be 0 or more (0 means {DEFAULT_PAGE_SIZE}), got {size}"),
                )]));
            }
            Some(size) => (size as u64).min(MAX_PAGE_SIZE),
        };
        let after = match page_token.map(str::trim).filter(|token| !token.is_empty()) {
            Some(token) => Some(PageToken::decode(token, filter)?.after),
            None => None,
        };
        Ok(Self { page_size, after, filter })
    }
}

/// One page of users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub users: Vec<User>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// Validates an idempotency key: 1 to 255 printable ASCII characters.
pub fn parse_idempotency_key(field: &str, raw: &str) -> Result<Option<String>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    let valid = raw.len() <= IDEMPOTENCY_KEY_MAX_LEN && raw.bytes().all(|byte| byte.is_ascii_graphic());
    if !valid {
        return Err(Error::invalid(vec![FieldViolation::new(
            field,
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} printable ASCII characters without spaces"),
        )]));
    }
    Ok(Some(raw.to_owned()))
}

/// Parses a user id from a path or message.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(raw.trim()).map_err(|_| {
        Error::invalid(vec![FieldViolation::new(
            field,
            format!("must be a UUID such as 0190b5a6-7d3e-7c6a-9f51-0c2d3e4f5a6b, got {:?}", truncate(raw)),
        )])
    })
}

/// A rejected request field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// Everything a user operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("user {0} not found")]
    NotFound(Uuid),
    #[error("idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("database unavailable, retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("service not ready: the database schema is not migrated yet, retry later")]
    SchemaOutdated,
    #[error("request is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("deadline exceeded: the request took longer than its grpc-timeout")]
    DeadlineExceeded,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }

    /// Builds an invalid-argument error with a single field violation.
    pub fn invalid_request(field: &str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|violation| format!("{} {}", violation.field, violation.description))
        .collect();
    format!("invalid argument: {}", parts.join("; "))
}

fn as_object(body: &Value) -> Result<&serde_json::Map<String, Value>, Error> {
    body.as_object().ok_or_else(|| {
        Error::invalid_request("body", format!("must be a JSON object, got {}", describe(body)))
    })
}

fn collect<T>(violations: &mut Vec<FieldViolation>, field: &str, result: Result<T, String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(description) => {
            violations.push(FieldViolation::new(field, description));
            None
        }
    }
}

/// Describes a JSON value for an error message without echoing long input.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => format!("{:?}", truncate(text)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn truncate(text: &str) -> String {
    const SHOWN: usize = 40;
    if text.chars().count() <= SHOWN {
        text.to_owned()
    } else {
        format!("{}...", text.chars().take(SHOWN).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_type_accepts_names_and_numbers() {
        let cases = [
            (json!(1), Ok(UserType::Admin)),
            (json!(2), Ok(UserType::User)),
            (json!("USER_TYPE_ADMIN"), Ok(UserType::Admin)),
            (json!("USER_TYPE_USER"), Ok(UserType::User)),
        ];
        for (input, expected) in cases {
            assert_eq!(UserType::parse_input(&input), expected, "input {input}");
        }
    }

    #[test]
    fn user_type_rejects_unknown_and_others() {
        for input in [json!(0), json!(3), json!(-1), json!(1.5), json!("ADMIN"), json!("USER_TYPE_UNKNOWN"), json!(true)] {
            let error = UserType::parse_input(&input).unwrap_err();
            assert!(error.starts_with("must be USER_TYPE_ADMIN (1) or USER_TYPE_USER (2), got "), "input {input}: {error}");
        }
    }

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(UserName::parse(&"é".repeat(255)).unwrap().as_str().chars().count(), 255);
        assert_eq!(UserName::parse(&"é".repeat(256)).unwrap_err(), "must be at most 255 characters, got 256");
        assert_eq!(UserName::parse(" \t ").unwrap_err(), "must not be blank");
        assert_eq!(UserName::parse("\tAda\n").unwrap().as_str(), "Ada");
        for name in ["A\u{0}da", "A\nda", "A\tda", "A\u{85}da"] {
            assert!(UserName::parse(name).unwrap_err().contains("control characters"), "{name:?}");
        }
    }

    #[test]
    fn new_user_collects_every_violation() {
        let Err(Error::InvalidArgument(violations)) = NewUser::from_json(&json!({"name": 5, "type": 0})) else {
            panic!("expected an invalid argument");
        };
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[0].field, "name");
        assert_eq!(violations[0].description, "must be a string, got 5");
        assert_eq!(violations[1].field, "type");
    }

    #[test]
    fn page_token_round_trips_and_binds_filter() {
        let token = PageToken { after: Uuid::now_v7(), filter: Some(UserType::User) };
        let encoded = token.encode();
        assert_eq!(PageToken::decode(&encoded, Some(UserType::User)).unwrap(), token);
        assert!(PageToken::decode(&encoded, None).is_err());
        assert!(PageToken::decode("garbage!", None).is_err());
        assert!(PageToken::decode("djE6bm90LWEtdXVpZDow", None).is_err());
    }

    #[test]
    fn page_size_defaults_clamps_and_rejects_negative() {
        assert_eq!(ListQuery::parse(None, None, None).unwrap().page_size, 50);
        assert_eq!(ListQuery::parse(Some(0), None, None).unwrap().page_size, 50);
        assert_eq!(ListQuery::parse(Some(100_000), None, None).unwrap().page_size, 1000);
        assert!(ListQuery::parse(Some(-1), None, None).is_err());
    }
}
