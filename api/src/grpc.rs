//! gRPC facade: `com.example.user.service.v1.UserService`, wire-compatible with
//! the Go service. Messages become domain types here, the same
//! [`UserService`] does the work, and domain errors become `Status` values with
//! `google.rpc.BadRequest` details.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{self, Error, ListQuery, NewUser, User, UserName, UserPatch, UserType};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::service::UserService;

/// Code generated from `proto/` at build time.
pub mod proto {
    pub mod com {
        pub mod example {
            pub mod user {
                pub mod model {
                    pub mod v1 {
                        tonic::include_proto!("com.example.user.model.v1");
                    }
                }
                pub mod service {
                    pub mod v1 {
                        tonic::include_proto!("com.example.user.service.v1");
                    }
                }
            }
        }
    }

    /// Encoded descriptors of every proto file, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/usersvc_descriptor.bin"));
}

use proto::com::example::user::model::v1 as model;
use proto::com::example::user::service::v1 as pb;
pub use pb::user_service_server::{SERVICE_NAME, UserServiceServer};

/// Implements the generated `UserService` trait on top of the domain service.
pub struct GrpcUserService {
    service: Arc<UserService>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// Largest accepted request message in bytes; tonic's own decoding limit is
    /// set higher, because it rejects with OUT_OF_RANGE instead of RESOURCE_EXHAUSTED.
    message_limit: usize,
}

impl GrpcUserService {
    pub fn new(service: Arc<UserService>, metrics: Arc<Metrics>, health: Arc<Health>, message_limit: usize) -> Self {
        Self { service, metrics, health, message_limit }
    }

    /// Runs one call inside a span carrying its request id, and records its
    /// outcome and latency. `message_len` is the encoded size of the request.
    async fn observe<T, F>(
        &self,
        method: &'static str,
        (request_id, message_len, timeout): (String, usize, Option<Duration>),
        call: F,
    ) -> Result<Response<T>, Status>
    where
        F: Future<Output = Result<T, Error>>,
    {
        use tracing::Instrument;

        let span = tracing::info_span!("grpc", request_id = %request_id, method);
        async {
            let started = Instant::now();
            let answer_by = timeout.map(|timeout| crate::deadline::grpc_answer_by(started.into(), timeout));
            let call = async {
                if message_len > self.message_limit {
                    return Err(Error::PayloadTooLarge { limit: self.message_limit });
                }
                if !self.health.is_schema_current() {
                    return Err(Error::SchemaOutdated);
                }
                match answer_by {
                    Some(answer_by) => crate::deadline::run_before(answer_by, call).await.unwrap_or(Err(Error::DeadlineExceeded)),
                    None => call.await,
                }
            };
            let result = call.await.map(Response::new).map_err(|error| to_status(method, error));
            let code = match &result {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            let elapsed = started.elapsed();
            self.metrics.observe_grpc(method, code, elapsed);
            tracing::info!(
                grpc_code = ?code,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "grpc request"
            );
            result
        }
        .instrument(span)
        .await
    }
}

/// Returns the request id (from `x-request-id` metadata, or new), the encoded
/// size of the request message, and the client's `grpc-timeout`.
fn request_info<T: prost::Message>(request: &Request<T>) -> (String, usize, Option<Duration>) {
    let client_id = request.metadata().get("x-request-id").and_then(|value| value.to_str().ok());
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| crate::deadline::parse_grpc_timeout(value).ok());
    (crate::telemetry::request_id(client_id), request.get_ref().encoded_len(), timeout)
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for GrpcUserService {
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::CreateUserResponse>, Status> {
        let info = request_info(&request);
        let message = request.into_inner();
        self.observe("CreateUser", info, async {
            let idempotency_key = domain::parse_idempotency_key("request_id", &message.request_id)?;
            let user = message.user.ok_or_else(|| Error::invalid_request("user", "is required"))?;
            let new_user = NewUser::from_json(&serde_json::json!({"name": user.name, "type": user.r#type}))?;

            let user = self.service.create(new_user, idempotency_key).await?;
            Ok(pb::CreateUserResponse { id: user.id.to_string(), user: Some(to_message(user)) })
        })
        .await
    }

    async fn get_users(&self, request: Request<pb::GetUsersRequest>) -> Result<Response<pb::GetUsersResponse>, Status> {
        let info = request_info(&request);
        let message = request.into_inner();
        self.observe("GetUsers", info, async {
            let filter = match message.r#type {
                0 => None,
                number => Some(UserType::parse_number(number).map_err(|description| Error::invalid_request("type", description))?),
            };
            let query = ListQuery::parse(Some(i64::from(message.page_size)), Some(&message.page_token), filter)?;

            let page = self.service.list(query).await?;
            Ok(pb::GetUsersResponse {
                users: page.users.into_iter().map(to_message).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::GetUserResponse>, Status> {
        let info = request_info(&request);
        let message = request.into_inner();
        self.observe("GetUser", info, async {
            let id = domain::parse_id("id", &message.id)?;
            let user = self.service.get(id).await?;
            Ok(pb::GetUserResponse { user: Some(to_message(user)) })
        })
        .await
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let info = request_info(&request);
        let message = request.into_inner();
        self.observe("UpdateUser", info, async {
            let id = domain::parse_id("id", &message.id)?;
            let patch = to_patch(message.user.unwrap_or_default(), message.update_mask)?;

            let user = self.service.update(id, patch).await?;
            Ok(pb::UpdateUserResponse { user: Some(to_message(user)) })
        })
        .await
    }

    async fn delete_user(&self, request: Request<pb::DeleteUserRequest>) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let info = request_info(&request);
        let message = request.into_inner();
        self.observe("DeleteUser", info, async {
            let id = domain::parse_id("id", &message.id)?;
            self.service.delete(id).await?;
            Ok(pb::DeleteUserResponse {})
        })
        .await
    }
}

/// Builds a patch from the fields named by the mask. Without a mask, the fields
/// set to a non-default value are changed, as grpc-gateway derives a mask from
/// the fields present in a PATCH body.
fn to_patch(user: model::UserWrite, mask: Option<prost_types::FieldMask>) -> Result<UserPatch, Error> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        if user.name.is_empty() && user.r#type == 0 {
            return Err(Error::invalid_request(
                "update_mask",
                "is empty and the user sets no field; set user.name, user.type or both",
            ));
        }
        let inferred = [("name", !user.name.is_empty()), ("type", user.r#type != 0)]
            .into_iter()
            .filter_map(|(path, set)| set.then(|| path.to_owned()))
            .collect();
        return to_patch(user, Some(prost_types::FieldMask { paths: inferred }));
    }

    let (mut set_name, mut set_type) = (false, false);
    for path in &paths {
        match path.as_str() {
            "name" => set_name = true,
            "type" => set_type = true,
            other => {
                return Err(Error::invalid_request(
                    "update_mask",
                    format!("contains unknown field {other:?}; expected \"name\" or \"type\""),
                ));
            }
        }
    }

    let mut violations = Vec::new();
    let mut patch = UserPatch::default();
    if set_name {
        match UserName::parse(&user.name) {
            Ok(name) => patch.name = Some(name),
            Err(description) => violations.push(domain::FieldViolation::new("name", description)),
        }
    }
    if set_type {
        match UserType::parse_number(user.r#type) {
            Ok(user_type) => patch.user_type = Some(user_type),
            Err(description) => violations.push(domain::FieldViolation::new("type", description)),
        }
    }
    if !violations.is_empty() {
        return Err(Error::invalid(violations));
    }
    Ok(patch)
}

fn to_message(user: User) -> model::UserRead {
    model::UserRead {
        id: user.id.to_string(),
        name: user.name,
        r#type: i32::from(user.user_type.number()),
        create_time: Some(to_timestamp(user.create_time)),
        update_time: Some(to_timestamp(user.update_time)),
    }
}

fn to_timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

/// Maps a domain error to a gRPC status, following the same table as REST.
fn to_status(method: &str, error: Error) -> Status {
    crate::telemetry::log_error(&error);
    let message = error.to_string();
    match error {
        Error::InvalidArgument(violations) => {
            let violations: Vec<domain::FieldViolation> = violations
                .into_iter()
                .map(|violation| domain::FieldViolation::new(grpc_field_name(method, &violation.field), violation.description))
                .collect();
            let message = Error::InvalidArgument(violations.clone()).to_string();
            let mut details = ErrorDetails::new();
            for violation in violations {
                details.add_bad_request_violation(violation.field, violation.description);
            }
            Status::with_error_details(Code::InvalidArgument, message, details)
        }
        Error::NotFound(_) => Status::not_found(message),
        Error::IdempotencyKeyReused => Status::failed_precondition(message),
        Error::Unavailable(_) | Error::SchemaOutdated => Status::unavailable(message),
        Error::DeadlineExceeded => Status::deadline_exceeded(message),
        Error::PayloadTooLarge { .. } => Status::resource_exhausted(message),
        Error::Internal(_) => Status::internal(message),
    }
}

/// Renames the domain's field names to the protobuf field paths of `method`'s request.
fn grpc_field_name(method: &str, field: &str) -> String {
    let user_fields = matches!(method, "CreateUser" | "UpdateUser");
    match field {
        "name" if user_fields => "user.name".to_owned(),
        "type" if user_fields => "user.type".to_owned(),
        "pageSize" => "page_size".to_owned(),
        "pageToken" => "page_token".to_owned(),
        "body" => "user".to_owned(),
        other => other.to_owned(),
    }
}
