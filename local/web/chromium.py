"""Which Chromium the browser tests (tests/browser) and `make screenshots` drive, and how it is launched.

Playwright's own browser download is not reachable on these machines, so Debian's `chromium` package is
preferred: its real binary (not the /usr/bin wrapper script). SERVERLESSPRESSO_CHROMIUM names another
one; elsewhere, whatever Chromium Playwright finds. `.ci/run` installs Debian's package when missing, so
CI never skips the browser tests; on a machine without any, `make test` says loudly that it skipped them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls to the internet
    "--disable-component-update",
    "--disable-sync",
]
SKIP_MESSAGE = (
    "BROWSER TESTS SKIPPED: no Chromium found (install Debian's `chromium` package, or set "
    "SERVERLESSPRESSO_CHROMIUM to a Chromium binary). The screens were NOT tested."
)


def chromium_executable() -> str | None:
    """The Chromium binary to launch, or None to let Playwright use its own (if it has one)."""
    named = os.environ.get("SERVERLESSPRESSO_CHROMIUM")
    if named:
        return named
    return str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.is_file() else None


def chromium_available() -> bool:
    """True when Playwright is installed and some Chromium binary exists for it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    executable = chromium_executable()
    if executable:
        return Path(executable).is_file()
    with sync_playwright() as playwright:
        return Path(playwright.chromium.executable_path).is_file()


def launch_options() -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch`."""
    executable = chromium_executable()
    return {"args": LAUNCH_ARGS, **({"executable_path": executable} if executable else {})}
