"""The command line: help, version, usage errors, and the README/CI contract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from calsync import __version__
from calsync.cli import EXIT_CONFIG, main

ROOT = Path(__file__).parents[2]


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("check-config", "sim"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"calsync {__version__}"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == EXIT_CONFIG
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    example = ROOT / "config" / "calsync.example.toml"
    result = subprocess.run(
        [sys.executable, "-m", "calsync", "check-config", "--config", str(example), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"mailboxes"' in result.stdout


def test_readme_test_command_is_what_ci_runs() -> None:
    """.ci/run runs exactly the README's test command."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^python3 -m venv .*pytest.*$", readme, flags=re.MULTILINE)
    assert len(commands) == 1, commands
    assert commands[0] in ci.splitlines()
    assert re.search(r"^python3 -m venv .*calsync demo$", readme, flags=re.MULTILINE)
