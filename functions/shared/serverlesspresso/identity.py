"""Who is calling: read only from the claims the API's JWT authorizer verified, never from a body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BARISTA_GROUP = "barista"
GROUPS_CLAIM = "cognito:groups"


class Unauthenticated(Exception):
    """The request carries no verified identity (no authorizer claims, or no `sub`)."""


@dataclass(frozen=True)
class Caller:
    """A signed-in user: their Cognito `sub` and the groups they belong to."""

    user_id: str
    groups: frozenset[str] = frozenset()

    @property
    def is_barista(self) -> bool:
        """True for members of the `barista` user pool group."""
        return BARISTA_GROUP in self.groups


def caller_from_claims(claims: Mapping[str, Any] | None) -> Caller:
    """Build the Caller from `requestContext.authorizer.jwt.claims`; Unauthenticated without a `sub`."""
    if not claims:
        raise Unauthenticated("no verified identity")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthenticated("the token has no subject")
    return Caller(user_id=sub, groups=parse_groups(claims.get(GROUPS_CLAIM)))


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
