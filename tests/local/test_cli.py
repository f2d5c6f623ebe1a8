"""`make local` (local/cli.py) beyond the end-to-end walkthrough: a taken port, and handler log lines."""

from __future__ import annotations

import json
import socket
import time

import pytest

from local.cli import LocalStack, PortInUse, compact_log_line


@pytest.mark.parametrize("taken", ["port", "api_port"])
def test_a_taken_port_is_refused_at_once_instead_of_hanging(taken: str) -> None:
    # Given another process listening on the port the stack wants
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ports = {"port": 0, "api_port": 0, taken: listener.getsockname()[1]}

        # When the stack starts, Then it refuses with the port's number (moto's server thread would
        # otherwise wait for ever on a port it cannot bind)
        started = time.monotonic()
        with pytest.raises(PortInUse, match=str(ports[taken])):
            LocalStack.start(**ports)
        assert time.monotonic() - started < 5


def test_a_handler_log_line_is_shown_compactly_and_other_output_as_it_is() -> None:
    # Given a Powertools log line as OrderEndedFunction writes it, and a line that is not JSON
    record = {
        "level": "INFO",
        "location": "record_order_end:92",
        "message": "order ended",
        "timestamp": "2026-11-29 15:06:36,854+0000",
        "service": "serverlesspresso",
        "cold_start": False,
        "function_name": "serverlesspresso-OrderEndedFunction",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:serverlesspresso-OrderEndedFunction",
        "function_request_id": "6b95416e-1382-4789-9423-99906e81dad2",
        "correlation_id": "order-1",
        "state": "COMPLETED",
        "reason": "completed",
    }

    # When they are shown on the console, Then the log line keeps what says something, the rest stays
    assert compact_log_line(json.dumps(record)) == (
        "OrderEndedFunction INFO order ended [order-1] state=COMPLETED reason=completed"
    )
    assert compact_log_line("plain text from a handler") == "plain text from a handler"
    assert compact_log_line('{"_aws": {"CloudWatchMetrics": []}}') == '{"_aws": {"CloudWatchMetrics": []}}'
