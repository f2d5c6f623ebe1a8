"""Admission by QR code: the display shows the current code; the order app opened with it lets a
customer order; an expired, used-up, forged or missing code is refused in words a person understands."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from serverlesspresso.admission import WINDOW_SECONDS, AdmissionDesk
from tests.browser.screens import Screens


def _expired_code(screens: Screens) -> str:
    """The code the display showed a quarter of an hour ago (made with the stack's own secret)."""
    assert screens.stack is not None
    engine = screens.stack.engine
    desk = AdmissionDesk(engine.table_names["ConfigTable"], engine.clients["dynamodb"])
    earlier = datetime.now(UTC) - timedelta(seconds=3 * WINDOW_SECONDS)
    return desk.code_for(int(earlier.timestamp()) // WINDOW_SECONDS)


def _wait_unless_the_current_code_lasts(seconds: float) -> None:
    """Wait for the next code window if the current one ends within `seconds`. When it ends, the display
    rightly shows the new code with its places, while the steps below still hold the one scanned."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < seconds:
        time.sleep(left + 1)


def _try_to_order(phone, url: str) -> None:
    phone.goto(url)
    expect(phone.locator("#connection")).to_have_text("Live")
    phone.get_by_role("button", name="Start my order").click()


def test_only_a_current_code_with_places_left_lets_a_customer_order(screens: Screens) -> None:
    # Given a shop that requires admission, one order per code, and its display, whose code lasts the test
    _wait_unless_the_current_code_lasts(45)
    screens.start()
    changes = {"requireAdmission": True, "ordersPerAdmissionCode": 1}
    assert screens.api("bob", "barista").call("PUT", "/config", changes)[0] == 200
    display = screens.open("display", "bar-screen")
    expect(display.get_by_text("1 drink left for this code")).to_be_visible()
    expect(display.get_by_role("img", name="QR code: scan it with your phone to order")).to_be_visible()
    scanned = display.get_by_role("link", name="Order with this code").get_attribute("href")
    assert scanned is not None
    ana = screens.open("order", "ana")
    dina = screens.open("order", "dina")
    origin = f"http://127.0.0.1:{screens.port}"

    # When a customer starts an order without scanning, then she is asked to scan the code
    dina.get_by_role("button", name="Start my order").click()
    expect(dina.get_by_role("heading", name="Scan the QR code to order")).to_be_visible()

    # When a customer scans the display's code, then she gets the menu, and the code is used up
    _try_to_order(ana, scanned)
    expect(ana.get_by_role("heading", name="Choose your drink")).to_be_visible()
    expect(display.get_by_text("We are making drinks: new orders soon")).to_be_visible()

    # When another customer scans the same code, then she is told it is used up
    _try_to_order(dina, scanned)
    expect(dina.get_by_role("heading", name="This QR code has been used up")).to_be_visible()
    expect(dina.get_by_text("wait for the next QR code on the screen")).to_be_visible()

    # When she tries a made-up code, then she is told it is not valid
    _try_to_order(dina, f"{origin}/?admission=12345-ABCDEFGHIJKLMNOP")
    expect(dina.get_by_role("heading", name="This QR code is not valid")).to_be_visible()

    # When she tries a code from a quarter of an hour ago, then she is told it has expired
    _try_to_order(dina, f"{origin}/?admission={_expired_code(screens)}")
    expect(dina.get_by_role("heading", name="This QR code has expired")).to_be_visible()
    expect(dina.get_by_text("scan the QR code on the coffee bar's screen again")).to_be_visible()
