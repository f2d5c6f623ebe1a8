"""Two baristas at once: a claim shows as taken on the other board; a late claim is told who won."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.screens import Screens, waiting_order

PUSH = re.compile(r"^ws://")


def test_a_claim_shows_as_taken_on_the_other_baristas_board(screens: Screens) -> None:
    # Given an order waiting, on two baristas' boards
    screens.start()
    number = waiting_order(screens, "ana")
    bob = screens.open("barista", "bob")
    dave = screens.open("barista", "dave")
    for board in (bob, dave):
        expect(board.get_by_role("button", name=f"Make order {number}", exact=True)).to_be_enabled()

    # When Bob makes it
    bob.get_by_role("button", name=f"Make order {number}", exact=True).click()

    # Then Dave's board shows it taken, under Making, with every button disabled
    card = dave.get_by_role("region", name=re.compile("^Making")).get_by_role(
        "article", name=f"Order {number}", exact=True
    )
    expect(card).to_contain_text("Taken by another barista")
    for action in ("Complete", "Unmake", "Cancel"):
        expect(dave.get_by_role("button", name=f"{action} order {number}", exact=True)).to_be_disabled()
    expect(bob.get_by_role("button", name=f"Complete order {number}", exact=True)).to_be_enabled()


def test_the_barista_who_claims_second_is_told_and_sees_it_taken(screens: Screens) -> None:
    # Given an order on both boards, Dave's live feed passing through a relay that can hold messages back
    screens.start()
    number = waiting_order(screens, "ana", "Mocha")
    relay = _HoldingRelay()
    bob = screens.open("barista", "bob")
    dave = screens.open(
        "barista", "dave", before=lambda context: context.route_web_socket(PUSH, relay.attach)
    )
    expect(dave.get_by_role("button", name=f"Make order {number}", exact=True)).to_be_enabled()

    # When Dave's board hears nothing for a moment, Bob makes the order, and Dave, whose board still
    # offers it, presses Make too
    relay.holding = True
    bob.get_by_role("button", name=f"Make order {number}", exact=True).click()
    expect(bob.get_by_role("button", name=f"Complete order {number}", exact=True)).to_be_enabled()
    dave.get_by_role("button", name=f"Make order {number}", exact=True).click()

    # Then Dave is told another barista is making it, and his board shows it taken
    expect(dave.locator("#notice")).to_have_text(f"Order #{number} is being made by another barista.")
    card = dave.get_by_role("region", name=re.compile("^Making")).get_by_role(
        "article", name=f"Order {number}", exact=True
    )
    expect(card).to_contain_text("Taken by another barista")
    expect(bob.get_by_role("region", name=re.compile("^Making"))).to_contain_text("You are making this")


class _HoldingRelay:
    """Passes the push channel's messages to the page, except while `holding` (a stalled network)."""

    def __init__(self) -> None:
        self.holding = False

    def attach(self, socket: Any) -> None:
        server = socket.connect_to_server()
        server.on_message(lambda message: None if self.holding else socket.send(message))


def test_a_barista_cancels_after_confirming_and_opens_and_sizes_the_shop(screens: Screens) -> None:
    # Given an order waiting, on a board
    screens.start()
    number = waiting_order(screens, "ana", "Espresso")
    board = screens.open("barista", "bob")

    # When the barista cancels it, first keeping it, then confirming
    board.get_by_role("button", name=f"Cancel order {number}", exact=True).click()
    board.get_by_role("dialog").get_by_role("button", name="Keep it").click()
    expect(board.get_by_role("article", name=f"Order {number}", exact=True)).to_be_visible()
    board.get_by_role("button", name=f"Cancel order {number}", exact=True).click()
    expect(board.get_by_role("dialog")).to_contain_text(f"Cancel order #{number}?")
    board.get_by_role("dialog").get_by_role("button", name="Cancel order").click()

    # Then the card leaves the board
    expect(board.get_by_role("article", name=f"Order {number}", exact=True)).to_have_count(0)
    expect(board.locator("#notice")).to_have_text(f"Order #{number} cancelled.")

    # When the barista sets the capacity and closes the shop, then opens it again
    board.get_by_label("Capacity").fill("5")
    board.get_by_role("button", name="Set").click()
    expect(board.get_by_text(re.compile(r"of 5 orders in progress"))).to_be_visible()
    board.get_by_role("button", name="Close the shop").click()
    board.get_by_role("dialog").get_by_role("button", name="Close the shop").click()
    expect(board.get_by_role("button", name="Open the shop")).to_be_visible()
    board.get_by_role("button", name="Open the shop").click()
    expect(board.get_by_role("button", name="Close the shop")).to_be_visible()
