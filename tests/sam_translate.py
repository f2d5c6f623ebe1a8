"""Print a SAM template as the SAM translator expands it (CloudFormation JSON) on stdout.

Runs under the SAM CLI's interpreter, which has `samtranslator` (the test venv does not):

    .venv-tools/bin/python tests/sam_translate.py template.yaml [more templates: a JSON list]

tests/least_privilege.py reads the IAM roles SAM generates from it: the inline `Policies`, policy
templates, the on-failure destination and rule-target policies, managed policy ARNs. Local code paths
(CodeUri, ContentUri, DefinitionUri) are replaced by placeholder S3 URIs first, as `sam build` would
replace them by uploaded artefacts; nothing here reaches AWS.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from samtranslator.translator.transform import transform  # type: ignore[import-not-found]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found]

LOCAL_URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


class _NoManagedPolicyNames:
    """Managed policies given by name would be looked up in IAM; ARNs (what SAM adds) need no lookup."""

    def load(self) -> dict[str, str]:
        return {}


def translate(text: str) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy for the SAM template `text`."""
    body = yaml_parse(text)
    for resource in body.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in LOCAL_URI_PROPERTIES:
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://local-build/{key}"
    translated: dict[str, Any] = transform(body, {}, _NoManagedPolicyNames())
    return translated


def _translate_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as source:
        return translate(source.read())


if __name__ == "__main__":
    # One template: its translation. Several: a list of their translations, in the same order.
    templates = sys.argv[1:]
    json.dump(
        _translate_file(templates[0]) if len(templates) == 1 else [_translate_file(t) for t in templates],
        sys.stdout,
    )
