"""Shared helpers for the deployment tests: chart rendering, the value sets
that every render test uses, and tool lookup.

A missing tool skips its tests locally; with CI=true it fails them, so CI
never passes on checks that did not run.
"""

from __future__ import annotations

import copy
import os
import subprocess
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "usersvc"
SKAFFOLD_FILE = REPO_ROOT / "skaffold.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"

RELEASE = "demo"
NAMESPACE = "users"

IN_CI = os.environ.get("CI") == "true"

# An external database selected through host parts.
EXTERNAL_PARTS = {
    "sqlite": {"enabled": False},
    "replicaCount": 2,
    "database": {
        "driver": "postgres",
        "host": "users-db.example.internal",
        "name": "users",
        "username": "usersvc",
        "password": "p@ss word/with:specials",
    },
}

# Every optional resource on at once, with an external database and an
# existing Secret for the password.
EVERYTHING_ON = {
    "sqlite": {"enabled": False},
    "replicaCount": 3,
    "image": {"tag": "1.2.3", "digest": "sha256:" + "a" * 64},
    "migration": {"image": {"tag": "1.2.3", "digest": "sha256:" + "b" * 64}},
    "database": {
        "driver": "mysql",
        "host": "users-db.example.internal",
        "port": 3307,
        "existingSecret": "users-db-credentials",
        "existingSecretKey": "user-password",
    },
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount": {"annotations": {"example.com/role": "usersvc"}},
    "service": {"type": "ClusterIP", "httpPort": 8081, "grpcPort": 6566, "annotations": {"a": "b"}},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"},
        "hosts": [{"host": "users.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "users-tls", "hosts": ["users.example.com"]}],
    },
    "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 6},
    "podDisruptionBudget": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
    },
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "usersvc"}},
                    },
                }
            ]
        }
    },
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "users", "effect": "NoSchedule"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "priorityClassName": "high",
    "podAnnotations": {"example.com/owner": "users-team"},
    "podLabels": {"team": "users"},
    "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
}


def dev_database(engine: str) -> dict[str, Any]:
    return {
        "sqlite": {"enabled": False},
        "replicaCount": 2,
        "devDatabase": {"enabled": True, "engine": engine, "persistence": {"enabled": True}},
    }


SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "sqlite-persistent": {"sqlite": {"enabled": True, "persistence": {"enabled": True, "size": "2Gi"}}},
    "dev-mysql": dev_database("mysql"),
    "dev-mariadb": dev_database("mariadb"),
    "dev-postgres": dev_database("postgres"),
    "external-parts": EXTERNAL_PARTS,
    "external-url": {
        "sqlite": {"enabled": False},
        "database": {"url": "mysql://usersvc:secret@users-db.example.internal:3306/users"},
    },
    "external-existing-secret": {
        "sqlite": {"enabled": False},
        "database": {"host": "users-db.example.internal", "existingSecret": "users-db-credentials"},
    },
    "everything-on": EVERYTHING_ON,
}


def require_tool(name: str) -> str:
    """Return the path of a command-line tool from the virtualenv or PATH, or
    skip the test (fail it under CI) when it is missing."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    missing(f"{name} is not installed; install tests/deploy/requirements.txt into .venv")
    raise AssertionError("unreachable")


def missing(reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true makes every check mandatory)")
    pytest.skip(reason)


def helm():
    try:
        import helm_python
    except ImportError:
        missing("helm-python-sdk is not installed")
    return helm_python


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render(values: dict[str, Any], *, revision: int = 1, release: str = RELEASE) -> dict[str, str]:
    """Render the chart with the real Helm engine, as `helm install` would."""
    chart = helm().Chart.load(CHART_DIR)
    return chart.render(
        values,
        name=release,
        namespace=NAMESPACE,
        revision=revision,
        is_install=revision == 1,
        is_upgrade=revision > 1,
    )


def manifests(rendered: dict[str, str], *, include_tests: bool = False) -> list[dict[str, Any]]:
    """Parse rendered templates into Kubernetes objects. NOTES.txt is text,
    and helm test pods are left out unless asked for."""
    objects = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        if "/templates/tests/" in path and not include_tests:
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    matches = [
        obj
        for obj in by_kind(objects, kind)
        if component is None or obj["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(matches) == 1, f"expected one {kind} {component or ''}, found {len(matches)}"
    return matches[0]


def chart_kube_versions() -> tuple[str, str]:
    """Return the oldest and newest Kubernetes versions to validate against:
    the lower bound of Chart.yaml's kubeVersion and the newest schema that
    kubernetes-validate bundles (the range has no upper bound)."""
    import re

    try:
        import kubernetes_validate
    except ImportError:
        missing("kubernetes-validate is not installed")
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    lower = re.match(r">=\s*v?(\d+)\.(\d+)", chart["kubeVersion"])
    assert lower, f"kubeVersion {chart['kubeVersion']!r} has no lower bound"
    newest = kubernetes_validate.latest_version()
    return f"{lower.group(1)}.{lower.group(2)}.0", newest


def kubernetes_validate(objects: list[dict[str, Any]], directory: Path) -> None:
    """Run `kubernetes-validate --strict` on the objects for the oldest and
    newest supported Kubernetes versions. ServiceMonitor is a CRD that the
    Kubernetes schemas do not contain, so callers check it separately."""
    validator = require_tool("kubernetes-validate")
    core = [obj for obj in objects if obj["kind"] != "ServiceMonitor"]
    path = directory / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(core))

    for version in chart_kube_versions():
        result = subprocess.run(
            [validator, "--strict", "--quiet", "-k", version, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"Kubernetes {version}:\n{result.stdout}{result.stderr}"
