//! Logging: the tracing subscriber, request ids, and how caught errors are logged.
//! Logs carry ids, routes, status codes and error causes, never user names or
//! database passwords.

use std::io::IsTerminal;

use crate::domain::Error;

/// Output format of the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`; with no value, text on a terminal and JSON otherwise.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") if std::io::stdout().is_terminal() => Ok(Self::Text),
            None | Some("") => Ok(Self::Json),
            Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!("invalid LOG_FORMAT {other:?}: expected text or json")),
        }
    }
}

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second call, as in tests that start several servers, keeps the first subscriber.
    drop(result);
}

/// Returns the client's request id when it is 1 to 128 printable ASCII
/// characters, so a hostile header cannot inject line breaks or flood the logs,
/// and a new UUIDv7 otherwise.
pub fn request_id(client_id: Option<&str>) -> String {
    match client_id {
        Some(id) if (1..=128).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_graphic()) => id.to_owned(),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// Logs an operation error: server-side failures with their cause chain at
/// error level, client mistakes at info level with the message the client got.
pub fn log_error(error: &Error) {
    match error {
        Error::Internal(_) => tracing::error!(error = cause_chain(error), "request failed"),
        Error::Unavailable(_) => tracing::warn!(error = cause_chain(error), "database unavailable"),
        Error::SchemaOutdated => tracing::warn!("request rejected: the database schema is not migrated yet"),
        other => tracing::info!(error = %other, "request rejected"),
    }
}

/// Renders an error with its causes, for the log only: the client-facing
/// message of internal errors hides them.
pub fn cause_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
