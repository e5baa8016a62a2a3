"""Run the real binaries with the environment the chart renders: resolve
secretKeyRef values from the rendered Secrets, point the chart's database
host names at 127.0.0.1, and manage throwaway MariaDB and PostgreSQL
databases for the tests."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploytools import IN_CI, REPO_ROOT, missing

BINARIES = ("usersvc", "usersvc-migration")
LOOPBACK = "127.0.0.1"


# Binary name -> Cargo package that builds it.
PACKAGES = {"usersvc": "usersvc", "usersvc-migration": "migration"}


def build_binaries() -> dict[str, Path | str]:
    """Build both binaries (an up-to-date build is a no-op) and return each
    one's path, or the reason it is unavailable. A failed build falls back to
    an existing binary with a warning, except under CI."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target")) / "debug"
    found: dict[str, Path | str] = {}
    for binary, package in PACKAGES.items():
        path = target / binary
        if shutil.which("cargo") is None:
            found[binary] = path if path.exists() else "cargo is not installed"
            continue
        result = subprocess.run(
            ["cargo", "build", "--locked", "-p", package],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and path.exists():
            found[binary] = path
            continue
        tail = "\n".join(result.stderr.splitlines()[-15:])
        reason = f"cargo build -p {package} failed:\n{tail}"
        if path.exists() and not IN_CI:
            warnings.warn(f"{reason}\nusing the older {path}", stacklevel=1)
            found[binary] = path
        else:
            found[binary] = reason
    return found


def require_binary(binaries: dict[str, Path | str], name: str) -> Path:
    value = binaries[name]
    if isinstance(value, str):
        missing(value)
    return value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def secret_value(objects: list[dict[str, Any]], name: str, key: str) -> str:
    """Read one key of a rendered Secret, from stringData or base64 data."""
    for obj in objects:
        if obj["kind"] != "Secret" or obj["metadata"]["name"] != name:
            continue
        if key in obj.get("stringData", {}):
            return obj["stringData"][key]
        if key in obj.get("data", {}):
            return base64.b64decode(obj["data"][key]).decode()
        raise AssertionError(f"Secret {name} has no key {key}")
    raise AssertionError(f"Secret {name} is referenced but not rendered")


def resolve_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """Turn a container's env list into plain strings, as the kubelet would."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        reference = item["valueFrom"]["secretKeyRef"]
        env[item["name"]] = secret_value(objects, reference["name"], reference["key"])
    return env


def map_hosts(env: dict[str, str], hosts: list[str]) -> dict[str, str]:
    """Point cluster host names at 127.0.0.1 in DATABASE_HOST and DATABASE_URL."""
    mapped = dict(env)
    for host in hosts:
        if mapped.get("DATABASE_HOST") == host:
            mapped["DATABASE_HOST"] = LOOPBACK
        if "DATABASE_URL" in mapped:
            mapped["DATABASE_URL"] = mapped["DATABASE_URL"].replace(f"@{host}:", f"@{LOOPBACK}:")
    return mapped


def process_env(env: dict[str, str]) -> dict[str, str]:
    """Start from an empty environment so nothing from the test runner leaks in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def wait_for_status(url: str, expected: int, deadline_seconds: float, process: subprocess.Popen) -> int | None:
    """Poll url until it returns the expected status, the process exits or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    status = None
    while time.monotonic() < deadline:
        status = http_status(url)
        if status == expected or process.poll() is not None:
            return status
        time.sleep(0.25)
    return status


@dataclass
class Database:
    """A uniquely named database (and user) on a local server, dropped on cleanup."""

    engine: str
    name: str
    username: str
    password: str
    port: int

    def drop(self) -> None:
        if self.engine == "postgres":
            psql("postgres", f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            psql("postgres", f'DROP ROLE IF EXISTS "{self.username}"')
        else:
            mariadb(f"DROP DATABASE IF EXISTS `{self.name}`; DROP USER IF EXISTS '{self.username}'@'%'")


def mariadb(sql: str) -> None:
    subprocess.run(
        ["mysql", "--protocol=TCP", "-h", LOOPBACK, "-P", "3306", "-u", "root", "-e", sql],
        check=True,
        capture_output=True,
        text=True,
    )


def psql(database: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-h", LOOPBACK, "-p", "5432", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )


def server_available(engine: str) -> bool:
    client = "psql" if engine == "postgres" else "mysql"
    if shutil.which(client) is None:
        return False
    try:
        if engine == "postgres":
            psql("postgres", "SELECT 1")
        else:
            mariadb("SELECT 1")
    except subprocess.CalledProcessError:
        return False
    return True


def new_database(engine: str) -> Database:
    """Pick unique database and user names, so parallel or aborted runs never
    collide. The password is set later, by create()."""
    if not server_available(engine):
        where = "PostgreSQL on 127.0.0.1:5432" if engine == "postgres" else "MariaDB on 127.0.0.1:3306"
        missing(f"{where} is not reachable with the local admin user")
    suffix = uuid.uuid4().hex[:10]
    return Database(
        engine=engine,
        name=f"usersvc_deploy_{suffix}",
        username=f"usersvc_{suffix}",
        password="",
        port=5432 if engine == "postgres" else 3306,
    )


def create(database: Database, password: str) -> None:
    """Create the database and a user with this password that owns it."""
    database.password = password
    quoted = password.replace("'", "''")
    if database.engine == "postgres":
        psql("postgres", f"CREATE ROLE \"{database.username}\" LOGIN PASSWORD '{quoted}'")
        psql("postgres", f'CREATE DATABASE "{database.name}" OWNER "{database.username}"')
    else:
        mariadb(
            f"CREATE DATABASE `{database.name}`;"
            f" CREATE USER '{database.username}'@'%' IDENTIFIED BY '{quoted}';"
            f" GRANT ALL PRIVILEGES ON `{database.name}`.* TO '{database.username}'@'%'"
        )
