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

# --- 4. no RSA key pair for a symmetric KMS key, in every test ---------------------------------------
# moto gives every KMS key an RSA-2048 private key, and DynamoDB creates the account's default KMS key
# for the first table with SSESpecification: so every test that builds the template's tables generated
# one, about 0.13 s of CPU, the largest single cost of a unit test's setup. The local engine's moto
# patch for it (local/moto_patches.py, kms_symmetric_key_without_rsa) is installed with the others only
# while an engine or the `workflow` fixture runs; this process-wide copy of that one patch also serves
# the tests on plain mock_aws (nothing in them signs with KMS). Not when $LOCAL_MOTO_PATCHES_SKIP names
# it: its regression test (tests/local/test_moto_patches.py) must then fail, as on stock moto.
from local import moto_patches  # noqa: E402

_KMS_PATCH = "kms_symmetric_key_without_rsa"
if _KMS_PATCH not in os.environ.get(moto_patches.SKIP_ENV, "").replace(" ", "").split(","):
    moto_patches.PATCHES[_KMS_PATCH]()


# --- the browser tests (tests/browser) ------------------------------------------------------------
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly, at the end of the run, when the screens' browser tests were skipped for lack of a
    Chromium (this runs in the xdist controller too, which never imports tests/browser/conftest.py)."""
    from local.web.chromium import SKIP_MESSAGE

    skipped = terminalreporter.stats.get("skipped", [])
    if any(SKIP_MESSAGE in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(SKIP_MESSAGE, red=True, bold=True)
