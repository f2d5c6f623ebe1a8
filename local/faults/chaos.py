"""`make chaos`: the rush of `make demo` with faults injected at random (seeded), then the mending
steps an operator would take, and a check that nothing was lost or left stuck.

    python -m local.faults.chaos [--customers 30] [--time-scale 0.04] [--seed 7] [--rate 0.1]

1. The stack of `make local` starts (local/cli.py LocalStack) with a FaultInjector attached: handlers
   fail once or for good on some events, the workflow's DynamoDB tasks are throttled, the API's
   PutEvents is refused, its SendTaskSuccess/Failure throttled, and some of the screens connected to
   the push channel vanish without a $disconnect (PostToConnection answers GoneException for them)
   (local/faults/injector.py).
2. The demo's customers and baristas play the rush (local/demo.py) while SCREENS are connected to the
   push channel; the client asks again after a 503 with Retry-After, as an app would. It ends when no
   execution runs any more.
3. The faults stop (the outage is over), then `make replay` (ops/replay.py) puts the dead-lettered
   events back on the bus, and `make reconcile` (ops/reconcile.py) settles what is still open: every
   order is past its longest (time-scaled) lifetime by then, so the reconciler runs with no delay.
4. The summary: faults by kind, orders by outcome, dead letters and what the mending did, and the
   check. Exit code 0 only when no order was lost (the API accepted it but it is not in the table),
   none is stuck in a non-terminal state, no capacity slot is taken, no dead letter is left, every
   order refused at placement ended REJECTED without an execution, the API answered no other 5xx, and
   the fan-out removed every gone connection from the connections table.

The handlers' logs go to .local/chaos.log.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from local.cli import DEFAULT_TEMPLATE, LocalStack, positive_number
from local.demo import (
    DemoSettings,
    Rush,
    report_check,
    run_logged,
    run_rush,
    rush_stack,
    scan_orders,
    shop_slots,
)
from local.faults.injector import FaultInjector, FaultKind, FaultRates
from local.push.screen import Screen
from ops.reconcile import reconcile
from ops.replay import ReplayReport, replay_dead_letters
from ops.target import local_target_with
from serverlesspresso.models import OrderState

DEFAULT_RATE = 0.1
# Twice the demo's: the workflow's Retry intervals (1 s and up) are not time-scaled, and a throttled
# task must not eat the customer's whole wait (0.04: 300 s -> 12 s, 900 s -> 36 s).
DEFAULT_TIME_SCALE = 0.04
DEFAULT_LOG = Path(__file__).resolve().parents[2] / ".local" / "chaos.log"
# Each kind's share of --rate: a handler failing for good is rarer than one failing once.
RATE_SHARES = {
    FaultKind.HANDLER_TRANSIENT: 1.0,
    FaultKind.HANDLER_PERMANENT: 0.5,
    FaultKind.DYNAMODB_THROTTLED: 1.0,
    FaultKind.PUT_EVENTS_FAILED: 1.0,
    FaultKind.SEND_TASK_THROTTLED: 1.0,
    FaultKind.PUSH_CONNECTION_GONE: 1.0,  # decided once per connection: a tenth of the screens vanish
}
# The screens watching the push channel during the rush: (role, how many).
SCREENS = (("barista", 3), ("display", 2), ("customer", 15))
QUIET_SECONDS = 1.0  # no new event on the bus for this long: what was in flight has been delivered


def fault_rates(rate: float) -> FaultRates:
    """Each kind at its share of `rate`."""
    return FaultRates(**{kind.value.replace("-", "_"): rate * share for kind, share in RATE_SHARES.items()})


def executions_done(stack: LocalStack, rush: Rush) -> bool:
    """The rush is over when every placed order has ended or has an execution, and none runs."""
    orders = scan_orders(stack)
    for order_id in rush.placements:
        order = orders.get(order_id)
        ended = order is not None and OrderState(order["state"]).is_terminal
        if not ended and not stack.engine.executions_for_order(order_id):
            return False
    return not stack.engine.executions("RUNNING")


def wait_until_quiet(stack: LocalStack, seconds: float = QUIET_SECONDS, timeout: float = 60.0) -> None:
    """Until no event reached the bus for `seconds` (the dispatcher delivered what was in flight)."""
    deadline = time.monotonic() + timeout
    seen, since = len(stack.engine.events_seen), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < seconds:
        time.sleep(0.1)
        if len(stack.engine.events_seen) != seen:
            seen, since = len(stack.engine.events_seen), time.monotonic()


@dataclass
class Outcome:
    """What the run left behind, read from the stack (not from what the actors meant to do)."""

    orders: dict[str, dict[str, Any]]
    placed: set[str]
    dead_lettered: Counter[str] = field(default_factory=Counter)
    open_before_mending: int = 0
    replay: ReplayReport | None = None
    reconciled: dict[str, Any] = field(default_factory=dict)
    slots_left: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    screens: int = 0  # connected to the push channel
    gone: list[str] = field(default_factory=list)  # their connections made gone (injected)
    gone_still_listed: list[str] = field(default_factory=list)  # of those, still in the table
    messages_to_the_others: int = 0  # received by the screens never gone

    def by_state(self) -> Counter[str]:
        """Placed orders by state."""
        return Counter(self.orders[o]["state"] for o in self.placed if o in self.orders)

    @property
    def lost(self) -> list[str]:
        """Orders the API accepted that are not in the table."""
        return sorted(self.placed - self.orders.keys())

    @property
    def stuck(self) -> list[str]:
        """Orders in a non-terminal state."""
        return sorted(o for o, order in self.orders.items() if not OrderState(order["state"]).is_terminal)

    @property
    def refused_at_placement(self) -> list[dict[str, Any]]:
        """Orders in the table no customer got a 202 for: their PutEvents was refused."""
        return [order for order_id, order in self.orders.items() if order_id not in self.placed]


def connect_screens(stack: LocalStack, rush: Rush) -> dict[str, Screen]:
    """SCREENS connected to the push channel, by name (none when the template has no WebSocket API)."""
    if stack.push_url is None:
        return {}
    names = [f"{role}-{n}" for role, count in SCREENS for n in range(count)]
    return {
        name: Screen(stack.push_url, rush.idp.issue_token(f"chaos-{name}", name.split("-")[0]), name)
        for name in names
    }


def observe_push(
    outcome: Outcome, stack: LocalStack, screens: dict[str, Screen], injector: FaultInjector
) -> None:
    """What the push channel's fault left: gone connections forgotten, messages to the other screens."""
    if stack.push is None:
        return
    table = stack.engine.table_names["ConnectionsTable"]
    items = stack.engine.clients["dynamodb"].scan(TableName=table, ConsistentRead=True)["Items"]
    listed = {item["connectionId"]["S"] for item in items}
    outcome.screens = len(screens)
    outcome.gone = injector.gone_connections
    outcome.gone_still_listed = sorted(set(outcome.gone) & listed)
    # A gone screen keeps its socket (it vanished for the fan-out only): tell them apart by connection.
    gone = set(outcome.gone)
    outcome.messages_to_the_others = sum(
        len(screen.received())
        for screen in screens.values()
        if stack.push.connection_id_of(screen.connection.local_address) not in gone
    )


def mend_and_observe(
    stack: LocalStack, rush: Rush, injector: FaultInjector, say: Callable[[str], None]
) -> Outcome:
    """Stop the faults, replay the dead letters, reconcile, and read what is left."""
    engine = stack.engine
    wait_until_quiet(stack)
    injector.detach()  # the outage is over: what follows runs without faults
    engine.faults = None
    outcome = Outcome(orders=scan_orders(stack), placed=set(rush.placements))
    outcome.dead_lettered = Counter(f"{d.target}" for d in engine.dead_letters)
    outcome.open_before_mending = len(outcome.stuck)
    target = local_target_with(
        engine.clients, engine.template, f"the chaos stack at {stack.endpoint_url}", stack.endpoint_url
    )
    say("")
    say("$ make replay")
    outcome.replay = replay_dead_letters(
        sqs=engine.clients["sqs"],
        events=engine.clients["events"],
        queues=target.dead_letter_queues,
        bus_name=target.bus_name,
        say=lambda line: say("  " + line),
    )
    wait_until_quiet(stack)
    say("$ make reconcile")
    outcome.reconciled = reconcile(target, timedelta(0), say=lambda line: say("  " + line))
    wait_until_quiet(stack)
    outcome.orders = scan_orders(stack)
    outcome.slots_left = shop_slots(stack)
    outcome.running = [e["name"] for e in engine.executions("RUNNING")]
    return outcome


def problems_of(outcome: Outcome, rush: Rush, run_errors: list[str], dead_left: int) -> list[str]:
    """Every way the run failed the check (module docstring)."""
    problems = [f"lost: order {order_id} was accepted but is not in the table" for order_id in outcome.lost]
    problems += [
        f"stuck: order {order_id} is {outcome.orders[order_id]['state']}" for order_id in outcome.stuck
    ]
    problems += [f"capacity slot leaked: {slot}" for slot in outcome.slots_left]
    problems += [f"execution still running: {name}" for name in outcome.running]
    problems += [f"gone push connection still listed: {c}" for c in outcome.gone_still_listed]
    if dead_left:
        problems.append(f"{dead_left} dead letter(s) left in the queues after the replay")
    for order in outcome.refused_at_placement:
        clean = str(order.get("endReason", "")).startswith("not started")
        if order["state"] != OrderState.REJECTED or not clean:
            problems.append(f"half-made order {order['orderId']}: {order['state']} {order.get('endReason')}")
    problems += [f"API 5xx: {error}" for error in rush.api.server_errors]
    problems += [f"refused: {text}" for text in rush.refused]
    problems += [f"actor: {error}" for error in [*rush.actor_errors, *run_errors]]
    return problems


def summary(outcome: Outcome, rush: Rush, injector: FaultInjector) -> list[str]:
    """The chaos summary (printed after the demo's own summary lines)."""
    counts = injector.counts
    faults = ", ".join(f"{kind} {counts.get(kind, 0)}" for kind in FaultKind)
    states = outcome.by_state()
    timed_out = Counter(
        str(order.get("endReason"))
        for order_id, order in outcome.orders.items()
        if order_id in outcome.placed and order["state"] == OrderState.TIMED_OUT
    )
    replay = outcome.replay or ReplayReport([], [], [])
    dead = ", ".join(f"{target} {n}" for target, n in sorted(outcome.dead_lettered.items())) or "none"
    return [
        f"Faults injected: {sum(counts.values())} ({faults})",
        f"API: {rush.api.retried_unavailable} answers 503 + Retry-After, asked again; "
        f"{len(rush.api.server_errors)} other 5xx",
        f"Orders by outcome: {len(outcome.placed)} placed: completed {states['COMPLETED']}, cancelled "
        f"{states['CANCELLED']}, timed out {states['TIMED_OUT']} (customer "
        f"{timed_out['Customer timedout']}, barista {timed_out['Barista timedout']}), rejected "
        f"{states['REJECTED']}; {len(outcome.refused_at_placement)} refused at placement (REJECTED, "
        "never started; placed again)",
        f"Events dead-lettered: {sum(outcome.dead_lettered.values())} ({dead}); replayed "
        f"{len(replay.replayed)}, left in the queues {len(replay.failed) + len(replay.skipped)}",
        f"Push: {outcome.screens} screens connected; {len(outcome.gone)} connection(s) gone, "
        f"{len(outcome.gone) - len(outcome.gone_still_listed)} of them removed by the fan-out; the "
        f"others received {outcome.messages_to_the_others} messages",
        f"Orders open before mending: {outcome.open_before_mending}; settled by the reconciler: "
        f"{outcome.reconciled.get('settled', 0)}, capacity slots it released: "
        f"{outcome.reconciled.get('slotsReleased', 0)}",
        "Along the way: " + (", ".join(f"{what} x{n}" for what, n in sorted(rush.notes.items())) or "-"),
        f"Orders lost: {len(outcome.lost)}; stuck in a non-terminal state: {len(outcome.stuck)}; capacity "
        f"slots leaked: {len(outcome.slots_left)}",
    ]


@dataclass(frozen=True)
class ChaosSettings:
    """The demo's knobs and the fault rate and seed."""

    demo: DemoSettings
    rate: float = DEFAULT_RATE

    def describe(self) -> str:
        """The first line of the output."""
        rates = fault_rates(self.rate)
        shares = ", ".join(f"{kind} {rates.of(kind):.0%}" for kind in FaultKind)
        return f"{self.demo.describe()}\nFaults (seed {self.demo.seed}): {shares}"


def run_chaos(
    settings: ChaosSettings, *, out: TextIO, log: TextIO, template: str | Path = DEFAULT_TEMPLATE
) -> int:
    """Start the stack with faults, play the rush, mend, check; 0 when nothing is lost, stuck or leaked."""
    print(settings.describe(), file=out, flush=True)
    injector = FaultInjector(fault_rates(settings.rate), seed=settings.demo.seed)
    # The API in this process (no worker processes): the fault switch must reach its PutEvents and
    # SendTask calls too, and it is attached to this process's engine.
    with rush_stack(settings.demo, out=out, log=log, template=template, api_workers=0) as rush:
        if rush is None or rush.stack is None:
            return 2
        stack = rush.stack
        stack.engine.faults = injector  # the engine's fault switch: closing the engine detaches it
        injector.attach(stack.engine)
        rush.orders_may_stick = True
        screens = connect_screens(stack, rush)
        try:
            run = run_rush(stack, rush, out, settled=executions_done)
            if run is None:
                return 1
            outcome = mend_and_observe(stack, rush, injector, say=lambda line: print(line, file=out))
            observe_push(outcome, stack, screens, injector)
        finally:
            for screen in screens.values():
                screen.close()
        dead_left = len(
            replay_dead_letters(
                sqs=stack.engine.clients["sqs"],
                events=stack.engine.clients["events"],
                queues=stack.engine.queue_urls,
                bus_name=stack.engine.bus_name,
                dry_run=True,
                say=lambda line: print(line, file=log),
            ).found
        )
    print("", file=out)
    for line in summary(outcome, rush, injector):
        print(line, file=out)
    ok = (
        f"OK: {len(outcome.placed)} orders placed, every one ended in a terminal state; nothing lost, "
        "nothing stuck, no capacity slot leaked, no dead letter left"
    )
    return report_check(problems_of(outcome, rush, run.errors, dead_left), ok, out)


def main(argv: list[str] | None = None) -> int:
    """Run the chaos rush with command-line options; see the module docstring."""
    parser = argparse.ArgumentParser(prog="make chaos", description="The demo's rush, with faults.")
    parser.add_argument("--customers", type=int, default=DemoSettings.customers)
    parser.add_argument("--time-scale", type=positive_number, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--seed", type=int, default=DemoSettings.seed, help="random seed (rush and faults)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="fault probability per call")
    parser.add_argument("--log-file", default=str(DEFAULT_LOG))
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    args = parser.parse_args(argv)
    if args.customers < 1 or not 0 <= args.rate <= 1:
        parser.error("--customers must be at least 1 and --rate between 0 and 1")
    settings = ChaosSettings(DemoSettings(args.customers, args.time_scale, args.seed), args.rate)
    return run_logged(
        args.log_file, lambda log: run_chaos(settings, out=sys.stdout, log=log, template=args.template)
    )


if __name__ == "__main__":
    raise SystemExit(main())
