"""The whole journey through the three screens, no API shortcut and no reload: a customer orders on her
phone, a barista makes and completes it on the board, the display and the phone follow."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.screens import Screens


def test_a_coffee_goes_from_the_phone_over_the_board_to_the_display(screens: Screens) -> None:
    # Given the display, a barista's board and a customer's phone, each signed in
    display = screens.open("display", "bar-screen")
    board = screens.open("barista", "bob")
    phone = screens.open("order", "ana")

    # When the customer orders a Latte with oat milk from the menu
    phone.get_by_role("button", name="Start my order").click()
    expect(phone.get_by_text("Time left to order")).to_be_visible()
    phone.get_by_role("radio", name="Latte").check()
    phone.get_by_role("checkbox", name="Oat milk").check()
    phone.get_by_role("button", name="Place order").click()

    # Then her phone says it waits for a barista, with its number
    waiting_heading = phone.get_by_role("heading", name=re.compile(r"^Order #\d+ is waiting for a barista$"))
    expect(waiting_heading).to_be_visible()
    number = re.findall(r"\d+", waiting_heading.inner_text())[0]
    expect(phone.get_by_text("Latte, Oat milk")).to_be_visible()

    # And the display shows it under Preparing
    preparing = display.get_by_role("region", name="Preparing")
    expect(preparing.get_by_role("listitem")).to_have_text([re.compile(rf"^Order {number}Latteana")])

    # And the barista sees its card waiting, with drink, extras and the customer's name
    card = board.get_by_role("region", name=re.compile("^Waiting")).get_by_role(
        "article", name=f"Order {number}", exact=True
    )
    expect(card).to_contain_text("Latte")
    expect(card).to_contain_text("Oat milk")
    expect(card).to_contain_text("for ana")

    # When the barista makes it
    board.get_by_role("button", name=f"Make order {number}", exact=True).click()

    # Then it moves to Making as hers, and the phone says it is being made
    making = board.get_by_role("region", name=re.compile("^Making"))
    expect(making.get_by_role("article", name=f"Order {number}", exact=True)).to_contain_text(
        "You are making this"
    )
    expect(phone.get_by_role("heading", name="Your drink is being made")).to_be_visible()

    # When she completes it
    board.get_by_role("button", name=f"Complete order {number}", exact=True).click()

    # Then it is Ready on the board and on the display, no longer Preparing, and the phone says so
    ready_lane = board.get_by_role("region", name=re.compile("^Ready"))
    expect(ready_lane.get_by_role("article", name=f"Order {number}", exact=True)).to_be_visible()
    ready = display.get_by_role("region", name="Ready")
    expect(ready.get_by_role("listitem")).to_have_text([re.compile(rf"^Order {number}Latte")])
    expect(preparing.get_by_role("listitem")).to_have_count(0)
    expect(phone.get_by_role("heading", name="Ready for collection!")).to_be_visible()
    expect(phone.get_by_text(f"Order #{number}: pick it up at the counter.")).to_be_visible()
