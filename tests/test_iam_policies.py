"""Every IAM statement of the deployed stack names real actions, resources the action accepts and
condition keys that exist, according to the IAM database parliament ships (tests/iam_lint.py);
each deliberate exception is listed, with its reason, in tests/iam_lint.py::ALLOWED.

Needs the SAM translator (.venv-tools, which `make test` creates) to see the policies SAM generates.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.template import Template
from tests.iam_lint import action_exists, findings, lambda_permission_actions, policy_documents, unexplained
from tests.least_privilege import expanded_by_sam, translate_with_sam
from tests.template_tables import load_template

Body = dict[str, Any]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def lint(template: Template) -> tuple[list[str], list[str]]:
    """(unexplained findings, stale exceptions) of the template as SAM would deploy it."""
    return unexplained(findings(policy_documents(expanded_by_sam(template))))


def test_every_deployed_statement_is_valid_or_a_listed_exception(template: Template) -> None:
    errors, stale = lint(template)
    assert errors == []
    # And every listed exception is still needed (one that matches nothing must be removed)
    assert stale == []


def test_the_checks_cover_identity_trust_queue_topic_and_key_policies(template: Template) -> None:
    kinds = {(d.kind, d.where.split("/")[0]) for d in policy_documents(expanded_by_sam(template))}
    assert {kind for kind, _ in kinds} == {"identity", "trust", "resource", "key"}
    assert ("resource", "AlarmTopicPolicy") in kinds
    assert ("key", "AlarmTopicKey") in kinds


def test_every_lambda_permission_names_an_existing_action(template: Template) -> None:
    permissions = lambda_permission_actions(expanded_by_sam(template))
    assert permissions
    assert [(where, action) for where, action in permissions if not action_exists(action)] == []


# ------------------------------------------------------------------------ the check can fail
def _statement(body: Body, logical_id: str, sid: str) -> dict[str, Any]:
    properties = body["Resources"][logical_id]["Properties"]
    documents = [p for p in properties.get("Policies", []) if isinstance(p, dict)]
    documents += [properties["PolicyDocument"]] if "PolicyDocument" in properties else []
    for document in documents:
        for statement in document.get("Statement", []):
            if statement.get("Sid") == sid:
                return statement  # type: ignore[no-any-return]
    raise KeyError(f"{logical_id} has no statement {sid}")


def _misspell_an_action(body: Body) -> None:
    _statement(body, "OrderApiFunction", "Orders")["Action"] = ["dynamodb:GetItem", "dynamodb:UpdateItm"]


def _table_arn_for_an_events_action(body: Body) -> None:
    _statement(body, "OrderProcessorStateMachine", "EmitOrderEvents")["Resource"] = {
        "Fn::GetAtt": ["OrdersTable", "Arn"]
    }


def _misspell_a_condition_key(body: Body) -> None:
    statement = _statement(body, "OrderApiFunction", "StartOrders")
    statement["Condition"]["StringEquals"]["events:detail-typ"] = statement["Condition"]["StringEquals"].pop(
        "events:detail-type"
    )


def _misspell_an_index_arn(body: Body) -> None:
    _statement(body, "OrderApiFunction", "OrderListings")["Resource"] = [
        {"Fn::Sub": "${OrdersTable.Arn}/indx/ByState"}
    ]


def _table_arn_for_task_tokens(body: Body) -> None:
    _statement(body, "OrderApiFunction", "ResumeOrders")["Resource"] = {"Fn::GetAtt": ["OrdersTable", "Arn"]}


def _misspell_the_topic_policy_action(body: Body) -> None:
    _statement(body, "AlarmTopicPolicy", "CloudWatchAlarmsOfThisAccountPublish")["Action"] = "sns:Publsh"


MUTATIONS: dict[str, tuple[Callable[[Body], None], str]] = {
    "misspelt action": (_misspell_an_action, "UNKNOWN_ACTION"),
    "table ARN given to events:PutEvents": (_table_arn_for_an_events_action, "RESOURCE_MISMATCH"),
    "misspelt condition key": (_misspell_a_condition_key, "UNKNOWN_CONDITION_FOR_ACTION"),
    "index ARN with a typo": (_misspell_an_index_arn, "STRICT_RESOURCE_MISMATCH"),
    "task-token actions on a table, not the state machine": (_table_arn_for_task_tokens, "RESOURCE_MISMATCH"),
    "misspelt action in the SNS topic policy": (_misspell_the_topic_policy_action, "UNKNOWN_ACTION"),
}


@pytest.fixture(scope="module")
def wrong_copies(template: Template, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{mutation: path of a copy of template.yaml with that statement made wrong}, all expanded by one
    SAM translator process up front (one per mutation cost seconds of CPU for the interpreter alone)."""
    copies: dict[str, Path] = {}
    for mutation, (mutate, _) in MUTATIONS.items():
        body = copy.deepcopy(template.body)
        mutate(body)
        path = tmp_path_factory.mktemp("wrong-statement") / "template.yaml"
        path.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML to the SAM translator
        copies[mutation] = path
    translate_with_sam(template.path, *copies.values())
    return copies


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_wrong_statement_in_a_copy_of_the_template_fails_the_check(
    mutation: str, wrong_copies: dict[str, Path]
) -> None:
    # Given a copy of template.yaml with one statement made wrong
    _, expected_issue = MUTATIONS[mutation]

    # When the copy is checked as the real one is
    errors, _ = lint(Template.load(wrong_copies[mutation]))

    # Then the wrong statement is reported, with the issue that describes it
    assert any(expected_issue in error for error in errors), errors
