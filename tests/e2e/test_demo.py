"""`make demo` with a small rush: the real API, workflow and handlers, run as `make demo` runs it.

The demo checks itself against the orders table and the executions (local/demo.py `verify`, whose
own tests are in tests/local/test_demo_verify.py); here the whole run must pass those checks and its
summary must account for every customer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.flows import run_make_module, summary_line

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMERS = 8
SUMMARY = re.compile(
    r"^Orders (?P<orders>\d+): completed (?P<completed>\d+), cancelled (?P<cancelled>\d+), "
    r"timed out (?P<timed_out>\d+) \(customer (?P<customer>\d+), barista (?P<barista>\d+)\), "
    r"rejected (?P<rejected>\d+)$",
    re.MULTILINE,
)


def test_a_small_rush_ends_every_order_in_exactly_one_terminal_state(tmp_path: Path) -> None:
    # Given the demo with a small rush (default time scale and seed, as `make demo CUSTOMERS=8`)
    log = tmp_path / "demo.log"

    # When it runs
    output = run_make_module("local.demo", "--customers", str(CUSTOMERS), log_file=log, timeout=300)

    # Then it passes its own checks against the orders table and the executions (it exited 0)
    assert f"OK: all {CUSTOMERS} orders ended in exactly one terminal state" in output
    # And its summary accounts for every customer exactly once
    counts = {name: int(value) for name, value in summary_line(SUMMARY, output).items()}
    assert counts["orders"] == CUSTOMERS
    assert counts["completed"] + counts["cancelled"] + counts["timed_out"] + counts["rejected"] == CUSTOMERS
    assert counts["customer"] + counts["barista"] == counts["timed_out"]
    # And the timeline has one row per order, each with its outcome
    rows = [line for line in output.splitlines() if re.match(r"^\s*\d+\s+(\d+|-)\s", line)]
    assert len(rows) == CUSTOMERS, output
    assert all(re.search(r"(COMPLETED|CANCELLED|TIMED_OUT|REJECTED)( \(.+\))?$", row) for row in rows)
    # And the handlers' logs went to the log file, not the screen
    assert '"function_name"' in log.read_text()
    assert '"function_name"' not in output
