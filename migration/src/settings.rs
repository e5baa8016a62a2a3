//! Database settings shared by the service and the migration binary: one URL, or
//! the Go service's `DATABASE_DRIVER`/`HOST`/`PORT`/`NAME`/`USERNAME`/`PASSWORD`
//! parts, plus pool limits. Values are checked once here, and every error names
//! the setting, shows its value with the password masked, and lists what is accepted.

use std::time::Duration;

use clap::Args;
use sea_orm::{ConnectOptions, DbBackend};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The embedded database used when neither a URL nor a driver is set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://usersvc.db?mode=rwc";

const ACCEPTED_URLS: &str = "expected mysql://USER:PASSWORD@HOST:3306/NAME, \
     postgres://USER:PASSWORD@HOST:5432/NAME or sqlite://PATH?mode=rwc";
const ACCEPTED_DRIVERS: &str = "mysql, mariadb, postgres, postgresql or sqlite";

/// Database flags; each has an environment variable of the same name.
#[derive(Args, Clone, Debug, Default)]
pub struct DatabaseArgs {
    /// Database URL: mysql://, postgres:// or sqlite:// [default: sqlite://usersvc.db?mode=rwc
    /// unless DATABASE_DRIVER is set]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Driver used to build the URL when DATABASE_URL is unset: mysql, mariadb, postgres,
    /// postgresql or sqlite
    #[arg(long, env = "DATABASE_DRIVER")]
    pub database_driver: Option<String>,

    /// Database host name, used with DATABASE_DRIVER
    #[arg(long, env = "DATABASE_HOST")]
    pub database_host: Option<String>,

    /// Database port, used with DATABASE_DRIVER [default: 3306 for MySQL, 5432 for PostgreSQL]
    #[arg(long, env = "DATABASE_PORT")]
    pub database_port: Option<String>,

    /// Database name (for sqlite, the file path), used with DATABASE_DRIVER
    #[arg(long, env = "DATABASE_NAME")]
    pub database_name: Option<String>,

    /// Database user name, used with DATABASE_DRIVER
    #[arg(long, env = "DATABASE_USERNAME")]
    pub database_username: Option<String>,

    /// Database password, used with DATABASE_DRIVER; URL-escaped when the URL is built
    #[arg(long, env = "DATABASE_PASSWORD", hide_env_values = true)]
    pub database_password: Option<String>,

    /// Maximum open database connections per process (1 to 1000)
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value = "10")]
    pub database_max_connections: String,

    /// Maximum wait for a free pooled connection, e.g. 3s or 500ms; the service returns
    /// 503 when it runs out
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT", default_value = "3s")]
    pub database_acquire_timeout: String,
}

/// A configuration value that was rejected. Its message is one line that names
/// the setting, shows the value (passwords masked) and lists what is accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// Checked database settings.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    url: SecretString,
    /// The URL with its password replaced by `****`, safe to log.
    pub masked_url: String,
    pub backend: DbBackend,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// The URL was built from parts with a user name but no password, as when a
    /// Kubernetes Secret lacks the password key.
    pub password_missing: bool,
}

impl DatabaseArgs {
    /// Checks the arguments and builds the connection URL.
    pub fn resolve(&self) -> Result<DatabaseSettings, SettingsError> {
        let url = match (non_empty(&self.database_url), non_empty(&self.database_driver)) {
            (Some(url), _) => url.to_owned(),
            (None, Some(driver)) => self.url_from_parts(driver)?,
            (None, None) => DEFAULT_DATABASE_URL.to_owned(),
        };
        let (url, backend) = parse_url(&url)?;

        let max_connections = parse_in_range(
            "DATABASE_MAX_CONNECTIONS",
            &self.database_max_connections,
            1..=1000,
        )?;
        let acquire_timeout = parse_duration("DATABASE_ACQUIRE_TIMEOUT", &self.database_acquire_timeout)?;

        let password_missing = non_empty(&self.database_url).is_none()
            && non_empty(&self.database_driver).is_some()
            && non_empty(&self.database_username).is_some()
            && non_empty(&self.database_password).is_none();
        Ok(DatabaseSettings {
            password_missing,
            masked_url: mask_url(&url),
            url: SecretString::from(url),
            backend,
            max_connections,
            acquire_timeout,
        })
    }

    fn url_from_parts(&self, driver: &str) -> Result<String, SettingsError> {
        let (scheme, default_port) = match driver.to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => ("mysql", 3306),
            "postgres" | "postgresql" => ("postgres", 5432),
            "sqlite" | "sqlite3" => ("sqlite", 0),
            _ => {
                return Err(SettingsError(format!(
                    "invalid DATABASE_DRIVER {driver:?}: expected {ACCEPTED_DRIVERS}"
                )));
            }
        };
        let name = non_empty(&self.database_name);
        let host = non_empty(&self.database_host).or(if scheme == "sqlite" { Some("") } else { None });
        let (Some(name), Some(host)) = (name, host) else {
            let missing: Vec<&str> = [("DATABASE_HOST", host.is_none()), ("DATABASE_NAME", name.is_none())]
                .into_iter()
                .filter_map(|(setting, absent)| absent.then_some(setting))
                .collect();
            let verb = if missing.len() == 1 { "is" } else { "are" };
            return Err(SettingsError(format!(
                "{} {verb} required when DATABASE_DRIVER is {driver:?}",
                missing.join(" and ")
            )));
        };
        if scheme == "sqlite" {
            return Ok(format!("sqlite://{name}?mode=rwc"));
        }

        let port: u16 = match non_empty(&self.database_port) {
            Some(port) => parse_in_range("DATABASE_PORT", port, 1..=65535)?,
            None => default_port,
        };

        let invalid_host =
            |_| SettingsError(format!("invalid DATABASE_HOST {host:?}: expected a host name or IP address"));
        let mut url = Url::parse(&format!("{scheme}://{host}")).map_err(invalid_host)?;
        if url.host_str().is_none_or(str::is_empty) || url.path() != "" && url.path() != "/" {
            return Err(invalid_host(url::ParseError::EmptyHost));
        }
        url.set_port(Some(port)).map_err(|()| invalid_host(url::ParseError::InvalidPort))?;
        url.set_path(name);
        if let Some(username) = non_empty(&self.database_username) {
            // Url percent-escapes the user name and password, so any character is allowed.
            url.set_username(username)
                .map_err(|()| SettingsError(format!("invalid DATABASE_USERNAME {username:?}")))?;
            if let Some(password) = non_empty(&self.database_password) {
                url.set_password(Some(password))
                    .map_err(|()| SettingsError("invalid DATABASE_PASSWORD ****".to_owned()))?;
            }
        }
        Ok(url.into())
    }
}

impl DatabaseSettings {
    /// Logs a warning about settings that are valid but probably not meant.
    pub fn warn_about_gaps(&self) {
        if self.password_missing {
            tracing::warn!("DATABASE_USERNAME is set but DATABASE_PASSWORD is empty; connecting without a password");
        }
    }

    /// Returns the connection URL, which may contain a password.
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// Builds SeaORM connection options: a pool whose requests wait at most the
    /// acquire timeout for a connection, logging statements only at debug level,
    /// and SQLite in write-ahead-log mode.
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new(self.url().to_owned());
        options
            .max_connections(self.max_connections)
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            .connect_timeout(self.acquire_timeout.max(Duration::from_secs(5)))
            .sqlx_logging_level(tracing::log::LevelFilter::Debug);
        if self.backend == DbBackend::Sqlite {
            // Write-ahead logging lets reads run beside a write, and NORMAL sync is
            // durable across process crashes with one fsync per checkpoint instead
            // of one per transaction (https://www.sqlite.org/wal.html).
            options.map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            });
        }
        options
    }
}

impl DatabaseSettings {
    /// Opens and closes one connection outside any pool, so a failure reports its
    /// real cause (refused, unknown host, access denied) instead of a pool timeout.
    pub async fn probe(&self, timeout: Duration) -> Result<(), ProbeError> {
        use sea_orm::sqlx::{self, Connection};

        let url = self.url();
        let attempt = async {
            match self.backend {
                DbBackend::MySql => sqlx::MySqlConnection::connect(url).await?.close().await,
                DbBackend::Postgres => sqlx::PgConnection::connect(url).await?.close().await,
                _ => sqlx::SqliteConnection::connect(url).await?.close().await,
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ProbeError {
                // SQLSTATE class 28 is "invalid authorization" on MySQL and PostgreSQL.
                credentials_rejected: error
                    .as_database_error()
                    .and_then(|database_error| database_error.code())
                    .is_some_and(|code| code.starts_with("28")),
                message: error.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
            }),
            Err(_) => Err(ProbeError {
                message: format!("no response within {}", humantime::format_duration(timeout)),
                credentials_rejected: false,
            }),
        }
    }
}

/// The reason a probe connection failed.
#[derive(Clone, Debug)]
pub struct ProbeError {
    /// The driver's error on one line.
    pub message: String,
    /// The server rejected the user name or password, which waiting does not fix.
    pub credentials_rejected: bool,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// Returns the URL with the password part replaced by `****`. It works on text
/// that is not a valid URL as well, so even a rejected value can be shown in an
/// error. The masked part is the text between the first ':' of the user info and
/// the last '@' before the path.
pub fn mask_url(raw: &str) -> String {
    let authority_start = raw.find("://").map_or(0, |index| index + 3);
    let rest = &raw[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return raw.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}****{}",
            &raw[..authority_start],
            &authority[..=colon],
            &rest[at..]
        ),
        None => raw.to_owned(),
    }
}

fn parse_url(raw: &str) -> Result<(String, DbBackend), SettingsError> {
    let invalid = |reason: &str| {
        SettingsError(format!(
            "invalid DATABASE_URL {:?}: {reason}; {ACCEPTED_URLS}",
            mask_url(raw)
        ))
    };
    let url = Url::parse(raw).map_err(|error| invalid(&error.to_string()))?;

    let backend = match url.scheme() {
        "mysql" | "mariadb" => DbBackend::MySql,
        "postgres" | "postgresql" => DbBackend::Postgres,
        "sqlite" => DbBackend::Sqlite,
        scheme => return Err(invalid(&format!("unsupported scheme {scheme:?}"))),
    };
    if backend != DbBackend::Sqlite && url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("missing host"));
    }
    // sqlx accepts MariaDB URLs only with the mysql scheme.
    let normalised = match raw.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => raw.to_owned(),
    };
    Ok((normalised, backend))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

/// Parses an integer setting and checks that it lies in `range`.
pub fn parse_in_range<T>(setting: &str, value: &str, range: std::ops::RangeInclusive<T>) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match value.trim().parse::<T>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(SettingsError(format!(
            "invalid {setting} {value:?}: expected a whole number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

/// Parses a duration setting such as `5s`, `500ms` or `2m`.
pub fn parse_duration(setting: &str, value: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(value.trim()).map_err(|_| {
        SettingsError(format!(
            "invalid {setting} {value:?}: expected a duration such as 500ms, 5s or 2m"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> DatabaseArgs {
        let mut args = DatabaseArgs {
            database_max_connections: "10".into(),
            database_acquire_timeout: "3s".into(),
            ..DatabaseArgs::default()
        };
        for (key, value) in pairs {
            let value = Some((*value).to_owned());
            match *key {
                "url" => args.database_url = value,
                "driver" => args.database_driver = value,
                "host" => args.database_host = value,
                "port" => args.database_port = value,
                "name" => args.database_name = value,
                "username" => args.database_username = value,
                "password" => args.database_password = value,
                other => panic!("unknown key {other}"),
            }
        }
        args
    }

    #[test]
    fn default_is_embedded_sqlite() {
        let settings = args(&[]).resolve().unwrap();
        assert_eq!(settings.url(), DEFAULT_DATABASE_URL);
        assert_eq!(settings.backend, DbBackend::Sqlite);
    }

    #[test]
    fn parts_build_url_with_escaped_password() {
        let settings = args(&[
            ("driver", "mysql"),
            ("host", "db.example"),
            ("name", "users"),
            ("username", "svc"),
            ("password", "p@ss:w/rd"),
        ])
        .resolve()
        .unwrap();
        assert_eq!(settings.url(), "mysql://svc:p%40ss%3Aw%2Frd@db.example:3306/users");
        assert_eq!(settings.masked_url, "mysql://svc:****@db.example:3306/users");
    }

    #[test]
    fn mariadb_driver_and_scheme_map_to_mysql() {
        let from_parts = args(&[("driver", "mariadb"), ("host", "h"), ("name", "n")]).resolve().unwrap();
        assert_eq!(from_parts.url(), "mysql://h:3306/n");
        let from_url = args(&[("url", "mariadb://u:secret@h/n")]).resolve().unwrap();
        assert_eq!(from_url.url(), "mysql://u:secret@h/n");
        assert_eq!(from_url.backend, DbBackend::MySql);
    }

    #[test]
    fn unknown_driver_is_named() {
        let error = args(&[("driver", "oracle")]).resolve().unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid DATABASE_DRIVER \"oracle\": expected mysql, mariadb, postgres, postgresql or sqlite"
        );
    }

    #[test]
    fn bad_url_error_masks_password() {
        let error = args(&[("url", "oracle://scott:tiger@db/orcl")]).resolve().unwrap_err().to_string();
        assert!(error.starts_with("invalid DATABASE_URL \"oracle://scott:****@db/orcl\": unsupported scheme"), "{error}");
        assert!(!error.contains("tiger"), "{error}");
    }

    #[test]
    fn unparsable_url_error_masks_password() {
        let error = args(&[("url", "mysql://root:hunter2@exa mple:3306/db")]).resolve().unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("root:****@"), "{error}");
    }

    #[test]
    fn url_without_scheme_is_masked() {
        let error = args(&[("url", "root:s3cretPW@127.0.0.1:3306/db")]).resolve().unwrap_err().to_string();
        assert!(error.contains("\"root:****@127.0.0.1:3306/db\""), "{error}");
        assert!(!error.contains("s3cretPW"), "{error}");
        assert_eq!(mask_url("mysql://u:p@ss@h/db"), "mysql://u:****@h/db");
        assert_eq!(mask_url("postgres://h:5432/db"), "postgres://h:5432/db");
        assert_eq!(mask_url("sqlite://usersvc.db?mode=rwc"), "sqlite://usersvc.db?mode=rwc");
    }

    #[test]
    fn missing_host_and_bad_port_are_named() {
        let error = args(&[("driver", "postgres"), ("name", "n")]).resolve().unwrap_err().to_string();
        assert_eq!(error, "DATABASE_HOST is required when DATABASE_DRIVER is \"postgres\"");
        let error = args(&[("driver", "mysql")]).resolve().unwrap_err().to_string();
        assert_eq!(error, "DATABASE_HOST and DATABASE_NAME are required when DATABASE_DRIVER is \"mysql\"");
        let error = args(&[("driver", "postgres"), ("name", "n"), ("host", "h"), ("port", "99999")])
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(error, "invalid DATABASE_PORT \"99999\": expected a whole number from 1 to 65535");
    }

    #[test]
    fn bad_durations_and_pool_sizes_are_named() {
        let mut bad = args(&[]);
        bad.database_acquire_timeout = "soon".into();
        assert_eq!(
            bad.resolve().unwrap_err().to_string(),
            "invalid DATABASE_ACQUIRE_TIMEOUT \"soon\": expected a duration such as 500ms, 5s or 2m"
        );
        let mut bad = args(&[]);
        bad.database_max_connections = "0".into();
        assert_eq!(
            bad.resolve().unwrap_err().to_string(),
            "invalid DATABASE_MAX_CONNECTIONS \"0\": expected a whole number from 1 to 1000"
        );
    }
}
