"""Call the gRPC API through server reflection alone, with no proto files:
grpcurl (which speaks reflection v1alpha) and `buf curl` (reflection v1).
Both list and describe the service, call every method, and check the
standard health service for the server and for UserService.

scripts/test-clients sets USERSVC_GRPC_ADDR to the service, such as
127.0.0.1:6565, and puts grpcurl and buf from .venv on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

ADDRESS = os.environ["USERSVC_GRPC_ADDR"]
SERVICE = "com.example.user.service.v1.UserService"
TIMEOUT_SECONDS = 30


def grpcurl(*args: str, data: dict | None = None) -> subprocess.CompletedProcess:
    command = ["grpcurl", "-plaintext", "-max-time", "10"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run(
        [*command, ADDRESS, *args], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def buf_curl(method: str, data: dict) -> subprocess.CompletedProcess:
    command = [
        "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "10s",
        "--data", json.dumps(data), f"http://{ADDRESS}/{method}",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)


def call_grpcurl(method: str, data: dict) -> dict:
    result = grpcurl(method, data=data)
    assert result.returncode == 0, f"grpcurl {method} failed: {result.stderr}"
    return json.loads(result.stdout)


def call_buf(method: str, data: dict) -> dict:
    result = buf_curl(method, data)
    assert result.returncode == 0, f"buf curl {method} failed: {result.stderr}"
    return json.loads(result.stdout)


def test_grpcurl_lists_services():
    result = grpcurl("list")

    assert result.returncode == 0, result.stderr
    services = result.stdout.split()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_grpcurl_describes_service_and_messages():
    service = grpcurl("describe", SERVICE)
    user_read = grpcurl("describe", "com.example.user.model.v1.UserRead")
    update_request = grpcurl("describe", "com.example.user.service.v1.UpdateUserRequest")

    assert service.returncode == 0, service.stderr
    for method in ("CreateUser", "GetUsers", "GetUser", "UpdateUser", "DeleteUser"):
        assert f"rpc {method} (" in service.stdout
    assert "create_time = 4;" in user_read.stdout
    assert "update_mask = 3;" in update_request.stdout


@pytest.mark.parametrize("service", ["", SERVICE])
def test_grpcurl_health_check_serving(service):
    response = call_grpcurl("grpc.health.v1.Health/Check", {"service": service})

    assert response == {"status": "SERVING"}


def test_grpcurl_calls_every_method():
    name = f"grpcurl-{uuid.uuid4().hex[:12]}"
    request_id = str(uuid.uuid4())

    created = call_grpcurl(
        f"{SERVICE}/CreateUser", {"user": {"name": name, "type": "USER_TYPE_ADMIN"}, "request_id": request_id}
    )
    retried = call_grpcurl(
        f"{SERVICE}/CreateUser", {"user": {"name": name, "type": "USER_TYPE_ADMIN"}, "request_id": request_id}
    )
    user_id = created["id"]
    fetched = call_grpcurl(f"{SERVICE}/GetUser", {"id": user_id})
    listed = call_grpcurl(f"{SERVICE}/GetUsers", {"page_size": 1000, "type": "USER_TYPE_ADMIN"})
    updated = call_grpcurl(
        f"{SERVICE}/UpdateUser",
        # grpcurl 1.8.6 parses a FieldMask as a plain message, not as the string
        # form of protobuf's JSON mapping, which `buf curl` uses below.
        {"id": user_id, "user": {"name": name + "-renamed"}, "update_mask": {"paths": ["name"]}},
    )
    deleted = call_grpcurl(f"{SERVICE}/DeleteUser", {"id": user_id})
    missing = grpcurl(f"{SERVICE}/GetUser", data={"id": user_id})

    assert created["user"]["id"] == user_id
    assert created["user"]["type"] == "USER_TYPE_ADMIN"
    assert retried["id"] == user_id
    assert fetched["user"] == created["user"]
    assert user_id in {user["id"] for user in listed["users"]}
    assert updated["user"]["name"] == name + "-renamed"
    assert updated["user"]["type"] == "USER_TYPE_ADMIN"
    assert deleted == {}
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_grpcurl_invalid_argument_names_field():
    result = grpcurl(f"{SERVICE}/CreateUser", data={"user": {"name": "  ", "type": "USER_TYPE_USER"}})

    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert "name" in result.stderr


def test_buf_curl_lists_services():
    result = subprocess.run(
        ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", f"http://{ADDRESS}"],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert SERVICE in result.stdout.split()


def test_buf_curl_lists_methods():
    result = subprocess.run(
        ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", f"http://{ADDRESS}"],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )

    assert result.returncode == 0, result.stderr
    for method in ("CreateUser", "GetUsers", "GetUser", "UpdateUser", "DeleteUser"):
        assert f"{SERVICE}/{method}" in result.stdout.split()


@pytest.mark.parametrize("service", ["", SERVICE])
def test_buf_curl_health_check_serving(service):
    response = call_buf("grpc.health.v1.Health/Check", {"service": service})

    assert response == {"status": "SERVING"}


def test_buf_curl_calls_every_method():
    name = f"buf-{uuid.uuid4().hex[:12]}"

    created = call_buf(f"{SERVICE}/CreateUser", {"user": {"name": name, "type": "USER_TYPE_USER"}})
    user_id = created["id"]
    fetched = call_buf(f"{SERVICE}/GetUser", {"id": user_id})
    first_page = call_buf(f"{SERVICE}/GetUsers", {"pageSize": 1})
    second_page = call_buf(f"{SERVICE}/GetUsers", {"pageSize": 1, "pageToken": first_page["nextPageToken"]})
    updated = call_buf(f"{SERVICE}/UpdateUser", {"id": user_id, "user": {"type": "USER_TYPE_ADMIN"}, "updateMask": "type"})
    deleted = call_buf(f"{SERVICE}/DeleteUser", {"id": user_id})

    assert fetched["user"]["name"] == name
    assert len(first_page["users"]) == 1
    assert len(second_page["users"]) == 1
    assert second_page["users"][0]["id"] > first_page["users"][0]["id"]
    assert updated["user"]["type"] == "USER_TYPE_ADMIN"
    assert updated["user"]["name"] == name
    assert deleted == {}
