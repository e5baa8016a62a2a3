//! Command line and environment configuration. Every setting has one name used
//! for the flag, the environment variable, the chart value and the docs, and is
//! checked once at start, so a bad value stops the process with one line that
//! names it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use migration::settings::{DatabaseArgs, DatabaseSettings, SettingsError, parse_duration, parse_in_range};

use crate::telemetry::LogFormat;

/// Users service: REST on the HTTP port, gRPC on the gRPC port.
#[derive(Parser, Debug)]
#[command(name = "usersvc", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a running instance: exit 0 when every URL returns 2xx and gRPC health is SERVING
    Healthcheck(HealthcheckArgs),
    /// Print the OpenAPI document of the REST API as YAML (the content of openapi.yaml)
    Openapi,
}

/// Flags of the server; each has an environment variable of the same name.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// HTTP listen address (REST, Swagger UI, health and metrics)
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,

    /// gRPC listen address
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:6565")]
    pub grpc_addr: String,

    /// Largest accepted request body in bytes, for HTTP and gRPC (1024 to 67108864)
    #[arg(long, env = "HTTP_BODY_LIMIT", default_value = "65536")]
    pub http_body_limit: String,

    /// Log format: text or json [default: text on a terminal, json otherwise]
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,

    /// Pause between turning readiness off and closing the listeners, e.g. 5s
    #[arg(long, env = "SHUTDOWN_DELAY", default_value = "5s")]
    pub shutdown_delay: String,

    /// Maximum wait for in-flight requests after the listeners close, e.g. 30s
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: String,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct HealthcheckArgs {
    /// URL that must return 2xx, such as http://127.0.0.1:8080/readyz (repeatable)
    #[arg(long = "http-url")]
    pub http_urls: Vec<String>,

    /// gRPC endpoint whose health service must report SERVING, such as http://127.0.0.1:6565
    #[arg(long)]
    pub grpc_endpoint: Option<String>,

    /// Service name to check with the gRPC health service; empty checks the whole server
    #[arg(long, default_value = "")]
    pub grpc_service: String,

    /// Maximum wait for each check, e.g. 5s
    #[arg(long, default_value = "5s")]
    pub timeout: String,
}

/// Checked server settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub body_limit: usize,
    pub log_format: LogFormat,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub database: DatabaseSettings,
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        Ok(Settings {
            http_addr: parse_addr("HTTP_ADDR", &self.http_addr)?,
            grpc_addr: parse_addr("GRPC_ADDR", &self.grpc_addr)?,
            body_limit: parse_in_range("HTTP_BODY_LIMIT", &self.http_body_limit, 1024..=64 * 1024 * 1024)?,
            log_format: LogFormat::parse(self.log_format.as_deref()).map_err(SettingsError)?,
            shutdown_delay: parse_duration("SHUTDOWN_DELAY", &self.shutdown_delay)?,
            shutdown_timeout: parse_duration("SHUTDOWN_TIMEOUT", &self.shutdown_timeout)?,
            database: self.database.resolve()?,
        })
    }
}

fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, SettingsError> {
    let invalid = || {
        SettingsError(format!(
            "invalid {setting} {value:?}: expected HOST:PORT such as 0.0.0.0:8080, [::]:8080 or localhost:8080"
        ))
    };
    if let Ok(addr) = value.trim().parse() {
        return Ok(addr);
    }
    value
        .trim()
        .to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}
