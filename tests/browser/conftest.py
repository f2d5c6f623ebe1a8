"""Fixtures for the screens' tests in real headless Chromium (Playwright).

`browser`: one Chromium per xdist worker (session scope), launched as tests/browser/chromium.py says.
`screens`: a fresh `make local` stack (LocalStack on free ports, time-scaled) and a way to open any
screen on it signed in, each in its own browser context (its own storage: its own person), through the
same one-time link `make link` prints. Every console error or uncaught exception on a page fails the
test, except the browser's own "Failed to load resource" line for an API answer the screen handles and
explains (a 4xx: a refused admission code, a claim another barista won) or a network failure the test
caused (offline, a stalled connection: the screen shows "Reconnecting…").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.web.chromium import SKIP_MESSAGE, chromium_available, launch_options
from tests.browser.screens import Screens


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium for this worker; the test is skipped (loudly, see tests/conftest.py) without one."""
    if not chromium_available():
        pytest.skip(SKIP_MESSAGE)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a busy 2-core machine: waits for what a person would see
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**launch_options())
        yield chromium
        chromium.close()


@pytest.fixture
def screens(browser: Any) -> Iterator[Screens]:
    """A local stack (time scale 0.1 unless the test calls `screens.start(time_scale=...)` first)."""
    with Screens(browser) as opened:
        yield opened
        opened.assert_no_page_errors()
