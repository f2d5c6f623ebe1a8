"""Every IAM statement the stack deploys, checked against the IAM actions and resource-types database
that parliament ships (its copy of AWS's Service Authorization Reference).

What is checked (`findings`):
- the policy documents the SAM translator produces (tests/least_privilege.py::expanded_by_sam): the
  roles' inline policies (ours, SAM's policy templates and the ones SAM generates) and trust
  policies, AWS::IAM::Policy documents, the SQS queue and SNS topic policies and the KMS key policy,
  with every intrinsic resolved to the local stack's ARNs (local/template.py);
- by parliament: each action exists (UNKNOWN_ACTION / UNKNOWN_PREFIX), each Resource matches a
  resource type the action accepts or the action takes only "*" (RESOURCE_MISMATCH), each condition
  key exists for the action and each operator is known (UNKNOWN_CONDITION_FOR_ACTION,
  UNKNOWN_OPERATOR, MISMATCHED_TYPE), the Principal, Version, Sid and structure are well formed;
- by `_strict_resource_findings` (our rule, STRICT_RESOURCE_MISMATCH): parliament's ARN match is a
  glob in which `*` also spans `/`, so `table/Orders/indx/ByState` passes as a table; here a concrete
  ARN must match a resource type's documented format with each `${Variable}` one path segment.

The deliberate exceptions are `ALLOWED`, each with its reason; `unexplained(findings)` is what a test
asserts empty, and an exception that no longer matches anything is reported too (stale).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import parliament  # type: ignore[import-untyped]

from local.template import Template

# What a policy document is for; parliament reads every kind as an identity or resource policy.
IDENTITY, TRUST, RESOURCE, KEY = "identity", "trust", "resource", "key"


@dataclass(frozen=True)
class PolicyDocument:
    """One deployed policy document: where it is (resource, policy name), its kind, resolved body."""

    where: str
    kind: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One problem in one document: parliament's issue code (or ours), the actions concerned."""

    document: PolicyDocument
    issue: str
    actions: frozenset[str]
    detail: str

    def __str__(self) -> str:
        return f"{self.document.where} ({self.document.kind}): {self.issue} {self.detail}"


@dataclass(frozen=True)
class Allowed:
    """A deliberate exception: findings it matches are explained, not errors."""

    name: str
    why: str
    matches: Callable[[Finding], bool]


TASK_TOKEN_ACTIONS = frozenset({"states:SendTaskSuccess", "states:SendTaskFailure"})
EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:/*]+:[^:/]+")
STATE_MACHINE_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:/*]+")

ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "task-token actions scoped to the state machine",
        "The IAM reference lists no resource type for states:SendTaskSuccess/Failure, so IAM tools "
        "expect Resource '*'; SAM's StepFunctionsCallbackPolicy and CDK's grantTaskResponse() scope "
        "them to the state machine's ARN as we do, and it works: see the comment on "
        "WorkflowStartedFunction's EndDuplicateExecutions statement in template.yaml.",
        lambda f: (
            f.issue == "RESOURCE_MISMATCH"
            and f.document.kind == IDENTITY
            and f.actions <= TASK_TOKEN_ACTIONS
            and _granted_only_on_state_machines(f.document, f.actions)
        ),
    ),
    Allowed(
        "DescribeExecution on a standard workflow's executions",
        "The IAM reference lists two resource types for states:DescribeExecution, `execution` (standard "
        "workflows: arn:...:execution:MACHINE:NAME) and `express`; parliament's database keeps only the "
        "express format for it, so it flags the standard one we grant (the reconciler reads how each "
        "execution of our Standard workflow ended). Only this action on execution ARNs is let through.",
        lambda f: (
            f.issue == "RESOURCE_MISMATCH"
            and f.document.kind == IDENTITY
            and f.actions == frozenset({"states:DescribeExecution"})
            and _granted_only_on_executions(f.document)
        ),
    ),
    Allowed(
        "a key policy's Resource is '*'",
        "In a KMS key policy, Resource '*' means 'this key' and nothing else (a key policy can name no "
        "other resource), so RESOURCE_STAR does not widen anything there.",
        lambda f: f.issue == "RESOURCE_STAR" and f.document.kind == KEY,
    ),
    Allowed(
        "a trust policy has no Resource",
        "A role's trust policy is a resource policy on the role itself and has no Resource element; "
        "parliament reads every document as if it needed one.",
        lambda f: f.issue == "MALFORMED" and f.document.kind == TRUST and "neither Resource" in f.detail,
    ),
    Allowed(
        "SAM's generated policies have no Version",
        "The SAM translator writes the policies it generates (policy templates, the on-failure "
        "destination's sqs:SendMessage) without Version. The 2008 policy language it implies differs "
        "only in policy variables, and these documents use none (checked: no '${' in them). Our own "
        "policies in template.yaml all say Version 2012-10-17.",
        lambda f: (
            f.issue == "NO_VERSION" and "${" not in json.dumps(f.document.document) and _generated_by_sam(f)
        ),
    ),
)


def policy_documents(template: Template) -> list[PolicyDocument]:
    """Every policy document of the expanded (SAM-translated) template, intrinsics resolved."""
    documents = []
    for logical_id, resource in template.resources().items():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                documents.append((f"{logical_id}/{policy['PolicyName']}", IDENTITY, policy["PolicyDocument"]))
            documents.append(
                (f"{logical_id}/AssumeRolePolicyDocument", TRUST, properties["AssumeRolePolicyDocument"])
            )
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append((logical_id, IDENTITY, properties["PolicyDocument"]))
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            documents.append((logical_id, RESOURCE, properties["PolicyDocument"]))
        elif kind == "AWS::KMS::Key":
            documents.append((logical_id, KEY, properties["KeyPolicy"]))
    return [PolicyDocument(where, kind, template.resolve(body)) for where, kind, body in documents]


def findings(documents: Iterable[PolicyDocument]) -> list[Finding]:
    """parliament's findings and ours for each document."""
    found = []
    for document in documents:
        policy = parliament.analyze_policy_string(json.dumps(document.document))
        found += [Finding(document, f.issue, _actions_in(f.detail), str(f.detail)) for f in policy.findings]
        found += _strict_resource_findings(document)
    return found


def unexplained(found: Iterable[Finding]) -> tuple[list[str], list[str]]:
    """(findings no exception explains, exceptions that explained nothing: stale)."""
    found = list(found)
    errors = [str(f) for f in found if not any(allowed.matches(f) for allowed in ALLOWED)]
    stale = [allowed.name for allowed in ALLOWED if not any(allowed.matches(f) for f in found)]
    return errors, stale


def lambda_permission_actions(template: Template) -> list[tuple[str, str]]:
    """(logical id, action) of each AWS::Lambda::Permission: resource policies SAM writes one by one."""
    return [
        (logical_id, str(template.resolve(resource["Properties"]["Action"])))
        for logical_id, resource in template.resources("AWS::Lambda::Permission").items()
    ]


def action_exists(action: str) -> bool:
    """True if parliament's database knows the action (no wildcards expected)."""
    try:
        return bool(parliament.expand_action(action))
    except (parliament.UnknownActionException, parliament.UnknownPrefixException):
        return False


# ------------------------------------------------------------------------------------- helpers
def _generated_by_sam(finding: Finding) -> bool:
    # Our policies' names in the translated template are <Function>RolePolicy<N>; SAM's own are others.
    return re.search(r"RolePolicy\d+$", finding.document.where) is None


def _granted_only_on_state_machines(document: PolicyDocument, actions: frozenset[str]) -> bool:
    resources = [
        resource
        for statement in _as_list(document.document["Statement"])
        if actions & set(_as_list(statement.get("Action", [])))
        for resource in _as_list(statement.get("Resource", []))
    ]
    return bool(resources) and all(STATE_MACHINE_ARN.fullmatch(resource) for resource in resources)


def _granted_only_on_executions(document: PolicyDocument) -> bool:
    """Every statement granting states:DescribeExecution names only standard-workflow execution ARNs."""
    resources = [
        resource
        for statement in _as_list(document.document.get("Statement", []))
        if "states:DescribeExecution" in _as_list(statement.get("Action", []))
        for resource in _as_list(statement.get("Resource", []))
    ]
    return bool(resources) and all(EXECUTION_ARN.fullmatch(str(resource)) for resource in resources)


def _actions_in(detail: Any) -> frozenset[str]:
    if isinstance(detail, list):
        return frozenset(
            item["action"] if isinstance(item, dict) and "action" in item else str(item) for item in detail
        )
    return frozenset()


def _strict_resource_findings(document: PolicyDocument) -> Iterator[Finding]:
    for statement in _as_list(document.document.get("Statement", [])):
        resources = [r for r in _as_list(statement.get("Resource", [])) if "*" not in r]
        for action in _as_list(statement.get("Action", [])):
            formats = _resource_formats(action)
            if not formats:  # unknown action (parliament reports it) or one that takes only "*"
                continue
            for arn in resources:
                if not any(re.fullmatch(pattern, arn) for pattern in formats):
                    yield Finding(
                        document,
                        "STRICT_RESOURCE_MISMATCH",
                        frozenset({action}),
                        f"{arn} is none of the resource types {action} takes",
                    )


def _resource_formats(action: str) -> list[str]:
    """Regular expressions of the ARN formats of the resource types `action` takes."""
    prefix, _, name = action.partition(":")
    service = next((s for s in parliament.iam_definition if s["prefix"] == prefix), None)
    if service is None or "*" in name:
        return []
    privilege = next((p for p in service["privileges"] if p["privilege"] == name), None)
    if privilege is None:
        return []
    types = {t["resource_type"].rstrip("*") for t in privilege["resource_types"]} - {""}
    return [
        "[^/:]+".join(re.escape(part) for part in re.split(r"\$\{[^}]*\}", resource["arn"]))
        for resource in service["resources"]
        if resource["resource"] in types
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
