"""`make screenshots`: the three screens during a scripted rush, as PNGs in docs/screenshots/.

    python -m local.web.screenshots [--out docs/screenshots]

A fresh local stack (free ports, time scale 0.5 so no wait runs out while the pictures are taken), a
rush set through the HTTP API (customers order; two baristas make some, complete some), then headless
Chromium (local/web/chromium.py) opens each screen signed in, as `make link` would, and takes its
picture: the display at 1920 x 1080, the barista board on a 1280 x 800 tablet, the order app on a
360 px phone (the menu, and an order waiting).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from local.auth import LocalIdp
from local.cli import LocalStack
from local.web.chromium import SKIP_MESSAGE, chromium_available, launch_options
from local.web.client import ApiCaller
from local.web.link import link

OUT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
TIME_SCALE = 0.5  # 300 s -> 150 s to choose: the menu's countdown still shows time left
RUSH = [  # customer, drink, extras
    ("Ana", "Latte", ["Oat milk"]),
    ("Ben", "Flat white", []),
    ("Chloe", "Cappuccino", ["Cinnamon"]),
    ("Dev", "Americano", ["Extra shot"]),
    ("Ema", "Mocha", ["Whipped cream", "Oat milk"]),
    ("Femi", "Espresso", []),
    ("Gus", "Latte", ["Vanilla syrup"]),
    ("Hana", "Cappuccino", ["Decaf", "Soy milk"]),
]


def rush(stack: LocalStack, idp: LocalIdp) -> None:
    """Orders from RUSH: Bob makes two and completes one, Dave makes one and completes one."""
    assert stack.api is not None
    url = stack.api.url
    bob = ApiCaller.signed_in(url, "Bob", "barista", idp)
    dave = ApiCaller.signed_in(url, "Dave", "barista", idp)
    bob.call("PUT", "/config", {"maxInFlight": 16})
    orders = [
        ApiCaller.signed_in(url, name, idp=idp).order_waiting_for_barista(drink, extras)
        for name, drink, extras in RUSH
    ]
    for barista, order in ((bob, orders[0]), (dave, orders[1]), (bob, orders[2]), (dave, orders[3])):
        barista.call("POST", f"/orders/{order['orderId']}/make")
    bob.call("POST", f"/orders/{orders[0]['orderId']}/complete")
    dave.call("POST", f"/orders/{orders[1]['orderId']}/complete")


def _page(browser: Any, port: int, screen: str, user: str, viewport: dict[str, int]) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context(viewport=viewport, device_scale_factor=1).new_page()
    page.goto(link(screen, user, port=port))
    expect(page.locator("#connection")).to_have_text("Live", timeout=30_000)
    return page


def take(stack: LocalStack, out: Path) -> list[Path]:
    """The pictures of the screens on `stack`, written into `out`."""
    from playwright.sync_api import expect, sync_playwright

    assert stack.api is not None
    port = stack.api.port
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        display = _page(browser, port, "display", "bar-screen", {"width": 1920, "height": 1080})
        expect(display.get_by_role("region", name="Ready").get_by_role("listitem")).to_have_count(2)
        board = _page(browser, port, "barista", "Bob", {"width": 1280, "height": 800})
        expect(board.get_by_text("Taken by another barista").first).to_be_visible()
        phone = _page(browser, port, "order", "Jade", {"width": 360, "height": 740})
        phone.get_by_role("button", name="Start my order").click()
        phone.get_by_role("radio", name="Flat white").check()
        phone.get_by_role("checkbox", name="Oat milk").check()
        expect(phone.locator("#time-left-text")).to_have_text(re.compile(r"^\d+:\d\d$"), timeout=30_000)
        for page, name in ((display, "display"), (board, "barista"), (phone, "order-menu")):
            written.append(out / f"{name}.png")
            page.screenshot(path=str(written[-1]))
        phone.get_by_role("button", name="Place order").click()
        expect(phone.get_by_role("heading", name="is waiting for a barista")).to_be_visible(timeout=30_000)
        written.append(out / "order-waiting.png")
        phone.screenshot(path=str(written[-1]))
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Start a stack, make the rush, take the pictures; 2 without a Chromium."""
    parser = argparse.ArgumentParser(prog="make screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not chromium_available():
        print(f"error: {SKIP_MESSAGE}", file=sys.stderr)
        return 2
    idp = LocalIdp()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF blobs are for CloudWatch
    console, sys.stdout = sys.stdout, io.StringIO()  # the handlers' log lines (as Lambda prints them)
    try:
        with LocalStack.start(
            port=0, api_port=0, time_scale=TIME_SCALE, api_log=lambda line: None, idp=idp
        ) as stack:
            rush(stack, idp)
            written = take(stack, args.out)
    finally:
        sys.stdout = console
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
