"""Test-wide setup. The first part makes it impossible for a test to reach real AWS.

It runs at import, before any test module creates a boto3 client:

1. Dummy credentials, a fixed region and Powertools settings in the environment, and no profile
   or config file, so nothing picks up a developer's real credentials.
2. A guard on botocore's one network exit, ``Endpoint._send``, that refuses any request to a host
   other than the loopback interface.

Why there and not in a ``before-send`` event handler: botocore calls *every* ``before-send``
handler (``emit``, then takes the first non-None response), so a handler cannot tell whether
moto's stubber, also a ``before-send`` handler, has already answered. ``Endpoint._send`` runs only
when no handler answered, i.e. exactly when the request would really be sent. Inside
``mock_aws`` moto answers every AWS URL, so the guard is never reached; outside it, or for a
service moto passes through, the guard raises before a socket is opened. Clients pointed at a
moto server on 127.0.0.1/localhost are let through.

Fixtures for other suites are appended below the guard section.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

# --- 1. environment ------------------------------------------------------------------------------
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # No shared config/credentials files: a developer's SSO or credential_process profile
        # must not be consulted, nor the instance metadata service.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "Serverlesspresso",
        "POWERTOOLS_SERVICE_NAME": "serverlesspresso",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_DEFAULT_PROFILE", None)

# --- 2. the guard --------------------------------------------------------------------------------
import botocore.endpoint  # after the environment is set

LOOPBACK_HOSTS = frozenset({"localhost", "::1"})


class RealAwsCallError(RuntimeError):
    """Raised instead of sending a request that would leave this machine."""


def refuse_non_loopback(request: Any) -> None:
    """Raise RealAwsCallError unless the request goes to the loopback interface."""
    host = urlsplit(request.url).hostname or ""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return
    raise RealAwsCallError(
        f"blocked a request to real AWS ({request.method} {request.url}): wrap the test in mock_aws "
        "or point the client at a local moto server"
    )


_real_send = botocore.endpoint.Endpoint._send


def _guarded_send(self: botocore.endpoint.Endpoint, request: Any) -> Any:
    refuse_non_loopback(request)
    return _real_send(self, request)


if not getattr(botocore.endpoint.Endpoint._send, "_aws_guard", False):
    _guarded_send._aws_guard = True  # type: ignore[attr-defined]
    botocore.endpoint.Endpoint._send = _guarded_send

# --- fixtures for other suites go below ----------------------------------------------------------

# --- 3. one parsed copy of botocore's service models per test process -----------------------------
# moto gives every mock_aws its own default boto3 session, and the engine makes a session per
# provisioning; botocore caches the service models it parses (JSON, ~1 MB for DynamoDB) per session,
# so each test parsed them all again: about 0.2 s of CPU for the five clients a test creates, the
# largest share of the suite's fixture time. The models are read-only data: every session of this
# process shares one loader instead.
import botocore.loaders  # noqa: E402
import botocore.session  # noqa: E402

_shared_loaders: dict[str | None, botocore.loaders.Loader] = {}
_create_loader = botocore.loaders.create_loader


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _shared_loaders:
        _shared_loaders[search_path_string] = _create_loader(search_path_string)
    return _shared_loaders[search_path_string]


botocore.session.create_loader = _shared_loader

# --- 4. one KMS key pair per key spec per test process ----------------------------------------------
# moto gives every KMS key an RSA private key (for Sign/Verify, even a symmetric key's), and DynamoDB
# creates the account's default KMS key for the first table with SSESpecification: so every test that
# builds the template's tables or provisions the engine generated a 2048-bit RSA key, about 0.13 s of
# CPU, the largest single cost of a unit test's setup. Nothing here signs with KMS; the key material
# KMS encrypts with (generate_master_key) stays per key.
import moto.kms.models  # noqa: E402

_kms_private_keys: dict[str, Any] = {}
_generate_private_key = moto.kms.models.generate_private_key


def _shared_private_key(key_spec: str) -> Any:
    if key_spec not in _kms_private_keys:
        _kms_private_keys[key_spec] = _generate_private_key(key_spec)
    return _kms_private_keys[key_spec]


moto.kms.models.generate_private_key = _shared_private_key


# --- the browser tests (tests/browser) ------------------------------------------------------------
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly, at the end of the run, when the screens' browser tests were skipped for lack of a
    Chromium (this runs in the xdist controller too, which never imports tests/browser/conftest.py)."""
    from local.web.chromium import SKIP_MESSAGE

    skipped = terminalreporter.stats.get("skipped", [])
    if any(SKIP_MESSAGE in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(SKIP_MESSAGE, red=True, bold=True)
