"""Lint, render and validate the Helm chart with the real Helm engine and the
Kubernetes API schemas.

The tests also check the rules the chart promises: restricted security
contexts, named ports, separate probes, a migration Job per revision, and
schema errors that name the bad value."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from deploytools import (
    CHART_DIR,
    EVERYTHING_ON,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    by_kind,
    chart_kube_versions,
    helm,
    kubernetes_validate,
    manifests,
    one,
    render,
    require_tool,
)

POD_OWNERS = {"Deployment", "StatefulSet", "Job"}


def pod_specs(objects, *, include_dev_database=True):
    """Yield (object, pod spec) for every pod the manifests create."""
    for obj in objects:
        if obj["kind"] == "Pod":
            yield obj, obj["spec"]
        elif obj["kind"] in POD_OWNERS:
            component = obj["metadata"]["labels"].get("app.kubernetes.io/component")
            if component == "dev-database" and not include_dev_database:
                continue
            yield obj, obj["spec"]["template"]["spec"]


def test_lint_strict_has_no_findings():
    report = helm().lint(CHART_DIR, strict=True)

    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], problems


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_lint_strict_per_scenario(scenario):
    report = helm().lint(CHART_DIR, SCENARIOS[scenario], strict=True)

    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], problems


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_manifests_pass_kubernetes_validate_strict(scenario, tmp_path):
    # test_service_monitor_matches_service checks the ServiceMonitor instead.
    kubernetes_validate(manifests(render(SCENARIOS[scenario]), include_tests=True), tmp_path)


def test_kubernetes_validate_rejects_unknown_field(tmp_path):
    """Guards the test above: --strict must reject a field that does not exist."""
    validator = require_tool("kubernetes-validate")
    deployment = one(manifests(render({})), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))

    result = subprocess.run(
        [validator, "--strict", "--quiet", "-k", chart_kube_versions()[0], str(path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "readinessProbes" in result.stdout + result.stderr


def test_service_monitor_matches_service():
    objects = manifests(render(EVERYTHING_ON))
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service", "server")

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "selector does not match the Service"
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_pods_run_restricted(scenario):
    objects = manifests(render(SCENARIOS[scenario]), include_tests=True)

    for owner, spec in pod_specs(objects):
        name = f"{owner['kind']}/{owner['metadata']['name']}"
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert isinstance(pod_context["runAsUser"], int) and pod_context["runAsUser"] > 0, name
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "resources" in container, name
            component = owner["metadata"]["labels"]["app.kubernetes.io/component"]
            if component != "dev-database":
                assert context["readOnlyRootFilesystem"] is True, name


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_deployment_ports_and_probes(scenario):
    values = SCENARIOS[scenario]
    objects = manifests(render(values))
    deployment = one(objects, "Deployment")
    service = one(objects, "Service", "server")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    http_port = values.get("service", {}).get("httpPort", 8080)
    grpc_port = values.get("service", {}).get("grpcPort", 6565)

    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": http_port, "grpc": grpc_port}
    service_ports = {port["name"]: (port["port"], port["targetPort"]) for port in service["spec"]["ports"]}
    assert service_ports == {"http": (http_port, "http"), "grpc": (grpc_port, "grpc")}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["HTTP_ADDR"] == f"0.0.0.0:{http_port}"
    assert env["GRPC_ADDR"] == f"0.0.0.0:{grpc_port}"
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_sqlite_mode_is_one_pod_without_job():
    objects = manifests(render({}))
    deployment = one(objects, "Deployment")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert by_kind(objects, "Job") == []
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"] == "sqlite:///data/usersvc.db?mode=rwc"


def test_sqlite_persistence_mounts_claim():
    objects = manifests(render(SCENARIOS["sqlite-persistent"]))
    claim = one(objects, "PersistentVolumeClaim")
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]

    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert volumes == [{"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}]


def test_migration_job_is_new_per_revision():
    first = one(manifests(render(SCENARIOS["external-parts"], revision=1)), "Job")
    second = one(manifests(render(SCENARIOS["external-parts"], revision=2)), "Job")

    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert second["metadata"]["name"].endswith("-migrate-2")
    assert "helm.sh/hook" not in (first["metadata"].get("annotations") or {})


def test_migration_job_is_bounded():
    job = one(manifests(render(SCENARIOS["external-parts"])), "Job")
    spec = job["spec"]

    assert spec["backoffLimit"] == 3
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert len(job["metadata"]["name"]) <= 63


def test_migration_job_name_fits_label_limit():
    long_release = "a-very-long-release-name-that-pushes-the-limits-of-dns"
    job = one(manifests(render(SCENARIOS["external-parts"], revision=12345, release=long_release)), "Job")

    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["name"].endswith("-migrate-12345")


def test_migration_and_service_share_database_env():
    for scenario in ("external-parts", "external-url", "external-existing-secret", "dev-postgres"):
        objects = manifests(render(SCENARIOS[scenario]))
        service_env = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        job_env = one(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["env"]

        database_env = [item for item in service_env if item["name"].startswith("DATABASE_")]
        shared = [item for item in database_env if item["name"] not in ("DATABASE_MAX_CONNECTIONS", "DATABASE_ACQUIRE_TIMEOUT")]
        assert shared, scenario
        for item in shared:
            assert item in job_env, f"{scenario}: {item['name']} differs between Deployment and Job"


def test_existing_secret_is_referenced_not_created():
    objects = manifests(render(EVERYTHING_ON))
    env = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    password = next(item for item in env if item["name"] == "DATABASE_PASSWORD")

    # Optional, so a missing key reaches the binaries, which log it, instead of
    # stopping the container in the kubelet.
    assert password["valueFrom"]["secretKeyRef"] == {"name": "users-db-credentials", "key": "user-password", "optional": True}
    assert by_kind(objects, "Secret") == []


@pytest.mark.parametrize("engine", ["mysql", "mariadb", "postgres"])
def test_dev_database_uses_official_image(engine):
    objects = manifests(render(SCENARIOS[f"dev-{engine}"]))
    statefulset = one(objects, "StatefulSet", "dev-database")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    deployment_env = {
        item["name"]: item for item in one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }

    assert statefulset["spec"]["replicas"] == 1
    assert container["image"].split(":")[0] == engine
    assert "Not for production" in statefulset["metadata"]["annotations"]["usersvc/purpose"]
    assert deployment_env["DATABASE_DRIVER"]["value"] == engine
    assert deployment_env["DATABASE_HOST"]["value"] == statefulset["spec"]["serviceName"]
    assert deployment_env["DATABASE_PORT"]["value"] == str(container["ports"][0]["containerPort"])
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_everything_on_renders_optional_resources():
    objects = manifests(render(EVERYTHING_ON))
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]
    hpa = one(objects, "HorizontalPodAutoscaler")

    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert one(objects, "Ingress")["spec"]["rules"][0]["host"] == "users.example.com"
    assert len(by_kind(objects, "NetworkPolicy")) == 1
    assert pod["metadata"]["labels"]["team"] == "users"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "users-team"
    assert pod["spec"]["priorityClassName"] == "high"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    spread = pod["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    image = pod["spec"]["containers"][0]["image"]
    assert image == "usersvc:1.2.3@sha256:" + "a" * 64
    job_image = one(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job_image == "usersvc-migration:1.2.3@sha256:" + "b" * 64


def test_selectors_pick_only_service_pods():
    objects = manifests(render(SCENARIOS["dev-mysql"]), include_tests=True)
    selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]

    for owner, _ in pod_specs(objects):
        if owner["kind"] == "Deployment":
            continue
        labels = owner["metadata"]["labels"]
        assert not selector.items() <= labels.items(), f"{owner['kind']} pods match the Deployment selector"


def test_helm_test_pods_check_readiness_and_grpc():
    rendered = render({})
    tests = [obj for path, text in rendered.items() if "/templates/tests/" in path for obj in yaml.safe_load_all(text)]
    args = [" ".join(pod["spec"]["containers"][0]["args"]) for pod in tests]

    assert all(pod["metadata"]["annotations"]["helm.sh/hook"] == "test" for pod in tests)
    assert any(f"http://{RELEASE}-usersvc:8080/readyz" in line for line in args)
    assert any(
        f"--grpc-endpoint http://{RELEASE}-usersvc:6565" in line
        and "--grpc-service com.example.user.service.v1.UserService" in line
        for line in args
    )


def test_notes_show_port_forward_swagger_and_grpcurl():
    notes = render({})["usersvc/templates/NOTES.txt"]

    assert f"kubectl --namespace {NAMESPACE} port-forward service/{RELEASE}-usersvc 8080:8080 6565:6565" in notes
    assert "http://127.0.0.1:8080/docs" in notes
    assert "grpcurl -plaintext 127.0.0.1:6565" in notes


INVALID_VALUES = [
    ("negative replicas", {"replicaCount": -1}, "/replicaCount"),
    (
        "unknown dev database engine",
        {"sqlite": {"enabled": False}, "devDatabase": {"enabled": True, "engine": "oracle"}},
        "/devDatabase/engine",
    ),
    ("missing external database", {"sqlite": {"enabled": False}}, "/database/host"),
    ("malformed image tag", {"image": {"tag": "v1:bad"}}, "/image/tag"),
    ("malformed migration tag", {"migration": {"image": {"tag": "-v1"}}}, "/migration/image/tag"),
    ("malformed digest", {"image": {"digest": "sha256:xyz"}}, "/image/digest"),
    ("sqlite with two replicas", {"replicaCount": 2}, "/replicaCount"),
    ("sqlite with external host", {"database": {"host": "db"}}, "/database/host"),
    (
        "dev database with external url",
        {"sqlite": {"enabled": False}, "devDatabase": {"enabled": True}, "database": {"url": "mysql://x"}},
        "/database/url",
    ),
    ("url and host together", {"sqlite": {"enabled": False}, "database": {"url": "mysql://x", "host": "db"}}, "/database/host"),
    ("port out of range", {"service": {"httpPort": 70000}}, "/service/httpPort"),
    ("unknown top-level key", {"replicas": 2}, "replicas"),
    ("dev user root", {"sqlite": {"enabled": False}, "devDatabase": {"enabled": True, "username": "root"}}, "/devDatabase/username"),
]


@pytest.mark.parametrize("case,values,path", INVALID_VALUES, ids=[case for case, _, _ in INVALID_VALUES])
def test_schema_rejects_invalid_values(case, values, path):
    helm_python = helm()
    chart = helm_python.Chart.load(CHART_DIR)

    with pytest.raises(helm_python.HelmError) as error:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)

    assert path in str(error.value), f"{case}: message does not name {path}: {error.value}"


def test_schema_accepts_every_scenario():
    chart = helm().Chart.load(CHART_DIR)

    for values in SCENARIOS.values():
        chart.validate_schema(values)


@pytest.mark.parametrize("kube_version", ["oldest", "newest"])
def test_lint_accepts_supported_kubernetes(kube_version):
    oldest, newest = chart_kube_versions()
    version = oldest if kube_version == "oldest" else newest

    report = helm().lint(CHART_DIR, strict=True, kube_version=f"v{version}")

    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], problems


def test_every_value_is_documented():
    """Each setting in values.yaml has a comment right above it or above one
    of its parent keys, so `helm show values` explains every setting."""
    lines = [line for line in (CHART_DIR / "values.yaml").read_text().splitlines()]
    undocumented = []
    # Stack of (indent, documented) for the enclosing keys.
    parents: list[tuple[int, bool]] = []
    previous = ""

    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            previous = stripped
            continue
        indent = len(line) - len(line.lstrip())
        key, _, inline_value = stripped.partition(":")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        documented = previous.startswith("#") or any(flag for _, flag in parents)
        following = next((later.strip() for later in lines[number + 1 :] if later.strip()), "")
        is_setting = bool(inline_value.strip()) or following.startswith("- ")
        if is_setting and not documented:
            undocumented.append(key)
        parents.append((indent, documented))
        previous = stripped

    assert undocumented == [], f"values.yaml settings without a comment: {undocumented}"


def test_schema_describes_every_default():
    """values.schema.json forbids unknown keys at every level it defines, so a
    typo in a value name fails instead of being ignored."""
    import json

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    missing_keys = []

    def walk(values, node, path):
        if not isinstance(values, dict) or node.get("type") != "object" or "properties" not in node:
            return
        assert node.get("additionalProperties") is False, f"{path or '/'} allows unknown keys"
        for key, value in values.items():
            if key not in node["properties"]:
                missing_keys.append(f"{path}/{key}")
                continue
            walk(value, node["properties"][key], f"{path}/{key}")

    walk(defaults, schema, "")

    assert missing_keys == []


def test_values_schema_is_valid_json_schema():
    checker = require_tool("check-jsonschema")

    result = subprocess.run(
        [checker, "--check-metaschema", str(CHART_DIR / "values.schema.json")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
