//! Migrations on every backend: adopting the Go service's table, reverting every
//! step, concurrent runs, and a service that waits for its schema.

use std::time::Duration;

use migration::{Direction, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{AppOptions, Backend, TestDatabase, count_rows, start};
use crate::on_every_backend;

on_every_backend!(
    migration_adopts_go_table_keeping_rows,
    migration_rejects_non_uuid_ids_unchanged,
    every_migration_reverts,
    concurrent_runs_apply_each_migration_once,
    service_waits_for_migrated_schema,
    newer_schema_keeps_older_binary_working,
);

const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

async fn create_go_table(db: &DatabaseConnection) {
    let type_column = match db.get_database_backend() {
        DbBackend::MySql => "SMALLINT UNSIGNED",
        _ => "SMALLINT",
    };
    db.execute_unprepared(&format!("CREATE TABLE users (id VARCHAR(40), name VARCHAR(255), type {type_column})"))
        .await
        .unwrap();
}

async fn insert_go_row(db: &DatabaseConnection, id: Option<&str>, name: Option<&str>, user_type: Option<i16>) {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "INSERT INTO users (id, name, type) VALUES ($1, $2, $3)",
        _ => "INSERT INTO users (id, name, type) VALUES (?, ?, ?)",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [id.map(str::to_owned).into(), name.map(str::to_owned).into(), user_type.into()],
    ))
    .await
    .unwrap();
}

async fn migration_adopts_go_table_keeping_rows(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let db = database.connect().await;
    create_go_table(&db).await;
    let uppercase_id = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
    let plain_id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    insert_go_row(&db, Some(uppercase_id), Some("Alice"), Some(1)).await;
    insert_go_row(&db, Some(plain_id), Some("Bob"), Some(2)).await;
    insert_go_row(&db, None, None, None).await;
    insert_go_row(&db, Some(""), Some(""), Some(0)).await;

    migration::run(&db, Direction::Up, LOCK_TIMEOUT).await.expect("migration failed");
    assert_eq!(count_rows(&db, "users").await, 4, "no row was lost");
    db.close().await.ok();

    let app = start(database, AppOptions::default()).await;
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
    let listed: Value = app.http.get(app.url("/v1/users")).send().await.unwrap().json().await.unwrap();
    let users = listed["users"].as_array().unwrap();
    assert_eq!(users.len(), 4);

    let find = |id: &str| users.iter().find(|user| user["id"] == id).cloned();
    let alice = find(&uppercase_id.to_lowercase()).expect("the uppercase id is kept, in lowercase");
    assert_eq!(alice["name"], "Alice");
    assert_eq!(alice["type"], "USER_TYPE_ADMIN");
    assert_eq!(find(plain_id).unwrap()["name"], "Bob");

    let untyped: Vec<&Value> = users.iter().filter(|user| user["type"] == "USER_TYPE_UNKNOWN").collect();
    assert_eq!(untyped.len(), 2, "NULL and 0 types read as USER_TYPE_UNKNOWN");
    for user in untyped {
        assert_eq!(user["name"], "", "NULL and empty names read as empty text");
        let id = user["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "missing ids were assigned: {id}");
        let path = format!("/v1/users/{id}");
        assert_eq!(app.http.get(app.url(&path)).send().await.unwrap().status(), 200);
        let updated = app.http.patch(app.url(&path)).json(&json!({"type": 2})).send().await.unwrap();
        assert_eq!(updated.status(), 200, "adopted rows stay updatable");
    }
}

async fn migration_rejects_non_uuid_ids_unchanged(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let db = database.connect().await;
    create_go_table(&db).await;
    insert_go_row(&db, Some("42"), Some("Legacy"), Some(1)).await;
    insert_go_row(&db, None, Some("No id"), Some(2)).await;

    let error = migration::run(&db, Direction::Up, LOCK_TIMEOUT).await.unwrap_err().to_string();

    assert!(error.contains("1 row(s) in users have an id that is not a UUID"), "{error}");
    assert!(error.contains("\"42\""), "{error}");
    let nulls = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM users WHERE id IS NULL"))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(nulls, 1, "nothing changed before the migration stopped");
    assert_eq!(count_rows(&db, "users").await, 2);
}

async fn every_migration_reverts(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let db = database.connect().await;
    migration::run(&db, Direction::Up, LOCK_TIMEOUT).await.unwrap();
    let total = migration::Migrator::migrations().len();
    assert!(migration::pending_migrations(&db).await.unwrap().is_empty());

    for reverted in 1..=total {
        migration::run(&db, Direction::Down, LOCK_TIMEOUT).await.unwrap();
        assert_eq!(migration::pending_migrations(&db).await.unwrap().len(), reverted);
    }
    let users_table = db.execute_unprepared("SELECT COUNT(*) FROM users").await;
    assert!(users_table.is_err(), "the last down drops the users table");

    migration::run(&db, Direction::Up, LOCK_TIMEOUT).await.unwrap();
    assert!(migration::pending_migrations(&db).await.unwrap().is_empty());
}

async fn concurrent_runs_apply_each_migration_once(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let first = database.connect().await;
    let second = database.connect().await;

    let (first_result, second_result) = tokio::join!(
        migration::run(&first, Direction::Up, LOCK_TIMEOUT),
        migration::run(&second, Direction::Up, LOCK_TIMEOUT),
    );

    first_result.expect("first run failed");
    second_result.expect("second run failed");
    let applied = count_rows(&first, "seaql_migrations").await;
    assert_eq!(applied, migration::Migrator::migrations().len() as i64, "each migration is recorded once");
}

async fn service_waits_for_migrated_schema(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    if backend == Backend::Sqlite {
        // The embedded database is migrated by the service itself at start.
        let app = start(database, AppOptions { migrate: false, ..AppOptions::default() }).await;
        app.wait_for_readiness(200, Duration::from_secs(10)).await;
        return;
    }
    let app = start(database, AppOptions { migrate: false, ..AppOptions::default() }).await;

    let readiness = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(readiness.status(), 503);
    let body: Value = readiness.json().await.unwrap();
    assert!(body["reason"].as_str().unwrap().contains("migration(s) pending"), "{body}");
    let rejected = app.post_json(&json!({"name": "Early", "type": 1})).await;
    assert_eq!(rejected.status(), 503, "no request runs against an unmigrated schema");
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(rejected["code"], 14);
    let grpc_rejected = app.grpc().await.get_users(usersvc_api::grpc::proto::com::example::user::service::v1::GetUsersRequest::default()).await.unwrap_err();
    assert_eq!(grpc_rejected.code(), tonic::Code::Unavailable);

    app.database.migrate().await;
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
    let created = app.post_json(&json!({"name": "Later", "type": 1})).await;
    assert_eq!(created.status(), 201);
}

async fn newer_schema_keeps_older_binary_working(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    database.migrate().await;
    let db = database.connect().await;
    // A migration that a newer release applied and this binary does not know.
    db.execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)")
        .await
        .unwrap();

    let state = migration::schema_state(&db).await.unwrap();
    assert!(state.pending.is_empty(), "{state:?}");
    assert_eq!(state.unknown, vec!["m20991231_000001_from_the_future".to_owned()]);
    migration::run(&db, Direction::Up, LOCK_TIMEOUT).await.expect("up on a newer schema is a no-op");
    assert_eq!(count_rows(&db, "seaql_migrations").await, 4);
    db.close().await.ok();

    let app = start(database, AppOptions { migrate: false, ..AppOptions::default() }).await;
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
    assert_eq!(app.post_json(&json!({"name": "Still served", "type": 1})).await.status(), 201);
}
