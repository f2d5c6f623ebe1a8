"""`make replay` and `make reconcile`: `python -m ops.cli {replay,reconcile} [--env ENV | --local URL]`.

--env names a samconfig.toml environment (a deployed stack, your AWS credentials); --local an AWS
endpoint of `make local` (default http://127.0.0.1:4566).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from ops.reconcile import reconcile
from ops.replay import replay_dead_letters
from ops.stack import run_command
from ops.target import DEFAULT_LOCAL_ENDPOINT, Target, deployed_target, local_target


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; 0 when it did everything it set out to."""
    parser = argparse.ArgumentParser(prog="python -m ops.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="re-publish dead-lettered events to the bus")
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")
    settle = commands.add_parser("reconcile", help="settle orders whose workflow ended but record did not")
    settle.add_argument(
        "--settle-after", type=float, help="local only: seconds after placing (default: the template's)"
    )
    for command in (replay, settle):
        where = command.add_mutually_exclusive_group()
        where.add_argument("--env", help="a samconfig.toml environment: the deployed stack")
        where.add_argument("--local", help=f"make local's AWS endpoint (default {DEFAULT_LOCAL_ENDPOINT})")
    args = parser.parse_args(argv)
    target = _target(args.env, args.local)
    print(f"Target: {target.description}")
    if args.command == "replay":
        report = replay_dead_letters(
            sqs=target.clients["sqs"],
            events=target.clients["events"],
            queues=target.dead_letter_queues,
            bus_name=target.bus_name,
            dry_run=args.dry_run,
        )
        return 1 if report.failed else 0
    settle_after = timedelta(seconds=args.settle_after) if args.settle_after is not None else None
    reconcile(target, settle_after)
    return 0


def _target(env: str | None, local: str | None) -> Target:
    if env:
        return deployed_target(env)
    return local_target(local or DEFAULT_LOCAL_ENDPOINT)


if __name__ == "__main__":
    raise SystemExit(run_command(main))  # an AWS refusal is one `error:` line too
