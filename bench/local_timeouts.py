"""How long the local engine takes to run each heartbeat timeout of the workflow.

    .venv/bin/python bench/local_timeouts.py [--time-scale 0.005]

Runs the workflow in-process (no handlers) twice: the customer never answers; the customer answers at
once and the barista never does. Prints the wall time of each execution and of provisioning.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions" / "shared")]

from local.engine import LocalEngine  # noqa: E402 - after the path setup above

INPUT = json.dumps({"detail": {"orderId": "1", "userId": "bench"}})


def main() -> None:
    """Print provisioning time and each timeout path's duration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--time-scale", type=float, default=0.005)
    args = parser.parse_args()
    started = time.perf_counter()
    with LocalEngine.in_process(ROOT / "template.yaml", args.time_scale, start_dispatcher=False) as engine:
        print(f"provision: {time.perf_counter() - started:.2f} s (time_scale {args.time_scale})")
        sfn = engine.clients["stepfunctions"]
        for name, answer_customer in (("customer-timeout", False), ("barista-timeout", True)):
            started = time.perf_counter()
            response = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name, input=INPUT)
            arn = response["executionArn"]
            if answer_customer:
                token = engine.task_token(arn, "Emit - Workflow Started TT")
                sfn.send_task_success(taskToken=token, output="{}")
            result = engine.wait_for_execution(arn, timeout=3600)
            last_states = engine.state_path(arn)[-3:]
            print(f"{name}: {time.perf_counter() - started:.2f} s, {result['status']}, ... {last_states}")


if __name__ == "__main__":
    main()
