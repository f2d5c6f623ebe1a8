"""Watch the push channel from a terminal: every message a screen would receive, one JSON line each.

    make watch USER=alice                  # a customer's feed: their own orders, and the shop
    make watch USER=bob ROLE=barista       # every order, and the shop
    python -m local.push.watch alice --url ws://127.0.0.1:3001

The token comes from the local identity provider (the key `make token` uses) and travels as the
second subprotocol, exactly as the browser sends it. When the connection drops, the watcher reconnects
with exponential backoff and jitter (as the screens do; they also re-read over HTTP then).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local.auth import ROLES, LocalIdp
from local.push.server import SUBPROTOCOL

DEFAULT_URL = "ws://127.0.0.1:3001"
MAX_BACKOFF_SECONDS = 30.0


async def watch(url: str, token: str, *, once: bool = False) -> int:
    """Print every message; reconnect after a drop unless `once`. 1 when the server refuses the token."""
    backoff = 0.5
    while True:
        try:
            async with connect(url, subprotocols=[SUBPROTOCOL, token]) as connection:  # type: ignore[list-item]
                print(f"# connected to {url} ({connection.subprotocol})", file=sys.stderr, flush=True)
                backoff = 0.5
                async for message in connection:
                    print(message if isinstance(message, str) else message.decode(), flush=True)
        except InvalidStatus as refused:
            print(f"# refused: HTTP {refused.response.status_code}", file=sys.stderr, flush=True)
            return 1
        except (ConnectionClosed, OSError) as dropped:
            print(f"# connection lost ({type(dropped).__name__})", file=sys.stderr, flush=True)
        if once:
            return 0
        delay = backoff * (0.5 + random.random())  # jitter, not cryptography
        print(f"# reconnecting in {delay:.1f} s", file=sys.stderr, flush=True)
        await asyncio.sleep(delay)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and watch until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="make watch", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("user", help="the local user name (as for make token)")
    parser.add_argument("--role", choices=ROLES, default="customer")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the push URL make local printed ({DEFAULT_URL})")
    args = parser.parse_args(argv)
    token = LocalIdp().issue_token(args.user, args.role)
    try:
        return asyncio.run(watch(args.url, token))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
