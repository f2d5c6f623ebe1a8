"""scripts/find-python picks the interpreter `make` builds the virtual environments with.

A newcomer's machine may have any Python from 3.11 up and no pyenv (Ubuntu 24.04: 3.12 only;
Homebrew: 3.13). These tests give the script fake interpreters on an otherwise empty PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.template_tables import ROOT

SCRIPT = ROOT / "scripts" / "find-python"


def fake_python(directory: Path, name: str, version: str | None) -> Path:
    """An executable that answers the script's probe like Python `version` would (None: it fails,
    like a pyenv shim of an unselected version or a Python without its venv module)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    body = f'echo "{version} {path}"' if version else "echo 'pyenv: command not found' >&2; exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def find(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), *args],
        env={"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_machine_with_only_python_3_12_uses_it(tmp_path: Path) -> None:
    # Given Ubuntu 24.04: python3 and python3.12, nothing else
    chosen = fake_python(tmp_path / "bin", "python3.12", "3.12")
    fake_python(tmp_path / "bin", "python3", "3.12")
    # When make looks for an interpreter
    result = find(tmp_path)
    # Then it takes 3.12
    assert (result.returncode, result.stdout.strip()) == (0, str(chosen))


def test_the_lambda_runtime_version_wins_over_others(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3.11", "3.11")
    fake_python(tmp_path / "bin", "python3.12", "3.12")
    chosen = fake_python(tmp_path / "bin", "python3.13", "3.13")
    assert find(tmp_path).stdout.strip() == str(chosen)


def test_a_newer_python3_is_used_when_no_preferred_version_exists(tmp_path: Path) -> None:
    chosen = fake_python(tmp_path / "bin", "python3", "3.14")
    assert find(tmp_path).stdout.strip() == str(chosen)


def test_a_shim_that_does_not_run_is_passed_over_for_pyenvs_interpreter(tmp_path: Path) -> None:
    # Given a pyenv shim for 3.13 that fails (3.13 installed but not selected) and pyenv's own 3.13
    fake_python(tmp_path / "bin", "python3.13", None)
    fake_python(tmp_path / "bin", "python3.11", "3.11")
    chosen = fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin", "python3.13", "3.13")
    # Then the real 3.13 is found
    assert find(tmp_path).stdout.strip() == str(chosen)


@pytest.mark.parametrize(
    "interpreters",
    [
        {},  # no Python at all
        {"python3": "3.10"},  # too old
        {"python3.12": None},  # present but cannot make a venv (no python3.12-venv)
    ],
    ids=["none", "too-old", "no-venv-module"],
)
def test_without_a_usable_python_it_says_what_to_install(
    tmp_path: Path, interpreters: dict[str, str | None]
) -> None:
    (tmp_path / "bin").mkdir()
    for name, version in interpreters.items():
        fake_python(tmp_path / "bin", name, version)
    result = find(tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "3.11 or newer" in result.stderr
    assert "apt-get install python3.12 python3.12-venv" in result.stderr


def test_sam_build_asks_for_the_runtimes_version_only(tmp_path: Path) -> None:
    # Given 3.12 only
    fake_python(tmp_path / "bin", "python3.12", "3.12")
    # When `make build` asks for 3.13, there is none; when 3.12 is there too, 3.13 is still chosen
    assert find(tmp_path, "3.13").returncode == 1
    chosen = fake_python(tmp_path / "bin", "python3.13", "3.13")
    assert find(tmp_path, "3.13").stdout.strip() == str(chosen)
