"""`make smoke [ENV=dev|prod]` and `make smoke LOCAL=1`: one order to COMPLETED and one cancel, end to end.

    python -m ops.smoke [--env prod]     against the deployed stack of a samconfig environment
    python -m ops.smoke --local          against a fresh `make local` stack started on free ports

The same steps either way (`run_smoke`): create a temporary customer and barista, run an order to
COMPLETED over the HTTP API while a push (WebSocket) client signed in as the customer receives the
order's messages (it must see COMPLETED), cancel a second order as the customer, check that no alarm
of the stack is in ALARM, and delete the temporary users (also when a step failed). Each step prints
one line; the last line says PASSED or FAILED and why.

Deployed, the users are Cognito users (admin API: created with a random password, signed in with
AdminInitiateAuth, deleted at the end) and the alarms are the stack's CloudWatch alarms. Locally, the
users are tokens of the local identity provider (local/auth.py: nothing is stored, so nothing to
delete) and the local stack runs no CloudWatch alarms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

# Not serverlesspresso.push: importing it creates the handlers' logger on the stdout of this moment,
# which the local smoke test silences only later.
from local.push.server import SUBPROTOCOL
from ops.stack import OperatorError, default_session, locate_stack, output, run_command, stack_outputs
from serverlesspresso.identity import BARISTA_GROUP

WAIT_SECONDS = 60.0  # the longest any one step may take (a cold start, a busy local machine)
POLL_SECONDS = 0.25
# Local waits 300 s -> 15 s and 900 s -> 45 s: the order completes as fast as the smoke test acts; the
# waits only need to be long enough for its HTTP round trips on a busy machine.
LOCAL_TIME_SCALE = 0.05
ALARM_TYPE = "AWS::CloudWatch::Alarm"

Say = Callable[[str], None]


class SmokeFailure(Exception):
    """A step of the smoke test did not do what it must; the message says which and what happened."""


@dataclass(frozen=True)
class SmokeUser:
    """A temporary user and its ID token."""

    name: str
    token: str


class Users(Protocol):
    """Where the smoke test's temporary users come from and go back to."""

    def create(self, role: str) -> SmokeUser:
        """A new user with `role` (customer or barista), signed in."""
        ...

    def delete_all(self) -> list[str]:
        """Delete every user created; their names."""
        ...


@dataclass(frozen=True)
class SmokeTarget:
    """What the smoke test runs against."""

    description: str
    api_url: str
    push_url: str
    users: Users
    alarms_in_alarm: Callable[[], tuple[int, list[str]]]  # (alarms checked, names of those in ALARM)
    wait_seconds: float = WAIT_SECONDS


# ------------------------------------------------------------------------------------------ users
@dataclass
class CognitoUsers:
    """Temporary users in the stack's user pool (Cognito admin API); signed in with AdminInitiateAuth."""

    cognito: Any
    user_pool_id: str
    client_id: str
    created: list[str] = field(default_factory=list)

    def create(self, role: str) -> SmokeUser:
        """Create, confirm (permanent random password), add to the role's group, sign in."""
        email = f"smoke-{role}-{uuid.uuid4().hex[:12]}@example.com"
        password = secrets.token_urlsafe(24) + "aA1-"  # the pool's policy: lower, upper, number, 12+
        self.cognito.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",  # no invitation email
        )
        self.created.append(email)
        self.cognito.admin_set_user_password(
            UserPoolId=self.user_pool_id, Username=email, Password=password, Permanent=True
        )
        if role == "barista":
            self.cognito.admin_add_user_to_group(
                UserPoolId=self.user_pool_id, Username=email, GroupName=BARISTA_GROUP
            )
        signed_in = self.cognito.admin_initiate_auth(
            UserPoolId=self.user_pool_id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        if "AuthenticationResult" not in signed_in:  # e.g. the pool now requires MFA
            raise SmokeFailure(
                f"Cognito answered {email}'s sign-in with a {signed_in.get('ChallengeName')} challenge"
            )
        return SmokeUser(email, str(signed_in["AuthenticationResult"]["IdToken"]))

    def delete_all(self) -> list[str]:
        """Delete every user this created (one already gone is fine)."""
        deleted, self.created = self.created, []
        for email in deleted:
            with contextlib.suppress(self.cognito.exceptions.UserNotFoundException):
                self.cognito.admin_delete_user(UserPoolId=self.user_pool_id, Username=email)
        return deleted


@dataclass
class LocalUsers:
    """Users of the local identity provider: a token is the whole user, so deleting forgets the names."""

    issue_token: Callable[..., str]  # LocalIdp.issue_token
    created: list[str] = field(default_factory=list)

    def create(self, role: str) -> SmokeUser:
        """A token for a new name with `role`."""
        name = f"smoke-{role}-{uuid.uuid4().hex[:12]}"
        self.created.append(name)
        return SmokeUser(name, self.issue_token(name, role))

    def delete_all(self) -> list[str]:
        """Nothing is stored locally: forget the names."""
        deleted, self.created = self.created, []
        return deleted


# ----------------------------------------------------------------------------------------- alarms
def stack_alarm_names(cloudformation: Any, stack_name: str) -> list[str]:
    """The names of the stack's CloudWatch alarms (their physical ids)."""
    paginator = cloudformation.get_paginator("list_stack_resources")
    return [
        resource["PhysicalResourceId"]
        for page in paginator.paginate(StackName=stack_name)
        for resource in page["StackResourceSummaries"]
        if resource["ResourceType"] == ALARM_TYPE and resource.get("PhysicalResourceId")
    ]


def alarms_in_alarm(cloudwatch: Any, names: list[str]) -> list[str]:
    """Those of `names` whose state is ALARM."""
    firing = []
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        response = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
        alarms = response["MetricAlarms"] + response.get("CompositeAlarms", [])
        firing += [alarm["AlarmName"] for alarm in alarms if alarm["StateValue"] == "ALARM"]
    return sorted(firing)


# -------------------------------------------------------------------------------------- the clients
@dataclass
class Api:
    """The HTTP API as the screens call it: JSON bodies, a bearer token."""

    base_url: str

    def call(self, method: str, path: str, user: SmokeUser, body: Any = None) -> tuple[int, Any]:
        """One request: (status, parsed body). HTTP errors are answers too; no answer is a SmokeFailure."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {user.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        except (urllib.error.URLError, OSError) as error:
            raise SmokeFailure(f"{method} {path}: no answer from {self.base_url} ({error})") from None
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def expect(self, method: str, path: str, user: SmokeUser, body: Any = None, ok: int = 200) -> Any:
        """The body of an `ok` answer; any other status is a SmokeFailure naming the request."""
        status, answer = self.call(method, path, user, body)
        if status != ok:
            raise SmokeFailure(f"{method} {path} answered {status}: {answer}")
        return answer

    def until_accepted(self, method: str, path: str, user: SmokeUser, body: Any, wait_seconds: float) -> Any:
        """Repeat while the API answers 409 (the workflow's task token is on its way), as screens do."""
        deadline = time.monotonic() + wait_seconds
        while True:
            status, answer = self.call(method, path, user, body)
            if status != 409:
                if status != 200:
                    raise SmokeFailure(f"{method} {path} answered {status}: {answer}")
                return answer
            if time.monotonic() > deadline:
                raise SmokeFailure(f"{method} {path} still answered 409 after {wait_seconds:g} s: {answer}")
            time.sleep(POLL_SECONDS)

    def wait_for_state(
        self, order_id: str, state: str, user: SmokeUser, wait_seconds: float
    ) -> dict[str, Any]:
        """GET the order until it is in `state`."""
        deadline = time.monotonic() + wait_seconds
        while True:
            order: dict[str, Any] = self.expect("GET", f"/orders/{order_id}", user)
            if order.get("state") == state:
                return order
            if time.monotonic() > deadline:
                raise SmokeFailure(
                    f"order {order_id} is {order.get('state')}, not {state}, after {wait_seconds:g} s"
                )
            time.sleep(POLL_SECONDS)


class PushListener:
    """A push (WebSocket) client signed in as a user, recording the order messages it receives."""

    def __init__(self, url: str, user: SmokeUser) -> None:
        try:
            self._connection: ClientConnection = connect(
                url,
                subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(user.token)],
                open_timeout=30,
                legacy=True,  # a connection kept until close()
            )
        except (InvalidHandshake, OSError, TimeoutError) as error:
            raise SmokeFailure(f"push channel {url} refused the customer: {error}") from None
        self._states: dict[str, list[str]] = {}
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="smoke-push", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            for message in self._connection:
                try:
                    order = json.loads(message)["order"]
                    order_id, state = str(order["orderId"]), str(order["state"])
                except (ValueError, KeyError, TypeError):
                    continue  # a shop message, or not one of this contract's
                with self._changed:
                    self._states.setdefault(order_id, []).append(state)
                    self._changed.notify_all()

    def states(self, order_id: str) -> list[str]:
        """The states the order's messages carried, in arrival order."""
        with self._changed:
            return list(self._states.get(order_id, []))

    def wait_for(self, order_id: str, state: str, wait_seconds: float) -> list[str]:
        """Wait for a message saying the order is in `state`; every state heard for it."""
        with self._changed:
            if not self._changed.wait_for(lambda: state in self._states.get(order_id, []), wait_seconds):
                heard = self._states.get(order_id, [])
                raise SmokeFailure(
                    f"push channel: no {state} message for order {order_id} within {wait_seconds:g} s "
                    f"(heard: {', '.join(heard) or 'nothing'})"
                )
            return list(self._states[order_id])

    def close(self) -> None:
        """Close the connection and stop reading."""
        self._connection.close()
        self._reader.join(timeout=10)


# ------------------------------------------------------------------------------------- the steps
def run_smoke(smoke: SmokeTarget, say: Say = print) -> None:
    """Every step against `smoke`, users deleted whatever happens; a SmokeFailure says what failed."""
    say(f"smoke test of {smoke.description}")
    api = Api(smoke.api_url)
    shop_reopened: SmokeUser | None = None
    try:
        customer = smoke.users.create("customer")
        barista = smoke.users.create("barista")
        say(f"users: customer {customer.name}, barista {barista.name}")
        shop = api.expect("GET", "/config", barista)
        if not shop.get("isOpen"):
            api.expect("PUT", "/config", barista, {"isOpen": True})
            shop_reopened = barista
            say("shop: was closed, opened for the smoke test (closed again at the end)")
        admission = (
            "an admission code (GET /admission)" if shop.get("requireAdmission") else "no admission code"
        )
        say(f"shop: open, orders need {admission}")
        drink = shop["menu"][0]["name"]
        listener = PushListener(smoke.push_url, customer)
        try:
            say(f"push: customer connected to {smoke.push_url}")
            order_id = _complete_an_order(api, smoke, customer, barista, shop, drink, say)
            heard = listener.wait_for(order_id, "COMPLETED", smoke.wait_seconds)
            say(f"push: the customer heard {' -> '.join(dict.fromkeys(heard))}")
        finally:
            listener.close()
        _cancel_an_order(api, smoke, customer, barista, shop, say)
        checked, firing = smoke.alarms_in_alarm()
        if firing:
            raise SmokeFailure(f"alarms in ALARM: {', '.join(firing)}")
        say(f"alarms: {checked} checked, none in ALARM")
    finally:
        if shop_reopened is not None:
            with contextlib.suppress(SmokeFailure):
                api.expect("PUT", "/config", shop_reopened, {"isOpen": False})
                say("shop: closed again")
        deleted = smoke.users.delete_all()
        say(f"users: deleted {', '.join(deleted) if deleted else 'none'}")


def _place(api: Api, customer: SmokeUser, barista: SmokeUser, shop: Mapping[str, Any]) -> str:
    body = {}
    if shop.get("requireAdmission"):
        body["admissionCode"] = api.expect("GET", "/admission", barista)["code"]
    placed = api.expect("POST", "/orders", customer, body, ok=202)
    return str(placed["orderId"])


def _complete_an_order(
    api: Api,
    smoke: SmokeTarget,
    customer: SmokeUser,
    barista: SmokeUser,
    shop: Mapping[str, Any],
    drink: str,
    say: Say,
) -> str:
    order_id = _place(api, customer, barista, shop)
    say(f"order {order_id}: placed")
    wait = smoke.wait_seconds
    api.until_accepted("PUT", f"/orders/{order_id}", customer, {"drink": drink, "modifiers": []}, wait)
    say(f"order {order_id}: submitted ({drink})")
    number = api.wait_for_state(order_id, "WAITING_FOR_BARISTA", barista, wait).get("orderNumber")
    api.until_accepted("POST", f"/orders/{order_id}/make", barista, None, wait)
    api.until_accepted("POST", f"/orders/{order_id}/complete", barista, None, wait)
    say(f"order {order_id}: number {number}, made and completed by the barista")
    api.wait_for_state(order_id, "COMPLETED", customer, wait)
    say(f"order {order_id}: COMPLETED")
    return order_id


def _cancel_an_order(
    api: Api, smoke: SmokeTarget, customer: SmokeUser, barista: SmokeUser, shop: Mapping[str, Any], say: Say
) -> None:
    order_id = _place(api, customer, barista, shop)
    api.wait_for_state(order_id, "WAITING_FOR_CUSTOMER", customer, smoke.wait_seconds)
    api.until_accepted("DELETE", f"/orders/{order_id}", customer, None, smoke.wait_seconds)
    api.wait_for_state(order_id, "CANCELLED", customer, smoke.wait_seconds)
    say(f"order {order_id}: placed, cancelled by the customer: CANCELLED")


# ---------------------------------------------------------------------------------------- targets
def deployed_smoke_target(environment: str, session: Any = None) -> SmokeTarget:
    """The stack of a samconfig environment, after the operator commands' pre-flight."""
    session = session or default_session()
    where = locate_stack(environment, session)
    cloudformation = session.client("cloudformation", region_name=where.region)
    outputs = stack_outputs(cloudformation, where)
    users = CognitoUsers(
        session.client("cognito-idp", region_name=where.region),
        output(outputs, "UserPoolId", where),
        output(outputs, "ClientId", where),
    )
    cloudwatch = session.client("cloudwatch", region_name=where.region)

    def check_alarms() -> tuple[int, list[str]]:
        names = stack_alarm_names(cloudformation, where.stack_name)
        return len(names), alarms_in_alarm(cloudwatch, names)

    return SmokeTarget(
        f"stack {where.stack_name} ({where.region})",
        output(outputs, "ApiUrl", where),
        output(outputs, "PushUrl", where),
        users,
        check_alarms,
    )


@contextlib.contextmanager
def local_smoke_target(time_scale: float = LOCAL_TIME_SCALE) -> Iterator[SmokeTarget]:
    """A fresh `make local` stack on free ports (its own signing key), stopped on the way out.

    While it runs, sys.stdout is a sink: the handlers run in this process and print their JSON log
    lines (what Lambda sends to CloudWatch) there; the smoke test says its steps on the stream its
    caller gives it.
    """
    from local.auth import LocalIdp
    from local.cli import LocalStack

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF blobs are for CloudWatch
    idp = LocalIdp(tempfile.mkdtemp(prefix="serverlesspresso-smoke-"))
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        warnings.catch_warnings(),
    ):
        # Powertools warns on stderr when a handler emitted no metric (metrics are off here)
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # api_workers=0: the API's functions in this process, no worker processes to start
        stack = LocalStack.start(
            port=0,
            api_port=0,
            push_port=0,
            time_scale=time_scale,
            idp=idp,
            api_log=lambda _: None,
            api_workers=0,
        )
        try:
            if stack.api is None or stack.push_url is None:
                raise OperatorError("the local stack serves no HTTP API or push channel: see template.yaml")
            yield SmokeTarget(
                f"a fresh local stack (API {stack.api.url}, time scale {time_scale:g})",
                stack.api.url,
                stack.push_url,
                LocalUsers(idp.issue_token),
                lambda: (0, []),  # the local stack runs no CloudWatch alarms
            )
        finally:
            stack.close()


def smoke(smoke_target: SmokeTarget, say: Say = print) -> int:
    """Run the smoke test and print the final line: 0 when it passed, 1 when a step failed."""
    started = time.monotonic()
    try:
        run_smoke(smoke_target, say)
    except SmokeFailure as failure:
        say(f"smoke test FAILED after {time.monotonic() - started:.1f} s: {failure}")
        return 1
    say(f"smoke test PASSED in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None, session: Any = None) -> int:
    """Parse the command line, find the target and run the smoke test against it."""
    parser = argparse.ArgumentParser(prog="python -m ops.smoke", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--env", default="dev", help="samconfig environment of the deployed stack (default dev)"
    )
    where.add_argument("--local", action="store_true", help="a fresh local stack on free ports instead")
    args = parser.parse_args(argv)
    if args.local:
        say = _say_to(sys.stdout)  # the stream as it is now: the local stack silences sys.stdout
        started = time.monotonic()
        print("starting a fresh local stack on free ports ...", flush=True)
        with local_smoke_target() as local:
            say(f"local stack ready in {time.monotonic() - started:.1f} s")
            return smoke(local, say)
    return smoke(deployed_smoke_target(args.env, session))


def _say_to(stream: TextIO) -> Say:
    return lambda line: print(line, file=stream, flush=True)


if __name__ == "__main__":
    raise SystemExit(run_command(main))
