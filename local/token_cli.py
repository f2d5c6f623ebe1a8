"""Print a bearer token for the local API: `make token USER=alice` or `make token USER=bob ROLE=barista`.

    python -m local.token_cli alice
    python -m local.token_cli bob --role barista

The token is the last line of output, so scripts can take it with `| tail -n1`. It is signed with the
local key in .local/jwt/ (created on first use) and is accepted only by the local API server.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from local.auth import DEFAULT_KEY_DIR, ROLES, TOKEN_LIFETIME_SECONDS, LocalIdp, user_sub


def main(argv: list[str] | None = None) -> int:
    """Issue one token and print it as the last line."""
    parser = argparse.ArgumentParser(description="Issue a local bearer token for the Serverlesspresso API.")
    parser.add_argument("user", help="user name (the same name always gets the same sub)")
    parser.add_argument("--role", choices=ROLES, default="customer")
    parser.add_argument("--key-dir", default=str(DEFAULT_KEY_DIR), help="where the local signing key lives")
    args = parser.parse_args(argv)
    token = LocalIdp(args.key_dir).issue_token(args.user, args.role)
    expires = datetime.now(UTC) + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
    print(
        f"# {args.role} {args.user} (sub {user_sub(args.user)}), valid for the local API until "
        f"{expires:%Y-%m-%d %H:%M} UTC. Use: Authorization: Bearer <token>",
        file=sys.stdout,
    )
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
