"""`make -s link SCREEN=order|barista|display USER=name [ROLE=...] [API_PORT=3000]`: a URL, as the last
line, that opens that screen on the running `make local` already signed in.

The URL carries a login ticket (local/auth.py): signed with the local key, valid for ten minutes and
redeemed once by the local authorize endpoint, which then runs the screen's ordinary sign-in (code flow
with PKCE). So the link is not a token: used once, it is spent, and it never reaches the API.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlencode

from local.api_server import DEFAULT_HOST, DEFAULT_PORT
from local.auth import DEFAULT_KEY_DIR, LOGIN_TICKET_LIFETIME_SECONDS, ROLES, LocalIdp

SCREENS = {"order": "/", "barista": "/barista", "display": "/display"}
DEFAULT_ROLES = {"order": "customer", "barista": "barista", "display": "display"}


def link(
    screen: str, user: str, role: str | None = None, *, port: int = DEFAULT_PORT, idp: LocalIdp | None = None
) -> str:
    """The signed-in URL of `screen` for `user` (role: the screen's own unless given)."""
    ticket = (idp or LocalIdp()).issue_login_ticket(user, role or DEFAULT_ROLES[screen])
    return f"http://{DEFAULT_HOST}:{port}{SCREENS[screen]}?{urlencode({'login': ticket})}"


def main(argv: list[str] | None = None) -> int:
    """Print a one-line explanation, then the URL as the last line."""
    parser = argparse.ArgumentParser(
        prog="make link", description="A signed-in URL for a screen of make local."
    )
    parser.add_argument("--screen", choices=sorted(SCREENS), required=True)
    parser.add_argument("--user", required=True, help="the name to sign in as")
    parser.add_argument("--role", choices=ROLES, help="default: customer / barista / display by screen")
    parser.add_argument("--api-port", type=int, default=DEFAULT_PORT, help="the port of make local's API")
    parser.add_argument("--key-dir", default=str(DEFAULT_KEY_DIR), help="where the local signing key lives")
    args = parser.parse_args(argv)
    role = args.role or DEFAULT_ROLES[args.screen]
    url = link(args.screen, args.user, role, port=args.api_port, idp=LocalIdp(args.key_dir))
    minutes = LOGIN_TICKET_LIFETIME_SECONDS // 60
    print(f"# the {args.screen} screen as {role} {args.user}: open within {minutes} minutes, works once")
    print(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
