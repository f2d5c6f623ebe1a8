"""Driving the screens as people do: open one signed in, and (for a test's setup only) call the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from local.cli import LocalStack
from local.web.client import ApiCaller
from local.web.link import link
from tests.least_privilege import Policies, recording

DEFAULT_TIME_SCALE = 0.1  # 300 s -> 30 s to choose, 900 s -> 90 s for a barista: no test waits them out
PHONE = {"width": 360, "height": 740}
TABLET = {"width": 1280, "height": 800}
BIG_SCREEN = {"width": 1920, "height": 1080}
VIEWPORTS = {"order": PHONE, "barista": TABLET, "display": BIG_SCREEN}
# The browser logs a failed fetch as a console error even when the page handles it: a 4xx the screen
# explains, or a network failure a test caused (offline, a stalled connection) that shows "Reconnecting".
_HANDLED_HTTP_ERROR = re.compile(
    r"^(Failed to load resource: |WebSocket connection to '\S+' failed: Error in connection establishment: )"
    r"(the server responded with a status of 4\d\d|net::ERR_(FAILED|INTERNET_DISCONNECTED))"
)


@dataclass
class Screens:
    """A running local stack and the browser pages opened on it."""

    browser: Any
    stack: LocalStack | None = None
    errors: list[str] = field(default_factory=list)
    _contexts: list[Any] = field(default_factory=list)
    _recording: Any = None
    _recorder: Any = None

    def start(self, time_scale: float = DEFAULT_TIME_SCALE) -> LocalStack:
        """Start the stack (once per test) with this time scale."""
        if self.stack is None:
            # One process (api_workers=0, moto and the event handlers in it too): a test opens a few
            # screens, not a rush, and spawning workers (fresh interpreters importing boto3 and
            # Powertools) cost more CPU than the rest of a test's stack; and the least-privilege
            # recording below sees every AWS call (a worker's calls happen in its own process).
            # The worker pools have their own tests (tests/local/test_cli.py).
            self.stack = LocalStack.start(
                port=0,
                api_port=0,
                time_scale=time_scale,
                api_log=lambda line: None,
                api_workers=0,
                moto_process=False,
                handler_workers=0,
            )
            self._recording = recording(self.stack.engine)
            self._recorder = self._recording.__enter__()
        return self.stack

    @property
    def port(self) -> int:
        """The API's (and the pages') port."""
        stack = self.start()
        assert stack.api is not None
        return stack.api.port

    def open(
        self,
        screen: str,
        user: str,
        role: str | None = None,
        viewport: dict[str, int] | None = None,
        before: Callable[[Any], None] | None = None,
    ) -> Any:
        """A page showing `screen`, signed in as `user` through a one-time link, once it is live.

        `before(context)` runs before the page opens (e.g. to route its WebSocket).
        """
        from playwright.sync_api import expect

        context = self.browser.new_context(viewport=viewport or VIEWPORTS[screen])
        self._contexts.append(context)
        if before is not None:
            before(context)
        page = context.new_page()
        page.on("console", lambda message: self._console(screen, user, message))
        page.on("pageerror", lambda error: self.errors.append(f"{screen}/{user}: {error}"))
        page.goto(link(screen, user, role, port=self.port))
        expect(page.locator("#connection")).to_have_text("Live")
        return page

    def api(self, user: str, role: str = "customer") -> ApiCaller:
        """The HTTP API as `user`, for what a test sets up before the screens act."""
        assert self.stack is not None and self.stack.api is not None
        return ApiCaller.signed_in(self.stack.api.url, user, role)

    def _console(self, screen: str, user: str, message: Any) -> None:
        if message.type == "error" and not _HANDLED_HTTP_ERROR.match(message.text):
            self.errors.append(f"{screen}/{user} console: {message.text}")

    def assert_no_page_errors(self) -> None:
        """Fails the test if any page logged an error or threw."""
        assert not self.errors, "errors on the pages:\n" + "\n".join(self.errors)

    def __enter__(self) -> Screens:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for context in self._contexts:
            context.close()
        if self.stack is not None:
            self._recording.__exit__(kind, error, trace)
            try:
                if kind is None:  # least privilege: the screens' calls are allowed by template.yaml
                    policies = Policies.of(self.stack.engine.template)
                    denied = policies.denials(self._recorder.calls())
                    assert not denied, "AWS calls template.yaml does not allow:\n" + "\n".join(denied)
            finally:
                self.stack.close()  # also forgets the in-process moto server's tables (LocalStack.close)


def waiting_order(screens: Screens, customer: str, drink: str = "Flat white") -> int:
    """Set-up: `customer` has ordered `drink` through the API; it waits for a barista. Its number."""
    return int(screens.api(customer).order_waiting_for_barista(drink)["orderNumber"])


def order_from_the_menu(phone: Any, drink: str) -> str:
    """On the order app: start an order, choose `drink`, place it; its number once it is queued."""
    from playwright.sync_api import expect

    phone.get_by_role("button", name="Start my order").click()
    phone.get_by_role("radio", name=drink).check()
    phone.get_by_role("button", name="Place order").click()
    heading = phone.get_by_role("heading", name=re.compile(r"^Order #\d+ is waiting for a barista$"))
    expect(heading).to_be_visible()
    return str(re.findall(r"\d+", heading.inner_text())[0])
