"""Who is calling: read only from the claims the API's JWT authorizer verified, never from a body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BARISTA_GROUP = "barista"
DISPLAY_GROUP = "display"  # the big screen: reads the queue and the admission code, changes nothing
GROUPS_CLAIM = "cognito:groups"
# Claims that may carry the name a customer is called by at the counter, most specific first.
# `cognito:username` is skipped when it is the pool's generated id (= sub, as with e-mail sign-in).
DISPLAY_NAME_CLAIMS = ("name", "given_name", "preferred_username", "cognito:username")
MAX_DISPLAY_NAME_LENGTH = 32


class Unauthenticated(Exception):
    """The request carries no verified identity (no authorizer claims, or no `sub`)."""


@dataclass(frozen=True)
class Caller:
    """A signed-in user: their Cognito `sub` and the groups they belong to."""

    user_id: str
    groups: frozenset[str] = frozenset()
    display_name: str | None = None

    @property
    def is_barista(self) -> bool:
        """True for members of the `barista` user pool group."""
        return BARISTA_GROUP in self.groups

    @property
    def is_display(self) -> bool:
        """True for the shop's display screen (members of the `display` group)."""
        return DISPLAY_GROUP in self.groups


def caller_from_claims(claims: Mapping[str, Any] | None) -> Caller:
    """Build the Caller from `requestContext.authorizer.jwt.claims`; Unauthenticated without a `sub`."""
    if not claims:
        raise Unauthenticated("no verified identity")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthenticated("the token has no subject")
    return Caller(
        user_id=sub, groups=parse_groups(claims.get(GROUPS_CLAIM)), display_name=display_name(claims, sub)
    )


def display_name(claims: Mapping[str, Any], sub: str) -> str | None:
    """The first name-like claim that is not the subject itself, trimmed to MAX_DISPLAY_NAME_LENGTH."""
    for claim in DISPLAY_NAME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and value.strip() and value.strip() != sub:
            return " ".join(value.split())[:MAX_DISPLAY_NAME_LENGTH]
    return None


def parse_groups(value: Any) -> frozenset[str]:
    """Groups from `cognito:groups`, in either form it arrives in.

    A JWT carries a JSON array, but API Gateway's JWT authorizer hands claims to Lambda as strings and
    renders an array as "[barista admins]" (space separated, in brackets). Both are accepted, and so is
    a JSON-style '["barista", "admins"]' string, since it costs nothing.
    """
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(group) for group in value if str(group))
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = (part.strip("\"'") for part in text.replace(",", " ").split())
    return frozenset(part for part in parts if part)
