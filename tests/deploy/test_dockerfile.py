"""Lint the Dockerfile with hadolint and check that what it builds and copies
exists in the Cargo workspace."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import tomllib

from deploytools import DOCKERFILE, REPO_ROOT, require_tool


def stages() -> dict[str, list[str]]:
    """Map each stage name to its instructions, with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            result[current] = []
        elif current:
            result[current].append(line)
    return result


def workspace_binaries() -> dict[str, set[str]]:
    """Map each workspace package name to the binary names it builds."""
    root = tomllib.loads((REPO_ROOT / "Cargo.toml").read_text())
    packages: dict[str, set[str]] = {}
    for member in root["workspace"]["members"]:
        for directory in glob.glob(str(REPO_ROOT / member)):
            manifest = tomllib.loads((REPO_ROOT / directory / "Cargo.toml").read_text())
            name = manifest["package"]["name"]
            binaries = {item["name"] for item in manifest.get("bin", [])}
            if (REPO_ROOT / directory / "src" / "main.rs").exists() and not manifest.get("bin"):
                binaries.add(name)
            packages[name] = binaries
    return packages


def test_hadolint_passes():
    hadolint = require_tool("hadolint")

    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_build_names_workspace_packages_and_binaries():
    packages = workspace_binaries()
    builder = " ".join(stages()["builder"])

    named_packages = set(re.findall(r"-p\s+(\S+)", builder))
    built_binaries = set(re.findall(r"target/release/([\w.-]+)", builder))

    assert named_packages == {"usersvc", "migration"}
    assert named_packages <= packages.keys(), f"unknown packages: {named_packages - packages.keys()}"
    available = set().union(*(packages[name] for name in named_packages))
    assert built_binaries == {"usersvc", "usersvc-migration"}
    assert built_binaries <= available, f"binaries not built by {named_packages}: {built_binaries - available}"


def test_final_stages_hold_one_binary_each():
    all_stages = stages()

    for stage, binary in (("app", "usersvc"), ("migration", "usersvc-migration")):
        instructions = all_stages[stage]
        copies = [line for line in instructions if line.startswith("COPY")]
        entrypoints = [line for line in instructions if line.startswith("ENTRYPOINT")]
        users = [line for line in instructions if line.startswith("USER")]
        assert copies == [f"COPY --from=builder /out/{binary} /usr/local/bin/{binary}"], stage
        assert len(entrypoints) == 1, stage
        assert json.loads(entrypoints[0].removeprefix("ENTRYPOINT")) == [f"/usr/local/bin/{binary}"], stage
        assert re.fullmatch(r"USER \d+:\d+", users[-1]), f"{stage} must run as a numeric non-root user"
        assert users[-1] != "USER 0:0", stage


def test_app_is_the_default_target():
    assert list(stages())[-1] == "app"


def test_copied_sources_exist():
    for instructions in stages().values():
        for line in instructions:
            parts = line.split()
            if parts[0] != "COPY" or any(part.startswith("--from") for part in parts):
                continue
            for source in parts[1:-1]:
                assert (REPO_ROOT / source).exists(), f"{line}: {source} does not exist"


def test_dockerignore_keeps_build_inputs():
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    root = tomllib.loads((REPO_ROOT / "Cargo.toml").read_text())
    needed = {"Cargo.toml", "Cargo.lock", "src", "proto", *root["workspace"]["members"]}

    assert needed.isdisjoint(ignored), needed & ignored
    assert {"target", ".git", ".venv"} <= ignored
