"""Shortens the workflow's waits for local runs without editing the ASL file.

Choice: the definition is rewritten at provisioning time (not moto's clock), so the same code works
in-process and against a moto server. ASL wants whole seconds (moto rejects 0.3 at
CreateStateMachine), so every scaled duration is rounded UP to a whole second and never below 1:
with time_scale=0.01, HeartbeatSeconds 300 -> 3 s and 900 -> 9 s; with 0.001 both become 1 s.
Retry IntervalSeconds are left alone (they are already 1 s here and only matter on errors).
"""

from __future__ import annotations

import math
from typing import Any

# State fields holding a duration in seconds (Wait states: Seconds; Task/Activity: the other two).
_SCALED_FIELDS = ("HeartbeatSeconds", "TimeoutSeconds", "Seconds")


def scale_seconds(seconds: float, time_scale: float) -> int:
    """Scale a duration, rounded up to a whole second, at least 1 (0 stays 0)."""
    if time_scale <= 0:
        raise ValueError("time_scale must be > 0")
    if seconds <= 0:
        return 0
    return max(1, math.ceil(seconds * time_scale - 1e-9))  # 1e-9: 300 * 0.01 is 3.0000000000000004


def scale_definition(definition: dict[str, Any], time_scale: float) -> dict[str, Any]:
    """Return a copy of an ASL definition with every state's durations scaled.

    Walks nested state machines (Parallel branches, Map Iterator/ItemProcessor). Durations given by
    path (HeartbeatSecondsPath, SecondsPath, Timestamp, ...) come from data and are not changed.
    """
    if time_scale == 1:
        return definition
    scaled = dict(definition)
    if isinstance(scaled.get("TimeoutSeconds"), int | float):  # whole-execution timeout
        scaled["TimeoutSeconds"] = scale_seconds(scaled["TimeoutSeconds"], time_scale)
    scaled["States"] = {name: _scale_state(state, time_scale) for name, state in definition["States"].items()}
    return scaled


def _scale_state(state: dict[str, Any], time_scale: float) -> dict[str, Any]:
    scaled = dict(state)
    for field_name in _SCALED_FIELDS:
        if isinstance(scaled.get(field_name), int | float):
            scaled[field_name] = scale_seconds(scaled[field_name], time_scale)
    heartbeat, timeout = scaled.get("HeartbeatSeconds"), scaled.get("TimeoutSeconds")
    if isinstance(heartbeat, int) and isinstance(timeout, int) and heartbeat >= timeout:
        scaled["TimeoutSeconds"] = heartbeat + 1  # ASL: the heartbeat must stay below the timeout
    if "Branches" in scaled:
        scaled["Branches"] = [scale_definition(branch, time_scale) for branch in scaled["Branches"]]
    for nested in ("Iterator", "ItemProcessor"):
        if nested in scaled:
            scaled[nested] = scale_definition(scaled[nested], time_scale)
    return scaled
