"""Operator commands against a deployed stack or `make local`: replay dead letters, reconcile orders.

They use the application's own package (models, the reconciler's domain code), importable here as on
Lambda (/opt/python) and in the tests (pyproject's pythonpath).
"""

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parent.parent / "functions" / "shared")
if _SHARED not in sys.path:
    sys.path.append(_SHARED)
