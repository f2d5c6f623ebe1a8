"""Reads template.yaml (SAM/CloudFormation) and resolves its intrinsics to local names.

The local engine provisions from the template itself, so this module answers "what is the physical
name/ARN of logical id X" the way a deployed stack would, with deterministic names instead of
CloudFormation's random suffixes. Resolution is lazy: only values the engine asks for are resolved, so
resource types the engine does not provision (alarms, log groups, ...) never need support here.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode.cfn_yaml import (
    loads as _load_cfn_yaml,
)  # CloudFormation short-form tags (!Ref, !Sub, ...)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
DEFAULT_STACK_NAME = "serverlesspresso"  # samconfig.toml [default] stack_name

_NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears

# type -> (what Ref returns, ARN format). Formats use {p} partition, {r} region, {a} account, {n} name.
_KINDS: dict[str, tuple[str, str]] = {
    "AWS::DynamoDB::Table": ("name", "arn:{p}:dynamodb:{r}:{a}:table/{n}"),
    "AWS::Serverless::SimpleTable": ("name", "arn:{p}:dynamodb:{r}:{a}:table/{n}"),
    "AWS::Events::EventBus": ("name", "arn:{p}:events:{r}:{a}:event-bus/{n}"),
    "AWS::Events::Rule": ("name", "arn:{p}:events:{r}:{a}:rule/{n}"),
    "AWS::Serverless::StateMachine": ("arn", "arn:{p}:states:{r}:{a}:stateMachine:{n}"),
    "AWS::StepFunctions::StateMachine": ("arn", "arn:{p}:states:{r}:{a}:stateMachine:{n}"),
    "AWS::Serverless::Function": ("name", "arn:{p}:lambda:{r}:{a}:function:{n}"),
    "AWS::Lambda::Function": ("name", "arn:{p}:lambda:{r}:{a}:function:{n}"),
    "AWS::Serverless::LayerVersion": ("arn", "arn:{p}:lambda:{r}:{a}:layer:{n}:1"),
    "AWS::SQS::Queue": ("url", "arn:{p}:sqs:{r}:{a}:{n}"),
    "AWS::SNS::Topic": ("arn", "arn:{p}:sns:{r}:{a}:{n}"),
    "AWS::Logs::LogGroup": ("name", "arn:{p}:logs:{r}:{a}:log-group:{n}:*"),
    "AWS::S3::Bucket": ("name", "arn:{p}:s3:::{n}"),
}
# Property holding an explicit physical name, and the service's length limit for generated names.
_NAME_PROPERTY: dict[str, tuple[str, int]] = {
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::Serverless::SimpleTable": ("TableName", 255),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::Serverless::StateMachine": ("Name", 80),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
    "AWS::Serverless::Function": ("FunctionName", 64),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Serverless::LayerVersion": ("LayerName", 140),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::ApiGatewayV2::Stage": ("StageName", 128),
}


@functools.lru_cache(maxsize=8)
def _as_json(text: str) -> str:
    # Plain dicts/lists/strs, not cfn-lint node classes. cfn-lint's YAML decoder takes ~0.1 s for our
    # template and the tests load it hundreds of times: decode each text once (keyed on the text, so
    # an edited file is decoded again).
    return json.dumps(_load_cfn_yaml(text))


class TemplateError(ValueError):
    """The template uses something the local engine cannot resolve."""


@dataclass
class Template:
    """A loaded template plus the stack context (name, region, account, parameter values)."""

    path: Path
    body: dict[str, Any]
    stack_name: str = DEFAULT_STACK_NAME
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    region: str = REGION
    account_id: str = ACCOUNT_ID
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        path: str | Path = "template.yaml",
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> Template:
        """Parse a YAML/JSON template file (short-form tags become their long-form dicts)."""
        template_path = Path(path).resolve()
        body = json.loads(_as_json(template_path.read_text(encoding="utf-8")))  # a fresh copy each time
        unknown = set(parameter_overrides or {}) - set(body.get("Parameters", {}))
        if unknown:
            raise TemplateError(f"parameter overrides for unknown parameters: {sorted(unknown)}")
        return cls(template_path, body, stack_name, dict(parameter_overrides or {}))

    # ----------------------------------------------------------------------------------- sections
    @property
    def root(self) -> Path:
        """Directory the template's relative paths (CodeUri, DefinitionUri, ...) are relative to."""
        return self.path.parent

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources of the given types (all when none given) whose Condition holds, in template order."""
        return {
            logical_id: resource
            for logical_id, resource in self.body.get("Resources", {}).items()
            if (not types or resource.get("Type") in types)
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }

    def resource(self, logical_id: str) -> dict[str, Any]:
        """One resource by logical id."""
        try:
            resource: dict[str, Any] = self.body["Resources"][logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} in {self.path}") from None
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties, with SAM Globals merged in for Serverless resources (unresolved)."""
        resource = self.resource(logical_id)
        own: dict[str, Any] = resource.get("Properties", {})
        kind = resource.get("Type", "")
        if kind.startswith("AWS::Serverless::"):
            section = kind.removeprefix("AWS::Serverless::")
            return _merge_globals(self.body.get("Globals", {}).get(section, {}), own)
        return own

    def parameter(self, name: str) -> str:
        """A parameter's value: the override if given, else its Default."""
        spec = self.body.get("Parameters", {}).get(name)
        if spec is None:
            raise TemplateError(f"no parameter {name!r}")
        if name in self.parameter_overrides:
            return str(self.parameter_overrides[name])
        if "Default" not in spec:
            raise TemplateError(f"parameter {name!r} has no Default; pass it in parameter_overrides")
        return str(spec["Default"])

    def condition(self, name: str) -> bool:
        """Evaluate a named condition from the Conditions section."""
        try:
            expression = self.body["Conditions"][name]
        except KeyError:
            raise TemplateError(f"no condition {name!r}") from None
        return bool(self.resolve(expression))

    def outputs(self) -> dict[str, Any]:
        """The Outputs section, resolved to local values."""
        return {key: self.resolve(spec["Value"]) for key, spec in self.body.get("Outputs", {}).items()}

    @property
    def stack_uuid(self) -> str:
        """The UUID at the end of the stack's id: unique per stack in AWS, here derived from its name
        (so two stacks differ, as deployed ones do, and a run is repeatable)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account_id}/{self.region}/{self.stack_name}"))

    # ------------------------------------------------------------------------------ names / ARNs
    def physical_name(self, logical_id: str) -> str:
        """Explicit name property if the resource has one, else `<stack>-<LogicalId>` (truncated)."""
        if logical_id not in self._names:
            kind = self.resource(logical_id).get("Type", "")
            name_property, limit = _NAME_PROPERTY.get(kind, ("Name", 64))
            explicit = self.properties(logical_id).get(name_property)
            if explicit is not None:
                self._names[logical_id] = str(self.resolve(explicit))
            else:
                self._names[logical_id] = f"{self.stack_name}-{logical_id}"[:limit]
        return self._names[logical_id]

    def arn(self, logical_id: str) -> str:
        """The resource's ARN as AWS would format it."""
        kind = self.resource(logical_id).get("Type", "")
        name = self.physical_name(logical_id)
        if kind == "AWS::Events::Rule":
            bus = self.properties(logical_id).get("EventBusName")
            name = f"{self.resolve(bus)}/{name}" if bus else name
        # Unknown types, e.g. AWS::Foo::Bar -> arn:aws:foo:...:name: good enough for values nobody calls.
        fallback = "arn:{p}:" + kind.split("::")[1].lower() + ":{r}:{a}:{n}"
        fmt = _KINDS[kind][1] if kind in _KINDS else fallback
        return fmt.format(p=PARTITION, r=self.region, a=self.account_id, n=name)

    def queue_url(self, logical_id: str) -> str:
        """SQS queue URL in the form moto serves in-process."""
        return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{self.physical_name(logical_id)}"

    def ref(self, name: str) -> Any:
        """What `!Ref name` evaluates to: a parameter, a pseudo parameter or a resource."""
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/"
                f"{self.stack_uuid}"
            ),
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.body.get("Parameters", {}):
            value = self.parameter(name)
            if self.body["Parameters"][name].get("Type", "").startswith("List<") or (
                self.body["Parameters"][name].get("Type") == "CommaDelimitedList"
            ):
                return value.split(",")
            return value
        kind = self.resource(name).get("Type", "")
        ref_kind = _KINDS.get(kind, ("name", ""))[0]
        if ref_kind == "arn":
            return self.arn(name)
        if ref_kind == "url":
            return self.queue_url(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        """What `!GetAtt logical_id.attribute` evaluates to."""
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "StreamArn":
            return f"{self.arn(logical_id)}/stream/local"
        if attribute == "QueueUrl":
            return self.queue_url(logical_id)
        if attribute in ("Name", "QueueName", "TableName", "StateMachineName", "FunctionName"):
            return self.physical_name(logical_id)
        raise TemplateError(f"GetAtt {logical_id}.{attribute} is not supported by the local engine")

    # -------------------------------------------------------------------------------- intrinsics
    def resolve(self, node: Any) -> Any:
        """Evaluate every intrinsic function in node (recursively) to a plain value."""
        value = self._resolve(node)
        return None if value is _NO_VALUE else value

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, argument)
        return {k: v for k, v in ((k, self._resolve(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        resolved_vars = {k: self._resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):  # ${!Literal} stays as ${Literal}
                return "${" + expression[1:] + "}"
            if expression in resolved_vars:
                return str(resolved_vars[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _get_att(self, argument: Any) -> str:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return self.get_att(logical_id, self._resolve(attribute))

    def _if(self, argument: Any) -> Any:
        name, if_true, if_false = argument
        return self._resolve(if_true if self.condition(name) else if_false)

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top, second = (self._resolve(a) for a in argument)
        return self.body["Mappings"][map_name][top][second]


def _merge_globals(global_props: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """SAM Globals semantics: maps merge (resource wins), lists concatenate, scalars are overridden."""
    merged = dict(global_props)
    for key, value in own.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def _is_intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in _INTRINSICS


def _unsupported(name: str) -> Any:
    def handler(template: Template, argument: Any) -> Any:
        raise TemplateError(f"{name} is not supported by the local engine")

    return handler


_INTRINSICS: dict[str, Any] = {
    "Ref": lambda t, a: t.ref(a),
    "Fn::GetAtt": lambda t, a: t._get_att(a),
    "Fn::Sub": lambda t, a: t._sub(a),
    "Fn::Join": lambda t, a: str(a[0]).join(str(v) for v in t._resolve(a[1])),
    "Fn::Select": lambda t, a: t._resolve(a[1])[int(t._resolve(a[0]))],
    "Fn::Split": lambda t, a: str(t._resolve(a[1])).split(a[0]),
    "Fn::If": lambda t, a: t._if(a),
    "Fn::Equals": lambda t, a: str(t._resolve(a[0])) == str(t._resolve(a[1])),
    "Fn::Not": lambda t, a: not t._resolve(a[0]),
    "Fn::And": lambda t, a: all(t._resolve(a)),
    "Fn::Or": lambda t, a: any(t._resolve(a)),
    "Condition": lambda t, a: t.condition(a),
    "Fn::FindInMap": lambda t, a: t._find_in_map(a),
    "Fn::Base64": lambda t, a: base64.b64encode(str(t._resolve(a)).encode()).decode(),
    "Fn::GetAZs": lambda t, a: [f"{t.region}{zone}" for zone in "abc"],
    "Fn::ToJsonString": lambda t, a: json.dumps(t._resolve(a), separators=(",", ":")),
    "Fn::ImportValue": _unsupported("Fn::ImportValue"),
}
