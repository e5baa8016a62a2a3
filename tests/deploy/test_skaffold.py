"""Check skaffold.yaml against the published Skaffold schema for its
apiVersion, and check that every chart value it sets exists in the chart's
values.schema.json and renders for each profile."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
import yaml

from deploytools import (
    CHART_DIR,
    SHARED_SCHEMAS,
    SKAFFOLD_FILE,
    helm,
    kubernetes_validate,
    manifests,
    one,
    render,
    require_tool,
)

# Stand-ins for what Skaffold fills in after a build.
TEMPLATE_FIELDS = {
    "IMAGE_REPO_usersvc": "usersvc",
    "IMAGE_TAG_usersvc": "abc1234",
    "IMAGE_DIGEST_usersvc": "sha256:" + "c" * 64,
    "IMAGE_REPO_usersvc_migration": "usersvc-migration",
    "IMAGE_TAG_usersvc_migration": "abc1234",
    "IMAGE_DIGEST_usersvc_migration": "",
}


def skaffold_config() -> dict[str, Any]:
    return yaml.safe_load(SKAFFOLD_FILE.read_text())


def apply_patches(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the JSON Patch operations that Skaffold profiles use (add, replace, remove)."""
    patched = copy.deepcopy(config)
    for patch in patches:
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in patch["path"].split("/")[1:]]
        node = patched
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if patch["op"] in ("add", "replace"):
            if patch["op"] == "replace":
                assert last in node, f"replace of missing path {patch['path']}"
            node[last] = patch["value"]
        elif patch["op"] == "remove":
            del node[last]
        else:
            raise AssertionError(f"unsupported patch op {patch['op']}")
    return patched


def profile_configs() -> dict[str, dict[str, Any]]:
    config = skaffold_config()
    configs = {"default": config}
    for profile in config.get("profiles", []):
        assert "deploy" not in profile, "profiles should patch the release, not replace deploy"
        configs[profile["name"]] = apply_patches(config, profile.get("patches", []))
    return configs


def fill_template(template: str) -> str:
    text = template
    for field, value in TEMPLATE_FIELDS.items():
        text = text.replace("{{." + field + "}}", value)
    assert "{{" not in text, f"unknown template field in {template!r}"
    return text


def release_values(config: dict[str, Any]) -> dict[str, Any]:
    """Turn a release's setValues and setValueTemplates into nested chart values."""
    (release,) = config["deploy"]["helm"]["releases"]
    flat = dict(release.get("setValues", {}))
    flat.update({key: fill_template(value) for key, value in release.get("setValueTemplates", {}).items()})
    values: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = values
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return values


def schema_has_key(schema: dict[str, Any], dotted: str) -> bool:
    node = schema
    for part in dotted.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            return False
        node = properties[part]
    return True


def test_skaffold_matches_schema_for_its_api_version():
    checker = require_tool("check-jsonschema")
    version = skaffold_config()["apiVersion"].removeprefix("skaffold/")
    schema = SHARED_SCHEMAS / "skaffold" / f"{version}.json"
    if not SHARED_SCHEMAS.is_dir():
        pytest.skip(f"{SHARED_SCHEMAS} is absent, so the Skaffold schema cannot be checked")
    assert schema.is_file(), f"no Skaffold schema for {version} in {schema.parent}"

    result = subprocess.run(
        [checker, "--schemafile", str(schema), str(SKAFFOLD_FILE)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_skaffold_api_version_is_current():
    assert skaffold_config()["apiVersion"] in ("skaffold/v4beta13", "skaffold/v4beta14")


@pytest.mark.parametrize("profile", sorted(profile_configs()))
def test_skaffold_keys_exist_in_values_schema(profile):
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    (release,) = profile_configs()[profile]["deploy"]["helm"]["releases"]
    keys = list(release.get("setValues", {})) + list(release.get("setValueTemplates", {}))

    unknown = [key for key in keys if not schema_has_key(schema, key)]
    assert keys
    assert unknown == [], f"{profile}: keys missing from values.schema.json: {unknown}"


def test_skaffold_sets_repository_tag_digest_of_both_images():
    (release,) = skaffold_config()["deploy"]["helm"]["releases"]
    templates = release["setValueTemplates"]

    for prefix, artifact in (("image", "usersvc"), ("migration.image", "usersvc_migration")):
        for part, field in (("repository", "IMAGE_REPO"), ("tag", "IMAGE_TAG"), ("digest", "IMAGE_DIGEST")):
            assert templates[f"{prefix}.{part}"] == "{{." + f"{field}_{artifact}" + "}}"


def test_skaffold_artifacts_use_dockerfile_targets():
    artifacts = {item["image"]: item["docker"] for item in skaffold_config()["build"]["artifacts"]}
    dockerfile = (SKAFFOLD_FILE.parent / "Dockerfile").read_text()

    assert {name: docker["target"] for name, docker in artifacts.items()} == {
        "usersvc": "app",
        "usersvc-migration": "migration",
    }
    for docker in artifacts.values():
        assert f" AS {docker['target']}\n" in dockerfile


@pytest.mark.parametrize("profile", sorted(profile_configs()))
def test_skaffold_profile_renders(profile, tmp_path):
    config = profile_configs()[profile]
    values = release_values(config)
    (release,) = config["deploy"]["helm"]["releases"]
    helm().Chart.load(CHART_DIR).validate_schema(values)

    objects = manifests(render(values, release=release["name"]), include_tests=True)
    kubernetes_validate(objects, tmp_path)
    service = one(objects, "Service", "server")
    image = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]

    assert image == "usersvc:abc1234@sha256:" + "c" * 64
    forwarded = {(item["resourceName"], item["port"]) for item in config["portForward"]}
    assert forwarded == {(service["metadata"]["name"], port["port"]) for port in service["spec"]["ports"]}
    jobs = [obj for obj in objects if obj["kind"] == "Job"]
    if profile == "default":
        assert jobs == [], "the SQLite default needs no migration Job"
    else:
        assert one(objects, "StatefulSet", "dev-database")["spec"]["template"]["spec"]["containers"][0]["name"] == profile
        assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "usersvc-migration:abc1234"
