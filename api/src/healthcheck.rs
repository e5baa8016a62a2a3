//! `usersvc healthcheck`: a probe client for `helm test` pods and container
//! health checks, so they need no image other than the service's own.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::config::HealthcheckArgs;

/// Runs every check and returns the first failure as one line.
pub async fn run(args: &HealthcheckArgs) -> Result<(), String> {
    let timeout = migration::settings::parse_duration("--timeout", &args.timeout).map_err(|error| error.to_string())?;

    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|error| format!("failed to build the HTTP client: {error}"))?;
    for url in &args.http_urls {
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|error| format!("GET {url} failed: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url} returned {}", response.status()));
        }
        println!("GET {url}: {}", response.status());
    }

    if let Some(endpoint) = &args.grpc_endpoint {
        let status = check_grpc(endpoint, &args.grpc_service, timeout).await?;
        if status != ServingStatus::Serving {
            return Err(format!("gRPC health of {:?} at {endpoint} is {}", args.grpc_service, status.as_str_name()));
        }
        println!("gRPC health of {:?} at {endpoint}: SERVING", args.grpc_service);
    }
    Ok(())
}

async fn check_grpc(endpoint: &str, service: &str, timeout: Duration) -> Result<ServingStatus, String> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|error| format!("invalid --grpc-endpoint {endpoint:?}: {error}; expected http://HOST:PORT"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|error| format!("failed to connect to {endpoint}: {error}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .map_err(|status| format!("gRPC health check at {endpoint} failed: {}", status.message()))?;
    Ok(response.into_inner().status())
}
