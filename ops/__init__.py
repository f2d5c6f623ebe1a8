"""Operators' commands, against a deployed stack (a samconfig.toml environment) or `make local`.

`make deploy` (with ops/publish.py, the screens), `make publish`, `make outputs` and `make barista` act
on a deployed stack only: each finds it from samconfig.toml (ops/stack.py), checks the AWS credentials,
region and stack first (the pre-flight), and says what is wrong in one line, without a stack trace,
when a check fails. `make replay` and `make reconcile` act on either (ops/target.py); `make smoke`
(ops/smoke.py) on a deployed stack or a fresh local one it starts. They use the application's own
package (models, the reconciler's domain code), importable here as on Lambda (/opt/python) and in the
tests.
"""

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parent.parent / "functions" / "shared")
if _SHARED not in sys.path:
    sys.path.append(_SHARED)
