"""Who the caller is: only the authorizer's claims count, in every form API Gateway renders groups."""

from __future__ import annotations

import pytest

from serverlesspresso.identity import Caller, Unauthenticated, caller_from_claims, parse_groups


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ("[barista]", {"barista"}),  # how API Gateway's JWT authorizer renders a one-element array
        ("[barista admins]", {"barista", "admins"}),
        (["barista", "admins"], {"barista", "admins"}),  # a JSON array, as in the token itself
        ('["barista","admins"]', {"barista", "admins"}),
        ("barista", {"barista"}),
        ("[]", set()),
        (None, set()),
        ("xbarista]", {"xbarista]"}),  # only a whole bracketed list is unwrapped, never half of one
        ("[barista", {"[barista"}),
    ],
)
def test_groups_are_read_in_every_form_they_arrive_in(groups: object, expected: set[str]) -> None:
    assert parse_groups(groups) == expected


def test_a_barista_is_a_member_of_the_barista_group_only() -> None:
    assert caller_from_claims({"sub": "b-1", "cognito:groups": "[barista]"}).is_barista
    assert not caller_from_claims({"sub": "c-1", "cognito:groups": "[baristas]"}).is_barista
    assert not caller_from_claims({"sub": "c-1"}).is_barista


def test_the_caller_is_the_tokens_subject() -> None:
    assert caller_from_claims({"sub": "u-1", "cognito:username": "alice"}) == Caller(
        "u-1", frozenset(), "alice"
    )


@pytest.mark.parametrize(
    "claims", [None, {}, {"sub": ""}, {"sub": "  "}, {"cognito:username": "alice"}, {"sub": 7}]
)
def test_claims_without_a_subject_are_unauthenticated(claims: dict[str, object] | None) -> None:
    with pytest.raises(Unauthenticated):
        caller_from_claims(claims)
