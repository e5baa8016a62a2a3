//! REST API behaviour on every backend, including every kind of bad input.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AppOptions, Backend, assert_no_internals, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    create_returns_201_with_location,
    create_accepts_type_names_and_numbers,
    create_rejects_bad_input_without_writing,
    create_rejects_oversized_body,
    get_returns_user_or_404,
    get_rejects_non_uuid_id,
    list_is_empty_array_without_users,
    list_pages_through_every_user,
    list_filters_by_type,
    list_rejects_bad_parameters,
    update_changes_only_given_fields,
    update_rejects_bad_input_without_writing,
    delete_returns_204_then_404,
    idempotency_key_replays_and_rejects_reuse,
);

async fn create_returns_201_with_location(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };

    let response = app.post_json(&json!({"name": "John", "type": 1})).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/users/{id}"));
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "new ids are UUIDv7");
    assert_eq!(id, id.to_lowercase());
    assert_eq!(body["name"], "John");
    assert_eq!(body["type"], "USER_TYPE_ADMIN");
    assert!(body["createTime"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(body["createTime"], body["updateTime"]);

    let fetched: Value = app.http.get(app.url(&location)).send().await.unwrap().json().await.unwrap();
    assert_eq!(fetched, body, "GET returns what POST returned");
}

async fn create_accepts_type_names_and_numbers(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let cases = [
        (json!({"name": "a", "type": 1}), "USER_TYPE_ADMIN"),
        (json!({"name": "b", "type": 2}), "USER_TYPE_USER"),
        (json!({"name": "c", "type": "USER_TYPE_ADMIN"}), "USER_TYPE_ADMIN"),
        (json!({"name": "d", "type": "USER_TYPE_USER", "unknown": {"x": 1}}), "USER_TYPE_USER"),
        (json!({"name": "  padded  ", "type": 2}), "USER_TYPE_USER"),
        (json!({"name": "é".repeat(255), "type": 2}), "USER_TYPE_USER"),
    ];

    for (input, expected_type) in cases {
        let response = app.post_json(&input).await;
        assert_eq!(response.status(), StatusCode::CREATED, "input {input}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], expected_type, "input {input}");
    }

    let padded = app.http.get(app.url("/v1/users?pageSize=10")).send().await.unwrap().json::<Value>().await.unwrap();
    let names: Vec<&str> = padded["users"].as_array().unwrap().iter().map(|user| user["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"padded"), "names are trimmed: {names:?}");
    assert_eq!(app.user_count().await, 6);
}

async fn create_rejects_bad_input_without_writing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let long_name = "x".repeat(256);
    // (body, content type, expected status, field named in the violation)
    let cases: Vec<(String, &str, u16, Option<&str>)> = vec![
        ("{\"name\": \"John\", \"type\": 1".into(), "application/json", 400, Some("body")),
        ("not json".into(), "application/json", 400, Some("body")),
        ("[1, 2]".into(), "application/json", 400, Some("body")),
        ("{\"name\": \"John\", \"type\": 1}".into(), "text/plain", 415, None),
        (json!({"type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": "   ", "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": "", "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": long_name, "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": 42, "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": ["a"], "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": " Ad\u{0}a ", "type": 1}).to_string(), "application/json", 400, Some("name")),
        (json!({"name": "John"}).to_string(), "application/json", 400, Some("type")),
        (json!({"name": "John", "type": 0}).to_string(), "application/json", 400, Some("type")),
        (json!({"name": "John", "type": 3}).to_string(), "application/json", 400, Some("type")),
        (json!({"name": "John", "type": "ADMIN"}).to_string(), "application/json", 400, Some("type")),
        (json!({"name": "John", "type": "USER_TYPE_UNKNOWN"}).to_string(), "application/json", 400, Some("type")),
        (json!({"name": "John", "type": 1.5}).to_string(), "application/json", 400, Some("type")),
    ];

    for (body, content_type, expected_status, field) in cases {
        let response = app
            .http
            .post(app.url("/v1/users"))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();

        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected_status, "body {body} ({content_type}): {text}");
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is JSON: {text}"));
        assert_eq!(error["code"], 3, "body {body}: {text}");
        assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{text}");
        if let Some(field) = field {
            let violations = &error["details"][0]["fieldViolations"];
            assert_eq!(error["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest", "{text}");
            assert!(
                violations.as_array().unwrap().iter().any(|violation| violation["field"] == field),
                "body {body}: expected a violation of {field}: {text}"
            );
        }
        assert_no_internals(&text);
    }
    assert_eq!(app.user_count().await, 0, "a rejected request wrote nothing");
}

async fn create_rejects_oversized_body(backend: Backend) {
    let Some(app) = spawn_app_with(backend, AppOptions { body_limit: 4096, ..AppOptions::default() }).await else {
        return;
    };
    let body = json!({"name": "x".repeat(5000), "type": 1}).to_string();

    let declared = app
        .http
        .post(app.url("/v1/users"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = declared.json().await.unwrap();
    assert_eq!(error["code"], 8);

    // A chunked body declares no length; the limit still applies while reading.
    let stream = futures_util::stream::iter(body.into_bytes().chunks(1000).map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec())).collect::<Vec<_>>());
    let chunked = app
        .http
        .post(app.url("/v1/users"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.user_count().await, 0);
}

async fn get_returns_user_or_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_user("Ada", "USER_TYPE_USER").await;

    let found = app.http.get(app.url(&format!("/v1/users/{}", created["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(found.json::<Value>().await.unwrap(), created);

    let upper = created["id"].as_str().unwrap().to_uppercase();
    let found_upper = app.http.get(app.url(&format!("/v1/users/{upper}"))).send().await.unwrap();
    assert_eq!(found_upper.status(), StatusCode::OK, "ids are case-insensitive on input");

    let unknown = uuid::Uuid::now_v7();
    let missing = app.http.get(app.url(&format!("/v1/users/{unknown}"))).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["code"], 5);
    assert_eq!(error["message"], format!("user {unknown} not found"));
}

async fn get_rejects_non_uuid_id(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };

    for id in ["abc", "123", "01941f29-7c3e-7b6a-9f51", "' OR 1=1 --", "%00"] {
        let response = app.http.get(app.url(&format!("/v1/users/{id}"))).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "id {id}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["details"][0]["fieldViolations"][0]["field"], "id", "id {id}");
        assert_no_internals(&text);
    }
    for method in [reqwest::Method::PATCH, reqwest::Method::DELETE] {
        let response = app.http.request(method.clone(), app.url("/v1/users/abc")).json(&json!({"name": "x"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{method}");
    }
}

async fn list_is_empty_array_without_users(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };

    let body: Value = app.http.get(app.url("/v1/users")).send().await.unwrap().json().await.unwrap();

    assert_eq!(body, json!({"users": [], "nextPageToken": ""}));
}

async fn list_pages_through_every_user(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut created = Vec::new();
    for index in 0..7 {
        created.push(app.create_user(&format!("user {index}"), "USER_TYPE_USER").await["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let body: Value = app
            .http
            .get(app.url(&format!("/v1/users?pageSize=3&pageToken={token}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 3);
        seen.extend(users.iter().map(|user| user["id"].as_str().unwrap().to_owned()));
        token = body["nextPageToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }

    assert_eq!(pages, 3);
    assert_eq!(seen, created, "pages list every user once, in creation order");
}

async fn list_filters_by_type(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for index in 0..5 {
        let user_type = if index % 2 == 0 { "USER_TYPE_ADMIN" } else { "USER_TYPE_USER" };
        app.create_user(&format!("user {index}"), user_type).await;
    }

    for (filter, expected) in [("USER_TYPE_ADMIN", 3), ("1", 3), ("USER_TYPE_USER", 2), ("2", 2)] {
        let mut count = 0;
        let mut token = String::new();
        loop {
            let body: Value = app
                .http
                .get(app.url(&format!("/v1/users?type={filter}&pageSize=1&pageToken={token}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for user in body["users"].as_array().unwrap() {
                let expected_name = if filter == "1" { "USER_TYPE_ADMIN" } else if filter == "2" { "USER_TYPE_USER" } else { filter };
                assert_eq!(user["type"], expected_name, "filter {filter}");
                count += 1;
            }
            token = body["nextPageToken"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(count, expected, "filter {filter}");
    }
}

async fn list_rejects_bad_parameters(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for index in 0..3 {
        app.create_user(&format!("user {index}"), "USER_TYPE_ADMIN").await;
    }
    let first_page: Value = app.http.get(app.url("/v1/users?pageSize=1")).send().await.unwrap().json().await.unwrap();
    let token = first_page["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());

    let bad = [
        ("pageSize=-1".to_owned(), "pageSize"),
        ("pageSize=abc".to_owned(), "pageSize"),
        ("pageSize=99999999999999999999999".to_owned(), "pageSize"),
        ("pageToken=garbage".to_owned(), "pageToken"),
        ("pageToken=djE6bm90LWEtdXVpZDow".to_owned(), "pageToken"),
        (format!("pageToken={token}&type=USER_TYPE_USER"), "pageToken"),
        ("type=ADMIN".to_owned(), "type"),
        ("type=0".to_owned(), "type"),
        ("type=USER_TYPE_UNKNOWN".to_owned(), "type"),
    ];
    for (query, field) in bad {
        let response = app.http.get(app.url(&format!("/v1/users?{query}"))).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "query {query}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["details"][0]["fieldViolations"][0]["field"], field, "query {query}: {text}");
        assert_no_internals(&text);
    }

    for (query, expected_users) in [("pageSize=0", 3), ("pageSize=100000", 3), ("pageSize=2", 2)] {
        let response = app.http.get(app.url(&format!("/v1/users?{query}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "query {query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["users"].as_array().unwrap().len(), expected_users, "query {query}");
    }
}

async fn update_changes_only_given_fields(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_user("Ada", "USER_TYPE_USER").await;
    let path = format!("/v1/users/{}", created["id"].as_str().unwrap());

    let renamed: Value = app.http.patch(app.url(&path)).json(&json!({"name": "Ada L."})).send().await.unwrap().json().await.unwrap();
    assert_eq!(renamed["name"], "Ada L.");
    assert_eq!(renamed["type"], "USER_TYPE_USER");
    assert_eq!(renamed["createTime"], created["createTime"]);
    assert!(renamed["updateTime"].as_str() >= created["updateTime"].as_str());

    let retyped = app.http.patch(app.url(&path)).json(&json!({"type": "USER_TYPE_ADMIN", "extra": true})).send().await.unwrap();
    assert_eq!(retyped.status(), StatusCode::OK);
    let retyped: Value = retyped.json().await.unwrap();
    assert_eq!(retyped["name"], "Ada L.");
    assert_eq!(retyped["type"], "USER_TYPE_ADMIN");

    let fetched: Value = app.http.get(app.url(&path)).send().await.unwrap().json().await.unwrap();
    assert_eq!(fetched, retyped);
}

async fn update_rejects_bad_input_without_writing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_user("Ada", "USER_TYPE_USER").await;
    let path = format!("/v1/users/{}", created["id"].as_str().unwrap());

    for (body, field) in [
        (json!({}), "body"),
        (json!({"name": " "}), "name"),
        (json!({"name": "x".repeat(256)}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"type": 0}), "type"),
        (json!({"type": "ADMIN"}), "type"),
        (json!({"name": "ok", "type": 9}), "type"),
    ] {
        let response = app.http.patch(app.url(&path)).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["details"][0]["fieldViolations"][0]["field"], field, "body {body}");
    }

    let fetched: Value = app.http.get(app.url(&path)).send().await.unwrap().json().await.unwrap();
    assert_eq!(fetched, created, "rejected updates changed nothing");

    let unknown = app
        .http
        .patch(app.url(&format!("/v1/users/{}", uuid::Uuid::now_v7())))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn delete_returns_204_then_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_user("Ada", "USER_TYPE_USER").await;
    let path = format!("/v1/users/{}", created["id"].as_str().unwrap());

    let deleted = app.http.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(deleted.text().await.unwrap(), "");

    let again = app.http.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let fetched = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.user_count().await, 0);
}

async fn idempotency_key_replays_and_rejects_reuse(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let post = |body: Value, key: &'static str| {
        app.http.post(app.url("/v1/users")).header("Idempotency-Key", key).json(&body).send()
    };

    let first = post(json!({"name": "Ada", "type": 2}), "key-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    let retry = post(json!({"type": "USER_TYPE_USER", "name": "Ada"}), "key-1").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["location"], first_location);
    assert_eq!(retry.json::<Value>().await.unwrap(), first, "a retry returns the first result");

    let reused = post(json!({"name": "Bob", "type": 2}), "key-1").await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.json::<Value>().await.unwrap()["code"], 9);

    let other_key = post(json!({"name": "Ada", "type": 2}), "key-2").await.unwrap();
    assert_eq!(other_key.status(), StatusCode::CREATED);

    let bad_key = app
        .http
        .post(app.url("/v1/users"))
        .header("Idempotency-Key", "x".repeat(256))
        .json(&json!({"name": "Ada", "type": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.user_count().await, 2);
}
