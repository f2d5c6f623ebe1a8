"""The dispatcher under an API burst: background deliveries wait for it, the screens' messages do not."""

from __future__ import annotations

from local.cli import screen_posting_functions
from tests.helpers import load_event
from tests.local.conftest import TEMPLATE, EngineFactory

SHOP_CHANGED = load_event("shop_changed")
WORKFLOW_STARTED = load_event("workflow_started")


def test_under_a_burst_every_delivery_but_the_screens_messages_waits_for_the_api(
    make_engine: EngineFactory,
) -> None:
    with make_engine(TEMPLATE) as engine:
        # Given the functions that post to the screens exempted, and a dispatcher that asks whether the
        # API is under a burst before each delivery it may hold back (noting which delivery comes next)
        dispatcher = engine.dispatcher
        dispatcher.never_deferred = screen_posting_functions(engine)
        asked_before: list[int] = []

        def busy() -> bool:
            asked_before.append(len(dispatcher.started))
            return False

        dispatcher.busy = busy

        # When a shop change and a workflow's first wait reach the bus
        for event in (SHOP_CHANGED, WORKFLOW_STARTED):
            engine.put_event(event["detail-type"], event["detail"], source=event["source"])
        dispatcher.drain(timeout=30)

        # Then the push fan-out was the one function exempted, and it alone never waited
        assert dispatcher.never_deferred == {"PushFanOutFunction"}
        delivered = {target for _, target, _ in dispatcher.started}
        waited = {dispatcher.started[n][1] for n in asked_before}
        assert {"PushFanOutFunction", "WorkflowStartedFunction"} <= delivered
        assert waited == delivered - {"PushFanOutFunction"}
