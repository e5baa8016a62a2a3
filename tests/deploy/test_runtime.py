"""Drift and bad-input tests: run the real usersvc-migration and usersvc
binaries with exactly the command, arguments, environment, ports and probe
paths that the chart renders, against MariaDB and PostgreSQL on 127.0.0.1.

Each scenario mirrors a Helm install. The service starts alongside the
migration Job and must report not-ready until the Job has migrated the
schema. Then every declared probe, port and helm test command must pass,
and the service must stop cleanly within the pod's grace period."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.parse
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deploytools import CHART_DIR, deep_merge, manifests, one, render
from runtime import (
    LOOPBACK,
    Database,
    build_binaries,
    create,
    free_port,
    http_status,
    map_hosts,
    mariadb,
    new_database,
    port_is_free,
    process_env,
    require_binary,
    resolve_env,
    wait_for_status,
)

EXTERNAL_HOST = "users-db.example.internal"
# A password that breaks naive URL building: it must arrive escaped.
SPECIAL_PASSWORD = "p@ss word/with:specials?#%"
READY_DEADLINE_SECONDS = 60
MIGRATION_TIMEOUT_SECONDS = 180


@pytest.fixture(scope="module")
def built() -> dict[str, Path | str]:
    return build_binaries()


@pytest.fixture
def binaries(built) -> dict[str, Path]:
    """Both binaries, for the drift tests."""
    return {name: require_binary(built, name) for name in built}


@pytest.fixture
def migration_binary(built) -> dict[str, Path]:
    """Only the migration binary, for the bad-input tests."""
    return {"usersvc-migration": require_binary(built, "usersvc-migration")}


def choose_ports() -> dict[str, Any]:
    """Keep the chart's default ports when they are free on this machine,
    else set free ones through the chart values and emit a warning."""
    if port_is_free(8080) and port_is_free(6565):
        return {}
    http_port, grpc_port = free_port(), free_port()
    warnings.warn(
        f"port 8080 or 6565 is busy here, so the drift test sets service.httpPort={http_port}"
        f" and service.grpcPort={grpc_port}",
        stacklevel=2,
    )
    return {"service": {"httpPort": http_port, "grpcPort": grpc_port}}


def quick_shutdown() -> dict[str, Any]:
    # The default 5-second delay only matters behind a load balancer.
    return {"config": {"shutdownDelaySeconds": 1}}


def external_parts(database: Database, password: str) -> dict[str, Any]:
    return {
        "sqlite": {"enabled": False},
        "replicaCount": 2,
        "database": {
            "driver": "mariadb" if database.engine == "mariadb" else "postgres",
            "host": EXTERNAL_HOST,
            "port": database.port,
            "name": database.name,
            "username": database.username,
            "password": password,
        },
    }


def external_url(database: Database, password: str) -> dict[str, Any]:
    scheme = "postgres" if database.engine == "postgres" else "mysql"
    credentials = f"{database.username}:{urllib.parse.quote(password, safe='')}"
    return {
        "sqlite": {"enabled": False},
        "database": {"url": f"{scheme}://{credentials}@{EXTERNAL_HOST}:{database.port}/{database.name}"},
    }


def dev_database(database: Database) -> dict[str, Any]:
    return {
        "sqlite": {"enabled": False},
        "replicaCount": 2,
        "devDatabase": {
            "enabled": True,
            "engine": database.engine,
            "name": database.name,
            "username": database.username,
        },
    }


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    (container,) = spec["containers"]
    return container


def dev_database_password(objects: list[dict[str, Any]]) -> str:
    """Return the password the dev database StatefulSet would be created with."""
    statefulset = one(objects, "StatefulSet", "dev-database")
    env = resolve_env(container_of(statefulset), objects)
    passwords = {value for name, value in env.items() if name.endswith("_PASSWORD")}
    assert len(passwords) == 1, f"dev database env sets different passwords: {sorted(env)}"
    return passwords.pop()


def check_dev_database_env(objects: list[dict[str, Any]], service_env: dict[str, str]) -> None:
    """The dev database must create exactly the database and user the service logs in with."""
    statefulset = one(objects, "StatefulSet", "dev-database")
    env = resolve_env(container_of(statefulset), objects)
    prefix = {"postgres": "POSTGRES", "mariadb": "MARIADB", "mysql": "MYSQL"}[service_env["DATABASE_DRIVER"]]
    database_key = "POSTGRES_DB" if prefix == "POSTGRES" else f"{prefix}_DATABASE"

    assert env[database_key] == service_env["DATABASE_NAME"]
    assert env[f"{prefix}_USER"] == service_env["DATABASE_USERNAME"]
    assert env[f"{prefix}_PASSWORD"] == service_env["DATABASE_PASSWORD"]
    assert statefulset["spec"]["serviceName"] == service_env["DATABASE_HOST"]


def probe_url(container: dict[str, Any], probe: str, ports: dict[str, int]) -> str:
    action = container[probe]["httpGet"]
    port = action["port"]
    number = ports[port] if isinstance(port, str) else port
    return f"http://{LOOPBACK}:{number}{action['path']}"


def run_migration(binaries, objects, hosts, *, timeout=MIGRATION_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
    job = one(objects, "Job")
    container = container_of(job)
    env = map_hosts(resolve_env(container, objects), hosts)
    command = [str(binaries["usersvc-migration"]), *container.get("command", [])[1:], *container.get("args", [])]
    return subprocess.run(command, env=process_env(env), capture_output=True, text=True, timeout=timeout, check=False)


def run_drift_scenario(binaries, values: dict[str, Any], hosts: list[str], tmp_path: Path, *, migrate: bool) -> None:
    objects = manifests(render(values), include_tests=True)
    deployment = one(objects, "Deployment")
    container = container_of(deployment)
    env = map_hosts(resolve_env(container, objects), hosts)
    # SQLite mode mounts a volume at /data, which a temporary directory replaces here.
    if env.get("DATABASE_URL", "").startswith("sqlite:///data/"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("sqlite:///data/", f"sqlite://{tmp_path}/")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert env["HTTP_ADDR"].endswith(f":{ports['http']}")
    assert env["GRPC_ADDR"].endswith(f":{ports['grpc']}")
    command = [str(binaries["usersvc"]), *container.get("command", [])[1:], *container.get("args", [])]
    log_path = tmp_path / "usersvc.log"

    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=process_env(env), stdout=log, stderr=subprocess.STDOUT)
    try:
        check_server(binaries, objects, container, ports, server, log_path, hosts, migrate=migrate)
        stop_and_check_exit(deployment, server, log_path)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def log_tail(log_path: Path) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])


def check_server(binaries, objects, container, ports, server, log_path, hosts, *, migrate: bool) -> None:
    startup = probe_url(container, "startupProbe", ports)
    liveness = probe_url(container, "livenessProbe", ports)
    readiness = probe_url(container, "readinessProbe", ports)

    status = wait_for_status(startup, 200, READY_DEADLINE_SECONDS, server)
    assert status == 200, f"startup probe {startup} returned {status}\n{log_tail(log_path)}"

    if migrate:
        # Before the Job runs, the schema is missing, so the pod must stay out of the Service.
        assert http_status(readiness) == 503, f"{readiness} reported ready before the migration\n{log_tail(log_path)}"
        result = run_migration(binaries, objects, hosts)
        assert result.returncode == 0, f"migration failed:\n{result.stdout}\n{result.stderr}"

    status = wait_for_status(readiness, 200, READY_DEADLINE_SECONDS, server)
    assert status == 200, f"readiness probe {readiness} returned {status}\n{log_tail(log_path)}"
    assert http_status(liveness) == 200, liveness
    assert http_status(f"http://{LOOPBACK}:{ports['http']}/docs") == 200, "Swagger UI named in NOTES.txt"
    assert http_status(f"http://{LOOPBACK}:{ports['http']}/metrics") == 200, "path scraped by the ServiceMonitor"

    for pod in helm_test_pods(objects):
        args = [arg.replace(f"http://{service_host(objects)}:", f"http://{LOOPBACK}:") for arg in container_of(pod)["args"]]
        result = subprocess.run(
            [str(binaries["usersvc"]), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"helm test {pod['metadata']['name']} failed: {result.stdout}{result.stderr}"


def stop_and_check_exit(deployment, server, log_path) -> None:
    """SIGTERM, as the kubelet sends it, must end the process with 0 within the grace period."""
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)

    code = server.wait(timeout=grace)

    assert code == 0, f"exit code {code} after SIGTERM\n{log_tail(log_path)}"
    assert time.monotonic() - started < grace


def helm_test_pods(objects) -> list[dict[str, Any]]:
    return [
        obj
        for obj in objects
        if obj["kind"] == "Pod" and (obj["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]


def service_host(objects) -> str:
    return one(objects, "Service", "server")["metadata"]["name"]


def test_drift_sqlite_defaults(binaries, tmp_path):
    values = choose_ports()

    run_drift_scenario(binaries, values, [], tmp_path, migrate=False)

    assert (tmp_path / "usersvc.db").exists(), "the service did not create its SQLite file under the /data mount"


@pytest.mark.parametrize("engine", ["mariadb", "postgres"])
def test_drift_external_database_parts(binaries, tmp_path, engine):
    database = new_database(engine)
    values = deep_merge(deep_merge(external_parts(database, SPECIAL_PASSWORD), choose_ports()), quick_shutdown())
    create(database, SPECIAL_PASSWORD)
    try:
        run_drift_scenario(binaries, values, [EXTERNAL_HOST], tmp_path, migrate=True)
    finally:
        database.drop()


@pytest.mark.parametrize("engine", ["mariadb", "postgres"])
def test_drift_external_database_url(binaries, tmp_path, engine):
    database = new_database(engine)
    values = deep_merge(deep_merge(external_url(database, SPECIAL_PASSWORD), choose_ports()), quick_shutdown())
    create(database, SPECIAL_PASSWORD)
    try:
        run_drift_scenario(binaries, values, [EXTERNAL_HOST], tmp_path, migrate=True)
    finally:
        database.drop()


@pytest.mark.parametrize("engine", ["mariadb", "postgres"])
def test_drift_dev_database(binaries, tmp_path, engine):
    """The local server replaces the dev StatefulSet, set up with the
    database, user and generated password that the StatefulSet would use."""
    database = new_database(engine)
    values = deep_merge(dev_database(database), choose_ports())
    # The chart generates a new random password on every offline render, so
    # the generated one is pinned for the render inside run_drift_scenario.
    objects = manifests(render(values))
    password = dev_database_password(objects)
    values = deep_merge(deep_merge(values, {"devDatabase": {"password": password}}), quick_shutdown())
    objects = manifests(render(values))
    service_env = resolve_env(container_of(one(objects, "Deployment")), objects)
    check_dev_database_env(objects, service_env)
    create(database, password)
    try:
        run_drift_scenario(binaries, values, [service_env["DATABASE_HOST"]], tmp_path, migrate=True)
    finally:
        database.drop()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_migration_wrong_password_reports_one_masked_line(migration_binary):
    database = new_database("mariadb")
    wrong_password = "wrong-" + SPECIAL_PASSWORD
    values = deep_merge(external_parts(database, wrong_password), {"migration": {"waitTimeoutSeconds": 3}})
    create(database, SPECIAL_PASSWORD)
    try:
        started = time.monotonic()
        result = run_migration(migration_binary, manifests(render(values)), [EXTERNAL_HOST], timeout=60)
        elapsed = time.monotonic() - started
    finally:
        database.drop()
    output = result.stdout + result.stderr
    lines = error_lines(result.stderr)

    assert result.returncode != 0
    assert elapsed < 30, f"took {elapsed:.0f}s despite a 3s wait timeout"
    assert len(lines) == 1, f"expected one error line, exit code {result.returncode}:\n{output}"
    assert database.username in lines[0]
    assert "****" in lines[0], lines[0]
    assert "Access denied" in lines[0], lines[0]
    assert wrong_password not in output
    assert urllib.parse.quote(wrong_password, safe="") not in output


def test_migration_unreachable_host_reports_one_masked_line(migration_binary):
    closed_port = free_port()
    values = {
        "sqlite": {"enabled": False},
        "database": {
            "driver": "postgres",
            "host": EXTERNAL_HOST,
            "port": closed_port,
            "username": "usersvc",
            "password": SPECIAL_PASSWORD,
        },
        "migration": {"waitTimeoutSeconds": 2},
    }

    started = time.monotonic()
    result = run_migration(migration_binary, manifests(render(values)), [EXTERNAL_HOST], timeout=60)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    lines = error_lines(result.stderr)

    assert result.returncode != 0
    assert elapsed < 30, f"took {elapsed:.0f}s despite a 2s wait timeout"
    assert len(lines) == 1, f"expected one error line, exit code {result.returncode}:\n{output}"
    assert f"{LOOPBACK}:{closed_port}" in lines[0], lines[0]
    assert "****" in lines[0], lines[0]
    assert SPECIAL_PASSWORD not in output
    assert urllib.parse.quote(SPECIAL_PASSWORD, safe="") not in output


def test_migration_jobs_of_successive_revisions(migration_binary):
    """Two upgrades in quick succession can leave two revisions' Jobs running
    at once. Both must succeed, and a later no-op upgrade's Job too."""
    database = new_database("mariadb")
    values = external_parts(database, SPECIAL_PASSWORD)
    create(database, SPECIAL_PASSWORD)
    try:
        jobs = {revision: manifests(render(values, revision=revision)) for revision in (1, 2, 3)}
        names = {one(objects, "Job")["metadata"]["name"] for objects in jobs.values()}
        with ThreadPoolExecutor(max_workers=2) as pool:
            concurrent = list(pool.map(lambda revision: run_migration(migration_binary, jobs[revision], [EXTERNAL_HOST]), (1, 2)))
        repeated = run_migration(migration_binary, jobs[3], [EXTERNAL_HOST])
    finally:
        database.drop()

    assert len(names) == 3, names
    for result in concurrent:
        assert result.returncode == 0, result.stdout + result.stderr
    assert repeated.returncode == 0, repeated.stdout + repeated.stderr


def test_old_pods_stay_ready_after_newer_migration(binaries, tmp_path):
    """An upgrade's Job migrates while the previous release still serves. A
    newer applied migration, added here by hand, must not take the running
    pods out of the Service."""
    database = new_database("mariadb")
    values = deep_merge(deep_merge(external_parts(database, SPECIAL_PASSWORD), choose_ports()), quick_shutdown())
    create(database, SPECIAL_PASSWORD)
    objects = manifests(render(values))
    container = container_of(one(objects, "Deployment"))
    env = map_hosts(resolve_env(container, objects), [EXTERNAL_HOST])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    readiness = probe_url(container, "readinessProbe", ports)
    log_path = tmp_path / "usersvc.log"
    try:
        assert run_migration(binaries, objects, [EXTERNAL_HOST]).returncode == 0
        with log_path.open("w") as log:
            server = subprocess.Popen([str(binaries["usersvc"])], env=process_env(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_for_status(readiness, 200, READY_DEADLINE_SECONDS, server) == 200, log_tail(log_path)
            mariadb(
                f"INSERT INTO `{database.name}`.seaql_migrations (version, applied_at)"
                " VALUES ('m29990101_000001_next_release', UNIX_TIMESTAMP())"
            )
            # Longer than one readiness period plus the service's own schema check interval.
            time.sleep(8)

            assert http_status(readiness) == 200, log_tail(log_path)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        database.drop()


# Environment variable -> chart value that sets it, for the numeric settings
# whose accepted range the binaries print in --help as "(MIN to MAX)".
RANGED_SETTINGS = {
    "HTTP_BODY_LIMIT": ("config", "httpBodyLimit"),
    "DATABASE_MAX_CONNECTIONS": ("database", "maxConnections"),
}


def help_ranges(binary: Path) -> dict[str, tuple[int, int]]:
    """Map each environment variable to the (min, max) range in the binary's --help."""
    output = subprocess.run([str(binary), "--help"], capture_output=True, text=True, check=True).stdout
    ranges = {}
    for match in re.finditer(r"\((\d+) to (\d+)\)[^\[]*\[env: (\w+)=", output):
        ranges[match.group(3)] = (int(match.group(1)), int(match.group(2)))
    return ranges


def test_schema_ranges_match_binaries(binaries):
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    for binary in binaries.values():
        for variable, (low, high) in help_ranges(binary).items():
            assert variable in RANGED_SETTINGS, f"{binary.name} --help gives a range for {variable}, which the chart does not map"
            section, key = RANGED_SETTINGS[variable]
            bounds = schema["properties"][section]["properties"][key]

            assert (bounds["minimum"], bounds["maximum"]) == (low, high), f"{section}.{key} vs {variable}"
