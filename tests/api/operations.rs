//! Operational behaviour: health, metrics, request ids, the OpenAPI document and
//! Swagger UI, configuration errors and graceful shutdown of the real binary.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    let live = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "ready"}));
}

#[tokio::test]
async fn metrics_count_requests_and_pool() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.create_user("Ada", "USER_TYPE_USER").await;
    app.http.get(app.url("/v1/users/not-a-uuid")).send().await.unwrap();
    app.grpc().await.get_users(usersvc_api::grpc::proto::com::example::user::service::v1::GetUsersRequest::default()).await.unwrap();

    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();

    for expected in [
        r#"http_requests_total{method="POST",route="/v1/users",status="201"} 1"#,
        r#"http_requests_total{method="GET",route="/v1/users/{id}",status="400"} 1"#,
        r#"http_request_duration_seconds_count{method="POST",route="/v1/users"} 1"#,
        r#"grpc_server_handled_total{grpc_code="Ok",grpc_method="GetUsers",grpc_service="com.example.user.service.v1.UserService"} 1"#,
        r#"grpc_server_handling_seconds_count{grpc_method="GetUsers",grpc_service="com.example.user.service.v1.UserService"} 1"#,
        r#"db_pool_connections{state="max"} 5"#,
        r#"db_pool_connections{state="idle"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    let echoed = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let generated = app.http.get(app.url("/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    let response = app.http.get(app.url("/v2/nothing")).send().await.unwrap();

    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 5);
}

#[tokio::test]
async fn openapi_yaml_matches_served_document() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let served = app.http.get(app.url("/openapi.yaml")).send().await.unwrap().text().await.unwrap();
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();

    assert!(
        served == checked_in,
        "openapi.yaml differs from the document the service serves; regenerate it with \
         `cargo run -q -- openapi > openapi.yaml`"
    );
    let json: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["servers"], json!([{"url": "/"}]), "the server URL is relative");
}

#[tokio::test]
async fn swagger_ui_needs_no_other_host() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    let response = app.http.get(app.url("/docs")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"), "Swagger UI's script is inlined");
    for external in [r#"src="http"#, r#"href="http"#, "src='http", "href='http"] {
        assert!(!html.contains(external), "the page loads {external}...");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn usersvc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usersvc"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("LOG_FORMAT", "json");
    command
}

/// Runs the binary with `env` and returns its exit code and standard error.
fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = usersvc().envs(env.iter().copied()).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bad_settings_exit_with_one_line() {
    let http = format!("127.0.0.1:{}", free_port());
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("DATABASE_URL", "oracle://scott:tiger@db/orcl")], "invalid DATABASE_URL \"oracle://scott:****@db/orcl\": unsupported scheme"),
        (&[("DATABASE_URL", "not a url")], "invalid DATABASE_URL \"not a url\""),
        (&[("DATABASE_DRIVER", "oracle")], "invalid DATABASE_DRIVER \"oracle\": expected mysql, mariadb, postgres, postgresql or sqlite"),
        (&[("DATABASE_DRIVER", "mysql"), ("DATABASE_NAME", "users")], "DATABASE_HOST is required"),
        (&[("SHUTDOWN_DELAY", "soon")], "invalid SHUTDOWN_DELAY \"soon\""),
        (&[("HTTP_ADDR", "nowhere")], "invalid HTTP_ADDR \"nowhere\""),
        (&[("LOG_FORMAT", "xml")], "invalid LOG_FORMAT \"xml\": expected text or json"),
    ];

    for (env, expected) in cases {
        let mut env = env.to_vec();
        env.push(("GRPC_ADDR", "127.0.0.1:0"));
        if !env.iter().any(|(key, _)| *key == "HTTP_ADDR") {
            env.push(("HTTP_ADDR", &http));
        }
        let (code, stderr) = run_to_exit(&env);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: one line expected: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: expected {expected:?} in {stderr}");
        assert!(!stderr.contains("tiger"), "{stderr}");
    }
}

/// A running `usersvc` process whose output is collected in the background.
struct Process {
    child: Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    http: String,
}

impl Process {
    /// Starts the binary on ports the kernel picks, and reads the bound HTTP
    /// address from its "usersvc listening" log line.
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = usersvc()
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("GRPC_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for stream in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let output = std::sync::Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }

        let deadline = Instant::now() + Duration::from_secs(30);
        let http = loop {
            let text = output.lock().unwrap().clone();
            let listening = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["message"] == "usersvc listening");
            if let Some(line) = listening {
                break format!("http://{}", line["http"].as_str().unwrap());
            }
            assert!(Instant::now() < deadline, "usersvc did not start listening; output:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, output, http }
    }

    async fn status(&self, path: &str) -> Option<u16> {
        reqwest::get(format!("{}{path}", self.http)).await.ok().map(|response| response.status().as_u16())
    }

    async fn wait_for(&self, path: &str, status: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.status(path).await != Some(status) {
            assert!(Instant::now() < deadline, "{path} never returned {status}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!("the process did not exit within {timeout:?}; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
    }
}

#[tokio::test]
async fn sigterm_turns_readiness_off_then_exits_zero() {
    let directory = std::env::temp_dir().join(format!("usersvc-shutdown-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    let url = format!("sqlite://{}/users.db?mode=rwc", directory.display());
    let mut process = Process::start(&[("DATABASE_URL", &url), ("SHUTDOWN_DELAY", "2s"), ("SHUTDOWN_TIMEOUT", "5s")]);
    process.wait_for("/readyz", 200, Duration::from_secs(20)).await;
    let created = reqwest::Client::new()
        .post(format!("{}/v1/users", process.http))
        .json(&json!({"name": "Zebulon Private", "type": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    process.signal("TERM");

    process.wait_for("/readyz", 503, Duration::from_secs(2)).await;
    assert_eq!(process.status("/healthz").await, Some(200), "the process still serves during the delay");
    let code = tokio::task::spawn_blocking(move || {
        let code = process.wait_exit(Duration::from_secs(15));
        (code, process.output())
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&directory).ok();

    let (code, output) = code;
    assert_eq!(code, Some(0), "output:\n{output}");
    assert!(output.contains("shutdown requested"), "{output}");
    assert!(!output.contains("Zebulon"), "user names never reach the logs:\n{output}");
}

#[tokio::test]
async fn unreachable_database_is_not_ready_and_masked() {
    // Port 1 on loopback refuses connections, so the database is never reachable.
    let mut process = Process::start(&[
        ("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:1/users"),
        ("DATABASE_ACQUIRE_TIMEOUT", "500ms"),
        ("SHUTDOWN_DELAY", "0s"),
    ]);
    process.wait_for("/healthz", 200, Duration::from_secs(20)).await;

    assert_eq!(process.status("/readyz").await, Some(503));
    let listed = reqwest::get(format!("{}/v1/users", process.http)).await.unwrap();
    assert_eq!(listed.status(), 503, "requests fail fast with 503, not 500");
    let body = listed.text().await.unwrap();
    assert!(!body.contains("127.0.0.1"), "{body}");

    process.signal("TERM");
    let code = process.wait_exit(Duration::from_secs(15));
    let output = process.output();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("mysql://root:****@127.0.0.1:1/users"), "{output}");
    assert!(!output.contains("hunter2"), "the password never reaches the logs:\n{output}");
    assert!(output.contains("\"reason\":\"database unreachable\""), "{output}");
}

#[tokio::test]
async fn unsupported_method_lists_allowed_ones() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    for (method, path, allowed) in [
        ("PUT", "/v1/users", "GET, POST"),
        ("POST", "/v1/users/0190b5a6-7d3e-7c6a-9f51-0c2d3e4f5a6b", "GET, PATCH, DELETE"),
        ("DELETE", "/healthz", "GET"),
    ] {
        let response = app
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allowed, "{method} {path}");
    }
}

#[tokio::test]
async fn sigint_stops_without_delay() {
    let directory = std::env::temp_dir().join(format!("usersvc-interrupt-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    let url = format!("sqlite://{}/users.db?mode=rwc", directory.display());
    let mut process = Process::start(&[("DATABASE_URL", &url), ("SHUTDOWN_DELAY", "30s")]);
    process.wait_for("/readyz", 200, Duration::from_secs(20)).await;

    let started = Instant::now();
    process.signal("INT");
    let code = tokio::task::spawn_blocking(move || process.wait_exit(Duration::from_secs(10))).await.unwrap();
    std::fs::remove_dir_all(&directory).ok();

    assert_eq!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(10), "Ctrl-C skips SHUTDOWN_DELAY");
}

#[tokio::test]
async fn grpc_timeout_header_bounds_rest_requests() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let list = |timeout: &'static str| app.http.get(app.url("/v1/users")).header("Grpc-Timeout", timeout).send();

    let expired = list("1n").await.unwrap();
    assert_eq!(expired.status(), 504);
    assert_eq!(expired.json::<Value>().await.unwrap()["code"], 4);

    let generous = list("10S").await.unwrap();
    assert_eq!(generous.status(), 200);

    let invalid = list("soon").await.unwrap();
    assert_eq!(invalid.status(), 400);
    let error: Value = invalid.json().await.unwrap();
    assert_eq!(error["details"][0]["fieldViolations"][0]["field"], "grpc-timeout");
}

#[tokio::test]
async fn grpc_deadline_allows_timely_calls() {
    use usersvc_api::grpc::proto::com::example::user::service::v1::GetUsersRequest;

    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut client = app.grpc().await;

    // tonic's client enforces a request's timeout itself (CANCELLED), so the
    // server's DEADLINE_EXCEEDED path is covered by the deadline module's tests.
    let mut request = tonic::Request::new(GetUsersRequest::default());
    request.set_timeout(Duration::from_secs(10));
    let response = client.get_users(request).await;

    assert!(response.is_ok(), "{response:?}");
}
