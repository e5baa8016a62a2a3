//! The REST error body, in the google.rpc.Status shape that grpc-gateway clients
//! already parse. This is the one place where errors become HTTP responses.
//! Domain errors go through [`ApiError`]. Everything that poem or poem-openapi
//! rejects before a handler runs (bad JSON, wrong media type, bad parameters,
//! unknown routes, oversized bodies) goes through [`into_status_response`].

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};

use crate::domain::{DEFAULT_PAGE_SIZE, Error, FieldViolation, IDEMPOTENCY_KEY_MAX_LEN};

/// Type URL of the field-violation detail, as grpc-gateway emits it.
pub const BAD_REQUEST_TYPE_URL: &str = "type.googleapis.com/google.rpc.BadRequest";

/// gRPC status codes used in error bodies.
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// Error body: a google.rpc.Status.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "Status", example, rename_all = "camelCase")]
pub struct Status {
    /// gRPC status code: 3 invalid argument, 4 deadline exceeded, 5 not found,
    /// 8 resource exhausted, 9 failed precondition, 13 internal, 14 unavailable.
    pub code: i32,
    /// Error message in English, for developers.
    pub message: String,
    /// Machine-readable details; a `google.rpc.BadRequest` lists the rejected fields.
    pub details: Vec<BadRequestDetail>,
}

/// A `google.rpc.BadRequest` detail.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "BadRequest", rename_all = "camelCase")]
pub struct BadRequestDetail {
    /// Always `type.googleapis.com/google.rpc.BadRequest`.
    #[oai(rename = "@type")]
    pub type_url: String,
    pub field_violations: Vec<FieldViolationBody>,
}

/// One rejected field.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "FieldViolation")]
pub struct FieldViolationBody {
    /// Field name as sent by the client, such as `name`, `type` or `pageSize`.
    pub field: String,
    /// Description of the problem and of the accepted values.
    pub description: String,
}

impl poem_openapi::types::Example for Status {
    fn example() -> Self {
    Status {
        code: code::INVALID_ARGUMENT,
        message: "invalid argument: name must not be blank".to_owned(),
        details: vec![BadRequestDetail {
            type_url: BAD_REQUEST_TYPE_URL.to_owned(),
            field_violations: vec![FieldViolationBody {
                field: "name".to_owned(),
                description: "must not be blank".to_owned(),
            }],
        }],
    }
    }
}

impl Status {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new() }
    }

    fn with_violations(mut self, violations: &[FieldViolation]) -> Self {
        self.details.push(BadRequestDetail {
            type_url: BAD_REQUEST_TYPE_URL.to_owned(),
            field_violations: violations
                .iter()
                .map(|violation| FieldViolationBody {
                    field: violation.field.clone(),
                    description: violation.description.clone(),
                })
                .collect(),
        });
        self
    }

    fn into_response_with(self, status: StatusCode) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "details": self.details.iter().map(|detail| serde_json::json!({
                "@type": detail.type_url,
                "fieldViolations": detail.field_violations.iter().map(|violation| serde_json::json!({
                    "field": violation.field,
                    "description": violation.description,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        Response::builder()
            .status(status)
            .content_type("application/json; charset=utf-8")
            .body(body.to_string())
    }
}

/// A failed operation, as every REST operation documents and returns it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub Error);

impl ApiError {
    fn status_and_body(&self) -> (StatusCode, Status) {
        match &self.0 {
            Error::InvalidArgument(violations) => (
                StatusCode::BAD_REQUEST,
                Status::new(code::INVALID_ARGUMENT, self.0.to_string()).with_violations(violations),
            ),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, Status::new(code::NOT_FOUND, self.0.to_string())),
            Error::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Status::new(code::FAILED_PRECONDITION, self.0.to_string()),
            ),
            Error::DeadlineExceeded => (
                StatusCode::GATEWAY_TIMEOUT,
                Status::new(code::DEADLINE_EXCEEDED, self.0.to_string()),
            ),
            Error::Unavailable(_) | Error::SchemaOutdated => (
                StatusCode::SERVICE_UNAVAILABLE,
                Status::new(code::UNAVAILABLE, self.0.to_string()),
            ),
            Error::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Status::new(code::RESOURCE_EXHAUSTED, self.0.to_string()),
            ),
            Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Status::new(code::INTERNAL, self.0.to_string()),
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status_and_body().0
    }

    fn as_response(&self) -> Response {
        crate::telemetry::log_error(&self.0);
        let (status, body) = self.status_and_body();
        body.into_response_with(status)
    }
}

/// Error responses that every operation may return, with their documentation.
const ERROR_RESPONSES: &[(u16, &str)] = &[
    (400, "Invalid argument: malformed JSON, a wrong field type or value, a bad page token or a malformed id. `details` lists each rejected field."),
    (404, "No user has this id, or no such route exists."),
    (413, "The request body is larger than the configured limit (64 KiB by default)."),
    (415, "The request body is not `application/json`."),
    (422, "The `Idempotency-Key` was already used with a different request body."),
    (500, "Unexpected server error; the message is opaque and the cause is in the service log."),
    (503, "The database is unavailable or the connection pool is exhausted; retry with backoff."),
    (504, "The request took longer than the deadline its `Grpc-Timeout` header set."),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: ERROR_RESPONSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: Status::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Status::register(registry);
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// Converts any error that reached the top of the HTTP stack into a Status body
/// with the matching HTTP status.
pub fn into_status_response(error: poem::Error) -> Response {
    use poem_openapi::error::{ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError};

    if let Some(api_error) = error.downcast_ref::<ApiError>() {
        return api_error.as_response();
    }

    let status = error.status();
    let body = if let Some(param) = error.downcast_ref::<ParseParamError>() {
        let description = if param.name == "Idempotency-Key" {
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} printable ASCII characters without spaces")
        } else {
            describe_param_error(&param.reason)
        };
        let violation = FieldViolation::new(param.name, description);
        Status::new(code::INVALID_ARGUMENT, format!("invalid argument: {} {}", violation.field, violation.description))
            .with_violations(&[violation])
    } else if let Some(path) = error.downcast_ref::<ParsePathError>() {
        // The only path parameter is the user id; poem-openapi names it by position.
        let violation = FieldViolation::new("id", describe_param_error(&path.reason));
        Status::new(code::INVALID_ARGUMENT, format!("invalid argument: {} {}", violation.field, violation.description))
            .with_violations(&[violation])
    } else if let Some(payload) = error.downcast_ref::<ParseRequestPayloadError>() {
        let violation = FieldViolation::new("body", format!("is not valid JSON: {}", payload.reason));
        Status::new(code::INVALID_ARGUMENT, format!("invalid argument: body {}", violation.description))
            .with_violations(&[violation])
    } else if let Some(content_type) = error.downcast_ref::<ContentTypeError>() {
        let message = match content_type {
            ContentTypeError::NotSupported { content_type } => {
                format!("unsupported media type {content_type:?}: send Content-Type: application/json")
            }
            _ => "missing Content-Type: send Content-Type: application/json".to_owned(),
        };
        Status::new(code::INVALID_ARGUMENT, message)
    } else {
        match status {
            StatusCode::NOT_FOUND => Status::new(code::NOT_FOUND, "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => Status::new(code::UNIMPLEMENTED, "method not allowed on this route"),
            StatusCode::PAYLOAD_TOO_LARGE => Status::new(code::RESOURCE_EXHAUSTED, error.to_string()),
            status if status.is_server_error() => {
                tracing::error!(error = %error, "request failed");
                Status::new(code::INTERNAL, "internal error")
            }
            _ => Status::new(code::INVALID_ARGUMENT, error.to_string()),
        }
    };
    body.into_response_with(status)
}

/// Rewords poem-openapi's parameter errors, which quote the whole parsing chain.
fn describe_param_error(reason: &str) -> String {
    if reason.contains("failed to parse \"integer") {
        "must be a whole number".to_owned()
    } else if reason.contains("minimum(0") {
        format!("must be 0 or more (0 means {DEFAULT_PAGE_SIZE})")
    } else if reason.contains("uuid") {
        "must be a UUID such as 0190b5a6-7d3e-7c6a-9f51-0c2d3e4f5a6b".to_owned()
    } else {
        reason.to_owned()
    }
}
