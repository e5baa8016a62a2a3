//! The users service as a library: [`main`] parses the configuration and runs
//! [`startup::Application`], which tests also start on free ports.
//!
//! Requests enter through [`rest`] (poem-openapi) or [`grpc`] (tonic), become
//! [`domain`] types, and are served by [`service::UserService`] over
//! [`store::Store`] (SeaORM). [`health`], [`metrics`] and [`telemetry`] cover
//! operations.

pub mod config;
pub mod deadline;
pub mod domain;
pub mod grpc;
pub mod health;
mod healthcheck;
pub mod http;
pub mod metrics;
pub mod rest;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command};

/// Entry point of the `usersvc` binary. Exit codes: 0 after a clean shutdown,
/// 1 when the service fails, 2 for a configuration error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    if let Some(Command::Openapi) = &cli.command {
        print!("{}", rest::openapi_yaml());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Healthcheck(args)) = &cli.command
        && args.http_urls.is_empty()
        && args.grpc_endpoint.is_none()
    {
        eprintln!("error: nothing to check: pass --http-url, --grpc-endpoint or both");
        return ExitCode::from(2);
    }
    if let Some(Command::Healthcheck(args)) = &cli.command {
        return match runtime.block_on(healthcheck::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("unhealthy: {message}");
                ExitCode::FAILURE
            }
        };
    }

    let settings = match cli.serve.resolve() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);

    let result = runtime.block_on(async {
        let application = startup::Application::build(settings).await?;
        application.run_until(startup::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            tracing::error!(error = %message, "usersvc failed");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
