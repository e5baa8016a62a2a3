"""Drive the Python SDK that openapi-generator builds from openapi.yaml
against a running service: create, get, list across pages, update, delete,
idempotent retries, and the typed errors for 400, 404 and 422.

scripts/test-clients generates the SDK into target/clients/python and sets
USERSVC_SDK_PATH to it and USERSVC_HTTP_URL to the service, such as
http://127.0.0.1:8080.
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.environ["USERSVC_SDK_PATH"])

import usersvc_client  # noqa: E402
from usersvc_client.exceptions import BadRequestException, NotFoundException, UnprocessableEntityException  # noqa: E402
from usersvc_client.models import CreateUserRequest, UpdateUserRequest, UserType, UserTypeInput  # noqa: E402


@pytest.fixture(scope="module")
def users():
    configuration = usersvc_client.Configuration(host=os.environ["USERSVC_HTTP_URL"])
    with usersvc_client.ApiClient(configuration) as client:
        yield usersvc_client.UsersApi(client)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_create_returns_user_and_location(users):
    name = unique_name("create")

    response = users.create_user_with_http_info(CreateUserRequest(name=name, type=UserTypeInput.USER_TYPE_ADMIN))

    assert response.status_code == 201
    user = response.data
    assert user.name == name
    assert user.type == UserType.USER_TYPE_ADMIN
    assert user.id.version == 7
    assert user.create_time == user.update_time
    assert user.create_time.utcoffset().total_seconds() == 0
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers["location"] == f"/v1/users/{user.id}"


def test_get_returns_created_user(users):
    created = users.create_user(CreateUserRequest(name=unique_name("get"), type=UserTypeInput.USER_TYPE_USER))

    fetched = users.get_user(created.id)

    assert fetched == created


def test_list_pages_through_every_user(users):
    created_ids = [
        users.create_user(CreateUserRequest(name=unique_name(f"page{index}"), type=UserTypeInput.USER_TYPE_USER)).id
        for index in range(7)
    ]

    seen_ids = []
    pages = 0
    token = ""
    while True:
        page = users.list_users(page_size=3, page_token=token or None)
        pages += 1
        assert len(page.users) <= 3
        seen_ids.extend(user.id for user in page.users)
        token = page.next_page_token
        if not token:
            break
        assert pages < 1000, "pagination did not end"

    assert pages >= 3
    assert len(seen_ids) == len(set(seen_ids)), "a user appeared on two pages"
    assert seen_ids == sorted(seen_ids), "pages are not in creation order"
    assert set(created_ids) <= set(seen_ids)


def test_list_filters_by_type(users):
    admin = users.create_user(CreateUserRequest(name=unique_name("admin"), type=UserTypeInput.USER_TYPE_ADMIN))

    page = users.list_users(page_size=1000, type=UserTypeInput.USER_TYPE_ADMIN)

    assert admin.id in {user.id for user in page.users}
    assert {user.type for user in page.users} == {UserType.USER_TYPE_ADMIN}


def test_update_changes_only_sent_fields(users):
    created = users.create_user(CreateUserRequest(name=unique_name("update"), type=UserTypeInput.USER_TYPE_USER))
    new_name = unique_name("renamed")

    renamed = users.update_user(created.id, UpdateUserRequest(name=new_name))
    promoted = users.update_user(created.id, UpdateUserRequest(type=UserTypeInput.USER_TYPE_ADMIN))

    assert renamed.name == new_name
    assert renamed.type == UserType.USER_TYPE_USER
    assert renamed.update_time >= created.update_time
    assert promoted.name == new_name
    assert promoted.type == UserType.USER_TYPE_ADMIN
    assert users.get_user(created.id) == promoted


def test_delete_then_get_raises_not_found(users):
    created = users.create_user(CreateUserRequest(name=unique_name("delete"), type=UserTypeInput.USER_TYPE_USER))

    response = users.delete_user_with_http_info(created.id)
    with pytest.raises(NotFoundException) as raised:
        users.get_user(created.id)

    assert response.status_code == 204
    assert raised.value.status == 404
    assert raised.value.data.code == 5
    assert str(created.id) in raised.value.data.message


def test_bad_page_token_raises_typed_bad_request(users):
    with pytest.raises(BadRequestException) as raised:
        users.list_users(page_token="not-a-token")

    status = raised.value.data
    assert raised.value.status == 400
    assert status.code == 3
    assert status.details[0].type == "type.googleapis.com/google.rpc.BadRequest"
    # pydantic reserves `field`, so the generator names the attribute `var_field`.
    assert status.details[0].field_violations[0].var_field == "pageToken"


def test_retry_with_idempotency_key_returns_first_user(users):
    key = str(uuid.uuid4())
    request = CreateUserRequest(name=unique_name("retry"), type=UserTypeInput.USER_TYPE_USER)

    first = users.create_user(request, idempotency_key=key)
    retry = users.create_user(request, idempotency_key=key)

    assert retry == first


def test_reused_idempotency_key_raises_unprocessable(users):
    key = str(uuid.uuid4())
    users.create_user(CreateUserRequest(name=unique_name("first"), type=UserTypeInput.USER_TYPE_USER), idempotency_key=key)

    with pytest.raises(UnprocessableEntityException) as raised:
        users.create_user(CreateUserRequest(name=unique_name("other"), type=UserTypeInput.USER_TYPE_USER), idempotency_key=key)

    assert raised.value.status == 422
    assert raised.value.data.code == 9
