"""Operations (issue 14) stay complete as the template grows: the dashboard shows every dead-letter
queue and every function, and its custom metrics are ones the code emits. (The README's runbook row
for every alarm: tests/test_readme_runbook.py.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.template import Template
from tests.helpers import REPO_ROOT
from tests.template_tables import load_template

SHARED = REPO_ROOT / "functions" / "shared" / "serverlesspresso"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def dashboard(template: Template) -> dict[str, Any]:
    [logical_id] = template.resources("AWS::CloudWatch::Dashboard")
    body = template.properties(logical_id)["DashboardBody"]["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def metrics_of(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [metric for widget in dashboard["widgets"] for metric in widget["properties"]["metrics"]]


def test_the_dashboard_shows_every_dead_letter_queue_and_every_function(
    template: Template, dashboard: dict[str, Any]
) -> None:
    # Given the queues' and functions' references in the dashboard's metrics
    shown = {str(value) for metric in metrics_of(dashboard) for value in metric if isinstance(value, str)}

    # Then each queue's depth and each function's errors and duration are there
    for queue in template.resources("AWS::SQS::Queue"):
        assert "${" + queue + ".QueueName}" in shown, queue
    for function in template.resources("AWS::Serverless::Function"):
        assert "${" + function + "}" in shown, function


def test_every_custom_metric_on_the_dashboard_or_an_alarm_is_emitted_by_the_code(
    template: Template, dashboard: dict[str, Any]
) -> None:
    # Given the metric names the shared package publishes
    code = "\n".join(path.read_text() for path in SHARED.glob("*.py"))
    emitted = set(re.findall(r'name="([A-Za-z]+)", unit=MetricUnit', code))

    # Then every metric of our namespace that the dashboard or an alarm reads is one of them
    read = {metric[1] for metric in metrics_of(dashboard) if metric[0] == "Serverlesspresso"}
    read |= {
        props["MetricName"]
        for lid in template.resources("AWS::CloudWatch::Alarm")
        if (props := template.properties(lid)).get("Namespace") == "Serverlesspresso"
    }
    assert read and read <= emitted, read - emitted
