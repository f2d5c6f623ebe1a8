"""`make deploy [ENV=dev|prod]`: the stack, checked first, built and deployed unattended, then the screens.

    python -m ops.deploy preflight [--env prod]          what would be deployed where, or what is wrong
    python -m ops.deploy deploy [--env prod] --sam PATH  pre-flight again, sam deploy, publish the
                                                         screens, then the URLs and outputs
    python -m ops.deploy publish [--env prod]            publish web/ again (after a change to the pages)
    python -m ops.deploy outputs [--env prod]            the deployed stack's outputs a person needs

The pre-flight says what is wrong before anything is created: no region, no or rejected credentials,
or a region where the Powertools layer the template pins is not published (its public SSM parameter,
template parameter PowertoolsLayerArn, does not exist there). `make deploy` runs `make build` between
the pre-flight and the deploy. Publishing (ops/publish.py) puts web/ and its runtime-config.json in the
stack's bucket and invalidates the distribution.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local.template import Template
from ops.publish import publish_screens, runtime_config_of
from ops.stack import (
    ROOT,
    SAMCONFIG,
    OperatorError,
    StackLocation,
    default_session,
    locate_stack,
    output,
    run_command,
    stack_outputs,
)

LAYER_PARAMETER = "PowertoolsLayerArn"
# The outputs a person needs after a deploy, in this order, with what each is for; other outputs
# (queue URLs, table names) follow under their own names.
NEEDED_OUTPUTS = {
    "ScreensUrl": "order app",
    "BaristaBoardUrl": "barista board",
    "DisplayUrl": "display",
    "ApiUrl": "API",
    "PushUrl": "push endpoint",
    "UserPoolId": "user pool (make barista adds baristas here)",
    "ClientId": "app client (the screens sign in with it)",
    "AlarmTopicArn": "alarm topic: subscribe on-call to it",
    "EventBusName": "event bus",
}
# Outputs not worth a line: published as runtime-config.json.
UNLISTED_OUTPUTS = frozenset({"ScreensRuntimeConfig"})


@dataclass(frozen=True)
class DeployPlan:
    """What `make deploy` will do: which stack, where, with which Powertools layer."""

    where: StackLocation
    layer_parameter: str
    layer_arn: str

    def __str__(self) -> str:
        where = self.where
        return (
            f"deploying stack {where.stack_name} (ENV={where.environment}, samconfig [{where.config_env}]) "
            f"to account {where.account}, region {where.region}\n"
            f"Powertools layer: {self.layer_arn} (from {self.layer_parameter})"
        )


def layer_parameter_name(config_env: str) -> str:
    """The SSM parameter naming the Powertools layer: samconfig's override, else the template default."""
    with SAMCONFIG.open("rb") as file:
        deploy = tomllib.load(file)[config_env].get("deploy", {}).get("parameters", {})
    overrides = dict(item.split("=", 1) for item in shlex.split(deploy.get("parameter_overrides", "")))
    if LAYER_PARAMETER in overrides:
        return overrides[LAYER_PARAMETER]
    return Template.load(ROOT / "template.yaml").parameter(LAYER_PARAMETER)


def powertools_layer(ssm: Any, parameter: str, region: str) -> str:
    """The layer ARN the public SSM parameter holds in this region, or an OperatorError saying why not."""
    try:
        return str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise OperatorError(
                f"the Powertools layer parameter {parameter} does not exist in region {region}: Powertools "
                "does not publish that layer there. Deploy to a region it is published in (AWS_REGION=...), "
                f"or pass {LAYER_PARAMETER}=<parameter of a layer in {region}> in samconfig.toml's "
                "parameter_overrides"
            ) from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise OperatorError(
                f"the credentials may not read the SSM parameter {parameter} (ssm:GetParameter), which the "
                "deploy needs to find the Powertools layer: use credentials that may deploy the stack"
            ) from None
        raise


def preflight(environment: str, session: Any) -> DeployPlan:
    """Every check `make deploy` runs before it creates anything."""
    where = locate_stack(environment, session)
    parameter = layer_parameter_name(where.config_env)
    layer = powertools_layer(session.client("ssm", region_name=where.region), parameter, where.region)
    return DeployPlan(where, parameter, layer)


def sam_deploy_command(sam: str, plan: DeployPlan) -> list[str]:
    """The unattended `sam deploy` of the plan's environment (samconfig has confirm_changeset = false)."""
    return [
        sam,
        "deploy",
        "--config-env",
        plan.where.config_env,
        "--region",
        plan.where.region,
        "--no-fail-on-empty-changeset",  # a deploy with nothing to change is a success, not an error
    ]


def outputs_table(outputs: dict[str, str]) -> str:
    """The stack's outputs as `label: value` lines, the ones a person needs first."""
    lines = [f"{label}: {outputs[key]}" for key, label in NEEDED_OUTPUTS.items() if key in outputs]
    lines += [
        f"{key}: {value}"
        for key, value in sorted(outputs.items())
        if key not in NEEDED_OUTPUTS and key not in UNLISTED_OUTPUTS
    ]
    return "\n".join(lines)


def publish(session: Any, where: StackLocation, outputs: dict[str, str]) -> str:
    """Publish web/ to the stack's bucket and invalidate its distribution; what was done, in one line."""
    published = publish_screens(
        session.client("s3", region_name=where.region),
        session.client("cloudfront", region_name=where.region),
        bucket=output(outputs, "ScreensBucketName", where),
        distribution_id=output(outputs, "ScreensDistributionId", where),
        runtime_config=runtime_config_of(output(outputs, "ScreensRuntimeConfig", where)),
    )
    return str(published)


def main(argv: list[str] | None = None, session: Any = None) -> int:
    """Parse the command line and run one step of `make deploy`."""
    parser = argparse.ArgumentParser(description="Deploy the Serverlesspresso stack and its screens.")
    parser.add_argument("step", choices=["preflight", "deploy", "publish", "outputs"])
    parser.add_argument("--env", default="dev", help="samconfig environment: dev (default) or prod")
    parser.add_argument("--sam", default=str(ROOT / ".venv-tools" / "bin" / "sam"), help="the SAM CLI")
    args = parser.parse_args(argv)
    session = session or default_session()
    if args.step in ("outputs", "publish"):
        where = locate_stack(args.env, session)
    else:
        plan = preflight(args.env, session)
        print(plan, flush=True)
        where = plan.where
        if args.step == "preflight":
            return 0
        deployed = subprocess.run(sam_deploy_command(args.sam, plan), check=False)
        if deployed.returncode != 0:
            print(
                f"error: sam deploy failed (exit {deployed.returncode}); see its output above",
                file=sys.stderr,
            )
            return deployed.returncode
    outputs = stack_outputs(session.client("cloudformation", region_name=where.region), where)
    if args.step != "outputs":
        print(f"\nscreens: {publish(session, where, outputs)}", flush=True)
    print(f"\nstack {where.stack_name} in {where.region}:\n{outputs_table(outputs)}")
    env = where.environment
    print(f"\nnext: make barista EMAIL=you@example.com ENV={env}; open the display; make smoke ENV={env}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
