//! REST facade: the `/v1/users` operations, defined with poem-openapi so the
//! OpenAPI document is generated from this code. Handlers parse requests into
//! domain types, call [`UserService`] and shape the result; every failure goes
//! through [`error::ApiError`].

pub mod error;
mod schema;

use std::sync::Arc;

use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, LicenseObject, OpenApi, OpenApiService, Tags};
use uuid::Uuid;

use crate::domain::{self, ListQuery, NewUser, UserPatch, UserType};
use crate::service::UserService;
use error::ApiError;
use schema::{JsonBody, ListUsersResponse, UserBody, UserCreate, UserTypeFilter, UserUpdate};

#[derive(Tags)]
enum ApiTags {
    /// Create, read, list, update and delete users.
    Users,
}

/// Header that makes a create request safe to retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The users REST API.
pub struct UsersApi {
    service: Arc<UserService>,
}

#[derive(ApiResponse)]
enum CreateUserResponse {
    /// The user was created. A retry with the same `Idempotency-Key` and body
    /// returns this same response again.
    #[oai(status = 201)]
    Created(
        Json<UserBody>,
        /// Path of the new user: `/v1/users/{id}`.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
enum ListUsersResult {
    /// One page of users in creation order.
    #[oai(status = 200)]
    Ok(Json<ListUsersResponse>),
}

#[derive(ApiResponse)]
enum UserResult {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[derive(ApiResponse)]
enum DeleteUserResult {
    /// The user was deleted.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Users")]
impl UsersApi {
    /// Create a user
    ///
    /// Creates a user from a name and a type. `type` accepts the enum name or its
    /// number (`1` or `2`). Send an `Idempotency-Key` to make retries safe. A retry
    /// with the same key and body returns the first result without creating a
    /// second user, even if that user was deleted since. The same key with another
    /// body is rejected with 422.
    #[oai(path = "/users", method = "post", operation_id = "CreateUser")]
    async fn create_user(
        &self,
        body: Json<JsonBody<UserCreate>>,
        /// Client-chosen key that makes retries safe: 1 to 255 printable ASCII
        /// characters without spaces, kept for at least 24 hours. An empty value
        /// counts as no key.
        #[oai(name = "Idempotency-Key", validator(max_length = 255, pattern = "^[!-~]*$"))]
        _idempotency_key: Header<Option<String>>,
        request: &Request,
    ) -> Result<CreateUserResponse, ApiError> {
        // The key is read from the raw request: the `Header` parameter above only
        // documents it, because poem-openapi drops a value with bytes outside
        // visible ASCII, and a dropped key would turn a retry into a second user.
        let idempotency_key = match request.headers().get(IDEMPOTENCY_KEY) {
            Some(raw) => domain::parse_idempotency_key(IDEMPOTENCY_KEY, &String::from_utf8_lossy(raw.as_bytes()))?,
            None => None,
        };
        let new_user = NewUser::from_json(&body.0.0)?;

        let user = self.service.create(new_user, idempotency_key).await?;
        let location = format!("/v1/users/{}", user.id);
        Ok(CreateUserResponse::Created(Json(user.into()), location))
    }

    /// List users
    ///
    /// Lists users in creation order, one page at a time. Pass the response's
    /// `nextPageToken` as `pageToken` to get the next page, with the same `type`
    /// filter. An empty `nextPageToken` marks the last page. A page token that this
    /// service did not issue is rejected with 400.
    #[oai(path = "/users", method = "get", operation_id = "ListUsers")]
    async fn list_users(
        &self,
        /// Maximum users per page: 0 or absent means 50, values over 1000 are treated as 1000.
        #[oai(name = "pageSize", validator(minimum(value = "0")))]
        page_size: Query<Option<i64>>,
        /// `nextPageToken` of the previous page, unchanged.
        #[oai(name = "pageToken")]
        page_token: Query<Option<String>>,
        /// Only users of this type: `USER_TYPE_ADMIN` or `USER_TYPE_USER` (the numbers 1 and 2 are accepted too).
        #[oai(name = "type")]
        user_type: Query<Option<UserTypeFilter>>,
    ) -> Result<ListUsersResult, ApiError> {
        let filter = match user_type.0 {
            Some(raw) => Some(parse_type_filter(&raw.0)?),
            None => None,
        };
        let query = ListQuery::parse(page_size.0, page_token.0.as_deref(), filter)?;

        let page = self.service.list(query).await?;
        Ok(ListUsersResult::Ok(Json(page.into())))
    }

    /// Get a user
    ///
    /// Returns the user with this id.
    #[oai(path = "/users/:id", method = "get", operation_id = "GetUser")]
    async fn get_user(
        &self,
        /// User id (UUID).
        #[oai(name = "id")]
        id: Path<Uuid>,
    ) -> Result<UserResult, ApiError> {
        let user = self.service.get(id.0).await?;
        Ok(UserResult::Ok(Json(user.into())))
    }

    /// Update a user
    ///
    /// Changes the fields present in the body and leaves the others as they are.
    /// At least one of `name` and `type` is required.
    #[oai(path = "/users/:id", method = "patch", operation_id = "UpdateUser")]
    async fn update_user(
        &self,
        /// User id (UUID).
        #[oai(name = "id")]
        id: Path<Uuid>,
        body: Json<JsonBody<UserUpdate>>,
    ) -> Result<UserResult, ApiError> {
        let patch = UserPatch::from_json(&body.0.0)?;

        let user = self.service.update(id.0, patch).await?;
        Ok(UserResult::Ok(Json(user.into())))
    }

    /// Delete a user
    ///
    /// Deletes the user with this id. Deleting a user that does not exist, or no
    /// longer exists, returns 404.
    #[oai(path = "/users/:id", method = "delete", operation_id = "DeleteUser")]
    async fn delete_user(
        &self,
        /// User id (UUID).
        #[oai(name = "id")]
        id: Path<Uuid>,
    ) -> Result<DeleteUserResult, ApiError> {
        self.service.delete(id.0).await?;
        Ok(DeleteUserResult::NoContent)
    }
}

fn parse_type_filter(raw: &str) -> Result<UserType, domain::Error> {
    let value = match raw.trim().parse::<i64>() {
        Ok(number) => serde_json::Value::from(number),
        Err(_) => serde_json::Value::from(raw.trim()),
    };
    UserType::parse_input(&value).map_err(|description| domain::Error::invalid_request("type", description))
}

/// Builds the OpenAPI service for the users API, with a relative server URL so
/// Swagger UI works behind any host name or port-forward.
pub fn openapi_service(service: Arc<UserService>) -> OpenApiService<UsersApi, ()> {
    OpenApiService::new(UsersApi { service }, "usersvc", env!("CARGO_PKG_VERSION"))
        .description(
            "Create, read, list, update and delete users. The same operations are served over \
             gRPC as `com.example.user.service.v1.UserService`. Errors use the google.rpc.Status \
             shape: `{\"code\", \"message\", \"details\"}`.",
        )
        .license(LicenseObject::new("Apache-2.0").url("https://www.apache.org/licenses/LICENSE-2.0"))
        .server("/")
}

/// Renders the OpenAPI document as YAML without a database, for `usersvc openapi`
/// and the check that `openapi.yaml` matches the code.
pub fn openapi_yaml() -> String {
    let store = crate::store::Store::new(Arc::new(sea_orm::DatabaseConnection::default()));
    openapi_service(Arc::new(UserService::new(store))).spec_yaml()
}
