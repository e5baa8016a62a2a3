//! gRPC behaviour on every backend, and that both transports see the same users.

use prost_types::FieldMask;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;
use usersvc_api::grpc::proto::com::example::user::model::v1::{UserType, UserWrite};
use usersvc_api::grpc::proto::com::example::user::service::v1 as pb;

use crate::helpers::{Backend, assert_no_internals, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    grpc_user_is_visible_over_rest,
    rest_user_is_visible_over_grpc,
    grpc_crud_round_trip,
    grpc_rejects_bad_input_with_field_violations,
    grpc_request_id_makes_create_idempotent,
    grpc_health_follows_readiness,
    grpc_rejects_oversized_message,
);

fn write(name: &str, user_type: UserType) -> Option<UserWrite> {
    Some(UserWrite { name: name.to_owned(), r#type: user_type as i32 })
}

async fn grpc_user_is_visible_over_rest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut client = app.grpc().await;

    let created = client
        .create_user(pb::CreateUserRequest { user: write("Grace", UserType::Admin), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();

    let user = created.user.unwrap();
    assert_eq!(created.id, user.id);
    let rest: Value = app.http.get(app.url(&format!("/v1/users/{}", created.id))).send().await.unwrap().json().await.unwrap();
    assert_eq!(rest["id"], created.id);
    assert_eq!(rest["name"], "Grace");
    assert_eq!(rest["type"], "USER_TYPE_ADMIN");
    let create_time = user.create_time.unwrap();
    let rest_time = chrono::DateTime::parse_from_rfc3339(rest["createTime"].as_str().unwrap()).unwrap();
    assert_eq!(rest_time.timestamp(), create_time.seconds);
    assert_eq!(rest_time.timestamp_subsec_nanos() as i32, create_time.nanos);
}

async fn rest_user_is_visible_over_grpc(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_user("Linus", "USER_TYPE_USER").await;
    let mut client = app.grpc().await;

    let listed = client.get_users(pb::GetUsersRequest::default()).await.unwrap().into_inner();

    assert_eq!(listed.users.len(), 1);
    assert_eq!(listed.users[0].id, created["id"].as_str().unwrap());
    assert_eq!(listed.users[0].name, "Linus");
    assert_eq!(listed.users[0].r#type, UserType::User as i32);
    assert_eq!(listed.next_page_token, "");
}

async fn grpc_crud_round_trip(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut client = app.grpc().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let user_type = if index < 2 { UserType::Admin } else { UserType::User };
        let created = client
            .create_user(pb::CreateUserRequest { user: write(&format!("user {index}"), user_type), request_id: String::new() })
            .await
            .unwrap();
        ids.push(created.into_inner().id);
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .get_users(pb::GetUsersRequest { page_size: 2, page_token, r#type: UserType::User as i32 })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.users.into_iter().map(|user| user.id));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ids[2..].to_vec(), "filtered pages list users of that type in creation order");

    let updated = client
        .update_user(pb::UpdateUserRequest {
            id: ids[0].clone(),
            user: write("renamed", UserType::Unknown),
            update_mask: Some(FieldMask { paths: vec!["name".to_owned()] }),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.r#type, UserType::Admin as i32, "a field outside the mask keeps its value");

    let fetched = client.get_user(pb::GetUserRequest { id: ids[0].clone() }).await.unwrap().into_inner().user.unwrap();
    assert_eq!(fetched, updated);

    // Without a mask, the fields that are set are the ones changed.
    let retyped = client
        .update_user(pb::UpdateUserRequest { id: ids[0].clone(), user: write("", UserType::User), update_mask: None })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(retyped.name, "renamed");
    assert_eq!(retyped.r#type, UserType::User as i32);

    client.delete_user(pb::DeleteUserRequest { id: ids[0].clone() }).await.unwrap();
    let missing = client.get_user(pb::GetUserRequest { id: ids[0].clone() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let again = client.delete_user(pb::DeleteUserRequest { id: ids[0].clone() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

async fn grpc_rejects_bad_input_with_field_violations(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut client = app.grpc().await;
    let existing = app.create_user("Ada", "USER_TYPE_USER").await;
    let existing_id = existing["id"].as_str().unwrap().to_owned();

    let creates = [
        (pb::CreateUserRequest { user: None, request_id: String::new() }, "user"),
        (pb::CreateUserRequest { user: write("", UserType::Admin), request_id: String::new() }, "user.name"),
        (pb::CreateUserRequest { user: write("   ", UserType::Admin), request_id: String::new() }, "user.name"),
        (pb::CreateUserRequest { user: write(&"x".repeat(256), UserType::Admin), request_id: String::new() }, "user.name"),
        (pb::CreateUserRequest { user: write("ok", UserType::Unknown), request_id: String::new() }, "user.type"),
        (pb::CreateUserRequest { user: Some(UserWrite { name: "ok".into(), r#type: 3 }), request_id: String::new() }, "user.type"),
        (pb::CreateUserRequest { user: write("ok", UserType::Admin), request_id: "bad key".into() }, "request_id"),
    ];
    for (request, field) in creates {
        let status = client.create_user(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        assert_violation(&status, field);
    }

    let lists = [
        (pb::GetUsersRequest { page_size: -1, ..Default::default() }, "page_size"),
        (pb::GetUsersRequest { page_token: "garbage".into(), ..Default::default() }, "page_token"),
        (pb::GetUsersRequest { r#type: 7, ..Default::default() }, "type"),
    ];
    for (request, field) in lists {
        let status = client.get_users(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        assert_violation(&status, field);
    }
    let clamped = client.get_users(pb::GetUsersRequest { page_size: 100_000, ..Default::default() }).await.unwrap();
    assert_eq!(clamped.into_inner().users.len(), 1);

    let bad_id = client.get_user(pb::GetUserRequest { id: "not-a-uuid".into() }).await.unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert_violation(&bad_id, "id");
    let unknown = client.get_user(pb::GetUserRequest { id: uuid::Uuid::now_v7().to_string() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let bad_mask = client
        .update_user(pb::UpdateUserRequest {
            id: existing_id.clone(),
            user: write("x", UserType::Admin),
            update_mask: Some(FieldMask { paths: vec!["email".into()] }),
        })
        .await
        .unwrap_err();
    assert_violation(&bad_mask, "update_mask");
    let blank_name = client
        .update_user(pb::UpdateUserRequest {
            id: existing_id.clone(),
            user: write(" ", UserType::Admin),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .unwrap_err();
    assert_violation(&blank_name, "user.name");
    let nothing_set = client
        .update_user(pb::UpdateUserRequest { id: existing_id.clone(), user: write("", UserType::Unknown), update_mask: None })
        .await
        .unwrap_err();
    assert_violation(&nothing_set, "update_mask");
    let page_size = client.get_users(pb::GetUsersRequest { page_size: -1, ..Default::default() }).await.unwrap_err();
    assert!(page_size.message().starts_with("invalid argument: page_size must be"), "{}", page_size.message());

    let fetched: Value = app.http.get(app.url(&format!("/v1/users/{existing_id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(fetched, existing, "rejected updates changed nothing");
    assert_eq!(app.user_count().await, 1, "rejected creates wrote nothing");
}

fn assert_violation(status: &tonic::Status, field: &str) {
    assert_no_internals(status.message());
    let details = status.get_error_details();
    let bad_request = details.bad_request().unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
    let fields: Vec<&str> = bad_request.field_violations.iter().map(|violation| violation.field.as_str()).collect();
    assert!(fields.contains(&field), "expected a violation of {field}, got {fields:?}");
}

async fn grpc_request_id_makes_create_idempotent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut client = app.grpc().await;
    let request = pb::CreateUserRequest { user: write("Ada", UserType::User), request_id: "retry-1".into() };

    let first = client.create_user(request.clone()).await.unwrap().into_inner();
    let retry = client.create_user(request).await.unwrap().into_inner();
    let reused = client
        .create_user(pb::CreateUserRequest { user: write("Bob", UserType::User), request_id: "retry-1".into() })
        .await
        .unwrap_err();

    assert_eq!(retry, first);
    assert_eq!(reused.code(), Code::FailedPrecondition);
    // REST and gRPC share the keys: the same key and body over REST replays too.
    let rest = app
        .http
        .post(app.url("/v1/users"))
        .header("Idempotency-Key", "retry-1")
        .json(&json!({"name": "Ada", "type": "USER_TYPE_USER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.json::<Value>().await.unwrap()["id"], first.id);
    assert_eq!(app.user_count().await, 1);
}

async fn grpc_health_follows_readiness(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let Some(app) = spawn_app(backend).await else { return };
    let mut health = HealthClient::new(app.grpc_channel().await);

    for service in ["", "com.example.user.service.v1.UserService"] {
        let response = health.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "no.such.Service".to_owned() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn grpc_rejects_oversized_message(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, crate::helpers::AppOptions { body_limit: 4096, ..Default::default() }).await
    else {
        return;
    };
    let mut client = app.grpc().await;

    let status = client
        .create_user(pb::CreateUserRequest { user: write(&"x".repeat(5000), UserType::Admin), request_id: String::new() })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), "request is larger than the limit of 4096 bytes");
    assert_eq!(app.user_count().await, 0);
}
