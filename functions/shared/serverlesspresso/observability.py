"""Powertools Logger, Tracer and Metrics, configured once for every function.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# Only botocore is patched: every call these functions make goes through it. Patching everything
# (the default) also imports and instruments whatever else is installed (requests, httplib, sqlite3,
# ...), which costs cold-start time and adds nothing to the traces (bench/cold_start.py).
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
