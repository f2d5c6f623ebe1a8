"""The README's runbook covers every alarm: an alarm added to template.yaml without a row saying what
it means and what to do fails here."""

from __future__ import annotations

import re

from tests.template_tables import ROOT, load_template

README = ROOT / "README.md"


def runbook_rows() -> set[str]:
    """The alarm logical ids that start a README table row (| `SomethingAlarm` | ... |)."""
    return set(re.findall(r"^\| `(\w+Alarm)` \|", README.read_text(encoding="utf-8"), re.MULTILINE))


def test_every_alarm_of_the_template_has_a_runbook_row() -> None:
    alarms = set(load_template().resources("AWS::CloudWatch::Alarm"))

    assert alarms
    assert alarms - runbook_rows() == set()


def test_the_runbook_names_no_alarm_the_template_does_not_have() -> None:
    assert runbook_rows() - set(load_template().resources("AWS::CloudWatch::Alarm")) == set()
