"""Publish the three screens (web/) to the stack's bucket behind CloudFront: the last step of `make deploy`.

Every file of web/ is uploaded with its Content-Type and Cache-Control, at the path the screens are
opened at (`/` is index.html, the distribution's default root object; `/barista` and `/display` are
objects of those names, as local/web/site.py serves them). runtime-config.json is the stack's
`ScreensRuntimeConfig` output, the format local/web/site.py serves locally. Each page gets a
Content-Security-Policy <meta> naming exactly this stack's API, push and sign-in origins (the
distribution's header policy cannot: template.yaml, ScreensResponseHeadersPolicy, explains the cycle).
Objects no longer in web/ are deleted, then the distribution's cache is invalidated.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.web.site import PAGES, RUNTIME_CONFIG_PATH, WEB_ROOT, content_type
from ops.stack import OperatorError

RUNTIME_CONFIG_KEY = RUNTIME_CONFIG_PATH.lstrip("/")
# web/ file -> object key: "/" is the default root object; the other pages have no suffix.
PAGE_KEYS = {file: (path.lstrip("/") or "index.html") for path, file in PAGES.items()}
# The screens' files are not fingerprinted (no hash in their names): a browser must revalidate each one
# (a cheap 304 with the ETag), so a deploy's pages never run with the previous deploy's modules. Only
# the vendored library, which changes with a deliberate version bump, may be kept for a day.
REVALIDATE = "no-cache"
LONG_LIVED = "public, max-age=86400"
LONG_LIVED_PREFIXES = ("app/vendor/",)
HEAD_START = "<head>"


@dataclass(frozen=True)
class ScreenObject:
    """One object to put in the bucket."""

    key: str
    body: bytes
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class Published:
    """What a publish did, so `make deploy` can say it."""

    uploaded: list[str]
    removed: list[str]
    invalidation_id: str

    def __str__(self) -> str:
        removed = f", removed {len(self.removed)} no longer in web/" if self.removed else ""
        return (
            f"published {len(self.uploaded)} files of web/{removed}; "
            f"CloudFront invalidation {self.invalidation_id} started"
        )


def page_policy(runtime_config: Mapping[str, Any]) -> str:
    """The pages' exact connect-src: the runtime config itself ('self'), the API, push and sign-in origins."""
    urls = [runtime_config["apiUrl"], runtime_config["pushUrl"], runtime_config["auth"]["tokenUrl"]]
    origins = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "wss") or not parts.netloc:
            raise OperatorError(f"the runtime configuration's {url!r} is not an https:// or wss:// URL")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return "connect-src 'self' " + " ".join(dict.fromkeys(origins))


def with_policy(page: bytes, policy: str) -> bytes:
    """The page with a Content-Security-Policy <meta> as the first element of its head."""
    text = page.decode()
    if HEAD_START not in text:
        raise OperatorError("a page of web/ has no <head>: cannot give it its Content-Security-Policy")
    content = html.escape(policy, quote=False).replace('"', "&quot;")  # the ' of 'self' stays readable
    meta = f'\n  <meta http-equiv="Content-Security-Policy" content="{content}">'
    return text.replace(HEAD_START, HEAD_START + meta, 1).encode()


def screen_objects(runtime_config: Mapping[str, Any], web_root: Path = WEB_ROOT) -> list[ScreenObject]:
    """Every object to publish: web/'s files (the pages with their policy) and the runtime config."""
    policy = page_policy(runtime_config)
    objects = []
    for path in _files(web_root):
        relative = path.relative_to(web_root).as_posix()
        body = path.read_bytes()
        if relative in PAGE_KEYS:
            body = with_policy(body, policy)
        key = PAGE_KEYS.get(relative, relative)
        cache = LONG_LIVED if key.startswith(LONG_LIVED_PREFIXES) else REVALIDATE
        objects.append(ScreenObject(key, body, content_type(path), cache))
    config = json.dumps(runtime_config, indent=2).encode()
    config_type = content_type(Path(RUNTIME_CONFIG_KEY))
    objects.append(ScreenObject(RUNTIME_CONFIG_KEY, config, config_type, REVALIDATE))
    return objects


def publish_screens(
    s3: Any,
    cloudfront: Any,
    bucket: str,
    distribution_id: str,
    runtime_config: Mapping[str, Any],
    web_root: Path = WEB_ROOT,
) -> Published:
    """Upload the screens, delete objects web/ no longer has, invalidate the distribution's cache."""
    objects = screen_objects(runtime_config, web_root)
    for item in objects:
        s3.put_object(
            Bucket=bucket,
            Key=item.key,
            Body=item.body,
            ContentType=item.content_type,
            CacheControl=item.cache_control,
        )
    wanted = {item.key for item in objects}
    stale = sorted(key for key in _keys(s3, bucket) if key not in wanted)
    for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    invalidation = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(uuid.uuid4())},
    )
    return Published([item.key for item in objects], stale, str(invalidation["Invalidation"]["Id"]))


def runtime_config_of(text: str) -> dict[str, Any]:
    """The screens' runtime configuration from the stack's ScreensRuntimeConfig output."""
    try:
        config: dict[str, Any] = json.loads(text)
    except ValueError as error:
        raise OperatorError(f"the stack's ScreensRuntimeConfig output is not JSON ({error})") from None
    return config


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def _keys(s3: Any, bucket: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield str(item["Key"])
