"""`make chaos` with a small rush: faults injected at random, then replay and reconcile, and the check
that nothing was lost or stuck and no capacity slot leaked (local/faults/chaos.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMERS = 8
RATE = 0.3  # high, so that a small rush meets faults of most kinds
FAULTS = re.compile(r"^Faults injected: (?P<total>\d+) \((?P<kinds>[^)]*)\)$", re.MULTILINE)
CHECK = re.compile(
    r"^Orders lost: (?P<lost>\d+); stuck in a non-terminal state: (?P<stuck>\d+); "
    r"capacity slots leaked: (?P<leaked>\d+)$",
    re.MULTILINE,
)


def test_a_small_rush_under_faults_loses_nothing_and_leaves_nothing_stuck(tmp_path: Path) -> None:
    # Given `make chaos CUSTOMERS=8 RATE=0.3`
    command = [sys.executable, "-m", "local.faults.chaos", "--customers", str(CUSTOMERS), "--rate", str(RATE)]

    # When it runs
    completed = subprocess.run(
        [*command, "--log-file", str(tmp_path / "chaos.log")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout

    # Then it passes its own check, having injected faults, replayed and reconciled
    assert completed.returncode == 0, f"{output}\n{completed.stderr}"
    faults = FAULTS.search(output)
    assert faults and int(faults["total"]) > 0, output
    assert "$ make replay" in output and "$ make reconcile" in output
    check = CHECK.search(output)
    assert check and (check["lost"], check["stuck"], check["leaked"]) == ("0", "0", "0"), output
    assert f"OK: {CUSTOMERS} orders placed" in output
