//! The HTTP application: the REST API, its OpenAPI document and Swagger UI, the
//! health and metrics endpoints, and the middleware every request passes through
//! (request id, body limit, error bodies, access log and metrics).

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode};
use poem::web::Data;
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use sea_orm::DatabaseConnection;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::rest::{self, error::into_status_response};
use crate::service::UserService;

/// Everything the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub service: Arc<UserService>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub db: Arc<DatabaseConnection>,
    pub max_connections: u32,
    pub body_limit: usize,
}

/// Builds the HTTP endpoint.
pub fn app(state: HttpState) -> impl Endpoint<Output = Response> {
    let api = rest::openapi_service(Arc::clone(&state.service));
    let docs = api.swagger_ui();
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();

    let body_limit = state.body_limit;
    let metrics = Arc::clone(&state.metrics);
    let health = Arc::clone(&state.health);
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", get(spec_json))
        .at("/openapi.yaml", get(spec_yaml))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_endpoint))
        .data(state)
        .catch_all_error(|error| async move { into_status_response(error) })
        .around(move |endpoint, request| {
            let metrics = Arc::clone(&metrics);
            let health = Arc::clone(&health);
            async move { Ok(observe(endpoint, request, body_limit, &metrics, &health).await) }
        })
}

/// Runs one request with a request id, the body limit, an access log line and metrics.
async fn observe<E: Endpoint<Output = Response>>(
    endpoint: Arc<E>,
    request: Request,
    body_limit: usize,
    metrics: &Metrics,
    health: &Health,
) -> Response {
    use tracing::Instrument;

    let started = Instant::now();
    let client_id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok());
    let request_id = crate::telemetry::request_id(client_id);
    let method = request.method().to_string();
    let route = route_label(request.uri().path());
    let span = tracing::info_span!("http", request_id = %request_id, method = %method, route);

    let mut response = handle(endpoint, request, route, body_limit, health, started)
        .instrument(span.clone())
        .await;

    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allowed) = allowed_methods(route)
    {
        response.headers_mut().insert(poem::http::header::ALLOW, HeaderValue::from_static(allowed));
    }
    let elapsed = started.elapsed();
    metrics.observe_http(&method, route, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "http request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Applies the schema gate, the `Grpc-Timeout` deadline and the body limit, then
/// calls the endpoint and turns any error into a Status body.
async fn handle<E: Endpoint<Output = Response>>(
    endpoint: Arc<E>,
    mut request: Request,
    route: &str,
    body_limit: usize,
    health: &Health,
    started: Instant,
) -> Response {
    use crate::domain::Error;
    use crate::rest::error::ApiError;

    if route.starts_with("/v1/") && !health.is_schema_current() {
        return ApiError(Error::SchemaOutdated).into_response();
    }
    let deadline = match request.headers().get("grpc-timeout") {
        Some(value) => match crate::deadline::parse_grpc_timeout(value.to_str().unwrap_or_default()) {
            Ok(timeout) => Some(tokio::time::Instant::from_std(started) + timeout),
            Err(error) => return ApiError(error).into_response(),
        },
        None => None,
    };
    if let Err(error) = limit_body(&mut request, body_limit).await {
        return into_status_response(error);
    }

    let call = endpoint.call(request);
    let result = match deadline {
        Some(deadline) => match crate::deadline::run_before(deadline, call).await {
            Some(result) => result,
            None => return ApiError(Error::DeadlineExceeded).into_response(),
        },
        None => call.await,
    };
    result.unwrap_or_else(into_status_response)
}

/// Reads the body up to the limit, so a request over it fails with 413 whether or
/// not it declares a Content-Length.
async fn limit_body(request: &mut Request, limit: usize) -> poem::Result<()> {
    let too_large = || {
        poem::Error::from_string(
            format!("request body is larger than the limit of {limit} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    if declared == Some(0) || request.method() == poem::http::Method::GET {
        return Ok(());
    }

    let body = request.take_body();
    let bytes = body.into_bytes_limit(limit).await.map_err(|error| match error {
        poem::error::ReadBodyError::PayloadTooLarge => too_large(),
        other => poem::Error::from_string(format!("failed to read the request body: {other}"), StatusCode::BAD_REQUEST),
    })?;
    request.set_body(Body::from(bytes));
    Ok(())
}

/// Returns the route template of a path, so metrics do not get a label per user id.
fn route_label(path: &str) -> &'static str {
    match path {
        "/v1/users" => "/v1/users",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        "/openapi.yaml" => "/openapi.yaml",
        path if path == "/docs" || path.starts_with("/docs/") => "/docs",
        path if path.strip_prefix("/v1/users/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/')) => {
            "/v1/users/{id}"
        }
        _ => "unmatched",
    }
}

/// Returns the methods a route serves, for the `Allow` header of a 405 response.
fn allowed_methods(route: &str) -> Option<&'static str> {
    match route {
        "/v1/users" => Some("GET, POST"),
        "/v1/users/{id}" => Some("GET, PATCH, DELETE"),
        "unmatched" => None,
        _ => Some("GET"),
    }
}

/// Liveness: 200 while the process can serve requests at all.
#[handler]
fn healthz() -> Response {
    json_response(StatusCode::OK, serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 when the database is reachable, the schema is current and no
/// shutdown has begun; 503 with the reason otherwise.
#[handler]
async fn readyz(state: Data<&HttpState>) -> Response {
    if state.health.is_ready() {
        json_response(StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        let reason = state.health.reason().await;
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reason": reason}),
        )
    }
}

#[handler]
fn metrics_endpoint(state: Data<&HttpState>) -> Response {
    let body = state.metrics.render(&state.db, state.max_connections);
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_label_folds_ids() {
        assert_eq!(route_label("/v1/users/0190b5a6-7d3e-7c6a-9f51-0c2d3e4f5a6b"), "/v1/users/{id}");
        assert_eq!(route_label("/v1/users"), "/v1/users");
        assert_eq!(route_label("/v1/users/a/b"), "unmatched");
        assert_eq!(route_label("/docs/index.css"), "/docs");
        assert_eq!(route_label("/random"), "unmatched");
    }
}
