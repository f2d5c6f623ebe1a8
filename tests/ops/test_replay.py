"""`make replay` (ops/replay.py, ops/cli.py): dead-lettered events back on the bus, messages deleted only
once their event was accepted, both dead-letter shapes read, nothing changed by a dry run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local.dispatch import _failure_message
from local.engine import LocalEngine
from local.server import start_server
from ops.replay import event_of, replay_dead_letters
from ops.target import local_target_with
from tests.helpers import REPO_ROOT, load_event
from tests.template_tables import TEMPLATE_PATH


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    """The application provisioned in moto, nothing delivered (events are only recorded on demand)."""
    with LocalEngine.in_process(TEMPLATE_PATH, 0.01, start_dispatcher=False) as local:
        yield local


def route_to(engine: LocalEngine, target: str) -> Any:
    return next(route for route in engine.provisioned.routes if route.target == target)


def dead_letter(engine: LocalEngine, target: str, event: dict[str, Any]) -> None:
    """What the dispatcher writes when `target` kept failing on `event` (AWS's message formats)."""
    route = route_to(engine, target)
    message = _failure_message(route, event, 3, RuntimeError("boom"))
    engine.clients["sqs"].send_message(QueueUrl=route.failure_queue_url, **message)


def messages_in(engine: LocalEngine, logical_id: str) -> int:
    attributes = engine.clients["sqs"].get_queue_attributes(
        QueueUrl=engine.queue_urls[logical_id],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def replay(engine: LocalEngine, **options: Any) -> Any:
    target = local_target_with(engine.clients, engine.template, "test")
    lines: list[str] = []
    report = replay_dead_letters(
        sqs=engine.clients["sqs"],
        events=engine.clients["events"],
        queues=target.dead_letter_queues,
        bus_name=target.bus_name,
        say=lines.append,
        **options,
    )
    return report, lines


def test_both_shapes_of_dead_letter_are_read() -> None:
    # Given a rule DLQ's message (the event) and a Lambda on-failure record (the event inside)
    event = load_event("order_finished")
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}

    # Then each gives back the event, and anything else is unreadable
    assert event_of(json.dumps(event)) == ("event", event)
    assert event_of(json.dumps(record)) == ("invocation record", event)
    assert event_of("not json") == ("unreadable", None)
    assert event_of(json.dumps({"hello": "world"})) == ("unreadable", None)


def test_a_dry_run_lists_every_dead_letter_and_changes_nothing(engine: LocalEngine) -> None:
    # Given an ending event a function kept failing on, and a new order the workflow could not take
    dead_letter(engine, "OrderEndedFunction", load_event("order_finished"))
    dead_letter(engine, "OrderProcessorStateMachine", load_event("new_order"))

    # When the operator asks for a dry run
    report, lines = replay(engine, dry_run=True)

    # Then both are listed, with their shape, and both are still in their queues, visible
    assert sorted(letter.shape for letter in report.found) == ["event", "invocation record"]
    assert any("OrderProcessor.orderFinished" in line and "invocation record" in line for line in lines)
    assert any("Validator.NewOrder" in line and "(event)" in line for line in lines)
    assert report.replayed == []
    assert (messages_in(engine, "HandlerFailureQueue"), messages_in(engine, "NewOrderDLQ")) == (1, 1)
    assert len(replay(engine, dry_run=True)[0].found) == 2  # visible again at once


def test_replay_puts_the_events_back_on_the_bus_as_they_were_and_deletes_their_messages(
    engine: LocalEngine,
) -> None:
    # Given two dead-lettered events of both shapes
    finished = load_event("order_finished")
    dead_letter(engine, "OrderEndedFunction", finished)
    dead_letter(engine, "OrderProcessorStateMachine", load_event("new_order"))

    # When the operator replays them
    report, _ = replay(engine)

    # Then both reached the bus with their source, detail-type, detail and resources (the execution ARN)
    assert len(report.replayed) == 2
    engine.dispatcher.collect_events()
    [again] = engine.events_of_type("OrderProcessor.orderFinished")
    assert (again["source"], again["detail"], again["resources"]) == (
        finished["source"],
        finished["detail"],
        finished["resources"],
    )
    assert len(engine.events_of_type("Validator.NewOrder")) == 1
    # And their messages are gone
    assert (messages_in(engine, "HandlerFailureQueue"), messages_in(engine, "NewOrderDLQ")) == (0, 0)


def test_a_message_holding_no_event_of_ours_stays_in_its_queue(engine: LocalEngine) -> None:
    # Given the reconciler's scheduled trigger in the failure queue (its invocation failed), and garbage
    scheduled = load_event("reconcile_schedule")
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": scheduled}
    queue = engine.queue_urls["HandlerFailureQueue"]
    engine.clients["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    engine.clients["sqs"].send_message(QueueUrl=queue, MessageBody="not json")

    # When the operator replays
    report, lines = replay(engine)

    # Then nothing was put on the bus and both messages are still there
    assert report.replayed == []
    assert len(report.skipped) == 2
    assert any("not ours" in line for line in lines)
    engine.dispatcher.collect_events()
    assert engine.events_seen == []
    assert messages_in(engine, "HandlerFailureQueue") == 2


def test_an_event_the_bus_does_not_take_keeps_its_message(engine: LocalEngine) -> None:
    # Given a dead-lettered event, and a bus name that does not exist (PutEvents fails)
    dead_letter(engine, "OrderEndedFunction", load_event("order_finished"))
    target = local_target_with(engine.clients, engine.template, "test")

    # When the operator replays to it
    report = replay_dead_letters(
        sqs=engine.clients["sqs"],
        events=engine.clients["events"],
        queues=target.dead_letter_queues,
        bus_name="no-such-bus",
        say=lambda line: None,
    )

    # Then the event was not replayed and its message stays, visible again
    assert report.replayed == []
    assert len(report.failed) == 1
    assert len(replay(engine, dry_run=True)[0].found) == 1


def test_make_replay_works_against_a_local_stack_over_http(tmp_path: Any) -> None:
    # Given the application provisioned on a moto server (what `make local` runs) with one dead letter
    server, endpoint = start_server(0, "127.0.0.1")
    try:
        engine = LocalEngine.provision(TEMPLATE_PATH, 0.01, endpoint_url=endpoint)
        try:
            dead_letter(engine, "OrderEndedFunction", load_event("order_finished"))

            # When `make replay LOCAL=<endpoint>` runs, first as a dry run
            def make_replay(*extra: str) -> subprocess.CompletedProcess[str]:
                command = [sys.executable, "-m", "ops.cli", "replay", "--local", endpoint, *extra]
                return subprocess.run(
                    command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
                )

            dry = make_replay("--dry-run")
            done = make_replay()

            # Then the dry run lists it and changes nothing; the replay puts it back and empties the queue
            assert dry.returncode == 0, dry.stderr
            assert "OrderProcessor.orderFinished" in dry.stdout and "Dry run: would replay 1" in dry.stdout
            assert done.returncode == 0, done.stderr
            assert "Replayed 1 event(s) to bus Serverlesspresso" in done.stdout
            assert messages_in(engine, "HandlerFailureQueue") == 0
        finally:
            engine.close()
    finally:
        server.stop()
