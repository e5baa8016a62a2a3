"""Schemathesis hooks for usersvc: the places where the service deliberately
accepts or rejects more than openapi.yaml can state, so that a check failure
always means a real disagreement between the service and its description.

Loaded through ``hooks`` in schemathesis.toml; scripts/test-clients puts this
folder on PYTHONPATH.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis
from schemathesis import GenerationMode

# An Idempotency-Key that the service accepts: 1 to 255 printable ASCII
# characters without spaces.
VALID_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")

# Every `nextPageToken` that the service returned during this run.
issued_page_tokens: set[str] = set()


def is_type_number(value: Any) -> bool:
    """Return whether the service reads `value` as the enum number 1 or 2.

    A JSON body's `type` accepts the integers 1 and 2, and the `type` query
    parameter accepts any text whose trimmed form parses as 1 or 2, such as
    "01" or "+2", beside the enum names that openapi.yaml lists.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in (1, 2)
    if isinstance(value, str):
        try:
            return int(value.strip()) in (1, 2)
        except ValueError:
            return False
    return False


def fits_after_trimming(name: Any) -> bool:
    """Return whether the service accepts `name`'s length: it counts at most 255
    characters after trimming whitespace, while `maxLength` in openapi.yaml can
    only count the raw string."""
    return isinstance(name, str) and len(name) > 255 and 0 < len(name.strip()) <= 255


def sets_a_known_field(body: Any) -> bool:
    """Return whether an update body sets `name` or `type` to a non-null value."""
    return isinstance(body, dict) and any(body.get(field) is not None for field in ("name", "type"))


@schemathesis.hook
def map_headers(context, headers):
    # The service replays the first response for a reused Idempotency-Key: the
    # same user for the same body, even after that user was deleted, and 422
    # for another body. Schemathesis reuses small generated values across test
    # cases that it treats as independent, so every valid key is made unique.
    # The Python SDK suite tests the replay and the 422 themselves.
    if headers and isinstance(headers.get("Idempotency-Key"), str):
        if VALID_IDEMPOTENCY_KEY.fullmatch(headers["Idempotency-Key"]):
            headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers


@schemathesis.hook
def after_call(context, case, response):
    if response.status_code == 200 and case.operation.definition.raw.get("operationId") == "ListUsers":
        token = response.json().get("nextPageToken")
        if token:
            issued_page_tokens.add(token)


@schemathesis.hook
def filter_case(context, case):
    operation_id = context.operation.definition.raw.get("operationId") if context.operation else None
    mode = case.meta.generation.mode if case.meta else None
    body = case.body if isinstance(case.body, dict) else None

    if mode == GenerationMode.NEGATIVE:
        # The service accepts the enum numbers beside the names, because
        # grpc-gateway clients send them. openapi.yaml lists only the names,
        # which SDKs turn into enums, so a "negative" 1 or 2 is in fact valid.
        if body is not None and "type" in body and is_type_number(body["type"]):
            return False
        if operation_id == "ListUsers" and is_type_number((case.query or {}).get("type")):
            return False
        # A name over 255 characters whose trimmed form fits is valid: the
        # service trims before it counts.
        if body is not None and fits_after_trimming(body.get("name")):
            return False

    if mode == GenerationMode.POSITIVE and operation_id == "ListUsers":
        # Page tokens are opaque strings in openapi.yaml, but the service accepts
        # only the tokens it issued (and the empty string, which means the first
        # page), so a generated token is valid only if it was returned before.
        token = (case.query or {}).get("pageToken")
        if token and token not in issued_page_tokens:
            return False

    if mode == GenerationMode.POSITIVE and operation_id == "UpdateUser":
        # `minProperties: 1` rejects `{}`, but an update must set `name` or
        # `type` to a non-null value: unknown fields are ignored and null means
        # unchanged, so `{"other": 1}` and `{"name": null}` are rejected too.
        if not sets_a_known_field(case.body):
            return False

    return True
