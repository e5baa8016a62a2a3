//! The `usersvc-migration` binary as a Kubernetes Job runs it: real processes
//! against real databases. MySQL and PostgreSQL cases run when `TEST_MYSQL_URL`
//! or `TEST_POSTGRES_URL` is set (see the service's integration tests).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};

fn migration_binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usersvc-migration"));
    command.env_clear().env("LOG_FORMAT", "json");
    command
}

fn run(url: &str, args: &[&str]) -> Output {
    migration_binary().env("DATABASE_URL", url).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_line(text: &str) -> &str {
    text.trim().lines().last().unwrap_or_default()
}

#[test]
fn unreachable_database_fails_after_deadline() {
    let started = Instant::now();
    // Port 1 on loopback refuses connections.
    let output = run("mysql://root:hunter2@127.0.0.1:1/users", &["up", "--database-wait-timeout", "2s"]);
    let elapsed = started.elapsed();

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        last_line(&text).starts_with("error: database mysql://root:****@127.0.0.1:1/users not reachable after 2s: "),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password never appears:\n{text}");
    assert!(text.contains("database not reachable yet"), "each retry is logged:\n{text}");
    assert!(elapsed >= Duration::from_secs(2), "gave up early: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "overran the deadline: {elapsed:?}");
}

#[test]
fn bad_settings_exit_2_with_one_line() {
    let cases = [
        (vec![("DATABASE_URL", "redis://u:secret@h/0")], "invalid DATABASE_URL \"redis://u:****@h/0\": unsupported scheme \"redis\""),
        (vec![("DATABASE_DRIVER", "mongo")], "invalid DATABASE_DRIVER \"mongo\""),
        (vec![("DATABASE_URL", "sqlite://x.db"), ("DATABASE_WAIT_TIMEOUT", "forever")], "invalid DATABASE_WAIT_TIMEOUT \"forever\""),
    ];
    for (env, expected) in cases {
        let output = migration_binary().envs(env.clone()).output().unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{env:?}: {text}");
        assert!(text.contains(expected), "{env:?}: {text}");
        assert!(!text.contains("secret"), "{text}");
    }
}

#[test]
fn sqlite_up_status_down() {
    let path = std::env::temp_dir().join(format!("usersvc-migration-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());

    let up = run(&url, &[]);
    assert!(up.status.success(), "{}", stderr(&up));
    let status = run(&url, &["status"]);
    let listing = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(listing.lines().all(|line| line.ends_with("\tApplied")), "{listing}");

    let down = run(&url, &["down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let status = run(&url, &["status"]);
    let listing = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(listing.lines().last().unwrap().ends_with("\tPending"), "{listing}");
    std::fs::remove_file(&path).ok();
}

/// Creates a uniquely named database on the server at `admin_url`, runs `check`
/// with its URL, and drops it.
async fn with_database(admin_url: &str, check: impl AsyncFnOnce(&str)) {
    let name = format!("usersvc_cli_{}", uuid_like());
    let admin = Database::connect(admin_url).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    check(&format!("{}/{name}", admin_url.trim_end_matches('/'))).await;
    let force = if admin_url.starts_with("postgres") { " WITH (FORCE)" } else { "" };
    admin.execute_unprepared(&format!("DROP DATABASE {name}{force}")).await.unwrap();
}

fn uuid_like() -> String {
    format!("{}_{}", std::process::id(), Instant::now().elapsed().as_nanos() ^ rand_seed())
}

fn rand_seed() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

async fn two_jobs_at_once(admin_variable: &str) {
    let Some(admin_url) = std::env::var(admin_variable).ok().filter(|url| !url.is_empty()) else {
        eprintln!("skipped: {admin_variable} is not set");
        return;
    };
    with_database(&admin_url, async |url| {
        let first = migration_binary().env("DATABASE_URL", url).spawn().unwrap();
        let second = migration_binary().env("DATABASE_URL", url).spawn().unwrap();
        let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
        assert!(first.status.success(), "{}", stderr(&first));
        assert!(second.status.success(), "{}", stderr(&second));

        let db = Database::connect(url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM seaql_migrations"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 3, "each migration is applied once");
        db.close().await.ok();
    })
    .await;
}

#[tokio::test]
async fn two_jobs_at_once_on_mysql() {
    two_jobs_at_once("TEST_MYSQL_URL").await;
}

#[tokio::test]
async fn two_jobs_at_once_on_postgres() {
    two_jobs_at_once("TEST_POSTGRES_URL").await;
}

#[tokio::test]
async fn wrong_password_fails_with_masked_line() {
    let Some(admin_url) = std::env::var("TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("skipped: TEST_POSTGRES_URL is not set");
        return;
    };
    // A user that does not exist is rejected like a wrong password, whatever the server's auth method.
    let url = admin_url.replacen("://", "://nobody_here:wrong-pass@", 1).replacen("postgres@", "", 1);
    let started = Instant::now();
    let output = run(&format!("{}/postgres", url.trim_end_matches('/')), &["--database-wait-timeout", "30s"]);

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "rejected credentials fail without waiting: {text}");
    assert!(last_line(&text).contains("rejected the user name or password"), "{text}");
    assert!(last_line(&text).contains("nobody_here:****@"), "{text}");
    assert!(!text.contains("wrong-pass"), "{text}");
}

#[test]
fn missing_password_is_named_in_the_log() {
    if std::env::var("TEST_POSTGRES_URL").map_or(true, |url| url.is_empty()) {
        eprintln!("skipped: TEST_POSTGRES_URL is not set");
        return;
    }
    // As when the password key is missing from a Kubernetes Secret: the user is set, the password is not.
    let output = migration_binary()
        .envs([
            ("DATABASE_DRIVER", "postgres"),
            ("DATABASE_HOST", "127.0.0.1"),
            ("DATABASE_NAME", "postgres"),
            ("DATABASE_USERNAME", "nobody_here"),
        ])
        .output()
        .unwrap();

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("DATABASE_USERNAME is set but DATABASE_PASSWORD is empty"), "{text}");
    assert!(last_line(&text).contains("rejected the user name or password"), "{text}");
}
