"""What every screen owes every person: labelled controls big enough to touch, keyboard use, and layouts
that fit a 360 px phone and a 1920 x 1080 board."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.screens import BIG_SCREEN, PHONE, Screens, waiting_order

# Every visible control: its accessible name (text, aria-label or label) and the size a finger gets
# (for a radio or checkbox, its whole label row).
_CONTROLS = """() => [...document.querySelectorAll("button, input, select, a[href], textarea")]
  .filter((el) => el.offsetParent !== null && el.type !== "hidden")
  .map((el) => {
    const target = ["radio", "checkbox"].includes(el.type) ? el.closest("label") || el : el;
    const box = target.getBoundingClientRect();
    const name = (el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].textContent)
      || el.textContent || "").trim();
    return { what: el.outerHTML.slice(0, 80), name, width: box.width, height: box.height };
  })"""


def _small_or_unnamed(page) -> list[dict]:
    return [c for c in page.evaluate(_CONTROLS) if not c["name"] or c["width"] < 44 or c["height"] < 44]


@pytest.mark.parametrize("screen", ["order", "barista", "display"])
def test_every_control_is_labelled_and_at_least_44_px(screens: Screens, screen: str) -> None:
    # Given each screen with something on it (an order in the queue; the menu open on the phone)
    screens.start()
    waiting_order(screens, "carl")
    page = screens.open(screen, "someone")
    if screen == "order":
        page.get_by_role("button", name="Start my order").click()
        page.get_by_role("radio", name="Latte").check()
    else:
        expect(page.get_by_text("Flat white").first).to_be_visible()

    # Then no control lacks a name or is smaller than a fingertip
    assert _small_or_unnamed(page) == []


def test_the_order_app_fits_a_360_px_phone_and_works_from_the_keyboard(screens: Screens) -> None:
    # Given the order app on a 360 px wide phone
    page = screens.open("order", "ana", viewport=PHONE)

    # When she uses only the keyboard: to Start, Enter; to the drinks, arrow to the second; to Place order
    def tab_to(pattern: str) -> None:
        for _ in range(20):
            page.keyboard.press("Tab")
            if re.search(pattern, page.evaluate("document.activeElement.outerHTML")):
                return
        raise AssertionError(f"Tab never reached {pattern}")

    tab_to("Start my order")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Choose your drink")).to_be_visible()
    tab_to('type="radio"')
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Americano")).to_be_checked()
    tab_to("Place order")
    page.keyboard.press("Enter")

    # Then the order is placed, and nothing ever needed a horizontal scroll
    expect(page.get_by_role("heading", name=re.compile("is waiting for a barista$"))).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_display_fits_a_1920_by_1080_screen_during_a_rush(screens: Screens) -> None:
    # Given a dozen orders being prepared
    screens.start()
    for customer in range(12):
        waiting_order(screens, f"guest{customer}", "Latte")
    display = screens.open("display", "bar-screen", viewport=BIG_SCREEN)
    expect(display.get_by_role("region", name="Preparing").get_by_role("listitem")).to_have_count(12)

    # Then the whole board shows without scrolling
    size = display.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= BIG_SCREEN["width"] and size[1] <= BIG_SCREEN["height"]
