"""The HTTP API's request bodies: size, content type, encoding and JSON, checked before any model sees one.

API Gateway hands the function whatever the client sent (up to its own 10 MB payload limit), base64
encoded when it is not text. Every route reads its body through `read_body`, and only once the caller
is known to be allowed (authorization before validation), so a hostile body is a 4xx with a reason and
never reaches pydantic, a decoder that raises, or DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel, ValidationError

# The largest body a route reads. The largest valid order request (a 64-character drink and 20
# modifiers of 64 characters) is under 1.5 KiB of JSON, and under 6 KiB even if every character took
# four UTF-8 bytes: 16 KiB leaves room for \u escapes and whitespace while keeping what a hostile
# client can make the function decode and parse tiny. PUT /config carries a whole menu (up to 50
# drinks of 20 modifiers, about 72 KiB of ASCII JSON): it gets DynamoDB's item size, the most that
# could ever be stored anyway.
MAX_BODY_BYTES = 16 * 1024
MAX_CONFIG_BODY_BYTES = 400 * 1024

JSON_CONTENT_TYPE = "application/json"
JSON_ONLY = "send the body as application/json"

Model = TypeVar("Model", bound=BaseModel)


class UnacceptableBody(Exception):
    """The body cannot be read at all: too large (413), not JSON's media type (415), not UTF-8 (400)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_body(event: BaseProxyEvent, model: type[Model], *, max_bytes: int = MAX_BODY_BYTES) -> Model:
    """The request body parsed into `model`.

    Raises UnacceptableBody, or RequestValidationError (a 400 naming the field) for a body that is
    missing, not JSON, or does not fit the model.
    """
    parsed = read_optional_body(event, model, max_bytes=max_bytes)
    if parsed is None:
        raise _invalid("missing", "a JSON body is required")
    return parsed


def read_optional_body(
    event: BaseProxyEvent, model: type[Model], *, max_bytes: int = MAX_BODY_BYTES
) -> Model | None:
    """Like read_body, for a route whose body may be left out: None when it is."""
    document = _json_document(event, max_bytes)
    if document is None:
        return None
    try:
        return model.model_validate(document)
    except ValidationError as invalid:
        # Only location, type and message: never the input (it could be anything the client sent).
        problems = invalid.errors(include_input=False, include_url=False, include_context=False)
        located = [{**problem, "loc": ("body", *problem["loc"])} for problem in problems]
        raise RequestValidationError(located) from None


def check_unread_body(event: BaseProxyEvent) -> None:
    """For a route that takes no body: one it would ignore must still be readable JSON.

    A well-formed JSON body is ignored (clients send `{}` with a POST, and a body never decides who
    the caller is), but one that is too large, not JSON's media type, not UTF-8 or not JSON is refused
    like on any other route, so no route answers garbage with a success.
    """
    _json_document(event, MAX_BODY_BYTES)


def _json_document(event: BaseProxyEvent, max_bytes: int) -> Any:
    raw = event.get("body")
    if not raw:
        return None
    _require_json_media_type(event.headers.get("content-type"))
    text = _text(str(raw), bool(event.get("isBase64Encoded")), max_bytes)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid("json_invalid", f"not JSON: {error.msg} at character {error.pos}") from None


def _require_json_media_type(content_type: str | None) -> None:
    # No Content-Type at all is taken as JSON (API Gateway test events and some clients omit it);
    # a declared type must be JSON, and a declared charset must be UTF-8 (JSON's only encoding).
    if content_type is None or not content_type.strip():
        return
    media_type, *parameters = (part.strip().lower() for part in content_type.split(";"))
    pairs = (parameter.partition("=") for parameter in parameters)
    charsets = [value.strip('"') for name, _, value in pairs if name == "charset"]
    if media_type != JSON_CONTENT_TYPE or any(charset != "utf-8" for charset in charsets):
        raise UnacceptableBody(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, JSON_ONLY)


def _text(raw: str, base64_encoded: bool, max_bytes: int) -> str:
    too_large = UnacceptableBody(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {max_bytes} bytes")
    if base64_encoded:
        # Checked on the encoded length first, so an oversized body is never decoded.
        if len(raw) > (max_bytes + 2) // 3 * 4:
            raise too_large
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise UnacceptableBody(HTTPStatus.BAD_REQUEST, "the body is not valid base64") from None
    else:
        data = raw.encode("utf-8", errors="surrogatepass")
    if len(data) > max_bytes:
        raise too_large
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnacceptableBody(HTTPStatus.BAD_REQUEST, "the body is not UTF-8 text") from None


def _invalid(kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])
