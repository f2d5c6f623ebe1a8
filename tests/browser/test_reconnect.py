"""A phone that loses its live feed catches up when it is back: it re-reads its order and shows the
state it reached meanwhile, without a reload. (The server ends every connection; the board's comes back
at once, the phone's only when it is online again.)"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.screens import Screens, order_from_the_menu


def test_after_the_feed_drops_the_phone_shows_what_happened_meanwhile(screens: Screens) -> None:
    # Given a customer's order waiting for a barista, and the board
    phone = screens.open("order", "ana")
    board = screens.open("barista", "bob")
    number = order_from_the_menu(phone, "Mocha")
    heading = phone.get_by_role("heading", name=f"Order #{number} is waiting for a barista")

    # When her phone goes offline and its live connection drops (it says it is reconnecting) while the
    # barista makes and completes it
    phone.context.set_offline(True)
    stack = screens.start()
    if stack.push is not None:  # an open WebSocket survives the browser's offline switch: end it
        for connection_id in stack.push.connection_ids:
            stack.push.close_connection(connection_id)
    expect(phone.locator("#connection")).to_have_text("Reconnecting…")
    board.get_by_role("button", name=f"Make order {number}", exact=True).click()
    board.get_by_role("button", name=f"Complete order {number}", exact=True).click()
    ready_lane = board.get_by_role("region", name=re.compile("^Ready"))
    expect(ready_lane.get_by_role("article", name=f"Order {number}", exact=True)).to_be_visible()
    expect(heading).to_be_visible()  # nothing reached the phone meanwhile

    # Then, back online, it is live again and says the drink is ready
    phone.context.set_offline(False)
    expect(phone.get_by_role("heading", name="Ready for collection!")).to_be_visible()
    expect(phone.locator("#connection")).to_have_text("Live")
