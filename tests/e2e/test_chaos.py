"""`make chaos` with a small rush: faults injected at random, then replay and reconcile, and the check
that nothing was lost or stuck and no capacity slot leaked (local/faults/chaos.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.flows import run_make_module, summary_line

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
    options = ["--customers", str(CUSTOMERS), "--rate", str(RATE)]

    # When it runs
    output = run_make_module("local.faults.chaos", *options, log_file=tmp_path / "chaos.log", timeout=600)

    # Then it passes its own check (it exited 0), having injected faults, replayed and reconciled
    assert int(summary_line(FAULTS, output)["total"]) > 0
    assert "$ make replay" in output and "$ make reconcile" in output
    check = summary_line(CHECK, output)
    assert (check["lost"], check["stuck"], check["leaked"]) == ("0", "0", "0"), output
    assert f"OK: {CUSTOMERS} orders placed" in output
