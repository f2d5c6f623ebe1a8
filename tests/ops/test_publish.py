"""Publishing the screens (ops/publish.py), the last step of `make deploy`, against S3, CloudFront and
CloudFormation in moto: what lands in the bucket, with which types, caching and runtime configuration,
and the Content-Security-Policy the pages end up with together with the distribution's header."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from local.auth import LocalIdp
from local.web.site import PAGES, WEB_ROOT, WebSite
from ops.deploy import main
from ops.publish import page_policy
from ops.stack import OperatorError, run_command
from tests.ops.conftest import create_stack_with_outputs
from tests.ops.test_deploy import SessionWithPublishedLayer
from tests.template_tables import load_template

Capture = pytest.CaptureFixture[str]
BUCKET = "serverlesspresso-screensbucket-abc"
META_POLICY = re.compile(rb'<meta http-equiv="Content-Security-Policy" content="([^"]+)">')


def template_output(key: str) -> str:
    """An output of template.yaml, resolved as the local engine names things (moto stands for AWS)."""
    template = load_template()
    return str(template.resolve(template.body["Outputs"][key]["Value"]))


def runtime_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(template_output("ScreensRuntimeConfig"))
    return config


def create_distribution(session: boto3.Session) -> str:
    """A distribution in moto in front of the bucket; returns its id."""
    response = session.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": "screens",
            "Comment": "screens",
            "Enabled": True,
            "DefaultRootObject": "index.html",
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "screens",
                        "DomainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "screens",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )
    return str(response["Distribution"]["Id"])


@pytest.fixture
def deployed_with_screens(aws: boto3.Session) -> tuple[boto3.Session, str]:
    """The dev stack deployed: its screens bucket (holding a file web/ no longer has), distribution and
    outputs (the runtime config is template.yaml's own output)."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="app/removed-since.js", Body=b"old")
    distribution_id = create_distribution(aws)
    create_stack_with_outputs(
        aws,
        "serverlesspresso",
        {
            "ScreensBucketName": BUCKET,
            "ScreensDistributionId": distribution_id,
            "ScreensRuntimeConfig": template_output("ScreensRuntimeConfig"),
            "ScreensUrl": "https://d111.cloudfront.net/",
            "BaristaBoardUrl": "https://d111.cloudfront.net/barista",
            "DisplayUrl": "https://d111.cloudfront.net/display",
            "ApiUrl": template_output("ApiUrl"),
            "PushUrl": template_output("PushUrl"),
        },
    )
    return aws, distribution_id


def objects(session: boto3.Session) -> dict[str, dict[str, Any]]:
    """key -> ContentType, CacheControl and Body of every object in the bucket."""
    s3 = session.client("s3")
    found = {}
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        got = s3.get_object(Bucket=BUCKET, Key=item["Key"])
        found[item["Key"]] = {
            "ContentType": got["ContentType"],
            "CacheControl": got.get("CacheControl"),
            "Body": got["Body"].read(),
        }
    return found


def test_make_deploy_publishes_the_screens_after_sam_deploy_and_prints_their_urls(
    deployed_with_screens: tuple[boto3.Session, str], capsys: Capture
) -> None:
    session, distribution_id = deployed_with_screens

    # When `make deploy` runs (sam deploy stood in for by `true`: the stack above is what it deployed)
    layered = SessionWithPublishedLayer(session, "/aws/service/powertools/python/arm64/python3.13/3.37.0")
    code = run_command(lambda argv: main(argv, layered), ["deploy", "--sam", "true"])

    # Then every screen is in the bucket at the path it is opened at, with its type and caching
    assert code == 0
    published = objects(session)
    kinds = {key: (item["ContentType"], item["CacheControl"]) for key, item in published.items()}
    assert {key: kinds.pop(key) for key in ("index.html", "barista", "display", "runtime-config.json")} == {
        "index.html": ("text/html; charset=utf-8", "no-cache"),
        "barista": ("text/html; charset=utf-8", "no-cache"),
        "display": ("text/html; charset=utf-8", "no-cache"),
        "runtime-config.json": ("application/json; charset=utf-8", "no-cache"),
    }
    assets = {path.relative_to(WEB_ROOT).as_posix(): path for path in (WEB_ROOT / "app").rglob("*")}
    assert set(kinds) == {key for key, path in assets.items() if path.is_file()}
    for key, (kind, cache) in kinds.items():
        if key.endswith((".js", ".mjs")):
            assert kind == "text/javascript; charset=utf-8", key
        if key.endswith(".css"):
            assert kind == "text/css; charset=utf-8", key
        assert cache == ("public, max-age=86400" if key.startswith("app/vendor/") else "no-cache"), key
    # And the file web/ no longer has is gone
    assert "app/removed-since.js" not in published
    # And the runtime configuration is the stack's output, as the screens read it
    assert json.loads(published["runtime-config.json"]["Body"]) == runtime_config()
    # And the distribution's cache was invalidated
    invalidations = session.client("cloudfront").list_invalidations(DistributionId=distribution_id)
    assert invalidations["InvalidationList"]["Quantity"] == 1
    # And the pre-flight came first, the URLs a person needs last, the screens first among them
    out = capsys.readouterr().out
    assert out.startswith("deploying stack serverlesspresso (ENV=dev, samconfig [default])")
    files = len(published)  # web/'s files and runtime-config.json
    assert f"screens: published {files} files of web/, removed 1 no longer in web/; CloudFront inv" in out
    assert out.split("stack serverlesspresso in us-east-1:\n")[1].splitlines()[:5] == [
        "order app: https://d111.cloudfront.net/",
        "barista board: https://d111.cloudfront.net/barista",
        "display: https://d111.cloudfront.net/display",
        f"API: {template_output('ApiUrl')}",
        f"push endpoint: {template_output('PushUrl')}",
    ]
    assert "ScreensRuntimeConfig" not in out


def test_each_page_allows_connections_to_exactly_this_stacks_api_push_and_sign_in(
    deployed_with_screens: tuple[boto3.Session, str],
) -> None:
    session, _ = deployed_with_screens

    code = run_command(lambda argv: main(argv, session), ["publish"])

    assert code == 0
    config = runtime_config()
    expected = (
        f"connect-src 'self' {origin(config['apiUrl'])} {origin(config['pushUrl'])} "
        f"{origin(config['auth']['tokenUrl'])}"
    )
    published = objects(session)
    for key in ("index.html", "barista", "display"):
        assert META_POLICY.findall(published[key]["Body"]) == [expected.encode()], key
    # And the page is otherwise the one in web/
    page = (WEB_ROOT / PAGES["/barista"]).read_bytes()
    assert META_POLICY.sub(b"", published["barista"]["Body"]).replace(b"<head>\n  ", b"<head>") == page


def test_the_distributions_header_policy_lets_the_pages_exact_origins_through() -> None:
    # Given the distribution's Content-Security-Policy header and the policy a published page carries
    template = load_template()
    config = template.properties("ScreensResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    header = template.resolve(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}
    page_origins = page_policy(runtime_config()).split()[2:]

    # Then every origin the page allows is allowed by the header too (a browser enforces both), so the
    # effective connect-src is the page's: this stack's API, push and sign-in origins and nothing else
    for page_origin in page_origins:
        assert any(fnmatchcase(page_origin, source) for source in directives["connect-src"]), page_origin
    # And the header alone forbids framing, plugins and scripts from anywhere but the distribution
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'none'"]


def test_the_deployed_runtime_config_has_the_format_the_local_site_serves(tmp_path: Path) -> None:
    local = WebSite(LocalIdp(tmp_path)).runtime_config("127.0.0.1:3000")

    deployed = runtime_config()

    assert set(deployed) == set(local) - {"local"}
    assert set(deployed["auth"]) == set(local["auth"])
    assert set(deployed["waits"]) == set(local["waits"])


def test_a_runtime_config_with_a_plain_http_url_is_refused() -> None:
    config = {**runtime_config(), "apiUrl": "http://api.example"}

    with pytest.raises(OperatorError, match="is not an https:// or wss:// URL"):
        page_policy(config)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
