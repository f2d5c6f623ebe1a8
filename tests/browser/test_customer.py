"""The order app on a phone: cancelling, both timeouts, the shop closing mid-order, a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.screens import Screens, order_from_the_menu

# 300 s -> 6 s to choose, 900 s -> 18 s for a barista: timeouts are waited out in seconds.
TIMEOUT_TIME_SCALE = 0.02


def test_a_customer_cancels_after_confirming(screens: Screens) -> None:
    # Given an order of hers waiting for a barista, and a barista's board
    phone = screens.open("order", "ana")
    board = screens.open("barista", "bob")
    number = order_from_the_menu(phone, "Americano")
    heading = phone.get_by_role("heading", name=f"Order #{number} is waiting for a barista")
    expect(board.get_by_role("article", name=f"Order {number}", exact=True)).to_be_visible()

    # When she presses Cancel, first keeps it, then confirms
    phone.get_by_role("button", name="Cancel order").click()
    phone.get_by_role("dialog").get_by_role("button", name="Keep my order").click()
    expect(heading).to_be_visible()
    phone.get_by_role("button", name="Cancel order").click()
    phone.get_by_role("dialog").get_by_role("button", name="Cancel my order").click()

    # Then her phone says she cancelled it, and it leaves the barista's board
    expect(phone.get_by_role("heading", name="You cancelled your order")).to_be_visible()
    expect(board.get_by_role("article", name=f"Order {number}", exact=True)).to_have_count(0)


def test_both_timeouts_are_told_apart_on_the_phone(screens: Screens) -> None:
    # Given a stack whose waits are short, and a customer on the menu
    screens.start(time_scale=TIMEOUT_TIME_SCALE)
    phone = screens.open("order", "ana")
    phone.get_by_role("button", name="Start my order").click()
    expect(phone.get_by_text("Time left to order")).to_be_visible()

    # When she never chooses, then her phone says she ran out of time
    expect(phone.get_by_role("heading", name="You ran out of time")).to_be_visible()

    # When she orders again and no barista makes it in time
    phone.get_by_role("button", name="Order another coffee").click()
    order_from_the_menu(phone, "Espresso")

    # Then her phone says the barista missed it: another message than her own timeout
    expect(phone.get_by_role("heading", name="Sorry, the barista missed your order")).to_be_visible(
        timeout=60_000
    )


def test_the_shop_closing_while_a_customer_is_on_the_menu(screens: Screens) -> None:
    # Given a customer choosing her drink
    phone = screens.open("order", "ana")
    board = screens.open("barista", "bob")
    phone.get_by_role("button", name="Start my order").click()
    expect(phone.get_by_role("heading", name="Choose your drink")).to_be_visible()
    expect(phone.locator("#time-left-text")).to_have_text(re.compile(r"^\d+:\d\d$"))  # her wait runs

    # When the barista closes the shop
    board.get_by_role("button", name="Close the shop").click()
    board.get_by_role("dialog").get_by_role("button", name="Close the shop").click()

    # Then her phone says so, her order is given up, and the start screen says the bar is closed
    expect(phone.get_by_role("heading", name="The coffee bar has just closed")).to_be_visible()
    expect(phone.get_by_text("Your order was cancelled before it was made.")).to_be_visible()
    phone.get_by_role("button", name="Back").click()
    expect(phone.get_by_role("heading", name="The coffee bar is closed")).to_be_visible()
    expect(board.get_by_text(re.compile(r"^Closed · 0 of"))).to_be_visible()


def test_an_order_in_progress_is_restored_after_a_reload(screens: Screens) -> None:
    # Given an order of hers waiting for a barista
    phone = screens.open("order", "ana")
    number = order_from_the_menu(phone, "Cappuccino")

    # When she reloads the page
    phone.reload()

    # Then the same order shows, still signed in, without starting a new one
    expect(phone.get_by_role("heading", name=f"Order #{number} is waiting for a barista")).to_be_visible()
    expect(phone.get_by_text("Cappuccino")).to_be_visible()


def test_a_full_shop_and_too_many_open_orders_have_their_own_screens(screens: Screens) -> None:
    # Given a shop with room for one order, which another customer's order takes
    screens.start()
    barista = screens.api("bob", "barista")
    assert barista.call("PUT", "/config", {"maxInFlight": 1, "maxOpenOrdersPerCustomer": 1})[0] == 200
    phone = screens.open("order", "ana")
    assert screens.api("carl").call("POST", "/orders", {})[0] == 202

    # Then her phone says the bar is full, to try again in a minute
    expect(phone.get_by_role("heading", name="The coffee bar is full")).to_be_visible()
    expect(phone.get_by_text("Try again in a minute")).to_be_visible()

    # When there is room again, but she already has an open order (from another device)
    assert barista.call("PUT", "/config", {"maxInFlight": 10})[0] == 200
    expect(phone.get_by_role("button", name="Start my order")).to_be_visible()
    assert screens.api("ana").call("POST", "/orders", {})[0] == 202
    phone.get_by_role("button", name="Start my order").click()

    # Then she is told she has too many open orders
    expect(phone.get_by_role("heading", name="Too many open orders")).to_be_visible()
    expect(phone.get_by_text("You already have 1 open order.")).to_be_visible()
