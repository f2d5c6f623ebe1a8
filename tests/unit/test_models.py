"""serverlesspresso.models: the sample events parse into the right commands, ranks only grow, and a
parsed task token does not show up in a repr."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, TypeAdapter

from serverlesspresso.models import (
    EVENT_SOURCE,
    OrderId,
    OrderState,
    UserId,
    WaitingCompletionEvent,
    WorkflowStartedEvent,
    barista_wait_from,
    customer_wait_from,
    order_ended_from,
)
from serverlesspresso.push import Change, change_from
from tests.helpers import REPO_ROOT, eventbridge_event_names, load_event

ASL_PATH = REPO_ROOT / "statemachine" / "order_processor.asl.json"

# sample event -> (mapping the handler uses, the state the order moves to)
SAMPLE_MAPPINGS: dict[str, tuple[Callable[[Any], Any], OrderState]] = {
    "workflow_started": (customer_wait_from, OrderState.WAITING_FOR_CUSTOMER),
    "waiting_completion": (barista_wait_from, OrderState.WAITING_FOR_BARISTA),
    "order_finished": (order_ended_from, OrderState.COMPLETED),
    "order_timed_out": (order_ended_from, OrderState.TIMED_OUT),
    "shop_unavailable": (order_ended_from, OrderState.REJECTED),
    "order_cancelled": (order_ended_from, OrderState.CANCELLED),
}
# sample event -> the change the push fan-out reads from it (PushFanOutFunction's triggers)
PUSH_SAMPLES: dict[str, Change] = {
    "order_changed": Change("7c3f1b2e-5d4a-4e8b-9f0a-1b2c3d4e5f60", OrderState.SUBMITTED),
    "barista_queue": Change("7c3f1b2e-5d4a-4e8b-9f0a-1b2c3d4e5f60", OrderState.WAITING_FOR_BARISTA),
    "shop_changed": Change(),
}


def test_new_order_sample_has_the_input_shape_the_workflow_reads() -> None:
    # Given every input path the workflow reads from its trigger event ($.detail.<field>)
    read_fields = set(re.findall(r'"\$\.detail\.([A-Za-z]+)"', ASL_PATH.read_text(encoding="utf-8")))

    # When the sample trigger is validated as an EventBridge envelope
    new_order = load_event("new_order")
    envelope = EventBridgeModel.model_validate(new_order)

    # Then it is a Validator.NewOrder from our source carrying exactly those fields, valid as the
    # ids every workflow event will carry
    assert envelope.detail_type == "Validator.NewOrder"
    assert envelope.source == EVENT_SOURCE
    assert read_fields == {"orderId", "userId"}
    assert set(new_order["detail"]) == read_fields
    TypeAdapter(OrderId).validate_python(new_order["detail"]["orderId"])
    TypeAdapter(UserId).validate_python(new_order["detail"]["userId"])


def test_every_sample_bus_event_except_the_trigger_has_a_mapping() -> None:
    # Given the EventBridge samples in events/, When they are listed, Then each one but the
    # trigger is one of the workflow or push events mapped here (and so goes through its handler's tests)
    assert set(eventbridge_event_names()) - {"new_order"} == set(SAMPLE_MAPPINGS) | set(PUSH_SAMPLES)


@pytest.mark.parametrize("name", sorted(PUSH_SAMPLES))
def test_push_sample_event_maps_to_the_change_it_announces(name: str) -> None:
    # Given a sample of an event the push fan-out consumes, When it is parsed as the fan-out does
    change = change_from(load_event(name))

    # Then it names the order and the state it changed to (nothing for a shop change)
    assert change == PUSH_SAMPLES[name]


@pytest.mark.parametrize("name", sorted(SAMPLE_MAPPINGS))
def test_sample_event_maps_to_the_order_state_it_announces(name: str) -> None:
    # Given a sample event of one order, emitted by one execution
    event = load_event(name)
    new_order = load_event("new_order")
    mapping, expected_state = SAMPLE_MAPPINGS[name]

    # When it is parsed the way its handler parses it
    command = mapping(event)

    # Then the command names that order, user, execution and the state it moves the order to
    assert command.state is expected_state
    assert (command.order_id, command.user_id) == (
        new_order["detail"]["orderId"],
        new_order["detail"]["userId"],
    )
    assert command.execution_arn == event["resources"][1]
    assert ":execution:" in command.execution_arn


def test_order_states_rank_along_the_order_life_and_end_in_four_terminal_states() -> None:
    # Given the life of an order, When the ranks are read in that order, Then they strictly grow
    life = [
        OrderState.PLACED,
        OrderState.WAITING_FOR_CUSTOMER,
        OrderState.SUBMITTED,
        OrderState.WAITING_FOR_BARISTA,
        OrderState.COMPLETING,
        OrderState.CANCELLING,
    ]
    ranks = [state.rank for state in life]
    assert ranks == sorted(set(ranks))
    terminal = {state for state in OrderState if state.is_terminal}
    assert terminal == {OrderState.COMPLETED, OrderState.CANCELLED, OrderState.TIMED_OUT, OrderState.REJECTED}
    assert all(state.rank > max(ranks) for state in terminal)


@pytest.mark.parametrize(
    ("name", "model", "mapping"),
    [
        ("workflow_started", WorkflowStartedEvent, customer_wait_from),
        ("waiting_completion", WaitingCompletionEvent, barista_wait_from),
    ],
)
def test_parsed_token_events_do_not_show_the_token(
    name: str, model: type[BaseModel], mapping: Callable[[Any], Any]
) -> None:
    # Given a token event
    event = load_event(name)
    token = event["detail"]["TaskToken"]

    # When it is parsed into its envelope model and into the domain command
    envelope = model.model_validate(event)
    command = mapping(event)

    # Then the command still carries the token for the store, but no repr, str or dump shows it
    assert command.task_token == token
    for text in (repr(command), str(command), repr(envelope), str(envelope), envelope.model_dump_json()):
        assert token[:24] not in text
