"""The order workflow's ASL passes the strictest offline checks we have, and those checks catch each
known defect that moto lets through but real Step Functions refuses (tests/asl_corpus.py).

statelint needs Node.js: without it these tests skip with the reason, except under CI (CI=true),
where a missing statelint fails them: CI must never pass without the ASL validated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.asl_corpus import BAD_VARIANTS, BadVariant
from tests.asl_validator import (
    StatelintUnavailable,
    deployed_definition,
    own_rules,
    statelint,
    static_analysis,
)
from tests.template_tables import load_template

Definition = dict[str, Any]


@pytest.fixture(scope="module")
def definition() -> Definition:
    return deployed_definition(load_template())


@pytest.fixture(scope="module")
def statelint_problems(definition: Definition) -> dict[str, list[str]]:
    """statelint's problems for our definition ("ours") and every bad variant, in one Node run."""
    named = {"ours": definition} | {variant.name: variant.apply(definition) for variant in BAD_VARIANTS}
    try:
        problems = statelint(list(named.values()))
    except StatelintUnavailable as missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must validate the ASL with statelint: {missing}")
        pytest.skip(f"ASL NOT VALIDATED WITH STATELINT: {missing}")
    return dict(zip(named, problems, strict=True))


CHECKS: dict[str, Callable[[Definition], list[str]]] = {
    "static_analysis": static_analysis,
    "own_rules": own_rules,
}


def test_our_definition_passes_statelint(statelint_problems: dict[str, list[str]]) -> None:
    assert statelint_problems["ours"] == []


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_our_definition_passes_the_python_checks(check: str, definition: Definition) -> None:
    assert CHECKS[check](definition) == []


@pytest.mark.parametrize("variant", BAD_VARIANTS, ids=lambda variant: variant.name)
def test_each_known_defect_is_refused_by_the_checks_the_corpus_names(
    variant: BadVariant, definition: Definition, request: pytest.FixtureRequest
) -> None:
    # Given our definition with one defect real Step Functions refuses
    bad = variant.apply(definition)

    # When each check that the corpus says catches it looks at it
    problems = {
        check: request.getfixturevalue("statelint_problems")[variant.name]
        if check == "statelint"
        else CHECKS[check](bad)
        for check in variant.caught_by
    }

    # Then every one of them reports a problem
    assert variant.caught_by, f"{variant.name}: no check catches it"
    assert {check: found for check, found in problems.items() if not found} == {}


@pytest.mark.parametrize("variant", BAD_VARIANTS, ids=lambda variant: variant.name)
def test_the_corpus_says_why_statelint_misses_a_defect(variant: BadVariant) -> None:
    # A variant statelint does not catch says why, so a reader knows which other check stands in
    assert ("statelint" in variant.caught_by) != bool(variant.statelint_misses)
