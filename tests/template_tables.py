"""The DynamoDB tables of template.yaml, created in moto from the template's own definitions.

Tests that need tables call `create_tables(dynamodb_client)` inside `mock_aws`, so a key, an
attribute or an index exists in the tests exactly when it exists in the template. The template is
parsed by `local.template` (the local engine's loader, CloudFormation short-form tags included),
so table names here are the names the local engine gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"

# The parts of AWS::DynamoDB::Table's Properties that CreateTable takes unchanged.
_CREATE_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "SSESpecification",
    "StreamSpecification",
)


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    """template.yaml as a `local.template.Template` (`.body` is the plain dict, intrinsics long-form)."""
    return Template.load(path)


def table_definitions(template: Template) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for every AWS::DynamoDB::Table in the template, by logical id."""
    definitions: dict[str, dict[str, Any]] = {}
    for logical_id in template.resources("AWS::DynamoDB::Table"):
        properties = template.resolve(template.properties(logical_id))
        arguments = {key: properties[key] for key in _CREATE_TABLE_KEYS if key in properties}
        if "SSESpecification" in arguments:
            # CloudFormation spells it SSEEnabled, the CreateTable API Enabled.
            sse = dict(arguments["SSESpecification"])
            sse["Enabled"] = sse.pop("SSEEnabled", False)
            arguments["SSESpecification"] = sse
        arguments["TableName"] = template.physical_name(logical_id)
        definitions[logical_id] = arguments
    return definitions


def create_tables(dynamodb_client: Any, template: Template | None = None) -> dict[str, str]:
    """Create every table of the template with `dynamodb_client`; return {logical_id: table_name}."""
    template = template or load_template()
    names: dict[str, str] = {}
    for logical_id, arguments in table_definitions(template).items():
        dynamodb_client.create_table(**arguments)
        names[logical_id] = arguments["TableName"]
    return names
